"""The model store in one process: what a fit is trained on, what its published header says,
what a process keeps, and what a caller gets back when there is no fresh model.

The store's concurrency (leases raced by threads and processes, expiry, exactly-once fits)
is in ``test_model_store_concurrency.py``.
"""

from __future__ import annotations

import time

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from optuna_qsvr import _lease, _records
from optuna_qsvr.predictors import BasePredictor
from optuna_qsvr.pruners import _model_store
from tests.pruners_tests._helpers import LastValue, Recorder, add_complete
from tests.pruners_tests._store_worker import make_store

KEY, STEP, TARGET = "r9_t5", 5, 9


@pytest.fixture(autouse=True)
def _reset_recorder():
    Recorder.reset()
    yield
    Recorder.reset()


def _store(warnings: list | None = None, new=Recorder, **kwargs) -> _model_store.ModelStore:
    def warn(study, key: str, message: str) -> None:
        # The pruner's warn-once keys on the study: it must be the study asked about.
        assert isinstance(study, optuna.Study)
        if warnings is not None:
            warnings.append((key, message))

    return make_store(60, new_predictor=new, settings={}, warn=warn, **kwargs)


def _curve(i: int) -> dict[int, float]:
    # Distinct at every step, so a wrong slice or a wrong trial shows in the numbers.
    return {s: 10.0 * i + s for s in range(1, 10)}


def _study(n: int) -> tuple[optuna.Study, list]:
    study = optuna.create_study()
    for i in range(n):
        add_complete(study, _curve(i), {"lr": float(i)})
    return study, study.get_trials(states=(TrialState.COMPLETE,))


def _attrs(study: optuna.Study) -> dict:
    return study._storage.get_study_system_attrs(study._study_id)


def test_a_fit_trains_on_the_newest_curves_to_the_step_with_their_params() -> None:
    study, pool = _study(6)
    before = time.time()
    started = time.perf_counter()
    model, why = _store(max_train_curves=4).get(study, KEY, pool[::-1], STEP, TARGET, -1.0)
    elapsed = time.perf_counter() - started
    assert isinstance(model, Recorder) and why == ""
    [(curves, targets, params)] = Recorder.fitted
    newest = range(2, 6)  # the 4 most recent trials, whatever order the pool came in
    assert curves.tolist() == [[-(10.0 * i + s) for s in range(1, STEP + 1)] for i in newest]
    assert targets.tolist() == [-(10.0 * i + TARGET) for i in newest]
    assert params == [{"lr": float(i)} for i in newest]
    header, _ = _records.read_model(_attrs(study), KEY)
    assert set(header) == {
        "v",
        "chunks",
        "sha256",
        "version",
        "kind",
        "n_train",
        "n_pool",
        "fit_seconds",
        "decision_step",
        "target_step",
        "annealer",
        "annealer_calls",
        "cv_rmse",
        "settings",
        "fitted_at",
    }
    assert (header["version"], header["kind"], header["n_train"], header["n_pool"]) == (
        1,
        "test-recorder",
        4,
        6,
    )
    assert (header["decision_step"], header["target_step"]) == (STEP, TARGET)
    assert 0.0 <= header["fit_seconds"] <= elapsed
    assert before <= header["fitted_at"] <= time.time()
    info = model.fit_info_
    assert (header["annealer"], header["annealer_calls"]) == (info.annealer, info.annealer_calls)


def test_a_pool_trial_without_a_value_at_the_target_is_left_out_of_the_fit() -> None:
    study, pool = _study(4)
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.PRUNED, intermediate_values={s: 100.0 + s for s in range(1, 7)}
        )
    )
    pool = study.get_trials()
    assert _store().get(study, KEY, pool, STEP, TARGET, 1.0)[1] == ""
    [(curves, targets, params)] = Recorder.fitted
    assert len(curves) == len(targets) == len(params) == 4
    header, _ = _records.read_model(_attrs(study), KEY)
    assert (header["n_train"], header["n_pool"]) == (4, 5)


class _Unnamed(LastValue):
    name = ""  # a user's predictor that is not registered: known by its class name


def test_a_predictor_without_a_registry_name_is_stored_under_its_class_name() -> None:
    study, pool = _study(3)
    store = _store(new=_Unnamed)
    assert store.kind == "_Unnamed"
    assert type(store.get(study, KEY, pool, STEP, TARGET, 1.0)[0]) is _Unnamed
    assert _records.read_model(_attrs(study), KEY)[0]["kind"] == "_Unnamed"


