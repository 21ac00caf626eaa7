"""The trial index answers as walking the trial list does, whatever the study's history.

The decisions read a study through :class:`TrialIndex` (finished trials cached, running ones
read afresh) or by walking every trial; both must give the same pools, bars and rung values.
Here random studies grow in snapshots, trials finishing between them, and every answer of an
index fed those snapshots is compared with the walk's. End to end, studies replayed with the
index and with the walk make the same decisions on InMemory and SQLite storages.
"""

from __future__ import annotations

import copy
import datetime
import math
import sys
import threading
from pathlib import Path

import optuna
import pytest
from hypothesis import given
from hypothesis import strategies as st
from optuna.trial import FrozenTrial, TrialState

from optuna_qsvr import SwiftHyperbandPruner, _records
from optuna_qsvr.benchmark import CurveTable
from optuna_qsvr.benchmark._replay import replay_async
from optuna_qsvr.benchmark._run import config_sequence, run_one
from optuna_qsvr.pruners import _decisions
from optuna_qsvr.pruners._persistence import paired_values
from optuna_qsvr.pruners._schedule import Rung
from optuna_qsvr.pruners._trial_index import TrialIndex, _Joined
from tests._hypothesis import props

CURVES = Path(__file__).parents[2] / "optuna_qsvr" / "benchmark" / "curves"
RUNGS = [
    Rung(bracket=0, index=0, previous=0, budget=3, decision_step=2, is_last=False),
    Rung(bracket=1, index=1, previous=3, budget=9, decision_step=5, is_last=True),
]
BUDGETS = (1, 3, 5, 9)


def _bracket(trial: FrozenTrial) -> int:
    return trial.number * 7 % 3


def _record(budget: int, decision: str) -> dict:
    record = _records.new_decision(
        bracket=0, rung=1, budget=budget, decision_step=2, step=2, key=f"r{budget}_t2"
    )
    record.update(decision=decision, reason="", forecast=0.5)
    return record


@st.composite
def _histories(draw):
    """Trials 0..n-1, each with its whole curve, the snapshot in which it finishes (its
    curve shown up to a step before that) and an early-stop record or none."""
    n = draw(st.integers(0, 24))
    value = st.one_of(
        st.floats(-2, 2, allow_nan=False),
        st.sampled_from([math.nan, math.inf, 0.5, 0.5]),  # ties and non-finite reports
    )
    trials = []
    for _ in range(n):
        # Curves run to the end, stop at a rung's budget or anywhere, whole or with gaps.
        last = draw(st.one_of(st.sampled_from([9, 9, 3, 1]), st.integers(0, 9)))
        every = set(range(1, last + 1))
        steps = draw(st.one_of(st.just(every), st.sets(st.integers(1, 9), max_size=9)))
        curve = {s: draw(value) for s in sorted(steps) if s <= last}
        record = draw(
            st.sampled_from([None, None, (3, "pruned"), (3, "pruned"), (9, "pruned"), (3, "kept")])
        )
        finish = draw(st.integers(0, 4))  # the snapshot it finishes in; 4: never
        failed = draw(st.sampled_from([False, False, False, True]))  # raised after its reports
        trials.append((curve, record, finish, failed))
    return trials


