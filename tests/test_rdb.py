"""The workers' RDB storage: one winner per trial state change, with processes racing on a
real SQLite file and a real PostgreSQL database, and Optuna's answers otherwise (its own
RDBStorage is the oracle)."""

from __future__ import annotations

import multiprocessing
import uuid

import optuna
import pytest
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from optuna_qsvr._rdb import AtomicStateRDBStorage
from optuna_qsvr._worker import open_storage
from tests.conftest import make_storage

_PROCESSES = 4
_TRIALS = 30


def _race(url: str, trial_ids: list[int], state: TrialState, barrier, results) -> None:
    """One worker: change every trial to ``state`` at the same moment as the others."""
    storage = AtomicStateRDBStorage(url)
    won = []
    for trial_id in trial_ids:
        barrier.wait(timeout=60)
        try:
            won.append(storage.set_trial_state_values(trial_id, state))
        except UpdateFinishedTrialError:
            won.append(False)
    results.put(won)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@pytest.mark.parametrize(
    ("start", "state"),
    [
        (TrialState.WAITING, TrialState.RUNNING),  # workers popping one queued trial
        (TrialState.RUNNING, TrialState.FAIL),  # workers failing one silent trial
    ],
)
def test_racing_processes_change_a_trial_s_state_once(kind, start, state, tmp_path) -> None:
    url = make_storage(kind, tmp_path)
    storage = AtomicStateRDBStorage(url)
    study = optuna.create_study(storage=storage, study_name=f"race-{uuid.uuid4().hex[:8]}")
    for _ in range(_TRIALS):
        if start == TrialState.WAITING:
            study.enqueue_trial({})
        else:
            study.ask()
    trial_ids = [t._trial_id for t in study.get_trials(states=(start,))]
    assert len(trial_ids) == _TRIALS

    context = multiprocessing.get_context("spawn")  # fresh engines, as separate workers have
    barrier, results = context.Barrier(_PROCESSES), context.Queue()
    procs = [
        context.Process(target=_race, args=(url, trial_ids, state, barrier, results))
        for _ in range(_PROCESSES)
    ]
    for p in procs:
        p.start()
    won = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    # Optuna's own RDBStorage on SQLite let 2 to 4 processes win in 8 to 11 of the 30 trials.
    assert [sum(w[i] for w in won) for i in range(_TRIALS)] == [1] * _TRIALS
    assert all(t.state == state for t in study.get_trials() if t._trial_id in trial_ids)


def _answers(storage: optuna.storages.RDBStorage) -> list[object]:
    """Every kind of state change on one storage: its answers, then the trials it leaves."""
    study = optuna.create_study(storage=storage, study_name="answers", directions=["minimize"] * 2)
    set_state = storage.set_trial_state_values
    running = study.ask()._trial_id
    study.enqueue_trial({})
    study.enqueue_trial({})
    queued, also_queued = (t._trial_id for t in study.get_trials(states=(TrialState.WAITING,)))
    calls = [
        (queued, TrialState.RUNNING, None),  # starts
        (queued, TrialState.RUNNING, None),  # not WAITING any more
        (queued, TrialState.COMPLETE, (1.0, 2.0)),
        (queued, TrialState.FAIL, None),  # finished
        (queued, TrialState.RUNNING, None),  # finished
        (running, TrialState.PRUNED, None),
        (also_queued, TrialState.FAIL, None),  # a queued trial may fail
        (10_000, TrialState.FAIL, None),  # no such trial
    ]
    answers: list[object] = []
    for trial_id, state, values in calls:
        try:
            answers.append(set_state(trial_id, state, values))
        except (UpdateFinishedTrialError, KeyError) as err:
            answers.append(type(err).__name__)
    trials = [
        (t.number, t.state, t.values, t.datetime_start is None, t.datetime_complete is None)
        for t in study.get_trials()
    ]
    return [*answers, *trials]


def test_answers_are_optuna_s(tmp_path) -> None:
    ours = _answers(AtomicStateRDBStorage(f"sqlite:///{tmp_path / 'ours.db'}"))
    optunas = _answers(optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}"))

    assert ours == optunas
    assert ours[:8] == [
        True,
        False,
        True,
        "UpdateFinishedTrialError",
        "UpdateFinishedTrialError",
        True,
        True,
        "KeyError",
    ]


def test_a_study_runs_to_the_same_trials_as_on_optuna_s_storage(tmp_path) -> None:
    def run(storage: optuna.storages.RDBStorage) -> list[tuple]:
        study = optuna.create_study(
            storage=storage, sampler=optuna.samplers.RandomSampler(seed=0), study_name="same"
        )

        def objective(trial: optuna.Trial) -> float:
            x = trial.suggest_float("x", -1.0, 1.0)
            if x > 0.5:
                raise optuna.TrialPruned
            return x * x

        study.enqueue_trial({"x": 0.25})
        study.optimize(objective, n_trials=12, catch=())
        return [(t.state, t.params, t.value) for t in study.trials]

    assert run(AtomicStateRDBStorage(f"sqlite:///{tmp_path / 'a.db'}")) == run(
        optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'b.db'}")
    )


def test_workers_open_the_atomic_storage(tmp_path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'w.db'}", heartbeat_interval=5)
    assert isinstance(storage, AtomicStateRDBStorage)
    assert storage.heartbeat_interval == 5
