"""State shared through the study's storage: fitted predictors (JSON, chunked) and the
claim that lets exactly one worker fit each predictor.

Nothing here is executable data: a model record is JSON text in study system attributes,
split in chunks because one attribute is one ``Text`` row (MySQL's TEXT holds 64 KiB) and
``json.dumps`` may double a chunk's length when it escapes quotes.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from optuna_qsvr.predictors._base import ModelFormatError

if TYPE_CHECKING:
    import optuna

MODEL_PREFIX = "swift:model:"
LOCK_PREFIX = "swift:lock:"
CHUNK_CHARS = 30_000
MAX_CHUNKS = 2_000
_HEADER_FIELDS = {
    "chunks": int,
    "sha256": str,
    "version": int,
    "kind": str,
    "n_train": int,
    "fit_seconds": float,
}

_memory_locks: dict[int, threading.Lock] = {}
_memory_locks_guard = threading.Lock()


def new_owner_id() -> str:
    return uuid.uuid4().hex


def publish_model(
    storage: optuna.storages.BaseStorage,
    study_id: int,
    key: str,
    text: str,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """Write a fitted model's JSON in chunks, then its header; the header marks it complete."""
    version = int(meta.get("version", 1))
    chunks = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
    if len(chunks) > MAX_CHUNKS:
        raise ModelFormatError(f"model for {key} too large to publish ({len(text)} characters)")
    for i, chunk in enumerate(chunks):
        storage.set_study_system_attr(study_id, f"{MODEL_PREFIX}{key}:v{version}:{i}", chunk)
    header = {
        **meta,
        "chunks": len(chunks),
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "version": version,
    }
    storage.set_study_system_attr(study_id, f"{MODEL_PREFIX}{key}", header)
    return header


def read_model(attrs: dict[str, Any], key: str) -> tuple[dict[str, Any], str] | None:
    """The published header and JSON text of ``key``, or ``None`` if none is published.

    Raises:
        ModelFormatError: the record is malformed, incomplete or does not match its hash.
    """
    header = attrs.get(f"{MODEL_PREFIX}{key}")
    if header is None:
        return None
    validate_header(header, key)
    parts = []
    for i in range(header["chunks"]):
        part = attrs.get(f"{MODEL_PREFIX}{key}:v{header['version']}:{i}")
        if not isinstance(part, str):
            raise ModelFormatError(f"model record for {key}: chunk {i} missing or not text")
        parts.append(part)
    text = "".join(parts)
    if hashlib.sha256(text.encode()).hexdigest() != header["sha256"]:
        raise ModelFormatError(f"model record for {key} does not match its sha256")
    return header, text


def validate_header(header: Any, key: str) -> None:
    if not isinstance(header, dict):
        raise ModelFormatError(f"model header for {key} is not a mapping")
    for name, kind in _HEADER_FIELDS.items():
        value = header.get(name)
        ok = isinstance(value, (int, float) if kind is float else kind) and not isinstance(
            value, bool
        )
        if not ok:
            raise ModelFormatError(f"model header for {key}: field {name!r} is {value!r}")
    if not 1 <= header["chunks"] <= MAX_CHUNKS or header["version"] < 1:
        raise ModelFormatError(f"model header for {key}: chunk count or version out of range")
    if not math.isfinite(header["fit_seconds"]):
        raise ModelFormatError(f"model header for {key}: fit_seconds is not finite")


def model_headers(attrs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every published model header by key (chunks excluded)."""
    out = {}
    for name, value in attrs.items():
        if name.startswith(MODEL_PREFIX) and ":v" not in name[len(MODEL_PREFIX) :]:
            out[name[len(MODEL_PREFIX) :]] = value
    return out


def try_claim(
    storage: optuna.storages.BaseStorage,
    study_id: int,
    name: str,
    owner: str,
    lease_seconds: float,
) -> bool:
    """Claim the right to fit ``name``; at most one live claim exists at a time.

    RDB storages get an atomic claim from the unique ``(study_id, key)`` index of study system
    attributes; an expired lease (a worker that died while fitting) is taken over with a
    compare-and-set update. In-memory storage lives in one process: a lock suffices. Other
    storages (journal, gRPC) offer no compare-and-set: write, wait, and read back, which
    makes a double claim unlikely but not impossible.
    """
    key = f"{LOCK_PREFIX}{name}"
    now = time.time()
    claim = {"owner": owner, "expires": now + lease_seconds}
    backend = getattr(storage, "_backend", storage)
    from optuna.storages import InMemoryStorage, RDBStorage

    if isinstance(backend, RDBStorage):
        return _claim_rdb(backend, study_id, key, claim, now)
    if isinstance(backend, InMemoryStorage):
        with _memory_locks_guard:
            lock = _memory_locks.setdefault(id(backend), threading.Lock())
        with lock:
            current = backend.get_study_system_attrs(study_id).get(key)
            if _live(current, now):
                return False
            backend.set_study_system_attr(study_id, key, claim)
            return True
    current = storage.get_study_system_attrs(study_id).get(key)
    if _live(current, now):
        return False
    storage.set_study_system_attr(study_id, key, claim)
    time.sleep(0.2)
    current = storage.get_study_system_attrs(study_id).get(key)
    return isinstance(current, dict) and current.get("owner") == owner


def end_claim(
    storage: optuna.storages.BaseStorage,
    study_id: int,
    name: str,
    owner: str,
    *,
    retry_after: float = 0.0,
    reason: str | None = None,
) -> None:
    """Release a claim; ``retry_after`` keeps others from retrying a failed fit at once."""
    storage.set_study_system_attr(
        study_id,
        f"{LOCK_PREFIX}{name}",
        {"owner": owner, "expires": time.time() + retry_after, "failed": reason},
    )


def claim_state(attrs: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = attrs.get(f"{LOCK_PREFIX}{name}")
    return value if isinstance(value, dict) else None


def _live(claim: Any, now: float) -> bool:
    return (
        isinstance(claim, dict)
        and isinstance(claim.get("expires"), (int, float))
        and claim["expires"] > now
    )


def _claim_rdb(
    storage: optuna.storages.RDBStorage, study_id: int, key: str, claim: dict, now: float
) -> bool:
    from optuna.storages._rdb import models
    from sqlalchemy import exc, update

    table = models.StudySystemAttributeModel
    session = storage.scoped_session()
    try:
        session.add(table(study_id=study_id, key=key, value_json=json.dumps(claim)))
        session.commit()
        return True
    except exc.IntegrityError:
        session.rollback()
    finally:
        session.close()
    session = storage.scoped_session()
    try:
        row = (
            session.query(table.value_json)
            .filter(table.study_id == study_id, table.key == key)
            .one_or_none()
        )
        if row is None:
            return False
        try:
            current = json.loads(row[0])
        except ValueError:
            current = None
        if _live(current, now):
            return False
        # Compare-and-set: only one of several workers seeing the same stale value wins.
        result = session.execute(
            update(table)
            .where(table.study_id == study_id, table.key == key, table.value_json == row[0])
            .values(value_json=json.dumps(claim))
        )
        session.commit()
        return result.rowcount == 1
    finally:
        session.close()
