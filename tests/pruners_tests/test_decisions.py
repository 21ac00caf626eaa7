"""Rung bookkeeping without storage: ``_decisions`` and ``_curves`` on hand-made trials.

Every trial here is an Optuna ``FrozenTrial`` built with ``create_trial``; the predictor and
the rules are spies, so each test reads exactly what the decision saw: the curve slice (the
newest value at the decision step included), the pool, the threshold's sample, the rung's
values and forecasts, and the sign.
"""

from __future__ import annotations

import json
import math

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from optuna_qsvr import SwiftHyperbandPruner, _records
from optuna_qsvr.pruners import Verdict, _curves, _decisions
from optuna_qsvr.pruners._schedule import Rung

RUNG = Rung(bracket=0, index=0, previous=0, budget=9, decision_step=5, is_last=True)
RUNG1 = Rung(bracket=2, index=1, previous=1, budget=3, decision_step=2, is_last=False)


def _trial(
    values: dict[int, float] | None = None,
    *,
    number: int = 0,
    state: TrialState = TrialState.COMPLETE,
    records: dict | None = None,
    params: dict | None = None,
) -> optuna.trial.FrozenTrial:
    values = values or {}
    last = values[max(values)] if values else 0.0
    finished = state == TrialState.COMPLETE
    trial = optuna.trial.create_trial(
        state=state,
        value=(last if math.isfinite(last) else 0.0) if finished else None,
        intermediate_values=values,
        system_attrs={_records.decision_attr(r["rung"]): r for r in (records or {}).values()},
        params=params or {},
        distributions={k: optuna.distributions.FloatDistribution(-1e9, 1e9) for k in params or {}},
    )
    trial.number = number
    return trial


def _curve(f, steps: int = 9) -> dict[int, float]:
    return {s: float(f(s)) for s in range(1, steps + 1)}


def _decision(decision: str, key: str = "r9_t5", forecast=None, rung: int = 0) -> dict:
    record = _records.new_decision(
        bracket=0, rung=rung, budget=9, decision_step=5, step=5, key=key
    )
    record.update(decision=decision, forecast=forecast, reason="")
    return record


class SpyRule:
    """Keeps every trial and remembers what it was shown."""

    name = "spy"

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.contexts: list = []

    def decide(self, context):
        self.contexts.append(context)
        return Verdict(self.keep, "spy says so", {"seen": True})


class SpyPredictor:
    def __init__(self, forecast=0.25, sigma=0.1) -> None:
        self.forecast, self.sigma = forecast, sigma
        self.calls: list = []

    def predict(self, curves, params=None):
        curves = np.atleast_2d(curves)
        self.calls.append((curves.copy(), params))
        return np.full(len(curves), self.forecast), np.full(len(curves), self.sigma)


def _options(**kwargs):
    kwargs.setdefault("max_resource", 9)
    kwargs.setdefault("min_train_curves", 3)
    kwargs.setdefault("full_fraction", 0.0)
    return SwiftHyperbandPruner(mode="paper", **kwargs)._options


def _decide(trial, others, *, peers=None, sign=1.0, rung=RUNG, predictor=None, **options):
    predictor = SpyPredictor() if predictor is None else predictor
    spy = SpyRule(options.pop("keep", True))
    options.setdefault("rules", [spy])
    asked: list = []
    warned: list = []

    def get_predictor(*args):
        # (pool, decision step, target), or (key, pool) in the first layout of the parts
        key, pool = (
            args
            if isinstance(args[0], str)
            else (
                _records.predictor_key(args[2], args[1]),
                args[0],
            )
        )
        asked.append((key, pool))
        return (predictor, "") if predictor != "none" else (None, "no model yet")

    view = _decisions.RungView(trial=trial, rung=rung, sign=sign, others=others, peers=peers or [])
    target = options.pop("target", rung.budget)
    record = _decisions.forecast_record(
        view,
        _options(**options),
        target,
        get_predictor,
        warn=lambda key, message: warned.append((key, message)),
    )
    return record, spy, asked, warned


BASE = [
    _trial(_curve(lambda s, v=v: v + 0.1 / s), number=i) for i, v in enumerate((0.1, 0.3, 0.5))
]


# -- curves ---------------------------------------------------------------------------------
def test_value_at_reads_the_step_or_the_first_later_one() -> None:
    trial = _trial({1: 0.9, 2: 0.8, 5: 0.5, 7: math.nan, 8: -math.inf})
    assert _curves.value_at(trial, 2, 1.0) == 0.8
    assert _curves.value_at(trial, 3, 1.0) == 0.5  # steps 3 and 4 were skipped
    assert _curves.value_at(trial, 5, -1.0) == -0.5
    assert _curves.value_at(trial, 6, 1.0) == math.inf  # NaN is the worst value
    assert _curves.value_at(trial, 7, -1.0) == math.inf
    assert _curves.value_at(trial, 8, 1.0) == math.inf  # so is any infinity, either sign
    assert _curves.value_at(trial, 8, -1.0) == math.inf
    assert _curves.value_at(trial, 9, 1.0) is None


def test_curve_is_steps_one_to_t_with_nan_gaps_and_the_newest_value() -> None:
    trial = _trial({1: 0.9, 3: 0.7, 4: math.inf, 5: 0.2, 6: 0.1})
    np.testing.assert_array_equal(
        _curves.curve(trial, 5, 1.0), [0.9, math.nan, 0.7, math.nan, 0.2]
    )
    np.testing.assert_array_equal(
        _curves.curve(trial, 5, -1.0), [-0.9, math.nan, -0.7, math.nan, -0.2]
    )
    with pytest.raises(ValueError):
        _curves.curve(_trial({1: math.nan, 2: math.inf, 6: 0.1}), 5, 1.0)
    with pytest.raises(ValueError):
        _curves.curve(_trial({6: 0.1}), 5, 1.0)


