"""Swift-Hyperband: Hyperband brackets whose early stops use learning-curve forecasts."""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.pruners import BasePruner
from optuna.study import StudyDirection
from optuna.trial import TrialState

from optuna_qsvr import _shared
from optuna_qsvr.predictors._base import BasePredictor, ModelFormatError
from optuna_qsvr.predictors._features import FEATURE_KINDS
from optuna_qsvr.pruners._schedule import Rung, Schedule

if TYPE_CHECKING:
    import optuna

_logger = logging.getLogger(__name__)

BRACKET_ATTR = "swift:bracket"
DECISION_PREFIX = "swift:decision:"
PROMOTION_PREFIX = "swift:promotion:"

PredictorSpec = str | BasePredictor | Callable[[], BasePredictor]


class SwiftHyperbandPruner(BasePruner):
    """Hyperband whose early stops are decided on forecasts of each trial's learning curve.

    Every trial belongs to a Hyperband bracket, and each bracket to rungs of growing epoch
    budgets ``r_i``. Within each rung, at the decision step ``t* = r_prev + ceil((r_i -
    r_prev) * known_curve)``, a predictor forecasts the trial's value at ``r_i`` from its
    curve so far and the trial stops there if the forecast loses; at ``r_i`` successive
    halving (ASHA) promotes the top ``1 / reduction_factor``. A quota of trials per rung
    trains on without a forecast ("full") and supplies the predictor's training curves and
    the threshold. One predictor per key ``(r_i, t*)`` is fitted once, shared by every
    bracket and every worker through the storage.

    All state lives in the study's storage: another process, or a fresh pruner object, makes
    the same decisions. Report the epoch count as ``step`` (1 after the first epoch).

    Args:
        min_resource: epochs of the smallest rung.
        max_resource: epochs of a full training. It must be given: Optuna's ``"auto"`` reads
            it from the first finished trial, so workers that start before one finishes
            would disagree on the brackets.
        reduction_factor: Hyperband's ``eta``: each rung keeps ``1 / eta`` of its trials.
        known_curve: fraction of a rung's span observed before its forecast.
        min_train_curves: ``d``, curves a predictor needs before it is fitted.
        max_train_curves: a predictor is fitted on at most this many curves, the most recent:
            fitting on thousands (a late fit in a large study) would stall a trial, and a
            Q-SVR ensemble grows by one annealer call per 20 curves.
        full_fraction: ``k``; about ``k / eta`` of a rung's trials train on without a
            forecast, besides those needed to reach ``d`` curves.
        threshold_quantile: the quantile of the rung's fully trained values that a
            forecast must beat.
        predictor: ``"svr"`` (scikit-learn NuSVR), ``"qsvr"`` (simulated annealing), an
            unfitted :class:`~optuna_qsvr.BasePredictor` (copied per key), or a callable
            returning one.
        features: the predictor's feature blocks: ``"curve"`` (the reference), ``"diff1"``,
            ``"diff2"`` and ``"params"`` (Baker et al.). Used by the named predictors.
        confidence: Baker's ``Delta``; when set, a forecast above the threshold still
            continues while ``P(value beats threshold) >= 1 - confidence`` under the
            predictor's cross-validated error. ``None`` is the reference's rule.
        forecast_final: forecast the value at ``max_resource`` instead of at ``r_i``.
        refit_every: refit a key's predictor once this many new curves have arrived;
            ``None`` fits each predictor once and freezes it, as the reference does.
        rank_quantile: when set, a forecast is compared with forecasts: the trial continues if
            its forecast ranks within this top fraction of the forecasts of every trial that
            reached the decision step (any bracket), or beats the threshold. Forecasts of
            other trials share the predictor's biases, which observed values do not.
        residual_target: the named predictors learn the change from a curve's last value
            instead of the value (see :class:`~optuna_qsvr.SVRPredictor`).
        rungs: ``"optuna"`` places rungs as Optuna's ``HyperbandPruner`` (geometric from
            ``min_resource``, plus a last rung ending at ``max_resource``); ``"hyperband"``
            anchors them at ``max_resource`` as Li et al. and the reference do.
        fit_lease_seconds: how long a worker may hold the right to fit a predictor before
            another takes over (a worker that died mid-fit).

    Example:

        .. code-block:: python

            import optuna
            from optuna_qsvr import SwiftHyperbandPruner


            def objective(trial):
                lr = trial.suggest_float("lr", 1e-3, 1.0, log=True)
                loss = 1.0
                for epoch in range(1, 28):
                    loss *= 1 - 0.1 * lr
                    trial.report(loss, epoch)
                    if trial.should_prune():
                        raise optuna.TrialPruned()
                return loss


            study = optuna.create_study(
                pruner=SwiftHyperbandPruner(min_resource=1, max_resource=27)
            )
            study.optimize(objective, n_trials=40)
    """

    def __init__(
        self,
        min_resource: int = 1,
        max_resource: int | None = None,
        reduction_factor: int = 3,
        *,
        known_curve: float = 0.5,
        min_train_curves: int = 15,
        max_train_curves: int = 200,
        full_fraction: float = 0.5,
        threshold_quantile: float = 0.25,
        predictor: PredictorSpec = "svr",
        features: tuple[str, ...] | list[str] = ("curve",),
        confidence: float | None = None,
        forecast_final: bool = False,
        refit_every: int | None = None,
        rank_quantile: float | None = None,
        residual_target: bool = False,
        rungs: str = "optuna",
        fit_lease_seconds: float = 600.0,
    ) -> None:
        if max_resource is None or isinstance(max_resource, str):
            raise ValueError(
                f"max_resource must be an integer number of epochs, got {max_resource!r}: "
                "'auto' lets workers disagree on the brackets"
            )
        _check_int("min_resource", min_resource, 1)
        _check_int("reduction_factor", reduction_factor, 2)
        _check_int("max_resource", max_resource, min_resource)
        _check_int("min_train_curves", min_train_curves, 3)
        _check_int("max_train_curves", max_train_curves, min_train_curves)
        if not 0.0 < known_curve < 1.0:
            raise ValueError(f"known_curve must be in (0, 1), got {known_curve}")
        if not 0.0 <= full_fraction <= 1.0:
            raise ValueError(f"full_fraction must be in [0, 1], got {full_fraction}")
        if not 0.0 < threshold_quantile < 1.0:
            raise ValueError(f"threshold_quantile must be in (0, 1), got {threshold_quantile}")
        if confidence is not None and not 0.5 <= confidence < 1.0:
            raise ValueError(f"confidence must be in [0.5, 1) or None, got {confidence}")
        if refit_every is not None:
            _check_int("refit_every", refit_every, 1)
        if rank_quantile is not None and not 0.0 < rank_quantile < 1.0:
            raise ValueError(f"rank_quantile must be in (0, 1) or None, got {rank_quantile}")
        if rungs not in ("optuna", "hyperband"):
            raise ValueError(f"rungs must be 'optuna' or 'hyperband', got {rungs!r}")
        bad = [f for f in features if f not in FEATURE_KINDS]
        if bad or not features:
            raise ValueError(
                f"features must be a non-empty subset of {FEATURE_KINDS}, got {features}"
            )
        if isinstance(predictor, str) and predictor not in ("svr", "qsvr"):
            raise ValueError(
                f"predictor must be 'svr', 'qsvr' or a BasePredictor, got {predictor!r}"
            )
        if not isinstance(predictor, (str, BasePredictor)) and not callable(predictor):
            raise TypeError(
                f"predictor must be 'svr', 'qsvr' or a BasePredictor, got {predictor!r}"
            )

        self._schedule = Schedule(min_resource, max_resource, reduction_factor, known_curve, rungs)
        self._min_train_curves = min_train_curves
        self._max_train_curves = max_train_curves
        self._full_fraction = full_fraction
        self._threshold_quantile = threshold_quantile
        self._predictor_spec = predictor
        self._features = tuple(features)
        self._confidence = confidence
        self._forecast_final = forecast_final
        self._refit_every = refit_every
        self._rank_quantile = rank_quantile
        self._residual_target = residual_target
        self._fit_lease_seconds = fit_lease_seconds
        self._owner = _shared.new_owner_id()
        # Process-local caches of immutable facts: fitted models (frozen once published,
        # keyed by version) and trial brackets (a pure function of study name and number).
        self._models: dict[tuple[str, str], tuple[int, BasePredictor, dict[str, Any]]] = {}
        self._brackets: dict[tuple[str, int], int] = {}
        self._warned: set[tuple[str, str]] = set()
        self._done: dict[tuple[str, int], set[str]] = {}
        self._lock = threading.Lock()

    @property
    def schedule(self) -> Schedule:
        """The brackets and rungs, with their decision steps."""
        return self._schedule

    # ------------------------------------------------------------------------------------
    def prune(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if len(study.directions) > 1:
            raise ValueError(
                "SwiftHyperbandPruner supports single-objective studies only; this study has "
                f"{len(study.directions)} objectives"
            )
        step = trial.last_step
        if step is None or step < 1:
            return False
        bracket = self.bracket_of(study.study_name, trial.number)
        done: set[str] | None = None
        for rung in self._schedule.rungs(bracket):
            if rung.previous >= step:
                break
            due_forecast = (
                rung.decision_step is not None and rung.decision_step <= step < rung.budget
            )
            due_promotion = not rung.is_last and step >= rung.budget
            if not (due_forecast or due_promotion):
                continue
            if done is None:
                done = self._recorded(study, trial, bracket)
            if due_forecast and f"{DECISION_PREFIX}{rung.index}" not in done:
                return self._forecast_decision(study, trial, rung)
            if (
                due_promotion
                and f"{PROMOTION_PREFIX}{rung.index}" not in done
                and self._promotion_decision(study, trial, rung)
            ):
                return True
        return False

    def bracket_of(self, study_name: str, trial_number: int) -> int:
        """The bracket of a trial: known before it runs, the same in every process."""
        cache_key = (study_name, trial_number)
        bracket = self._brackets.get(cache_key)
        if bracket is None:
            bracket = self._schedule.bracket_of(study_name, trial_number)
            self._brackets[cache_key] = bracket
        return bracket

    # ------------------------------------------------------------------------------------
    def _recorded(
        self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, bracket: int
    ) -> set[str]:
        """Names of the records this trial already has.

        Optuna hands pruners lazy system attributes (a storage read per access). A trial
        runs in one process, so its records are read once and then kept here as they are
        written; a pruner object built mid-trial reads them from the storage.
        """
        key = (study.study_name, trial.number)
        done = self._done.get(key)
        if done is None:
            done = {name for name in trial.system_attrs if name.startswith("swift:")}
            if BRACKET_ATTR not in trial.user_attrs:
                study._storage.set_trial_user_attr(trial._trial_id, BRACKET_ATTR, bracket)
            with self._lock:
                self._done[key] = done
        return done

    def _sign(self, study: optuna.study.Study) -> float:
        return -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0

    def _promotion_decision(
        self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, rung: Rung
    ) -> bool:
        """ASHA at ``r_i``: continue when within the top ``1/eta`` of the bracket's rung."""
        sign = self._sign(study)
        value = _value_at(trial, rung.budget, sign)
        trials = _all_trials(study)
        competing = []
        for t in trials:
            if (
                t.number == trial.number
                or self.bracket_of(study.study_name, t.number) != rung.bracket
            ):
                continue
            v = _value_at(t, rung.budget, sign)
            if v is None:
                # A rung-mate stopped on a forecast still belongs to the rung: successive
                # halving keeps 1/eta of the whole rung, not of the forecast's survivors.
                v = _pruned_forecast(t, rung, sign)
            if v is not None:
                competing.append(v)
        competing.append(value if value is not None else math.inf)
        competing.sort()
        idx = max(len(competing) // self._schedule.reduction_factor - 1, 0)
        own = value if value is not None else math.inf
        promoted = own <= competing[idx] and math.isfinite(own)
        record = {
            "rung": rung.index,
            "budget": rung.budget,
            "step": trial.last_step,
            "value": None if value is None or not math.isfinite(value) else sign * value,
            "decision": "promoted" if promoted else "stopped",
            "rank": competing.index(own) + 1,
            "of": len(competing),
        }
        name = f"{PROMOTION_PREFIX}{rung.index}"
        study._storage.set_trial_system_attr(trial._trial_id, name, record)
        self._done[(study.study_name, trial.number)].add(name)
        if not promoted:
            study._storage.set_trial_user_attr(
                trial._trial_id,
                f"swift:rung{rung.index}:promotion",
                f"stopped at {rung.budget}: rank {record['rank']} of {record['of']} (ASHA)",
            )
        return not promoted

    def _forecast_decision(
        self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, rung: Rung
    ) -> bool:
        assert rung.decision_step is not None
        sign = self._sign(study)
        t_star = rung.decision_step
        target = self._schedule.max_resource if self._forecast_final else rung.budget
        key = f"r{target}_t{t_star}"
        trials = _all_trials(study)
        peers = [
            t
            for t in trials
            if t.number != trial.number
            and self.bracket_of(study.study_name, t.number) == rung.bracket
        ]
        peer_records = [
            r for t in peers for r in [t.system_attrs.get(f"{DECISION_PREFIX}{rung.index}")] if r
        ]
        pool = [t for t in trials if t.number != trial.number and _has_curve(t, t_star, target)]
        in_flight_full = sum(
            1
            for t in trials
            if t.state == TrialState.RUNNING
            and t.number != trial.number
            and not _has_curve(t, t_star, target)
            and any(
                isinstance(r, dict) and r.get("key") == key and r.get("decision") == "full"
                for name, r in t.system_attrs.items()
                if name.startswith(DECISION_PREFIX)
            )
        )
        n_full = sum(1 for r in peer_records if r.get("decision") == "full")
        quota = math.ceil(
            self._full_fraction * (len(peer_records) + 1) / self._schedule.reduction_factor
        )
        record: dict[str, Any] = {
            "bracket": rung.bracket,
            "rung": rung.index,
            "budget": rung.budget,
            "decision_step": t_star,
            "step": trial.last_step,
            "key": key,
            "forecast": None,
            "threshold": None,
        }
        if len(pool) + in_flight_full < self._min_train_curves or n_full < quota:
            record["decision"] = "full"
            record["reason"] = (
                f"training curves {len(pool)}+{in_flight_full} of {self._min_train_curves}"
                if len(pool) + in_flight_full < self._min_train_curves
                else f"full quota {n_full} of {quota}"
            )
            return self._record(study, trial, rung, record)

        predictor, why = self._predictor(study, key, pool, t_star, target, sign)
        if predictor is None:
            record["decision"] = "no-forecast"
            record["reason"] = why
            return self._record(study, trial, rung, record)
        try:
            curve = _curve(trial, t_star, sign)[None, :]
            mean, std = predictor.predict(curve, [trial.params])
            forecast, sigma = float(mean[0]), float(std[0])
            if not math.isfinite(forecast):
                raise ValueError(f"non-finite forecast {forecast}")
        except Exception as err:  # A broken predictor must never crash the trial.
            record["decision"] = "no-forecast"
            record["reason"] = f"predictor failed: {type(err).__name__}: {err}"
            self._warn_once(study, key, record["reason"])
            return self._record(study, trial, rung, record)

        target_values = [
            v
            for t in pool
            for v in [_value_at(t, target, sign)]
            if v is not None and math.isfinite(v)
        ]
        if self._forecast_final:
            # Baker et al.: the forecast final value must beat the best final value so far.
            tau, basis = min(target_values), "best final value so far"
        else:
            full_values = [
                v
                for t in peers
                if (t.system_attrs.get(f"{DECISION_PREFIX}{rung.index}") or {}).get("decision")
                == "full"
                for v in [_value_at(t, target, sign)]
                if v is not None and math.isfinite(v)
            ]
            tau = float(np.quantile(full_values or target_values, self._threshold_quantile))
            basis = "rung full trainings" if full_values else "all curves of key"
        record["forecast"] = sign * forecast
        record["threshold"] = sign * tau
        record["threshold_basis"] = basis
        keep = forecast <= tau
        reason = "forecast beats threshold" if keep else "forecast loses to threshold"
        if not keep and self._confidence is not None and math.isfinite(sigma) and sigma > 0:
            p_beat = _normal_cdf((tau - forecast) / sigma)
            record["p_beat"] = p_beat
            if p_beat >= 1.0 - self._confidence:
                keep, reason = (
                    True,
                    f"P(beats threshold) {p_beat:.3f} >= {1 - self._confidence:.3f}",
                )
        if not keep and self._rank_quantile is not None:
            keep, reason = self._rank_rule(study, trial, trials, predictor, forecast, t_star, sign)
        elif not keep and not self._forecast_final:
            # No pause to "top up to n_next": keep a forecast within the rung's top 1/eta.
            ranked = sorted(
                [v for t in peers for v in [_value_at(t, target, sign)] if v is not None]
                + [
                    sign * r["forecast"]
                    for r in peer_records
                    if isinstance(r.get("forecast"), (int, float))
                ]
                + [forecast]
            )
            idx = max(len(ranked) // self._schedule.reduction_factor - 1, 0)
            if forecast <= ranked[idx]:
                keep, reason = True, f"forecast within top 1/{self._schedule.reduction_factor}"
        record["decision"] = "kept" if keep else "pruned"
        record["reason"] = reason
        return self._record(study, trial, rung, record)

    def _rank_rule(
        self,
        study: optuna.study.Study,
        trial: optuna.trial.FrozenTrial,
        trials: list[optuna.trial.FrozenTrial],
        predictor: BasePredictor,
        forecast: float,
        t_star: int,
        sign: float,
    ) -> tuple[bool, str]:
        """Keep a forecast within the top ``rank_quantile`` of the forecasts of every trial
        that reached ``t*``: one batch prediction over their curves."""
        # The most recent trials: a bounded batch however large the study grows.
        reached = [
            t
            for t in trials
            if t.number != trial.number
            and t_star in t.intermediate_values
            and math.isfinite(t.intermediate_values[t_star])
        ][-5 * self._max_train_curves :]
        if len(reached) < 5:
            return True, f"only {len(reached)} other trials reached step {t_star} to rank among"
        curves = np.vstack([_curve(t, t_star, sign) for t in reached])
        others = predictor.predict(curves, [t.params for t in reached])[0]
        rank = int(np.sum(others < forecast)) + 1
        allowed = math.ceil(self._rank_quantile * (len(reached) + 1))
        verdict = "within" if rank <= allowed else "outside"
        return (
            rank <= allowed,
            f"forecast ranks {rank} of {len(reached) + 1}, {verdict} top {allowed}",
        )

    def _record(
        self,
        study: optuna.study.Study,
        trial: optuna.trial.FrozenTrial,
        rung: Rung,
        record: dict[str, Any],
    ) -> bool:
        storage = study._storage
        name = f"{DECISION_PREFIX}{rung.index}"
        storage.set_trial_system_attr(trial._trial_id, name, record)
        self._done[(study.study_name, trial.number)].add(name)
        text = f"{record['decision']} at {record['step']} ({record['key']})"
        if record["forecast"] is not None:
            text += f": forecast {record['forecast']:.4g} vs threshold {record['threshold']:.4g}"
        elif record.get("reason"):
            text += f": {record['reason']}"
        storage.set_trial_user_attr(trial._trial_id, f"swift:rung{rung.index}", text[:200])
        return record["decision"] == "pruned"

    # ------------------------------------------------------------------------------------
    def _new_predictor(self) -> BasePredictor:
        spec = self._predictor_spec
        if spec == "svr":
            from optuna_qsvr.predictors import SVRPredictor

            return SVRPredictor(features=self._features, residual=self._residual_target)
        if spec == "qsvr":
            from optuna_qsvr.predictors import QSVRPredictor

            return QSVRPredictor(features=self._features, residual=self._residual_target)
        if isinstance(spec, BasePredictor):
            return copy.deepcopy(spec)
        made = spec()
        if not isinstance(made, BasePredictor):
            raise TypeError(
                f"predictor factory returned {type(made).__name__}, not a BasePredictor"
            )
        return made

    def _load_predictor(self, text: str) -> BasePredictor:
        spec = self._predictor_spec
        if isinstance(spec, str):
            from optuna_qsvr.predictors import load_predictor

            return load_predictor(text)
        cls = type(spec) if isinstance(spec, BasePredictor) else type(self._new_predictor())
        return cls.from_json(text)

    def _predictor(
        self,
        study: optuna.study.Study,
        key: str,
        pool: list[optuna.trial.FrozenTrial],
        t_star: int,
        target: int,
        sign: float,
    ) -> tuple[BasePredictor | None, str]:
        """The shared predictor of ``key``: cached, else loaded, else fitted here once."""
        cache_key = (study.study_name, key)
        cached = self._models.get(cache_key)
        if cached is not None and not self._wants_refit(cached[2], len(pool)):
            return cached[1], ""
        storage, study_id = study._storage, study._study_id
        attrs = storage.get_study_system_attrs(study_id)
        version = 1
        try:
            found = _shared.read_model(attrs, key)
        except ModelFormatError as err:
            found = None
            version = _next_version(attrs, key)
            self._warn_once(study, key, f"stored predictor rejected, refitting: {err}")
        if found is not None:
            header, text = found
            version = header["version"] + 1
            try:
                model = self._load_predictor(text)
            except ModelFormatError as err:
                self._warn_once(study, key, f"stored predictor rejected, refitting: {err}")
            else:
                with self._lock:
                    self._models[cache_key] = (header["version"], model, header)
                if not self._wants_refit(header, len(pool)):
                    return model, ""
        if len(pool) < self._min_train_curves:
            return None, f"{len(pool)} of {self._min_train_curves} training curves"
        claim_name = f"{key}:v{version}"
        if not _shared.try_claim(
            storage, study_id, claim_name, self._owner, self._fit_lease_seconds
        ):
            state = _shared.claim_state(storage.get_study_system_attrs(study_id), claim_name) or {}
            if state.get("failed"):
                return self._stale_or_none(cache_key, f"predictor fit failed: {state['failed']}")
            return self._stale_or_none(cache_key, "predictor being fitted by another worker")
        n_pool = len(pool)
        try:
            pool = sorted(pool, key=lambda t: t.number)[-self._max_train_curves :]
            curves = np.vstack([_curve(t, t_star, sign) for t in pool])
            targets = np.array([_value_at(t, target, sign) for t in pool], dtype=float)
            finite = np.isfinite(targets)
            params = [t.params for t, ok in zip(pool, finite, strict=False) if ok]
            start = time.perf_counter()
            model = self._new_predictor().fit(curves[finite], targets[finite], params)
            seconds = time.perf_counter() - start
            info = getattr(model, "fit_info", {})
            meta = {
                "version": version,
                "kind": getattr(model, "kind", type(model).__name__) or type(model).__name__,
                "n_train": int(finite.sum()),
                "n_pool": n_pool,
                "fit_seconds": seconds,
                "decision_step": t_star,
                "target_step": target,
                "annealer": info.get("annealer"),
                "cv_rmse": _finite_or_none(getattr(model, "sigma_", None)),
                "fitted_at": time.time(),
            }
            header = _shared.publish_model(storage, study_id, key, model.to_json(), meta)
        except Exception as err:  # Fall back to ASHA; others retry after a pause.
            reason = f"{type(err).__name__}: {err}"
            _shared.end_claim(
                storage, study_id, claim_name, self._owner, retry_after=300.0, reason=reason
            )
            self._warn_once(study, key, f"predictor fit failed, ASHA decides: {reason}")
            return self._stale_or_none(cache_key, f"predictor fit failed: {reason}")
        _shared.end_claim(storage, study_id, claim_name, self._owner)
        _logger.info(
            "fitted predictor %s v%d (%s) on %d curves in %.3f s",
            key,
            version,
            meta["kind"],
            meta["n_train"],
            seconds,
        )
        with self._lock:
            self._models[cache_key] = (version, model, header)
        return model, ""

    def _stale_or_none(
        self, cache_key: tuple[str, str], why: str
    ) -> tuple[BasePredictor | None, str]:
        cached = self._models.get(cache_key)
        return (cached[1], "") if cached is not None else (None, why)

    def _wants_refit(self, header: dict[str, Any], n_pool: int) -> bool:
        fitted_on = header.get("n_pool", header["n_train"])
        return (
            self._refit_every is not None
            and isinstance(fitted_on, int)
            and n_pool >= fitted_on + self._refit_every
        )

    def _warn_once(self, study: optuna.study.Study, key: str, message: str) -> None:
        tag = (study.study_name, message.split(":")[0] + key)
        if tag not in self._warned:
            self._warned.add(tag)
            _logger.warning("Swift-Hyperband, predictor %s: %s", key, message)


def fit_records(study: optuna.study.Study) -> list[dict[str, Any]]:
    """One record per published predictor: key, kind, training size, fit seconds, ..."""
    headers = _shared.model_headers(study._storage.get_study_system_attrs(study._study_id))
    return [
        {"key": key, "predictor": h.get("kind"), "seconds": h.get("fit_seconds"), **h}
        for key, h in sorted(headers.items())
        if isinstance(h, dict)
    ]


def _all_trials(study: optuna.study.Study) -> list[optuna.trial.FrozenTrial]:
    return study._storage.get_all_trials(study._study_id, deepcopy=False)


def _value_at(trial: optuna.trial.FrozenTrial, step: int, sign: float) -> float | None:
    """The trial's value at ``step`` (minimised), or at the first step reported after it when
    steps have gaps; ``None`` if it never got there. Non-finite values count as the worst."""
    values = trial.intermediate_values
    if step in values:
        v = values[step]
    else:
        later = [s for s in values if s > step]
        if not later:
            return None
        v = values[min(later)]
    v = sign * float(v)
    return v if math.isfinite(v) else math.inf


def _pruned_forecast(trial: optuna.trial.FrozenTrial, rung: Rung, sign: float) -> float | None:
    """The forecast value at ``rung.budget`` of a trial pruned on it (``inf`` if the forecast
    was of another step), or ``None`` if the trial was not pruned at this rung."""
    record = trial.system_attrs.get(f"{DECISION_PREFIX}{rung.index}")
    if not isinstance(record, dict) or record.get("decision") != "pruned":
        return None
    forecast = record.get("forecast")
    if record.get("key", "").startswith(f"r{rung.budget}_") and isinstance(forecast, (int, float)):
        return sign * float(forecast)
    return math.inf


def _curve(trial: optuna.trial.FrozenTrial, t_star: int, sign: float) -> np.ndarray:
    values = trial.intermediate_values
    out = np.array([sign * float(values.get(s, math.nan)) for s in range(1, t_star + 1)])
    out[~np.isfinite(out)] = math.nan
    if np.isnan(out).all():
        raise ValueError(f"no finite value reported in steps 1..{t_star}")
    return out


def _has_curve(trial: optuna.trial.FrozenTrial, t_star: int, target: int) -> bool:
    values = trial.intermediate_values
    if not any(math.isfinite(values[s]) for s in range(1, t_star + 1) if s in values):
        return False
    v = _value_at(trial, target, 1.0)
    return v is not None and math.isfinite(v)


def _next_version(attrs: dict[str, Any], key: str) -> int:
    header = attrs.get(f"{_shared.MODEL_PREFIX}{key}")
    v = header.get("version") if isinstance(header, dict) else None
    return v + 1 if isinstance(v, int) and not isinstance(v, bool) and 0 < v < 10**6 else 1


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _finite_or_none(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
