"""The forecast mode: calibrated early stops at geometric decision points, rescue at rung ends,
and the bracket weights, on real studies with a transparent predictor."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from sklearn.exceptions import NotFittedError

from optuna_qsvr import SVRPredictor, SwiftHyperbandPruner, _records
from optuna_qsvr.predictors import BasePredictor, ModelFormatError
from optuna_qsvr.pruners import ChanceRule, DecisionContext, RescueRule, Schedule
from optuna_qsvr.pruners._decisions import checkpoint_due
from optuna_qsvr.report import forecast_pairs, trial_records
from tests.pruners_tests._helpers import ask_in_bracket as _in_bracket
from tests.pruners_tests._helpers import flat as _flat
from tests.pruners_tests._helpers import run_curve as _trial


class LastValuePredictor(BasePredictor):
    """Forecast: the last value seen plus ``offset``; error normal with ``std``."""

    def __init__(self, offset: float = 0.0, std: float = 0.05) -> None:
        self.offset, self.std = offset, std

    def fit(self, curves, targets, params=None):
        return self

    def predict(self, curves, params=None):
        curves = np.atleast_2d(curves)
        last = np.array([row[np.isfinite(row)][-1] for row in curves])
        return last + self.offset, np.full(len(last), self.std)

    def to_json(self) -> str:
        return json.dumps({"offset": self.offset, "std": self.std})

    @classmethod
    def from_json(cls, text: str):
        doc = json.loads(text)
        if set(doc) != {"offset", "std"}:
            raise ModelFormatError("bad record")
        return cls(doc["offset"], doc["std"])


class Exploding(LastValuePredictor):
    def predict(self, curves, params=None):
        raise RuntimeError("annealer exploded")


def _pruner(**kwargs) -> SwiftHyperbandPruner:
    options = dict(
        max_resource=9,
        mode="forecast",
        predictor=LastValuePredictor(),
        min_train_curves=3,
        min_persistence_pairs=3,  # forecasts once three trials show their ranks last
        bracket_weights=(1.0, 1.0),  # every bracket, Hyperband's shares (exact assignment)
    )
    return SwiftHyperbandPruner(**{**options, **kwargs})


def test_checkpoints_are_geometric_inside_the_rung() -> None:
    schedule = Schedule(1, 50, 3, 0.5)
    rung = schedule.rungs(0)[0]  # bracket 0: its first rung spans 0..27
    assert (rung.previous, rung.budget) == (0, 27)

    class T:
        def __init__(self, steps):
            self.intermediate_values = {s: 0.0 for s in steps}
            self.last_step = max(steps)

    due = [s for s in range(1, 27) if checkpoint_due(T(range(1, s + 1)), rung, 1.5, 1) == s]
    assert due == [1, 2, 3, 4, 6, 8, 12, 18, 26]
    # Reports every 5 epochs: a point is taken at the first report past it, the latest one.
    assert checkpoint_due(T([5, 10]), rung, 1.5, 1) == 8
    assert checkpoint_due(T([5, 10, 15]), rung, 1.5, 1) == 12
    assert checkpoint_due(T([12, 13]), rung, 1.5, 1) is None
    # A ratio of 2 asks less often.
    due = [s for s in range(1, 27) if checkpoint_due(T(range(1, s + 1)), rung, 2.0, 1) == s]
    assert due == [1, 2, 4, 8, 16]


def test_chance_rule() -> None:
    rule = ChanceRule(0.1)
    context = dict(forecast=0.5, sigma=0.1, threshold=0.4, reduction_factor=3)
    assert not rule.decide(DecisionContext(**context, p_beat=0.05)).keep
    verdict = rule.decide(DecisionContext(**context, p_beat=0.1))
    assert verdict.keep and verdict.extra == {"p_beat": 0.1}
    assert rule.decide(DecisionContext(**context)) is None  # no error model: abstain
    with pytest.raises(ValueError, match="alpha"):
        ChanceRule(0.5)


def test_rescue_rule_ranks_among_rung_forecasts() -> None:
    context = dict(sigma=math.nan, threshold=math.nan, reduction_factor=3)
    mates = [0.1, 0.2, 0.3, 0.4, 0.5]  # with the trial, 6 forecasts: the top 2 are kept
    assert (
        RescueRule().decide(DecisionContext(forecast=0.15, rung_forecasts=mates, **context)).keep
    )
    assert (
        not RescueRule()
        .decide(DecisionContext(forecast=0.25, rung_forecasts=mates, **context))
        .keep
    )


def test_early_stop_on_the_final_value_is_calibrated_and_recorded(study_name) -> None:
    """R=9, bracket 0 (rungs 9). Three finished trials end at 0.10, 0.20, 0.30; the best final
    so far is 0.10. A flat curve at 0.40 forecasts 0.40 with sigma 0.05: P(beat 0.10) =
    Phi(-6) ~ 1e-9 < 0.1, so it stops at the first decision point, step 1."""
    pruner = _pruner()
    study = optuna.create_study(study_name=study_name, pruner=pruner)
    for value in (0.10, 0.20, 0.30):
        _in_bracket(study, pruner, 0)
        assert _trial(study, _flat(value, 9)).state == TrialState.COMPLETE
    _in_bracket(study, pruner, 0)
    bad = _trial(study, _flat(0.40, 9))
    assert bad.state == TrialState.PRUNED and bad.last_step == 1
    (record,) = _records.decisions(bad.system_attrs).values()
    assert record["decision"] == "pruned" and record["key"] == "r9_t1"
    assert record["forecast"] == pytest.approx(0.40)
    assert record["threshold"] == pytest.approx(0.10)
    assert record["p_beat"] == pytest.approx(0.5 * math.erfc(6 / math.sqrt(2)), rel=1e-6)
    assert record["reason"].startswith("P(beats threshold) 0.000 < 0.1")
    # A curve within reach of the best (forecast 0.12, P(beat 0.10) = Phi(-0.4) = 0.34) runs,
    # recorded once, at its first decision point: the report checks that forecast against the
    # value the trial reached.
    _in_bracket(study, pruner, 0)
    good = _trial(study, _flat(0.12, 9))
    assert good.state == TrialState.COMPLETE
    (kept,) = _records.decisions(good.system_attrs).values()
    assert (kept["decision"], kept["step"], kept["key"]) == ("kept", 1, "r9_t1")
    assert kept["forecast"] == pytest.approx(0.12) and kept["threshold"] == pytest.approx(0.10)
    assert kept["p_beat"] == pytest.approx(0.5 * math.erfc(0.4 / math.sqrt(2)), rel=1e-6)
    [pair] = [
        p for p in forecast_pairs(trial_records(study))["r9_t1"] if p["number"] == good.number
    ]
    assert (pair["decision"], pair["forecast"], pair["observed"]) == (
        "kept",
        kept["forecast"],
        0.12,
    )


def test_alpha_sets_how_much_chance_is_enough(study_name) -> None:
    # Forecast 0.16 against a best of 0.10 with sigma 0.05: P = Phi(-1.2) = 0.115.
    for alpha, state in ((0.1, TrialState.COMPLETE), (0.2, TrialState.PRUNED)):
        pruner = _pruner(alpha=alpha)
        study = optuna.create_study(study_name=f"{study_name}-{alpha}", pruner=pruner)
        for value in (0.10, 0.20, 0.30):
            _in_bracket(study, pruner, 0)
            _trial(study, _flat(value, 9))
        _in_bracket(study, pruner, 0)
        assert _trial(study, _flat(0.16, 9)).state == state


def test_top_k_compares_with_the_kth_best_final(study_name) -> None:
    # With k=3 the bar is 0.30: a curve at 0.32 has P(beat) = Phi(-0.4) = 0.34 and runs on;
    # with k=1 (bar 0.10) it stops.
    for k, state in ((3, TrialState.COMPLETE), (1, TrialState.PRUNED)):
        pruner = _pruner(top_k=k)
        study = optuna.create_study(study_name=f"{study_name}-{k}", pruner=pruner)
        for value in (0.10, 0.20, 0.30):
            _in_bracket(study, pruner, 0)
            _trial(study, _flat(value, 9))
        _in_bracket(study, pruner, 0)
        assert _trial(study, _flat(0.32, 9)).state == state


def test_maximize_mirrors_minimize(study_name) -> None:
    pruner = _pruner()
    study = optuna.create_study(study_name=study_name, pruner=pruner, direction="maximize")
    for value in (0.90, 0.80, 0.70):
        _in_bracket(study, pruner, 0)
        _trial(study, _flat(value, 9))
    _in_bracket(study, pruner, 0)
    bad = _trial(study, _flat(0.60, 9))
    assert bad.state == TrialState.PRUNED and bad.last_step == 1
    (record,) = _records.decisions(bad.system_attrs).values()
    assert record["forecast"] == pytest.approx(0.60) and record["threshold"] == pytest.approx(0.9)
    _in_bracket(study, pruner, 0)
    assert _trial(study, _flat(0.88, 9)).state == TrialState.COMPLETE


def test_too_few_curves_means_hyperband(study_name) -> None:
    # Without regimes: with them, too few curves also leave the persistence unmeasured, and
    # the trial would run as Hyperband before any predictor is asked.
    pruner = _pruner(min_train_curves=5, min_rank_persistence=False)
    study = optuna.create_study(study_name=study_name, pruner=pruner)
    for value in (0.10, 0.20, 0.30):
        _in_bracket(study, pruner, 0)
        _trial(study, _flat(value, 9))
    _in_bracket(study, pruner, 0)
    # Only 3 curves to learn from: no forecast, and bracket 0 (a single rung) never stops.
    assert _trial(study, _flat(0.90, 9)).state == TrialState.COMPLETE


def test_a_broken_predictor_never_fails_a_trial(caplog, study_name) -> None:
    pruner = _pruner(predictor=Exploding())
    study = optuna.create_study(study_name=study_name, pruner=pruner)
    for value in (0.10, 0.20, 0.30):
        _in_bracket(study, pruner, 0)
        _trial(study, _flat(value, 9))
    _in_bracket(study, pruner, 0)
    trial = _trial(study, _flat(0.90, 9))
    assert trial.state == TrialState.COMPLETE
    records = list(_records.decisions(trial.system_attrs).values())
    assert records and all(r["decision"] == "no-forecast" for r in records)
    assert "RuntimeError: annealer exploded" in records[0]["reason"]
    warned = caplog.text.count("annealer exploded")
    _in_bracket(study, pruner, 0)
    assert _trial(study, _flat(0.95, 9)).state == TrialState.COMPLETE
    assert caplog.text.count("annealer exploded") == warned  # once per predictor key


def test_a_failed_fit_is_recorded_on_the_trials_hyperband_then_decides(study_name) -> None:
    class FailingFit(LastValuePredictor):
        def fit(self, curves, targets, params=None):
            raise TimeoutError("QPU unreachable")

    pruner = _pruner(predictor=FailingFit())
    study = optuna.create_study(study_name=study_name, pruner=pruner)
    for value in (0.10, 0.20, 0.30):
        _in_bracket(study, pruner, 0)
        _trial(study, _flat(value, 9))
    for value in (0.90, 0.95):  # the first trial fails the fit, the next reads the failure
        _in_bracket(study, pruner, 0)
        trial = _trial(study, _flat(value, 9))
        assert trial.state == TrialState.COMPLETE
        (record,) = _records.decisions(trial.system_attrs).values()
        assert record["decision"] == "no-forecast" and record["forecast"] is None
        assert record["reason"] == "predictor fit failed: TimeoutError: QPU unreachable"
        assert record["key"] == "r9_t1"
    # Too few curves is no failure: Hyperband decides and nothing is recorded.
    fresh = optuna.create_study(pruner=_pruner(predictor=FailingFit()))
    _in_bracket(fresh, fresh.pruner, 0)
    assert not _records.decisions(_trial(fresh, _flat(0.5, 9)).system_attrs)


def test_a_failed_fits_token_reaches_no_record_lease_or_log(caplog, monkeypatch) -> None:
    # An annealer's error may echo the request's token (an AnnealerError is passed on as it
    # is): the reason is masked before it is recorded on trials, the lease, and the log.
    token = "DEV-0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("DWAVE_API_TOKEN", token)

    class Leaky(LastValuePredictor):
        def fit(self, curves, targets, params=None):
            raise RuntimeError(f"401 for {{'token': '{token}'}}")

    pruner = _pruner(predictor=Leaky())
    study = optuna.create_study(pruner=pruner)
    with caplog.at_level(logging.WARNING):
        for value in (0.10, 0.20, 0.30, 0.90):
            _in_bracket(study, pruner, 0)
            last = _trial(study, _flat(value, 9))
    (record,) = _records.decisions(last.system_attrs).values()
    assert record["reason"].startswith("predictor fit failed: RuntimeError: 401 for {'token': ")
    everything = (
        caplog.text
        + repr(study._storage.get_study_system_attrs(study._study_id))
        + repr([(t.system_attrs, t.user_attrs) for t in study.trials])
    )
    assert "predictor fit failed" in caplog.text and "***" in everything
    assert token not in everything


def test_rescue_promotes_a_late_bloomer_that_asha_stops(study_name) -> None:
    """R=9, eta 3, bracket 1: rungs 3 and 9. Three finished trials (bracket 0) supply the
    curves; at r=3 the rung-mates are at 0.50, 0.60 and 0.70 and the trial at 0.65: ASHA (top
    1 of 4) stops it. A predictor whose forecast is the last value plus 6 times the last
    change sees it falling fast: forecast 0.05, the best of the rung's forecasts (rank rescue),
    and P(final <= 0.20, the best final) = Phi(1.5) = 0.933 under its normal error (chance
    rescue, which decides once the final-value model exists: 0.933 < 0.95 stops it)."""

    class Slope(LastValuePredictor):
        def predict(self, curves, params=None):
            curves = np.atleast_2d(curves)
            return curves[:, -1] + 6 * (curves[:, -1] - curves[:, -2]), np.full(len(curves), 0.1)

    cases = [
        ({"rescue": True}, "rescue: P(beats best final value so far (k=1)) 0.933 >= 0.5"),
        ({"rescue": "rank"}, "rescue: forecast within top 1/3 of "),
        ({"rescue_alpha": 0.95}, "rescue: P(beats best final value so far (k=1)) 0.933 < 0.95"),
        ({"rescue": False}, None),
        # Without regimes every trial runs with forecasts, the rescue included.
        ({"rescue": "rank", "min_rank_persistence": False}, "rescue: forecast within top 1/3 of "),
    ]
    for i, (options, reason) in enumerate(cases):
        pruner = _pruner(predictor=Slope(), alpha=0.001, **options)
        study = optuna.create_study(study_name=f"{study_name}-{i}", pruner=pruner)
        for value in (0.20, 0.30, 0.40):
            _in_bracket(study, pruner, 0)
            _trial(study, _flat(value, 9))
        for value in (0.50, 0.60, 0.70):
            _in_bracket(study, pruner, 1)
            _trial(study, {1: value, 2: value, 3: value, **_flat(value, 9)})
        _in_bracket(study, pruner, 1)
        curve = {1: 0.80, 2: 0.75, 3: 0.65, **{s: 0.3 for s in range(4, 10)}}
        trial = _trial(study, curve)
        promotion = _records.read_trial(trial.system_attrs).promotions[0]
        rescued = (reason is not None and ">=" in reason) or "rank" in str(options)
        assert trial.state == (TrialState.COMPLETE if rescued else TrialState.PRUNED), options
        if reason is None:
            assert promotion["decision"] == "stopped" and "rescued" not in promotion
        else:
            assert promotion["rescued"] == rescued, options
            assert promotion["decision"] == ("promoted" if rescued else "stopped")
            assert promotion["reason"].startswith(reason)


@pytest.mark.parametrize(
    ("among", "more", "value", "promoted", "rank", "of"),
    [
        ("study", (), 0.40, False, 4, 4),  # among 0.10, 0.20, 0.30 and itself: top 1 of 4
        ("study", (), 0.10, True, 1, 4),  # a tie with the best shares its rank
        ("study", (0.05, 0.50), 0.08, True, 2, 6),  # two more trials at 3: top 2 of 6
        ("bracket", (), 0.40, True, 1, 1),  # alone in its bracket's rung, as Hyperband ranks
    ],
)
def test_successive_halving_ranks_among_the_whole_study(
    study_name, among, more, value, promoted, rank, of
) -> None:
    """R=9, eta 3, no forecast. Trials of bracket 0 train to the end at 0.10, 0.20 and 0.30;
    a trial of bracket 1 (rungs 3 and 9) reaches r=3 first in its bracket. By default it
    ranks among every trial's value at 3 (``promote_among="study"``); Hyperband's successive
    halving ranks it among its bracket's rung-mates, none yet."""
    pruner = _pruner(
        min_train_curves=1000, max_train_curves=1000, rescue=False, promote_among=among
    )
    study = optuna.create_study(study_name=study_name, pruner=pruner)
    for final in (0.10, 0.20, 0.30, *more):
        _in_bracket(study, pruner, 0)
        _trial(study, _flat(final, 9))
    _in_bracket(study, pruner, 1)
    trial = _trial(study, _flat(value, 9))
    assert _records.regime_of_trial(trial.system_attrs)["regime"] == "forecast"
    promotion = _records.read_trial(trial.system_attrs).promotions[0]
    assert (promotion["decision"], promotion["rank"], promotion["of"]) == (
        "promoted" if promoted else "stopped",
        rank,
        of,
    )
    assert trial.state == (TrialState.COMPLETE if promoted else TrialState.PRUNED)


