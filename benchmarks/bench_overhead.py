"""Pruner overhead per ``should_prune`` and study throughput with many workers.

For each storage (SQLite, PostgreSQL) and study size (trials already finished), new trials
report 27 epochs of a learning curve and ask ``should_prune`` after each; the time of each
call is measured in every worker process. Swift-Hyperband (SVR) is compared with Optuna's
HyperbandPruner on identical studies. Throughput: trials per second of the replay worker
(no training time) against the number of workers.

    python benchmarks/bench_overhead.py --sizes 100 1000 10000 --workers 1 8 \\
        --postgres postgresql+psycopg://user:password@127.0.0.1/db
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import statistics
import tempfile
import time
import uuid

R = 27


def _curve(i: int) -> list[float]:
    rate, floor = 0.03 + (i * 37 % 50) / 100, (i * 13 % 30) / 100
    return [floor + math.exp(-rate * s) for s in range(1, R + 1)]


def _pruner(kind: str):
    import optuna

    from optuna_qsvr import SwiftHyperbandPruner

    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=R, reduction_factor=3)
    return SwiftHyperbandPruner(min_resource=1, max_resource=R, reduction_factor=3)


def _populate(url: str, name: str, n: int) -> None:
    """``n`` finished trials with whole or truncated curves, inserted in bulk."""
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(storage=url, study_name=name)
    batch = []
    for i in range(n):
        curve = _curve(i)
        # Like a Hyperband study: most trials stop early, a few run to the end.
        last = R if i % 9 == 0 else (1, 3, 9)[i % 3]
        values = {s: v for s, v in enumerate(curve[:last], start=1)}
        if last == R:
            batch.append(create_trial(value=curve[-1], intermediate_values=values))
        else:
            batch.append(create_trial(state=TrialState.PRUNED, intermediate_values=values))
        if len(batch) == 500:
            study.add_trials(batch)
            batch = []
    study.add_trials(batch)


def _measure(
    url: str, name: str, kind: str, n_trials: int, warmup: int, offset: int, out: mp.Queue
) -> None:
    """Run ``warmup`` + ``n_trials`` trials, timing every ``should_prune``; the warm-up
    trials' calls are sent apart (a new process reads the study and the stored models)."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(storage=url, study_name=name, pruner=_pruner(kind))
    # A call that reads the study's trials is a decision (both pruners read them through
    # get_all_trials only when they compare the trial with others); the rest return at once.
    storage, reads = study._storage, [0]
    read_all = storage.get_all_trials

    def counted(*args, **kwargs):
        reads[0] += 1
        return read_all(*args, **kwargs)

    storage.get_all_trials = counted
    first: list[float] = []
    times: list[tuple[float, bool]] = []
    per_trial: list[float] = []
    for i in range(warmup + n_trials):
        trial = study.ask()
        pruned, spent = False, 0.0
        for step, v in enumerate(_curve(offset + i), start=1):
            trial.report(v, step)
            before = reads[0]
            start = time.perf_counter()
            pruned = step < R and trial.should_prune()
            took = time.perf_counter() - start
            if i < warmup:
                first.append(took)
            else:
                times.append((took, reads[0] > before))
                spent += took
            if pruned:
                break
        if i >= warmup:
            per_trial.append(spent)
        study.tell(trial, None if pruned else v, state=TrialState.PRUNED if pruned else None)
    out.put((first, times, per_trial))


