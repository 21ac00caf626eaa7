"""The forecast mode's second look (``second_look=True``): a trial that enters a crowd of values
tied within the study's epoch-to-epoch noise is not stopped at that decision point, once."""

from __future__ import annotations

import math
import random

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from optuna_qsvr import SwiftHyperbandPruner, _records
from optuna_qsvr.pruners import _crowd
from optuna_qsvr.pruners._decisions import RungView, promotion_record
from optuna_qsvr.pruners._schedule import Rung
from optuna_qsvr.pruners._trial_index import TrialIndex, _removed, _SortedPart, count_between
from tests.pruners_tests._helpers import LastValue, add_complete, ask_in_bracket, run_curve


def test_noise_is_the_median_absolute_change_of_finite_pairs() -> None:
    first = [0.5, 0.5, 0.4, 0.3, math.nan, 0.2]
    second = [0.52, 0.44, 0.43, 0.3, 0.1, math.inf]
    # Changes 0.02, 0.06, 0.03, 0.0 (the NaN and inf pairs dropped): median 0.025, mean 0.0275.
    assert _crowd.noise_level(first, second, 4) == pytest.approx(0.025)
    assert math.isnan(_crowd.noise_level(first, second, 5))  # too few finite pairs
    assert math.isnan(_crowd.noise_level([0.1, 0.2, 0.3], [0.1, 0.2, 0.3], 3))  # no tie width


def test_count_between_includes_both_ends() -> None:
    values = [0.1, 0.2, 0.3, 0.4, 0.5]
    assert count_between(values, 0.3 - 0.1, 0.3 + 0.1) == 3
    assert count_between(values, 0.3 - 0.09, 0.3 + 0.09) == 1
    assert count_between(values, 0.05 - 0.05, 0.05 + 0.05) == 1
    assert count_between([], 0.3 - 1.0, 0.3 + 1.0) == 0


def test_sorted_part_counts_as_its_merged_list() -> None:
    rng = random.Random(3)
    for _ in range(200):
        big = sorted(rng.choice([0.1, 0.2, 0.3, rng.random()]) for _ in range(rng.randint(0, 9)))
        small = sorted(rng.random() for _ in range(rng.randint(0, 4)))
        low = rng.choice([0.1, 0.2, 0.3, rng.random()])  # ends on values, and between
        high = low + rng.choice([0.0, 0.1, 0.3])
        merged = sorted(big + small)
        expected = sum(low <= v <= high for v in merged)
        assert _SortedPart(big, small).count_between(low, high) == expected


def _rung(previous: int, budget: int) -> Rung:
    return Rung(
        bracket=0, index=0, previous=previous, budget=budget, decision_step=None, is_last=False
    )


@pytest.mark.parametrize(
    ("previous", "budget", "step", "expected"),
    [
        (0, 3, 1, None),  # the first look of a trial
        (0, 3, 2, 1),
        (0, 3, 3, 2),  # a rung's end: the last decision point inside it
        (3, 9, 4, 3),  # the first point of a rung: the previous rung's end
        (3, 9, 6, 4),
        (3, 9, 9, 8),  # points 1, 2, 3, 4, 6, 8 for ratio 1.5
        (1, 3, 2, 1),
    ],
)
def test_previous_look(previous, budget, step, expected) -> None:
    view = RungView(_trial(0, {1: 0.5}), _rung(previous, budget), 1.0, others=[], peers=[])
    assert _crowd.previous_look(view, step, 1.5, 1) == expected


def _trial(number: int, values: dict[int, float]) -> optuna.trial.FrozenTrial:
    trial = create_trial(state=TrialState.COMPLETE, value=0.0, intermediate_values=values)
    trial.number = number
    return trial


def _look(values: dict[int, float], others: list[dict[int, float]], step: int, **kwargs):
    trials = [_trial(n, v) for n, v in enumerate(others)]
    view = RungView(_trial(len(trials), values), _rung(0, 3), 1.0, others=trials, peers=[])
    options = dict(reduction_factor=3, ratio=1.5, min_resource=1, min_pairs=3) | kwargs
    return _crowd.second_look(view, step, **options)


