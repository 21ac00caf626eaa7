"""Decision rules: the parts that turn a forecast into keep or prune.

A rule sees one trial's forecast and its rung in a :class:`DecisionContext` (every value is
minimised: the pruner flips signs for maximisation) and returns a :class:`Verdict`, or ``None``
when it has nothing to say. Rules know nothing about storage, studies or predictors, so each is
tested alone.

The pruner asks the rules of its chain in order. The first rule that keeps the trial decides,
with its reason; if none keeps it, the trial is pruned and every rule's reason is recorded.
A chain is a plain list, e.g. ``[ThresholdRule(), ConfidenceRule(0.95), RungTopRule()]``:
its order is its precedence.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class DecisionContext:
    """What a rule may know about one forecast decision (all values minimised).

    Args:
        forecast: the trial's forecast value at the key's target step.
        sigma: the forecast's standard error (``NaN`` when the predictor has none).
        threshold: the value a forecast must beat (see :func:`rung_threshold`).
        reduction_factor: Hyperband's ``eta``.
        rung_values: observed values at the target step of the rung's other trials
            (non-finite values as ``inf``).
        rung_forecasts: forecasts recorded for the rung's other trials.
        others_forecasts: computes forecasts for the most recent trials of any bracket that
            reached the decision step, from their curves; called only by rules that rank
            among them.
        p_beat: the calibrated probability that the trial's value at the target step beats
            the threshold (``NaN`` when the predictor has no error model).
    """

    forecast: float
    sigma: float
    threshold: float
    reduction_factor: int
    rung_values: Sequence[float] = ()
    rung_forecasts: Sequence[float] = ()
    others_forecasts: Callable[[], np.ndarray] = field(default=lambda: np.empty(0))
    p_beat: float = math.nan


@dataclass(frozen=True)
class Verdict:
    """A rule's answer: keep (``True``) or prune, why, and fields to add to the record."""

    keep: bool
    reason: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class DecisionRule(Protocol):
    """The protocol of a decision rule: a name and ``decide(context) -> Verdict | None``."""

    name: str

    def decide(self, context: DecisionContext) -> Verdict | None: ...


@dataclass(frozen=True)
class ThresholdRule:
    """Keep a trial whose forecast beats the threshold (the reference's rule)."""

    name: str = "threshold"

    def decide(self, context: DecisionContext) -> Verdict:
        keep = context.forecast <= context.threshold
        return Verdict(keep, "forecast beats threshold" if keep else "forecast loses to threshold")


@dataclass(frozen=True)
class ConfidenceRule:
    """Baker et al.'s rule: keep while ``P(value beats threshold) >= 1 - confidence`` under a
    normal forecast error with the predictor's cross-validated ``sigma``.

    Args:
        confidence: Baker's ``Delta``, in ``[0.5, 1)``.
    """

    confidence: float
    name: str = "confidence"

    def __post_init__(self) -> None:
        if not 0.5 <= self.confidence < 1.0:
            raise ValueError(f"confidence must be in [0.5, 1), got {self.confidence}")

    def decide(self, context: DecisionContext) -> Verdict | None:
        sigma = context.sigma
        if not (math.isfinite(sigma) and sigma > 0):
            return None  # no error estimate: nothing to add to the threshold rule
        p_beat = _normal_cdf((context.threshold - context.forecast) / sigma)
        floor = 1.0 - self.confidence
        keep = p_beat >= floor
        relation = ">=" if keep else "<"
        return Verdict(
            keep, f"P(beats threshold) {p_beat:.3f} {relation} {floor:.3f}", {"p_beat": p_beat}
        )


@dataclass(frozen=True)
class RungTopRule:
    """Keep a forecast within the rung's top ``1/eta``, ranked among the rung's observed values
    and recorded forecasts: asynchronous successive halving has no pause to "top up" a rung,
    so a trial that would be promoted at ``r_i`` is not stopped before it."""

    name: str = "rung-top"

    def decide(self, context: DecisionContext) -> Verdict:
        ranked = sorted([*context.rung_values, *context.rung_forecasts, context.forecast])
        keep = context.forecast <= ranked[_top_index(len(ranked), context.reduction_factor)]
        eta = context.reduction_factor
        return Verdict(keep, f"forecast {'within' if keep else 'outside'} top 1/{eta}")


@dataclass(frozen=True)
class RankRule:
    """Keep a forecast within the top ``quantile`` of the forecasts of the most recent trials
    (any bracket) that reached the decision step. Those forecasts share the predictor's biases,
    which observed values do not.

    Args:
        quantile: the top fraction kept, in ``(0, 1)``.
        min_peers: with fewer other trials to rank among, the trial is kept.
    """

    quantile: float
    min_peers: int = 5
    name: str = "rank"

    def __post_init__(self) -> None:
        if not 0.0 < self.quantile < 1.0:
            raise ValueError(f"rank quantile must be in (0, 1), got {self.quantile}")

    def decide(self, context: DecisionContext) -> Verdict:
        others = np.asarray(context.others_forecasts(), dtype=float)
        if len(others) < self.min_peers:
            return Verdict(True, f"only {len(others)} other trials reached the step to rank among")
        rank = int(np.sum(others < context.forecast)) + 1
        allowed = math.ceil(self.quantile * (len(others) + 1))
        keep = rank <= allowed
        verdict = "within" if keep else "outside"
        return Verdict(
            keep, f"forecast ranks {rank} of {len(others) + 1}, {verdict} top {allowed}"
        )


