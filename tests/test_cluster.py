"""Cluster recipes and the gRPC storage proxy: real proxy and worker processes, the Slurm
script run as plain processes, the Kubernetes manifests checked against Kubernetes' schemas."""

from __future__ import annotations

import contextlib
import copy
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optuna_qsvr import _records
from optuna_qsvr.report import fit_records
from tests.test_workers import (
    _assert_decisions_recorded,
    _assert_settled,
    _free_port,
    _url,
    _wait,
    _worker,
    curves,  # noqa: F401 - the module-scoped fixture: 60 curves of 27 epochs
)

ROOT = Path(__file__).resolve().parents[1]
SBATCH = ROOT / "deploy" / "slurm" / "optuna-qsvr-array.sbatch"
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))

pytest.importorskip("grpc", reason="the gRPC proxy needs the grpc extra")


@contextlib.contextmanager
def _proxy(url: str, *extra: str):
    """An ``optuna-qsvr proxy`` process serving ``url``; yields its ``grpc://`` URL. On leaving,
    it is stopped with SIGTERM and must exit 0."""
    from optuna_qsvr._proxy import ProxyStorage

    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "optuna_qsvr",
            "proxy",
            "--storage",
            url,
            "--port",
            str(port),
            *list(extra),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ProxyStorage(host="localhost", port=port).check(timeout=60)
        yield f"grpc://localhost:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


def _error_lines(logs: str) -> list[str]:
    return [line for line in logs.splitlines() if "error:" in line]


class _Cable:
    """A TCP forwarder to PostgreSQL that can be cut: every connection through it is closed
    and new ones are refused, as when the database host goes away."""

    def __init__(self, port: int, target: int) -> None:
        self._port, self._target = port, target
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", port))
        self._server.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            upstream = socket.create_connection(("127.0.0.1", self._target))
            with self._lock:
                self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self._stop.set()
        self._thread.join()
        self._server.close()
        with self._lock:
            for sock in self._socks:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def _pg_connections(url: str, application: str) -> int:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sqlalchemy.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = :a"
                    ),
                    {"a": application},
                ).scalar()
            )
    finally:
        engine.dispose()


# -- workers through the proxy ------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_workers_through_proxy_share_decisions_and_models(kind, curves, tmp_path) -> None:  # noqa: F811
    # 90 trials: the assertions need fitted models, and a fit needs min_train_curves (15)
    # curves at a key, which a smaller study reaches only at its end (test_workers.py's QPU
    # test failed once under load with 50).
    url, name, budget = _url(kind, tmp_path), f"grpc-{uuid.uuid4().hex[:6]}", 90
    application = f"optuna-qsvr-proxy-{uuid.uuid4().hex[:6]}"
    served = url + (f"?application_name={application}" if kind == "postgresql" else "")
    peak = [0]
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.2):
            peak[0] = max(peak[0], _pg_connections(url, application))

    with _proxy(served, "--threads", "3") as grpc_url:
        poller = threading.Thread(target=poll, daemon=True)
        if kind == "postgresql":
            poller.start()
        procs = [
            _worker(curves, grpc_url, name, budget, "--seed", str(i), "--heartbeat-interval", "2")
            for i in range(4)
        ]
        results = _wait(procs, timeout=600)
        stop.set()
    assert [code for code, _ in results] == [0] * 4, results
    study = optuna.load_study(storage=url, study_name=name)
    _assert_settled(study, budget)
    assert len(study.trials) <= budget + 3
    _assert_decisions_recorded(study)
    # The fitted predictors are in the storage, published by one worker each and loaded by
    # the others; every fit lease was released (not failed).
    records = fit_records(study)
    assert records and {r["predictor"] for r in records} == {"svr"}
    attrs = study._storage.get_study_system_attrs(study._study_id)
    leases = {k: v for k, v in attrs.items() if k.startswith(_records.LOCK_PREFIX)}
    assert leases and all(v["failed"] is None for v in leases.values()), leases
    logs = "\n".join(text for _, text in results)
    assert len(re.findall(r"fitted predictor", logs)) >= len(records)
    # Heartbeats went through the proxy as a trial attribute.
    assert any(_records.HEARTBEAT_ATTR in t.system_attrs for t in study.trials)
    if kind == "postgresql":
        # However many workers, the database sees at most the proxy's --threads connections.
        assert 1 <= peak[0] <= 3, peak


