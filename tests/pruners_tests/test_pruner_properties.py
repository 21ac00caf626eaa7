"""Properties of the whole pruner on real studies (Hypothesis, deterministic predictors).

- Direction symmetry: reporting ``-v`` to a maximising study gives the decisions that
  reporting ``v`` to a minimising one gives: the same trials stopped at the same steps, the
  same records with forecasts, thresholds and values negated. NaN values stay the worst in
  both directions.
- Dominance (see ``test_rule_properties.py`` for which rules have it): in the same study
  state, a trial whose curve is better at every step than a kept trial's is kept too, when
  the predictor is monotone in the curve (last value).
"""

from __future__ import annotations

import math

import numpy as np
import optuna
from hypothesis import example, given
from hypothesis import strategies as st

from optuna_qsvr import SwiftHyperbandPruner, _records
from optuna_qsvr.pruners import ThresholdRule
from tests._hypothesis import props
from tests.pruners_tests._helpers import (
    LastValue,
    add_complete,
    ask_in_bracket,
    crossing_curves,
    run_curve,
    run_interleaved,
)

OPTION_SETS = [
    {},
    {"confidence": 0.9},
    {"rank_quantile": 0.3},
    {"forecast_final": True},
    {"residual_target": True, "features": ("curve", "diff1")},
    {"refit_every": 4, "threshold_quantile": 0.5},
    {"mode": "forecast"},
    {"mode": "forecast", "alpha": 0.3, "top_k": 2, "bracket_weights": (1, 1, 1, 1)},
    {"mode": "forecast", "rescue": "rank"},
    {"mode": "forecast", "rescue_alpha": 0.5},
]


def _records_of(study: optuna.Study, sign: float) -> list[tuple]:
    out = []
    for t in study.trials:
        records = _records.read_trial(t.system_attrs)
        assert not records.malformed
        decisions = {}
        for rung, r in records.decisions.items():
            r = dict(r)
            for field in ("forecast", "threshold"):
                if r[field] is not None:
                    r[field] = sign * r[field]
            decisions[rung] = r
        promotions = {}
        for rung, r in records.promotions.items():
            r = dict(r)
            if r["value"] is not None:
                r["value"] = sign * r["value"]
            promotions[rung] = r
        value = None if t.value is None else sign * t.value
        out.append((t.number, t.state, t.last_step, value, decisions, promotions))
    return out


def _study(direction: str, **options) -> optuna.Study:
    options.setdefault("mode", "paper")
    pruner = SwiftHyperbandPruner(max_resource=options.pop("max_resource"), **options)
    return optuna.create_study(study_name="symmetry", direction=direction, pruner=pruner)


# Each example runs two studies of 36 trials: shrinking a failure would take minutes, so a
# failing example is reported as drawn.
@props(15, shrink=False)
@given(
    seed=st.integers(0, 2**16),
    max_resource=st.sampled_from([9, 27]),
    options=st.sampled_from(OPTION_SETS),
    predictor=st.sampled_from(["svr", "test-last-value"]),
    n_parallel=st.sampled_from([1, 4]),
    nan_fraction=st.sampled_from([0.0, 0.03]),
)
@example(  # rung-mates' recorded forecasts decide some of these trials (rung-top rule)
    seed=0, max_resource=9, options={}, predictor="test-last-value", n_parallel=4, nan_fraction=0
)
@example(  # the median at the last cut decides (its record once printed signed values)
    seed=293,
    max_resource=27,
    options={"mode": "forecast", "rescue": "rank"},
    predictor="test-last-value",
    n_parallel=4,
    nan_fraction=0.03,
)
@example(
    seed=1,
    max_resource=27,
    options=OPTION_SETS[1],
    predictor="svr",
    n_parallel=1,
    nan_fraction=0.03,
)
@example(  # the forecast mode: calibrated early stops and rescues
    seed=2, max_resource=27, options=OPTION_SETS[6], predictor="svr", n_parallel=4, nan_fraction=0
)
def test_negated_values_and_flipped_direction_decide_alike(
    seed, max_resource, options, predictor, n_parallel, nan_fraction
) -> None:
    curves = crossing_curves(36, max_resource, seed, nan_fraction)
    kwargs = dict(options, max_resource=max_resource, min_train_curves=4, predictor=predictor)
    minimise, maximise = _study("minimize", **kwargs), _study("maximize", **kwargs)
    run_interleaved(minimise, curves, n_parallel, sign=1.0)
    run_interleaved(maximise, curves, n_parallel, sign=-1.0)
    a, b = _records_of(minimise, 1.0), _records_of(maximise, -1.0)
    assert [x[:3] for x in a] == [x[:3] for x in b]
    for x, y in zip(a, b, strict=True):
        assert x == y or _nan_equal(x, y), (x, y)
    decided = [d["decision"] for *_, ds, _ in a for d in ds.values()]
    if options.get("mode") == "forecast":  # records only its stops and its failures
        assert decided or any(ps for *_, ps in a), a
    else:
        assert "full" in decided and {"kept", "pruned"} & set(decided), decided