def test_a_process_reads_a_stored_model_once(monkeypatch) -> None:
    study, pool = _study(4)
    store = _store()
    fitted, why = store.get(study, KEY, pool, STEP, TARGET, 1.0)
    assert why == ""
    reads = []
    real = study._storage.get_study_system_attrs
    monkeypatch.setattr(
        study._storage, "get_study_system_attrs", lambda sid: reads.append(sid) or real(sid)
    )
    assert store.get(study, KEY, pool, STEP, TARGET, 1.0) == (fitted, "")
    assert store.get(study, KEY, pool, STEP, TARGET, 1.0)[0] is fitted
    assert reads == [] and Recorder.fits == 1
    # Another process's store loads it once, then serves it from memory too.
    other = _store()
    loaded, why = other.get(study, KEY, pool, STEP, TARGET, 1.0)
    assert why == "" and type(loaded) is Recorder and loaded is not fitted
    assert other.get(study, KEY, pool, STEP, TARGET, 1.0)[0] is loaded
    assert len(reads) == 1 and Recorder.fits == 1


def test_a_corrupt_stored_model_is_refitted_as_the_next_version_with_a_warning() -> None:
    study, pool = _study(4)
    _records.publish_model(
        study._storage,
        study._study_id,
        KEY,
        LastValue().to_json(),
        {"kind": "test-recorder", "n_train": 4, "fit_seconds": 0.0, "version": 4},
    )
    chunk = _records.chunk_attr(KEY, 4, 0)
    study._storage.set_study_system_attr(study._study_id, chunk, '{"tampered": 1}')
    warnings: list = []
    model, why = _store(warnings).get(study, KEY, pool, STEP, TARGET, 1.0)
    assert type(model) is Recorder and why == "" and Recorder.fits == 1
    assert warnings == [
        (
            KEY,
            f"stored predictor rejected, refitting: model record for {KEY} does not match "
            "its sha256",
        )
    ]
    assert _records.read_model(_attrs(study), KEY)[0]["version"] == 5


def _lease_state(study: optuna.Study, version: int = 1) -> dict | None:
    return _lease.claim_state(_attrs(study), _records.lock_name(KEY, version))


def test_the_lease_is_held_by_this_store_while_it_fits_and_released_after() -> None:
    study, pool = _study(3)
    seen = []

    class Watching(Recorder):
        def fit(self, curves, targets, params=None):
            seen.append(_lease_state(study))
            return super().fit(curves, targets, params)

    store = _store(new=Watching)
    assert store.get(study, KEY, pool, STEP, TARGET, 1.0)[1] == ""
    assert seen[0]["owner"] == store._owner and seen[0]["expires"] > time.time()
    released = _lease_state(study)
    assert released["owner"] == store._owner and released["expires"] <= time.time()
    assert released["failed"] is None


def test_what_a_caller_gets_when_a_fit_fails_or_another_worker_fits() -> None:
    study, pool = _study(3)
    warnings: list = []
    Recorder.reset(fail_with="boom")
    store = _store(warnings, refit_every=2)
    assert store.get(study, KEY, pool, STEP, TARGET, 1.0) == (
        None,
        "predictor fit failed: RuntimeError: boom",
    )
    assert warnings == [(KEY, "predictor fit failed, ASHA decides: RuntimeError: boom")]
    failed = _lease_state(study)
    assert failed["owner"] == store._owner and failed["failed"] == "RuntimeError: boom"
    assert failed["expires"] > time.time()  # a pause before anyone retries
    # Within the pause nobody retries, and the reason names the failure.
    assert store.get(study, KEY, pool, STEP, TARGET, 1.0) == (
        None,
        "predictor fit failed: RuntimeError: boom",
    )
    assert Recorder.fits == 1
    # Another worker holding a lease: nothing to serve yet, and the reason says why.
    assert _lease.try_claim(study._storage, study._study_id, "r9_t6:v1", "other", 60)
    assert _store().get(study, "r9_t6", pool, 6, TARGET, 1.0) == (
        None,
        "predictor being fitted by another worker",
    )


