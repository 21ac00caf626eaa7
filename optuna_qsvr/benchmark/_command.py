"""The ``optuna-qsvr benchmark`` command: a table, methods and seeds in, results out."""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

from optuna_qsvr.benchmark._methods import METHODS, BenchmarkError, check_methods
from optuna_qsvr.benchmark._run import run_benchmark
from optuna_qsvr.benchmark._summary import plot, render_table, to_json
from optuna_qsvr.benchmark._table import CurveTable, CurveTableError


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
    from rich.console import Console

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