def test_killed_worker_through_proxy_is_failed_and_replaced(curves, tmp_path) -> None:  # noqa: F811
    url, name, budget = _url("sqlite", tmp_path), f"grpc-kill-{uuid.uuid4().hex[:6]}", 16
    beat = ("--heartbeat-interval", "1", "--grace-period", "3", "--epoch-seconds", "0.05")
    with _proxy(url) as grpc_url:
        victim = _worker(curves, grpc_url, name, budget, "--seed", "0", *beat)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(KeyError):
                study = optuna.load_study(storage=url, study_name=name)
                running = study.get_trials(states=(TrialState.RUNNING,))
                if running and _records.HEARTBEAT_ATTR in running[0].system_attrs:
                    break
            time.sleep(0.2)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        others = [_worker(curves, grpc_url, name, budget, "--seed", str(i), *beat) for i in (1, 2)]
        results = _wait(others, timeout=600)
    assert [code for code, _ in results] == [0, 0], results
    study = optuna.load_study(storage=url, study_name=name)
    _assert_settled(study, budget)
    [dead] = study.get_trials(states=(TrialState.FAIL,))
    [retried] = [t for t in study.trials if t.system_attrs.get("failed_trial") == dead.number]
    assert retried.user_attrs["config"] == dead.user_attrs["config"]
    assert _records.HEARTBEAT_ATTR not in retried.system_attrs or retried.state.is_finished()
    assert "no heartbeat for" in "\n".join(text for _, text in results)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@pytest.mark.parametrize("slow", ["direct", "proxy"])
def test_direct_and_proxy_workers_on_one_study_keep_each_others_trials(
    slow,
    kind,
    curves,  # noqa: F811
    tmp_path,
) -> None:
    # A direct worker beats in Optuna's heartbeat table, which a proxy worker cannot read; a
    # proxy worker beats in a trial attribute. Each must see the other's trials beating, or
    # it fails them after the grace period while they run. The fast worker looks at the
    # slow one's trials every 1.4 s; each of those outlasts the grace period (5 s, five
    # heartbeats: one late write is no silence) threefold.
    url, name, budget = _url(kind, tmp_path), f"mixed-{uuid.uuid4().hex[:6]}", 14
    beat = ("--heartbeat-interval", "1", "--grace-period", "5", "--pruner", "none")
    pace = {"direct": "0.05", "proxy": "0.05", slow: "0.6"}
    with _proxy(url) as grpc_url:
        procs = [
            _worker(
                curves, where, name, budget, "--seed", str(i), "--epoch-seconds", pace[kind], *beat
            )
            for i, (kind, where) in enumerate((("direct", url), ("proxy", grpc_url)))
        ]
        results = _wait(procs, timeout=600)
    assert [code for code, _ in results] == [0, 0], results
    logs = "\n".join(text for _, text in results)
    assert "no heartbeat for" not in logs
    study = optuna.load_study(storage=url, study_name=name)
    assert not study.get_trials(states=(TrialState.FAIL,))
    _assert_settled(study, budget)

    # The fast worker looked at one of the slow one's trials (at each of its own trial starts)
    # for longer than the grace period.
    def watched(slow: optuna.trial.FrozenTrial) -> float:
        starts = [
            t.datetime_start
            for t in study.trials
            if slow.datetime_start < t.datetime_start < slow.datetime_complete
        ]
        return (max(starts) - min(starts)).total_seconds() if starts else 0.0

    assert max(watched(t) for t in study.trials) > 5, study.trials


