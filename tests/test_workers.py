"""Many worker processes on one study: budget, decisions, fits, faults, credentials."""

from __future__ import annotations

import collections
import csv
import gzip
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from optuna_qsvr.report import fit_records
from tests.conftest import make_storage, plant_hostile_model

DECISION = "swift:decision:"
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


def _assert_decisions_recorded(study: optuna.Study) -> None:
    """Every trial that reported a step inside a rung's decision window has its decision."""
    from optuna_qsvr import SwiftHyperbandPruner

    pruner = SwiftHyperbandPruner(max_resource=R)
    n_checked = 0
    for t in study.trials:
        bracket = t.user_attrs["swift:bracket"]
        assert bracket == pruner.bracket_of(study.study_name, t.number)
        for rung in pruner.schedule.rungs(bracket):
            if rung.decision_step is None:
                continue
            if any(rung.decision_step <= s < rung.budget for s in t.intermediate_values):
                assert f"{DECISION}{rung.index}" in t.system_attrs, (t.number, rung)
                n_checked += 1
    assert n_checked > 0


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
    # per fit (a Q-SVR on <= 20 points is a single QUBO).
    logs = "\n".join(text for _, text in results)
    fits = collections.Counter(re.findall(r"fitted predictor (\S+ v\d+)", logs))
    records = {r["key"]: r for r in fit_records(study)}
    assert records, "no predictor was fitted"
    assert set(fits.values()) == {1}, fits
    assert sorted(fits) == sorted(f"{k} v{r['version']}" for k, r in records.items())
    assert records["r3_t2"]["version"] == 2 and records["r3_t2"]["predictor"] == "qsvr"
    assert all(r["version"] == 1 for k, r in records.items() if k != "r3_t2")
    assert "stored predictor rejected" in logs


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_killed_worker_is_failed_and_replaced(kind, curves, tmp_path) -> None:
    url, name, budget = _url(kind, tmp_path), f"kill-{uuid.uuid4().hex[:6]}", 40
    beat = ("--heartbeat-interval", "1", "--grace-period", "3", "--epoch-seconds", "0.05")
    victim = _worker(curves, url, name, budget, "--seed", "0", *beat)
    # Let the victim get into a trial, then start the others and kill it without warning.
    deadline = time.monotonic() + 60
    study = None
    while time.monotonic() < deadline:
        try:
            study = optuna.load_study(storage=url, study_name=name)
            if study.get_trials(states=(TrialState.RUNNING,)):
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


def test_database_restart_while_workers_run(curves, tmp_path) -> None:
    url = _url("postgresql", tmp_path)
    if os.geteuid() != 0 or not shutil.which("pg_ctlcluster"):
        pytest.skip("restarting PostgreSQL needs root and pg_ctlcluster")
    version = sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: float(v))[-1]
    name, budget = f"restart-{uuid.uuid4().hex[:6]}", 60
    beat = ("--heartbeat-interval", "1", "--grace-period", "3", "--epoch-seconds", "0.03")

    def started_at() -> str:
        out = subprocess.run(
            ["su", "postgres", "-c", "psql -qtAc 'SELECT pg_postmaster_start_time()'"],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return out.stdout.strip()

    before = started_at()
    procs = [_worker(curves, url, name, budget, "--seed", str(i), *beat) for i in range(3)]
    time.sleep(4)
    # "fast" ends every open connection, mid-query or idle, as a crash-restart would.
    subprocess.run(
        ["pg_ctlcluster", "--mode", "fast", version, "main", "restart"], check=True, timeout=120
    )
    assert started_at() != before
    results = _wait(procs, timeout=600)
    assert [code for code, _ in results] == [0, 0, 0], results
    # Workers reconnect (pool pre-ping) or retry with backoff; either way no secret is logged.
    logs = "\n".join(text for _, text in results)
    assert "optuna-ci" not in logs
    study = optuna.load_study(storage=url, study_name=name)
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        # Never half-written: a complete trial has its value and its whole curve.
        assert t.value == t.intermediate_values[R]
        assert sorted(t.intermediate_values) == list(range(1, R + 1))


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
    procs = [
        _worker(
            curves,
            url,
            name,
            50,
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
    reasons = [
        v.get("reason", "")
        for t in study.trials
        for k, v in t.system_attrs.items()
        if k.startswith(DECISION) and v["decision"] == "no-forecast"
    ]
    assert any("fit failed" in r for r in reasons), reasons
    everything = (
        "\n".join(text for _, text in results)
        + repr(study._storage.get_study_system_attrs(study._study_id))
        + repr([(t.system_attrs, t.user_attrs) for t in study.trials])
    )
    assert token not in everything and password not in everything