def test_an_unusable_curve_says_why() -> None:
    # Reported but never finite: counted in steps 1..t only (step 0 and later steps aside).
    unusable = _trial({0: 0.3, 1: math.nan, 2: math.inf, 3: -math.inf, 5: 0.2})
    with pytest.raises(
        ValueError, match=r"^its 3 values in steps 1\.\.3 are all NaN or infinite$"
    ):
        _curves.curve(unusable, 3, 1.0)
    with pytest.raises(ValueError, match=r"^its 1 values in steps 1\.\.1 are all NaN"):
        _curves.curve(unusable, 1, 1.0)
    late = _trial({4: 0.5, 5: 0.4})
    with pytest.raises(
        ValueError, match=r"^no step in 1\.\.3 was reported \(its first step is 4\)"
    ):
        _curves.curve(late, 3, 1.0)
    with pytest.raises(
        ValueError, match=r"^no step in 1\.\.3 was reported \(it reported no step\)"
    ):
        _curves.curve(_trial({}), 3, 1.0)


def test_has_curve_needs_a_finite_start_and_a_finite_target() -> None:
    assert _curves.has_curve(_trial(_curve(lambda s: 1 / s)), 5, 9)
    assert not _curves.has_curve(_trial({1: 0.5, 2: 0.4}), 2, 9)  # never reached 9
    assert not _curves.has_curve(_trial({1: math.nan, 2: math.nan, 9: 0.1}), 2, 9)
    assert not _curves.has_curve(_trial({1: 0.5, 9: math.nan}), 2, 9)
    assert _curves.has_curve(_trial({2: 0.5, 10: 0.1}), 2, 9)  # target read at step 10
    assert not _curves.has_curve(_trial({3: 0.5, 9: 0.1}), 2, 9)
    assert not _curves.has_curve(_trial({0: 0.5, 9: 0.1}), 2, 9)  # step 0 is no epoch
    assert _curves.has_curve(_trial({1: 0.5, 9: 1e308}), 1, 9)  # finite, however large


# -- forecast decisions ---------------------------------------------------------------------
def test_the_predictor_sees_the_curve_up_to_and_including_the_decision_step() -> None:
    # Flat at 0.9 but for the newest value: a slice that dropped it would see no drop.
    own = _trial({1: 0.9, 2: 0.9, 3: math.nan, 4: 0.9, 5: 0.05}, params={"lr": 0.1}, number=9)
    predictor = SpyPredictor()
    record, _spy, asked, _ = _decide(own, BASE, predictor=predictor)
    ((curves, params),) = predictor.calls
    np.testing.assert_array_equal(curves, [[0.9, 0.9, math.nan, 0.9, 0.05]])
    assert params == [{"lr": 0.1}]
    assert record["decision"] == "kept" and record["reason"] == "spy says so"
    assert record["seen"] is True and record["forecast"] == 0.25
    assert asked == [("r9_t5", BASE)]


def test_maximising_flips_every_value_the_decision_sees() -> None:
    own = _trial({s: -(1 - s / 10) for s in range(1, 6)}, number=9)
    others = [_trial(_curve(lambda s, v=v: -v), number=i) for i, v in enumerate((1, 2, 3, 4))]
    peers = [
        others[0],
        _trial(
            {s: -5.0 for s in range(1, 6)}, number=5, records={0: _decision("kept", forecast=-7.0)}
        ),
    ]
    predictor = SpyPredictor(forecast=2.5)
    record, spy, _, _ = _decide(own, others, peers=peers, sign=-1.0, predictor=predictor)
    np.testing.assert_allclose(predictor.calls[0][0], [[0.9, 0.8, 0.7, 0.6, 0.5]])
    (context,) = spy.contexts
    assert context.forecast == 2.5
    assert context.threshold == pytest.approx(np.quantile([1, 2, 3, 4], 0.25))
    assert list(context.rung_values) == [1.0]  # peers[1] never reached step 9
    assert list(context.rung_forecasts) == [7.0]
    # Stored as the study sees them: maximised.
    assert record["forecast"] == -2.5 and record["threshold"] == -context.threshold


def test_full_training_until_enough_curves_then_the_quota() -> None:
    own = _trial(_curve(lambda s: 0.5), number=9)
    record, spy, asked, _ = _decide(own, BASE[:2])
    assert (record["decision"], record["reason"]) == ("full", "training curves 2+0 of 3")
    assert record["forecast"] is None and not spy.contexts and not asked
    # Quota: full_fraction 1 with eta 3 sends 1 in 3 to full training.
    peers = [_trial(number=20 + i, records={0: _decision("kept")}) for i in range(2)]
    record, *_ = _decide(own, BASE, peers=peers, full_fraction=1.0)
    assert (record["decision"], record["reason"]) == ("full", "full quota 0 of 1")
    # Seven decided need ceil(8 / 3) = 3 full; two decided with one full need 1.
    peers[1] = _trial(number=30, records={0: _decision("full")})
    record, *_ = _decide(own, BASE, peers=peers, full_fraction=1.0)
    assert record["decision"] == "kept"
    many = [
        _trial(number=40 + i, records={0: _decision("full" if i < 2 else "kept")})
        for i in range(7)
    ]
    record, *_ = _decide(own, BASE, peers=many, full_fraction=1.0)
    assert (record["decision"], record["reason"]) == ("full", "full quota 2 of 3")


def test_running_full_trainings_of_the_key_count_as_curves_in_flight() -> None:
    own = _trial(_curve(lambda s: 0.5), number=9)
    running = _trial(
        {1: 0.5, 2: 0.4}, number=7, state=TrialState.RUNNING, records={0: _decision("full")}
    )
    record, *_ = _decide(own, [*BASE[:2], running])
    assert record["decision"] == "kept"  # 2 curves + 1 in flight
    # Not in flight: another key's full training, a finished trial, a trial with the curve.
    for other in (
        _trial(
            {1: 0.5}, number=7, state=TrialState.RUNNING, records={0: _decision("full", "r27_t5")}
        ),
        _trial({1: 0.5}, number=7, state=TrialState.RUNNING, records={0: _decision("kept")}),
        _trial({1: 0.5}, number=7, state=TrialState.PRUNED, records={0: _decision("full")}),
    ):
        record, *_ = _decide(own, [*BASE[:2], other])
        assert record["reason"] == "training curves 2+0 of 3", other


