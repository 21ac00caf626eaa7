"""Regimes: a trial runs with forecasts only once the study shows that early ranks last.

The forecast mode measures the study's rank persistence (Spearman correlation of the trials'
values at consecutive rung ends) when a trial starts. Before it can be measured, or while it is
below ``min_rank_persistence``, the trial runs as in Optuna's HyperbandPruner: any of its
brackets, successive halving alone. Optuna's pruner is the oracle for that regime.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from optuna_qsvr import SwiftHyperbandPruner, SwiftSampler, _records
from optuna_qsvr.pruners import _swift_hyperband
from optuna_qsvr.pruners._persistence import paired_values, rank_persistence
from optuna_qsvr.pruners._trial_index import TrialIndex
from tests.pruners_tests.test_against_optuna import _curves, _optuna, _run


# -- the measure ------------------------------------------------------------------------------
def test_persistence_is_spearman_pooled_by_pairs() -> None:
    up = (list(range(10)), [v * v for v in range(10)])  # same order: 1
    down = (list(range(30)), [-v for v in range(30)])  # reversed: -1

    one = rank_persistence([up], 10)
    assert one.pairs == 10 and one.rho == pytest.approx(1.0)
    both = rank_persistence([up, down], 10)
    assert both.pairs == 40
    assert both.rho == pytest.approx((10 * 1.0 + 30 * -1.0) / 40)


def test_persistence_skips_small_tied_and_non_finite_columns() -> None:
    small = ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    tied = ([5.0] * 12, list(range(12)))
    nans = ([math.nan] * 5 + list(range(10)), list(range(15)))

    assert rank_persistence([small, tied], 10).pairs == 0
    assert math.isnan(rank_persistence([small, tied], 10).rho)
    assert rank_persistence([small], 3).pairs == 3
    # Five trials have no finite value at the first step: ten pairs remain, in order.
    assert rank_persistence([nans], 10).pairs == 10
    assert rank_persistence([nans], 10).rho == pytest.approx(1.0)
    assert rank_persistence([nans], 11).pairs == 0


def test_a_pair_tied_at_its_second_budget_is_skipped_and_the_next_counts() -> None:
    diverged = (list(range(12)), [9.0] * 12)  # every trial at one value after the rung
    ordered = (list(range(10)), list(range(10)))

    measured = rank_persistence([diverged, ordered], 10)
    assert measured.pairs == 10 and measured.rho == pytest.approx(1.0)


def test_persistence_reads_the_most_recent_trials_of_each_pair() -> None:
    old_reversed = [float(v) for v in range(500)]
    recent_ordered = [float(v) for v in range(1000)]
    column = (old_reversed + recent_ordered, old_reversed[::-1] + recent_ordered)

    assert rank_persistence([column], 10).rho == pytest.approx(1.0)
    assert rank_persistence([column], 10).pairs == 1000
    assert rank_persistence([column], 10, recent=1500).rho < 0.9  # the reversed ones count


def test_paired_values_take_trials_that_reported_both_steps() -> None:
    trials = [
        optuna.trial.create_trial(value=0.0, intermediate_values={1: 0.1, 3: 0.3}),
        optuna.trial.create_trial(value=0.0, intermediate_values={1: 0.2}),
        optuna.trial.create_trial(value=0.0, intermediate_values={3: 0.4, 1: 0.5, 9: 0.6}),
    ]
    assert paired_values(trials, 1, 3) == ([0.1, 0.5], [0.3, 0.4])
    assert paired_values(trials, 3, 9) == ([0.4], [0.6])


# -- the pruner's choice -------------------------------------------------------------------
def _lines(n: int, steps: int, *, cross: bool, seed: int = 0) -> np.ndarray:
    """Loss curves: parallel (ranks last) or reversing their order at every power of 3, the
    rung ends of ``min_resource=1, eta=3`` (ranks never last)."""
    rng = np.random.default_rng(seed)
    level = rng.permutation(n)[:, None] / n
    t = np.arange(1, steps + 1)[None, :]
    if cross:
        period = np.floor(np.log(t) / np.log(3) + 1e-9)
        return 1.0 + np.where(period % 2 == 0, level, 1.0 - level)
    return 1.0 + level + 0.0 * t


def _report_all(study: optuna.Study, curves: np.ndarray) -> list[optuna.trial.FrozenTrial]:
    """Each curve to the end or until pruned, one trial after another."""
    for curve in curves:
        trial = study.ask()
        for step, value in enumerate(curve, start=1):
            trial.report(float(value), step)
            if step < len(curve) and trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, float(curve[-1]))
    return study.get_trials(deepcopy=False)


def test_a_trial_runs_as_hyperband_until_persistence_is_measured(tmp_path) -> None:
    pruner = SwiftHyperbandPruner(max_resource=27)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'r.db'}", pruner=pruner)
    first = _report_all(study, _lines(1, 27, cross=False))[0]

    record = _records.regime_of_trial(first.system_attrs)
    hyperband = SwiftHyperbandPruner(max_resource=27, bracket_weights=(1,))
    bracket = hyperband.bracket_of(study.study_name, first.number)
    assert record == {
        "v": 1,
        "regime": "hyperband",
        "persistence": None,
        "pairs": 0,
        "threshold": 0.5,
        "bracket": bracket,
    }
    assert _records.bracket_of_trial(first.user_attrs) == bracket


@pytest.mark.parametrize("pairs", [3, 7])
def test_the_persistence_counts_once_a_rung_pair_has_min_persistence_pairs(pairs) -> None:
    """The measure waits for ``min_persistence_pairs`` trials at both ends of a rung pair, not
    one more, and not for ``min_train_curves`` (the predictors' own minimum)."""
    pruner = SwiftHyperbandPruner(
        max_resource=27, min_persistence_pairs=pairs, min_train_curves=20
    )
    study = optuna.create_study(pruner=pruner)
    curves = _lines(pairs, 27, cross=False)

    def add(curve: np.ndarray) -> None:
        values = {step: float(v) for step, v in enumerate(curve, start=1)}
        study.add_trial(optuna.trial.create_trial(value=values[27], intermediate_values=values))

    def regime_of_a_new_trial() -> dict:
        trial = study.ask()
        trial.report(1.5, 1)
        trial.should_prune()
        study.tell(trial, state=TrialState.PRUNED)  # one value: it makes no pair
        return _records.regime_of_trial(study._storage.get_trial(trial._trial_id).system_attrs)

    for curve in curves[:-1]:
        add(curve)
    assert regime_of_a_new_trial()["pairs"] == 0
    add(curves[-1])
    record = regime_of_a_new_trial()
    # Rung ends 1, 3, 9 and 27: three rung pairs, each of ``pairs`` trials ranked alike.
    assert (record["regime"], record["pairs"], record["persistence"]) == (
        "forecast",
        3 * pairs,
        1.0,
    )


@pytest.mark.parametrize("cross", [False, True])
def test_lasting_ranks_bring_forecasts_and_reversing_ranks_keep_hyperband(cross) -> None:
    pruner = SwiftHyperbandPruner(max_resource=27, min_train_curves=5, min_persistence_pairs=5)
    study = optuna.create_study(study_name=f"cross-{cross}", pruner=pruner)
    trials = _report_all(study, _lines(120, 27, cross=cross))

    records = [_records.regime_of_trial(t.system_attrs) for t in trials]
    measured = [r for r in records if r["pairs"] > 0]
    assert len(measured) > 80
    late = measured[-20:]
    if cross:
        assert all(r["regime"] == "hyperband" and r["persistence"] < -0.9 for r in late)
    else:
        assert all(r["regime"] == "forecast" and r["persistence"] == 1.0 for r in late)
    for t, r in zip(trials, records, strict=True):
        forecast = pruner.bracket_of(study.study_name, t.number)
        hyperband = pruner._hyperband.bracket_of(study.study_name, t.number)
        expected = forecast if r["regime"] == "forecast" else hyperband
        assert _records.bracket_of_trial(t.user_attrs) == expected
        if r["regime"] == "hyperband":
            # Successive halving alone: no forecast inside a rung, no rescue at its end.
            read = _records.read_trial(t.system_attrs)
            assert not read.decisions
            assert all("rescued" not in p for p in read.promotions.values())
    if not cross:
        assert any(_records.read_trial(t.system_attrs).decisions for t in trials)


@pytest.mark.parametrize("n_parallel", [1, 5])
def test_the_hyperband_regime_decides_like_optuna_hyperband(n_parallel) -> None:
    """Predictors can be fitted here (10 curves suffice), yet no trial may use them: with a
    persistence no noisy study reaches, every trial is decided as Optuna's pruner decides,
    in Hyperband's brackets (the forecast mode's default keeps two)."""
    curves = _curves(90, 50, seed=11)
    strict = SwiftHyperbandPruner(max_resource=50, min_rank_persistence=1.0)
    swift = _run(strict, curves, n_parallel, "minimize")

    assert swift == _run(_optuna(1, 50, 3), curves, n_parallel, "minimize")
    # Not vacuous: the same study with forecasts decides otherwise.
    forecasts = SwiftHyperbandPruner(max_resource=50, min_rank_persistence=-1.0)
    assert _run(forecasts, curves, n_parallel, "minimize") != swift


def test_a_recorded_choice_is_kept_by_every_pruner(tmp_path) -> None:
    storage = f"sqlite:///{tmp_path / 'k.db'}"
    strict = SwiftHyperbandPruner(max_resource=27, min_rank_persistence=1.0)
    study = optuna.create_study(storage=storage, study_name="kept", pruner=strict)
    # Ranks that mostly last: a persistence between the two pruners' thresholds.
    noise = np.random.default_rng(1).normal(0.0, 0.05, (60, 27))
    _report_all(study, _lines(60, 27, cross=False) + noise)
    trial = study.ask()
    trial.report(1.5, 1)
    trial.should_prune()  # chosen now: Hyperband's regime, the persistence is below 1
    frozen = study._storage.get_trial(trial._trial_id)
    record = _records.regime_of_trial(frozen.system_attrs)
    assert record["regime"] == "hyperband" and 0.5 < record["persistence"] < 1.0
    assert frozen.user_attrs[_records.REGIME_ATTR] == _records.regime_text(record)
    assert frozen.user_attrs[_records.REGIME_ATTR].startswith("hyperband: rank persistence 0.")
    bracket = _records.bracket_of_trial(frozen.user_attrs)

    # Another process, whose threshold would choose forecasts now, reads the choice; it does
    # not choose again, and it rewrites nothing.
    other = SwiftHyperbandPruner(max_resource=27)
    loaded = optuna.load_study(study_name="kept", storage=storage, pruner=other)
    assert other._regime_now(loaded)[0] == "forecast"
    assert other._assign(loaded, frozen) == (bracket, "hyperband")
    assert other.bracket(loaded, frozen) == bracket
    assert other._known_bracket("kept", frozen) == bracket
    stored = loaded._storage.get_trial(trial._trial_id)
    assert _records.regime_of_trial(stored.system_attrs) == record
    assert stored.user_attrs == frozen.user_attrs

    # In the trial's own process, a pruner that did not choose (here the study's, while the
    # other chose) sees Optuna's copy of the user attributes from the trial's start, without
    # the bracket: it reads the choice from the regime record.
    running = loaded.ask()
    strict.bracket(loaded, loaded._storage.get_trial(running._trial_id))
    chosen = _records.regime_of_trial(loaded._storage.get_trial(running._trial_id).system_attrs)
    assert chosen["regime"] == "hyperband"
    running.report(1.5, 1)
    assert _records.BRACKET_ATTR not in running._get_latest_trial().user_attrs
    running.should_prune()  # the study's pruner: threshold 0.5
    assert other._assign(loaded, running._get_latest_trial()) == (chosen["bracket"], "hyperband")
    after = loaded._storage.get_trial(running._trial_id)
    assert _records.regime_of_trial(after.system_attrs) == chosen


def _stored_with(
    regime: object, bracket: object, **options: object
) -> tuple[optuna.Study, optuna.trial.FrozenTrial]:
    """A new study's first trial with these regime and bracket attributes, after its first
    report, as the storage holds it (as another process's pruner would see it)."""
    study = optuna.create_study(
        study_name="rechosen", pruner=SwiftHyperbandPruner(max_resource=27, **options)
    )
    trial = study.ask()
    if regime is not None:
        study._storage.set_trial_system_attr(trial._trial_id, _records.REGIME_ATTR, regime)
    study._storage.set_trial_user_attr(trial._trial_id, _records.BRACKET_ATTR, bracket)
    trial.report(1.0, 1)
    return study, study._storage.get_trial(trial._trial_id)


def _first_call_after(regime: object, bracket: object) -> optuna.trial.FrozenTrial:
    """That trial after the pruner's first call."""
    study, stored = _stored_with(regime, bracket)
    study.pruner.prune(study, stored)
    return study._storage.get_trial(stored._trial_id)


@pytest.mark.parametrize("bracket", [0, 3])  # the schedule's first and last (s_max) brackets
@pytest.mark.parametrize("in_record", [True, False])  # False: a record of the previous version
def test_a_recorded_regime_and_bracket_are_kept(bracket, in_record) -> None:
    record = _records.new_regime("forecast", 0.9, 40, 0.5, bracket)
    if not in_record:
        del record["bracket"]
    frozen = _first_call_after(record, bracket)

    # Nothing is measured in this new study: choosing again would give Hyperband's regime.
    assert _records.regime_of_trial(frozen.system_attrs) == record
    assert frozen.user_attrs[_records.BRACKET_ATTR] == bracket
    assert _records.REGIME_ATTR not in frozen.user_attrs  # never rewritten


def test_a_bracket_recorded_without_regimes_is_kept_only_without_regimes() -> None:
    plain = SwiftHyperbandPruner(max_resource=27, min_rank_persistence=False)
    other = 1 if plain.bracket_of("rechosen", 0) != 1 else 2
    study, stored = _stored_with(None, other, min_rank_persistence=False)
    # An earlier version's trial, or one of a study run without regimes: its bracket holds.
    assert study.pruner._assign(study, stored) == (other, "forecast")
    assert _records.REGIME_ATTR not in study._storage.get_trial(stored._trial_id).system_attrs

    # With regimes, its regime was never chosen: it is now, with the bracket that goes with it.
    frozen = _first_call_after(None, other)
    assert _records.regime_of_trial(frozen.system_attrs)["regime"] == "hyperband"


@pytest.mark.parametrize(
    ("regime", "bracket"),
    [
        ({"regime": "fast"}, 0),
        ({"regime": "forecast", "persistence": 2.0, "pairs": 3, "threshold": 0.5}, 0),
        ("forecast", 0),
        (None, 0),
        # Brackets outside the schedule's 0..3, in the record or (older records) not.
        (_records.new_regime("forecast", 0.9, 40, 0.5, 4), 0),
        (_records.new_regime("forecast", 0.9, 40, 0.5, -1), 0),
        (_records.new_regime("forecast", 0.9, 40, 0.5, "1"), 0),
        ({"regime": "forecast", "persistence": 0.9, "pairs": 40, "threshold": 0.5}, 4),
        ({"regime": "forecast", "persistence": 0.9, "pairs": 40, "threshold": 0.5}, -1),
        ({"regime": "forecast", "persistence": 0.9, "pairs": 40, "threshold": 0.5}, "1"),
    ],
)
def test_a_malformed_regime_or_bracket_is_chosen_again(regime, bracket) -> None:
    frozen = _first_call_after(regime, bracket)

    # Chosen again: nothing measured yet in a new study, so Hyperband's regime and bracket.
    assert _records.regime_of_trial(frozen.system_attrs)["regime"] == "hyperband"
    hyperband = SwiftHyperbandPruner(max_resource=27, bracket_weights=(1,))
    assert frozen.user_attrs[_records.BRACKET_ATTR] == hyperband.bracket_of("rechosen", 0)


def _regime_of(study: optuna.Study, trial: optuna.Trial) -> str:
    return _records.regime_of_trial(study._storage.get_trial(trial._trial_id).system_attrs)[
        "regime"
    ]


@pytest.mark.parametrize("after_prune_calls", [False, True])
def test_a_regime_chosen_outside_a_prune_call_reads_the_study_as_it_is_then(
    after_prune_calls,
) -> None:
    """A sampler asks for brackets between prune calls, or before any: each ask reads the
    study anew (one read is shared only within a prune call)."""
    pruner = SwiftHyperbandPruner(max_resource=27, min_train_curves=5)
    study = optuna.create_study(study_name="asks", pruner=pruner)

    def add(levels) -> None:  # finished trials, told without a prune call
        for level in levels:
            values = {s: float(level + 0.01 * s) for s in range(1, 28)}
            trial = optuna.trial.create_trial(value=values[27], intermediate_values=values)
            study.add_trial(trial)

    # Too few pairs to measure the persistence.
    if after_prune_calls:
        _report_all(study, _lines(3, 27, cross=False))
    else:
        add([0.2, 0.5, 0.8])
    early = study.ask()
    pruner.bracket(study, study._storage.get_trial(early._trial_id))
    assert _regime_of(study, early) == "hyperband"
    add(np.linspace(0.1, 0.9, 12))

    later = study.ask()
    pruner.bracket(study, study._storage.get_trial(later._trial_id))
    assert _regime_of(study, later) == "forecast"


@pytest.mark.parametrize("indexed", [True, False])
def test_the_persistence_reads_only_the_most_recent_pairs(monkeypatch, indexed) -> None:
    """Both paths (the trial index, and the walk over trials it cannot index) read the last
    ``RECENT`` pairs per rung pair: here 12 ordered trials after 18 reversed ones."""
    monkeypatch.setattr(_swift_hyperband, "RECENT", 12)
    pruner = SwiftHyperbandPruner(max_resource=9)
    study = optuna.create_study(pruner=pruner)
    for i, level in enumerate([*np.linspace(0.9, 0.1, 18), *np.linspace(0.1, 0.9, 12)]):
        values = {1: level, 3: 1 - level if i < 18 else level, 9: level}
        study.add_trial(optuna.trial.create_trial(value=level, intermediate_values=values))
    read = TrialIndex.paired_values
    sizes = []

    def spy(self, *args):
        pairs = read(self, *args)
        sizes.append(len(pairs[0]))
        return pairs

    monkeypatch.setattr(TrialIndex, "paired_values", spy)
    if not indexed:
        monkeypatch.setattr(TrialIndex, "update", lambda self, trials: False)
    measured = pruner._persistence(study)
    assert measured.rho == pytest.approx(1.0)
    assert measured.pairs == 24
    # The index copies no more than it is asked for: a bounded cost in a large study.
    assert sizes == ([12, 12] if indexed else [])


def test_a_persistence_equal_to_the_threshold_is_enough() -> None:
    pruner = SwiftHyperbandPruner(max_resource=27, min_rank_persistence=1.0)
    study = optuna.create_study(pruner=pruner)
    trials = _report_all(study, _lines(60, 27, cross=False))

    last = _records.regime_of_trial(trials[-1].system_attrs)
    assert last["persistence"] == pytest.approx(1.0) and last["regime"] == "forecast"


def test_another_trials_malformed_bracket_falls_back_to_its_assignment() -> None:
    pruner = SwiftHyperbandPruner(max_resource=27)
    trial = optuna.trial.create_trial(value=0.0, user_attrs={_records.BRACKET_ATTR: 9})
    trial.number = 4
    assert pruner._known_bracket("s", trial) == pruner.bracket_of("s", 4)
    trial.user_attrs[_records.BRACKET_ATTR] = 1
    assert pruner._known_bracket("s", trial) == 1


def test_swift_sampler_chooses_the_regime_before_the_first_report() -> None:
    pruner = SwiftHyperbandPruner(max_resource=27)
    study = optuna.create_study(sampler=SwiftSampler(), pruner=pruner)
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)

    frozen = study._storage.get_trial(trial._trial_id)
    assert _records.regime_of_trial(frozen.system_attrs)["regime"] == "hyperband"
    assert (
        frozen.user_attrs[_records.REGIME_ATTR] == "hyperband: rank persistence not measured yet"
    )
    assert _records.bracket_of_trial(frozen.user_attrs) == pruner.bracket(study, study.trials[0])


@pytest.mark.parametrize("value", [1.5, -1.01, "0.5", math.nan, True])
def test_min_rank_persistence_is_checked(value) -> None:
    with pytest.raises(ValueError, match="min_rank_persistence"):
        SwiftHyperbandPruner(max_resource=27, min_rank_persistence=value)


def test_min_rank_persistence_belongs_to_the_forecast_mode() -> None:
    with pytest.raises(ValueError, match="min_rank_persistence"):
        SwiftHyperbandPruner(max_resource=27, mode="paper", min_rank_persistence=0.5)


@pytest.mark.parametrize("kwargs", [{"min_rank_persistence": False}, {"mode": "paper"}])
def test_without_regimes_every_trial_takes_the_configured_brackets(kwargs) -> None:
    pruner = SwiftHyperbandPruner(max_resource=27, **kwargs)
    study = optuna.create_study(study_name="plain", pruner=pruner)
    trials = _report_all(study, _lines(30, 27, cross=True))

    for t in trials:
        assert _records.REGIME_ATTR not in t.user_attrs
        assert _records.REGIME_ATTR not in t.system_attrs
        assert t.user_attrs[_records.BRACKET_ATTR] == pruner.bracket_of("plain", t.number)
