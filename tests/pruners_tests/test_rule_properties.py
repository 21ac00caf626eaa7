"""Properties of the decision rules (Hypothesis), without a study.

Dominance, stated precisely. Every value a rule sees is minimised. For one decision context
(the same threshold, sigma, eta, rung values, rung forecasts and peer forecasts), each built-in
rule is *monotone in the forecast*: if it keeps a forecast ``f`` it keeps every ``f' <= f``.
This holds for :class:`ThresholdRule`, :class:`ConfidenceRule` (for a fixed ``sigma``; it
abstains alike for both when ``sigma`` is unusable), :class:`RungTopRule` and
:class:`RankRule`, and so for any chain of them under :func:`apply_rules` (the first rule that
kept the worse forecast keeps the better one, unless an earlier rule already did). ASHA's
promotion (:func:`asha_promotes`) is monotone in the trial's own value the same way.

So a trial whose curve is better at every step than a kept trial's is never pruned by a rule
that kept the other *when its forecast is no worse*: true for any predictor monotone in the
curve (the last value, a mean of the curve), tested on a real study in
``test_pruner_properties.py``. It is not a property of the pruner as a whole: an RBF SVR is
not monotone in its input, and two trials decided at different times see different rung
values, thresholds and full-training quotas.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optuna_qsvr.pruners import (
    ConfidenceRule,
    DecisionContext,
    RankRule,
    RungTopRule,
    ThresholdRule,
    apply_rules,
)
from optuna_qsvr.pruners._rules import asha_promotes, needs_full_training, rung_threshold
from tests._hypothesis import props

PROPS = props(200)

values = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
values_or_inf = st.one_of(values, st.just(math.inf))
sigmas = st.one_of(st.floats(1e-3, 1e3), st.just(math.nan), st.just(0.0))


@st.composite
def contexts(draw, sigma=sigmas) -> tuple[DecisionContext, float]:
    """A decision context and a second forecast no worse than its own."""
    forecast = draw(values)
    better = forecast - draw(st.floats(0, 1e3))
    others = np.array(draw(st.lists(values, max_size=20)))
    context = DecisionContext(
        forecast=forecast,
        sigma=draw(sigma),
        threshold=draw(values),
        reduction_factor=draw(st.integers(2, 5)),
        rung_values=draw(st.lists(values_or_inf, max_size=15)),
        rung_forecasts=draw(st.lists(values, max_size=15)),
        others_forecasts=lambda: others,
    )
    return context, better


RULES = [
    ThresholdRule(),
    ConfidenceRule(0.5),
    ConfidenceRule(0.9),
    ConfidenceRule(0.99),
    RungTopRule(),
    RankRule(0.2),
    RankRule(0.5, min_peers=0),
    RankRule(0.9, min_peers=3),
]
CHAINS = [
    [ThresholdRule(), RungTopRule()],
    [ThresholdRule(), ConfidenceRule(0.9), RungTopRule()],
    [ThresholdRule(), ConfidenceRule(0.8), RankRule(0.3)],
    [RankRule(0.25), ThresholdRule()],
    [ConfidenceRule(0.9)],  # abstains without a usable sigma
]


def _with_forecast(context: DecisionContext, forecast: float) -> DecisionContext:
    return DecisionContext(
        forecast=forecast,
        sigma=context.sigma,
        threshold=context.threshold,
        reduction_factor=context.reduction_factor,
        rung_values=context.rung_values,
        rung_forecasts=context.rung_forecasts,
        others_forecasts=context.others_forecasts,
    )


@PROPS
@given(contexts(), st.sampled_from(RULES))
def test_each_rule_keeps_a_better_forecast_if_it_kept_the_worse(case, rule) -> None:
    context, better = case
    worse_verdict = rule.decide(context)
    better_verdict = rule.decide(_with_forecast(context, better))
    # Abstaining depends on sigma only, never on the forecast.
    assert (worse_verdict is None) == (better_verdict is None)
    if worse_verdict is not None and worse_verdict.keep:
        assert better_verdict.keep, (rule, context, better)


@PROPS
@given(contexts(), st.sampled_from(CHAINS))
def test_a_chain_keeps_a_better_forecast_if_it_kept_the_worse(case, chain) -> None:
    context, better = case
    if apply_rules(chain, context).keep:
        assert apply_rules(chain, _with_forecast(context, better)).keep


@PROPS
@given(contexts(), st.sampled_from(CHAINS))
def test_the_first_keeping_rule_decides(case, chain) -> None:
    context, _ = case
    verdicts = [rule.decide(context) for rule in chain]
    decided = [v for v in verdicts if v is not None]
    keeping = [v for v in decided if v.keep]
    result = apply_rules(chain, context)
    if not decided:  # every rule abstained: Hyperband decides, the trial trains on
        assert result.keep and result.reason == "no rule decided: Hyperband decides"
    elif keeping:
        assert result.keep and result.reason == keeping[0].reason
    else:
        assert not result.keep
        assert result.reason == "; ".join(v.reason for v in decided)
    assert set(result.extra) <= {k for verdict in decided for k in verdict.extra}


@PROPS
@given(contexts(sigma=st.floats(1e-3, 1e3)))
def test_confidence_rule_is_the_normal_probability_of_beating_the_threshold(case) -> None:
    context, _ = case
    z = (context.threshold - context.forecast) / context.sigma
    p = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    for confidence in (0.5, 0.8, 0.95):
        verdict = ConfidenceRule(confidence).decide(context)
        assert verdict.extra["p_beat"] == pytest.approx(p, abs=1e-12)
        if abs(p - (1 - confidence)) > 1e-9:
            assert verdict.keep == (p >= 1 - confidence)
    # Delta = 0.5 keeps exactly the forecasts that beat the threshold, as the threshold rule
    # (away from a gap so small against sigma that erfc rounds it to nothing).
    if abs(z) > 1e-9:
        half = ConfidenceRule(0.5).decide(context).keep
        assert half == ThresholdRule().decide(context).keep


@PROPS
@given(contexts(sigma=st.floats(1e-3, 1e3)))
def test_a_higher_confidence_keeps_more(case) -> None:
    context, _ = case
    kept = [ConfidenceRule(c).decide(context).keep for c in (0.5, 0.7, 0.9, 0.99)]
    assert kept == sorted(kept)  # once kept, kept for every higher confidence


@PROPS
@given(contexts())
def test_rung_top_keeps_the_top_fraction_of_the_rung(case) -> None:
    context, _ = case
    eta = context.reduction_factor
    rung = [*context.rung_values, *context.rung_forecasts]
    n = len(rung) + 1
    n_better = sum(v < context.forecast for v in rung)
    # Kept when fewer than max(n // eta, 1) entries are strictly better (ties count for it).
    assert RungTopRule().decide(context).keep == (n_better < max(n // eta, 1))


@PROPS
@given(contexts(), st.floats(0.01, 0.99))
def test_rank_rule_keeps_the_top_quantile_of_peer_forecasts(case, quantile) -> None:
    context, _ = case
    others = context.others_forecasts()
    verdict = RankRule(quantile, min_peers=0).decide(context)
    rank = 1 + int(np.sum(others < context.forecast))
    assert verdict.keep == (rank <= math.ceil(quantile * (len(others) + 1)))
    # A larger quantile keeps at least as much.
    if verdict.keep:
        assert RankRule(min(quantile + 0.005, 0.995), min_peers=0).decide(context).keep
    if len(others) < 5:
        assert RankRule(quantile).decide(context).keep


@PROPS
@given(
    values_or_inf,
    st.floats(0, 1e3),
    st.lists(values_or_inf, max_size=30),
    st.integers(2, 5),
)
def test_asha_promotes_a_better_value_if_it_promoted_the_worse(own, delta, competing, eta) -> None:
    promoted, rank, of = asha_promotes(own, competing, eta)
    assert of == len(competing) + 1
    assert rank == 1 + sum(v < own for v in competing)
    assert promoted == (math.isfinite(own) and rank <= max(of // eta, 1))
    better = own - delta
    if promoted:
        assert asha_promotes(better, competing, eta)[0]


@PROPS
@given(st.lists(values, min_size=1, max_size=30), st.floats(0.01, 0.99))
def test_rung_threshold_is_the_quantile_of_full_trainings_else_of_all_curves(
    curves, quantile
) -> None:
    full = curves[: len(curves) // 2]
    tau, basis = rung_threshold(full, curves, quantile, final=False)
    source = full or curves
    assert tau == pytest.approx(float(np.quantile(source, quantile)))
    assert basis == ("rung full trainings" if full else "all curves of key")
    assert min(source) <= tau <= max(source)
    final, basis = rung_threshold(full, curves, quantile, final=True)
    assert (final, basis) == (min(curves), "best final value so far")


@PROPS
@given(
    n_curves=st.integers(0, 50),
    n_in_flight=st.integers(0, 10),
    min_train_curves=st.integers(3, 40),
    n_full=st.integers(0, 20),
    n_decided=st.integers(0, 60),
    full_fraction=st.floats(0.0, 1.0),
    eta=st.integers(2, 5),
)
def test_needs_full_training_until_curves_and_quota(
    n_curves, n_in_flight, min_train_curves, n_full, n_decided, full_fraction, eta
) -> None:
    why = needs_full_training(
        n_curves=n_curves,
        n_in_flight=n_in_flight,
        min_train_curves=min_train_curves,
        n_full=n_full,
        n_decided=n_decided,
        full_fraction=full_fraction,
        reduction_factor=eta,
    )
    quota = math.ceil(full_fraction * (n_decided + 1) / eta)
    if n_curves + n_in_flight < min_train_curves:
        assert why == f"training curves {n_curves}+{n_in_flight} of {min_train_curves}"
    elif n_full < quota:
        assert why == f"full quota {n_full} of {quota}"
    else:
        assert why is None
    if full_fraction == 0.0 and n_curves >= min_train_curves:
        assert why is None  # no quota at all


# -- edges, by example ----------------------------------------------------------------------
def _at(forecast: float, threshold: float, sigma: float = 0.1, p_beat: float = math.nan):
    return DecisionContext(
        forecast=forecast, sigma=sigma, threshold=threshold, reduction_factor=3, p_beat=p_beat
    )


def test_confidence_keeps_a_probability_exactly_at_its_floor() -> None:
    # forecast == threshold: P(beat) = 0.5, and Delta = 0.5 needs P >= 0.5.
    verdict = ConfidenceRule(0.5).decide(_at(0.3, 0.3))
    assert verdict.keep and verdict.reason == "P(beats threshold) 0.500 >= 0.500"
    verdict = ConfidenceRule(0.5).decide(_at(0.31, 0.3))
    assert not verdict.keep and verdict.reason == "P(beats threshold) 0.460 < 0.500"


@pytest.mark.parametrize("quantile", [0.0, 1.0, -0.1, 1.5])
def test_rank_quantile_must_lie_strictly_between_0_and_1(quantile) -> None:
    with pytest.raises(ValueError, match="rank quantile"):
        RankRule(quantile)
    assert RankRule(0.001).quantile == 0.001 and RankRule(0.999).quantile == 0.999


def test_chance_rule_keeps_a_chance_of_at_least_alpha() -> None:
    from optuna_qsvr.pruners._rules import ChanceRule

    rule = ChanceRule(0.1)
    kept = rule.decide(_at(0.5, 0.3, p_beat=0.1))
    assert kept.keep and kept.reason == "P(beats threshold) 0.100 >= 0.1"
    assert kept.extra == {"p_beat": 0.1}
    pruned = rule.decide(_at(0.5, 0.3, p_beat=0.0999))
    assert not pruned.keep and pruned.reason == "P(beats threshold) 0.100 < 0.1"
    assert rule.decide(_at(0.5, 0.3, p_beat=math.nan)) is None
    for alpha in (0.0, 0.5, -0.1, 0.7):
        with pytest.raises(ValueError, match="alpha"):
            ChanceRule(alpha)
    assert ChanceRule(0.001).alpha == 0.001 and ChanceRule(0.499).alpha == 0.499


def test_rules_that_all_abstain_leave_the_decision_to_hyperband() -> None:
    verdict = apply_rules([ConfidenceRule(0.9)], _at(0.9, 0.1, sigma=math.nan))
    assert verdict.keep and verdict.reason == "no rule decided: Hyperband decides"