def test_the_pool_holds_the_others_with_a_curve_to_learn_from() -> None:
    short = _trial({1: 0.5, 2: 0.4}, number=3)  # never reached the target
    blank = _trial({1: math.nan, 9: 0.1}, number=4)
    own = _trial(_curve(lambda s: 0.5), number=9)
    record, spy, asked, _ = _decide(own, [*BASE, short, blank])
    assert [t.number for t in asked[0][1]] == [0, 1, 2]
    # The threshold's sample is the pool's values at the target (no full rung-mates yet).
    values = [t.intermediate_values[9] for t in BASE]
    assert spy.contexts[0].threshold == pytest.approx(np.quantile(values, 0.25))
    assert record["threshold_basis"] == "all curves of key"


def test_the_threshold_uses_the_rungs_full_trainings_once_there_are_some() -> None:
    own = _trial(_curve(lambda s: 0.5), number=9)
    full = [
        _trial(_curve(lambda s, v=v: v), number=10 + i, records={0: _decision("full")})
        for i, v in enumerate((0.6, 0.8, math.nan))
    ]
    kept = _trial(_curve(lambda s: 0.01), number=20, records={0: _decision("kept")})
    record, spy, _, _ = _decide(own, [*BASE, *full, kept], peers=[*full, kept])
    # NaN (a diverged full training) is left out of the quantile: quantile([.6, .8], .25).
    assert spy.contexts[0].threshold == pytest.approx(0.65)
    assert record["threshold_basis"] == "rung full trainings"
    assert list(spy.contexts[0].rung_values) == [0.6, 0.8, math.inf, 0.01]
    # Forecasts of the final value must beat the best final value so far.
    record, spy, _, _ = _decide(own, [*BASE, *full, kept], peers=full, forecast_final=True)
    assert spy.contexts[0].threshold == pytest.approx(0.01)
    assert record["threshold_basis"] == "best final value so far"


def test_no_forecast_when_there_is_no_predictor_curve_or_finite_forecast() -> None:
    own = _trial(_curve(lambda s: 0.5), number=9)
    record, spy, _, _ = _decide(own, BASE, predictor="none")
    assert (record["decision"], record["reason"]) == ("no-forecast", "no model yet")
    assert (record["bracket"], record["budget"], record["key"]) == (0, 9, "r9_t5")
    assert not spy.contexts
    blank = _trial({1: math.nan, 2: math.inf, 6: 0.5}, number=9)
    record, _, asked, _ = _decide(blank, BASE)
    assert record["decision"] == "no-forecast" and record["reason"].startswith("the trial's curve")
    assert (record["bracket"], record["budget"], record["key"]) == (0, 9, "r9_t5")
    assert not asked
    for bad in (math.nan, math.inf):
        record, spy, _, warned = _decide(own, BASE, predictor=SpyPredictor(forecast=bad))
        assert record["decision"] == "no-forecast" and not spy.contexts
        assert record["reason"] == f"predictor failed: ValueError: non-finite forecast {bad}"
        assert warned == [("r9_t5", record["reason"])]
        assert record["forecast"] is None


def test_a_rule_that_raises_falls_back_to_asha() -> None:
    class Broken:
        name = "broken"

        def decide(self, context):
            raise ZeroDivisionError("oops")

    own = _trial(_curve(lambda s: 0.5), number=9)
    record, _, _, warned = _decide(own, BASE, rules=[Broken()])
    assert record["decision"] == "no-forecast"
    assert record["reason"] == "rule failed: ZeroDivisionError: oops"
    assert (record["bracket"], record["budget"], record["key"]) == (0, 9, "r9_t5")
    assert warned == [("r9_t5", "rule failed: ZeroDivisionError: oops")]


class _Says:
    """A rule answering ``verdict`` whatever it is asked."""

    name = "says"

    def __init__(self, verdict) -> None:
        self.verdict = verdict

    def decide(self, context):
        return self.verdict


_NOT_A_VERDICT = "TypeError: rule 'says' returned {}, not a Verdict with a str reason"
_NOT_STR_KEYS = "TypeError: rule 'says': Verdict.extra must map str keys to JSON values"
_NOT_JSON = "TypeError: rule 'says': Verdict.extra is not finite JSON data: "
_CLASH = "ValueError: Verdict.extra would overwrite the record's {}"


@pytest.mark.parametrize(
    ("verdict", "reason"),
    [
        ("prune", _NOT_A_VERDICT.format("'prune'")),
        (
            Verdict(False, None),
            _NOT_A_VERDICT.format("Verdict(keep=False, reason=None, extra={})"),
        ),
        (Verdict(False, "no", {"decision": "kept"}), _CLASH.format("['decision']")),
        (Verdict(False, "no", {"reason": "another"}), _CLASH.format("['reason']")),
        (
            Verdict(True, "yes", {"forecast": 0.0, "key": "k"}),
            _CLASH.format("['forecast', 'key']"),
        ),
        (Verdict(False, "no", {1: 2}), _NOT_STR_KEYS),
        (Verdict(False, "no", ["score"]), _NOT_STR_KEYS),
        (Verdict(False, "no", {"score": np.float32(0.5)}), _NOT_JSON + "Object of type float32"),
        (Verdict(False, "no", {"score": object()}), _NOT_JSON + "Object of type object"),
        (Verdict(False, "no", {"score": math.nan}), _NOT_JSON + "Out of range float values"),
    ],
)
def test_a_verdict_that_cannot_be_recorded_falls_back_to_asha(verdict, reason) -> None:
    # A user's rule in the paper mode: its verdict goes into a JSON record, and one that
    # cannot is the rule's failure, never the trial's.
    own = _trial(_curve(lambda s: 0.5), number=9)
    record, _, _, warned = _decide(own, BASE, rules=[_Says(verdict)])
    assert record["decision"] == "no-forecast"
    assert record["reason"].startswith("rule failed: " + reason)
    assert warned == [("r9_t5", record["reason"])]
    assert (record["bracket"], record["budget"], record["key"]) == (0, 9, "r9_t5")
    _records.validate_decision(record)
    json.dumps(record, allow_nan=False)