# Six others: values at 1 of 0.49, 0.50, 0.51, 0.20, 0.50, 0.505; the first three change by 0.01
# each epoch (noise 0.01 at every step), the last three stop at step 1.
OTHERS = [{s: v + 0.01 * (s % 2 == 0) for s in range(1, 10)} for v in (0.49, 0.50, 0.51)] + [
    {1: v} for v in (0.20, 0.50, 0.505)
]


def test_a_value_in_a_crowd_gets_its_first_look_spared() -> None:
    # Within 0.01 of 0.502: 0.50, 0.51, 0.50, 0.505, four of six values (>= 1/3).
    why, crowd = _look({1: 0.502}, OTHERS, 1)
    assert (crowd.step, crowd.n, crowd.noise) == (1, 6, pytest.approx(0.01))
    assert crowd.share == pytest.approx(4 / 6)
    assert (
        why == "second look: its value at 1 ties 67% of the 6 values there (within the noise 0.01)"
    )


def test_no_look_outside_a_crowd_or_without_noise() -> None:
    assert _look({1: 0.80}, OTHERS, 1) is None  # alone: no value within 0.01
    assert _look({1: 0.502}, OTHERS, 1, min_pairs=4) is None  # 3 pairs: noise unknown
    assert _look({1: 0.502}, OTHERS, 1, min_pairs=7) is None
    assert _look({1: math.nan}, OTHERS, 1) is None
    # Diverged runs (non-finite values, ranked as the worst) are no crowd to tie.
    diverged = [*OTHERS, *({1: math.inf} for _ in range(6))]
    assert _look({1: math.nan}, diverged, 1) is None
    # A crowd smaller than 1/eta of the values: 2 of 6 within 0.01 of 0.2 with 0.195 added.
    others = [*OTHERS, {1: 0.195}]
    assert _look({1: 0.2}, others, 1, reduction_factor=3) is None
    assert _look({1: 0.2}, others, 1, reduction_factor=4) is not None  # 2 of 7 >= 1/4
    # Exactly 1/eta is a crowd: 0.20 and 0.195 of six values.
    others = [*OTHERS[:3], {1: 0.20}, {1: 0.195}, {1: 0.9}]
    assert _look({1: 0.2}, others, 1) is not None


@pytest.mark.parametrize("indexed", [True, False])
def test_the_noise_reads_the_most_recent_pairs(monkeypatch, indexed) -> None:
    """With ``RECENT`` pairs read (3 here), the old trials' large steps are out of the noise:
    only the last two others' and the trial's own changes of 0.01 count."""
    monkeypatch.setattr(_crowd, "RECENT", 3)
    curves = [{1: v, 2: v + 0.2} for v in (0.1, 0.3, 0.5, 0.7)]
    curves += [{1: v, 2: v + 0.01} for v in (0.49, 0.51)]
    trials = [_trial(n, v) for n, v in enumerate([*curves, {1: 0.5, 2: 0.51}])]
    if indexed:
        index = TrialIndex(lambda trial: 0)
        assert index.update(trials)
        view = RungView(trials[-1], _rung(0, 3), 1.0, index=index)
    else:
        view = RungView(trials[-1], _rung(0, 3), 1.0, others=trials[:-1], peers=[])
    assert _crowd.crowd_at(view, 1, 3).noise == pytest.approx(0.01)
    monkeypatch.setattr(_crowd, "RECENT", 7)
    assert _crowd.crowd_at(view, 1, 3).noise == pytest.approx(0.2)


def test_no_look_with_fewer_values_than_pairs_needed() -> None:
    # Six others and the trial itself report steps 1 and 2: seven pairs measure the noise,
    # but six values at step 1 are fewer than the seven asked for.
    others = [{1: v, 2: v + 0.01} for v in (0.49, 0.50, 0.50, 0.51, 0.50, 0.49)]
    assert _look({1: 0.50, 2: 0.51}, others, 1, min_pairs=6) is not None
    assert _look({1: 0.50, 2: 0.51}, others, 1, min_pairs=7) is None


