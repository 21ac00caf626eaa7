"""What the pruner promises around its decisions: answers before and at odd steps, its
warnings word for word, one promotion decision per rung, its logged fallbacks, one trial index
per study kept between calls, how each mode ranks rung-mates stopped early, and refits as the
curves grow. Each test was written for a planted bug that the rest of the suite let through
(docs/mutation-survivors.md).
"""

from __future__ import annotations

import gc
import logging
import warnings
from collections import Counter

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from optuna_qsvr import SwiftHyperbandPruner, _lease, _records
from tests.pruners_tests._helpers import (
    LastValue,
    add_complete,
    ask_in_bracket,
    crossing_curves,
    flat,
    run_curve,
)


def _study(name: str = "contract", **kwargs) -> tuple[optuna.Study, SwiftHyperbandPruner]:
    pruner = SwiftHyperbandPruner(max_resource=9, **kwargs)
    return optuna.create_study(study_name=name, pruner=pruner), pruner


def test_no_report_and_step_0_mean_train_on_with_a_bool() -> None:
    study, _ = _study()
    trial = study.ask()
    assert trial.should_prune() is False  # nothing reported yet
    with pytest.warns(UserWarning):
        trial.report(0.5, 0)
        assert trial.should_prune() is False
    trial = study.ask()
    trial.report(0.5, 1)
    assert trial.should_prune() is False  # the only trial of its rung: promoted


def test_odd_steps_warn_once_each_in_these_words_and_good_steps_never() -> None:
    study, pruner = _study()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a trial reporting 1, 2, 3... hears nothing
        run_curve(study, flat(0.5, 9))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        zero = study.ask()
        zero.report(0.5, 0)
        zero.should_prune()
        late = study.ask()
        late.report(0.5, 5)
        late.report(0.4, 3)
        late.should_prune()
        again = study.ask()  # the same problems again: already said for this study
        again.report(0.5, 0)
        again.should_prune()
        again.report(0.5, 5)
        again.report(0.4, 3)
        again.should_prune()
    assert [str(w.message) for w in caught if w.category is UserWarning] == [
        f"SwiftHyperbandPruner: trial {zero.number} reported step 0: steps count the epochs "
        "done, 1 after the first; report epoch + 1 when epochs count from 0, else no trial "
        "reaches max_resource=9 and the last rung is never forecast",
        f"SwiftHyperbandPruner: trial {late.number} reported step 3 after step 5: report "
        "steps in increasing order; each rung is decided once, at the first step reported "
        "past its decision step",
    ]
    # Another in-memory study (its id is 0 too) with the same pruner hears it again.
    other = optuna.create_study(study_name="another", pruner=pruner)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        zero = other.ask()
        zero.report(0.5, 0)
        zero.should_prune()
    assert other._study_id == study._study_id
    assert [str(w.message)[:52] for w in caught if w.category is UserWarning] == [
        f"SwiftHyperbandPruner: trial {zero.number} reported step 0: steps"
    ]


def test_a_rung_is_decided_once_at_its_budget() -> None:
    study, pruner = _study()
    for bracket in (1, 2):  # the brackets the forecast mode keeps
        ask_in_bracket(study, pruner, bracket)
        trial = run_curve(study, flat(0.5, 9))
        assert trial.state == TrialState.COMPLETE
        promotions = _records.read_trial(trial.system_attrs).promotions
        assert promotions, "no promotion record"
        # Decided at r_i and never again, though the trial reported every later step.
        assert all(r["step"] == r["budget"] for r in promotions.values()), promotions


def test_a_malformed_record_is_skipped_with_its_name_in_the_log(caplog) -> None:
    study, _ = _study()
    trial = study.ask()
    name = _records.decision_attr(0)
    study._storage.set_trial_system_attr(trial._trial_id, name, {"v": "not a record"})
    trial.report(0.5, 1)
    with caplog.at_level(logging.WARNING, logger="optuna_qsvr.pruners"):
        assert trial.should_prune() is False
    assert f"Swift-Hyperband, predictor {name}: malformed record skipped: " in caplog.text


