"""Each option of SwiftHyperbandPruner changes what it should, on real studies.

Curves are shaped so that the option decides the outcome: a curve that drops only at the
decision step (a slice that loses the newest value sees no drop), values whose order flips
between the rung's budget and max_resource (a wrong target step ranks them differently), and
forecasts whose distance to the threshold is a known number of sigmas.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from optuna_qsvr import SwiftHyperbandPruner, _records
from optuna_qsvr.predictors import SVRPredictor
from optuna_qsvr.pruners import ThresholdRule
from optuna_qsvr.report import fit_records
from tests.pruners_tests._helpers import (
    LastValue,
    Recorder,
    add_complete,
    ask_in_bracket,
    flat,
    run_curve,
)

BASE = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


@pytest.fixture(autouse=True)
def _reset_recorder():
    Recorder.reset()
    yield
    Recorder.reset()


def _study(pruner: SwiftHyperbandPruner, direction: str = "minimize") -> optuna.Study:
    return optuna.create_study(study_name="effects", direction=direction, pruner=pruner)


def _add_in_bracket(study, pruner, bracket: int, curve: dict[int, float], params=None) -> None:
    """A finished trial in ``bracket`` (a rung-mate), added without the pruner."""
    for _ in range(1000):  # bounded: a broken bracket assignment fails, never hangs
        if pruner.bracket_of(study.study_name, len(study.trials)) == bracket:
            return add_complete(study, curve, params)
        study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
    raise AssertionError(f"no trial number falls in bracket {bracket}")


def _decide(study, pruner, curve: dict[int, float], bracket: int = 0, rung: int = 0) -> dict:
    ask_in_bracket(study, pruner, bracket)
    trial = run_curve(study, curve)
    return _records.read_trial(trial.system_attrs).decisions[rung]


def _pruner(**kwargs) -> SwiftHyperbandPruner:
    kwargs.setdefault("max_resource", 9)
    kwargs.setdefault("min_train_curves", 3)
    kwargs.setdefault("full_fraction", 0.0)
    kwargs.setdefault("predictor", LastValue(sigma=0.1))
    return SwiftHyperbandPruner(mode="paper", **kwargs)


def _with_base(pruner, values=BASE, bracket: int = 0) -> optuna.Study:
    study = _study(pruner)
    for v in values:
        _add_in_bracket(study, pruner, bracket, flat(v, pruner.schedule.max_resource))
    return study


def _dip(at: int, steps: int = 9, high: float = 0.9, low: float = 0.05) -> dict[int, float]:
    """High everywhere except one low value at step ``at``."""
    return {s: (low if s == at else high) for s in range(1, steps + 1)}


# -- known_curve: the decision step, and the newest value in the slice ----------------------
@pytest.mark.parametrize(("known_curve", "t_star"), [(0.5, 5), (0.8, 8), (0.12, 2)])
def test_known_curve_sets_the_decision_step_and_its_value_decides(known_curve, t_star) -> None:
    outcomes = {}
    for at in (t_star - 1, t_star, t_star + 1):
        Recorder.reset()
        pruner = _pruner(known_curve=known_curve, predictor=Recorder(), rules=[ThresholdRule()])
        study = _with_base(pruner)
        d = _decide(study, pruner, _dip(at))
        assert (d["decision_step"], d["key"]) == (t_star, f"r9_t{t_star}")
        assert d["step"] == t_star
        (asked,) = Recorder.asked[:1]
        assert asked.shape == (1, t_star) and asked[0, -1] == (0.05 if at == t_star else 0.9)
        outcomes[at] = d["decision"]
    # Only a drop at t* itself is seen: before it, the last value is high again; after, unseen.
    assert outcomes == {t_star - 1: "pruned", t_star: "kept", t_star + 1: "pruned"}


# -- confidence -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("confidence", "decision"), [(None, "pruned"), (0.9, "kept"), (0.7, "pruned")]
)
def test_confidence_keeps_a_forecast_within_its_probability_of_beating_the_threshold(
    confidence, decision
) -> None:
    # Threshold quantile(BASE, .25) = 0.225; forecast 0.3 with sigma 0.1: P(beat) = 0.2266,
    # above 1 - 0.9 and below 1 - 0.7. The rung's top 1/3 (0.1, 0.2) excludes 0.3.
    pruner = _pruner(confidence=confidence)
    d = _decide(_with_base(pruner), pruner, flat(0.3, 9))
    assert d["decision"] == decision
    assert d["threshold"] == pytest.approx(0.225)
    if confidence is None:
        assert "p_beat" not in d
        assert d["reason"] == "forecast loses to threshold; forecast outside top 1/3"
    else:
        assert d["p_beat"] == pytest.approx(NormalDist().cdf(-0.75), abs=1e-9)


def test_confidence_uses_the_svr_cross_validated_sigma_in_target_units() -> None:
    """End to end: p_beat recorded by the pruner is Phi((threshold - forecast) / sigma) with
    the stored SVR's sigma_, which is in the target's units."""
    rng = np.random.default_rng(3)
    pruner = SwiftHyperbandPruner(
        mode="paper", max_resource=9, min_train_curves=8, full_fraction=0.0, confidence=0.99
    )
    study = _study(pruner)
    for _ in range(30):  # values in the hundreds: scaled units would be 300x off
        rate, floor = rng.uniform(0.1, 0.6), rng.uniform(0, 100)
        _add_in_bracket(
            study, pruner, 0, {s: floor + 300 * math.exp(-rate * s) for s in range(1, 10)}
        )
    d = _decide(study, pruner, {s: 60 + 300 * math.exp(-0.3 * s) for s in range(1, 10)})
    assert d["decision"] in ("kept", "pruned") and "p_beat" in d
    header, text = _records.read_model(
        study._storage.get_study_system_attrs(study._study_id), "r9_t5"
    )
    sigma = SVRPredictor.from_json(text).sigma_
    assert header["cv_rmse"] == pytest.approx(sigma)
    assert 1.0 < sigma < 100.0  # target units: curves span 0..400
    z = (d["threshold"] - d["forecast"]) / sigma
    assert d["p_beat"] == pytest.approx(NormalDist().cdf(z), rel=1e-9, abs=1e-12)


# -- the training set: min_train_curves, max_train_curves -----------------------------------
def test_min_train_curves_sends_trials_to_full_training_until_reached() -> None:
    for n_base, decision in ((3, "full"), (4, "kept")):
        pruner = _pruner(min_train_curves=4, predictor=Recorder())
        d = _decide(_with_base(pruner, BASE[:n_base]), pruner, flat(0.05, 9))
        assert d["decision"] == decision, n_base
        if decision == "full":
            assert d["reason"] == "training curves 3+0 of 4" and Recorder.fits == 0
        else:
            assert Recorder.fits == 1 and len(Recorder.fitted[0][1]) == 4


def test_a_full_training_in_flight_counts_toward_min_train_curves() -> None:
    pruner = _pruner(min_train_curves=4, predictor=Recorder())
    study = _with_base(pruner, BASE[:3])
    ask_in_bracket(study, pruner, 0)
    first = study.ask()
    for s in range(1, 6):
        first.report(0.3, s)
        assert not first.should_prune()
    record = _records.decision_of(study._storage.get_trial(first._trial_id).system_attrs, 0)
    assert (record["decision"], record["reason"]) == ("full", "training curves 3+0 of 4")
    # While it trains on, the next trial counts it (3 curves + 1 in flight): no second full
    # training, and no fit either until its curve exists.
    d = _decide(study, pruner, flat(0.05, 9))
    assert d["decision"] == "no-forecast" and d["reason"] == "3 of 4 training curves"
    for s in range(6, 10):
        first.report(0.3, s)
    study.tell(first, 0.3)
    assert _decide(study, pruner, flat(0.05, 9))["decision"] == "kept"
    assert Recorder.fits == 1


def test_max_train_curves_fits_on_the_most_recent_curves() -> None:
    pruner = _pruner(min_train_curves=3, max_train_curves=4, predictor=Recorder())
    values = (0.11, 0.12, 0.13, 0.14, 0.15, 0.16, 0.17, 0.18)
    study = _with_base(pruner, values)
    _decide(study, pruner, flat(0.05, 9))
    ((curves, targets, _params),) = Recorder.fitted
    np.testing.assert_array_equal(targets, [0.15, 0.16, 0.17, 0.18])
    np.testing.assert_array_equal(curves[:, -1], [0.15, 0.16, 0.17, 0.18])
    assert curves.shape == (4, 5)
    (record,) = fit_records(study)
    assert record["n_train"] == 4


# -- full_fraction, threshold_quantile ------------------------------------------------------
@pytest.mark.parametrize(
    ("full_fraction", "expected"),
    [
        (0.0, ["kept"] * 7),
        # quota ceil(0.5 (n + 1) / 3): 1 for n = 0..5, 2 for n = 6.
        (0.5, ["full", "kept", "kept", "kept", "kept", "kept", "full"]),
        (1.0, ["full", "kept", "kept", "full", "kept", "kept", "full"]),
    ],
)
def test_full_fraction_sets_the_share_of_full_trainings(full_fraction, expected) -> None:
    pruner = _pruner(full_fraction=full_fraction)
    study = _with_base(pruner)
    # Each trial beats every earlier one, so every forecast decision keeps it.
    got = [_decide(study, pruner, flat(0.08 - 0.01 * i, 9))["decision"] for i in range(7)]
    assert got == expected


@pytest.mark.parametrize(("quantile", "decision"), [(0.25, "pruned"), (0.75, "kept")])
def test_threshold_quantile_sets_the_threshold(quantile, decision) -> None:
    pruner = _pruner(threshold_quantile=quantile, rules=[ThresholdRule()])
    d = _decide(_with_base(pruner), pruner, flat(0.3, 9))
    assert d["threshold"] == pytest.approx(float(np.quantile(BASE, quantile)))
    assert d["decision"] == decision and d["threshold_basis"] == "all curves of key"


def test_the_threshold_comes_from_the_rungs_full_trainings_once_any_exist() -> None:
    pruner = _pruner(full_fraction=1.0, threshold_quantile=0.5, rules=[ThresholdRule()])
    study = _with_base(pruner)
    assert _decide(study, pruner, flat(0.55, 9))["decision"] == "full"
    d = _decide(study, pruner, flat(0.5, 9))
    assert (d["threshold"], d["threshold_basis"]) == (0.55, "rung full trainings")
    assert d["decision"] == "kept"


# -- forecast_final, rank_quantile ----------------------------------------------------------
def _crossing(at_budget: float, final: float) -> dict[int, float]:
    """Flat to step 9 at ``at_budget``, then linear to ``final`` at step 27."""
    return {
        s: at_budget if s <= 9 else at_budget + (final - at_budget) * (s - 9) / 18
        for s in range(1, 28)
    }


@pytest.mark.parametrize("forecast_final", [False, True])
def test_forecast_final_forecasts_max_resource_against_the_best_final_value(
    forecast_final,
) -> None:
    # R = 27, bracket 1: rungs (0, 5, 9) and (9, 18, 27). Values at 9 and at 27 cross.
    pruner = _pruner(max_resource=27, forecast_final=forecast_final, predictor=Recorder())
    study = _study(pruner)
    for at_budget, final in ((0.1, 0.9), (0.2, 0.7), (0.3, 0.5), (0.4, 0.3)):
        _add_in_bracket(study, pruner, 1, _crossing(at_budget, final))
    d = _decide(study, pruner, flat(0.25, 27), bracket=1)
    ((_curves, targets, _params),) = Recorder.fitted
    if forecast_final:
        assert d["key"] == "r27_t5" and d["budget"] == 9
        np.testing.assert_allclose(targets, [0.9, 0.7, 0.5, 0.3])
        assert d["threshold"] == pytest.approx(0.3) and d["decision"] == "kept"
        assert d["threshold_basis"] == "best final value so far"
        assert [r.name for r in pruner.rules] == ["threshold"]
    else:
        assert d["key"] == "r9_t5"
        np.testing.assert_allclose(targets, [0.1, 0.2, 0.3, 0.4])
        assert d["threshold"] == pytest.approx(0.175)
        assert d["decision"] == "pruned" and d["reason"].endswith("outside top 1/3")


@pytest.mark.parametrize(
    ("rank_quantile", "decision", "reason"),
    [
        (None, "pruned", "forecast loses to threshold; forecast outside top 1/3"),
        (0.5, "kept", "forecast ranks 3 of 7, within top 4"),
        (0.2, "pruned", "forecast loses to threshold; forecast ranks 3 of 7, outside top 2"),
    ],
)
def test_rank_quantile_ranks_among_peer_forecasts_instead_of_the_rung(
    rank_quantile, decision, reason
) -> None:
    pruner = _pruner(rank_quantile=rank_quantile)
    d = _decide(_with_base(pruner), pruner, flat(0.3, 9))
    assert (d["decision"], d["reason"]) == (decision, reason)


# -- refit_every ----------------------------------------------------------------------------
@pytest.mark.parametrize(("refit_every", "versions"), [(None, [1, 1, 1, 1]), (2, [1, 1, 2, 2])])
def test_refit_every_refits_a_key_after_that_many_new_curves(refit_every, versions) -> None:
    pruner = _pruner(refit_every=refit_every, predictor=Recorder(), rules=[ThresholdRule()])
    study = _with_base(pruner, BASE[:3])
    got = []
    for i in range(4):
        _decide(study, pruner, flat(0.05 - 0.01 * i, 9))  # kept: each adds a curve
        got.append(fit_records(study)[0]["version"])
    assert got == versions
    assert Recorder.fits == versions[-1]
    assert [len(t) for _c, t, _p in Recorder.fitted] == [3, 5][: versions[-1]]


# -- named predictors: features, residual_target --------------------------------------------
def _svr_study(**kwargs) -> tuple[optuna.Study, SwiftHyperbandPruner]:
    pruner = SwiftHyperbandPruner(
        mode="paper",
        max_resource=9,
        min_train_curves=10,
        full_fraction=0.0,
        predictor="svr",
        **kwargs,
    )
    study = _study(pruner)
    rng = np.random.default_rng(0)
    for _ in range(20):
        rate, floor, lr = rng.uniform(0.1, 0.6), rng.uniform(0, 0.3), rng.uniform(1e-4, 1.0)
        curve = {s: floor + math.exp(-rate * s) for s in range(1, 10)}
        _add_in_bracket(study, pruner, 0, curve, params={"lr": lr})
    return study, pruner


def _model_doc(study) -> dict:
    _header, text = _records.read_model(
        study._storage.get_study_system_attrs(study._study_id), "r9_t5"
    )
    return json.loads(text)


def test_features_reach_the_named_predictor_and_change_its_forecast() -> None:
    forecasts = {}
    curve = {s: 0.2 + math.exp(-0.35 * s) for s in range(1, 10)}
    for features in (("curve",), ("curve", "diff1"), ("diff2", "params")):
        study, pruner = _svr_study(features=features)
        d = _decide(study, pruner, curve)
        doc = _model_doc(study)
        assert doc["features"] == list(features) and doc["kinds"] == list(features)
        if "params" in features:
            assert doc["param_columns"] == [["lr", "log", None]]
        forecasts[features] = d["forecast"]
    assert len(set(forecasts.values())) == 3, forecasts


def test_the_features_are_kept_as_given_when_the_callers_list_changes_later() -> None:
    # A caller's list, changed after the pruner is made, must not change what the pruner's
    # named predictor and its stored model settings say.
    features = ["curve", "diff1"]
    options = _checked(features=features)
    features.append("params")
    assert options.features == ("curve", "diff1")
    assert options.model_settings()["features"] == ("curve", "diff1")


def test_a_predictor_factory_makes_the_model_and_other_objects_are_rejected() -> None:
    made = []

    def factory() -> LastValue:
        made.append(LastValue(sigma=0.1))
        return made[-1]

    pruner = _pruner(predictor=factory)
    d = _decide(_with_base(pruner), pruner, flat(0.3, 9))
    assert made and d["forecast"] == pytest.approx(0.3)
    assert d["decision"] == "pruned"  # loses to the threshold 0.225 and to the rung's top 1/3
    with pytest.raises(TypeError, match="predictor must be a name or a BasePredictor, got 42"):
        _checked(predictor=42)


def test_residual_target_learns_the_change_from_the_curves_last_value() -> None:
    for residual in (False, True):
        study, pruner = _svr_study(residual_target=residual)
        _decide(study, pruner, {s: 0.2 + math.exp(-0.35 * s) for s in range(1, 10)})
        doc = _model_doc(study)
        assert doc["residual"] is residual
        model = SVRPredictor.from_json(json.dumps(doc))
        # A curve far below every training curve: a residual model forecasts from its own
        # last value; a direct one shrinks it toward the training values.
        low = np.array([[s * 0.0 - 5.0 for s in range(1, 6)]])
        mean = model.predict(low)[0][0]
        assert bool(mean < -4.0) == residual, (residual, mean)


# -- rungs ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rungs", "key", "budget"), [("optuna", "r9_t6", 9), ("hyperband", "r10_t7", 10)]
)
def test_rungs_layout_moves_the_decision_steps(rungs, key, budget) -> None:
    # R = 10 is no power of 3: bracket 1 has rungs (0, 3], (3, 9], (9, 10] in Optuna's layout
    # and (0, 3], (3, 10] in Hyperband's.
    pruner = _pruner(max_resource=10, rungs=rungs, rules=[ThresholdRule()])
    study = _with_base(pruner, bracket=1)
    assert [r.budget for r in pruner.schedule.rungs(1)] == (
        [3, 9, 10] if rungs == "optuna" else [3, 10]
    )
    ask_in_bracket(study, pruner, 1)
    trial = run_curve(study, flat(0.01, 10))
    record = _records.read_trial(trial.system_attrs).decisions[1]
    assert (record["key"], record["budget"]) == (key, budget)
    assert record["decision_step"] == int(key.split("_t")[1])


# -- rules ----------------------------------------------------------------------------------
def test_rules_replace_the_rule_options_and_must_be_rules() -> None:
    chain = [ThresholdRule()]
    assert _pruner(rules=chain).rules == tuple(chain)
    for extra in ({"confidence": 0.9}, {"rank_quantile": 0.3}):
        with pytest.raises(ValueError, match="either rules or confidence/rank_quantile"):
            _pruner(rules=chain, **extra)
    for bad in ([], [ThresholdRule(), object()], [lambda context: None]):
        with pytest.raises(TypeError, match="rules must be a non-empty list of DecisionRule"):
            _pruner(rules=bad)


# -- bracket_weights ------------------------------------------------------------------------
def _brackets(pruner: SwiftHyperbandPruner, n: int = 3000) -> list[int]:
    return [pruner.bracket_of("weights", i) for i in range(n)]


def test_bracket_weights_set_each_brackets_share() -> None:
    # R = 27, eta 3: Hyperband's sizes (4, 6, 12, 27) for s = 0..3, most aggressive last.
    hyperband = _brackets(SwiftHyperbandPruner(mode="paper", max_resource=27))
    same = _brackets(SwiftHyperbandPruner(max_resource=27, bracket_weights=(1, 1, 1, 1)))
    assert same == hyperband  # all ones: Optuna's assignment, trial for trial
    alone = _brackets(SwiftHyperbandPruner(max_resource=27, bracket_weights=(1, 0)))
    assert set(alone) == {3}  # successive halving alone
    default = _brackets(SwiftHyperbandPruner(max_resource=27))  # forecast mode: (1, 0.25, 0)
    assert set(default) == {2, 3}
    assert abs(default.count(3) / len(default) - 27 / 30) < 0.03  # shares 27 and 12 / 4
    halved = _brackets(SwiftHyperbandPruner(max_resource=27, bracket_weights=(1, 0.5)))
    # Shares 27, 6, 3, 2 of 38: the last weight repeats for the conservative brackets.
    for s, share in zip((3, 2, 1, 0), (27, 6, 3, 2), strict=True):
        assert abs(halved.count(s) / len(halved) - share / 38) < 0.03, s
    # Weights are relative: doubling all of them keeps every share.
    doubled = _brackets(SwiftHyperbandPruner(max_resource=27, bracket_weights=(2, 1)))
    for s in range(4):
        assert abs(doubled.count(s) - halved.count(s)) / len(halved) < 0.03, s


@pytest.mark.parametrize(
    "weights", [(), (0, 1), (-1, 1), (1, -0.5), ("1",), (True, 1), (math.nan,)]
)
def test_bracket_weights_are_checked(weights) -> None:
    with pytest.raises(ValueError, match="bracket_weights"):
        SwiftHyperbandPruner(max_resource=27, bracket_weights=weights)


def test_tiny_bracket_weights_are_relative() -> None:
    tiny = _brackets(SwiftHyperbandPruner(max_resource=27, bracket_weights=(1e-6,)), 500)
    assert set(tiny) == {0, 1, 2, 3}  # every bracket has a share, as with weights (1,)


def test_an_infinite_bracket_weight_is_rejected() -> None:
    with pytest.raises(ValueError, match="bracket_weights"):
        SwiftHyperbandPruner(max_resource=27, bracket_weights=(math.inf, 1))


# -- validation at the bounds ---------------------------------------------------------------
def _checked(**kwargs):
    kwargs.setdefault("max_resource", 27)
    return SwiftHyperbandPruner(**kwargs)._options


PAPER = {"mode": "paper"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "asha"}, "mode must be one of"),
        ({"max_resource": None}, "max_resource must be an integer"),
        ({"max_resource": "auto"}, r"got 'auto': 'auto' lets workers disagree on the brackets$"),
        ({"max_resource": "27"}, r"max_resource must be an integer number of epochs, got '27'$"),
        ({"min_resource": 0}, r"min_resource must be an integer >= 1, got 0"),
        ({"reduction_factor": 1}, r"reduction_factor must be an integer >= 2"),
        ({"min_resource": 28}, r"max_resource must be an integer >= 28, got 27"),
        ({"min_train_curves": 2}, r"min_train_curves must be an integer >= 3"),
        ({"min_train_curves": 20, "max_train_curves": 19}, r"max_train_curves \(19\) .* \(20\)"),
        (
            {"max_train_curves": 2},
            r"^max_train_curves \(2\) must be at least min_train_curves \(15\)",
        ),
        (
            {"min_train_curves": 300},
            r"max_train_curves \(200\) must be at least min_train_curves \(300\)",
        ),
        ({"top_k": 0}, r"top_k must be an integer >= 1"),
        ({"min_persistence_pairs": 2}, r"min_persistence_pairs must be an integer >= 3, got 2"),
        ({"min_persistence_pairs": 4.5}, r"min_persistence_pairs must be an integer"),
        ({**PAPER, "refit_every": 0}, r"refit_every must be an integer >= 1"),
        ({**PAPER, "known_curve": 0.0}, r"known_curve must be in \(0, 1\), got 0.0"),
        ({**PAPER, "known_curve": 1.0}, r"known_curve must be in \(0, 1\)"),
        ({**PAPER, "threshold_quantile": 0.0}, r"threshold_quantile must be in \(0, 1\)"),
        ({**PAPER, "threshold_quantile": 1.0}, r"threshold_quantile must be in \(0, 1\)"),
        ({**PAPER, "full_fraction": -0.01}, r"full_fraction must be in \[0, 1\]"),
        ({**PAPER, "full_fraction": 1.01}, r"full_fraction must be in \[0, 1\]"),
        ({**PAPER, "full_fraction": True}, r"full_fraction must be in \[0, 1\]"),
        ({"alpha": 0.0}, r"alpha must be in \(0, 0.5\)"),
        ({"alpha": 0.5}, r"alpha must be in \(0, 0.5\)"),
        ({"checkpoint_ratio": 1.0}, "checkpoint_ratio must be > 1"),
        ({"checkpoint_ratio": "2"}, "checkpoint_ratio must be > 1"),
        ({"checkpoint_ratio": math.inf}, "checkpoint_ratio must be > 1 and finite, got inf"),
        (
            {"checkpoint_ratio": 1.0357},
            r"^checkpoint_ratio must be at least 1 \+ 1/\(max_resource \+ 1\) = 1.03571, which"
            r" already makes every step a decision point; got 1.0357$",
        ),
        ({"refit_growth": 1.0}, "refit_growth must be > 1"),
        ({"refit_growth": math.inf}, "refit_growth must be > 1 and finite"),
        ({"residual_target": "yes"}, "residual_target must be True or False, got 'yes'"),
        ({**PAPER, "forecast_final": 1}, "forecast_final must be True or False, got 1"),
        ({"bracket_weights": 1}, r"bracket_weights must be .*; got 1$"),
        ({"bracket_weights": "1"}, r"bracket_weights must be .*; got '1'$"),
        ({"rescue": 1}, r"rescue must be one of \('chance', 'rank', 'none'\), True or False"),
        ({"rescue": "asha"}, "rescue must be one of"),
        ({"rescue_alpha": 0.0}, r"rescue_alpha must be in \(0, 1\)"),
        ({"rescue_alpha": 1.0}, r"rescue_alpha must be in \(0, 1\)"),
        ({"second_look": 1}, "second_look must be True or False, got 1"),
        ({"second_look": "yes"}, "second_look must be True or False"),
        ({"promote_among": "rung"}, r"promote_among must be one of \('study', 'bracket'\)"),
        ({"promote_among": True}, "promote_among must be one of"),
        ({**PAPER, "promote_among": "study"}, r"^promote_among apply to the default mode"),
        ({"fit_lease_seconds": 0}, "fit_lease_seconds must be > 0"),
        ({"fit_lease_seconds": "60"}, "fit_lease_seconds must be > 0"),
        ({"rungs": "asha"}, "rungs must be 'optuna' or 'hyperband'"),
        ({"features": "curve"}, r"features must be a non-empty list .*, got 'curve'$"),
        ({"features": ()}, "features must be a non-empty list"),
        ({"features": [1]}, "features must be a non-empty list"),
        ({"features": ("curve", "curve")}, "features must name each block once"),
        ({**PAPER, "alpha": 0.2, "top_k": 2}, r"^alpha, top_k apply to the default mode"),
        (
            {"known_curve": 0.5, "confidence": 0.9},
            r"^confidence, known_curve apply to mode='paper'",
        ),
    ],
)
def test_each_option_is_checked_at_its_bounds(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        _checked(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_resource": 27},
        {"reduction_factor": 2},
        {"min_train_curves": 3, "max_train_curves": 3},
        {"top_k": 1},
        {"min_persistence_pairs": 3},
        {"alpha": 1e-9},
        {"alpha": 0.4999},
        {"checkpoint_ratio": 1 + 1 / 28},  # 1 + 1/(max_resource + 1)
        {"refit_growth": 1.0001},
        {"fit_lease_seconds": 1e-3},
        {"rungs": "hyperband"},
        {"rescue": "rank"},
        {"rescue": "none"},
        {"rescue_alpha": 1e-9},
        {"rescue_alpha": 0.9999},
        {"second_look": True},
        {"promote_among": "bracket"},
        {"promote_among": "study"},
        {"forecast_final": False},  # the paper mode's default, harmless here
        {**PAPER, "refit_every": 1},
        {**PAPER, "known_curve": 1e-9},
        {**PAPER, "known_curve": 0.9999},
        {**PAPER, "threshold_quantile": 0.9999},
        {**PAPER, "full_fraction": 0.0},
        {**PAPER, "full_fraction": 1.0},
    ],
)
def test_values_at_the_bounds_are_accepted(kwargs) -> None:
    options = _checked(**kwargs)
    for name, value in kwargs.items():
        assert getattr(options, name) == value, name


def test_each_mode_fills_its_own_defaults_and_normalises() -> None:
    from optuna_qsvr.pruners import ChanceRule, RungTopRule

    forecast, paper = _checked(), _checked(**PAPER)
    assert (forecast.alpha, forecast.top_k, forecast.checkpoint_ratio) == (0.1, 1, 1.5)
    assert (forecast.rescue, forecast.rescue_alpha) == ("chance", 0.5)
    assert forecast.second_look is False and forecast.promote_among == "study"
    assert (forecast.min_rank_persistence, forecast.min_persistence_pairs) == (0.5, 6)
    assert (forecast.refit_growth, forecast.min_train_curves) == (1.5, 15)
    assert forecast.residual_target is True and forecast.bracket_weights == (1.0, 0.25, 0.0)
    assert forecast.rules == (ChanceRule(0.1),)
    assert (paper.known_curve, paper.full_fraction, paper.threshold_quantile) == (0.5, 0.5, 0.25)
    assert (paper.confidence, paper.forecast_final, paper.refit_every) == (None, False, None)
    assert (paper.rank_quantile, paper.min_train_curves, paper.residual_target) == (
        None,
        15,
        False,
    )
    assert paper.bracket_weights is None and paper.rules == (ThresholdRule(), RungTopRule())
    # Given values win over the mode's defaults.
    mine = _checked(min_train_curves=4, residual_target=False, bracket_weights=(2, 2, 1))
    assert (mine.min_train_curves, mine.residual_target) == (4, False)
    assert mine.bracket_weights == (1.0, 1.0, 0.5)  # relative to the largest
    assert _checked(bracket_weights=(3, 3, 3, 3)).bracket_weights is None  # Hyperband's
    assert _checked(alpha=0.3).rules == (ChanceRule(0.3),)
    # True and False stand for the default rescue and for none.
    assert (_checked(rescue=True).rescue, _checked(rescue=False).rescue) == ("chance", "none")
    # NumPy integers become int, so that stored settings are plain JSON.
    numpy = _checked(min_resource=np.int64(1), max_resource=np.int64(9), top_k=np.int32(2))
    assert [type(numpy.min_resource), type(numpy.max_resource), type(numpy.top_k)] == [int] * 3
    assert numpy.features == ("curve",) and _checked(features=["diff1"]).features == ("diff1",)
    assert paper.model_settings() == {
        "min_resource": 1,
        "max_resource": 27,
        "reduction_factor": 3,
        "known_curve": 0.5,
        "rungs": "optuna",
        "features": ("curve",),
        "residual_target": False,
        "max_train_curves": 200,
        "mode": "paper",
    }


def _readme_defaults() -> dict[str, tuple[str, str]]:
    """The README's Parameters table: per option, its (forecast, paper) default as written."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = readme.split("## Parameters", 1)[1].split("\n\n", 2)[1]
    defaults = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        name = cells[0].strip("`")
        if name.startswith("**"):
            continue
        both = [part.strip().strip("`") for part in cells[1].split(" / ")]
        defaults[name] = (both[0], both[-1])
    return defaults


_WORDS = {"on": True, "off": False, "Hyperband's": None}


@pytest.mark.parametrize("mode", [None, "paper"])
def test_the_readmes_defaults_are_the_pruners(mode) -> None:
    """Every default the README's Parameters table writes as a value is the pruner's, in the
    mode it names (``forecast / paper``); ``required`` and derived defaults are skipped. The
    forecast side is read with no mode given, so that the default mode is checked too."""
    side = 1 if mode else 0
    options = SwiftHyperbandPruner(max_resource=9, **({"mode": mode} if mode else {}))._options
    checked = 0
    for name, written in _readme_defaults().items():
        text = written[side]
        if text in ("required", "from the options") or (side and name == "mode"):
            continue
        expected = _WORDS[text] if text in _WORDS else ast.literal_eval(text)
        actual = getattr(options, name)
        if isinstance(expected, tuple):
            actual = tuple(actual)
        assert actual == expected, (name, text, actual)
        checked += 1
    assert checked >= 20
