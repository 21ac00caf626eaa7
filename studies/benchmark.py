"""Compare pruners by replaying a learning-curve table through real Optuna studies.

For every seed, the table's configurations are shuffled once (``numpy.random.default_rng``)
and every method replays the same sequence, so the methods differ only in what they prune.
Each (method, seed) pair is one in-memory study run by :func:`studies.replay.replay_async` on
``n_workers`` simulated asynchronous workers; the pairs run in a process pool.

Methods:

* ``none``: no pruning, every trial runs to the table's last step.
* ``median``, ``sha``, ``hyperband``: Optuna's pruners with ``min_resource=1``,
  ``max_resource`` the table's last step and the chosen reduction factor.
* ``swift-svr``, ``swift-qsvr``: :class:`optuna_qsvr.SwiftHyperbandPruner` with the classical
  or the quantum-annealed predictor.
* ``oracle``: :class:`OraclePruner`, which knows every final value and runs only the trials
  that improve on the trials before them: the fewest epochs that keep no-pruning's
  best-so-far value at every point of the run.

Run it as ``optuna-qsvr benchmark --curves FILE --direction minimize``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from studies.replay import CurveTable

METHODS = ("none", "median", "sha", "hyperband", "swift-svr", "swift-qsvr", "oracle")
SWIFT_METHODS = ("swift-svr", "swift-qsvr")
# Epochs are reported relative to this method when it is part of the run.
REFERENCE_METHOD = "hyperband"


class BenchmarkError(Exception):
    """A benchmark that cannot run as asked; the message says why."""


def _optuna_pruners() -> Any:
    import optuna

    class OraclePruner(optuna.pruners.BasePruner):
        """Prune with hindsight: a trial runs to the end only if it will set a new best.

        The oracle knows the final value of every configuration of the table. At a trial's
        first report it compares that trial's final value with the best final value among
        the trials started before it (lower trial numbers) and prunes it unless it is
        strictly better. Every improvement of the no-pruning run is therefore kept and
        every other trial costs one report, which makes its epochs a lower bound for any
        pruner that keeps the same best-so-far value at every point of the same sequence.
        It is not the bound for the final best alone: a pruner may stop an early record
        whose value a later trial beats, and spend fewer epochs than the oracle.

        Args:
            finals:
                Final value per configuration, as in :attr:`studies.replay.CurveTable.finals`.
                Trials name their configuration in the ``config`` user attribute, which
                :func:`studies.replay.enqueue_config` sets.
        """

        def __init__(self, finals: Mapping[str, float]) -> None:
            self._finals = dict(finals)

        def prune(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> bool:
            if len(trial.intermediate_values) != 1:
                return False
            sign = 1.0 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1.0
            earlier = [
                sign * self._final_of(t)
                for t in study.get_trials(deepcopy=False)
                if t.number < trial.number
            ]
            return bool(earlier) and sign * self._final_of(trial) >= min(earlier)

        def _final_of(self, trial: optuna.trial.FrozenTrial) -> float:
            from studies.replay import CONFIG_ATTR

            config = trial.user_attrs.get(CONFIG_ATTR)
            if config not in self._finals:
                raise RuntimeError(
                    f"OraclePruner: trial {trial.number} has no known configuration "
                    f"({CONFIG_ATTR}={config!r}); enqueue trials with studies.replay."
                    "enqueue_config"
                )
            return self._finals[config]

    return OraclePruner


def __getattr__(name: str) -> Any:
    # The oracle subclasses an Optuna class; defining it on first use keeps the module (and
    # ``optuna-qsvr --help``) free of the Optuna import.
    if name == "OraclePruner":
        cls = _optuna_pruners()
        globals()["OraclePruner"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_methods(methods: Sequence[str]) -> None:
    """Raise :class:`BenchmarkError` for an unknown method or a Swift method not installed."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise BenchmarkError(
            f"unknown method(s) {', '.join(map(repr, unknown))}; choose from {', '.join(METHODS)}"
        )
    if not methods:
        raise BenchmarkError("no method given")
    if any(m in SWIFT_METHODS for m in methods):
        _swift_pruner_class()


def _swift_pruner_class() -> type:
    try:
        from optuna_qsvr import SwiftHyperbandPruner
    except (ImportError, AttributeError) as e:
        raise BenchmarkError(
            "the swift-svr and swift-qsvr methods need optuna_qsvr.SwiftHyperbandPruner, which "
            f"cannot be imported here ({type(e).__name__}: {e}); run the other methods with "
            f"--methods {','.join(m for m in METHODS if m not in SWIFT_METHODS)}"
        ) from e
    return SwiftHyperbandPruner


