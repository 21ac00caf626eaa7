"""The fit lease and the model store under real concurrency: threads and processes on real
SQLite and PostgreSQL storages (PostgreSQL when ``OPTUNA_QSVR_TEST_POSTGRES_URL`` is set).

Pinned:
- one live lease: of N threads or processes racing for a fresh or an expired lease, exactly one
  wins (the unique index, then compare-and-set);
- expiry: a worker SIGKILLed while fitting holds the lease until it expires and no longer;
  after expiry a later worker fits and publishes the model;
- exactly-once fits: N workers asking for the same keys at once fit each key once, and all of
  them end up with every predictor;
- refit: a model fitted on fewer than ``n_pool - refit_every`` curves is refitted once, as the
  next version, by one of the contending workers; others load it;
- a failed fit is retried by no worker before its pause is over, and by one after it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optuna_qsvr import _lease, _records
from optuna_qsvr.pruners import _model_store
from tests.conftest import make_storage
from tests.pruners_tests._helpers import FIT_LOG_ENV, LastValue, Recorder, add_complete
from tests.pruners_tests._store_worker import LEASE_SECONDS, get_all, make_store

ROOT = Path(__file__).resolve().parents[2]
KEYS = ["r9_t5", "r9_t6", "r27_t18"]

RDB = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgresql),
]


@pytest.fixture(autouse=True)
def _reset_recorder():
    Recorder.reset()
    yield
    Recorder.reset()


def _seed(url, n: int = 8) -> str:
    """A study of ``n`` finished 27-step curves; returns its name."""
    name = f"store-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(storage=url, study_name=name)
    for i in range(n):
        add_complete(study, {s: 1.0 / (s + i) for s in range(1, 28)})
    return name


def _url(kind: str, tmp_path) -> str:
    url = make_storage(kind, tmp_path)
    assert isinstance(url, str)
    return url


def _threads(n: int, target) -> list:
    """Run ``target(i)`` in ``n`` threads released together; return the results in order."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target(i)
        except BaseException as err:  # reported below, with the thread's index
            errors.append((i, err))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not errors, errors
    return results


