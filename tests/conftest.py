from __future__ import annotations

import hashlib
import os
import pickle
import uuid
from collections.abc import Callable, Iterator

import optuna
import pytest

from optuna_qsvr import _records

optuna.logging.set_verbosity(optuna.logging.WARNING)

STORAGE_KINDS = ["inmemory", "sqlite", "journal"]


def make_storage(kind: str, tmp_path) -> optuna.storages.BaseStorage | str | None:
    if kind == "inmemory":
        return None
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    if kind == "journal":
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))
    if kind == "postgresql":
        url = os.environ.get("OPTUNA_QSVR_TEST_POSTGRES_URL")
        if not url:
            pytest.skip("OPTUNA_QSVR_TEST_POSTGRES_URL is not set (.ci/run sets it)")
        return url
    raise ValueError(kind)


@pytest.fixture(params=STORAGE_KINDS)
def storage_factory(request, tmp_path) -> Iterator[Callable[[], object]]:
    """A callable giving the same storage each call (a URL, an object, or None)."""
    storage = make_storage(request.param, tmp_path)
    yield lambda: storage


@pytest.fixture
def study_name() -> str:
    return f"study-{uuid.uuid4().hex[:8]}"


def plant_hostile_model(study: optuna.Study, key: str, kind: str) -> None:
    """Publish a well-formed header whose one chunk is a pickle (hex) posing as a model: the
    pruner must reject it without unpickling it, and refit ``key`` as version 2."""
    payload = pickle.dumps(os.system).hex()
    sid = study._study_id
    study._storage.set_study_system_attr(sid, _records.chunk_attr(key, 1, 0), payload)
    study._storage.set_study_system_attr(
        sid,
        _records.model_attr(key),
        {
            "chunks": 1,
            "sha256": hashlib.sha256(payload.encode()).hexdigest(),
            "version": 1,
            "kind": kind,
            "n_train": 3,
            "fit_seconds": 0.1,
        },
    )
