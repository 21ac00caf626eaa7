"""The methods a benchmark compares, by name: Optuna's pruners, early discarding,
Swift-Hyperband under named option sets, and a hindsight oracle."""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import optuna

from optuna_qsvr.benchmark._discarding import EarlyDiscardingPruner
from optuna_qsvr.benchmark._replay import CONFIG_ATTR

if TYPE_CHECKING:
    from optuna_qsvr.benchmark._table import CurveTable

METHODS = (
    "none",
    "median",
    "percentile",
    "patient",
    "sha",
    "hyperband",
    "i-epoch-1",
    "i-epoch-3",
    "swift-svr",
    "swift-qsvr",
    "oracle",
)
SWIFT_METHODS = ("swift-svr", "swift-qsvr")
SWIFT_PREFIX = "swift:"
_I_EPOCH = re.compile(r"i-epoch-([1-9][0-9]*)")

# Named SwiftHyperbandPruner option sets for the ``swift:NAME`` methods. Each pins every
# option of its rule, so a change of the library's defaults never changes what it measures
# (the swift-svr and swift-qsvr methods measure the defaults, whatever they are). All three
# are rules of the pruner's "paper" mode; a pruner without modes has no other rule, and the
# mode is dropped for it.
_REFERENCE_RULE: dict[str, Any] = {
    "mode": "paper",
    "known_curve": 0.5,
    "min_train_curves": 15,
    "full_fraction": 0.5,
    "threshold_quantile": 0.25,
    "features": ["curve"],
    "confidence": None,
    "forecast_final": False,
    "refit_every": None,
    "rank_quantile": None,
    "residual_target": False,
}
OPTION_SETS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        # The reference implementation's rule and rung layout: fit once and freeze, a forecast
        # kept below the rung's 25% quantile or within its top 1/eta, rungs anchored at
        # max_resource as in Li et al.
        "paper": MappingProxyType({**_REFERENCE_RULE, "rungs": "hyperband"}),
        # The reference rule on Optuna's rung layout: the library's defaults up to 0.1.0.
        "reference": MappingProxyType({**_REFERENCE_RULE, "rungs": "optuna"}),
        # The README's recommended options ("P33"): forecast the final value, rank among
        # forecasts, residual target, decide at a quarter of each rung, refit on every curve.
        "p33": MappingProxyType(
            {
                "mode": "paper",
                "forecast_final": True,
                "rank_quantile": 0.3334,
                "residual_target": True,
                "known_curve": 0.25,
                "min_train_curves": 5,
                "full_fraction": 0.0,
                "refit_every": 1,
            }
        ),
    }
)


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


def method_names(option_sets: Mapping[str, Mapping[str, Any]] | None = None) -> list[str]:
    """Every method name: :data:`METHODS`, then ``swift:NAME`` for each named option set.

    Args:
        option_sets:
            Named option sets besides :data:`OPTION_SETS` (they win on a shared name).
    """
    return [*METHODS, *(SWIFT_PREFIX + n for n in {**OPTION_SETS, **(option_sets or {})})]


def method_argument(name: str) -> str:
    """``argparse`` type of a ``--pruner`` option: ``name`` if :func:`check_methods` accepts
    it, else an ``ArgumentTypeError`` with its message (one line, exit status 2)."""
    import argparse

    try:
        check_methods([name])
    except BenchmarkError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return name


