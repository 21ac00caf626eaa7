"""The ``optuna-qsvr report`` subcommand: its options, and running it.

The report only reads: a storage that does not exist is an error, never created empty.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console

from optuna_qsvr import _records
from optuna_qsvr._secrets import redact, scrub, url_secrets
from optuna_qsvr.report._dashboard import publish_plots
from optuna_qsvr.report._data import build_report
from optuna_qsvr.report._tables import render_terminal, write_html

if TYPE_CHECKING:
    import argparse

    import optuna

# Wide enough for every table's header on one line when the output is piped or redirected,
# where rich would otherwise fold headers at 80 columns.
_PIPED_WIDTH = 160


class _ReportError(Exception):
    """Nothing can be reported; the message says why."""


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``report`` subcommand's options to ``parser``.

    Args:
        parser: the subcommand's parser.
    """
    parser.add_argument(
        "--storage",
        required=True,
        help="Optuna storage URL (sqlite:///FILE, postgresql://..., or journal:///FILE for "
        "Optuna's journal file)",
    )
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
        The exit status: 0, or 2 when there is nothing to report (no such storage or study, a
        multi-objective study, a study never run with the pruner), after one line saying why.
    """
    try:
        study = _load(args.storage, args.study_name)
    except _ReportError as err:
        print(f"optuna-qsvr report: error: {err}", file=sys.stderr)
        return 2
    report = build_report(study)
    render_terminal(report, Console(width=None if sys.stdout.isatty() else _PIPED_WIDTH))
    if args.html:
        write_html(study, report, args.html)
        print(f"wrote {args.html}")
    if args.dashboard:
        ids = publish_plots(study)
        print(f"saved plots {', '.join(ids)} to study {study.study_name}")
    return 0


def _load(url: str, name: str | None) -> optuna.study.Study:
    """The study to report on, read from an existing storage.

    Raises:
        _ReportError: no such storage or study, or nothing of Swift-Hyperband's in it.
    """
    import optuna

    storage = _open(url)
    if name is None:
        names = optuna.get_all_study_names(storage=storage)
        if len(names) != 1:
            listed = f" ({', '.join(names)})" if names else ""
            raise _ReportError(
                f"--study-name is needed: the storage holds {len(names)} studies{listed}"
            )
        name = names[0]
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise _ReportError(f"no study named {name!r} in {redact(url)}") from None
    if len(study.directions) > 1:
        raise _ReportError(
            f"study {name!r} has {len(study.directions)} objectives: Swift-Hyperband prunes "
            "single-objective studies only, so it recorded nothing to report"
        )
    attrs = study._storage.get_study_system_attrs(study._study_id)
    trials = study.get_trials(deepcopy=False)
    if not _records.model_headers(attrs) and not any(
        _records.bracket_of_trial(t.user_attrs) is not None for t in trials
    ):
        raise _ReportError(
            f"study {name!r} ({len(trials)} trials) has no Swift-Hyperband records: it was not "
            "run with SwiftHyperbandPruner, or none of its trials has reported a step yet"
        )
    return study


def _open(url: str) -> Any:
    """An Optuna storage for ``url`` that exists already: SQLite and journal files are checked
    first, as opening them would create them."""
    import optuna
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        path = url.removeprefix("journal:").removeprefix("//")
        _check_file(path, "journal file")
        return optuna.storages.JournalStorage(JournalFileBackend(path))
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise _ReportError(
            f"--storage {redact(url)!r} is not a storage URL (sqlite:///FILE, postgresql://..., "
            "journal:///FILE)"
        ) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        _check_file(parsed.database, "SQLite database")
    try:
        # The report only reads: a database without Optuna's tables is not given them.
        return optuna.storages.RDBStorage(url, skip_table_creation=True)
    except ImportError:
        raise  # a missing database driver: the command line names the extra to install
    except Exception as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise _ReportError(
            f"cannot read {redact(url)}: {scrub(first, url_secrets(url))}"
        ) from None


def _check_file(path: str, kind: str) -> None:
    if not os.path.isfile(path):
        raise _ReportError(f"no {kind} at {os.path.abspath(path)} (nothing was created)")