def overhead(
    url: str, name: str, kind: str, size: int, workers: int, n_trials: int, warmup: int = 0
) -> dict:
    queue: mp.Queue = mp.Queue()
    procs = [
        mp.Process(
            target=_measure,
            args=(url, name, kind, n_trials, warmup, 100_000 + w * 1000, queue),
        )
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    parts = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    first = [t for f, _, _ in parts for t in f]
    times = [t for _, ts, _ in parts for t, _ in ts]
    decisions = [t for _, ts, _ in parts for t, read in ts if read]
    per_trial = [t for _, _, pt in parts for t in pt]
    return {
        "pruner": kind,
        "trials_in_study": size,
        "workers": workers,
        "calls": len(times),
        "mean_ms": 1e3 * statistics.mean(times),
        "median_ms": 1e3 * statistics.median(times),
        "p95_ms": 1e3 * sorted(times)[int(0.95 * len(times))],
        "decisions": len(decisions),
        "decision_mean_ms": 1e3 * statistics.mean(decisions) if decisions else None,
        "trials": len(per_trial),
        "per_trial_ms": 1e3 * statistics.mean(per_trial),
        "warmup_calls": len(first),
        "warmup_mean_ms": 1e3 * statistics.mean(first) if first else None,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def throughput(url: str, curves: str, workers: int, budget: int) -> dict:
    import subprocess
    import sys

    name = f"throughput-{uuid.uuid4().hex[:8]}"
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
        "maximize",
        "--budget",
        str(budget),
        "--log-level",
        "WARNING",
    ]
    start = time.perf_counter()
    procs = [subprocess.Popen([*cmd, "--seed", str(w)]) for w in range(workers)]
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - start
    assert codes == [0] * workers, codes
    return {"workers": workers, "trials": budget, "seconds": wall, "trials_per_s": budget / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--trials", type=int, default=10, help="measured trials per worker")
    parser.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="trials per worker run first and reported apart: a new process reads the whole "
        "study and the stored models at its first decisions",
    )
    parser.add_argument("--postgres", default=None, help="PostgreSQL URL (skipped if absent)")
    parser.add_argument("--curves", default="optuna_qsvr/benchmark/curves/cnn_digits.csv.gz")
    parser.add_argument("--throughput-workers", type=int, nargs="*", default=[1, 2, 4, 8])
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    storages = {"sqlite": f"sqlite:///{tmp}/overhead.db"}
    if args.postgres:
        storages["postgresql"] = args.postgres
    rows, tput = [], []
    for label, url in storages.items():
        for size in args.sizes:
            # One study per size; both pruners then run their trials on it in turn.
            name = f"overhead-{size}-{uuid.uuid4().hex[:8]}"
            _populate(url, name, size)
            for workers in args.workers:
                for kind in ("hyperband", "swift-svr"):
                    row = {
                        "storage": label,
                        **overhead(url, name, kind, size, workers, args.trials, args.warmup),
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        for workers in args.throughput_workers:
            row = {"storage": label, **throughput(url, args.curves, workers, args.budget)}
            tput.append(row)
            print(json.dumps(row), flush=True)
    print(
        "\n| storage | trials in study | workers | per call ms: Hyperband / Swift | "
        "per decision ms: Hyperband / Swift | decisions per trial: Hyperband / Swift | "
        "per trial ms: Hyperband / Swift | warm-up per call ms: Hyperband / Swift |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for i in range(0, len(rows), 2):
        hb, sw = rows[i], rows[i + 1]
        warm = (
            f"{hb['warmup_mean_ms']:.1f} / {sw['warmup_mean_ms']:.1f}"
            if sw["warmup_calls"] and hb["warmup_calls"]
            else "-"
        )
        print(
            f"| {hb['storage']} | {hb['trials_in_study']:,} | {hb['workers']} | "
            f"{hb['mean_ms']:.1f} / {sw['mean_ms']:.1f} | "
            f"{_ms(hb['decision_mean_ms'])} / {_ms(sw['decision_mean_ms'])} | "
            f"{hb['decisions'] / hb['trials']:.1f} / {sw['decisions'] / sw['trials']:.1f} | "
            f"{hb['per_trial_ms']:.0f} / {sw['per_trial_ms']:.0f} | {warm} |"
        )
    print("\n| storage | workers | trials/s |")
    print("|---|---|---|")
    for r in tput:
        print(f"| {r['storage']} | {r['workers']} | {r['trials_per_s']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"overhead": rows, "throughput": tput}, f, indent=1)


if __name__ == "__main__":
    main()