@pytest.mark.parametrize(
    ("fallback", "bracket", "value", "reason"),
    [
        # Bracket 1 (rungs 3, 9): the cut at 3 is the last. 0.20 ranks 2nd of 4 (top 1 goes
        # on) but equals the median of the others' 0.10, 0.20, 0.30 there: it trains on.
        ("median", 1, 0.20, "median rescue: at least as good as the median of 3 values at 3"),
        ("median", 1, 0.25, "median rescue: worse than the median of 3 values at 3"),
        ("none", 1, 0.20, None),
        # Bracket 2 (rungs 1, 3, 9): the cut at 1 is not the last, the fallback stays out.
        ("median", 2, 0.20, None),
    ],
)
def test_without_a_model_the_last_cut_may_fall_back_on_the_median(
    study_name, fallback, bracket, value, reason
) -> None:
    """R=9, eta 3, no model can exist (``min_train_curves`` 1000): the calibrated and the
    rank rescue have nothing to ask, so successive halving's stop stands, unless
    ``rescue_fallback="median"`` keeps a trial at the last cut (to ``max_resource``) that is
    at least as good as the median of every other trial's value there."""
    pruner = _pruner(min_train_curves=1000, max_train_curves=1000, rescue_fallback=fallback)
    study = optuna.create_study(study_name=study_name, pruner=pruner)
    for final in (0.10, 0.20, 0.30):
        _in_bracket(study, pruner, 0)
        _trial(study, _flat(final, 9))
    _in_bracket(study, pruner, bracket)
    trial = _trial(study, _flat(value, 9))
    promotion = _records.read_trial(trial.system_attrs).promotions[0]
    rescued = reason is not None and value <= 0.20
    assert promotion["decision"] == ("promoted" if rescued else "stopped")
    assert trial.state == (TrialState.COMPLETE if rescued else TrialState.PRUNED)
    if reason is None:
        assert "rescued" not in promotion and "reason" not in promotion
    else:
        assert (promotion["rescued"], promotion["reason"]) == (rescued, reason)