def test_a_verdicts_extra_fields_join_the_record() -> None:
    own = _trial(_curve(lambda s: 0.5), number=9)
    verdict = Verdict(False, "too slow", {"score": 0.25, "votes": [1, 2]})
    record, _, _, warned = _decide(own, BASE, rules=[_Says(verdict)])
    assert (record["decision"], record["reason"]) == ("pruned", "too slow")
    assert (record["score"], record["votes"]) == (0.25, [1, 2]) and not warned


def test_a_pruned_verdict_is_recorded_with_the_forecast() -> None:
    own = _trial(_curve(lambda s: 0.5), number=9)
    record, *_ = _decide(own, BASE, keep=False)
    assert record["decision"] == "pruned" and record["reason"] == "spy says so"
    assert record["forecast"] == 0.25 and record["key"] == "r9_t5"
    assert (record["rung"], record["budget"], record["decision_step"]) == (0, 9, 5)
    assert record["step"] == 9 and record["bracket"] == 0
    _records.validate_decision(record)


def test_peer_forecasts_are_of_the_most_recent_trials_that_reached_the_step() -> None:
    others = [
        _trial(
            {s: 1.0 + i for s in range(1, 6)},
            number=i,
            state=TrialState.RUNNING,
            params={"lr": float(i)},
        )
        for i in range(20)
    ]
    others.append(_trial({1: 0.5, 2: 0.4}, number=30, state=TrialState.RUNNING))  # not at t*
    others.append(_trial({s: math.nan for s in range(1, 6)}, number=31))  # NaN at t*
    own = _trial(_curve(lambda s: 0.5), number=40)
    predictor = SpyPredictor()
    _, spy, _, _ = _decide(own, [*BASE, *others], predictor=predictor, max_train_curves=3)
    assert len(predictor.calls) == 1  # not computed until a rule asks
    forecasts = spy.contexts[0].others_forecasts()
    # The last 5 * max_train_curves = 15 of those that reached t* = 5 with a finite value.
    assert len(forecasts) == 15
    np.testing.assert_array_equal(predictor.calls[1][0][:, -1], [1.0 + i for i in range(5, 20)])
    assert [p["lr"] for p in predictor.calls[1][1]] == list(range(5, 20))  # with their params


def test_no_peer_reached_the_step() -> None:
    own = _trial(_curve(lambda s: 0.5), number=40)
    pool = [_trial({1: 0.5, 2: 0.4, 9: 0.3}, number=i) for i in range(3)]
    _, spy, _, _ = _decide(own, pool)
    assert spy.contexts[0].others_forecasts().shape == (0,)


# -- promotions -----------------------------------------------------------------------------
def _promotion(own, peers, sign=1.0, eta=3, rung=RUNG1):
    view = _decisions.RungView(trial=own, rung=rung, sign=sign, others=peers, peers=peers)
    return _decisions.promotion_record(view, eta)


def test_promotion_ranks_the_rung_with_ties_in_the_trials_favour() -> None:
    peers = [_trial({3: v}, number=i) for i, v in enumerate((0.1, 0.2, 0.3, 0.4, 0.5))]
    # 6 in the rung, eta 3: the top 2 are promoted; a tie with the 2nd is promoted.
    record = _promotion(_trial({3: 0.2}, number=9), peers)
    assert (record["decision"], record["rank"], record["of"]) == ("promoted", 2, 6)
    assert record["value"] == 0.2 and record["budget"] == 3 and record["step"] == 3
    record = _promotion(_trial({3: 0.25}, number=9), peers)
    assert (record["decision"], record["rank"], record["of"]) == ("stopped", 3, 6)
    # Fewer than eta in the rung: the best alone is promoted.
    assert _promotion(_trial({3: 0.15}, number=9), peers[:1])["decision"] == "stopped"
    assert _promotion(_trial({3: 0.05}, number=9), peers[:1])["decision"] == "promoted"
    # Maximising: values are compared negated and stored as reported.
    flipped = [_trial({3: -v}, number=i) for i, v in enumerate((0.1, 0.2, 0.3, 0.4, 0.5))]
    record = _promotion(_trial({3: -0.45}, number=9), flipped, sign=-1.0)
    assert (record["decision"], record["rank"], record["value"]) == ("stopped", 5, -0.45)


def test_promotion_counts_rung_mates_pruned_on_a_forecast() -> None:
    # Forecast-pruned rung-mates never reached r_i = 3: they count with their forecast when
    # it was of r_i, else as the worst value. Rung-mates still running below r_i do not count.
    pruned_here = _trial(
        {1: 0.9, 2: 0.8}, number=1, records={1: _decision("pruned", "r3_t2", 0.05, rung=1)}
    )
    pruned_final = _trial(
        {1: 0.9, 2: 0.8}, number=2, records={1: _decision("pruned", "r9_t2", 0.01, rung=1)}
    )
    kept_here = _trial(
        {1: 0.9, 2: 0.8}, number=3, records={1: _decision("kept", "r3_t2", 0.02, rung=1)}
    )
    running = _trial({1: 0.9}, number=4, state=TrialState.RUNNING)
    done = _trial({3: 0.3}, number=5)
    peers = [pruned_here, pruned_final, kept_here, running, done]
    record = _promotion(_trial({3: 0.2}, number=9), peers)
    # Ranked among 0.05 (forecast), inf (forecast of another step), 0.3 and itself: 2 of 4.
    assert (record["rank"], record["of"], record["decision"]) == (2, 4, "stopped")
    record = _promotion(_trial({3: 0.04}, number=9), peers)
    assert (record["rank"], record["of"], record["decision"]) == (1, 4, "promoted")
    # Maximising, the stored forecast is negated back before ranking.
    flipped = _trial(
        {1: -0.9, 2: -0.8}, number=1, records={1: _decision("pruned", "r3_t2", -0.05, rung=1)}
    )
    record = _promotion(_trial({3: -0.2}, number=9), [flipped, _trial({3: -0.3}, number=5)], -1.0)
    assert (record["rank"], record["of"]) == (2, 3)