def _processes(tmp: Path, mode: str, url: str, name: str, n: int, *args: str, env=None) -> list:
    """Start ``n`` workers; once every one has loaded the study, let them go at once."""
    go = tmp / f"go-{uuid.uuid4().hex}"
    cmd = [sys.executable, "-m", "tests.pruners_tests._store_worker", mode, url, name, str(go)]
    procs = [
        subprocess.Popen(
            [*cmd, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )
        for _ in range(n)
    ]
    for p in procs:
        line = p.stdout.readline()
        assert line == "ready\n", (line, p.poll() is not None and p.communicate())
    go.touch()
    return procs


def _outputs(procs: list, timeout: float = 180) -> list[str]:
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        assert p.returncode == 0, stderr
        out.append(stdout.strip())
    return out


def _attrs(study: optuna.Study) -> dict:
    return study._storage.get_study_system_attrs(study._study_id)


# -- the lease -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["inmemory", *RDB])
def test_one_of_many_threads_wins_a_fresh_or_an_expired_lease(kind, tmp_path) -> None:
    url = make_storage(kind, tmp_path)
    shared = optuna.create_study(storage=url)
    owners = [uuid.uuid4().hex for _ in range(8)]
    studies = [
        shared if url is None else optuna.load_study(storage=url, study_name=shared.study_name)
        for _ in owners
    ]
    for round_ in range(5):
        lease = f"r9_t5:v{round_ + 1}"

        def claim(i: int, lease=lease) -> bool:
            s = studies[i]
            return _lease.try_claim(s._storage, s._study_id, lease, owners[i], 60)

        winners = [i for i, won in enumerate(_threads(8, claim)) if won]
        assert len(winners) == 1, winners
        state = _lease.claim_state(_attrs(shared), lease)
        assert state["owner"] == owners[winners[0]] and state["expires"] > time.time() + 50
        # While live, no one (not even the holder) claims it again.
        assert not any(_threads(8, claim))
        # Released (expired at once): one of the racers takes it over by compare-and-set.
        _lease.end_claim(shared._storage, shared._study_id, lease, owners[winners[0]])
        assert len([won for won in _threads(8, claim) if won]) == 1


@pytest.mark.parametrize("kind", RDB)
def test_one_of_many_processes_wins_a_lease(kind, tmp_path) -> None:
    url = _url(kind, tmp_path)
    name = _seed(url, 0)
    outputs = _outputs(_processes(tmp_path, "claim", url, name, 4, "r9_t5:v1"))
    assert sorted(outputs) == ["lost", "lost", "lost", "won"]


@pytest.mark.parametrize("kind", RDB)
def test_a_killed_fitter_blocks_fits_until_its_lease_expires(kind, tmp_path) -> None:
    url = _url(kind, tmp_path)
    name = _seed(url)
    log = tmp_path / "fits.log"
    (holder,) = _processes(tmp_path, "hold", url, name, 1, "r9_t5", env={FIT_LOG_ENV: str(log)})
    deadline = time.monotonic() + 60
    while not (log.exists() and log.read_text()):
        assert holder.poll() is None, holder.communicate()
        assert time.monotonic() < deadline, "the holder never started fitting"
        time.sleep(0.02)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)

    study = optuna.load_study(storage=url, study_name=name)
    pool = study.get_trials(states=(TrialState.COMPLETE,))
    store = make_store()
    state = _lease.claim_state(_attrs(study), "r9_t5:v1")
    assert state["owner"] != store._owner and state["expires"] > time.time()
    # The dead worker's lease is still live: no fit here, and the reason says why.
    model, why = store.get(study, "r9_t5", pool, 5, 9, 1.0)
    assert model is None and why == "predictor being fitted by another worker"
    assert Recorder.fits == 0
    time.sleep(max(state["expires"] - time.time(), 0) + 0.2)
    # Expired: this worker takes the lease over, fits once, publishes and releases it.
    model, why = store.get(study, "r9_t5", pool, 5, 9, 1.0)
    assert model is not None and why == "" and Recorder.fits == 1
    header, _text = _records.read_model(_attrs(study), "r9_t5")
    assert header["version"] == 1 and header["kind"] == "test-recorder"
    released = _lease.claim_state(_attrs(study), "r9_t5:v1")
    assert released["owner"] == store._owner and released["expires"] <= time.time()
    assert released["failed"] is None
    assert log.read_text().count("\n") == 1  # the killed fit, never finished


# -- exactly-once fits ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["inmemory", *RDB])
def test_contending_threads_fit_each_key_once(kind, tmp_path) -> None:
    url = make_storage(kind, tmp_path)
    if url is None:  # one in-memory study shared by every thread
        shared = optuna.create_study()
        for i in range(8):
            add_complete(shared, {s: 1.0 / (s + i) for s in range(1, 28)})
    else:
        shared = optuna.load_study(storage=url, study_name=_seed(url))
    Recorder.reset(fit_seconds=0.3)  # a slow fit: the others ask while it runs

    def work(i: int) -> dict:
        study = shared if url is None else optuna.load_study(storage=url, study_name=name)
        keys = KEYS[i % 3 :] + KEYS[: i % 3]  # each thread in another order
        return get_all(make_store(), study, keys)

    name = shared.study_name
    results = _threads(4, work)
    assert Recorder.fits == 3, Recorder.fits
    assert sorted(c.shape[1] for c, _t, _p in Recorder.fitted) == [5, 6, 18]
    assert all(set(r) == set(KEYS) for r in results)
    headers = _records.model_headers(_attrs(shared))
    assert {k: h["version"] for k, h in headers.items()} == dict.fromkeys(KEYS, 1)