def test_the_look_is_once_per_crowd() -> None:
    # At step 2 (values 0.50, 0.51, 0.52 within noise 0.01 of 0.51), a trial that was in the
    # crowd at step 1 too is stopped; one that came from outside it gets its look.
    assert _look({1: 0.502, 2: 0.51}, OTHERS, 2) is None
    assert _look({1: 0.80, 2: 0.51}, OTHERS, 2) is not None


def _study(name: str, tmp_path, **kwargs) -> tuple[optuna.Study, SwiftHyperbandPruner]:
    """R=9, eta 3, every trial with forecasts, no rescue: successive halving's stop stands
    unless the second look spares the trial. Bracket 0 (one rung, 9) finishes three curves
    that alternate by 0.01 each epoch (the noise); bracket 2 (rungs 1, 3, 9) has rung-mates at
    0.20, 0.50 and 0.505 at step 1."""
    options = dict(
        max_resource=9,
        predictor=LastValue(sigma=0.05),  # forecast: the last value, normal error 0.05
        min_train_curves=3,
        min_persistence_pairs=3,  # for the tests that turn the regimes on
        bracket_weights=(1.0, 1.0),
        min_rank_persistence=False,
        rescue=False,
        alpha=0.45,
        promote_among="bracket",  # ranks among the rung-mates, as the comments count them
    )
    pruner = SwiftHyperbandPruner(**(options | kwargs))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name=name, pruner=pruner, storage=storage)
    for curve in OTHERS:
        ask_in_bracket(study, pruner, 0 if len(curve) > 1 else 2)
        run_curve(study, curve)
    return study, pruner


def test_a_crowded_trial_gets_one_more_decision_interval(study_name, tmp_path) -> None:
    # Successive halving stops 0.502 at step 1 (rank 3 of 4, top 1 promoted). The second look
    # promotes it; at step 2 its forecast 0.52 has P(final <= 0.49) = Phi(-0.6) = 0.27 < 0.45
    # and it is still in a crowd (0.51 and 0.52 of 0.50, 0.51, 0.52): pruned.
    study, pruner = _study(study_name, tmp_path, second_look=True)
    ask_in_bracket(study, pruner, 2)
    trial = run_curve(study, {1: 0.502, 2: 0.52, 3: 0.52})
    assert (trial.state, trial.last_step) == (TrialState.PRUNED, 2)
    records = _records.read_trial(trial.system_attrs)
    promotion = records.promotions[0]
    assert (promotion["decision"], promotion["rank"], promotion["of"]) == ("promoted", 3, 4)
    assert promotion["crowd"] == 0.6667  # 4 of 6, to four decimals
    assert promotion["reason"].startswith("second look: its value at 1 ties 67% of the 6 values")
    assert promotion["reason"].endswith("; was: rank 3 of 4")
    (decision,) = records.decisions.values()
    assert (decision["decision"], decision["decision_step"]) == ("pruned", 2)
    assert "crowd" not in decision


@pytest.mark.parametrize("look", [True, False])
def test_the_look_spares_a_stop_of_the_cut_among_the_whole_study(look, study_name, tmp_path):
    # promote_among="study" (the default): at step 1, 0.502 ranks 5th of the 7 values of
    # both brackets (0.20, 0.49, 0.50, 0.50 below it), outside the top third: stopped, unless
    # the look spares it.
    study, pruner = _study(study_name, tmp_path, second_look=look, promote_among="study")
    ask_in_bracket(study, pruner, 2)
    trial = run_curve(study, {1: 0.502, 2: 0.52, 3: 0.52})
    promotion = _records.read_trial(trial.system_attrs).promotions[0]
    assert (promotion["rank"], promotion["of"]) == (5, 7)
    if look:
        assert (trial.state, trial.last_step) == (TrialState.PRUNED, 2)
        assert promotion["decision"] == "promoted" and promotion["crowd"] == 0.6667
        assert promotion["reason"].startswith("second look: its value at 1 ties 67%")
        assert promotion["reason"].endswith("; was: rank 5 of 7")
    else:
        assert (trial.state, trial.last_step) == (TrialState.PRUNED, 1)
        assert promotion["decision"] == "stopped" and "crowd" not in promotion


