"""Each decision rule alone, without a study: forecasts, thresholds and rungs by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optuna_qsvr.pruners import (
    ConfidenceRule,
    DecisionContext,
    DecisionRule,
    RankRule,
    RungTopRule,
    ThresholdRule,
    Verdict,
    apply_rules,
    default_rules,
)
from optuna_qsvr.pruners._rules import asha_promotes, needs_full_training, rung_threshold


def _context(forecast: float, threshold: float = 0.5, **kwargs) -> DecisionContext:
    return DecisionContext(
        forecast=forecast,
        sigma=kwargs.pop("sigma", math.nan),
        threshold=threshold,
        reduction_factor=kwargs.pop("eta", 3),
        **kwargs,
    )


@pytest.mark.parametrize(("forecast", "keep"), [(0.4, True), (0.5, True), (0.5001, False)])
def test_threshold_rule_keeps_a_forecast_at_or_below_the_threshold(forecast, keep) -> None:
    verdict = ThresholdRule().decide(_context(forecast))
    assert verdict.keep is keep
    assert verdict.reason == (
        "forecast beats threshold" if keep else "forecast loses to threshold"
    )


def test_confidence_rule_uses_the_normal_probability_of_beating_the_threshold() -> None:
    # forecast 0.6, threshold 0.5, sigma 0.1: z = -1, P = 0.1587.
    rule = ConfidenceRule(0.85)  # keeps while P >= 0.15
    verdict = rule.decide(_context(0.6, sigma=0.1))
    assert verdict.keep
    assert verdict.extra["p_beat"] == pytest.approx(0.158655, abs=1e-6)
    assert not ConfidenceRule(0.8).decide(_context(0.6, sigma=0.1)).keep  # needs P >= 0.2
    # Twice the error, the same gap: z = -0.5, P = 0.3085 >= 0.2.
    assert ConfidenceRule(0.8).decide(_context(0.6, sigma=0.2)).keep


@pytest.mark.parametrize("sigma", [math.nan, 0.0, -1.0, math.inf])
def test_confidence_rule_abstains_without_a_usable_error(sigma) -> None:
    assert ConfidenceRule(0.95).decide(_context(0.6, sigma=sigma)) is None


@pytest.mark.parametrize("confidence", [0.49, 1.0, 1.5])
def test_confidence_rule_rejects_a_bad_confidence(confidence) -> None:
    with pytest.raises(ValueError, match="confidence"):
        ConfidenceRule(confidence)


def test_rung_top_rule_ranks_among_values_and_forecasts_of_the_rung() -> None:
    # 5 values + 3 forecasts + own = 9 entries, eta 3: the top 3 are kept.
    context = dict(rung_values=[0.1, 0.5, 0.7, 0.9, math.inf], rung_forecasts=[0.2, 0.8, 0.6])
    assert RungTopRule().decide(_context(0.3, **context)).keep  # rank 3 of 9
    assert not RungTopRule().decide(_context(0.55, **context)).keep  # rank 4 of 9
    # The forecasts count: without them 0.55 ranks 3 of 6 (top 2 kept), still out; 0.4 ranks 2.
    assert RungTopRule().decide(_context(0.4, rung_values=context["rung_values"])).keep
    # eta 2 keeps more: 0.55 ranks 4 of 9, within the top 4.
    assert RungTopRule().decide(_context(0.55, eta=2, **context)).keep


def test_rung_top_rule_keeps_a_lone_trial() -> None:
    assert RungTopRule().decide(_context(99.0)).keep


def test_rank_rule_counts_strictly_better_forecasts() -> None:
    others = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])  # 9 others, 10 in all
    rule = RankRule(0.3)  # allowed = ceil(0.3 * 10) = 3
    keep = rule.decide(_context(0.25, others_forecasts=lambda: others))
    assert keep.keep and keep.reason == "forecast ranks 3 of 10, within top 3"
    drop = rule.decide(_context(0.35, others_forecasts=lambda: others))
    assert not drop.keep and drop.reason == "forecast ranks 4 of 10, outside top 3"
    # A tie with a peer does not count against the trial.
    assert rule.decide(_context(0.3, others_forecasts=lambda: others)).keep


def test_rank_rule_keeps_while_too_few_trials_to_rank_among() -> None:
    calls = []

    def four() -> np.ndarray:
        calls.append(1)
        return np.array([0.1, 0.2, 0.3, 0.4])

    verdict = RankRule(0.1).decide(_context(9.0, others_forecasts=four))
    assert verdict.keep and "only 4" in verdict.reason and calls == [1]
    assert not RankRule(0.1, min_peers=4).decide(_context(9.0, others_forecasts=four)).keep


def test_apply_rules_first_keep_decides_else_every_reason() -> None:
    rules = [ThresholdRule(), ConfidenceRule(0.8), RungTopRule()]
    # Threshold loses, confidence keeps (P 0.3085 >= 0.2): its reason and p_beat are recorded.
    kept = apply_rules(rules, _context(0.6, sigma=0.2, rung_values=[0.0, 0.1, 0.2]))
    assert kept.keep and kept.reason.startswith("P(beats threshold) 0.309 >=")
    assert kept.extra["p_beat"] == pytest.approx(0.3085, abs=1e-4)
    # Every rule loses: pruned, with each reason in order.
    pruned = apply_rules(rules, _context(0.9, sigma=0.1, rung_values=[0.0, 0.1, 0.2]))
    assert pruned.keep is False  # a bool, as Verdict says, not merely falsy
    assert pruned.reason.split("; ")[0] == "forecast loses to threshold"
    assert pruned.reason.split("; ")[2] == "forecast outside top 1/3"
    assert len(pruned.reason.split("; ")) == 3
    # The order is the precedence: the first keeping rule's reason wins.
    both = apply_rules([RungTopRule(), ThresholdRule()], _context(0.1))
    assert both.reason == "forecast within top 1/3"


def test_apply_rules_with_only_abstaining_rules_keeps() -> None:
    verdict = apply_rules([ConfidenceRule(0.9)], _context(0.1))
    assert verdict == Verdict(True, "no rule decided: Hyperband decides", {})
    # An abstaining rule passes the decision on to the rules after it.
    after = apply_rules([ConfidenceRule(0.9), ThresholdRule()], _context(0.9))
    assert after == Verdict(False, "forecast loses to threshold", {})


def test_default_rules_follow_the_options() -> None:
    names = [
        r.name for r in default_rules(confidence=None, rank_quantile=None, forecast_final=False)
    ]
    assert names == ["threshold", "rung-top"]
    names = [r.name for r in default_rules(confidence=0.9, rank_quantile=0.3, forecast_final=True)]
    assert names == ["threshold", "confidence", "rank"]
    names = [
        r.name for r in default_rules(confidence=None, rank_quantile=None, forecast_final=True)
    ]
    assert names == ["threshold"]


def test_rules_follow_the_protocol() -> None:
    for rule in (ThresholdRule(), ConfidenceRule(0.9), RankRule(0.5), RungTopRule()):
        assert isinstance(rule, DecisionRule)
    assert not isinstance(object(), DecisionRule)


def test_rung_threshold() -> None:
    assert rung_threshold([1.0, 2.0, 3.0, 4.0, 5.0], [9.0], 0.25, final=False) == (
        2.0,
        "rung full trainings",
    )
    # Without full trainings, every curve of the key.
    assert rung_threshold([], [1.0, 3.0], 0.5, final=False) == (2.0, "all curves of key")
    # Forecasts of the final value must beat the best final value so far.
    assert rung_threshold([0.1], [0.4, 0.3, 0.9], 0.25, final=True) == (
        0.3,
        "best final value so far",
    )


def test_needs_full_training() -> None:
    base = dict(min_train_curves=10, n_full=0, n_decided=0, full_fraction=0.0, reduction_factor=3)
    assert needs_full_training(n_curves=9, n_in_flight=0, **base) == "training curves 9+0 of 10"
    assert needs_full_training(n_curves=8, n_in_flight=2, **base) is None
    # Quota: ceil(0.5 * (5 + 1) / 3) = 1 full training among the rung's decisions.
    quota = dict(base, full_fraction=0.5, n_decided=5)
    assert needs_full_training(n_curves=10, n_in_flight=0, **quota) == "full quota 0 of 1"
    assert needs_full_training(n_curves=10, n_in_flight=0, **dict(quota, n_full=1)) is None
    # Seven decided: ceil(0.5 * 8 / 3) = 2.
    quota = dict(base, full_fraction=0.5, n_decided=7, n_full=1)
    assert needs_full_training(n_curves=10, n_in_flight=0, **quota) == "full quota 1 of 2"


def test_asha_promotes_the_top_fraction_with_ties() -> None:
    # 9 in the rung, eta 3: ranks 1..3 promoted; a tie at the boundary is promoted.
    competing = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    assert asha_promotes(0.25, competing, 3) == (True, 3, 9)
    assert asha_promotes(0.35, competing, 3) == (False, 4, 9)
    assert asha_promotes(0.2, competing, 3) == (True, 2, 9)
    assert asha_promotes(0.3, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], 3)[0]
    # A lone trial is promoted; a missing or infinite value never is.
    assert asha_promotes(5.0, [], 3) == (True, 1, 1)
    assert asha_promotes(None, [], 3) == (False, 1, 1)
    assert asha_promotes(math.inf, [1.0, 2.0], 3) == (False, 3, 3)
    # Fewer than eta: only the best is promoted.
    assert asha_promotes(1.5, [1.0, 2.0], 3) == (False, 2, 3)
    assert asha_promotes(0.5, [1.0, 2.0], 3) == (True, 1, 3)