def make_pruner(
    method: str,
    table: CurveTable,
    *,
    reduction_factor: int = 3,
    swift_options: dict[str, Any] | None = None,
) -> optuna.pruners.BasePruner:
    """The pruner of a benchmark method, sized to the table's epochs.

    Args:
        method:
            One of :data:`METHODS`.
        table:
            The table replayed; its last step is the maximum resource.
        reduction_factor:
            ``eta`` of the successive-halving methods.
        swift_options:
            Extra keyword arguments of ``SwiftHyperbandPruner`` for the swift methods.
    """
    check_methods([method])
    if method == "oracle":
        from studies import benchmark

        return benchmark.OraclePruner(table.finals)
    if method in SWIFT_METHODS:
        swift = _swift_pruner_class()
        return swift(
            min_resource=1,
            max_resource=table.max_step,
            reduction_factor=reduction_factor,
            predictor=method.removeprefix("swift-"),
            **(swift_options or {}),
        )
    # The studies' own command lines build these; sharing the factory keeps one definition.
    from studies._common import make_pruner as make_study_pruner

    return make_study_pruner(
        method, max_resource=table.max_step, min_resource=1, reduction_factor=reduction_factor
    )


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
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(table.configs))
    return [table.configs[i] for i in order[: min(n_trials, len(table.configs))]]


def _fit_stats(study: optuna.study.Study) -> tuple[int | None, float | None]:
    try:
        from optuna_qsvr.pruners import fit_records
    except (ImportError, AttributeError):
        return None, None
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

    Returns:
        A JSON-ready summary: epochs, best final, regret, pruned trials, predictor fits,
        wall time, the configuration sequence and the best-final trajectory.
    """
    import optuna

    from studies.replay import replay_async

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
            method, table, reduction_factor=reduction_factor, swift_options=swift_options
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


def _quartiles(values: Sequence[float | None]) -> tuple[float, float, float] | None:
    import numpy as np

    present = [v for v in values if v is not None]
    if not present:
        return None
    q1, median, q3 = np.percentile(present, [25, 50, 75])
    return float(median), float(q1), float(q3)


def _fmt(values: Sequence[float | None], spec: str) -> str:
    stats = _quartiles(values)
    if stats is None:
        return "-"
    median, q1, q3 = stats
    missing = sum(v is None for v in values)
    text = f"{median:{spec}} [{q1:{spec}}–{q3:{spec}}]"
    # A seed where no trial completed has no best value; say how many, never hide them.
    return text + (f" ({missing} none)" if missing else "")


def summarize(results: Mapping[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per method, the median and quartiles of each measure over seeds."""
    summary: dict[str, dict[str, Any]] = {}
    for method, runs in results.items():
        summary[method] = {
            key: _quartiles([r[key] for r in runs])
            for key in (
                "epochs",
                "best_final",
                "regret",
                "n_pruned",
                "n_fits",
                "fit_seconds",
                "wall_seconds",
            )
        }
    return summary


def render_table(
    results: Mapping[str, list[dict[str, Any]]], table: CurveTable, direction: str, **header: Any
) -> Any:
    """A :class:`rich.table.Table` with one row per method: median [IQR] over seeds."""
    from rich.table import Table

    summary = summarize(results)
    reference = next((m for m in (REFERENCE_METHOD, "none") if m in summary), None)
    ref_epochs = summary[reference]["epochs"][0] if reference else None
    n_seeds = max((len(runs) for runs in results.values()), default=0)
    out = Table(
        title=(
            f"{os.path.basename(table.source)}: {len(table)} configs, {table.max_step} epochs, "
            f"{direction}, best final {table.best_final(direction):.5g}; median [IQR] over "
            f"{n_seeds} seeds" + "".join(f", {k} {v}" for k, v in header.items())
        ),
    )
    out.add_column("method")
    for column in (
        "epochs",
        f"vs {reference}" if reference else "vs -",
        "best final",
        "regret",
        "pruned",
    ):
        out.add_column(column, justify="right")
    for column in ("fits", "fit s", "wall s"):
        out.add_column(column, justify="right")
    for method, runs in results.items():
        epochs = summary[method]["epochs"]
        relative = f"x{epochs[0] / ref_epochs:.2f}" if ref_epochs else "-"
        out.add_row(
            method,
            _fmt([r["epochs"] for r in runs], ".0f"),
            relative,
            _fmt([r["best_final"] for r in runs], ".4g"),
            _fmt([r["regret"] for r in runs], ".3g"),
            _fmt([r["n_pruned"] for r in runs], ".0f"),
            _fmt([r["n_fits"] for r in runs], ".0f"),
            _fmt([r["fit_seconds"] for r in runs], ".2f"),
            _fmt([r["wall_seconds"] for r in runs], ".2f"),
        )
    return out


def median_trajectory(
    runs: Sequence[Mapping[str, Any]], direction: str, grid: Sequence[int]
) -> list[float]:
    """Median over seeds of the best final value reached within each epoch budget of ``grid``.

    A seed that has not completed a trial yet counts as the worst value, so the median is
    undefined (NaN) until at least half of the seeds have one. After a seed's run ends its
    best value stays.
    """
    import numpy as np

    worst = math.inf if direction == "minimize" else -math.inf
    curves = np.full((len(runs), len(grid)), worst)
    budget = np.asarray(grid)
    for i, run in enumerate(runs):
        for spent, best in run["trajectory"]:
            curves[i, budget >= spent] = best
    # An infinite median means half the seeds or more have no completed trial yet.
    median = np.median(curves, axis=0)
    return [float(v) if math.isfinite(v) else math.nan for v in median]