# -- the fit lease through the proxy -------------------------------------------------------
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_one_of_many_threads_wins_a_lease_through_the_proxy(kind, tmp_path) -> None:
    from optuna_qsvr import _lease
    from optuna_qsvr._proxy import ProxyStorage, parse_grpc_url
    from tests.pruners_tests.test_model_store_concurrency import _threads

    url = _url(kind, tmp_path)
    study = optuna.create_study(storage=url)
    owners = [uuid.uuid4().hex for _ in range(8)]

    def stored(lease: str) -> dict:
        attrs = study._storage.get_study_system_attrs(study._study_id)
        return _lease.claim_state(attrs, lease)

    with _proxy(url) as grpc_url:
        host, port = parse_grpc_url(grpc_url)
        clients = [ProxyStorage(host=host, port=port) for _ in owners]
        for round_ in range(3):
            lease = f"r9_t5:v{round_ + 1}"

            def claim(i: int, lease=lease) -> bool:
                return _lease.try_claim(clients[i], study._study_id, lease, owners[i], 60)

            [winner] = [i for i, won in enumerate(_threads(8, claim)) if won]
            # The proxy's database claimed it: the stored claim says so.
            assert stored(lease) == {
                "owner": owners[winner],
                "expires": stored(lease)["expires"],
                "atomic": True,
            }
            # A racer that saw the lease free before the winner wrote, and writes only now
            # (after the winner read its claim back), is refused by the proxy's database; a
            # plain store would let it overwrite the winner and both would fit.
            late = (winner + 1) % 8
            clients[late].set_study_system_attr(
                study._study_id,
                _records.lock_attr(lease),
                {"owner": owners[late], "expires": time.time() + 60, "request": "claim"},
            )
            assert stored(lease)["owner"] == owners[winner]
            assert not any(_threads(8, claim))
            _lease.end_claim(clients[winner], study._study_id, lease, owners[winner])
            assert len([won for won in _threads(8, claim) if won]) == 1


def test_lease_through_optuna_s_own_proxy_falls_back_to_write_and_read_back(tmp_path) -> None:
    # Optuna's proxy over its own RDBStorage stores a claim request as it is: the worker
    # cannot tell an atomic claim, so it waits and reads back, and still decides correctly
    # when the claims do not race.
    from optuna.storages._grpc.server import make_server

    from optuna_qsvr import _lease
    from optuna_qsvr._proxy import ProxyStorage

    url = _url("sqlite", tmp_path)
    study = optuna.create_study(storage=url)
    port = _free_port()
    server = make_server(optuna.storages.RDBStorage(url), "localhost", port)
    server.start()
    try:
        client = ProxyStorage(host="localhost", port=port)
        client.check(timeout=30)
        assert _lease.try_claim(client, study._study_id, "k:v1", "me", 60)
        assert not _lease.try_claim(client, study._study_id, "k:v1", "you", 60)
        state = _lease.claim_state(client.get_study_system_attrs(study._study_id), "k:v1")
        assert state["owner"] == "me" and "atomic" not in state
        _lease.end_claim(client, study._study_id, "k:v1", "me")
        assert _lease.try_claim(client, study._study_id, "k:v1", "you", 60)
    finally:
        server.stop(None)


# -- bad input: one line, bounded retries, exit status 2, no trial left RUNNING ------------
def test_worker_gives_up_on_a_proxy_that_is_down(curves, tmp_path) -> None:  # noqa: F811
    url = f"grpc://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    [(code, logs)] = _wait([_worker(curves, url, "nowhere", 5, "--max-outage", "3")], 120)
    assert code == 2, logs
    # --max-outage 3 governs, not the default 300 s; the rest is start-up, slow on a loaded
    # machine (a run beside two benchmark processes took 60 s).
    assert time.monotonic() - started < 100
    assert "Traceback" not in logs
    [line] = _error_lines(logs)
    assert line == logs.strip().splitlines()[-1]
    assert "storage unreachable for" in line and f"no gRPC proxy answers at {url[7:]}" in line