def _nan_equal(x, y) -> bool:
    # A trial whose final value is NaN: NaN != NaN, the rest must match.
    return (
        x[3] is not None
        and math.isnan(x[3])
        and y[3] is not None
        and math.isnan(y[3])
        and x[:3] == y[:3]
        and x[4:] == y[4:]
    )


def test_nan_is_the_worst_value_in_both_directions() -> None:
    """ASHA at rung 1 of R=9 bracket 2 (budgets 1, 3, 9): a NaN at the budget ranks last."""
    for direction, sign in (("minimize", 1.0), ("maximize", -1.0)):
        pruner = SwiftHyperbandPruner(
            mode="paper", max_resource=9, min_train_curves=10**6, max_train_curves=10**6
        )
        study = optuna.create_study(study_name="nan", direction=direction, pruner=pruner)
        outcomes = []
        for value in (math.nan, math.nan, 0.9, 0.5, math.nan, 0.7):
            ask_in_bracket(study, pruner, 2)
            trial = run_curve(study, {1: sign * value, 2: sign * value, 3: sign * value})
            promotion = _records.read_trial(trial.system_attrs).promotions[0]
            outcomes.append((promotion["decision"], promotion["rank"], promotion["of"]))
        # Rung 0 (budget 1) ranks each arrival among those before it, NaN last:
        assert outcomes == [
            ("stopped", 1, 1),  # NaN is never promoted, even alone
            ("stopped", 1, 2),  # ties with the first NaN
            ("promoted", 1, 3),  # 0.9 beats both NaNs
            ("promoted", 1, 4),
            ("stopped", 3, 5),  # NaN ranks behind 0.5 and 0.9
            ("promoted", 2, 6),  # 0.7 ranks 2nd of 6: within the top 6 // 3 = 2
        ], direction


@props(40)
@given(
    base=st.lists(st.floats(0.0, 1.0), min_size=6, max_size=14),
    curve=st.lists(st.floats(0.0, 1.0), min_size=9, max_size=9),
    gaps=st.lists(st.floats(0.0, 0.5), min_size=9, max_size=9),
    options=st.sampled_from(
        [{}, {"confidence": 0.8}, {"rank_quantile": 0.4}, {"threshold_quantile": 0.6}]
    ),
)
def test_a_trial_better_at_every_step_than_a_kept_trial_is_kept(
    base, curve, gaps, options
) -> None:
    def decide(values: list[float]) -> dict:
        pruner = SwiftHyperbandPruner(
            mode="paper",
            max_resource=9,
            min_train_curves=4,
            full_fraction=0.0,
            predictor=LastValue(sigma=0.1),
            **options,
        )
        study = optuna.create_study(study_name="dominance", pruner=pruner)
        rng = np.random.default_rng(len(base))
        for final in base:
            add_complete(study, {s: final + 0.05 * (9 - s) * rng.random() for s in range(1, 10)})
        ask_in_bracket(study, pruner, 0)
        trial = run_curve(study, {s + 1: v for s, v in enumerate(values)})
        return _records.read_trial(trial.system_attrs).decisions[0]

    worse = decide(curve)
    better = decide([v - g for v, g in zip(curve, gaps, strict=True)])
    assert worse["decision"] in ("kept", "pruned") and better["decision"] in ("kept", "pruned")
    assert better["forecast"] <= worse["forecast"]
    if worse["decision"] == "kept":
        assert better["decision"] == "kept", (worse, better)


