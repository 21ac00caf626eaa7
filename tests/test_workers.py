"""Many worker processes on one study: budget, decisions, fits, faults, credentials."""

from __future__ import annotations

import collections
import contextlib
import csv
import gzip
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from optuna_qsvr.report import fit_records
from tests.conftest import make_storage, plant_hostile_model

DECISION = "swift:decision:"
PROMOTION = "swift:promotion:"
R = 27


@pytest.fixture(scope="module")
def curves(tmp_path_factory) -> str:
    """60 exponential-decay curves with crossing rates and floors, 27 epochs each."""
    path = tmp_path_factory.mktemp("curves") / "curves.csv.gz"
    rng = np.random.default_rng(0)
    with gzip.open(path, "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(["config", "step", "value", "param_rate", "param_floor"])
        for c in range(60):
            rate, floor = rng.uniform(0.03, 0.6), rng.uniform(0.0, 0.5)
            for s in range(1, R + 1):
                w.writerow(
                    [f"c{c}", s, floor + math.exp(-rate * s) + rng.normal(0, 0.003), rate, floor]
                )
    return str(path)


def _url(kind: str, tmp_path) -> str:
    url = make_storage(kind, tmp_path)
    assert isinstance(url, str)
    return url


def _worker(
    curves: str, url: str, name: str, budget: int, *extra: str, env=None
) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "optuna_qsvr",
        "worker",
        "--curves",
        curves,
        "--storage",
        url,
        "--study-name",
        name,
        "--direction",
        "minimize",
        "--budget",
        str(budget),
        *extra,
    ]
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _wait(procs: list[subprocess.Popen], timeout: float) -> list[tuple[int, str]]:
    out = []
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        out.append((p.returncode, stdout + stderr))
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _forward(port: int, target: int):
    """Forward TCP connections on ``port`` to ``target`` on loopback while in the block."""
    server = socket.create_server(("127.0.0.1", port))
    server.settimeout(0.2)
    stop = threading.Event()

    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            upstream = socket.create_connection(("127.0.0.1", target))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        server.close()


def _assert_decisions_recorded(study: optuna.Study, *, forecasts: bool = True) -> None:
    """Every trial has its bracket recorded, and the successive-halving record of every rung
    whose budget it reached; with ``forecasts``, some trials have a forecast decision."""
    from optuna_qsvr import SwiftHyperbandPruner

    pruner = SwiftHyperbandPruner(max_resource=R)
    hyperband = SwiftHyperbandPruner(max_resource=R, bracket_weights=(1,))
    n_checked = 0
    for t in study.trials:
        bracket = t.user_attrs["swift:bracket"]
        # The regime chosen when the trial started names the assignment it follows.
        regime = t.system_attrs["swift:regime"]["regime"]
        assigned = pruner if regime == "forecast" else hyperband
        assert bracket == assigned.bracket_of(study.study_name, t.number)
        for rung in pruner.schedule.rungs(bracket):
            if not rung.is_last and t.last_step >= rung.budget:
                assert f"{PROMOTION}{rung.index}" in t.system_attrs, (t.number, rung)
                n_checked += 1
    assert n_checked > 0
    if forecasts:
        assert any(k.startswith(DECISION) for t in study.trials for k in t.system_attrs)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_eight_workers_one_study(kind, curves, tmp_path) -> None:
    url, name, budget = _url(kind, tmp_path), f"w8-{uuid.uuid4().hex[:6]}", 120
    # A hostile record waits in the storage for the key (r3, t*=2): a pickle posing as a
    # model. Workers must reject it, never unpickle it, and refit that key as version 2.
    study = optuna.create_study(storage=url, study_name=name)
    plant_hostile_model(study, "r3_t2", "qsvr")
    procs = [
        _worker(curves, url, name, budget, "--seed", str(i), "--pruner", "swift-qsvr")
        for i in range(8)
    ]
    results = _wait(procs, timeout=900)
    assert [code for code, _ in results] == [0] * 8, results
    study = optuna.load_study(storage=url, study_name=name)
    trials = study.trials
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    # Each worker checks the budget before starting a trial: at most 7 may start at once.
    assert budget <= len(trials) <= budget + 7
    assert len({t.number for t in trials}) == len(trials)
    _assert_decisions_recorded(study)
    # Every (key, version) is fitted exactly once across the 8 workers: one annealer call
    # per fit (a Q-SVR on <= 20 points is a single QUBO). Versions count up from 1, or from
    # 2 for the key whose version 1 was the hostile record.
    logs = "\n".join(text for _, text in results)
    fits = collections.Counter(re.findall(r"fitted predictor (\S+ v\d+)", logs))
    records = {r["key"]: r for r in fit_records(study)}
    assert records, "no predictor was fitted"
    assert set(fits.values()) == {1}, fits
    assert sorted(fits) == sorted(
        f"{k} v{v}"
        for k, r in records.items()
        for v in range(2 if k == "r3_t2" else 1, r["version"] + 1)
    )
    assert records["r3_t2"]["version"] >= 2 and records["r3_t2"]["predictor"] == "qsvr"
    assert "stored predictor rejected" in logs