class _NoChance(LastValue):
    """Forecasts, but its calibrated chance always fails."""

    name = "test-no-chance"

    def prob_below(self, curves, thresholds, params=None):
        raise RuntimeError("no chance")


def test_a_predictor_failing_at_a_decision_point_or_a_rescue_is_logged_and_hyperband_decides(
    caplog,
) -> None:
    study, pruner = _study(predictor=_NoChance(), min_train_curves=4)
    rng = np.random.default_rng(0)
    for value in rng.uniform(0.1, 0.3, 24):
        add_complete(study, flat(float(value), 9))
    with caplog.at_level(logging.WARNING, logger="optuna_qsvr.pruners"):
        # Bracket 1: a decision point at epoch 1 inside its first rung (budget 3).
        ask_in_bracket(study, pruner, 1)
        kept = run_curve(study, {1: 5.0})
        # Bracket 2: the worst value at r_0 = 1, which successive halving stops; the rescue
        # cannot compute its chance, so the stop stands.
        ask_in_bracket(study, pruner, 2)
        stopped = run_curve(study, flat(5.0, 9))
    assert kept.state == TrialState.COMPLETE  # not pruned on a failed forecast
    [record] = _records.decisions(kept.system_attrs).values()
    assert record["decision"] == "no-forecast"
    assert record["reason"] == "predictor failed: RuntimeError: no chance"
    assert "Swift-Hyperband, predictor r9_t1: predictor failed: RuntimeError: no chance" in (
        caplog.text
    )
    assert stopped.state == TrialState.PRUNED and stopped.last_step == 1
    assert "Swift-Hyperband, predictor rescue: rescue failed: RuntimeError: no chance" in (
        caplog.text
    )


def test_one_trial_index_per_study_kept_between_calls() -> None:
    pruner = SwiftHyperbandPruner(max_resource=9)
    storage = optuna.storages.InMemoryStorage()
    first = optuna.create_study(study_name="first", storage=storage, pruner=pruner)
    second = optuna.create_study(study_name="second", storage=storage, pruner=pruner)
    run_curve(first, flat(0.5, 9))
    [index] = pruner._indexes[storage].values()
    for value in (0.4, 0.6):
        run_curve(first, flat(value, 9))
    # The same object, updated in place.
    assert list(pruner._indexes[storage].values()) == [index]
    run_curve(second, flat(0.5, 9))
    assert len(pruner._indexes[storage]) == 2


class _CountingStorage(optuna.storages.InMemoryStorage):
    """Optuna's in-memory storage, counting the study reads and each trial's record reads."""

    def __init__(self) -> None:
        super().__init__()
        self.study_reads: list[bool] = []  # each read's deepcopy flag
        self.record_reads: Counter[int] = Counter()

    def get_all_trials(self, study_id, deepcopy=True, states=None):
        self.study_reads.append(deepcopy)
        return super().get_all_trials(study_id, deepcopy=deepcopy, states=states)

    def get_trial_system_attrs(self, trial_id):
        self.record_reads[trial_id] += 1
        return super().get_trial_system_attrs(trial_id)


def test_a_decision_reads_the_study_once_and_a_trial_its_records_once() -> None:
    """A trial's first call chooses its regime and decides from one read of the study, with no
    copy of its trials; the records of a trial are read once, however many calls it makes."""
    storage = _CountingStorage()
    pruner = SwiftHyperbandPruner(max_resource=9, predictor=LastValue(), min_train_curves=3)
    study = optuna.create_study(storage=storage, pruner=pruner)
    regimes = set()
    for curve in crossing_curves(40, 9, seed=3):
        trial = study.ask()
        calls = 0
        storage.record_reads.clear()
        for step, value in enumerate(curve, start=1):
            trial.report(float(value), step)
            before = len(storage.study_reads)
            pruned = trial.should_prune()
            reads = storage.study_reads[before:]
            assert reads in ([], [False]), (trial.number, step, reads)
            calls += 1
            if pruned:
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, float(curve[-1]))
        assert storage.record_reads[trial._trial_id] <= 1, (trial.number, calls)
        stored = storage.get_trial(trial._trial_id)
        regimes.add(_records.regime_of_trial(stored.system_attrs)["regime"])
    # Not vacuous: both regimes' first calls were counted, and forecasts were made.
    assert regimes == {"hyperband", "forecast"}
    assert any(_records.read_trial(t.system_attrs).decisions for t in study.trials)


