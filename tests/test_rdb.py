"""The workers' RDB storage: one winner per trial state change, with processes racing on a
real SQLite file and a real PostgreSQL database, and Optuna's answers otherwise (its own
RDBStorage is the oracle)."""

from __future__ import annotations

import importlib
from pathlib import Path

import optuna
import pytest
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from optuna_qsvr import AtomicStateRDBStorage
from optuna_qsvr._worker import open_storage
from tests.conftest import make_storage

_PROCESSES = 4
_TRIALS = 30
_BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@pytest.mark.parametrize(
    ("start", "state"),
    [
        (TrialState.WAITING, TrialState.RUNNING),  # workers popping one queued trial
        (TrialState.RUNNING, TrialState.FAIL),  # workers failing one silent trial
    ],
)
def test_racing_processes_change_a_trial_s_state_once(
    kind, start, state, tmp_path, monkeypatch
) -> None:
    url = make_storage(kind, tmp_path)
    # The benchmark's race (its spawned processes import it from the path they inherit).
    monkeypatch.syspath_prepend(str(_BENCHMARKS))
    state_race = importlib.import_module("state_race")

    study, won = state_race.winners(
        "AtomicStateRDBStorage", url, start, state, _TRIALS, _PROCESSES
    )

    # Optuna's own RDBStorage on SQLite lets several win most trials (benchmarks/state_race.py).
    assert won == [1] * _TRIALS
    assert [t.state for t in study.get_trials()] == [state] * _TRIALS


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


# -- the fit lease's claim requests (what a worker behind the gRPC proxy writes) ----------
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_claim_request_is_claimed_not_overwritten(kind, tmp_path) -> None:
    import time

    from optuna_qsvr import _records

    storage = AtomicStateRDBStorage(make_storage(kind, tmp_path))
    study_id = optuna.create_study(storage=storage)._study_id
    key = _records.lock_attr("r9_t5:v1")
    later = time.time() + 60

    def attrs() -> dict:
        return storage.get_study_system_attrs(study_id)

    storage.set_study_system_attr(
        study_id, key, {"owner": "a", "expires": later, "request": "claim"}
    )
    assert attrs()[key] == {"owner": "a", "expires": later, "atomic": True}
    # A second request while the first claim is live changes nothing (Optuna's would overwrite).
    storage.set_study_system_attr(
        study_id, key, {"owner": "b", "expires": later, "request": "claim"}
    )
    assert attrs()[key]["owner"] == "a"
    # A release (no request) is stored as written; an expired claim is taken over.
    storage.set_study_system_attr(study_id, key, {"owner": "a", "expires": 0.0, "failed": None})
    assert attrs()[key] == {"owner": "a", "expires": 0.0, "failed": None}
    storage.set_study_system_attr(
        study_id, key, {"owner": "b", "expires": later, "request": "claim"}
    )
    assert attrs()[key] == {"owner": "b", "expires": later, "atomic": True}
    # Anything else is Optuna's attribute, stored as given: other keys, malformed requests.
    plain = {"owner": "c", "expires": later, "request": "claim"}
    storage.set_study_system_attr(study_id, "user:thing", plain)
    assert attrs()["user:thing"] == plain
    for bad in (
        {"owner": "c", "expires": "soon", "request": "claim"},
        {"owner": 7, "expires": later, "request": "claim"},
        {"owner": "c", "expires": True, "request": "claim"},
        {"owner": "c", "expires": later, "request": "release"},
        ["c", later, "claim"],
    ):
        other = _records.lock_attr("r9_t6:v1")
        storage.set_study_system_attr(study_id, other, bad)
        assert attrs()[other] == bad
