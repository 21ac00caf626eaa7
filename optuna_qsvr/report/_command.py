"""The ``optuna-qsvr report`` subcommand: its options, and running it."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from optuna_qsvr.report._dashboard import publish_plots
from optuna_qsvr.report._data import build_report
from optuna_qsvr.report._tables import render_terminal, write_html

if TYPE_CHECKING:
    import argparse


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``report`` subcommand's options to ``parser``.

    Args:
        parser: the subcommand's parser.
    """
    parser.add_argument("--storage", required=True, help="Optuna storage URL")
    parser.add_argument(
        "--study-name", default=None, help="the study (optional when the storage holds one)"
    )
    parser.add_argument(
        "--html",
        metavar="FILE",
        default=None,
        help="also write the tables and plots to this self-contained HTML file",
    )
    parser.add_argument(
        "--dashboard",
        action="store_true",
        help="also save the plots to the study for optuna-dashboard (needs optuna-dashboard)",
    )


def run_report(args: argparse.Namespace) -> int:
    """Print the report of ``args.study_name`` in ``args.storage``; optionally write HTML.

    Args:
        args: parsed by a parser set up with :func:`add_report_arguments`.

    Returns:
        The exit status: 0, or 2 when the study cannot be found.
    """
    import optuna

    name = args.study_name
    if name is None:
        names = optuna.get_all_study_names(storage=args.storage)
        if len(names) != 1:
            print(
                f"error: --study-name is needed: the storage holds {len(names)} studies"
                + (f" ({', '.join(names)})" if names else ""),
                file=sys.stderr,
            )
            return 2
        name = names[0]
    try:
        study = optuna.load_study(study_name=name, storage=args.storage)
    except KeyError:
        print(f"error: no study named {name!r} in {args.storage}", file=sys.stderr)
        return 2
    report = build_report(study)
    render_terminal(report)
    if args.html:
        write_html(study, report, args.html)
        print(f"wrote {args.html}")
    if args.dashboard:
        ids = publish_plots(study)
        print(f"saved plots {', '.join(ids)} to study {name}")
    return 0