def test_a_new_storage_never_inherits_a_freed_ones_decisions() -> None:
    """The caches follow the storage object: a storage created after another was freed may
    take its id(), and its trials (ids 0, 1, ...) must not look already decided."""
    pruner = SwiftHyperbandPruner(max_resource=9, min_train_curves=3)
    values = [0.9, 0.8, 0.7, 0.2, 0.3, 0.1, 0.5, 0.6, 0.4]

    def run() -> tuple[list, list]:
        study = optuna.create_study(
            study_name="reused", storage=optuna.storages.InMemoryStorage(), pruner=pruner
        )
        trials = [run_curve(study, flat(v, 9)) for v in values]
        assert len(pruner._indexes) == len(pruner._done) == len(pruner._store._models) == 1
        return [(t.state, t.last_step) for t in trials], [
            _records.read_trial(t.system_attrs).names for t in trials
        ]

    gc.collect()
    locks = len(_lease._memory_locks)
    first = run()
    gc.collect()  # the first study and its storage are gone, and their caches with them
    assert len(pruner._indexes) == len(pruner._done) == len(pruner._store._models) == 0
    assert len(_lease._memory_locks) == locks  # its fit lease's lock too
    assert run() == first
    assert any(state == TrialState.PRUNED for state, _ in first[0])


def test_rung_mates_stopped_early_rank_last_in_the_forecast_mode_at_their_forecast_in_paper() -> (
    None
):
    """Bracket 2 (rungs 1, 3, 9). Two rung-mates were pruned at epoch 2 on a forecast of 0.0
    at r=3; the trial reaches r=3 at 0.5. The forecast mode stopped them for having little
    chance, so they rank below it and it is promoted; the paper mode ranks them at their
    forecasts, above it, and it stops."""
    record = _records.new_decision(
        bracket=2, rung=1, budget=3, decision_step=2, step=2, key="r3_t2"
    )
    record.update(decision="pruned", reason="planted", forecast=0.0)
    outcomes = {}
    for mode in ("forecast", "paper"):
        options = {"rescue": "none"} if mode == "forecast" else {"mode": mode, "full_fraction": 0}
        study, pruner = _study(f"ranks-{mode}", **options)
        for _ in range(2):
            ask_in_bracket(study, pruner, 2)
            study.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.PRUNED,
                    intermediate_values={1: 0.5, 2: 0.5},
                    system_attrs={_records.decision_attr(1): record},
                )
            )
        ask_in_bracket(study, pruner, 2)
        trial = run_curve(study, flat(0.5, 9))
        outcomes[mode] = (trial.state, trial.last_step)
    assert outcomes == {
        "forecast": (TrialState.COMPLETE, 9),
        "paper": (TrialState.PRUNED, 3),
    }


def test_the_forecast_mode_refits_as_the_curves_grow() -> None:
    from tests.pruners_tests._helpers import Recorder

    Recorder.reset()
    study, pruner = _study(
        "refits", predictor=Recorder(), min_train_curves=4, min_persistence_pairs=4
    )
    for value in (0.2, 0.3, 0.4, 0.5):
        add_complete(study, flat(value, 9))
    ask_in_bracket(study, pruner, 1)
    run_curve(study, flat(0.45, 9))
    first = Recorder.fits
    assert first >= 1
    for value in (0.25, 0.35, 0.6):  # 4 curves -> 8: past refit_growth=1.5
        add_complete(study, flat(value, 9))
    ask_in_bracket(study, pruner, 1)
    run_curve(study, flat(0.45, 9))
    assert Recorder.fits > first
    assert max(len(targets) for _, targets, _ in Recorder.fitted) > 4
