"""Running a benchmark: every method on the same seeded configuration sequences.

For every seed, the table's configurations are shuffled once (``numpy.random.default_rng``)
and every method replays the same sequence, so the methods differ only in what they prune
(``--sampler random``, the default; with ``tpe`` or ``swift`` a real sampler chooses, see
:class:`~optuna_qsvr.benchmark.TableSampler`). Each (method, seed) pair is one in-memory
study run by :func:`replay_async` on ``n_workers`` simulated asynchronous workers with the
seed's :func:`epoch_clock`; the pairs run in a process pool.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna

from optuna_qsvr.benchmark._methods import BenchmarkError, check_methods, make_pruner
from optuna_qsvr.benchmark._replay import EPOCH_TIME_MODES, epoch_clock, replay_async
from optuna_qsvr.benchmark._samplers import SAMPLERS, make_sampler
from optuna_qsvr.benchmark._summary import worst_regret
from optuna_qsvr.benchmark._table import CurveTable

# A configuration is "top 1%" when its final value is at least as good as that of the
# ceil(1% of the table)-th best configuration.
TOP_FRACTION = 0.01


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


def top_threshold(table: CurveTable, direction: str, fraction: float = TOP_FRACTION) -> float:
    """The final value a configuration must reach to be in the table's top ``fraction``.

    Args:
        table:
            The table.
        direction:
            ``"minimize"`` or ``"maximize"``.
        fraction:
            The top fraction; at least one configuration is in it.
    """
    k = max(1, math.ceil(fraction * len(table)))
    finals = sorted(table.finals.values(), reverse=direction == "maximize")
    return finals[k - 1]


def fewer_trials_regret(
    table: CurveTable, direction: str, sequence: Sequence[str], epochs: int
) -> float:
    """The regret of a pruner's curve-blind rival: random search that spends ``epochs`` on
    fewer trials, each trained to the end, i.e. the best of the first ``epochs // max_step``
    configurations of ``sequence``; the table's largest regret when not one fits (as a seed
    without a fully trained trial counts).

    Args:
        table:
            The table.
        direction:
            ``"minimize"`` or ``"maximize"``.
        sequence:
            Configurations in the order they would run (a seed's :func:`config_sequence`).
        epochs:
            The epochs to spend.
    """
    sign = 1.0 if direction == "minimize" else -1.0
    best = table.best_final(direction)
    trained = sequence[: int(epochs) // table.max_step]
    return min(
        (sign * (table.finals[c] - best) for c in trained),
        default=worst_regret(table, direction),
    )


def _fit_stats(study: optuna.study.Study) -> tuple[int, float, int]:
    # Imported on use: importing optuna_qsvr.benchmark needs no part of the report.
    from optuna_qsvr.report import fit_records

    records = fit_records(study)
    # A header describes the latest fit of its key (version v replaced v - 1 refits): count
    # every fit, and assume each refit called the annealer as often as the latest one did.
    versions = [int(r.get("version") or 1) for r in records]
    calls = sum(
        int(r.get("annealer_calls") or 0) * v for r, v in zip(records, versions, strict=True)
    )
    # A record without a time (a predictor loaded, not fitted) costs nothing here.
    return sum(versions), float(sum(r.get("seconds") or 0.0 for r in records)), calls


def run_one(
    table: CurveTable,
    method: str,
    seed: int,
    *,
    direction: str,
    n_trials: int | None = 150,
    n_workers: int = 1,
    reduction_factor: int = 3,
    swift_options: Mapping[str, Any] | None = None,
    sampler: str = "random",
    epoch_time: str = "auto",
    budget: int | None = None,
    option_sets: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Replay one seed's configurations under one method.

    Args:
        table:
            The recorded curves.
        method:
            A method name (see :func:`make_pruner`).
        seed:
            Seed of the configuration sequence, of the sampler and of drawn epoch times.
        direction:
            ``"minimize"`` or ``"maximize"``.
        n_trials:
            Trials per study, capped at the table's size; ``None``: every configuration.
        n_workers:
            Simulated asynchronous workers.
        reduction_factor:
            ``eta`` of the successive-halving methods.
        swift_options:
            Extra keyword arguments of ``SwiftHyperbandPruner`` for ``swift-svr`` and
            ``swift-qsvr``.
        sampler:
            ``"random"`` (the seeded permutation), ``"tpe"`` or ``"swift"`` (see
            :func:`~optuna_qsvr.benchmark.make_sampler`).
        epoch_time:
            How long epochs take, a mode of :func:`epoch_clock`.
        budget:
            Stop at this many epochs (all workers together); ``None``: no limit.
        option_sets:
            Named option sets for ``swift:NAME`` besides the built-in ones.

    Returns:
        A JSON-ready summary: epochs, best final, regret, whether the table's best and a
        top-1% configuration were found, pruned and cut trials, predictor fits, annealer
        calls, wall time, makespan, the replayed configurations and the best-final
        trajectory.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    n = len(table) if n_trials is None else min(n_trials, len(table))
    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        # Hyperband assigns brackets by hashing the study name: one name per seed gives every
        # method the same brackets, and runs are reproducible.
        study_name=f"replay-seed{seed}",
        direction=direction,
        # In the random mode parameters come from the enqueued configuration and the sampler
        # is never consulted.
        sampler=make_sampler(sampler, seed, table),
        pruner=make_pruner(
            method,
            max_resource=table.max_step,
            reduction_factor=reduction_factor,
            swift_options=swift_options,
            table=table,
            option_sets=option_sets,
        ),
    )
    sequence = config_sequence(table, seed, n) if sampler == "random" else None
    began = time.perf_counter()
    result = replay_async(
        study,
        table,
        sequence,
        n_workers=n_workers,
        clock=epoch_clock(table, epoch_time, seed),
        budget=budget,
        n_trials=n,
    )
    wall = time.perf_counter() - began
    n_fits, fit_seconds, annealer_calls = _fit_stats(study)
    best = result.best_final
    table_best = table.best_final(direction)
    regret = best - table_best if direction == "minimize" else table_best - best
    sign = 1.0 if direction == "minimize" else -1.0
    found = not math.isnan(best)
    return {
        "method": method,
        "seed": seed,
        "epochs": result.epochs,
        "best_final": best if found else None,
        "regret": regret if found else None,
        "found_best": found and best == table_best,
        "top1": found and sign * best <= sign * top_threshold(table, direction),
        "n_trials": len(result.trials),
        "n_pruned": result.n_pruned,
        "n_complete": result.n_complete,
        "n_cut": result.n_cut,
        "n_fits": n_fits,
        "fit_seconds": fit_seconds,
        "annealer_calls": annealer_calls,
        "wall_seconds": wall,
        "makespan": float(result.makespan),
        # Defined for the seeded permutation only: a sampler's choices depend on the trials.
        "fewer_trials_regret": (
            fewer_trials_regret(table, direction, sequence, result.epochs)
            if sequence is not None
            else None
        ),
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
    n_trials: int | None = 150,
    n_workers: int = 1,
    reduction_factor: int = 3,
    processes: int | None = None,
    progress: bool = True,
    swift_options: Mapping[str, Any] | None = None,
    sampler: str = "random",
    epoch_time: str = "auto",
    budget: int | None = None,
    option_sets: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Run every method on every seed; returns per method the :func:`run_one` results by seed.

    Args:
        table:
            The recorded curves.
        methods:
            Method names (see :func:`make_pruner`).
        seeds:
            One configuration sequence per seed.
        direction:
            ``"minimize"`` or ``"maximize"``.
        n_trials:
            Trials per study; ``None``: every configuration.
        n_workers:
            Simulated asynchronous workers per study.
        reduction_factor:
            ``eta`` of the successive-halving methods.
        processes:
            Size of the process pool; 1 runs everything in this process, ``None`` uses every
            CPU.
        progress:
            Show a progress bar on stderr.
        swift_options:
            Extra keyword arguments of ``SwiftHyperbandPruner`` for ``swift-svr`` and
            ``swift-qsvr``.
        sampler:
            ``"random"``, ``"tpe"`` or ``"swift"`` (see :func:`run_one`).
        epoch_time:
            How long epochs take, a mode of :func:`epoch_clock`.
        budget:
            Stop every method at this many epochs; ``None``: no limit.
        option_sets:
            Named option sets for ``swift:NAME`` besides the built-in ones.
    """
    check_methods(methods, option_sets)
    if direction not in ("minimize", "maximize"):
        raise BenchmarkError(f"direction must be minimize or maximize, got {direction!r}")
    if sampler not in SAMPLERS:
        raise BenchmarkError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if epoch_time not in EPOCH_TIME_MODES:
        raise BenchmarkError(
            f"epoch time must be one of {', '.join(EPOCH_TIME_MODES)}, got {epoch_time!r}"
        )
    if epoch_time == "table" and not table.has_times:
        raise BenchmarkError(f"{table.source} has no 'time' column for --epoch-time table")
    processes = processes or os.cpu_count() or 1
    if (
        n_workers < 1
        or processes < 1
        or (n_trials is not None and n_trials < 1)
        or reduction_factor < 2
        or (budget is not None and budget < 1)
    ):
        raise BenchmarkError(
            f"need workers >= 1, processes >= 1, n_trials >= 1, reduction factor >= 2 and "
            f"budget >= 1; got {n_workers}, {processes}, {n_trials}, {reduction_factor}, "
            f"{budget}"
        )
    # Build every pruner once here, so that a rejected option fails before any work.
    for method in methods:
        make_pruner(
            method,
            max_resource=table.max_step,
            reduction_factor=reduction_factor,
            swift_options=swift_options,
            table=table,
            option_sets=option_sets,
        )
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    options = {
        "swift_options": dict(swift_options) if swift_options else None,
        "direction": direction,
        "n_trials": n_trials,
        "n_workers": n_workers,
        "reduction_factor": reduction_factor,
        "sampler": sampler,
        "epoch_time": epoch_time,
        "budget": budget,
        "option_sets": {k: dict(v) for k, v in (option_sets or {}).items()} or None,
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

        if processes == 1 or len(tasks) == 1:
            for method, seed in tasks:
                done(run_one(table, method, seed, **options))
        else:
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(
                max_workers=min(processes, len(tasks)),
                initializer=_init_worker,
                initargs=(table,),
            ) as pool:
                futures = [pool.submit(_run_in_worker, m, s, options) for m, s in tasks]
                for future in as_completed(futures):
                    done(future.result())
    for runs in results.values():
        runs.sort(key=lambda r: r["seed"])
    return results


def _cost_rank(method: str) -> int:
    if method.startswith("swift:"):
        return 1
    return {"swift-qsvr": 0, "swift-svr": 1, "none": 2}.get(method, 3)