MODES = [
    ("paper", {}, [0, 1, 2, 3]),
    ("paper", {"confidence": 0.8, "full_fraction": 0.0}, [1, 2, 3]),
    ("paper", {"rank_quantile": 0.4, "full_fraction": 1.0}, [2, 3]),
    ("forecast", {}, [2, 3]),  # the default bracket weights (1, 0.25, 0), the chance rescue
    ("forecast", {"alpha": 0.3, "rescue": False}, [2, 3]),
    ("forecast", {"rescue": "rank"}, [2, 3]),
    ("forecast", {"top_k": 3, "checkpoint_ratio": 1.2}, [2, 3]),
]


@props(60, shrink=False)
@given(
    seed=st.integers(0, 2**16),
    mode=st.sampled_from(MODES),
    pick=st.integers(0, 3),
    curve=st.lists(st.floats(0.0, 1.0), min_size=27, max_size=27),
    gaps=st.lists(st.floats(0.0, 0.3), min_size=27, max_size=27),
)
@example(seed=0, mode=MODES[3], pick=1, curve=[0.6] * 27, gaps=[0.05] * 27)
def test_a_trial_better_at_every_step_trains_at_least_as_long(
    seed, mode, pick, curve, gaps
) -> None:
    """Through every rung of a bracket, in both modes: in the same study state, a curve better
    at every step is kept wherever the other is (forecast rules, ASHA, the rescue), so it
    trains at least as long. The predictor is monotone in the curve (last value)."""
    name, options, brackets = mode
    bracket = brackets[pick % len(brackets)]
    base = crossing_curves(14, 27, seed)

    def run(values: list[float]) -> optuna.trial.FrozenTrial:
        pruner = SwiftHyperbandPruner(
            mode=name,
            max_resource=27,
            min_train_curves=4,
            predictor=LastValue(sigma=0.1),
            **options,
        )
        study = optuna.create_study(study_name="dominance", pruner=pruner)
        for row in base:
            add_complete(study, {s + 1: float(v) for s, v in enumerate(row)})
        ask_in_bracket(study, pruner, bracket)
        return run_curve(study, {s + 1: v for s, v in enumerate(values)})

    worse = run(curve)
    better = run([v - g for v, g in zip(curve, gaps, strict=True)])
    assert better.last_step >= worse.last_step, (worse.system_attrs, better.system_attrs)


def test_dominance_fails_for_a_predictor_not_monotone_in_the_curve() -> None:
    """The property needs a monotone predictor: one forecasting from the curve's change
    (``2 * last - first``, increasing in ``last``, decreasing in ``first``) ranks a curve
    that starts lower, and is better at every step, behind one that starts high."""

    class Trend(LastValue):
        name = ""

        def predict(self, curves, params=None):
            rows = np.atleast_2d(curves)
            return 2 * rows[:, -1] - rows[:, 0], np.full(len(rows), np.nan)

    def decide(values: list[float]) -> str:
        pruner = SwiftHyperbandPruner(
            mode="paper",
            max_resource=9,
            min_train_curves=4,
            full_fraction=0.0,
            predictor=Trend(),
            rules=[ThresholdRule()],
        )
        study = optuna.create_study(study_name="non-monotone", pruner=pruner)
        for final in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
            add_complete(study, {s: final for s in range(1, 10)})
        ask_in_bracket(study, pruner, 0)
        trial = run_curve(study, {s + 1: v for s, v in enumerate(values)})
        return _records.read_trial(trial.system_attrs).decisions[0]["decision"]

    # The threshold is quantile([.2, .3, .4, .5, .6, .7], .25) = 0.325. Falling from 0.9 to
    # 0.36 at t* = 5 forecasts -0.18: kept. Flat at 0.35, better at every step: pruned.
    assert decide([0.9, 0.7, 0.5, 0.4, 0.36, 0.36, 0.36, 0.36, 0.36]) == "kept"
    assert decide([0.35] * 9) == "pruned"