def _snapshot(history, k: int) -> list[optuna.trial.FrozenTrial]:
    """The study as snapshot ``k`` shows it: later trials absent, unfinished ones running with
    part of their curve."""
    shown = history[: len(history) * min(k + 1, 3) // 3]  # a third more trials each time
    out = []
    for number, (curve, record, finish, failed) in enumerate(shown):
        done = finish <= k
        steps = sorted(curve)
        part = curve if done else {s: curve[s] for s in steps[: len(steps) * (k + 1) // 4]}
        attrs = {_records.decision_attr(1): _record(*record)} if record else {}
        state = TrialState.PRUNED if record and record[1] == "pruned" else TrialState.COMPLETE
        state = TrialState.FAIL if failed else state
        trial = optuna.trial.create_trial(
            state=state if done else TrialState.RUNNING,
            value=0.0 if done and state == TrialState.COMPLETE else None,
            intermediate_values=part,
            system_attrs=attrs,
        )
        trial.number = number
        out.append(trial)
    return out


def _views(trials, index, own: int, rung: Rung, sign: float):
    own_trial = (
        trials[own]
        if own < len(trials)
        else optuna.trial.create_trial(state=TrialState.RUNNING, intermediate_values={})
    )
    if own >= len(trials):
        own_trial.number = own
    others = [t for t in trials if t.number != own]
    peers = [t for t in others if _bracket(t) == rung.bracket]
    walk = _decisions.RungView(own_trial, rung, sign, others=others, peers=peers)
    return walk, _decisions.RungView(own_trial, rung, sign, index=index)


def _same_answers(walk, indexed, options) -> None:
    for step in (1, 2, 5):
        for target in BUDGETS:
            assert sorted(t.number for t in _decisions._pool(walk, step, target)) == sorted(
                t.number for t in _decisions._pool(indexed, step, target)
            )
    assert _decisions._final_bar(walk, options) == _decisions._final_bar(indexed, options)
    for budget in BUDGETS:
        assert _decisions._rung_bar(walk, 3, budget) == _decisions._rung_bar(indexed, 3, budget)
    for last in (True, False):
        assert _decisions.promotion_record(walk, 3, stopped_rank_last=last) == (
            _decisions.promotion_record(indexed, 3, stopped_rank_last=last)
        )
    # Ranked among the whole study (ties, non-finite values and early stops included).
    assert _decisions.promotion_record(walk, 3, pooled=True) == (
        _decisions.promotion_record(indexed, 3, pooled=True)
    )
    assert [t.number for t in walk.others] == [t.number for t in indexed.others]
    assert [t.number for t in walk.peers] == [t.number for t in indexed.peers]


@given(history=_histories(), top_k=st.integers(1, 4), data=st.data())
@props(250)
def test_index_answers_as_the_walk_over_a_growing_study(history, top_k, data) -> None:
    options = SwiftHyperbandPruner(max_resource=9, top_k=top_k)._options
    index = TrialIndex(_bracket)
    for k in range(4):
        trials = _snapshot(history, k)
        assert index.update(trials)
        # The decided trial: a running one, a finished one (taken out of the cache's
        # answers) or one not in the list yet (a trial the storage has not returned).
        own = data.draw(st.integers(0, len(trials)))
        sign = data.draw(st.sampled_from([1.0, -1.0]))
        for rung in RUNGS:
            walk, indexed = _views(trials, index, own, rung, sign)
            _same_answers(walk, indexed, options)
        # The rank persistence's pairs: the same trials' values (NaN included), in any order.
        for first, second in ((1, 3), (3, 9), (1, 9)):
            pairs = sorted(map(repr, zip(*index.paired_values(first, second), strict=True)))
            walked = zip(*paired_values(trials, first, second), strict=True)
            assert pairs == sorted(map(repr, walked))
            # The bounded read is the full one's tail, running trials' pairs last.
            xs, ys = index.paired_values(first, second)
            last = data.draw(st.integers(0, len(xs) + 1))
            tail = max(len(xs) - last, 0)
            assert index.paired_values(first, second, last) == (xs[tail:], ys[tail:])


def test_trials_stopped_early_in_a_rung_count_once_each_but_the_decided_one() -> None:
    """``rung_value``'s ``stopped``: the trials pruned inside the rung ending at the budget
    (a pruned record there and no value at it), finished or still running, except the trial
    being decided, counted whatever the cache holds."""

    def trial(number, curve, state, record=None):
        attrs = {_records.decision_attr(1): _record(*record)} if record else {}
        t = optuna.trial.create_trial(
            state=state,
            value=0.0 if state == TrialState.COMPLETE else None,
            intermediate_values=curve,
            system_attrs=attrs,
        )
        t.number = number
        return t

    trials = [
        trial(0, {1: 0.1, 2: 0.1, 3: 0.1}, TrialState.COMPLETE),
        trial(1, {1: 0.5}, TrialState.PRUNED, (3, "pruned")),
        trial(2, {1: 0.6, 2: 0.6}, TrialState.PRUNED, (3, "pruned")),
        trial(3, {1: 0.7}, TrialState.PRUNED, (9, "pruned")),  # another rung's stop
        trial(4, {1: 0.2, 2: 0.2, 3: 0.2}, TrialState.COMPLETE),
        trial(5, {1: 0.8}, TrialState.PRUNED, (3, "kept")),  # kept: not a stop
        trial(6, {1: 0.9}, TrialState.RUNNING, (3, "pruned")),  # pruned, not yet told
        trial(7, {1: 0.3, 2: 0.3}, TrialState.RUNNING),
        trial(8, {1: 0.4}, TrialState.PRUNED, (3, "pruned")),
    ]
    index = TrialIndex(lambda t: 0)
    assert index.update(trials)

    def counts(exclude: int) -> tuple[int, int]:
        seen = []
        index.rung_value(3, 1.0, exclude, lambda n, stopped: seen.append((n, stopped)))
        return seen[0]

    for _ in range(2):  # the second time from the cache
        assert counts(exclude=7) == (2, 4)
        assert counts(exclude=1) == (2, 3)  # the decided trial is not its own rung-mate
        assert counts(exclude=6) == (2, 3)
        assert counts(exclude=0) == (1, 4)


def test_the_bar_counts_running_trials_at_the_end_but_not_the_decided_one() -> None:
    # A running trial that reported max_resource is about to complete: its value is a final
    # for the others' bar, never for its own. A failed one's is none.
    def make(number, state, values):
        t = optuna.trial.create_trial(
            state=state,
            value=values[9] if state == TrialState.COMPLETE else None,
            intermediate_values=values,
        )
        t.number = number
        return t

    trials = [
        make(0, TrialState.COMPLETE, {1: 0.9, 9: 0.5}),
        make(1, TrialState.FAIL, {1: 0.9, 9: 0.05}),
        make(2, TrialState.RUNNING, {1: 0.9, 9: 0.2}),
        make(3, TrialState.RUNNING, {1: 0.9, 9: 0.1}),
    ]
    index = TrialIndex(_bracket)
    assert index.update(trials)
    options = SwiftHyperbandPruner(max_resource=9)._options
    for own, bar in ((trials[3], 0.2), (trials[2], 0.1)):
        indexed = _decisions.RungView(own, RUNGS[1], 1.0, index=index)
        others = [t for t in trials if t.number != own.number]
        walk = _decisions.RungView(own, RUNGS[1], 1.0, others=others, peers=[])
        assert _decisions._final_bar(indexed, options)[0] == bar
        assert _decisions._final_bar(walk, options)[0] == bar
    assert index.finals(9, 1.0, 3, exclude=3) == [0.2, 0.5]
    assert index.finals(9, 1.0, 3, exclude=0) == [0.1, 0.2]


def test_an_index_resets_for_another_list_and_refuses_odd_numbering() -> None:
    def study(values):
        s = optuna.create_study()
        for v in values:
            s.add_trial(optuna.trial.create_trial(value=v, intermediate_values={9: v}))
        return s.get_trials(deepcopy=False)

    index = TrialIndex(_bracket)
    options = SwiftHyperbandPruner(max_resource=9)._options
    own = optuna.trial.create_trial(state=TrialState.RUNNING, intermediate_values={})
    own.number = 99
    assert index.update(study([0.3, 0.1, 0.2]))
    view = _decisions.RungView(own, RUNGS[1], 1.0, index=index)
    assert _decisions._final_bar(view, options)[0] == 0.1
    # Another study's trials (fewer, or as many but not the same): read from scratch.
    assert index.update(study([0.7, 0.8]))
    assert (
        _decisions._final_bar(_decisions.RungView(own, RUNGS[1], 1.0, index=index), options)[0]
        == 0.7
    )
    assert index.update(study([0.6, 0.9, 0.5]))
    assert (
        _decisions._final_bar(_decisions.RungView(own, RUNGS[1], 1.0, index=index), options)[0]
        == 0.5
    )
    # Numbers that are not positions (trials 1 and 2 only, or 0 and 2): the index declines.
    trials = study([0.4, 0.2, 0.3])
    assert not index.update(trials[1:])
    assert not index.update([trials[0], trials[2]])
    assert index.update(trials)
    with pytest.raises(TypeError, match="needs others and peers"):
        _decisions.RungView(own, RUNGS[1], 1.0, others=[])


def test_a_finished_trial_is_read_once() -> None:
    seen: list[int] = []

    def bracket_of(trial: FrozenTrial) -> int:
        seen.append(trial.number)
        return 0

    trials = [
        optuna.trial.create_trial(value=v / 10, intermediate_values={3: v / 10}) for v in range(20)
    ]
    for i, t in enumerate(trials):
        t.number = i
    index = TrialIndex(bracket_of)

    def competing(own: int) -> list[float]:
        seen.clear()
        return index.competing(0, 3, "value", lambda t: t.intermediate_values[3], own)

    assert index.update(trials[:19])
    assert len(competing(99)) == 19 and len(seen) == 19
    # The same list again, then one more finished trial: only the new one is read.
    assert index.update(trials[:19])
    assert len(competing(99)) == 19 and seen == []
    assert index.update(trials)
    assert len(competing(5)) == 19 and seen == [19]


def test_an_older_read_of_the_same_study_keeps_the_newer_state() -> None:
    """Threads share an index: one thread's read may land after a newer one. The index keeps
    the newer trials rather than starting again (which cost a read of every finished trial),
    and still starts again for a shorter list of another study."""
    seen: list[int] = []

    def bracket_of(trial: FrozenTrial) -> int:
        seen.append(trial.number)
        return 0

    study = optuna.create_study()
    for v in range(20):
        study.add_trial(optuna.trial.create_trial(value=v / 10, intermediate_values={3: v / 10}))
    newer = study.get_trials(deepcopy=False)
    index = TrialIndex(bracket_of)

    def competing() -> list[float]:
        seen.clear()
        return index.competing(0, 3, "value", lambda t: t.intermediate_values[3], 99)

    assert index.update(newer) and len(competing()) == 20
    for older in (newer[:12], newer[:1]):
        assert index.update(older)
        assert len(competing()) == 20 and seen == []
    # The same ids, started at other times: a new study that reuses a deleted one's ids.
    other = [copy.copy(t) for t in newer[:12]]
    other[-1].datetime_start += datetime.timedelta(seconds=1)
    assert index.update(other)
    assert len(competing()) == 12 and len(seen) == 12
    # No trials at all is no older read of a study that has some: start again.
    assert index.update([]) and competing() == []
    # A trial still waiting in the older read (re-queued, not yet started) is the same trial.
    assert index.update(newer) and len(competing()) == 20
    waiting = [copy.copy(t) for t in newer[:12]]
    waiting[-1].datetime_start = None
    assert index.update(waiting)
    assert len(competing()) == 20 and seen == []
    # Ids reused by a new study whose last trial waits: its first trial started at another time.
    waiting[0] = copy.copy(waiting[0])
    waiting[0].datetime_start += datetime.timedelta(seconds=1)
    assert index.update(waiting)
    assert len(competing()) == 12


def test_a_read_as_long_as_the_last_brings_the_trials_finished_since() -> None:
    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(value=0.5, intermediate_values={3: 0.5}))
    running = study.ask()
    running.report(0.2, 3)
    index = TrialIndex(lambda trial: 0)

    def competing() -> list[float]:
        return index.competing(0, 3, "value", lambda t: t.intermediate_values[3], 99)

    assert index.update(study.get_trials(deepcopy=False)) and sorted(competing()) == [0.2, 0.5]
    assert index.running and index.running[0].number == 1
    study.tell(running, 0.2)
    assert index.update(study.get_trials(deepcopy=False))
    assert sorted(competing()) == [0.2, 0.5] and index.running == []


def test_a_pool_reads_as_one_list() -> None:
    first, second = [1, 2, 3], [4, 5]
    pool = _Joined(first, second)
    assert len(pool) == 5
    assert list(pool) == [1, 2, 3, 4, 5] == [pool[i] for i in range(5)]
    assert pool[-1] == 5 and pool[1:3] == [2, 3]


def test_threads_sharing_an_index_get_the_walks_answers() -> None:
    """Threads of one process share an index and update it with the trials each has read:
    an answer may come from another thread's newer read, as a decision may from another
    worker's (an older read than the index's is answered from the index), but each answer
    comes from one whole read, never from a torn index. (The two bars of one decision may
    come from two reads, as two workers' reads differ.)"""
    finished = [
        optuna.trial.create_trial(value=v / 10, intermediate_values={3: v / 10, 9: v / 10})
        for v in range(40)
    ]
    for i, t in enumerate(finished):
        t.number = i
    index = TrialIndex(_bracket)
    options = SwiftHyperbandPruner(max_resource=9, top_k=3)._options
    errors: list[BaseException] = []

    def answers(view) -> tuple:
        return _decisions._final_bar(view, options), _decisions._rung_bar(view, 3)

    own = optuna.trial.create_trial(state=TrialState.RUNNING, intermediate_values={})
    own.number = 1000
    # What each answer may be: the walk's over one of the reads, any of them.
    reads = {
        answers(_views(finished[:m], TrialIndex(_bracket), own.number, RUNGS[0], 1.0)[0])
        for m in range(1, 41)
    }
    assert len(reads) > 10

    def decide(n: int) -> None:
        try:
            for m in range(1, 41):
                trials = finished[:m]
                assert index.update(trials)
                walk, indexed = _views(trials, index, own.number, RUNGS[0], 1.0)
                final, rung = answers(indexed)
                assert final in {r[0] for r in reads} and rung in {r[1] for r in reads}
                with index._lock:  # no other thread in between: the newest read's answers
                    assert index.update(trials)
                    newest = finished[: max(m, len(index._trials))]
                    assert len(index._trials) == len(newest)
                    walk = _views(newest, TrialIndex(_bracket), own.number, RUNGS[0], 1.0)[0]
                    assert answers(indexed) == answers(walk)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=decide, args=(n,)) for n in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: interleave updates and queries
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors


def _walk_only(monkeypatch) -> None:
    monkeypatch.setattr(TrialIndex, "update", lambda self, trials: False)


@pytest.mark.parametrize("workers", [1, 4])
def test_replays_decide_the_same_with_the_index_and_the_walk(workers, monkeypatch) -> None:
    table = CurveTable.load(CURVES / "mlpf_delphes_sim.csv.gz")

    def run() -> dict:
        out = run_one(table, "swift-svr", 3, direction="minimize", n_trials=60, n_workers=workers)
        return {k: v for k, v in out.items() if k not in ("wall_seconds", "fit_seconds")}

    indexed = run()
    _walk_only(monkeypatch)
    walked = run()
    assert indexed == walked
    assert 0 < indexed["n_pruned"] < 60


def _decisions_of(study: optuna.Study) -> list:
    return [
        (
            t.state,
            t.last_step,
            sorted(
                # Decision and promotion records, and the regime the trial ran in.
                (k, v["decision"] if "decision" in v else v["regime"])
                for k, v in t.system_attrs.items()
                if k.startswith(_records.PREFIX)
            ),
        )
        for t in study.get_trials()
    ]


@pytest.mark.parametrize("second_look", [False, True])
def test_sqlite_studies_decide_the_same_with_the_index_and_the_walk(
    tmp_path, monkeypatch, second_look
) -> None:
    table = CurveTable.load(CURVES / "cnn_digits.csv.gz")

    def run() -> tuple[list, int]:
        study = optuna.create_study(
            storage=f"sqlite:///{tmp_path / 'study.db'}",
            study_name="index-or-walk",  # the name sets the brackets: the same in both runs
            direction="maximize",
            pruner=SwiftHyperbandPruner(max_resource=table.max_step, second_look=second_look),
        )
        replay_async(study, table, config_sequence(table, 0, 40), n_workers=3)
        looks = sum(
            "second look" in str(v.get("reason"))
            for t in study.get_trials()
            for k, v in t.system_attrs.items()
            if k.startswith(_records.PREFIX)
        )
        return _decisions_of(study), looks

    indexed, looks = run()
    (tmp_path / "study.db").unlink()
    _walk_only(monkeypatch)
    walked, walked_looks = run()
    assert indexed == walked and looks == walked_looks
    assert any(state == TrialState.PRUNED for state, _, _ in indexed)
    # The crowd's counts come from the index in one run and the walk in the other.
    assert (looks > 0) == second_look


def test_sorted_median_of_an_even_an_odd_and_an_empty_list() -> None:
    from optuna_qsvr.pruners._trial_index import sorted_median

    assert sorted_median([0.1, 0.3]) == pytest.approx(0.2)
    assert sorted_median([0.1, 0.2, 5.0]) == 0.2
    assert sorted_median([0.1, math.inf]) == math.inf  # a diverged value ranks last
    assert math.isnan(sorted_median([]))
