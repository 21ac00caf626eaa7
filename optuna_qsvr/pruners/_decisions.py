"""From a rung's trials to a decision record: Swift-Hyperband's rung bookkeeping, without
storage. The pruner reads the trials once, these functions decide, the pruner writes the record.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.trial import TrialState

from optuna_qsvr import _records
from optuna_qsvr._secrets import scrub
from optuna_qsvr.predictors._base import BasePredictor
from optuna_qsvr.pruners import _crowd, _curves, _rules
from optuna_qsvr.pruners._model_store import FIT_FAILED
from optuna_qsvr.pruners._schedule import Rung, decision_points
from optuna_qsvr.pruners._trial_index import TrialIndex, sorted_median, stopped_early

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from optuna_qsvr.pruners._options import SwiftOptions

# get_predictor(pool, decision_step, target): the shared predictor of that key, fitted on
# ``pool`` if needed, or None and why there is none.
GetPredictor = Callable[["Sequence[FrozenTrial]", int, int], "tuple[BasePredictor | None, str]"]


class RungView:
    """What one decision looks at.

    Args:
        trial: the trial being decided.
        rung: its rung.
        sign: ``1`` to minimise, ``-1`` to maximise: every comparison is on ``sign * value``.
        others: every other trial of the study (by default, from ``index``).
        peers: the others of the trial's bracket, its rung-mates (by default, from ``index``).
        index: the study's :class:`TrialIndex`; decisions then read what they derive from
            finished trials from it instead of walking ``others``.
    """

    def __init__(
        self,
        trial: FrozenTrial,
        rung: Rung,
        sign: float,
        others: Sequence[FrozenTrial] | None = None,
        peers: Sequence[FrozenTrial] | None = None,
        index: TrialIndex | None = None,
    ) -> None:
        if index is None and (others is None or peers is None):
            raise TypeError("RungView needs others and peers, or an index")
        self.trial, self.rung, self.sign, self.index = trial, rung, sign, index
        self._others, self._peers = others, peers

    @functools.cached_property
    def others(self) -> Sequence[FrozenTrial]:
        if self._others is not None:
            return self._others
        assert self.index is not None
        return self.index.others(self.trial.number)

    @functools.cached_property
    def peers(self) -> Sequence[FrozenTrial]:
        if self._peers is not None:
            return self._peers
        assert self.index is not None
        return self.index.peers(self.rung.bracket, self.trial.number)


def _pool(view: RungView, step: int, target: int) -> Sequence[FrozenTrial]:
    """The other trials that can train a predictor of ``(target, step)``."""
    if view.index is not None:
        return view.index.pool(step, target, view.trial.number)
    return [t for t in view.others if _curves.has_curve(t, step, target)]


def promotion_record(
    view: RungView,
    reduction_factor: int,
    rescue: Callable[[], tuple[bool, str] | None] | None = None,
    *,
    stopped_rank_last: bool = False,
    spare: Callable[[int], tuple[str, _crowd.Crowd] | None] | None = None,
    pooled: bool = False,
) -> dict[str, Any]:
    """ASHA at ``r_i``: promoted when within the top ``1/eta`` of the bracket's rung, or when
    ``rescue()`` (the forecast mode's :class:`RescueRule`) keeps a trial ASHA would stop, or
    when ``spare(step)`` (the forecast mode's second look, :mod:`._crowd`) says why it trains
    on. ``stopped_rank_last`` ranks rung-mates stopped early below every value (forecast
    mode) instead of at their forecast (paper mode). ``pooled`` (the forecast mode's
    ``promote_among="study"``) ranks the trial among every trial's value at ``r_i``, any
    bracket, trials stopped early in a rung ending there below every value: the bar that
    :func:`_rung_bar` gives the forecasts."""
    rung, sign = view.rung, view.sign
    value = _curves.value_at(view.trial, rung.budget, sign)
    if pooled:
        promoted, rank, of = _pooled_standing(view, value, reduction_factor)
        return _promotion(view, value, promoted, rank, of, rescue, spare)

    def value_of(t: FrozenTrial) -> float | None:
        v = _curves.value_at(t, rung.budget, sign)
        # A rung-mate stopped on a forecast still belongs to the rung: successive halving
        # keeps 1/eta of the whole rung, not of the forecast's survivors. The paper mode
        # ranks it by its forecast at r_i; the forecast mode stopped it for having little
        # chance, so it ranks below every trial that reached r_i.
        if v is None:
            v = _stopped_here(t, rung) if stopped_rank_last else _pruned_forecast(t, rung, sign)
        return v

    if view.index is not None:
        key = ("promotion", rung.index, sign, stopped_rank_last)
        competing = view.index.competing(
            rung.bracket, rung.budget, key, value_of, view.trial.number
        )
    else:
        competing = [v for t in view.peers if (v := value_of(t)) is not None]
    promoted, rank, of = _rules.asha_promotes(value, competing, reduction_factor)
    return _promotion(view, value, promoted, rank, of, rescue, spare)


def _pooled_standing(
    view: RungView, value: float | None, reduction_factor: int
) -> tuple[bool, int, int]:
    """:func:`_rules.asha_promotes` among every other trial at ``r_i`` (see ``pooled``)."""
    budget, sign = view.rung.budget, view.sign
    own = math.inf if value is None else value
    if view.index is not None:
        below, others = view.index.rung_standing(budget, sign, view.trial.number, own)
    else:
        values, stopped = _walk_rung_values(view, budget)
        below, others = sum(v < own for v in values), len(values) + stopped
    return _rules.asha_standing(own, below, others, reduction_factor)


def _promotion(
    view: RungView,
    value: float | None,
    promoted: bool,
    rank: int,
    of: int,
    rescue: Callable[[], tuple[bool, str] | None] | None,
    spare: Callable[[int], tuple[str, _crowd.Crowd] | None] | None,
) -> dict[str, Any]:
    """The promotion record of ASHA's verdict, then the rescue's and the second look's."""
    rung, sign = view.rung, view.sign
    finite = value is not None and math.isfinite(value)
    record = _records.new_promotion(
        rung=rung.index,
        budget=rung.budget,
        step=view.trial.last_step,
        value=sign * value if finite else None,
        promoted=promoted,
        rank=rank,
        of=of,
    )
    if not promoted and finite and rescue is not None:
        verdict = rescue()
        if verdict is not None:
            rescued, reason = verdict
            record.update(decision="promoted" if rescued else "stopped", rescued=rescued)
            record["reason"] = reason
    if record["decision"] == "stopped" and finite and spare is not None:
        _spared(record, spare(rung.budget), "promoted")
    return record


def _spared(record: dict[str, Any], second: tuple[str, _crowd.Crowd] | None, keep: str) -> None:
    """Turn a stop into ``keep`` when the second look spares the trial, keeping why the stop
    was due in the reason."""
    if second is None:
        return
    why, crowd = second
    stop = record.get("reason") or f"rank {record.get('rank')} of {record.get('of')}"
    record.update(decision=keep, crowd=round(crowd.share, 4), reason=f"{why}; was: {stop}")


def rescue_verdict(
    view: RungView,
    next_budget: int,
    reduction_factor: int,
    get_predictor: GetPredictor,
) -> tuple[bool, str] | None:
    """Whether the forecast of the trial's value at the next rung ranks within the top
    ``1/eta`` of its rung-mates' forecasts (``None``: no predictor yet, Hyperband decides)."""
    rung, sign, trial = view.rung, view.sign, view.trial
    step = rung.budget
    pool = _pool(view, step, next_budget)
    predictor, _ = get_predictor(pool, step, next_budget)
    if predictor is None:
        return None
    mates = [t for t in view.peers if _reached(t, step)]
    rows = [*mates, trial]
    curves = np.vstack([_curves.curve(t, step, sign) for t in rows])
    forecasts = predictor.predict(curves, [t.params for t in rows])[0]
    if not np.all(np.isfinite(forecasts)):
        return None
    context = _rules.DecisionContext(
        forecast=float(forecasts[-1]),
        sigma=math.nan,
        threshold=math.nan,
        reduction_factor=reduction_factor,
        rung_forecasts=[float(f) for f in forecasts[:-1]],
    )
    verdict = _rules.RescueRule().decide(context)
    return verdict.keep, f"rescue: {verdict.reason} of {len(rows)} forecasts at {next_budget}"


def chance_rescue(
    view: RungView,
    options: SwiftOptions,
    next_budget: int,
    get_predictor: GetPredictor,
) -> tuple[bool, str] | None:
    """At ``r_i``, whether a trial that successive halving stops keeps a calibrated chance of
    at least ``rescue_alpha`` to beat both the ``top_k``-th best final value and the next
    rung's promotion bar (the targets with a fitted model; ``None`` when none has one: the
    rank rescue decides).

    Brackets hedge blindly against misleading early values; this hedges by the forecast's
    own uncertainty: where early epochs say little, the interval is wide and the trial trains
    on, where they say much, the cut stands."""
    alpha = options.rescue_alpha
    step, sign, trial = view.rung.budget, view.sign, view.trial
    own = _curves.curve(trial, step, sign)
    targets = [(options.max_resource, *_final_bar(view, options))]
    if next_budget < options.max_resource:
        targets.append((next_budget, *_rung_bar(view, options.reduction_factor, next_budget)))
    reasons = []
    for target, bar, basis in targets:
        if bar is None or not math.isfinite(bar):
            continue
        pool = _pool(view, step, target)
        predictor, _ = get_predictor(pool, step, target)
        if predictor is None:
            continue
        p = float(predictor.prob_below(own[None, :], np.array([bar]), [trial.params])[0])
        if not math.isfinite(p):
            continue
        if p < alpha:
            return False, f"rescue: P(beats {basis}) {p:.3f} < {alpha:g}"
        reasons.append(f"P(beats {basis}) {p:.3f}")
    if not reasons:
        return None
    return True, f"rescue: {', '.join(reasons)} >= {alpha:g}"


def median_rescue(view: RungView, reduction_factor: int) -> tuple[bool, str] | None:
    """MedianPruner's rule at ``r_i``: whether the trial's value there is at least as good as
    the median of every other trial's value there (any bracket; non-finite values rank last).
    ``None`` while fewer than ``reduction_factor`` others have one."""
    budget, sign = view.rung.budget, view.sign
    own = _curves.value_at(view.trial, budget, sign)
    if own is None:
        return None
    if view.index is not None:
        bar, n = view.index.rung_median(budget, sign, view.trial.number)
    else:
        walked = _walk_rung_values(view, budget)[0]
        bar, n = sorted_median(walked), len(walked)
    if n < reduction_factor:
        return None
    keep = math.isfinite(own) and own <= bar
    # No values in the text: the record's own fields carry them, in the objective's sign.
    where = "at least as good as" if keep else "worse than"
    return keep, f"median rescue: {where} the median of {n} values at {budget}"


def checkpoint_due(trial: FrozenTrial, rung: Rung, ratio: float, min_resource: int) -> int | None:
    """The decision point inside ``rung`` that the trial's last report reached, if any.

    Decision points are geometric, ``ceil(min_resource * ratio**k)``, so a trial is judged
    early and often while the rung is young and rarely once it is old; with gaps in the
    reports, a point is taken at the first report past it."""
    step = trial.last_step
    assert step is not None
    earlier = [s for s in trial.intermediate_values if s < step]
    previous = max(earlier, default=0)
    found = None
    for point in decision_points(min_resource, ratio, rung.budget):
        if rung.previous < point and previous < point <= step:
            found = point
    return found


def chance_record(
    view: RungView,
    options: SwiftOptions,
    point: int,
    get_predictor: GetPredictor,
    warn: Callable[[str, str], None],
    spare: Callable[[int], tuple[str, _crowd.Crowd] | None] | None = None,
) -> dict[str, Any] | None:
    """The forecast mode's early decision at decision point ``point``: ``pruned`` when the
    trial's calibrated chance to beat the ``top_k``-th best final value, or the rung's
    promotion bar, is below ``alpha`` and ``spare(point)`` gives no second look; ``no-forecast``
    when the forecast failed; ``kept`` with the last forecast made (the rung's bar when it has
    a model) when it trains on; ``None`` when no target has a model yet (Hyperband decides),
    or ``no-forecast`` with the store's reason when a target's fit failed."""
    rung, sign, trial = view.rung, view.sign, view.trial
    try:
        own = _curves.curve(trial, point, sign)
    except ValueError as err:
        return _chance_base(view, point, options.max_resource) | {
            "decision": "no-forecast",
            "reason": f"the trial's curve: {err}",
        }
    targets = [(options.max_resource, *_final_bar(view, options))]
    if not rung.is_last:
        targets.append((rung.budget, *_rung_bar(view, options.reduction_factor)))
    kept = failed = None
    for target, bar, basis in targets:
        if bar is None or not math.isfinite(bar):
            continue
        pool = _pool(view, point, target)
        predictor, why = get_predictor(pool, point, target)
        if predictor is None:
            if failed is None and why.startswith(FIT_FAILED):
                # Hyperband decides, as while a model is missing, but the trial says why.
                failed = _chance_base(view, point, target) | {
                    "decision": "no-forecast",
                    "reason": why,
                }
            continue
        record = _chance_base(view, point, target)
        try:
            mean, std = predictor.predict(own[None, :], [trial.params])
            p_beat = float(predictor.prob_below(own[None, :], np.array([bar]), [trial.params])[0])
            forecast = float(mean[0])
            if not math.isfinite(forecast):
                raise ValueError(f"non-finite forecast {forecast}")
        except Exception as err:  # A broken predictor must never crash the trial.
            reason = scrub(f"predictor failed: {type(err).__name__}: {err}")
            warn(record["key"], reason)
            return record | {"decision": "no-forecast", "reason": reason}
        context = _rules.DecisionContext(
            forecast=forecast,
            sigma=float(std[0]),
            threshold=bar,
            reduction_factor=options.reduction_factor,
            p_beat=p_beat,
        )
        verdict = _rules.apply_rules(options.rules, context)
        record |= {
            **verdict.extra,
            "forecast": sign * forecast,
            "threshold": sign * bar,
            "threshold_basis": basis,
            "decision": "kept" if verdict.keep else "pruned",
            "reason": verdict.reason,
        }
        if not verdict.keep:
            if spare is not None:
                _spared(record, spare(point), "kept")
            return record
        kept = record
    return kept if kept is not None else failed


def _chance_base(view: RungView, point: int, target: int) -> dict[str, Any]:
    rung = view.rung
    return _records.new_decision(
        bracket=rung.bracket,
        rung=rung.index,
        budget=rung.budget,
        decision_step=point,
        step=view.trial.last_step,
        key=_records.predictor_key(target, point),
    )


def _final_bar(view: RungView, options: SwiftOptions) -> tuple[float | None, str]:
    """The ``top_k``-th best final value of the other trials: a trial that cannot beat it
    cannot change the study's top ``k``."""
    k, sign = options.top_k, view.sign
    if view.index is not None:
        finals = view.index.finals(options.max_resource, sign, k, view.trial.number)
    else:
        finals = sorted(
            v
            for t in view.others
            if (v := _curves.final_value(t, options.max_resource, sign)) is not None
        )
    if len(finals) < k:
        return None, ""
    return finals[k - 1], f"best final value so far (k={k})"


def _rung_bar(
    view: RungView, reduction_factor: int, budget: int | None = None
) -> tuple[float | None, str]:
    """The value successive halving would need at the rung's end: the top ``1/eta`` of every
    trial's value at ``r_i`` (any bracket), counting trials stopped early in a rung ending
    there as below it."""
    budget = view.rung.budget if budget is None else budget
    sign = view.sign

    def pick(n: int, stopped: int) -> int | None:
        if n < reduction_factor:
            return None
        return min(max(math.ceil((n + stopped) / reduction_factor) - 1, 0), n - 1)

    if view.index is not None:
        bar = view.index.rung_value(budget, sign, view.trial.number, pick)
    else:
        values, stopped = _walk_rung_values(view, budget)
        index = pick(len(values), stopped)
        bar = None if index is None else values[index]
    if bar is None:
        return None, ""
    return bar, f"top 1/{reduction_factor} at {budget}"


def _walk_rung_values(view: RungView, budget: int) -> tuple[list[float], int]:
    """Without an index: the other trials' values at ``budget`` (ascending, ``sign`` applied,
    non-finite as ``inf``) and how many stopped early in a rung ending there, as
    :meth:`TrialIndex.rung_value` and :meth:`TrialIndex.rung_standing` read them."""
    values = sorted(
        v for t in view.others if (v := _curves.value_at(t, budget, view.sign)) is not None
    )
    return values, sum(stopped_early(t, budget) for t in view.others)


def _stopped_here(trial: FrozenTrial, rung: Rung) -> float | None:
    """``inf`` for a trial stopped early in ``rung`` (any recorded prune there), else None."""
    record = _records.decision_of(trial.system_attrs, rung.index)
    return math.inf if record is not None and record["decision"] == "pruned" else None


def _reached(trial: FrozenTrial, step: int) -> bool:
    value = trial.intermediate_values.get(step)
    return value is not None and math.isfinite(value)


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
    pool = _pool(view, t_star, target)
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
    predictor, why = get_predictor(pool, t_star, target)
    if predictor is None:
        return dict(record, decision="no-forecast", reason=why)
    try:
        mean, std = predictor.predict(own_curve[None, :], [trial.params])
        forecast, sigma = float(mean[0]), float(std[0])
        if not math.isfinite(forecast):
            raise ValueError(f"non-finite forecast {forecast}")
    except Exception as err:  # A broken predictor must never crash the trial.
        reason = scrub(f"predictor failed: {type(err).__name__}: {err}")
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
        return _with_verdict(record, _rules.apply_rules(options.rules, context))
    except Exception as err:  # A broken rule falls back to ASHA, like a broken predictor.
        reason = scrub(f"rule failed: {type(err).__name__}: {err}")
        warn(key, reason)
        return dict(record, decision="no-forecast", reason=reason)


def _with_verdict(record: dict[str, Any], verdict: _rules.Verdict) -> dict[str, Any]:
    """``record`` with the verdict's decision, reason and extra fields; an extra field may
    add to the record but not overwrite what the pruner wrote (a rule's own error)."""
    clash = sorted(set(verdict.extra) & {*record, "decision", "reason"})
    if clash:
        raise ValueError(f"Verdict.extra would overwrite the record's {clash}")
    decision = "kept" if verdict.keep else "pruned"
    return {**record, **verdict.extra, "decision": decision, "reason": verdict.reason}


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