def test_workers_run_any_benchmark_method_and_refuse_unknown_ones(curves, tmp_path) -> None:
    """``--pruner`` takes the benchmark's method names: the same name, the same pruner."""
    url, name = _url("sqlite", tmp_path), f"methods-{uuid.uuid4().hex[:6]}"
    procs = [
        _worker(curves, url, name, 30, "--seed", str(i), "--pruner", "percentile") for i in (0, 1)
    ]
    results = _wait(procs, timeout=300)
    assert [code for code, _ in results] == [0, 0], results
    trials = optuna.load_study(storage=url, study_name=name).trials
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    # Optuna's PercentilePruner decided: trials were pruned, and none carries a Swift record.
    assert any(t.state == TrialState.PRUNED for t in trials)
    assert not any("swift:bracket" in t.user_attrs for t in trials)
    [(code, text)] = _wait([_worker(curves, url, name, 30, "--pruner", "swift:nope")], 60)
    assert code == 2
    assert "unknown method(s) 'swift:nope'" in text and "Traceback" not in text


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_killed_worker_is_failed_and_replaced(kind, curves, tmp_path) -> None:
    url, name, budget = _url(kind, tmp_path), f"kill-{uuid.uuid4().hex[:6]}", 40
    beat = ("--heartbeat-interval", "1", "--grace-period", "3", "--epoch-seconds", "0.05")
    victim = _worker(curves, url, name, budget, "--seed", "0", *beat)
    # Let the victim get into a trial (one that says which configuration it trains: on a
    # loaded machine a RUNNING trial may not have said so yet), then start the others and
    # kill it without warning.
    deadline = time.monotonic() + 60
    study = None
    while time.monotonic() < deadline:
        try:
            study = optuna.load_study(storage=url, study_name=name)
            running = study.get_trials(states=(TrialState.RUNNING,))
            if any("config" in t.user_attrs for t in running):
                break
        except KeyError:
            pass
        time.sleep(0.2)
    assert study is not None
    time.sleep(0.5)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    completed_before = {t.number: t.value for t in study.get_trials(states=(TrialState.COMPLETE,))}
    others = [_worker(curves, url, name, budget, "--seed", str(i), *beat) for i in (1, 2, 3)]
    assert [code for code, _ in _wait(others, timeout=600)] == [0, 0, 0]
    study = optuna.load_study(storage=url, study_name=name)
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(failed) == 1, "the killed worker's trial is failed after the grace period"
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    done = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(done) >= budget - 1
    # Nothing completed is lost; the dead trial's configuration ran again in its place.
    after = {t.number: t.value for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert all(after[n] == v for n, v in completed_before.items())
    dead = failed[0]
    retried = [t for t in done if t.system_attrs.get("failed_trial") == dead.number]
    assert len(retried) == 1 and retried[0].user_attrs["config"] == dead.user_attrs["config"]
    # The dead trial, though marked "full" or mid-rung, does not block later decisions.
    later = [
        t
        for t in done
        if t.number > dead.number and any(k.startswith(DECISION) for k in t.system_attrs)
    ]
    assert later


def _postgres_url(tmp_path) -> str:
    url = _url("postgresql", tmp_path)
    if os.geteuid() != 0 or not shutil.which("pg_ctlcluster"):
        pytest.skip("restarting PostgreSQL needs root and pg_ctlcluster")
    return url


def _postgres_started_at() -> str:
    out = subprocess.run(
        ["su", "postgres", "-c", "psql -qtAc 'SELECT pg_postmaster_start_time()'"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.stdout.strip()


def _restart_postgres() -> None:
    """Restart the local cluster in "fast" mode, which ends every open connection, mid-query
    or idle, as a crash-restart would, and keep it down for a second: a restart quicker than
    the gap between a worker's storage calls goes unnoticed (the pool pings and reconnects),
    and a test once saw no outage at all."""
    version = sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: float(v))[-1]
    before = _postgres_started_at()
    cluster = (version, "main")
    subprocess.run(["pg_ctlcluster", "--mode", "fast", *cluster, "stop"], check=True, timeout=120)
    time.sleep(1.0)
    subprocess.run(["pg_ctlcluster", *cluster, "start"], check=True, timeout=120)
    assert _postgres_started_at() != before


def _assert_settled(study: optuna.Study, budget: int) -> None:
    """No trial left RUNNING or queued, and no complete trial half-written."""
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) >= budget
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        assert t.value == t.intermediate_values[R]
        assert sorted(t.intermediate_values) == list(range(1, R + 1))


def test_database_restart_while_workers_run(curves, tmp_path) -> None:
    url = _postgres_url(tmp_path)
    name, budget = f"restart-{uuid.uuid4().hex[:6]}", 60
    beat = ("--heartbeat-interval", "1", "--grace-period", "3", "--epoch-seconds", "0.03")
    procs = [_worker(curves, url, name, budget, "--seed", str(i), *beat) for i in range(3)]
    time.sleep(4)
    _restart_postgres()
    results = _wait(procs, timeout=600)
    assert [code for code, _ in results] == [0, 0, 0], results
    # Workers reconnect (pool pre-ping) or retry with backoff; either way no secret is logged.
    logs = "\n".join(text for _, text in results)
    assert "optuna-ci" not in logs
    _assert_settled(optuna.load_study(storage=url, study_name=name), budget)


def test_single_worker_settles_its_trial_after_database_restart(curves, tmp_path) -> None:
    url = _postgres_url(tmp_path)
    name, budget = f"restart1-{uuid.uuid4().hex[:6]}", 6
    # No pruner: every trial runs its 27 epochs (2.7 s), so the restart lands mid-trial, in
    # the last trial of the budget, with no other worker left to fail it.
    args = ("--pruner", "none", "--heartbeat-interval", "1", "--grace-period", "3")
    proc = _worker(curves, url, name, budget, *args, "--epoch-seconds", "0.1")
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline and proc.poll() is None, "the last trial never ran"
        with contextlib.suppress(KeyError):
            running = optuna.load_study(storage=url, study_name=name).get_trials(
                states=(TrialState.RUNNING,)
            )
            if running and running[0].number == budget - 1 and running[0].last_step:
                break
        time.sleep(0.1)
    _restart_postgres()
    [(code, logs)] = _wait([proc], timeout=300)
    assert code == 0, logs
    study = optuna.load_study(storage=url, study_name=name)
    _assert_settled(study, budget)
    assert "interrupted by a storage error, failed and queued again" in logs
    [failed] = study.get_trials(states=(TrialState.FAIL,))
    assert failed.number == budget - 1
    [retried] = [t for t in study.trials if t.system_attrs.get("failed_trial") == failed.number]
    assert retried.state == TrialState.COMPLETE
    assert retried.user_attrs["config"] == failed.user_attrs["config"]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_last_worker_fails_trials_left_running(kind, curves, tmp_path) -> None:
    url, name, budget = _url(kind, tmp_path), f"orphans-{uuid.uuid4().hex[:6]}", 8
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=3)
    study = optuna.create_study(storage=storage, study_name=name)
    # A trial created by an ask that a dropped connection cut short: RUNNING, no parameters,
    # no heartbeat row, so Optuna's stale-trial check never sees it. And a trial whose worker
    # was killed after its first heartbeat.
    no_beat = study.ask()
    killed = study.ask()
    storage.record_heartbeat(killed._trial_id)
    proc = _worker(curves, url, name, budget, "--heartbeat-interval", "1", "--grace-period", "3")
    [(code, logs)] = _wait([proc], timeout=300)
    assert code == 0, logs
    study = optuna.load_study(storage=url, study_name=name)
    _assert_settled(study, budget)
    failed = {t.number for t in study.get_trials(states=(TrialState.FAIL,))}
    assert failed == {no_beat.number, killed.number}
    retried = [t.system_attrs.get("failed_trial") for t in study.trials]
    assert sorted(n for n in retried if n is not None) == sorted(failed)
    assert "no heartbeat for" in logs


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_last_worker_waits_for_a_trial_it_has_not_seen_beat_and_no_longer(
    curves, tmp_path
) -> None:
    url, name, budget, interval = _url("sqlite", tmp_path), "unseen", 6, 60
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=interval)
    study = optuna.create_study(storage=storage, study_name=name)
    # Another worker's trial, one beat recorded: alive or killed, nobody can tell yet.
    other = study.ask()
    storage.record_heartbeat(other._trial_id)
    proc = _worker(curves, url, name, budget, "--heartbeat-interval", str(interval))
    deadline = time.monotonic() + 120
    while len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) < budget - 1:
        assert time.monotonic() < deadline and proc.poll() is None, "the worker never ran"
        time.sleep(0.2)
    time.sleep(3)
    assert proc.poll() is None, "the worker left a trial it never saw beat RUNNING"
    study.tell(other, 1.0)
    # It looks again each second, not once per heartbeat interval.
    [(code, logs)] = _wait([proc], timeout=interval / 2)
    assert code == 0, logs
    study = optuna.load_study(storage=url, study_name=name)
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == budget