def test_a_failed_refit_keeps_serving_the_model_it_had() -> None:
    study, pool = _study(3)
    store = _store(refit_every=2)
    fitted, _ = store.get(study, KEY, pool, STEP, TARGET, 1.0)
    for i in range(3, 5):
        add_complete(study, _curve(i))
    grown = study.get_trials(states=(TrialState.COMPLETE,))
    Recorder.reset(fail_with="boom")
    # Version 1 serves, as this process has it (not parsed again from the storage); the
    # failure is recorded on version 2's lease.
    assert store.get(study, KEY, grown, STEP, TARGET, 1.0) == (fitted, "")
    assert Recorder.fits == 1 and _lease_state(study, 2)["failed"] == "RuntimeError: boom"
    # Asked again within the failure's pause: the lease is refused, the old model serves.
    assert store.get(study, KEY, grown, STEP, TARGET, 1.0) == (fitted, "")
    assert Recorder.fits == 1
    # Another process has no model in memory: it loads version 1 and serves it meanwhile.
    loaded, why = _store(refit_every=2).get(study, KEY, grown, STEP, TARGET, 1.0)
    assert type(loaded) is Recorder and loaded is not fitted and why == ""


def test_a_model_published_meanwhile_that_is_already_stale_is_refitted_here(monkeypatch) -> None:
    """Between this worker's read and its claim another worker published version 1 from
    fewer curves; this worker reads again, loads it, and fits version 2 on its own pool."""
    study, pool = _study(3)
    assert _store().get(study, KEY, pool, STEP, TARGET, 1.0)[1] == ""
    for i in range(3, 6):
        add_complete(study, _curve(i))
    grown = study.get_trials(states=(TrialState.COMPLETE,))
    real = _records.read_model
    stale = iter([None])  # this worker's first read predates the publish
    monkeypatch.setattr(_records, "read_model", lambda a, k: next(stale, real(a, k)))
    model, why = _store(refit_every=2).get(study, KEY, grown, STEP, TARGET, -1.0)
    assert type(model) is Recorder and why == "" and Recorder.fits == 2
    curves, targets, _ = Recorder.fitted[-1]
    assert curves.shape == (6, STEP) and targets.tolist() == [-(10.0 * i + 9) for i in range(6)]
    assert _records.read_model(_attrs(study), KEY)[0]["version"] == 2


def test_rdb_storages_behind_optunas_cache_take_the_atomic_claim(tmp_path, monkeypatch) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'lease.db'}")
    assert type(study._storage).__name__ == "_CachedStorage"
    calls = []
    real = _lease._claim_rdb
    monkeypatch.setattr(
        _lease, "_claim_rdb", lambda storage, *a: calls.append(storage) or real(storage, *a)
    )
    assert _lease.try_claim(study._storage, study._study_id, "k:v1", "me", 60)
    assert calls == [study._storage._backend]


def test_in_memory_claims_take_the_process_lock_without_waiting(monkeypatch) -> None:
    study = optuna.create_study()

    def no_wait(seconds: float) -> None:
        raise AssertionError(f"an in-memory claim waited {seconds} s")

    monkeypatch.setattr(_lease.time, "sleep", no_wait)
    assert _lease.try_claim(study._storage, study._study_id, "k:v1", "me", 60) is True
    assert _lease.try_claim(study._storage, study._study_id, "k:v1", "you", 60) is False


def test_without_compare_and_set_a_claim_overwritten_meanwhile_is_lost(tmp_path, monkeypatch):
    """Journal storages: write, wait, read back. Another worker's write in the wait wins."""
    from types import SimpleNamespace

    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "j.log")))
    study = optuna.create_study(storage=storage)
    waits = []

    def racing(name: str, expires: float):
        def other_writes(seconds: float) -> None:
            waits.append(seconds)
            claim = {"owner": "other", "expires": expires}
            storage.set_study_system_attr(study._study_id, _records.lock_attr(name), claim)

        return other_writes

    monkeypatch.setattr(_lease.time, "sleep", racing("k:v1", 1e12))
    assert _lease.try_claim(storage, study._study_id, "k:v1", "me", 60) is False
    assert waits == [0.2]
    # The other worker read the same clock, so its claim expires when this one's would: the
    # owner, not the expiry, says whose it is.
    clock = SimpleNamespace(time=lambda: 1000.0, sleep=racing("k:v3", 1060.0))
    monkeypatch.setattr(_lease, "time", clock)
    assert _lease.try_claim(storage, study._study_id, "k:v3", "me", 60) is False
    assert _attrs(study)[_records.lock_attr("k:v3")] == {"owner": "other", "expires": 1060.0}
    monkeypatch.undo()
    assert _lease.try_claim(storage, study._study_id, "k:v2", "me", 60) is True


