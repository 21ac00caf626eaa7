"""The ``optuna-qsvr benchmark`` command: a table, methods and seeds in, results out.

Bad input (a malformed or ragged table, NaN, a single step, fewer configurations than trials,
a direction that contradicts the metric's name, an unknown method or option) ends the command
with one line on stderr and exit status 2 before any work, and nothing is written. Outputs
(``--json``, ``--plot``, ``--pareto``) are written under temporary names and renamed only
once all of them exist.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
import warnings
from typing import Any

from optuna_qsvr.benchmark._methods import METHODS, BenchmarkError, check_methods
from optuna_qsvr.benchmark._replay import EPOCH_TIME_MODES
from optuna_qsvr.benchmark._samplers import SAMPLERS
from optuna_qsvr.benchmark._table import CurveTable, CurveTableError, infer_direction

DEFAULT_TRIALS = 150


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``optuna-qsvr benchmark`` options."""
    parser.add_argument(
        "--curves",
        required=True,
        help="learning-curve table: CSV (or .csv.gz) with columns config, step (1-based "
        "epoch), value, one param_<name> per hyperparameter and optionally time (seconds per "
        "epoch) and metric; or an LCBench JSON file (.json, .json.gz)",
    )
    parser.add_argument("--dataset", help="LCBench: the dataset to read from the file")
    parser.add_argument(
        "--metric", help="LCBench: the per-epoch tag to read (default Train/val_accuracy)"
    )
    parser.add_argument(
        "--direction",
        choices=("minimize", "maximize"),
        help="default: what the table's metric name implies; required when it has none",
    )
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0 .. N-1 (default 20)")
    parser.add_argument(
        "--workers", type=int, default=1, help="simulated asynchronous workers (default 1)"
    )
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated, from {','.join(METHODS)}, i-epoch-K, swift:NAME for a named "
        "option set (paper, reference, p33, or one of --swift-set); default all of the first",
    )
    parser.add_argument(
        "--n-trials",
        type=int,
        default=None,
        help=f"trials per study (default {DEFAULT_TRIALS}, or the table's size if smaller; "
        "with --budget every configuration)",
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
        help="SwiftHyperbandPruner keyword arguments for swift-svr and swift-qsvr, e.g. "
        "'{\"forecast_final\": true}'",
    )
    parser.add_argument(
        "--swift-set",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="define the option set NAME for the method swift:NAME (repeatable); the JSON "
        "holds SwiftHyperbandPruner keyword arguments and optionally a predictor",
    )
    parser.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default="random",
        help="random: a seeded permutation of the table (default); tpe, swift: the sampler "
        "proposes, the replay runs the nearest unused configuration",
    )
    parser.add_argument(
        "--epoch-time",
        choices=EPOCH_TIME_MODES,
        default="auto",
        help="how long a configuration's epochs take: the table's time column, a seeded "
        "per-configuration draw, or equal; auto: the column if there is one, else the draw",
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        metavar="EPOCHS",
        help="stop every method after this many epochs (all workers) and compare regret there",
    )
    parser.add_argument(
        "--processes", type=int, default=None, help="process pool size (default: every CPU)"
    )
    parser.add_argument("--json", metavar="OUT", help="write per-seed results and figures")
    parser.add_argument("--plot", metavar="FILE", help="save the anytime plot (PNG)")
    parser.add_argument("--pareto", metavar="FILE", help="save the Pareto plot (PNG)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _fail(message: object) -> int:
    text = " ".join(str(message).split())
    print(f"optuna-qsvr benchmark: error: {text}", file=sys.stderr)
    return 2


def load_table(path: str, *, dataset: str | None = None, metric: str | None = None) -> Any:
    """The table at ``path``: a curve CSV (``.csv``, ``.csv.gz``) or an LCBench JSON file
    (``.json``, ``.json.gz``, read by :func:`~optuna_qsvr.benchmark.load_lcbench`)."""
    if path.endswith((".json", ".json.gz")):
        from optuna_qsvr.benchmark._lcbench import load_lcbench

        kwargs: dict[str, Any] = {"dataset": dataset}
        if metric is not None:
            kwargs["metric"] = metric
        return load_lcbench(path, **kwargs)
    if dataset is not None or metric is not None:
        raise BenchmarkError("--dataset and --metric apply to LCBench JSON files only")
    return CurveTable.load(path)


def _option_sets(specs: list[str]) -> dict[str, dict[str, Any]]:
    sets: dict[str, dict[str, Any]] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        if not sep or not name.strip():
            raise BenchmarkError(f"--swift-set wants NAME=JSON, got {spec!r}")
        options = json.loads(text)
        if not isinstance(options, dict):
            raise BenchmarkError(f"--swift-set {name}: the JSON must be an object, got {text!r}")
        sets[name.strip()] = options
    return sets


def _check_output(path: str | None, image: bool) -> None:
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise BenchmarkError(f"cannot write {path}: {folder} is not a writable directory")
    if image and importlib.util.find_spec("matplotlib") is None:
        raise BenchmarkError(f'saving {path} needs matplotlib: pip install "optuna-qsvr[plots]"')


def _temporary(path: str) -> str:
    root, ext = os.path.splitext(path)
    return f"{root}.tmp{os.getpid()}{ext}"


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by ``args``; returns the exit status."""
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    try:
        option_sets = _option_sets(args.swift_set)
        check_methods(methods, option_sets)
        swift_options = json.loads(args.swift_options) if args.swift_options else None
        if swift_options is not None and not isinstance(swift_options, dict):
            raise BenchmarkError(f"--swift-options must be a JSON object, got {swift_options!r}")
        for name, value, low in (
            ("--seeds", args.seeds, 1),
            ("--workers", args.workers, 1),
            ("--eta", args.eta, 2),
            ("--n-trials", args.n_trials, 1),
            ("--budget", args.budget, 1),
            ("--processes", args.processes, 1),
        ):
            if value is not None and value < low:
                raise BenchmarkError(f"{name} must be >= {low}, got {value}")
        for path, image in ((args.json, False), (args.plot, True), (args.pareto, True)):
            _check_output(path, image)
        with warnings.catch_warnings():
            # Configurations cut short are an error here (check_replayable), not a warning.
            warnings.simplefilter("ignore", UserWarning)
            table = load_table(args.curves, dataset=args.dataset, metric=args.metric)
        direction = args.direction or infer_direction(table.metric)
        if direction is None:
            raise BenchmarkError(
                f"{args.curves}: give --direction (minimize or maximize); the table does not "
                "name its metric" + (f" clearly ({table.metric!r})" if table.metric else "")
            )
        table.check_replayable(direction, args.n_trials)
        if args.epoch_time == "table" and not table.has_times:
            raise BenchmarkError(f"{args.curves}: --epoch-time table needs a 'time' column")
        if args.n_trials is not None:
            n_trials = args.n_trials
        elif args.budget is not None:
            n_trials = len(table)
        else:
            n_trials = min(DEFAULT_TRIALS, len(table))
    except (BenchmarkError, CurveTableError, OSError, ValueError, KeyError, ImportError) as e:
        return _fail(e)

    from rich.console import Console

    began = time.perf_counter()
    processes = args.processes or os.cpu_count() or 1
    try:
        results = _run(
            args, table, methods, direction, n_trials, processes, swift_options, option_sets
        )
    except BenchmarkError as e:
        return _fail(e)
    wall = time.perf_counter() - began

    from optuna_qsvr.benchmark._summary import render_table, time_breakdown

    unit = {"equal": "epochs", "draw": "epoch units", "table": "s"}[
        args.epoch_time if args.epoch_time != "auto" else ("table" if table.has_times else "draw")
    ]
    header = {
        "workers": args.workers,
        "trials": n_trials,
        "eta": args.eta,
        "sampler": args.sampler,
        "epoch time": args.epoch_time,
    }
    if args.budget is not None:
        header["budget"] = args.budget
    # A terminal wraps at its width; piped output is laid out for 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=80)
    console.print(render_table(results, table, direction, **header, time_unit=unit))
    console.print(
        f"wall time {wall:.1f} s on {processes} process(es); {time_breakdown(results)}",
        highlight=False,
    )
    options = {
        "direction": direction,
        "n_workers": args.workers,
        "reduction_factor": args.eta,
        "swift_options": args.swift_options,
        "swift_sets": option_sets or None,
        "trials_per_study": n_trials,
        "sampler": args.sampler,
        "epoch_time": args.epoch_time,
        "time_unit": unit,
        "budget": args.budget,
    }
    try:
        written = _write_outputs(args, results, table, direction, options, header)
    except (OSError, ValueError, ImportError) as e:
        return _fail(f"nothing written: {e}")
    for path in written:
        print(f"wrote {path}")
    return 0


def _run(
    args: argparse.Namespace,
    table: CurveTable,
    methods: list[str],
    direction: str,
    n_trials: int,
    processes: int,
    swift_options: dict[str, Any] | None,
    option_sets: dict[str, dict[str, Any]],
) -> dict[str, list[dict[str, Any]]]:
    from optuna_qsvr.benchmark._run import run_benchmark

    return run_benchmark(
        table,
        methods,
        range(args.seeds),
        direction=direction,
        n_trials=n_trials,
        n_workers=args.workers,
        reduction_factor=args.eta,
        processes=processes,
        progress=not args.no_progress and sys.stderr.isatty(),
        swift_options=swift_options,
        sampler=args.sampler,
        epoch_time=args.epoch_time,
        budget=args.budget,
        option_sets=option_sets,
    )


def _write_outputs(
    args: argparse.Namespace,
    results: dict[str, list[dict[str, Any]]],
    table: CurveTable,
    direction: str,
    options: dict[str, Any],
    header: dict[str, Any],
) -> list[str]:
    from optuna_qsvr.benchmark._plots import plot_anytime, plot_pareto
    from optuna_qsvr.benchmark._stats import dominated_by, method_figures
    from optuna_qsvr.benchmark._summary import to_json, worst_regret

    pending: list[tuple[str, str]] = []
    try:
        if args.json:
            tmp = _temporary(args.json)
            pending.append((tmp, args.json))
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(to_json(results, table, options), f, indent=1)
        if args.plot:
            tmp = _temporary(args.plot)
            pending.append((tmp, args.plot))
            plot_anytime(results, table, direction, tmp)
        if args.pareto:
            tmp = _temporary(args.pareto)
            pending.append((tmp, args.pareto))
            figures = method_figures(results, worst_regret(table, direction))
            described = ", ".join(f"{k} {v}" for k, v in header.items())
            title = (
                f"{os.path.basename(table.source)}, {len(next(iter(results.values())))} seeds, "
                f"{described}"
            )
            plot_pareto(figures, dominated_by(figures), title, tmp)
    except BaseException:
        for tmp, _ in pending:
            if os.path.exists(tmp):
                os.remove(tmp)
        raise
    for tmp, path in pending:
        os.replace(tmp, path)
    return [path for _, path in pending]
