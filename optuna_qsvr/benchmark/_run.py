"""Running a benchmark: every method on the same seeded configuration sequences.

For every seed, the table's configurations are shuffled once (``numpy.random.default_rng``)
and every method replays the same sequence, so the methods differ only in what they prune.
Each (method, seed) pair is one in-memory study run by :func:`replay_async` on ``n_workers``
simulated asynchronous workers; the pairs run in a process pool.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna

from optuna_qsvr.benchmark._methods import BenchmarkError, check_methods, make_pruner
from optuna_qsvr.benchmark._replay import replay_async
from optuna_qsvr.benchmark._table import CurveTable


def config_sequence(table: CurveTable, seed: int, n_trials: int) -> list[str]:
    """The configurations of trials ``0 .. n_trials - 1`` for ``seed``, shared by all methods.

    Args:
        table:
            The table.
        seed:
            Seed of the permutation.
        n_trials:
            Number of trials, capped at the number of configurations.
    """
    order = np.random.default_rng(seed).permutation(len(table.configs))
    return [table.configs[i] for i in order[: min(n_trials, len(table.configs))]]


def _fit_stats(study: optuna.study.Study) -> tuple[int, float]:
    # Imported on use: importing optuna_qsvr.benchmark needs no part of the report.
    from optuna_qsvr.report import fit_records

    records = fit_records(study)
    # A record without a time (a predictor loaded, not fitted) costs nothing here.
    return len(records), float(sum(r.get("seconds") or 0.0 for r in records))


def run_one(
    table: CurveTable,
    method: str,
    seed: int,
    *,
    direction: str,
    n_trials: int = 150,
    n_workers: int = 1,
    reduction_factor: int = 3,
    swift_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Replay one seed's configuration sequence under one method.

    Args:
        table:
            The recorded curves.
        method:
            One of :data:`METHODS`.
        seed:
            Seed of the configuration sequence (and of the unused random sampler).
        direction:
            ``"minimize"`` or ``"maximize"``.
        n_trials:
            Trials per study, capped at the table's size.
        n_workers:
            Simulated asynchronous workers.
        reduction_factor:
            ``eta`` of the successive-halving methods.
        swift_options:
            Extra keyword arguments of ``SwiftHyperbandPruner`` for the swift methods.

    Returns:
        A JSON-ready summary: epochs, best final, regret, pruned trials, predictor fits,
        wall time, the configuration sequence and the best-final trajectory.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sequence = config_sequence(table, seed, n_trials)
    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        # Hyperband assigns brackets by hashing the study name: one name per seed gives every
        # method the same brackets, and runs are reproducible.
        study_name=f"replay-seed{seed}",
        direction=direction,
        # Parameters come from the enqueued configuration; the sampler is never consulted.
        sampler=optuna.samplers.RandomSampler(seed=seed),
        pruner=make_pruner(
            method,
            max_resource=table.max_step,
            reduction_factor=reduction_factor,
            swift_options=swift_options,
            table=table,
        ),
    )
    began = time.perf_counter()
    result = replay_async(study, table, sequence, n_workers=n_workers)
    wall = time.perf_counter() - began
    n_fits, fit_seconds = _fit_stats(study)
    best = result.best_final
    table_best = table.best_final(direction)
    regret = best - table_best if direction == "minimize" else table_best - best
    return {
        "method": method,
        "seed": seed,
        "epochs": result.epochs,
        "best_final": None if math.isnan(best) else best,
        "regret": None if math.isnan(regret) else regret,
        "n_trials": len(result.trials),
        "n_pruned": result.n_pruned,
        "n_complete": result.n_complete,
        "n_fits": n_fits,
        "fit_seconds": fit_seconds,
        "wall_seconds": wall,
        "makespan": result.makespan,
        # The configurations the trials actually replayed, by trial number.
        "sequence": [t.config for t in result.trials],
        "trajectory": [list(p) for p in result.trajectory()],
    }


_worker_table: CurveTable | None = None


def _init_worker(table: CurveTable) -> None:
    global _worker_table
    _worker_table = table


def _run_in_worker(method: str, seed: int, options: dict[str, Any]) -> dict[str, Any]:
    assert _worker_table is not None
    return run_one(_worker_table, method, seed, **options)


def run_benchmark(
    table: CurveTable,
    methods: Sequence[str],
    seeds: Sequence[int],
    *,
    direction: str,
    n_trials: int = 150,
    n_workers: int = 1,
    reduction_factor: int = 3,
    processes: int = 2,
    progress: bool = True,
    swift_options: dict[str, Any] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Run every method on every seed; returns per method the :func:`run_one` results by seed.

    Args:
        table:
            The recorded curves.
        methods:
            Names from :data:`METHODS`.
        seeds:
            One configuration sequence per seed.
        direction:
            ``"minimize"`` or ``"maximize"``.
        n_trials:
            Trials per study.
        n_workers:
            Simulated asynchronous workers per study.
        reduction_factor:
            ``eta`` of the successive-halving methods.
        processes:
            Size of the process pool; 1 runs everything in this process.
        progress:
            Show a progress bar on stderr.
        swift_options:
            Extra keyword arguments of ``SwiftHyperbandPruner`` for the swift methods.
    """
    check_methods(methods)
    if direction not in ("minimize", "maximize"):
        raise BenchmarkError(f"direction must be minimize or maximize, got {direction!r}")
    if n_workers < 1 or processes < 1 or n_trials < 1 or reduction_factor < 2:
        raise BenchmarkError(
            f"need workers >= 1, processes >= 1, n_trials >= 1 and reduction factor >= 2; got "
            f"{n_workers}, {processes}, {n_trials}, {reduction_factor}"
        )
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    options = {
        "swift_options": swift_options,
        "direction": direction,
        "n_trials": n_trials,
        "n_workers": n_workers,
        "reduction_factor": reduction_factor,
    }
    # Slow methods first, so the pool does not end on one long study.
    tasks = [(m, s) for m in sorted(methods, key=_cost_rank) for s in seeds]
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not progress,
        transient=False,
    )
    with bar:
        task_id = bar.add_task("replaying", total=len(tasks))

        def done(result: dict[str, Any]) -> None:
            results[result["method"]].append(result)
            bar.update(task_id, advance=1, description=f"{result['method']} seed {result['seed']}")

        if processes == 1:
            for method, seed in tasks:
                done(run_one(table, method, seed, **options))
        else:
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(
                max_workers=processes, initializer=_init_worker, initargs=(table,)
            ) as pool:
                futures = [pool.submit(_run_in_worker, m, s, options) for m, s in tasks]
                for future in as_completed(futures):
                    done(future.result())
    for runs in results.values():
        runs.sort(key=lambda r: r["seed"])
    return results


def _cost_rank(method: str) -> int:
    return {"swift-qsvr": 0, "swift-svr": 1, "none": 2}.get(method, 3)