def test_the_rescue_fallback_is_median_or_none() -> None:
    assert _pruner()._options.rescue_fallback == "median"
    assert _pruner(rescue_fallback="none")._options.rescue_fallback == "none"
    with pytest.raises(ValueError, match="rescue_fallback must be one of"):
        _pruner(rescue_fallback="mean")


def test_a_rescue_at_the_first_of_three_rungs_forecasts_the_next_rung(study_name) -> None:
    """R=9, eta 3, bracket 2: rungs 1, 3 and 9. A rescue at r=1 forecasts the value at 3, the
    rung the trial would be promoted to, not the final one (in a two-rung bracket both are 9).
    Three finished trials of bracket 0 supply the curves; the rung-mates are at 0.50 to 0.70
    at r=1, the trial at 0.65: 6th of the study's 7 values there, successive halving stops it,
    the rank rescue forecasts it among its 3 rung-mates."""
    pruner = _pruner(rescue="rank", alpha=0.001)
    assert [r.budget for r in pruner.schedule.rungs(2)] == [1, 3, 9]
    study = optuna.create_study(study_name=study_name, pruner=pruner)
    for value in (0.20, 0.30, 0.40):
        _in_bracket(study, pruner, 0)
        _trial(study, _flat(value, 9))
    for value in (0.50, 0.60, 0.70, 0.65):
        _in_bracket(study, pruner, 2)
        trial = _trial(study, {1: value})
    promotion = _records.read_trial(trial.system_attrs).promotions[0]
    assert (promotion["budget"], promotion["rank"], promotion["of"]) == (1, 6, 7)
    assert promotion["reason"].endswith(" of 4 forecasts at 3"), promotion["reason"]