def test_worker_gives_up_on_unreachable_storage_in_one_line(curves, tmp_path) -> None:
    password = "s3cret-" + uuid.uuid4().hex[:6]
    url = f"postgresql+psycopg://optuna:{password}@127.0.0.1:{_free_port()}/optuna_qsvr"
    started = time.monotonic()
    proc = _worker(curves, url, "nowhere", 5, "--max-outage", "4")
    [(code, logs)] = _wait([proc], timeout=120)
    assert code == 2, logs
    assert 4 <= time.monotonic() - started < 60  # retried for --max-outage, then stopped
    assert "Traceback" not in logs and password not in logs
    last = logs.strip().splitlines()[-1]
    assert "storage unreachable for 4 s, giving up" in last
    assert "optuna:***@127.0.0.1" in last
    assert logs.count("retrying in") >= 2


def test_worker_waits_for_a_storage_that_comes_up(curves, tmp_path) -> None:
    real = _url("postgresql", tmp_path)
    port = _free_port()
    url = real.replace("@127.0.0.1:5432/", f"@127.0.0.1:{port}/")
    assert url != real
    name = f"late-{uuid.uuid4().hex[:6]}"
    proc = _worker(curves, url, name, 5, "--pruner", "none", "--max-outage", "120")
    # The database answers on that port only after 8 s, as one still starting would.
    time.sleep(8)
    assert proc.poll() is None, proc.communicate()
    with _forward(port, 5432):
        [(code, logs)] = _wait([proc], timeout=120)
    assert code == 0, logs
    assert "retrying in" in logs and "optuna-ci" not in logs
    study = optuna.load_study(storage=real, study_name=name)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 5


