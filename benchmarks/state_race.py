"""Processes racing to change one trial's state: how many win, with Optuna's RDBStorage and with
the workers' AtomicStateRDBStorage.

    python benchmarks/state_race.py                       # SQLite in a temporary directory
    python benchmarks/state_race.py --url postgresql+psycopg://optuna:optuna-ci@127.0.0.1:5432/optuna_qsvr

For each storage class and each transition the workers race for (WAITING -> RUNNING: starting a
queued trial; RUNNING -> FAIL: failing a silent one), ``--processes`` processes wait at a
barrier before each of ``--trials`` trials and then all ask for the same change. Printed: the
trials that more than one process won, and the most winners of one trial. A correct storage has
exactly one winner per trial. The race is timing-dependent: counts vary from run to run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import uuid
from pathlib import Path

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from optuna_qsvr._rdb import AtomicStateRDBStorage

CLASSES = {
    "RDBStorage": optuna.storages.RDBStorage,
    "AtomicStateRDBStorage": AtomicStateRDBStorage,
}
TRANSITIONS = {
    "start a queued trial": (TrialState.WAITING, TrialState.RUNNING),
    "fail a silent trial": (TrialState.RUNNING, TrialState.FAIL),
}


def _race(kind: str, url: str, trial_ids: list[int], state: TrialState, barrier, results) -> None:
    storage = CLASSES[kind](url)
    won = []
    for trial_id in trial_ids:
        barrier.wait(timeout=60)
        try:
            won.append(storage.set_trial_state_values(trial_id, state))
        except UpdateFinishedTrialError:
            won.append(False)
    results.put(won)


def winners(
    kind: str, url: str, start: TrialState, state: TrialState, n: int, procs: int
) -> tuple[optuna.Study, list[int]]:
    """A new study of ``n`` trials in state ``start`` and, per trial, how many of ``procs``
    processes won its change to ``state`` (``tests/test_rdb.py`` runs it too)."""
    study = optuna.create_study(storage=url, study_name=f"race-{uuid.uuid4().hex[:8]}")
    for _ in range(n):
        if start == TrialState.WAITING:
            study.enqueue_trial({})
        else:
            study.ask()
    trial_ids = [t._trial_id for t in study.get_trials(states=(start,))]
    context = multiprocessing.get_context("spawn")  # fresh engines, as separate workers have
    barrier, results = context.Barrier(procs), context.Queue()
    workers = [
        context.Process(target=_race, args=(kind, url, trial_ids, state, barrier, results))
        for _ in range(procs)
    ]
    for w in workers:
        w.start()
    won = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        if w.exitcode != 0:
            raise RuntimeError(f"a racing process ended with exit code {w.exitcode}")
    return study, [sum(w[i] for w in won) for i in range(len(trial_ids))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=None, help="storage URL (default: a new SQLite file)")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'race.db'}"
    print("| storage | change | trials won by more than one process | most winners of one trial |")
    print("|---|---|---:|---:|")
    for kind in CLASSES:
        for label, (start, state) in TRANSITIONS.items():
            _, counts = winners(kind, url, start, state, args.trials, args.processes)
            shared = sum(c > 1 for c in counts)
            print(
                f"| `{kind}` | {label} | {shared} of {len(counts)} | {max(counts)} |", flush=True
            )


if __name__ == "__main__":
    main()
