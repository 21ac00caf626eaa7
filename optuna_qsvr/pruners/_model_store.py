"""Fitted predictors shared through the study's storage: fitted once per key by one worker
(the fit lease, :mod:`optuna_qsvr._lease`), published as versioned JSON records, loaded and
cached by every other.

A model record names its predictor's registry name and the settings it was fitted under; a
record of another predictor or other settings (a study resumed with a changed pruner) is
refitted, with one warning. An annealer call can cost real money, so a fit is never repeated
while another worker holds the lease, and a failed fit is retried only after a pause.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from optuna_qsvr import _lease, _records
from optuna_qsvr._secrets import scrub
from optuna_qsvr.predictors._base import BasePredictor, ModelFormatError
from optuna_qsvr.pruners import _curves

if TYPE_CHECKING:
    import optuna

_logger = logging.getLogger("optuna_qsvr.pruners")

# How long other workers wait before retrying a fit that failed (an annealer outage).
FAILED_FIT_PAUSE = 300.0
# How ModelStore.get's reason begins when a key's fit failed: the forecast mode records it on
# the trial that Hyperband then decides.
FIT_FAILED = "predictor fit failed"


@dataclass(frozen=True)
class _Cached:
    model: BasePredictor
    header: dict[str, Any]


class ModelStore:
    """The predictors of one pruner, keyed by predictor key, shared through the storage.

    Args:
        new_predictor: makes an unfitted predictor.
        min_train_curves: curves needed before a first fit.
        max_train_curves: a fit uses at most this many curves, the most recent.
        refit_every: refit once this many new curves arrived; ``None`` freezes the first fit.
        refit_growth: refit once the curves grew by this factor since the last fit, so fits
            (annealer calls) grow with the logarithm of the study's size.
        lease_seconds: how long a worker may hold the right to fit.
        settings: JSON-safe pruner settings a model depends on; stored with it and compared
            on load.
        warn: ``warn(study, key, message)`` logs a message once.
    """

    def __init__(
        self,
        new_predictor: Callable[[], BasePredictor],
        *,
        min_train_curves: int,
        max_train_curves: int,
        refit_every: int | None,
        lease_seconds: float,
        refit_growth: float | None = None,
        settings: Mapping[str, Any],
        warn: Callable[[optuna.study.Study, str, str], None],
    ) -> None:
        self._new_predictor = new_predictor
        self._min_train_curves = min_train_curves
        self._max_train_curves = max_train_curves
        self._refit_every = refit_every
        self._refit_growth = refit_growth
        self._lease_seconds = lease_seconds
        # Round-tripped through JSON so a stored copy compares equal (tuples become lists).
        self._settings = json.loads(json.dumps(dict(settings)))
        self._warn = warn
        self._owner = uuid.uuid4().hex
        self._class: type[BasePredictor] | None = None
        # Keyed by storage object (weakly: an id() can be reused once a storage is freed),
        # then by study id and key, never by study name: a study deleted and recreated under
        # the same name is another study.
        self._models: weakref.WeakKeyDictionary[Any, dict[tuple[int, str], _Cached]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # A copy or a pickled pruner starts with empty caches and its own lock and owner id.
        state = self.__dict__.copy()
        state.update(_lock=None, _owner=None)
        del state["_models"]  # a weak dictionary does not pickle
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._models = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._owner = uuid.uuid4().hex

    @property
    def kind(self) -> str:
        """The registry name (else class name) of the predictors this store fits."""
        if self._class is None:
            self._class = type(self._new_predictor())
        return self._class.name or self._class.__name__

    def get(
        self,
        study: optuna.study.Study,
        key: str,
        pool: Sequence[optuna.trial.FrozenTrial],
        decision_step: int,
        target: int,
        sign: float,
    ) -> tuple[BasePredictor | None, str]:
        """The predictor of ``key``: cached, else loaded, else fitted here on ``pool`` once.

        Returns the predictor, or ``None`` and the reason there is none yet.
        """
        with self._lock:
            models = self._models.setdefault(study._storage, {})
        cache_key = (study._study_id, key)
        cached = models.get(cache_key)
        if cached is not None and not self._wants_refit(cached.header, len(pool)):
            return cached.model, ""
        storage, study_id = study._storage, study._study_id
        attrs = storage.get_study_system_attrs(study_id)
        version = 1
        try:
            found = _records.read_model(attrs, key)
        except ModelFormatError as err:
            found = None
            version = _records.next_model_version(attrs, key)
            self._warn(study, key, scrub(f"stored predictor rejected, refitting: {err}"))
        if found is not None:
            header, text = found
            version = header["version"] + 1
            # The version this process has already (its refit is due) is not parsed again.
            if cached is None or cached.header["version"] != header["version"]:
                try:
                    model = self._load(header, text)
                except ModelFormatError as err:
                    self._warn(study, key, scrub(f"stored predictor rejected, refitting: {err}"))
                else:
                    with self._lock:
                        models[cache_key] = _Cached(model, header)
                    if not self._wants_refit(header, len(pool)):
                        return model, ""
        if len(pool) < self._min_train_curves:
            return None, f"{len(pool)} of {self._min_train_curves} training curves"
        lease = _records.lock_name(key, version)
        if not _lease.try_claim(storage, study_id, lease, self._owner, self._lease_seconds):
            state = _lease.claim_state(storage.get_study_system_attrs(study_id), lease) or {}
            if state.get("failed"):
                return self._stale_or_none(
                    models.get(cache_key), f"{FIT_FAILED}: {state['failed']}"
                )
            return self._stale_or_none(
                models.get(cache_key), "predictor being fitted by another worker"
            )
        # The lease may be free because another worker has just published this version
        # after our read: read again before paying for a fit.
        if _records.next_model_version(storage.get_study_system_attrs(study_id), key) > version:
            _lease.end_claim(storage, study_id, lease, self._owner)
            return self.get(study, key, pool, decision_step, target, sign)
        try:
            model, header = self._fit_and_publish(
                study, key, version, pool, decision_step, target, sign
            )
        except Exception as err:  # Fall back to ASHA; others retry after a pause.
            # Error texts reach records, the lease and the log: an annealer's may echo a token.
            reason = scrub(f"{type(err).__name__}: {err}")
            _lease.end_claim(
                storage,
                study_id,
                lease,
                self._owner,
                retry_after=FAILED_FIT_PAUSE,
                reason=reason,
            )
            self._warn(study, key, f"predictor fit failed, ASHA decides: {reason}")
            return self._stale_or_none(models.get(cache_key), f"{FIT_FAILED}: {reason}")
        _lease.end_claim(storage, study_id, lease, self._owner)
        with self._lock:
            models[cache_key] = _Cached(model, header)
        return model, ""

    def _fit_and_publish(
        self,
        study: optuna.study.Study,
        key: str,
        version: int,
        pool: Sequence[optuna.trial.FrozenTrial],
        decision_step: int,
        target: int,
        sign: float,
    ) -> tuple[BasePredictor, dict[str, Any]]:
        n_pool = len(pool)
        pool = sorted(pool, key=lambda t: t.number)[-self._max_train_curves :]
        curves = np.vstack([_curves.curve(t, decision_step, sign) for t in pool])
        targets = np.array([_curves.value_at(t, target, sign) for t in pool], dtype=float)
        finite = np.isfinite(targets)
        params = [t.params for t, ok in zip(pool, finite, strict=False) if ok]
        start = time.perf_counter()
        model = self._new_predictor().fit(curves[finite], targets[finite], params)
        seconds = time.perf_counter() - start
        info = model.fit_info_
        meta = {
            "version": version,
            "kind": _kind_of(model),
            "n_train": int(finite.sum()),
            "n_pool": n_pool,
            "fit_seconds": seconds,
            "decision_step": decision_step,
            "target_step": target,
            "annealer": info.annealer,
            "annealer_calls": info.annealer_calls,
            "cv_rmse": info.cv_rmse,
            "settings": self._settings,
            "fitted_at": time.time(),
        }
        header = _records.publish_model(
            study._storage, study._study_id, key, model.to_json(), meta
        )
        _logger.info(
            "fitted predictor %s v%d (%s) on %d curves in %.3f s",
            key,
            version,
            meta["kind"],
            meta["n_train"],
            seconds,
        )
        return model, header

    def _load(self, header: dict[str, Any], text: str) -> BasePredictor:
        if header["kind"] != self.kind:
            raise ModelFormatError(f"it holds a {header['kind']!r} predictor, not {self.kind!r}")
        settings = header.get("settings")
        if settings is not None and settings != self._settings:
            changed = sorted(
                k for k in {*settings, *self._settings} if settings.get(k) != self._settings.get(k)
            )
            raise ModelFormatError(f"it was fitted under other pruner settings ({changed})")
        # The class this store fits is the one to rebuild it: a user's predictor loads
        # whether or not it is registered, and a record never picks a class of its own.
        assert self._class is not None
        try:
            return self._class.from_json(text)
        except ModelFormatError:
            raise
        except Exception as err:
            # A user's from_json that fails another way: the record is as unusable, and the
            # trial asking must not fail for it.
            raise ModelFormatError(
                f"{self._class.__name__}.from_json raised {type(err).__name__}: {err}"
            ) from err

    @staticmethod
    def _stale_or_none(cached: _Cached | None, why: str) -> tuple[BasePredictor | None, str]:
        return (cached.model, "") if cached is not None else (None, why)

    def _wants_refit(self, header: dict[str, Any], n_pool: int) -> bool:
        fitted_on = header.get("n_pool", header["n_train"])
        if not isinstance(fitted_on, int) or isinstance(fitted_on, bool):
            return False
        if self._refit_every is not None:
            return n_pool >= fitted_on + self._refit_every
        if self._refit_growth is not None:
            return n_pool >= fitted_on * self._refit_growth
        return False


def _kind_of(model: BasePredictor) -> str:
    return type(model).name or type(model).__name__