def test_a_claim_request_is_one_only_on_a_lease_key_and_well_formed(tmp_path) -> None:
    # What a worker writes where the storage API has no compare-and-set; the proxy's database
    # claims it (tests/test_rdb.py, tests/test_cluster.py), anything else stores it as written.
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "j.log")))
    study = optuna.create_study(storage=storage)
    assert _lease.try_claim(storage, study._study_id, "k:v1", "me", 60)
    written = _lease.claim_state(_attrs(study), "k:v1")
    assert written["request"] == "claim" and "atomic" not in written
    key = _records.lock_attr("k:v1")
    assert _lease.claim_from_request(key, written) == {
        "owner": "me",
        "expires": written["expires"],
        "atomic": True,
    }
    assert _lease.claim_from_request(key, {**written, "expires": 7}) == {
        "owner": "me",
        "expires": 7,
        "atomic": True,
    }
    assert _lease.claim_from_request(_records.MODEL_PREFIX + "k", written) is None
    for bad in (
        {**written, "request": "release"},
        {k: v for k, v in written.items() if k != "request"},
        {**written, "owner": None},
        {**written, "expires": "7"},
        {**written, "expires": True},
        ["me", 7, "claim"],
    ):
        assert _lease.claim_from_request(key, bad) is None, bad


def test_through_a_server_that_claims_atomically_the_answer_needs_no_wait(
    tmp_path, monkeypatch
) -> None:
    """Optuna's gRPC server in front of the workers' RDB storage (what ``optuna-qsvr proxy``
    serves): the worker's claim request is claimed there, the stored claim says ``atomic``,
    and the worker trusts its read-back at once."""
    pytest.importorskip("grpc", reason="the gRPC proxy needs the grpc extra")
    from optuna.storages._grpc.server import make_server

    from optuna_qsvr import AtomicStateRDBStorage
    from optuna_qsvr._proxy import ProxyStorage
    from tests.test_workers import _free_port

    url = f"sqlite:///{tmp_path / 'served.db'}"
    study = optuna.create_study(storage=url)
    port = _free_port()
    server = make_server(AtomicStateRDBStorage(url), "localhost", port)
    server.start()
    try:
        client = ProxyStorage(host="localhost", port=port)
        client.check(timeout=30)

        def no_wait(seconds: float) -> None:
            raise AssertionError(f"an atomic claim waited {seconds} s")

        monkeypatch.setattr(_lease.time, "sleep", no_wait)
        assert _lease.try_claim(client, study._study_id, "k:v1", "me", 60) is True
        stored = _lease.claim_state(client.get_study_system_attrs(study._study_id), "k:v1")
        assert stored == {"owner": "me", "expires": stored["expires"], "atomic": True}
        assert _lease.try_claim(client, study._study_id, "k:v1", "you", 60) is False
        _lease.end_claim(client, study._study_id, "k:v1", "me")
        assert _lease.try_claim(client, study._study_id, "k:v1", "you", 60) is True
    finally:
        server.stop(None)


def test_a_lease_expiring_now_is_expired() -> None:
    assert _lease._live({"expires": 5.0}, 4.999)
    assert not _lease._live({"expires": 5.0}, 5.0)
    assert not _lease._live({"expires": "5"}, 0.0)
    assert not _lease._live(None, 0.0)


def test_fit_info_reaches_the_header_for_a_predictor_with_cross_validation() -> None:
    from optuna_qsvr.predictors import make_predictor

    study, pool = _study(6)
    store = _store(new=lambda: make_predictor("svr", cv=3))
    model, why = store.get(study, KEY, pool, STEP, TARGET, 1.0)
    assert isinstance(model, BasePredictor) and why == ""
    header, _ = _records.read_model(_attrs(study), KEY)
    assert header["kind"] == "svr" and header["annealer"] is None
    assert header["annealer_calls"] == 0
    assert np.isclose(header["cv_rmse"], model.fit_info_.cv_rmse)