def test_without_the_second_look_or_outside_the_crowd_the_stop_stands(
    study_name, tmp_path
) -> None:
    study, pruner = _study(f"{study_name}-off", tmp_path, second_look=False)
    ask_in_bracket(study, pruner, 2)
    trial = run_curve(study, {1: 0.502, 2: 0.52, 3: 0.52})
    assert (trial.state, trial.last_step) == (TrialState.PRUNED, 1)
    study, pruner = _study(f"{study_name}-far", tmp_path, second_look=True)
    ask_in_bracket(study, pruner, 2)
    trial = run_curve(study, {1: 0.80, 2: 0.52, 3: 0.52})
    assert (trial.state, trial.last_step) == (TrialState.PRUNED, 1)
    assert _records.read_trial(trial.system_attrs).promotions[0]["decision"] == "stopped"


def test_inside_a_rung_the_look_turns_a_prune_into_a_kept_record(study_name, tmp_path) -> None:
    # Bracket 1 (rungs 3, 9): decision points 1 and 2 inside the first rung. At 1 the forecast
    # 0.502 has P(final <= 0.49) = Phi(-0.24) = 0.41 < 0.45, but the value ties the crowd.
    study, pruner = _study(study_name, tmp_path, second_look=True)
    ask_in_bracket(study, pruner, 1)
    trial = run_curve(study, {1: 0.502, 2: 0.52, 3: 0.52})
    assert (trial.state, trial.last_step) == (TrialState.PRUNED, 2)
    (decision,) = _records.read_trial(trial.system_attrs).decisions.values()
    # The prune at 2 replaced the kept record of step 1, which carried the look.
    assert (decision["decision"], decision["decision_step"]) == ("pruned", 2)
    study, pruner = _study(f"{study_name}-off", tmp_path, second_look=False)
    ask_in_bracket(study, pruner, 1)
    assert run_curve(study, {1: 0.502, 2: 0.52, 3: 0.52}).last_step == 1


def test_a_trial_that_enters_a_crowd_later_gets_its_look_there(study_name, tmp_path) -> None:
    """Bracket 1 (rungs 3, 9). At 1 the trial leads (0.30: kept). At 2 it falls into the
    crowd (0.51 of 0.50, 0.51, 0.52; P(final <= 0.49) = Phi(-0.4) = 0.34 < 0.45), which it was
    not in at its previous look, 1: spared. It is promoted at 3 (alone in its rung), and at 4
    it is in a crowd as it was at 3, its previous look (0.51 of 0.49, 0.50, 0.51): pruned."""
    curve = {1: 0.30, **{s: 0.51 for s in range(2, 10)}}
    for look, last in ((True, 4), (False, 2)):
        study, pruner = _study(f"{study_name}-{look}", tmp_path, second_look=look)
        ask_in_bracket(study, pruner, 1)
        trial = run_curve(study, curve)
        assert (trial.state, trial.last_step) == (TrialState.PRUNED, last), look


