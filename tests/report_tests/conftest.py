from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterator

import optuna
import pytest

from optuna_qsvr import SwiftHyperbandPruner

MAX_RESOURCE = 9


def swift_objective(trial: optuna.Trial) -> float:
    """Exponential decay to a floor: curves cross rarely, so forecasts are meaningful."""
    rate = trial.suggest_float("rate", 0.02, 1.0, log=True)
    floor = trial.suggest_float("floor", 0.0, 1.0)
    for step in range(1, MAX_RESOURCE + 1):
        trial.report(floor + math.exp(-rate * step), step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return floor + math.exp(-rate * MAX_RESOURCE)


def make_swift_study(
    storage: str | optuna.storages.BaseStorage | None,
    name: str,
    n_trials: int,
    pruner: SwiftHyperbandPruner | None = None,
) -> optuna.Study:
    """A real study decided by the real pruner (the paper mode's unless given), on ``storage``."""
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=pruner
        or SwiftHyperbandPruner(
            mode="paper", min_resource=1, max_resource=MAX_RESOURCE, min_train_curves=3
        ),
    )
    study.optimize(swift_objective, n_trials=n_trials)
    return study


def fast_sqlite_dir() -> str:
    # SQLite syncs every commit; on tmpfs the study builds in seconds instead of a minute.
    return tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)


@pytest.fixture(scope="session")
def swift_study() -> Iterator[tuple[str, str]]:
    """The URL and name of one SQLite study of 36 trials, shared by the read-only tests."""
    directory = fast_sqlite_dir()
    url = f"sqlite:///{directory}/study.db"
    try:
        make_swift_study(url, "swift-report", 36)
        yield url, "swift-report"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def load(swift_study: tuple[str, str]) -> optuna.Study:
    url, name = swift_study
    return optuna.load_study(study_name=name, storage=url)