def test_a_nan_value_at_the_budget_is_never_promoted() -> None:
    record = _promotion(_trial({3: math.nan}, number=9), [])
    assert (record["decision"], record["value"], record["rank"]) == ("stopped", None, 1)
    peers = [_trial({3: math.nan}, number=1), _trial({3: math.inf}, number=2)]
    record = _promotion(_trial({3: 5.0}, number=9), peers)
    assert (record["decision"], record["rank"], record["of"]) == ("promoted", 1, 3)


# -- the forecast mode's bars and rescues ---------------------------------------------------
def _pruned_at(budget: int, decision: str = "pruned") -> dict:
    record = _records.new_decision(
        bracket=2, rung=1, budget=budget, decision_step=2, step=2, key=f"r{budget}_t2"
    )
    record.update(decision=decision, reason="")
    return record


def _view(own, others, peers=None, rung=RUNG1, sign=1.0):
    peers = others if peers is None else peers
    return _decisions.RungView(trial=own, rung=rung, sign=sign, others=others, peers=peers)


def test_rung_bar_is_the_top_fraction_counting_early_stops_below_it() -> None:
    reached = [_trial({1: 0.9, 3: v}, number=i) for i, v in enumerate((0.5, 0.1, 0.4, 0.2, 0.3))]
    own = _trial({1: 0.9}, number=9, state=TrialState.RUNNING)
    # Five values at r_i = 3, eta 3: the ceil(5 / 3) = 2nd best.
    assert _decisions._rung_bar(_view(own, reached), 3) == (0.2, "top 1/3 at 3")
    # Exactly eta values: the best; fewer: no bar yet.
    assert _decisions._rung_bar(_view(own, reached[:3]), 3) == (0.1, "top 1/3 at 3")
    assert _decisions._rung_bar(_view(own, reached[:2]), 3) == (None, "")
    # Three trials stopped early in a rung ending at 3 rank below every value; with the six
    # values at 3 (0.6 below), the ceil(9 / 3) = 3rd. Not counted: a stop of a rung ending
    # elsewhere, a kept trial that stopped reporting, and a trial pruned at 3 itself (it
    # reached the budget: its value counts).
    stopped = [
        _trial({1: 0.9, 2: 0.8}, number=10, records={1: _pruned_at(3)}),
        _trial({1: 0.9, 2: 0.8}, number=11, records={1: _pruned_at(3)}),
        _trial({1: 0.9}, number=15, records={1: _pruned_at(3)}),
        _trial({1: 0.9, 2: 0.8}, number=12, records={1: _pruned_at(9)}),
        _trial({1: 0.9, 2: 0.8}, number=13, records={1: _pruned_at(3, "kept")}),
        _trial({1: 0.9, 3: 0.6}, number=14, records={1: _pruned_at(3)}),
    ]
    assert _decisions._rung_bar(_view(own, reached + stopped), 3) == (0.3, "top 1/3 at 3")
    # Many stops: the bar is the worst value at the budget, never past it.
    many = [_trial({1: 0.9}, number=20 + i, records={1: _pruned_at(3)}) for i in range(30)]
    assert _decisions._rung_bar(_view(own, reached + many), 3)[0] == 0.5
    # Another budget (the next rung's): the values there.
    later = [_trial({9: v}, number=30 + i) for i, v in enumerate((0.7, 0.6, 0.8))]
    assert _decisions._rung_bar(_view(own, later), 3, 9) == (0.6, "top 1/3 at 9")


def test_final_bar_is_the_kth_best_final_value_once_k_exist() -> None:
    finals = [_trial({1: 0.9, 3: v}, number=i) for i, v in enumerate((0.5, math.nan, 0.2, 0.4))]
    own = _trial({1: 0.9}, number=9, state=TrialState.RUNNING)
    options = SwiftHyperbandPruner(max_resource=3, top_k=2)._options
    # Non-finite finals are left out: 0.2, 0.4, 0.5; the 2nd best.
    assert _decisions._final_bar(_view(own, finals), options) == (
        0.4,
        "best final value so far (k=2)",
    )
    assert _decisions._final_bar(_view(own, finals[:1] + finals[2:3]), options)[0] == 0.5
    assert _decisions._final_bar(_view(own, finals[:2]), options) == (None, "")


def test_a_failed_trials_last_report_is_no_final_value() -> None:
    # A trial that reported its last epoch and then raised: the study keeps no value of it
    # (study.best_value ignores it), so the bar does not either; a running one that reached
    # the end counts, it is about to complete.
    failed = _trial({1: 0.9, 3: 0.05}, number=0, state=TrialState.FAIL)
    done = [_trial({1: 0.9, 3: v}, number=i) for i, v in ((1, 0.4), (2, 0.2))]
    running = _trial({1: 0.9, 3: 0.3}, number=3, state=TrialState.RUNNING)
    own = _trial({1: 0.9}, number=9, state=TrialState.RUNNING)
    options = SwiftHyperbandPruner(max_resource=3)._options
    assert _decisions._final_bar(_view(own, [failed, *done]), options)[0] == 0.2
    options = SwiftHyperbandPruner(max_resource=3, top_k=2)._options
    assert _decisions._final_bar(_view(own, [failed, *done, running]), options)[0] == 0.3