@pytest.mark.parametrize("kind", RDB)
def test_contending_processes_fit_each_key_once(kind, tmp_path) -> None:
    url = _url(kind, tmp_path)
    name = _seed(url)
    log = tmp_path / "fits.log"
    procs = _processes(tmp_path, "get", url, name, 4, *KEYS, env={FIT_LOG_ENV: str(log)})
    assert _outputs(procs) == ["done"] * 4
    fits = [line.split() for line in log.read_text().splitlines()]
    # One fit per key (a key's curves have t* steps), in whichever process won its lease.
    assert sorted(int(steps) for _pid, steps, _n in fits) == [5, 6, 18], fits
    study = optuna.load_study(storage=url, study_name=name)
    headers = _records.model_headers(_attrs(study))
    assert {k: h["version"] for k, h in headers.items()} == dict.fromkeys(KEYS, 1)


# -- refits and failures -------------------------------------------------------------------
def _study_of(kind: str, tmp_path, n: int) -> tuple[optuna.Study, object]:
    """A seeded study and how each thread opens it: its own storage connection for an RDB,
    the one in-memory study otherwise."""
    url = make_storage(kind, tmp_path)
    if url is None:
        study = optuna.create_study()
        for i in range(n):
            add_complete(study, {s: 1.0 / (s + i) for s in range(1, 28)})
        return study, lambda: study
    name = _seed(url, n)
    return optuna.load_study(storage=url, study_name=name), lambda: optuna.load_study(
        storage=url, study_name=name
    )


@pytest.mark.parametrize("kind", ["inmemory", *RDB])
def test_a_stale_model_is_refitted_once_as_the_next_version(kind, tmp_path) -> None:
    study, open_study = _study_of(kind, tmp_path, 6)

    def pool() -> list:
        return study.get_trials(states=(TrialState.COMPLETE,))

    first = make_store(refit_every=3)
    assert first.get(study, "r9_t5", pool(), 5, 9, 1.0)[0] is not None
    assert Recorder.fits == 1
    header = _records.read_model(_attrs(study), "r9_t5")[0]
    assert (header["version"], header["n_pool"], header["n_train"]) == (1, 6, 6)
    for i in range(2):
        add_complete(study, {s: 0.5 / (s + i) for s in range(1, 28)})
    # 8 curves < 6 + 3: the cached model serves, and a fresh worker loads it without a fit.
    assert first.get(study, "r9_t5", pool(), 5, 9, 1.0)[0] is not None
    assert make_store(refit_every=3).get(study, "r9_t5", pool(), 5, 9, 1.0)[0] is not None
    assert Recorder.fits == 1
    add_complete(study, {s: 0.25 / s for s in range(1, 28)})
    Recorder.reset(fit_seconds=0.3)

    def refit(i: int):
        mine = open_study()
        store = first if i == 0 else make_store(refit_every=3)
        pool = mine.get_trials(states=(TrialState.COMPLETE,))
        deadline = time.monotonic() + 60
        while True:
            model, _why = store.get(mine, "r9_t5", pool, 5, 9, 1.0)
            header = _records.read_model(_attrs(mine), "r9_t5")[0]
            if model is not None and header["version"] == 2:
                return model
            assert time.monotonic() < deadline
            time.sleep(0.05)

    _threads(4, refit)
    assert Recorder.fits == 1 and len(Recorder.fitted[0][0]) == 9
    header = _records.read_model(_attrs(study), "r9_t5")[0]
    assert (header["version"], header["n_pool"]) == (2, 9)
    # Without refit_every the first model is frozen however many curves arrive.
    frozen = make_store(refit_every=None)
    assert frozen._wants_refit(header, 10**6) is False
    assert make_store(refit_every=3)._wants_refit(header, 11) is False
    assert make_store(refit_every=3)._wants_refit(header, 12) is True