@pytest.mark.parametrize(
    ("weights", "expected"),
    [((1.0, 1.0, 0.0), {3, 2}), ((1.0, 0.0), {3}), ((1.0,), {0, 1, 2, 3})],
)
def test_bracket_weights_choose_the_brackets(weights, expected) -> None:
    pruner = SwiftHyperbandPruner(max_resource=50, mode="forecast", bracket_weights=weights)
    brackets = {pruner.bracket_of("w", n) for n in range(3000)}
    assert brackets == expected
    if weights == (1.0,):  # all ones: Optuna's own assignment
        assert pruner.schedule.allocation == pruner.schedule.bracket_sizes


def test_default_bracket_weights_keep_the_two_aggressive_brackets() -> None:
    pruner = SwiftHyperbandPruner(max_resource=50, mode="forecast")
    counts = np.bincount([pruner.bracket_of("d", n) for n in range(6000)], minlength=4)
    assert counts[0] == counts[1] == 0
    # Hyperband's sizes 12 : 27 for the two most aggressive brackets, the second weighted 1/4.
    assert counts[3] / counts[2] == pytest.approx(27 / 3, rel=0.15)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "forecast", "rank_quantile": 0.3},
        {"mode": "forecast", "full_fraction": 0.2},
        {"mode": "forecast", "forecast_final": True},
        {"mode": "paper", "alpha": 0.1},
        {"mode": "paper", "rescue": False},
        {"mode": "both"},
        {"mode": "forecast", "alpha": 0.6},
        {"mode": "forecast", "checkpoint_ratio": 1.0},
        {"mode": "forecast", "bracket_weights": (0.0, 1.0)},
        {"mode": "forecast", "top_k": 0},
        {"mode": "paper", "rescue_alpha": 0.3},
        {"mode": "forecast", "rescue": "always"},
        {"mode": "forecast", "rescue": 1},
        {"mode": "forecast", "rescue_alpha": 0.0},
        {"mode": "forecast", "rescue_alpha": 1.0},
    ],
)
def test_options_of_the_other_mode_are_an_error(kwargs) -> None:
    with pytest.raises(ValueError):
        SwiftHyperbandPruner(max_resource=9, **kwargs)