def test_forecast_mode_ranks_rung_mates_stopped_early_below_every_value() -> None:
    peers = [
        _trial({1: 0.9, 3: 0.3}, number=1),
        _trial({1: 0.9, 3: 0.4}, number=2),
        *[_trial({1: 0.9}, number=3 + i, records={1: _pruned_at(3)}) for i in range(3)],
        _trial({1: 0.9}, number=7, state=TrialState.RUNNING, records={1: _pruned_at(3, "kept")}),
    ]
    view = _view(_trial({1: 0.9, 3: 0.35}, number=9), peers)
    # Ranked among 0.3, 0.4, three stops at inf and itself: 2nd of 6, within the top 2.
    record = _decisions.promotion_record(view, 3, stopped_rank_last=True)
    assert (record["decision"], record["rank"], record["of"]) == ("promoted", 2, 6)
    # Without the stops it would rank 2nd of 3, outside the top 1.
    alone = _decisions.promotion_record(_view(view.trial, peers[:2]), 3, stopped_rank_last=True)
    assert (alone["decision"], alone["rank"], alone["of"]) == ("stopped", 2, 3)
    # Stops forecast at 0.1 at r_i still rank last here; the paper mode ranks them at their
    # forecast, and the trial 5th of 6 is stopped.
    stops = [
        _trial({1: 0.9}, number=3 + i, records={1: _pruned_at(3) | {"forecast": 0.1}})
        for i in range(3)
    ]
    view = _view(view.trial, [*peers[:2], *stops])
    assert _decisions.promotion_record(view, 3, stopped_rank_last=True)["decision"] == "promoted"
    paper = _decisions.promotion_record(view, 3, stopped_rank_last=False)
    assert (paper["decision"], paper["rank"], paper["of"]) == ("stopped", 5, 6)


class ParamsForecast:
    """Forecasts each row's ``f`` parameter, with no error model."""

    def predict(self, curves, params=None):
        return np.array([p["f"] for p in params]), np.full(len(params), math.nan)


def test_rank_rescue_ranks_the_trials_forecast_among_the_rung_mates() -> None:
    mates = [
        _trial({1: 0.9, 3: 0.5}, number=i, params={"f": f})
        for i, f in enumerate((0.1, 0.2, 0.3, 0.5, 0.6))
    ]
    # Not a rung-mate for the rescue: no finite value at r_i = 3.
    mates.append(_trial({1: 0.9, 3: math.nan}, number=8, params={"f": 0.0}))
    asked = []

    def get_predictor(pool, step, target):
        asked.append((len(pool), step, target))
        return ParamsForecast(), ""

    def rescue(f):
        own = _trial({1: 0.9, 3: 0.5}, number=9, params={"f": f})
        return _decisions.rescue_verdict(_view(own, mates), 9, 3, get_predictor)

    # Six forecasts at 9, eta 3: the top 2 are kept; 0.2 is the 2nd best.
    assert rescue(0.15) == (True, "rescue: forecast within top 1/3 of 6 forecasts at 9")
    assert rescue(0.25) == (False, "rescue: forecast outside top 1/3 of 6 forecasts at 9")
    assert asked[0] == (0, 3, 9)  # none of them reached 9: nothing to learn from yet

    def no_model(pool, step, target):
        return None, "no model yet"

    own = _trial({1: 0.9, 3: 0.5}, number=9, params={"f": 0.1})
    assert _decisions.rescue_verdict(_view(own, mates), 9, 3, no_model) is None


def test_chance_rescue_needs_the_chance_to_beat_every_bar_it_can_forecast() -> None:
    """R = 27, a stop at r_i = 3 with the next rung at 9: the trial is rescued when its
    calibrated chance to beat the best final value (0.2) and the next rung's bar (the best
    value at 9 of three, 0.25) is at least rescue_alpha = 0.3 for each bar with a model."""
    options = SwiftHyperbandPruner(max_resource=27, rescue_alpha=0.3)._options
    others = [
        _trial({s: v + (0.05 if s < 27 else 0.0) for s in range(1, 28)}, number=i)
        for i, v in enumerate((0.2, 0.3, 0.4))
    ]
    own = _trial({1: 0.9, 2: 0.8, 3: 0.7}, number=9, params={"lr": 0.1})
    rung = Rung(bracket=2, index=0, previous=0, budget=3, decision_step=2, is_last=False)
    view = _view(own, others, rung=rung)
    asked: list = []

    class Chance:
        def __init__(self, p):
            self.p = p

        def prob_below(self, curves, thresholds, params=None):
            asked.append((curves.tolist(), thresholds.tolist(), params))
            return np.array([self.p])

    def rescue(chances: dict, next_budget: int = 9, view=view):
        asked.clear()

        def get_predictor(pool, step, target):
            assert step == 3 and len(pool) == 3
            p = chances.get(target)
            return (None, "no model yet") if p is None else (Chance(p), "")

        return _decisions.chance_rescue(view, options, next_budget, get_predictor)

    final, rung_bar = "best final value so far (k=1)", "top 1/3 at 9"
    assert rescue({27: 0.4, 9: 0.5}) == (
        True,
        f"rescue: P(beats {final}) 0.400, P(beats {rung_bar}) 0.500 >= 0.3",
    )
    # The trial's curve to r_i, each bar, and the trial's params reach the predictor.
    assert asked == [
        ([[0.9, 0.8, 0.7]], [0.2], [{"lr": 0.1}]),
        ([[0.9, 0.8, 0.7]], [0.25], [{"lr": 0.1}]),
    ]
    assert rescue({27: 0.3, 9: 0.3})[0] is True  # exactly rescue_alpha is enough
    assert rescue({27: 0.2999, 9: 0.9}) == (False, f"rescue: P(beats {final}) 0.300 < 0.3")
    assert rescue({27: 0.9, 9: 0.1}) == (False, f"rescue: P(beats {rung_bar}) 0.100 < 0.3")
    # A bar without a model or without a finite chance is left out; with none: no verdict.
    assert rescue({9: 0.5}) == (True, f"rescue: P(beats {rung_bar}) 0.500 >= 0.3")
    assert rescue({27: math.nan, 9: 0.1})[0] is False
    assert rescue({27: math.nan, 9: math.nan}) is None
    assert rescue({}) is None
    # The next rung is the last: the final value is the only bar.
    assert rescue({27: 0.5, 9: 0.0}, next_budget=27) == (
        True,
        f"rescue: P(beats {final}) 0.500 >= 0.3",
    )
    assert [thresholds for _, thresholds, _ in asked] == [[0.2]]
    # No trial has reached 27 yet: no final bar, the next rung's decides alone.
    young = [_trial({s: v for s in range(1, 10)}, number=i) for i, v in enumerate((0.3, 0.4, 0.5))]
    assert rescue({27: 0.0, 9: 0.6}, view=_view(own, young, rung=rung)) == (
        True,
        "rescue: P(beats top 1/3 at 9) 0.600 >= 0.3",
    )
    assert [thresholds for _, thresholds, _ in asked] == [[0.3]]