def check_methods(
    methods: Sequence[str], option_sets: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """Raise :class:`BenchmarkError` for an unknown method or a Swift method not installed.

    Args:
        methods:
            Names from :data:`METHODS`, ``i-epoch-K`` for any ``K >= 1``, or ``swift:NAME``
            for a named option set.
        option_sets:
            Named option sets besides :data:`OPTION_SETS`.
    """
    sets = {**OPTION_SETS, **(option_sets or {})}
    unknown = [m for m in methods if not _known(m, sets)]
    if unknown:
        raise BenchmarkError(
            f"unknown method(s) {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(method_names(option_sets))} (or i-epoch-K)"
        )
    if not methods:
        raise BenchmarkError("no method given")
    repeated = sorted({m for m in methods if list(methods).count(m) > 1})
    if repeated:
        raise BenchmarkError(f"method(s) given twice: {', '.join(repeated)}")
    if any(m in SWIFT_METHODS or m.startswith(SWIFT_PREFIX) for m in methods):
        _swift_pruner_class()


def _known(method: str, sets: Mapping[str, Any]) -> bool:
    if method in METHODS or _I_EPOCH.fullmatch(method):
        return True
    return method.startswith(SWIFT_PREFIX) and method[len(SWIFT_PREFIX) :] in sets


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
    option_sets: Mapping[str, Mapping[str, Any]] | None = None,
) -> optuna.pruners.BasePruner:
    """The pruner of a method, by its name on the command lines, sized to an epoch budget.

    The benchmark, the ``optuna-qsvr worker`` command and the studies all build their pruners
    here, so a method means the same pruner everywhere. Every pruner gets the same
    ``min_resource`` (the median-type pruners' warm-up), ``max_resource`` and
    ``reduction_factor``.

    Args:
        name:
            ``none`` (no pruning), ``median`` (``MedianPruner``), ``percentile``
            (``PercentilePruner(25.0)``), ``patient`` (``PatientPruner`` around the median
            pruner, patience 3), ``sha`` and ``hyperband`` (Optuna's pruners), ``i-epoch-K``
            (:class:`EarlyDiscardingPruner` at epoch ``K``), ``swift-svr`` and ``swift-qsvr``
            (:class:`~optuna_qsvr.SwiftHyperbandPruner` with its defaults and the classical
            or the quantum-annealed predictor), ``swift:NAME`` (the pruner with the option
            set ``NAME``, predictor ``"svr"`` unless the set names one), ``oracle``
            (:class:`OraclePruner`).
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
            Extra keyword arguments of ``SwiftHyperbandPruner`` for ``swift-svr`` and
            ``swift-qsvr`` (``swift:NAME`` methods take theirs from the set).
        table:
            The replayed table, whose final values the ``oracle`` reads.
        option_sets:
            Named option sets besides :data:`OPTION_SETS`.

    Raises:
        BenchmarkError: The name is unknown, a swift method cannot be imported or rejects
            its options, or ``oracle`` has no table.
    """
    check_methods([name], option_sets)
    if name == "oracle":
        if table is None:
            raise BenchmarkError("the oracle method needs the replayed table's final values")
        return OraclePruner(table.finals)
    if name in SWIFT_METHODS or name.startswith(SWIFT_PREFIX):
        return _swift_pruner(
            name,
            max_resource,
            min_resource,
            reduction_factor,
            annealer,
            swift_options,
            option_sets,
        )
    epoch = _I_EPOCH.fullmatch(name)
    if epoch:
        return EarlyDiscardingPruner(int(epoch.group(1)))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=min_resource, max_resource=max_resource, reduction_factor=reduction_factor
        )
    if name == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=min_resource, reduction_factor=reduction_factor
        )
    if name == "median":
        return _median(min_resource)
    if name == "percentile":
        return optuna.pruners.PercentilePruner(
            25.0, n_startup_trials=5, n_warmup_steps=min_resource
        )
    if name == "patient":
        with warnings.catch_warnings():
            # Experimental since Optuna 2.8 and unchanged since: the benchmark knows.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.pruners.PatientPruner(_median(min_resource), patience=3)
    # "none": check_methods admits no other name.
    return optuna.pruners.NopPruner()


def _median(min_resource: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=min_resource)


def _swift_pruner(
    name: str,
    max_resource: int,
    min_resource: int,
    reduction_factor: int,
    annealer: str | None,
    swift_options: Mapping[str, Any] | None,
    option_sets: Mapping[str, Mapping[str, Any]] | None,
) -> optuna.pruners.BasePruner:
    if name.startswith(SWIFT_PREFIX):
        options = dict({**OPTION_SETS, **(option_sets or {})}[name[len(SWIFT_PREFIX) :]])
        predictor: object = options.pop("predictor", "svr")
    else:
        options = dict(swift_options or {})
        predictor = name.removeprefix("swift-")
    cls = _swift_pruner_class()
    if options.get("mode") == "paper" and "mode" not in inspect.signature(cls).parameters:
        del options["mode"]
    if predictor == "qsvr" and annealer is not None:
        from optuna_qsvr import QSVRPredictor

        predictor = QSVRPredictor(annealer=annealer)
    try:
        return cls(
            min_resource=min_resource,
            max_resource=max_resource,
            reduction_factor=reduction_factor,
            predictor=predictor,
            **options,
        )
    except (TypeError, ValueError) as e:
        if isinstance(e, BenchmarkError):
            raise
        raise BenchmarkError(
            f"method {name}: SwiftHyperbandPruner rejects its options: {e}"
        ) from e