@pytest.mark.parametrize("kind", ["inmemory", *RDB])
def test_a_failed_fit_is_not_retried_before_its_pause(kind, tmp_path, monkeypatch) -> None:
    pause = 1.0 if kind == "inmemory" else 3.0  # threads on a database take longer to ask
    monkeypatch.setattr(_model_store, "FAILED_FIT_PAUSE", pause)
    study, open_study = _study_of(kind, tmp_path, 8)
    pool = study.get_trials(states=(TrialState.COMPLETE,))
    warnings: list[str] = []
    Recorder.reset(fail_with="QPU unreachable")
    failing = make_store(warn=lambda study, key, message: warnings.append(message))
    model, why = failing.get(study, "r9_t5", pool, 5, 9, 1.0)
    assert model is None and why == "predictor fit failed: RuntimeError: QPU unreachable"
    assert warnings == ["predictor fit failed, ASHA decides: RuntimeError: QPU unreachable"]
    state = _lease.claim_state(_attrs(study), "r9_t5:v1")
    assert state["failed"] == "RuntimeError: QPU unreachable"
    assert pause - 1.0 < state["expires"] - time.time() <= pause
    Recorder.reset()  # the annealer is back

    def ask(i: int):
        mine = open_study()
        store = failing if i == 0 else make_store()
        return store.get(mine, "r9_t5", pool, 5, 9, 1.0)

    # Within the pause no worker retries, the failed one included; each says why.
    for model, why in _threads(4, ask):
        assert model is None and why == "predictor fit failed: RuntimeError: QPU unreachable"
    assert Recorder.fits == 0
    time.sleep(max(state["expires"] - time.time(), 0) + 0.2)
    results = _threads(4, ask)
    assert Recorder.fits == 1
    assert sum(model is not None for model, _why in results) >= 1
    state = _lease.claim_state(_attrs(study), "r9_t5:v1")
    assert state["failed"] is None
    assert _records.read_model(_attrs(study), "r9_t5")[0]["version"] == 1
    assert failing.get(study, "r9_t5", pool, 5, 9, 1.0)[0] is not None  # loaded, not refitted
    assert Recorder.fits == 1


def test_lease_seconds_bounds_a_claim() -> None:
    study = optuna.create_study()
    before = time.time()
    assert _lease.try_claim(study._storage, study._study_id, "k:v1", "me", 7.5)
    state = _lease.claim_state(_attrs(study), "k:v1")
    assert before + 7.5 <= state["expires"] <= time.time() + 7.5
    assert state["owner"] == "me"
    assert _lease.claim_state({_records.lock_attr("k:v1"): "garbage"}, "k:v1") is None
    # A malformed stored lease is no live lease: it is taken over.
    study._storage.set_study_system_attr(study._study_id, _records.lock_attr("k:v2"), "garbage")
    assert _lease.try_claim(study._storage, study._study_id, "k:v2", "me", 1)


def test_lease_on_a_journal_storage(tmp_path) -> None:
    """No compare-and-set there: write, wait, read back; two sequential claims still exclude."""
    storage = make_storage("journal", tmp_path)
    study = optuna.create_study(storage=storage)
    assert _lease.try_claim(storage, study._study_id, "k:v1", "a", 60)
    assert not _lease.try_claim(storage, study._study_id, "k:v1", "b", 60)
    _lease.end_claim(storage, study._study_id, "k:v1", "a")
    assert _lease.try_claim(storage, study._study_id, "k:v1", "b", 60)


def test_lease_seconds_of_the_pruner_reach_the_store() -> None:
    from optuna_qsvr import SwiftHyperbandPruner

    pruner = SwiftHyperbandPruner(max_resource=9, fit_lease_seconds=12.5)
    assert pruner._store._lease_seconds == 12.5
    assert LEASE_SECONDS < 10  # the tests' leases expire within a test


@pytest.mark.parametrize("kind", ["inmemory", "sqlite"])
def test_a_worker_that_read_before_a_publish_does_not_fit_again(
    kind, tmp_path, monkeypatch
) -> None:
    """The window between reading the storage and claiming the lease: another worker may
    publish and release the lease in it. The claimant reads again and loads, never refits."""
    url = make_storage(kind, tmp_path)
    study = optuna.create_study(storage=url)
    for i in range(5):
        add_complete(study, {s: 1.0 / (s + i) for s in range(1, 10)})
    pool = study.get_trials(states=(TrialState.COMPLETE,))
    assert make_store().get(study, "r9_t5", pool, 5, 9, 1.0)[0] is not None
    assert Recorder.fits == 1
    real = _records.read_model
    stale = iter([None])  # the late worker's first read predates the publish

    def read_model(attrs, key):
        return next(stale, real(attrs, key)) if key == "r9_t5" else real(attrs, key)

    monkeypatch.setattr(_records, "read_model", read_model)
    late = make_store()
    model, why = late.get(study, "r9_t5", pool, 5, 9, 1.0)
    assert model is not None and why == "" and Recorder.fits == 1
    state = _lease.claim_state(_attrs(study), "r9_t5:v1")
    assert state["owner"] == late._owner and state["expires"] <= time.time()