# -- the forecast mode's rescue -------------------------------------------------------------
class NormalSpy(SpyPredictor):
    """A forecast with a normal error: P(value <= threshold) = Phi((threshold - f) / sigma)."""

    def prob_below(self, curves, thresholds, params=None):
        from scipy.stats import norm

        self.calls.append((np.atleast_2d(curves).copy(), params))
        return norm.cdf((np.asarray(thresholds) - self.forecast) / self.sigma)


def _rescue(others, predictor, *, max_resource=27, **options):
    asked: list = []

    def get_predictor(pool, step, target):
        asked.append((target, step, [t.number for t in pool]))
        return (predictor, "") if predictor != "none" else (None, "no model yet")

    rung = Rung(bracket=0, index=1, previous=1, budget=3, decision_step=None, is_last=False)
    trial = _trial({1: 0.9, 2: 0.7, 3: 0.6}, number=9, state=TrialState.RUNNING)
    view = _decisions.RungView(trial=trial, rung=rung, sign=1.0, others=others, peers=[])
    options = {"rescue_alpha": 0.3, **options}  # the chances below are read against 0.3
    pruner = SwiftHyperbandPruner(max_resource=max_resource, min_train_curves=3, **options)
    return _decisions.chance_rescue(view, pruner._options, 9, get_predictor), asked


def test_chance_rescue_needs_both_the_final_and_the_next_rungs_bar() -> None:
    def finished(number: int, at_9: float, final: float):
        return _trial({**{s: at_9 for s in range(1, 10)}, 27: final}, number=number)

    # Final values 0.1, 0.3, 0.5: the bar is the best, 0.1; P(final <= 0.1) = Phi(0) = 0.5.
    # Values at the next rung (9) 0.5, 0.6, 0.7: its bar (top 1/3) is 0.5, P = Phi(4) ~ 1.
    others = [finished(i, v9, f) for i, (v9, f) in enumerate(((0.5, 0.1), (0.6, 0.3), (0.7, 0.5)))]
    predictor = NormalSpy(forecast=0.1, sigma=0.1)
    verdict, asked = _rescue(others, predictor)
    assert verdict == (
        True,
        "rescue: P(beats best final value so far (k=1)) 0.500, P(beats top 1/3 at 9) 1.000 >= 0.3",
    )
    # Both models are of the rung's end (step 3): the final one and the next rung's.
    assert asked == [(27, 3, [0, 1, 2]), (9, 3, [0, 1, 2])]
    # The curve given to the predictor is steps 1..3, the newest value included.
    np.testing.assert_array_equal(predictor.calls[0][0], [[0.9, 0.7, 0.6]])
    # Above the chance asked for: stopped, even though the final bar alone would not stop it.
    verdict, _ = _rescue(others, NormalSpy(forecast=0.1, sigma=0.1), rescue_alpha=0.6)
    assert verdict == (False, "rescue: P(beats best final value so far (k=1)) 0.500 < 0.6")
    # A strict next-rung bar (0.0) stops it: P = Phi(-1) = 0.159 < 0.3.
    strict = [finished(i, v9, f) for i, (v9, f) in enumerate(((0.0, 0.1), (0.6, 0.3), (0.7, 0.5)))]
    verdict, _ = _rescue(strict, NormalSpy(forecast=0.1, sigma=0.1))
    assert verdict == (False, "rescue: P(beats top 1/3 at 9) 0.159 < 0.3")
    # top_k=2 compares with the second best final value, 0.3: P = Phi(2) = 0.977.
    verdict, _ = _rescue(others, NormalSpy(forecast=0.1, sigma=0.1), top_k=2)
    assert verdict is not None and "(k=2)) 0.977" in verdict[1]


def test_chance_rescue_abstains_without_models_or_bars() -> None:
    others = [_trial({**{s: 0.5 for s in range(1, 10)}, 27: 0.2}, number=0)]
    # No model: the rank rescue decides.
    assert _rescue(others, "none")[0] is None
    # One finished trial, top_k=2: no final bar; fewer than eta values at 9: no rung bar.
    verdict, asked = _rescue(others, NormalSpy(), top_k=2)
    assert verdict is None and asked == []
    # With max_resource = the next rung, only the final value is a target.
    verdict, asked = _rescue(others, NormalSpy(forecast=0.1, sigma=0.1), max_resource=9)
    assert [a[0] for a in asked] == [9] and verdict is not None and verdict[0]


