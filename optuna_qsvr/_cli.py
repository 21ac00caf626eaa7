"""The ``optuna-qsvr`` command line.

Each subcommand is a pair of functions: one adds its options to an :mod:`argparse` parser, the
other runs it and returns the exit status. Their modules are imported only when the command
line is used, so ``import optuna_qsvr`` stays light.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


def _lazy(module: str, add: str, run: str) -> tuple[AddArguments, Run]:
    """A subcommand's two functions, imported from ``module`` only when called."""
    import importlib

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        getattr(importlib.import_module(module), add)(parser)

    def run_it(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), run)(args)

    return add_arguments, run_it


# Subcommand name -> (one-line help, add its arguments, run it).
SUBCOMMANDS: dict[str, tuple[str, AddArguments, Run]] = {
    "benchmark": (
        "replay a learning-curve table through Optuna studies and compare pruners",
        *_lazy("optuna_qsvr.benchmark._command", "add_arguments", "run"),
    ),
    "worker": (
        "join a shared study and replay a learning-curve table until its budget is used",
        *_lazy("optuna_qsvr._worker", "add_worker_arguments", "run_worker_command"),
    ),
    "report": (
        "summarise Swift-Hyperband's decisions, predictor fits and epochs of a study",
        *_lazy("optuna_qsvr.report._command", "add_report_arguments", "run_report"),
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``optuna-qsvr`` parser with one subparser per entry of :data:`SUBCOMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="optuna-qsvr",
        description="Swift-Hyperband for Optuna: learning-curve forecasts that prune trials.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, add_arguments, run) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        add_arguments(sub)
        sub.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the chosen subcommand.

    Args:
        argv:
            The arguments after the program name.

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    return args._run(args)
