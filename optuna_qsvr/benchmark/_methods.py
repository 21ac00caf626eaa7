"""The methods a benchmark compares: Optuna's pruners, Swift-Hyperband and a hindsight oracle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import optuna

from optuna_qsvr.benchmark._replay import CONFIG_ATTR

if TYPE_CHECKING:
    from optuna_qsvr.benchmark._table import CurveTable

METHODS = ("none", "median", "sha", "hyperband", "swift-svr", "swift-qsvr", "oracle")
SWIFT_METHODS = ("swift-svr", "swift-qsvr")


class BenchmarkError(ValueError):
    """A benchmark that cannot run as asked; the message says why."""


class OraclePruner(optuna.pruners.BasePruner):
    """Prune with hindsight: a trial runs to the end only if it will set a new best.

    The oracle knows the final value of every configuration of the table. At a trial's first
    report it compares that trial's final value with the best final value among the trials
    started before it (lower trial numbers) and prunes it unless it is strictly better. Every
    improvement of the no-pruning run is therefore kept and every other trial costs one
    report, which makes its epochs a lower bound for any pruner that keeps the same
    best-so-far value at every point of the same sequence. It is not the bound for the final
    best alone: a pruner may stop an early record whose value a later trial beats, and spend
    fewer epochs than the oracle.

    Args:
        finals:
            Final value per configuration, as in :attr:`CurveTable.finals`. Trials name their
            configuration in the ``config`` user attribute, which :func:`enqueue_config` sets.
    """

    def __init__(self, finals: Mapping[str, float]) -> None:
        self._finals = dict(finals)

    def prune(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if len(trial.intermediate_values) != 1:
            return False
        sign = 1.0 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1.0
        earlier = [
            sign * self._final_of(t)
            for t in study.get_trials(deepcopy=False)
            if t.number < trial.number
        ]
        return bool(earlier) and sign * self._final_of(trial) >= min(earlier)

    def _final_of(self, trial: optuna.trial.FrozenTrial) -> float:
        config = trial.user_attrs.get(CONFIG_ATTR)
        if config not in self._finals:
            raise RuntimeError(
                f"OraclePruner: trial {trial.number} has no known configuration "
                f"({CONFIG_ATTR}={config!r}); enqueue trials with "
                "optuna_qsvr.benchmark.enqueue_config"
            )
        return self._finals[config]


def check_methods(methods: Sequence[str]) -> None:
    """Raise :class:`BenchmarkError` for an unknown method or a Swift method not installed.

    Args:
        methods:
            Names from :data:`METHODS`.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise BenchmarkError(
            f"unknown method(s) {', '.join(map(repr, unknown))}; choose from {', '.join(METHODS)}"
        )
    if not methods:
        raise BenchmarkError("no method given")
    if any(m in SWIFT_METHODS for m in methods):
        _swift_pruner_class()


def _swift_pruner_class() -> type:
    try:
        from optuna_qsvr import SwiftHyperbandPruner
    except (ImportError, AttributeError) as e:
        raise BenchmarkError(
            "the swift-svr and swift-qsvr methods need optuna_qsvr.SwiftHyperbandPruner, which "
            f"cannot be imported here ({type(e).__name__}: {e}); run the other methods with "
            f"--methods {','.join(m for m in METHODS if m not in SWIFT_METHODS)}"
        ) from e
    return SwiftHyperbandPruner


def make_pruner(
    name: str,
    *,
    max_resource: int,
    min_resource: int = 1,
    reduction_factor: int = 3,
    annealer: str | None = None,
    swift_options: Mapping[str, Any] | None = None,
    table: CurveTable | None = None,
) -> optuna.pruners.BasePruner:
    """The pruner of a method, by its name on the command lines, sized to an epoch budget.

    The benchmark, the ``optuna-qsvr worker`` command and the studies all build their pruners
    here, so a method means the same pruner everywhere.

    Args:
        name:
            One of :data:`METHODS`: ``none`` (no pruning), ``median``, ``sha`` and
            ``hyperband`` (Optuna's pruners), ``swift-svr`` and ``swift-qsvr``
            (:class:`~optuna_qsvr.SwiftHyperbandPruner` with the classical or the
            quantum-annealed predictor), ``oracle`` (:class:`OraclePruner`).
        max_resource:
            Epochs of a complete trial.
        min_resource:
            Epochs before the first decision (the median pruner's warm-up).
        reduction_factor:
            ``eta`` of the successive-halving methods.
        annealer:
            Annealer of ``swift-qsvr`` (``"simulated"``, ``"exact"``, ``"qpu"``,
            ``"hybrid"``); ``None`` keeps the predictor's default.
        swift_options:
            Extra keyword arguments of ``SwiftHyperbandPruner`` for the swift methods.
        table:
            The replayed table, whose final values the ``oracle`` reads.

    Raises:
        BenchmarkError: The name is unknown, a swift method cannot be imported, or ``oracle``
            has no table.
    """
    check_methods([name])
    if name == "oracle":
        if table is None:
            raise BenchmarkError("the oracle method needs the replayed table's final values")
        return OraclePruner(table.finals)
    if name in SWIFT_METHODS:
        predictor: object = name.removeprefix("swift-")
        if name == "swift-qsvr" and annealer is not None:
            from optuna_qsvr import QSVRPredictor

            predictor = QSVRPredictor(annealer=annealer)
        return _swift_pruner_class()(
            min_resource=min_resource,
            max_resource=max_resource,
            reduction_factor=reduction_factor,
            predictor=predictor,
            **(swift_options or {}),
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=min_resource, max_resource=max_resource, reduction_factor=reduction_factor
        )
    if name == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=min_resource, reduction_factor=reduction_factor
        )
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=min_resource)
    # "none": check_methods admits no other name.
    return optuna.pruners.NopPruner()