def test_chance_record_tries_each_bar_with_the_trials_params_or_says_why_not() -> None:
    """R = 27, the first rung ends at 3, decision point 2: the final bar is tried first, and
    a bar without a value or without a model passes to the rung's bar."""
    options = SwiftHyperbandPruner(max_resource=27, min_train_curves=3)._options
    rung = Rung(bracket=0, index=0, previous=0, budget=3, decision_step=2, is_last=False)
    own = _trial({1: 0.9, 2: 0.8}, number=9, state=TrialState.RUNNING, params={"lr": 0.1})
    # Values at 3 of 0.2, 0.3, 0.4: the rung's bar (top 1/3) is 0.2.
    running = [
        _trial({1: 0.9, 2: 0.8, 3: v}, number=i, state=TrialState.RUNNING)
        for i, v in enumerate((0.2, 0.3, 0.4))
    ]
    finished = [_trial({**{s: 0.5 for s in range(1, 27)}, 27: 0.1}, number=5), *running]

    def record(others, models: dict, trial=own):
        def get_predictor(pool, step, target):
            return (models[target], "") if target in models else (None, "no model yet")

        view = _decisions.RungView(trial=trial, rung=rung, sign=1.0, others=others, peers=[])
        return _decisions.chance_record(view, options, 2, get_predictor, lambda *a: None)

    spy = NormalSpy(forecast=0.9, sigma=0.1)  # P(value <= 0.3) = Phi(-6): pruned
    # No final value yet (nothing finished), then a final value but no model for it: both
    # times the rung's bar decides (with the finished trial's 0.5 at 3, the 2nd of four),
    # with the trial's own params.
    for others, models, bar in ((running, {27: spy, 3: spy}, 0.2), (finished, {3: spy}, 0.3)):
        spy.calls.clear()
        pruned = record(others, models)
        assert pruned is not None and pruned["decision"] == "pruned", pruned
        assert (pruned["threshold"], pruned["threshold_basis"]) == (bar, "top 1/3 at 3")
        assert pruned["forecast"] == 0.9 and pruned["key"] == _records.predictor_key(3, 2)
        assert spy.calls and all(params == [{"lr": 0.1}] for _, params in spy.calls)
    # A trial likely to beat both bars trains on, recorded with its last forecast (the
    # rung's bar, checked against the value it reaches at 3); no model, no record.
    final, at_3 = NormalSpy(forecast=0.05, sigma=0.01), NormalSpy(forecast=0.07, sigma=0.01)
    kept = record(finished, {27: final, 3: at_3})
    assert kept is not None and kept["decision"] == "kept", kept
    assert final.calls and at_3.calls  # both bars asked, neither prunes
    assert kept["key"] == _records.predictor_key(3, 2) and kept["forecast"] == 0.07
    assert (kept["threshold"], kept["threshold_basis"]) == (0.3, "top 1/3 at 3")
    assert record(finished, {}) is None
    # A curve with nothing to read: no forecast, the record says why.
    blank = _trial({1: math.nan, 2: math.nan}, number=9, state=TrialState.RUNNING)
    unread = record(running, {27: spy, 3: spy}, trial=blank)
    base = _records.new_decision(
        bracket=0, rung=0, budget=3, decision_step=2, step=2, key=_records.predictor_key(27, 2)
    )
    assert unread is not None and unread.pop("reason").startswith("the trial's curve: ")
    assert unread == base | {"decision": "no-forecast"}


def test_a_checkpoint_lies_strictly_inside_its_rung_even_across_a_gap() -> None:
    rung = Rung(bracket=0, index=1, previous=3, budget=9, decision_step=None, is_last=False)
    gap = _trial({1: 0.9, 2: 0.8, 5: 0.7}, number=9, state=TrialState.RUNNING)  # skipped 3
    # Ratio 3 from 1: the points 1, 3, 9 are the rungs' ends, none strictly inside (3, 9).
    assert _decisions.checkpoint_due(gap, rung, 3.0, 1) is None
    # Ratio 1.5: 4, 6 and 8 lie inside; across the gap from 2 to 5 the point 4 is taken.
    assert _decisions.checkpoint_due(gap, rung, 1.5, 1) == 4


# -- the rescue's fallback at the last cut: MedianPruner's rule -------------------------------
@pytest.mark.parametrize("indexed", [True, False])
@pytest.mark.parametrize(
    ("sign", "others", "own", "expected"),
    [
        # Minimise: the median of 0.1, 0.2, 0.3, 0.4 is 0.25; at it the trial trains on.
        (1.0, (0.1, 0.2, 0.3, 0.4), 0.25, (True, "at least as good as the median of 4")),
        (1.0, (0.1, 0.2, 0.3, 0.4), 0.26, (False, "worse than the median of 4")),
        # An odd count: the middle value; a diverged trial ranks last, not out.
        (1.0, (0.1, 0.2, math.nan), 0.2, (True, "at least as good as the median of 3")),
        (1.0, (0.1, 0.2, 0.3), math.inf, (False, "worse than the median of 3")),
        # Maximise: at least as high as the median.
        (-1.0, (0.1, 0.2, 0.3, 0.4), 0.25, (True, "at least as good as the median of 4")),
        (-1.0, (0.1, 0.2, 0.3, 0.4), 0.24, (False, "worse than the median of 4")),
        # Fewer than eta others with a value there: no verdict.
        (1.0, (0.1, 0.2), 0.05, None),
    ],
)
def test_median_rescue_is_median_pruners_rule_among_every_trial(
    indexed, sign, others, own, expected
) -> None:
    from optuna_qsvr.pruners._trial_index import TrialIndex

    rung = Rung(bracket=0, index=1, previous=1, budget=3, decision_step=None, is_last=False)
    trials = [_trial({1: 0.5, 3: v}, number=i) for i, v in enumerate(others)]
    # A trial stopped before 3 has no value there and does not count.
    trials.append(_trial({1: 0.9}, number=len(trials), state=TrialState.PRUNED))
    trial = _trial({1: 0.5, 3: own}, number=len(trials), state=TrialState.RUNNING)
    if indexed:
        index = TrialIndex(lambda t: 0)
        assert index.update([*trials, trial])
        view = _decisions.RungView(trial=trial, rung=rung, sign=sign, index=index)
    else:
        view = _decisions.RungView(trial=trial, rung=rung, sign=sign, others=trials, peers=[])
    verdict = _decisions.median_rescue(view, 3)
    if expected is None:
        assert verdict is None
    else:
        assert verdict == (expected[0], f"median rescue: {expected[1]} values at 3")
    # A trial with no value at the rung's end gets none either.
    no_value = _trial({1: 0.5}, number=len(trials), state=TrialState.RUNNING)
    view = _decisions.RungView(trial=no_value, rung=rung, sign=sign, others=trials, peers=[])
    assert _decisions.median_rescue(view, 3) is None