def test_workers_skip_malformed_records(curves, tmp_path) -> None:
    url, name, budget = _url("sqlite", tmp_path), f"bad-{uuid.uuid4().hex[:6]}", 40
    study = optuna.create_study(storage=url, study_name=name)
    bad = ["a string", None, {"decision": "kept"}, {"v": 1, "rung": 0, "step": 2}]
    # Rung-mates of every bracket, finished by earlier workers, with malformed records at
    # every rung; and queued trials that carry one themselves.
    for i in range(16):
        study.add_trial(
            optuna.trial.create_trial(
                value=1.0 / (i + 2),
                intermediate_values={s: 1.0 / (i + 2) + 1.0 / s for s in range(1, R + 1)},
                system_attrs={
                    "swift:decision:0": bad[i % 4],
                    "swift:decision:1": bad[(i + 1) % 4],
                    "swift:promotion:0": bad[(i + 2) % 4],
                },
            )
        )
    for i in range(4):
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING,
                system_attrs={f"swift:decision:{i % 2}": bad[i], "swift:promotion:1": bad[i]},
            )
        )
    procs = [_worker(curves, url, name, budget, "--seed", str(i)) for i in range(3)]
    results = _wait(procs, timeout=600)
    assert [code for code, _ in results] == [0, 0, 0], results
    logs = "\n".join(text for _, text in results)
    assert "malformed record skipped" in logs
    study = optuna.load_study(storage=url, study_name=name)
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    new = study.trials[16:]
    assert len(new) >= budget - 16
    # The workers' own records are well-formed, and decisions went on past the bad ones.
    written = [v for t in new for k, v in t.system_attrs.items() if k.startswith(DECISION)]
    assert any(isinstance(v, dict) and v.get("forecast") is not None for v in written)