@dataclass(frozen=True)
class ChanceRule:
    """The forecast mode's rule: keep a trial while the calibrated probability that it beats
    the threshold (the rung's promotion bar, or the ``k``-th best final value) is at least
    ``alpha``; abstain (keep) when the predictor has no error model.

    Args:
        alpha: the smallest chance worth training for, in ``(0, 0.5)``.
    """

    alpha: float
    name: str = "chance"

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {self.alpha}")

    def decide(self, context: DecisionContext) -> Verdict | None:
        p = context.p_beat
        if not math.isfinite(p):
            return None
        keep = p >= self.alpha
        relation = ">=" if keep else "<"
        return Verdict(
            keep, f"P(beats threshold) {p:.3f} {relation} {self.alpha:g}", {"p_beat": p}
        )


@dataclass(frozen=True)
class RescueRule(RungTopRule):
    """At a rung's end, keep a trial that successive halving stops when its forecast ranks
    within the top ``1/eta`` of its rung-mates' forecasts: the late bloomers that observed
    values alone would lose."""

    name: str = "rescue"


def default_rules(
    *, confidence: float | None, rank_quantile: float | None, forecast_final: bool
) -> tuple[DecisionRule, ...]:
    """The chain that the pruner's keyword options stand for.

    The threshold first; Baker's confidence when given; then a rank among forecasts when
    ``rank_quantile`` is given, else the rung's top ``1/eta`` (which compares values at the
    rung's end, so it does not apply to forecasts of the final value).
    """
    rules: list[DecisionRule] = [ThresholdRule()]
    if confidence is not None:
        rules.append(ConfidenceRule(confidence))
    if rank_quantile is not None:
        rules.append(RankRule(rank_quantile))
    elif not forecast_final:
        rules.append(RungTopRule())
    return tuple(rules)


def apply_rules(rules: Sequence[DecisionRule], context: DecisionContext) -> Verdict:
    """Ask ``rules`` in order; the first that keeps decides, else prune with every reason.
    When every rule abstains the trial is kept: without a verdict, Hyperband decides."""
    reasons: list[str] = []
    extra: dict[str, Any] = {}
    for rule in rules:
        verdict = rule.decide(context)
        if verdict is None:
            continue
        _check_verdict(rule, verdict)
        extra.update(verdict.extra)
        if verdict.keep:
            return Verdict(True, verdict.reason, extra)
        reasons.append(verdict.reason)
    if not reasons:
        return Verdict(True, "no rule decided: Hyperband decides", extra)
    return Verdict(False, "; ".join(reasons), extra)


def _check_verdict(rule: DecisionRule, verdict: Any) -> None:
    """Raise unless ``verdict`` can go into a decision record: the record is stored as JSON,
    and a user's rule that breaks this must fail its decision, not the storage write."""
    name = rule.name
    if not isinstance(verdict, Verdict) or not isinstance(verdict.reason, str):
        raise TypeError(f"rule {name!r} returned {verdict!r}, not a Verdict with a str reason")
    extra = verdict.extra
    if not isinstance(extra, Mapping) or not all(isinstance(k, str) for k in extra):
        raise TypeError(f"rule {name!r}: Verdict.extra must map str keys to JSON values")
    try:
        json.dumps(dict(extra), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"rule {name!r}: Verdict.extra is not finite JSON data: {err}") from err


def rung_threshold(
    full_values: Sequence[float],
    target_values: Sequence[float],
    quantile: float,
    *,
    final: bool,
) -> tuple[float, str]:
    """The value a forecast must beat, and where it comes from.

    For forecasts of the final value, the best final value so far (Baker et al.). Otherwise the
    ``quantile`` of the rung's full trainings' values at ``r_i``, or of every curve of the key
    while the rung has none. Both lists hold finite values only.
    """
    if final:
        return min(target_values), "best final value so far"
    basis = "rung full trainings" if full_values else "all curves of key"
    return float(np.quantile(list(full_values or target_values), quantile)), basis


def needs_full_training(
    *,
    n_curves: int,
    n_in_flight: int,
    min_train_curves: int,
    n_full: int,
    n_decided: int,
    full_fraction: float,
    reduction_factor: int,
) -> str | None:
    """Why the trial must train on without a forecast, or ``None``.

    Until ``min_train_curves`` curves exist (counting full trainings still running) the
    predictor cannot be fitted; and about ``full_fraction / eta`` of a rung's decisions train
    on, to keep the threshold's sample unbiased by the forecasts.
    """
    if n_curves + n_in_flight < min_train_curves:
        return f"training curves {n_curves}+{n_in_flight} of {min_train_curves}"
    quota = math.ceil(full_fraction * (n_decided + 1) / reduction_factor)
    if n_full < quota:
        return f"full quota {n_full} of {quota}"
    return None


def asha_promotes(
    own: float | None, competing: Sequence[float], reduction_factor: int
) -> tuple[bool, int, int]:
    """Successive halving at ``r_i``: whether ``own`` is within the top ``1/eta`` of itself and
    ``competing`` (the rung's other values), its rank and the rung's size. A missing or
    non-finite own value is never promoted."""
    value = own if own is not None else math.inf
    below = sum(v < value for v in competing)
    return asha_standing(value, below, len(competing), reduction_factor)


def asha_standing(
    value: float, below: int, others: int, reduction_factor: int
) -> tuple[bool, int, int]:
    """:func:`asha_promotes` from counts: ``below`` of the ``others`` values are smaller than
    ``value``. Within the top ``1/eta`` of ``others + 1`` values means at most ``_top_index``
    values ahead of it (ties share the better rank)."""
    n = others + 1
    promoted = below <= _top_index(n, reduction_factor) and math.isfinite(value)
    return promoted, below + 1, n


def _top_index(n: int, reduction_factor: int) -> int:
    # The last index kept when 1/eta of n values are kept; at least the best one.
    return max(n // reduction_factor - 1, 0)


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))