def plot(
    results: Mapping[str, list[dict[str, Any]]],
    table: CurveTable,
    direction: str,
    path: str,
) -> None:
    """Save the median best final value against epochs spent, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, runs in results.items():
        end = max(r["epochs"] for r in runs)
        grid = np.unique(np.geomspace(1, max(end, 1), 400).astype(int))
        ax.step(grid, median_trajectory(runs, direction, grid), where="post", label=method)
    ax.axhline(
        table.best_final(direction), color="grey", linestyle="--", linewidth=1, label="table best"
    )
    ax.set_xscale("log")
    ax.set_xlabel("epochs spent (all workers)")
    ax.set_ylabel(f"best final value ({direction})")
    ax.set_title(
        f"{os.path.basename(table.source)}: median over {len(next(iter(results.values())))} seeds"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def to_json(
    results: Mapping[str, list[dict[str, Any]]], table: CurveTable, options: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Per method name ``{"epochs": [...], "best_final": [...], ...}``, one entry per seed."""
    out: dict[str, dict[str, Any]] = {}
    for method, runs in results.items():
        entry: dict[str, Any] = {
            key: [r[key] for r in runs]
            for key in (
                "epochs",
                "best_final",
                "seed",
                "regret",
                "n_pruned",
                "n_complete",
                "n_trials",
                "n_fits",
                "fit_seconds",
                "wall_seconds",
                "makespan",
                "trajectory",
            )
        }
        entry["seeds"] = entry.pop("seed")
        entry["table"] = table.source
        entry["table_best"] = table.best_final(options["direction"])
        entry["max_step"] = table.max_step
        entry.update(options)
        out[method] = entry
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``optuna-qsvr benchmark`` options."""
    parser.add_argument(
        "--curves",
        required=True,
        help="learning-curve table: CSV (or .csv.gz) with columns config, step (1-based "
        "epoch), value and one param_<name> per hyperparameter",
    )
    parser.add_argument("--direction", required=True, choices=("minimize", "maximize"))
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0 .. N-1 (default 20)")
    parser.add_argument(
        "--workers", type=int, default=1, help="simulated asynchronous workers (default 1)"
    )
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated, from {','.join(METHODS)} (default all)",
    )
    parser.add_argument(
        "--n-trials", type=int, default=150, help="trials per study, capped at the table size"
    )
    parser.add_argument(
        "--eta",
        "--reduction-factor",
        dest="eta",
        type=int,
        default=3,
        help="reduction factor of sha, hyperband and swift (default 3)",
    )
    parser.add_argument(
        "--swift-options",
        default=None,
        metavar="JSON",
        help="SwiftHyperbandPruner keyword arguments, e.g. '{\"forecast_final\": true}'",
    )
    parser.add_argument("--processes", type=int, default=2, help="process pool size (default 2)")
    parser.add_argument("--json", metavar="OUT", help="write per-seed results as JSON")
    parser.add_argument("--plot", metavar="FILE", help="save best value vs epochs (PNG)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by ``args``; returns the exit status."""
    import warnings

    from rich.console import Console

    from studies.replay import CurveTable, CurveTableError

    err = Console(stderr=True)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    try:
        check_methods(methods)
        if args.seeds < 1:
            raise BenchmarkError(f"--seeds must be >= 1, got {args.seeds}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            table = CurveTable.load(args.curves)
        for w in caught:
            err.print(f"[yellow]warning:[/] {w.message}")
        began = time.perf_counter()
        results = run_benchmark(
            table,
            methods,
            range(args.seeds),
            direction=args.direction,
            n_trials=args.n_trials,
            n_workers=args.workers,
            reduction_factor=args.eta,
            processes=args.processes,
            progress=not args.no_progress,
            swift_options=json.loads(args.swift_options) if args.swift_options else None,
        )
    except (BenchmarkError, CurveTableError, OSError, json.JSONDecodeError) as e:
        print(f"optuna-qsvr benchmark: error: {e}", file=sys.stderr)
        return 2
    wall = time.perf_counter() - began
    # Piped output would otherwise be cut to 80 columns and the IQRs truncated.
    console = Console() if sys.stdout.isatty() else Console(width=220)
    console.print(
        render_table(
            results,
            table,
            args.direction,
            workers=args.workers,
            trials=min(args.n_trials, len(table)),
            eta=args.eta,
        )
    )
    print(f"wall time {wall:.1f} s on {args.processes} process(es)")
    options = {
        "direction": args.direction,
        "n_workers": args.workers,
        "reduction_factor": args.eta,
        "swift_options": args.swift_options,
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(to_json(results, table, options), f, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        plot(results, table, args.direction, args.plot)
        print(f"wrote {args.plot}")
    return 0