def test_proxy_gives_up_on_a_database_that_is_down() -> None:
    password = "s3cret-" + uuid.uuid4().hex[:6]
    url = f"postgresql+psycopg://optuna:{password}@127.0.0.1:{_free_port()}/optuna"
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "optuna_qsvr",
            "proxy",
            "--storage",
            url,
            "--max-outage",
            "3",
            "--port",
            str(_free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    logs = done.stdout + done.stderr
    assert done.returncode == 2, logs
    assert time.monotonic() - started < 60
    assert "Traceback" not in logs and password not in logs
    [line] = _error_lines(logs)
    assert line.startswith("optuna-qsvr proxy: error: storage unreachable for")
    assert "optuna:***@127.0.0.1" in line


def test_worker_through_proxy_whose_database_goes_down(curves, tmp_path) -> None:  # noqa: F811
    real = _url("postgresql", tmp_path)
    port = _free_port()
    name = f"grpc-down-{uuid.uuid4().hex[:6]}"
    cable = _Cable(port, 5432)
    beat = ("--heartbeat-interval", "1", "--grace-period", "3", "--pruner", "none")
    with _proxy(real.replace("@127.0.0.1:5432/", f"@127.0.0.1:{port}/")) as grpc_url:
        proc = _worker(
            curves, grpc_url, name, 4, *beat, "--epoch-seconds", "0.2", "--max-outage", "5"
        )
        proc_out = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(KeyError):
                study = optuna.load_study(storage=real, study_name=name)
                if study.get_trials(states=(TrialState.RUNNING,)):
                    break
            time.sleep(0.2)
        cable.cut()  # the proxy's database is gone mid-trial
        started = time.monotonic()
        [(code, proc_out)] = _wait([proc], timeout=120)
        assert code == 2, proc_out
        assert time.monotonic() - started < 60
        assert "Traceback" not in proc_out and "optuna-ci" not in proc_out
        [line] = _error_lines(proc_out)
        assert "storage unreachable for" in line and "the proxy's database" in line
        # The trial it was running could not be written and is still RUNNING. The database
        # comes back; the proxy reconnects, and the next worker fails that trial once it has
        # seen it silent for the grace period, queues it again and runs it.
        stuck = optuna.load_study(storage=real, study_name=name)
        assert stuck.get_trials(states=(TrialState.RUNNING,))
        cable = _Cable(port, 5432)
        try:
            [(code, logs)] = _wait([_worker(curves, grpc_url, name, 4, *beat)], timeout=120)
        finally:
            cable.cut()
    assert code == 0, logs
    study = optuna.load_study(storage=real, study_name=name)
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert len(study.get_trials(states=(TrialState.FAIL,))) == 1
    assert "no heartbeat for" in logs


# -- the Kubernetes manifests ---------------------------------------------------------------
def _documents() -> list[tuple[Path, dict]]:
    yaml = pytest.importorskip("yaml")
    docs = []
    for path in MANIFESTS:
        docs += [(path, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _worker_container() -> dict:
    [job] = [d for _, d in _documents() if d["kind"] == "Job"]
    [container] = job["spec"]["template"]["spec"]["containers"]
    return container


def test_manifests_pass_kubernetes_schemas() -> None:
    kv = pytest.importorskip("kubernetes_validate")
    docs = _documents()
    kinds = sorted(d["kind"] for _, d in docs)
    assert kinds == ["Deployment", "Job", "Service", "Service", "StatefulSet"]
    for _path, doc in docs:
        kv.validate(doc, kv.latest_version(), strict=True)  # raises on a schema violation
    # The check has teeth: a wrong type and an unknown field are rejected.
    [job] = [d for _, d in docs if d["kind"] == "Job"]
    for mutate in (
        lambda j: j["spec"].update(parallelism="many"),
        lambda j: j["spec"]["template"]["spec"].update(restartPolicyy="Never"),
    ):
        bad = copy.deepcopy(job)
        mutate(bad)
        with pytest.raises(kv.ValidationError):
            kv.validate(bad, kv.latest_version(), strict=True)


def test_manifests_agree_with_each_other() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for _, d in _documents()}
    job = docs[("Job", "optuna-qsvr-workers")]
    assert job["spec"]["parallelism"] == job["spec"]["completions"]
    # Exit status 2 (bad URL, storage gone) fails the Job instead of retrying its pods.
    [rule] = job["spec"]["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [2]
    command = _worker_container()["command"]
    storage = command[command.index("--storage") + 1]
    proxy_service = docs[("Service", "optuna-qsvr-proxy")]
    host, port = storage.removeprefix("grpc://").split(":")
    assert host == proxy_service["metadata"]["name"]
    assert int(port) == proxy_service["spec"]["ports"][0]["port"]
    [proxy] = docs[("Deployment", "optuna-qsvr-proxy")]["spec"]["template"]["spec"]["containers"]
    db_url = proxy["command"][proxy["command"].index("--storage") + 1]
    assert "@optuna-qsvr-postgres:5432/" in db_url
    assert ":" not in db_url.split("://")[1].split("@")[0], "no password in the URL"
    secrets = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for d in docs.values()
        for c in d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert secrets == {"optuna-qsvr-db"}
    assert "kubectl create secret generic optuna-qsvr-db" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        (None, "no gRPC proxy answers at optuna-qsvr-proxy:13000"),
        ("postgres://optuna:pw-in-url@optuna-qsvr-postgres/optuna", "not a storage URL"),
        ("grpc://optuna-qsvr-proxy:13000x", "not a gRPC proxy URL"),
    ],
)
def test_manifest_worker_with_a_wrong_storage_url(storage, expected, tmp_path) -> None:
    """The Job's own worker command, run here: its proxy host does not resolve outside the
    cluster, and two mistyped URLs."""
    command = list(_worker_container()["command"])
    assert command[0] == "optuna-qsvr"
    command = [sys.executable, "-m", "optuna_qsvr", *command[1:]]
    command[command.index("$(SEED)")] = "0"
    command[command.index("--max-outage") + 1] = "3"
    if storage is not None:
        command[command.index("--storage") + 1] = storage
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    logs = done.stdout + done.stderr
    assert done.returncode == 2, logs
    assert time.monotonic() - started < 30
    assert "Traceback" not in logs and "pw-in-url" not in logs
    [line] = _error_lines(logs)
    assert line.startswith("optuna-qsvr worker: error:") and expected in line


# -- the Slurm array job --------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sqlite", "proxy", "postgresql"])
def test_slurm_array_script_runs_as_plain_processes(kind, curves, tmp_path) -> None:  # noqa: F811
    text = SBATCH.read_text()
    array = re.search(r"^#SBATCH --array=(\d+)-(\d+)$", text, flags=re.M)
    assert array, "the script declares its array"
    url = _url("sqlite" if kind == "proxy" else kind, tmp_path)
    name, budget = f"slurm-{uuid.uuid4().hex[:6]}", 24
    with _proxy(url) if kind == "proxy" else contextlib.nullcontext(url) as storage:
        env = {
            "OPTUNA_QSVR_STORAGE": storage,
            "OPTUNA_QSVR_STUDY": name,
            "OPTUNA_QSVR_BUDGET": str(budget),
            "OPTUNA_QSVR_CURVES": curves,
            "OPTUNA_QSVR_PYTHON": sys.executable,
            "SLURM_ARRAY_JOB_ID": "4242",
        }
        # Slurm runs the script once per array index, with SLURM_ARRAY_TASK_ID set; so do we.
        procs = [
            subprocess.Popen(
                ["bash", str(SBATCH)],
                env={**os.environ, **env, "SLURM_ARRAY_TASK_ID": str(i)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
            for i in range(4)
        ]
        results = _wait(procs, timeout=600)
    assert [code for code, _ in results] == [0] * 4, results
    # One study, created once by whichever task came first, filled to its budget.
    assert [s.study_name for s in optuna.get_all_study_summaries(url)].count(name) == 1
    study = optuna.load_study(storage=url, study_name=name)
    _assert_settled(study, budget)
    # 24 trials on 4 workers may finish before any key has the curves a forecast needs: the
    # forecast decisions through the proxy are the proxy test's business (above).
    _assert_decisions_recorded(study, forecasts=False)


def test_slurm_script_needs_its_storage() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTUNA_QSVR_")}
    done = subprocess.run(
        ["bash", str(SBATCH)],
        env={**env, "SLURM_ARRAY_TASK_ID": "0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "OPTUNA_QSVR_STORAGE" in done.stderr