# -- what a stored model is checked against --------------------------------------------------
def _store_with(settings: dict, warnings: list, **kwargs) -> _model_store.ModelStore:
    return _model_store.ModelStore(
        Recorder,
        min_train_curves=3,
        max_train_curves=100,
        refit_every=kwargs.pop("refit_every", None),
        lease_seconds=60,
        settings=settings,
        warn=lambda study, key, message: warnings.append((key, message)),
        **kwargs,
    )


def _seeded(n: int = 5) -> tuple[optuna.Study, list]:
    study = optuna.create_study()
    for i in range(n):
        add_complete(study, {s: 1.0 / (s + i) for s in range(1, 10)})
    return study, study.get_trials(states=(TrialState.COMPLETE,))


def test_a_model_fitted_under_other_settings_is_refitted_once() -> None:
    study, pool = _seeded()
    warnings: list = []
    assert _store_with({"known_curve": 0.5, "rungs": "optuna"}, warnings).get(
        study, "r9_t5", pool, 5, 9, 1.0
    )[0]
    assert Recorder.fits == 1 and not warnings
    header = _records.read_model(_attrs(study), "r9_t5")[0]
    assert header["settings"] == {"known_curve": 0.5, "rungs": "optuna"}
    # The same settings load it; a tuple is stored as a list and still compares equal.
    same = _store_with({"rungs": "optuna", "known_curve": 0.5}, warnings)
    assert same.get(study, "r9_t5", pool, 5, 9, 1.0)[0] is not None and Recorder.fits == 1
    tupled = _store_with({"known_curve": 0.5, "rungs": "optuna", "f": ("curve",)}, warnings)
    assert tupled._settings["f"] == ["curve"]
    # Other settings: rejected with the changed names, refitted as version 2.
    other = _store_with({"known_curve": 0.8, "rungs": "optuna", "extra": 1}, warnings)
    assert other.get(study, "r9_t5", pool, 5, 9, 1.0)[0] is not None and Recorder.fits == 2
    assert warnings[-1] == (
        "r9_t5",
        "stored predictor rejected, refitting: it was fitted under other pruner settings "
        "(['extra', 'known_curve'])",
    )
    assert _records.read_model(_attrs(study), "r9_t5")[0]["version"] == 2


def test_a_model_of_another_kind_or_without_settings() -> None:
    study, pool = _seeded()
    text = LastValue().to_json()
    meta = {"kind": "test-last-value", "n_train": 5, "fit_seconds": 0.0}
    _records.publish_model(study._storage, study._study_id, "r9_t5", text, meta)
    warnings: list = []
    store = _store_with({}, warnings)
    assert store.get(study, "r9_t5", pool, 5, 9, 1.0)[0] is not None and Recorder.fits == 1
    assert warnings == [
        (
            "r9_t5",
            "stored predictor rejected, refitting: it holds a 'test-last-value' predictor, "
            "not 'test-recorder'",
        )
    ]
    # A record of version 0.1 carries no settings: it loads under any.
    meta = {"kind": "test-recorder", "n_train": 5, "fit_seconds": 0.0, "version": 3}
    _records.publish_model(study._storage, study._study_id, "r9_t6", text, meta)
    model, why = _store_with({"any": 1}, warnings).get(study, "r9_t6", pool, 6, 9, 1.0)
    assert type(model) is Recorder and why == "" and Recorder.fits == 1


