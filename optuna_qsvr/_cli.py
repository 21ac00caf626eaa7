"""The ``optuna-qsvr`` command line.

Each subcommand is a pair of functions: one adds its options to an :mod:`argparse` parser, the
other runs it and returns the exit status. Their modules are imported only when the command
line is used, so ``import optuna_qsvr`` stays light.
"""

from __future__ import annotations

import argparse
import sys
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
    "proxy": (
        "serve one database to many workers through Optuna's gRPC storage proxy",
        *_lazy("optuna_qsvr._proxy", "add_proxy_arguments", "run_proxy_command"),
    ),
    "report": (
        "summarise Swift-Hyperband's decisions, predictor fits and epochs of a study",
        *_lazy("optuna_qsvr.report._command", "add_report_arguments", "run_report"),
    ),
}


# Optional dependencies by top-level module, and how to install each.
_EXTRA = 'pip install "optuna-qsvr[{}]"'
INSTALL_HINTS = {
    "matplotlib": _EXTRA.format("plots"),
    "plotly": _EXTRA.format("dashboard"),
    "optuna_dashboard": _EXTRA.format("dashboard"),
    "dwave": _EXTRA.format("qpu"),
    "psycopg": _EXTRA.format("postgresql"),
    # The gRPC storage proxy (optuna-qsvr proxy, worker --storage grpc://...).
    "grpc": _EXTRA.format("grpc"),
    "google": _EXTRA.format("grpc"),
    # SQLAlchemy's driver for a plain postgresql:// URL; the extra installs psycopg 3.
    "psycopg2": _EXTRA.format("postgresql") + " and write the URL as postgresql+psycopg://...",
    # MySQL works through Optuna's RDBStorage but is not one of the storages tested here.
    "MySQLdb": "pip install PyMySQL and write the URL as mysql+pymysql://... (MySQL is untested"
    " with optuna-qsvr; SQLite and PostgreSQL are)",
    "pymysql": "pip install PyMySQL (MySQL is untested with optuna-qsvr; SQLite and PostgreSQL"
    " are)",
}


def build_parser() -> argparse.ArgumentParser:
    """The ``optuna-qsvr`` parser with one subparser per entry of :data:`SUBCOMMANDS`."""
    from optuna_qsvr import __version__

    parser = argparse.ArgumentParser(
        prog="optuna-qsvr",
        description="Swift-Hyperband for Optuna: learning-curve forecasts that prune trials.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
        The exit status: 2 after one line naming the extra to install when an optional
        dependency is missing.
    """
    args = build_parser().parse_args(argv)
    try:
        return args._run(args)
    except ImportError as err:
        missing = err if err.name else err.__cause__
        module = (getattr(missing, "name", None) or "").split(".")[0]
        if module not in INSTALL_HINTS:
            raise
        print(
            f"optuna-qsvr {args.command}: error: {module} is not installed: "
            f"{INSTALL_HINTS[module]}",
            file=sys.stderr,
        )
        return 2
