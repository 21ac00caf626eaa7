"""From a rung's trials to a decision record: Swift-Hyperband's rung bookkeeping, without
storage. The pruner reads the trials once, these functions decide, the pruner writes the record.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.trial import TrialState

from optuna_qsvr import _records
from optuna_qsvr.predictors._base import BasePredictor
from optuna_qsvr.pruners import _curves, _rules
from optuna_qsvr.pruners._schedule import Rung

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from optuna_qsvr.pruners._options import SwiftOptions

GetPredictor = Callable[[str, "list[FrozenTrial]"], "tuple[BasePredictor | None, str]"]


@dataclass(frozen=True)
class RungView:
    """What one decision looks at.

    Args:
        trial: the trial being decided.
        rung: its rung.
        sign: ``1`` to minimise, ``-1`` to maximise: every comparison is on ``sign * value``.
        others: every other trial of the study.
        peers: the others of the trial's bracket (its rung-mates).
    """

    trial: FrozenTrial
    rung: Rung
    sign: float
    others: list[FrozenTrial]
    peers: list[FrozenTrial]


def promotion_record(view: RungView, reduction_factor: int) -> dict[str, Any]:
    """ASHA at ``r_i``: promoted when within the top ``1/eta`` of the bracket's rung."""
    rung, sign = view.rung, view.sign
    value = _curves.value_at(view.trial, rung.budget, sign)
    competing = []
    for t in view.peers:
        v = _curves.value_at(t, rung.budget, sign)
        # A rung-mate stopped on a forecast still belongs to the rung: successive halving
        # keeps 1/eta of the whole rung, not of the forecast's survivors.
        v = _pruned_forecast(t, rung, sign) if v is None else v
        if v is not None:
            competing.append(v)
    promoted, rank, of = _rules.asha_promotes(value, competing, reduction_factor)
    finite = value is not None and math.isfinite(value)
    return _records.new_promotion(
        rung=rung.index,
        budget=rung.budget,
        step=view.trial.last_step,
        value=sign * value if finite else None,
        promoted=promoted,
        rank=rank,
        of=of,
    )


def forecast_record(
    view: RungView,
    options: SwiftOptions,
    target: int,
    get_predictor: GetPredictor,
    warn: Callable[[str, str], None],
) -> dict[str, Any]:
    """The decision at the rung's decision step: ``full`` (train on without a forecast),
    ``no-forecast`` (no predictor or no usable forecast: ASHA decides at ``r_i``), or the
    rules' ``kept``/``pruned`` with the forecast and threshold."""
    rung, sign, trial = view.rung, view.sign, view.trial
    assert rung.decision_step is not None
    t_star = rung.decision_step
    key = _records.predictor_key(target, t_star)
    peer_records = [
        r for t in view.peers if (r := _records.decision_of(t.system_attrs, rung.index))
    ]
    pool = [t for t in view.others if _curves.has_curve(t, t_star, target)]
    record = _records.new_decision(
        bracket=rung.bracket,
        rung=rung.index,
        budget=rung.budget,
        decision_step=t_star,
        step=trial.last_step,
        key=key,
    )
    why_full = _rules.needs_full_training(
        n_curves=len(pool),
        n_in_flight=sum(_in_flight_full(t, key, t_star, target) for t in view.others),
        min_train_curves=options.min_train_curves,
        n_full=sum(r["decision"] == "full" for r in peer_records),
        n_decided=len(peer_records),
        full_fraction=options.full_fraction,
        reduction_factor=options.reduction_factor,
    )
    if why_full is not None:
        return dict(record, decision="full", reason=why_full)
    try:
        own_curve = _curves.curve(trial, t_star, sign)
    except ValueError as err:
        return dict(record, decision="no-forecast", reason=f"the trial's curve: {err}")
    predictor, why = get_predictor(key, pool)
    if predictor is None:
        return dict(record, decision="no-forecast", reason=why)
    try:
        mean, std = predictor.predict(own_curve[None, :], [trial.params])
        forecast, sigma = float(mean[0]), float(std[0])
        if not math.isfinite(forecast):
            raise ValueError(f"non-finite forecast {forecast}")
    except Exception as err:  # A broken predictor must never crash the trial.
        reason = f"predictor failed: {type(err).__name__}: {err}"
        warn(key, reason)
        return dict(record, decision="no-forecast", reason=reason)

    def values_at_target(trials: list[FrozenTrial]) -> list[float]:
        return [v for t in trials if (v := _curves.value_at(t, target, sign)) is not None]

    def finite(values: list[float]) -> list[float]:
        return [v for v in values if math.isfinite(v)]

    full_peers = [
        t
        for t in view.peers
        if (_records.decision_of(t.system_attrs, rung.index) or {}).get("decision") == "full"
    ]
    tau, basis = _rules.rung_threshold(
        finite(values_at_target(full_peers)),
        finite(values_at_target(pool)),
        options.threshold_quantile,
        final=options.forecast_final,
    )

    def others_forecasts() -> np.ndarray:
        # The most recent trials that reached t*: a bounded batch however large the study.
        reached = [
            t
            for t in view.others
            if t_star in t.intermediate_values and math.isfinite(t.intermediate_values[t_star])
        ][-5 * options.max_train_curves :]
        if not reached:
            return np.empty(0)
        curves = np.vstack([_curves.curve(t, t_star, sign) for t in reached])
        return predictor.predict(curves, [t.params for t in reached])[0]

    context = _rules.DecisionContext(
        forecast=forecast,
        sigma=sigma,
        threshold=tau,
        reduction_factor=options.reduction_factor,
        rung_values=values_at_target(view.peers),
        rung_forecasts=[sign * r["forecast"] for r in peer_records if r["forecast"] is not None],
        others_forecasts=others_forecasts,
    )
    record.update(forecast=sign * forecast, threshold=sign * tau, threshold_basis=basis)
    try:
        verdict = _rules.apply_rules(options.rules, context)
    except Exception as err:  # A broken rule falls back to ASHA, like a broken predictor.
        reason = f"rule failed: {type(err).__name__}: {err}"
        warn(key, reason)
        return dict(record, decision="no-forecast", reason=reason)
    decision = "kept" if verdict.keep else "pruned"
    return dict(record, **verdict.extra, decision=decision, reason=verdict.reason)


def _in_flight_full(trial: FrozenTrial, key: str, t_star: int, target: int) -> bool:
    """A running trial that was told to train on without a forecast for ``key``: its curve
    will count, so the rung does not send more trials to full training meanwhile."""
    return (
        trial.state == TrialState.RUNNING
        and not _curves.has_curve(trial, t_star, target)
        and any(
            r["key"] == key and r["decision"] == "full"
            for r in _records.decisions(trial.system_attrs).values()
        )
    )


def _pruned_forecast(trial: FrozenTrial, rung: Rung, sign: float) -> float | None:
    """The forecast value at ``rung.budget`` of a trial pruned on it (``inf`` if the forecast
    was of another step), or ``None`` if the trial was not pruned at this rung."""
    record = _records.decision_of(trial.system_attrs, rung.index)
    if record is None or record["decision"] != "pruned":
        return None
    target = (_records.parse_predictor_key(record["key"]) or (None,))[0]
    if target == rung.budget and record["forecast"] is not None:
        return sign * float(record["forecast"])
    return math.inf
