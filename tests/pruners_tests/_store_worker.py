"""A worker process for the model-store concurrency tests.

``python -m tests.pruners_tests._store_worker MODE URL STUDY GO_FILE [ARGS...]`` loads the
study, prints ``ready`` and waits for ``GO_FILE`` to exist (so that every worker starts at
once, whatever its start-up time), then:

- ``claim NAME``: races for the lease ``NAME``, prints ``won`` or ``lost``;
- ``get KEY...``: gets each key's predictor from its own ModelStore until it has all of them
  (fits are counted through the file named by ``OPTUNA_QSVR_TEST_FIT_LOG``), prints ``done``;
- ``hold KEY``: starts fitting ``KEY`` with a fit that never ends, holding its lease until the
  process is killed.
"""

from __future__ import annotations

import os
import sys
import time
import uuid

import optuna
from optuna.trial import TrialState

from optuna_qsvr import _lease
from optuna_qsvr.pruners import _model_store
from tests.pruners_tests._helpers import Recorder

LEASE_SECONDS = 4.0


def make_store(lease_seconds: float = LEASE_SECONDS, **kwargs) -> _model_store.ModelStore:
    return _model_store.ModelStore(
        kwargs.pop("new_predictor", Recorder),
        min_train_curves=kwargs.pop("min_train_curves", 3),
        max_train_curves=kwargs.pop("max_train_curves", 100),
        refit_every=kwargs.pop("refit_every", None),
        lease_seconds=lease_seconds,
        settings=kwargs.pop("settings", {"test": True}),
        warn=kwargs.pop("warn", lambda study, key, message: None),
    )


def key_steps(key: str) -> tuple[int, int]:
    target, step = key[1:].split("_t")
    return int(step), int(target)


def get_all(store, study: optuna.Study, keys: list[str], timeout: float = 120.0) -> dict:
    """Ask for every key until each predictor is had (fitted here or loaded)."""
    pool = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    got: dict = {}
    deadline = time.monotonic() + timeout
    while len(got) < len(keys):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no predictor for {set(keys) - set(got)}")
        for key in keys:
            if key not in got:
                step, target = key_steps(key)
                model, _why = store.get(study, key, pool, step, target, 1.0)
                if model is not None:
                    got[key] = model
        time.sleep(0.02)
    return got


def main(argv: list[str]) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    mode, url, name, go, *args = argv
    study = optuna.load_study(storage=url, study_name=name)
    if mode == "claim":
        study._storage.get_study_system_attrs(study._study_id)  # connected before the race
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.001)
    if mode == "claim":
        won = _lease.try_claim(study._storage, study._study_id, args[0], uuid.uuid4().hex, 60)
        print("won" if won else "lost", flush=True)
    elif mode == "get":
        Recorder.reset(fit_seconds=0.3)
        get_all(make_store(), study, args)
        print("done", flush=True)
    elif mode == "hold":
        Recorder.reset(fit_seconds=10**6)
        get_all(make_store(), study, args)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
