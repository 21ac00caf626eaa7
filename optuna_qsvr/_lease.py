"""The fit lease: at most one worker fits a predictor key at a time, through any storage.

A lease is a study system attribute (``_records.lock_attr``) holding its owner and expiry. RDB
storages claim it atomically (the unique ``(study_id, key)`` index, and a compare-and-set to
take over an expired claim); storages without compare-and-set (journal, gRPC) write a claim
*request*, which :class:`~optuna_qsvr.AtomicStateRDBStorage` behind ``optuna-qsvr proxy``
claims atomically. The model store takes leases; the storage serves requests: both read this
module, which knows nothing of predictors.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from optuna_qsvr import _records

if TYPE_CHECKING:
    import optuna

# The fit lease of in-memory storages, per storage object (weakly: a freed storage's lock
# goes with it, and a later storage never shares it).
_memory_locks: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_memory_locks_guard = threading.Lock()

# Marks a claim written through a storage API without compare-and-set (see try_claim).
_REQUEST = "request"


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
    storages' APIs (journal, gRPC) have no compare-and-set, so the worker writes a claim
    *request*: a server that claims atomically (``optuna-qsvr proxy``, whose database is an
    :class:`~optuna_qsvr.AtomicStateRDBStorage`) turns it into an RDB claim and marks the
    stored claim ``atomic``, and reading it back is then the answer; a storage that stores it
    as it is (the journal file, Optuna's own proxy) leaves write, wait and read back, which
    makes a double claim unlikely but not impossible.
    """
    key = _records.lock_attr(name)
    now = time.time()
    claim = {"owner": owner, "expires": now + lease_seconds}
    backend = getattr(storage, "_backend", storage)
    from optuna.storages import InMemoryStorage, RDBStorage

    if isinstance(backend, RDBStorage):
        return _claim_rdb(backend, study_id, key, claim, now)
    if isinstance(backend, InMemoryStorage):
        with _memory_locks_guard:
            lock = _memory_locks.setdefault(backend, threading.Lock())
        with lock:
            current = backend.get_study_system_attrs(study_id).get(key)
            if _live(current, now):
                return False
            backend.set_study_system_attr(study_id, key, claim)
            return True
    current = storage.get_study_system_attrs(study_id).get(key)
    if _live(current, now):
        return False
    storage.set_study_system_attr(study_id, key, {**claim, _REQUEST: "claim"})
    current = storage.get_study_system_attrs(study_id).get(key)
    if not (isinstance(current, dict) and current.get("atomic") is True):
        time.sleep(0.2)  # stored as written: let a racing write land, then read the survivor
        current = storage.get_study_system_attrs(study_id).get(key)
    return (
        isinstance(current, dict)
        and current.get("owner") == owner
        and current.get("expires") == claim["expires"]
    )


def claim_from_request(key: str, value: Any) -> dict[str, Any] | None:
    """The claim a stored claim request asks for (marked ``atomic``), or ``None`` when
    ``value`` is not a well-formed request for a lease key (then it is stored as it is)."""
    if not (
        key.startswith(_records.LOCK_PREFIX)
        and isinstance(value, dict)
        and value.get(_REQUEST) == "claim"
        and isinstance(value.get("owner"), str)
        and isinstance(value.get("expires"), (int, float))
        and not isinstance(value.get("expires"), bool)
    ):
        return None
    return {"owner": value["owner"], "expires": value["expires"], "atomic": True}


def claim_rdb(storage: optuna.storages.RDBStorage, study_id: int, key: str, claim: dict) -> bool:
    """Claim lease attribute ``key`` on an RDB storage at once: insert it, or take over an
    expired claim by compare-and-set; ``False`` while another claim is live."""
    return _claim_rdb(storage, study_id, key, claim, time.time())


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
        _records.lock_attr(name),
        {"owner": owner, "expires": time.time() + retry_after, "failed": reason},
    )


def claim_state(attrs: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """The stored state of lease ``name`` (owner, expiry, failure), if any."""
    value = attrs.get(_records.lock_attr(name))
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