def test_rescue_reads_true_and_false_as_the_default_and_none() -> None:
    def rescue(value):
        return SwiftHyperbandPruner(max_resource=9, rescue=value)._options.rescue

    assert [rescue(v) for v in (True, False, "chance", "rank", "none")] == [
        "chance",
        "none",
        "chance",
        "rank",
        "none",
    ]
    assert SwiftHyperbandPruner(max_resource=9)._options.rescue == "chance"
    assert SwiftHyperbandPruner(max_resource=9)._options.rescue_alpha == 0.5


def test_named_predictors_get_an_error_model_in_forecast_mode() -> None:
    pruner = SwiftHyperbandPruner(max_resource=9, mode="forecast", predictor="qsvr")
    made = pruner.new_predictor()
    assert made.cv == 5 and made.residual  # calibration needs out-of-fold residuals
    assert (
        SwiftHyperbandPruner(max_resource=9, mode="paper", predictor="qsvr").new_predictor().cv
        == 0
    )


def test_new_predictor_is_an_unfitted_copy_the_user_can_fit() -> None:
    template = SVRPredictor(C=3.0, cv=5)
    pruner = SwiftHyperbandPruner(max_resource=9, predictor=template)
    made = pruner.new_predictor()
    assert made is not template and made.estimator_params == template.estimator_params
    rng = np.random.default_rng(0)
    curves = np.cumsum(rng.uniform(0.0, 0.1, size=(20, 4)), axis=1)
    made.fit(curves, curves[:, -1] + 0.05)
    assert made.residuals_ is not None
    # Fitting the copy leaves the pruner's template, and the next copy, unfitted.
    for unfitted in (template, pruner.new_predictor()):
        with pytest.raises(NotFittedError):
            unfitted.predict(curves)
    named = SwiftHyperbandPruner(max_resource=9, features=("curve", "diff1")).new_predictor()
    assert named.features == ("curve", "diff1")
    with pytest.raises(TypeError, match="returned dict, not a BasePredictor"):
        SwiftHyperbandPruner(max_resource=9, predictor=dict).new_predictor()


def test_svr_prob_below_is_the_conformal_rank_of_out_of_fold_residuals() -> None:
    rng = np.random.default_rng(0)
    rates = rng.uniform(0.05, 0.5, 40)
    curves = np.exp(-np.outer(rates, np.arange(1, 6)))
    final = np.exp(-rates * 20) + rng.normal(0, 0.01, 40)
    p = SVRPredictor(residual=True).fit(curves, final)
    residuals = p._fitted["residuals"]
    assert len(residuals) == 40 and np.all(np.diff(residuals) >= 0)
    mean = p.predict(curves[:1])[0][0]
    for threshold in (mean - 1.0, mean + residuals[19], mean + 1.0):
        below = np.sum(residuals <= threshold - mean)
        expected = (below + 1) / 41
        assert p.prob_below(curves[:1], np.array([threshold]))[0] == pytest.approx(expected)
    # The residuals travel with the model.
    q = SVRPredictor.from_json(p.to_json())
    assert np.array_equal(
        q.prob_below(curves, np.full(40, 0.1)), p.prob_below(curves, np.full(40, 0.1))
    )