def test_a_cached_model_serves_while_another_worker_refits() -> None:
    study, pool = _seeded(3)
    mine = _store_with({}, [], refit_every=2)
    assert mine.get(study, "r9_t5", pool, 5, 9, 1.0)[0] is not None
    for i in range(2):
        add_complete(study, {s: 0.5 / (s + i) for s in range(1, 10)})
    pool = study.get_trials(states=(TrialState.COMPLETE,))
    # Another worker holds the lease of version 2: this one keeps forecasting with version 1.
    assert _lease.try_claim(study._storage, study._study_id, "r9_t5:v2", "other", 60)
    model, why = mine.get(study, "r9_t5", pool, 5, 9, 1.0)
    assert model is not None and why == "" and Recorder.fits == 1
    # A fresh worker loads version 1 from the storage and serves it meanwhile too.
    fresh = _store_with({}, [], refit_every=2)
    assert fresh.get(study, "r9_t5", pool, 5, 9, 1.0) == (
        fresh._models[study._storage][(study._study_id, "r9_t5")].model,
        "",
    )


@pytest.mark.parametrize(
    ("header", "kwargs", "n_pool", "expected"),
    [
        ({"n_train": 10}, {"refit_every": 5}, 15, True),  # no n_pool: n_train counts
        ({"n_train": 10}, {"refit_every": 5}, 14, False),
        ({"n_train": 10, "n_pool": 12}, {"refit_every": 5}, 16, False),
        ({"n_train": 10, "n_pool": 12}, {"refit_every": 5}, 17, True),
        ({"n_train": 10, "n_pool": True}, {"refit_every": 1}, 100, False),
        ({"n_train": 10, "n_pool": "12"}, {"refit_every": 1}, 100, False),
        ({"n_train": 10}, {"refit_growth": 1.5}, 15, True),
        ({"n_train": 10}, {"refit_growth": 1.5}, 14, False),
        ({"n_train": 10}, {"refit_every": 2, "refit_growth": 10.0}, 12, True),  # every wins
        ({"n_train": 10}, {}, 10**6, False),
    ],
)
def test_when_a_model_is_stale(header, kwargs, n_pool, expected) -> None:
    assert _store_with({}, [], **kwargs)._wants_refit(header, n_pool) is expected


def test_leases_of_two_studies_in_one_database_are_apart(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'two.db'}"
    one, two = optuna.create_study(storage=url), optuna.create_study(storage=url)
    stale = {"owner": "gone", "expires": 0.0}
    for study in (one, two):
        study._storage.set_study_system_attr(study._study_id, _records.lock_attr("k:v1"), stale)
    assert _lease.try_claim(one._storage, one._study_id, "k:v1", "me", 60)
    assert _lease.claim_state(_attrs(two), "k:v1") == stale  # untouched
    assert _lease.try_claim(two._storage, two._study_id, "k:v1", "you", 60)
    assert _lease.claim_state(_attrs(one), "k:v1")["owner"] == "me"
    # A fresh lease name is claimed in each study by its own row.
    assert _lease.try_claim(one._storage, one._study_id, "k:v9", "me", 60)
    assert _lease.try_claim(two._storage, two._study_id, "k:v9", "you", 60)


def test_taking_over_a_stale_lease_leaves_the_other_leases_alone(tmp_path) -> None:
    """The compare-and-set names its row: two leases of one study holding the same stale
    value (one worker's failed fits, released together) are taken over one at a time."""
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'leases.db'}")
    stale = {"owner": "gone", "expires": 0.0, "failed": "RuntimeError: outage"}
    for name in ("r9_t5:v1", "r9_t6:v1"):
        study._storage.set_study_system_attr(study._study_id, _records.lock_attr(name), stale)
    assert _lease.try_claim(study._storage, study._study_id, "r9_t5:v1", "me", 60)
    assert _lease.claim_state(_attrs(study), "r9_t5:v1")["owner"] == "me"
    assert _lease.claim_state(_attrs(study), "r9_t6:v1") == stale
    assert _lease.try_claim(study._storage, study._study_id, "r9_t6:v1", "you", 60)
    assert _lease.claim_state(_attrs(study), "r9_t6:v1")["owner"] == "you"