def test_unreachable_qpu_falls_back_and_leaks_no_secret(curves, tmp_path) -> None:
    url = _url("postgresql", tmp_path)
    password = "optuna-ci"
    assert password in url
    token = "DEV-0123456789abcdef-secret-token"
    # Every D-Wave endpoint points at a closed local port: nothing leaves the machine.
    env = {
        "DWAVE_API_TOKEN": token,
        "DWAVE_API_ENDPOINT": "http://127.0.0.1:9/sapi/v2/",
        "DWAVE_METADATA_API_ENDPOINT": "http://127.0.0.1:9/metadata/v1/",
        "DWAVE_LEAP_API_ENDPOINT": "http://127.0.0.1:9/leap/api/",
    }
    name = f"qpu-{uuid.uuid4().hex[:6]}"
    # A fit needs min_train_curves (15) curves at a key: 50 trials reach that only for the
    # first rung's keys, and once under CI's load for none; 100 reach it for several keys.
    procs = [
        _worker(
            curves,
            url,
            name,
            100,
            "--seed",
            str(i),
            "--pruner",
            "swift-qsvr",
            "--annealer",
            "qpu",
            env=env,
        )
        for i in range(2)
    ]
    results = _wait(procs, timeout=600)
    assert [code for code, _ in results] == [0, 0], results
    study = optuna.load_study(storage=url, study_name=name)
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    logs = "\n".join(text for _, text in results)
    assert "predictor fit failed, ASHA decides" in logs
    everything = (
        logs
        + repr(study._storage.get_study_system_attrs(study._study_id))
        + repr([(t.system_attrs, t.user_attrs) for t in study.trials])
    )
    assert token not in everything and password not in everything