def test_a_trial_in_the_hyperband_regime_gets_no_look(study_name, tmp_path) -> None:
    # A run that trails at 1 and leads from 2 on breaks the ranks (persistence 0.4, below the
    # threshold): the trial runs as in HyperbandPruner, where successive halving decides
    # alone, crowd or not (the crowd at 1 holds 4 of 7 values, the noise is still 0.01).
    bloomer = {1: 0.52, **{s: 0.40 for s in range(2, 10)}}
    study, pruner = _study(study_name, tmp_path, second_look=True, min_rank_persistence=0.5)
    add_complete(study, bloomer)  # a finished run the pruner never decided
    ask_in_bracket(study, pruner, 2)
    trial = run_curve(study, {1: 0.502, 2: 0.52, 3: 0.52})
    assert (trial.state, trial.last_step) == (TrialState.PRUNED, 1)
    records = _records.read_trial(trial.system_attrs)
    regime = _records.regime_of_trial(trial.system_attrs)
    assert regime["regime"] == "hyperband" and regime["persistence"] == pytest.approx(0.4)
    assert records.promotions[0]["decision"] == "stopped" and "crowd" not in records.promotions[0]
    # The same study with a threshold it meets looks: the crowd is there.
    study, pruner = _study(
        f"{study_name}-met", tmp_path, second_look=True, min_rank_persistence=0.3
    )
    add_complete(study, bloomer)  # a finished run the pruner never decided
    ask_in_bracket(study, pruner, 2)
    trial = run_curve(study, {1: 0.502, 2: 0.52, 3: 0.52})
    assert _records.regime_of_trial(trial.system_attrs)["regime"] == "forecast"
    assert trial.last_step == 2


def test_a_broken_look_leaves_the_stop_and_warns_once(
    study_name, tmp_path, monkeypatch, caplog
) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("crowd exploded")

    study, pruner = _study(study_name, tmp_path, second_look=True)
    monkeypatch.setattr(_crowd, "second_look", broken)
    # At a rung's end (bracket 2) and at a decision point inside a rung (bracket 1).
    for bracket in (2, 2, 1):
        ask_in_bracket(study, pruner, bracket)
        trial = run_curve(study, {1: 0.502, 2: 0.52})
        assert (trial.state, trial.last_step) == (TrialState.PRUNED, 1)
    assert caplog.text.count("crowd exploded") == 1


def test_the_paper_mode_has_no_second_look() -> None:
    # Its bounds are checked with every option's (test_option_effects).
    with pytest.raises(ValueError, match="second_look apply to the default mode='forecast' only"):
        SwiftHyperbandPruner(max_resource=9, mode="paper", second_look=True)


def test_the_look_touches_only_stops() -> None:
    def always(step: int):
        return "second look: asked", _crowd.Crowd(step, 0.01, 0.5, 6)

    mates = [_trial(n, {1: v}) for n, v in enumerate((0.3, 0.4, 0.5))]
    for value, decision in ((0.2, "promoted"), (0.45, "stopped")):
        trial = _trial(3, {1: value})
        view = RungView(trial, _rung(0, 1), 1.0, others=mates, peers=mates)
        record = promotion_record(view, 3)
        assert record["decision"] == decision and "crowd" not in record
        looked = promotion_record(view, 3, spare=always)
        if decision == "promoted":
            assert looked == record  # a promotion is left as it is
        else:
            assert looked["decision"] == "promoted" and looked["crowd"] == 0.5
            assert looked["reason"] == "second look: asked; was: rank 3 of 4"


def test_the_look_keeps_the_reason_of_the_stop_it_replaces() -> None:
    def look(step: int):
        return "second look: asked", _crowd.Crowd(step, 0.01, 0.5, 6)

    mates = [_trial(n, {1: v}) for n, v in enumerate((0.3, 0.4, 0.5))]
    view = RungView(_trial(3, {1: 0.45}), _rung(0, 1), 1.0, others=mates, peers=mates)
    refused = promotion_record(view, 3, lambda: (False, "rescue: P(...) 0.1 < 0.3"), spare=look)
    assert refused["decision"] == "promoted" and refused["rescued"] is False
    assert refused["reason"] == "second look: asked; was: rescue: P(...) 0.1 < 0.3"


def test_removing_a_value_absent_from_a_sorted_list_copies_it() -> None:
    values = [0.1, 0.2, 0.3]
    assert _removed(values, 0.2) == [0.1, 0.3]
    for absent in (0.05, 0.25, 0.4):
        kept = _removed(values, absent)
        assert kept == values and kept is not values
    with pytest.raises(IndexError):
        _SortedPart([0.1], [0.2])[2]
