"""Many workers on one PostgreSQL study: directly, and through the gRPC storage proxy.

Part 1 (``--workers``): for each worker count and mode, starts that many ``optuna-qsvr worker``
processes replaying a bundled learning-curve table (Swift-Hyperband with SVR, no sleep per
epoch: the storage and the pruner are all the work) into a fresh study of a fixed budget, and
reports trials per second (trials over the span from the first trial's start to the last
trial's end, read from the storage), the peak number of database connections (polled from
``pg_stat_activity`` every 0.2 s), exit statuses and storage errors the workers retried.

Part 2 (``--reads``): one process, SQLite, the same pruner and table; counts what each
``prune`` call reads from the storage as the study grows, with 1, 8 or 64 trials RUNNING
(other workers' trials, which every read of the study fetches again).

    nice -n 10 python benchmarks/scale.py \\
        --postgres postgresql+psycopg://optuna:optuna-ci@127.0.0.1:5432/optuna_qsvr_cluster

Connections are counted by the application name each run puts in its database URL.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import optuna

TABLE = "mlpf_delphes_sim"
ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _ConnectionPoll:
    """The most connections named ``application`` seen while in the block, polled every
    0.2 s (the run's URL names it, so other clients and the backends of a previous run that
    are still exiting are not counted)."""

    def __init__(self, url: str, application: str) -> None:
        import sqlalchemy

        # NullPool: this poller's own connection opens and closes, and is not counted.
        self._engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        self._query = sqlalchemy.text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app"
        )
        self._app = application
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                with self._engine.connect() as conn:
                    n = conn.execute(self._query, {"app": self._app}).scalar()
                self.peak = max(self.peak, int(n))
            except Exception:  # too many clients: the point of the measurement; try again
                pass
            self._stop.wait(0.2)

    def __enter__(self) -> _ConnectionPoll:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._engine.dispose()


def _start_proxy(url: str, port: int, threads: int) -> subprocess.Popen:
    proxy = subprocess.Popen(
        [
            *(sys.executable, "-m", "optuna_qsvr", "proxy", "--storage", url),
            *("--port", str(port), "--threads", str(threads), "--log-level", "WARNING"),
        ],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    from optuna_qsvr._proxy import ProxyStorage

    ProxyStorage(host="127.0.0.1", port=port).check(timeout=60)
    return proxy


def run_workers(url: str, n: int, mode: str, budget: int, threads: int) -> dict:
    name = f"scale-{mode}-{n}-{uuid.uuid4().hex[:6]}"
    proxy = None
    sep = "&" if "?" in url else "?"
    storage = f"{url}{sep}application_name={name}"
    with _ConnectionPoll(url, name) as poll:
        if mode == "proxy":
            port = _free_port()
            proxy = _start_proxy(storage, port, threads)
            storage = f"grpc://127.0.0.1:{port}"
        started = time.monotonic()
        procs = [
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "optuna_qsvr", "worker", "--curves", TABLE),
                    *("--storage", storage, "--study-name", name, "--direction", "minimize"),
                    *("--budget", str(budget), "--seed", str(i), "--pruner", "swift-svr"),
                    *("--max-outage", "120", "--log-level", "WARNING"),
                ],
                env=_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(n)
        ]
        logs = [p.communicate(timeout=1800)[1] for p in procs]
        wall = time.monotonic() - started
        if proxy is not None:
            proxy.send_signal(signal.SIGTERM)
            proxy.communicate(timeout=60)
    study = optuna.load_study(storage=url, study_name=name)
    trials = study.trials
    finished = [t for t in trials if t.state.is_finished()]
    span = (
        max(t.datetime_complete for t in finished) - min(t.datetime_start for t in trials)
    ).total_seconds()
    states = collections.Counter(t.state.name for t in trials)
    text = "\n".join(logs)
    return {
        "workers": n,
        "mode": mode,
        "trials": len(trials),
        "states": dict(states),
        "span_s": span,
        "wall_s": wall,
        "trials_per_s": len(finished) / span,
        "peak_connections": poll.peak,
        "exit_codes": dict(collections.Counter(p.returncode for p in procs)),
        "retried_errors": text.count("retrying in"),
        "too_many_clients": text.count("too many clients"),
    }


def _count_reads(running: int, n_trials: int) -> list[tuple[int, int, int, int]]:
    """``(trials in the study, storage reads, trials fetched from the database, SQL
    statements)`` of every ``prune`` call of one study with ``running`` trials RUNNING."""
    import sqlalchemy

    from optuna_qsvr.benchmark import (
        CurveTable,
        bundled_table,
        config_sequence,
        make_objective,
        make_pruner,
    )

    table = CurveTable.load(bundled_table(TABLE))
    tmp = tempfile.mkdtemp()
    rdb = optuna.storages.RDBStorage(f"sqlite:///{tmp}/reads.db")
    storage = optuna.storages.get_storage(rdb)
    inside = [False]
    counts = collections.Counter()

    @sqlalchemy.event.listens_for(rdb.engine, "before_cursor_execute")
    def _sql(*_: object) -> None:
        if inside[0]:
            counts["sql"] += 1

    def counted(obj: object, method: str, rows: bool) -> None:
        inner = getattr(obj, method)

        def wrapper(*args, **kwargs):
            result = inner(*args, **kwargs)
            if inside[0]:
                counts["reads" if obj is storage else "fetched"] += len(result) if rows else 1
            return result

        setattr(obj, method, wrapper)

    for method in ("get_all_trials", "get_trial", "get_study_system_attrs"):
        counted(storage, method, rows=False)
    counted(rdb, "_get_trials", rows=True)  # what the cached storage fetches from the DB

    pruner = make_pruner("swift-svr", max_resource=table.max_step)
    per_call: list[tuple[int, int, int, int]] = []
    prune = pruner.prune

    def counting_prune(study, trial):
        counts.clear()
        inside[0] = True
        try:
            return prune(study, trial)
        finally:
            inside[0] = False
            per_call.append((trial.number, counts["reads"], counts["fetched"], counts["sql"]))

    pruner.prune = counting_prune
    study = optuna.create_study(storage=storage, pruner=pruner, direction="minimize")
    for _ in range(running - 1):
        study.ask()  # other workers' trials, RUNNING throughout
    order = config_sequence(table, 0, len(table))
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study.optimize(make_objective(table, order=order), n_trials=n_trials)
    return per_call


def reads_table(n_trials: int, running: tuple[int, ...]) -> str:
    bins = [(0, 50), (50, 100), (100, 200), (200, n_trials + running[-1])]
    lines = [
        "| RUNNING trials | trial numbers | prune calls | storage reads / call | "
        "trials fetched from the DB / call | SQL statements / call |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for w in running:
        calls = _count_reads(w, n_trials)
        for lo, hi in bins:
            rows = [c for c in calls if lo <= c[0] - (w - 1) < hi]
            if not rows:
                continue
            k = len(rows)
            mean = [sum(r[i] for r in rows) / k for i in (1, 2, 3)]
            lines.append(
                f"| {w} | {lo}–{min(hi, n_trials)} | {k} | {mean[0]:.2f} | {mean[1]:.1f} | "
                f"{mean[2]:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="database URL (part 1 runs only with it)")
    parser.add_argument("--workers", type=int, nargs="*", default=[8, 32, 64])
    parser.add_argument("--modes", nargs="*", default=["direct", "proxy"])
    parser.add_argument("--budget", type=int, default=160, help="trials per run")
    parser.add_argument("--proxy-threads", type=int, default=10)
    parser.add_argument("--reads", action="store_true", help="run part 2")
    parser.add_argument("--reads-trials", type=int, default=300)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.postgres:
        print(
            "| workers | storage | trials | trials/s | peak DB connections | worker exits | "
            "storage errors retried (too many clients) | wall s |"
        )
        print("|---:|---|---:|---:|---:|---|---:|---:|")
        for n in args.workers:
            for mode in args.modes:
                r = run_workers(args.postgres, n, mode, args.budget, args.proxy_threads)
                exits = ", ".join(f"{c}: {k}" for c, k in sorted(r["exit_codes"].items()))
                label = "PostgreSQL" if mode == "direct" else f"proxy ({args.proxy_threads})"
                print(
                    f"| {n} | {label} | {r['trials']} | {r['trials_per_s']:.2f} | "
                    f"{r['peak_connections']} | {exits} | {r['retried_errors']} "
                    f"({r['too_many_clients']}) | {r['wall_s']:.0f} |",
                    flush=True,
                )
                left = {s: k for s, k in r["states"].items() if s not in ("COMPLETE", "PRUNED")}
                if left:
                    print(f"  trials not finished: {left}", flush=True)
    if args.reads:
        print()
        print(reads_table(args.reads_trials, (1, 8, 64)), flush=True)


if __name__ == "__main__":
    main()
