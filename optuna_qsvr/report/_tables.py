"""The report as tables of display strings, printed to a terminal or written to an HTML file.

One source (:func:`report_tables`) for both, so the terminal and the HTML say the same.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from optuna_qsvr._records import DECISIONS, PROMOTIONS
from optuna_qsvr.report._plots import report_figures

if TYPE_CHECKING:
    import optuna

# A column: heading, field of the report's row, and optionally a format for floats.
_Column = tuple[str, ...]

_BRACKET_COLUMNS: list[_Column] = [
    ("bracket", "bracket"),
    ("trials", "trials"),
    ("complete", "complete"),
    ("pruned", "pruned"),
    ("epochs", "epochs"),
    ("saved, at least", "known_saving"),
]
_RUNG_COLUMNS: list[_Column] = [
    ("bracket", "bracket"),
    ("rung", "rung"),
    ("r_i", "budget"),
    ("t*", "decision_step"),
    *((kind, kind) for kind in DECISIONS + PROMOTIONS),
]
_FIT_COLUMNS: list[_Column] = [
    ("key", "key"),
    ("kind", "kind"),
    ("annealer", "annealer"),
    ("version", "version"),
    ("curves", "n_train"),
    ("fit s", "fit_seconds", ".3g"),
    ("CV rmse", "cv_rmse"),
]
_CHECK_COLUMNS: list[_Column] = [
    ("key", "key"),
    ("forecasts", "forecasts"),
    ("pruned", "pruned"),
    ("checked", "checked"),
    ("rmse checked", "observed_rmse"),
]


def report_tables(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report as tables, each ``{title, columns, rows, note}`` of display strings.

    Args:
        report: the output of :func:`~optuna_qsvr.report.build_report`.
    """
    e = report["epochs"]
    share = ""
    if e["hyperband_at_least"]:
        share = f" ({e['known_saving'] / e['hyperband_at_least']:.1%})"
    summary = {
        "title": f"Study {report['study']} ({report['direction']})",
        "columns": ["", ""],
        "rows": [
            ["trials", ", ".join(f"{n} {s.lower()}" for s, n in report["states"].items()) or "0"],
            ["best value", _fmt(report["best_value"])],
            ["epochs spent", str(e["spent"])],
            ["trials pruned on a forecast", str(e["forecast_pruned"])],
            ["epochs saved on them, at least", f"{e['known_saving']}{share}"],
            ["plain Hyperband on the same trials, at least", str(e["hyperband_at_least"])],
            ["malformed records, skipped", str(len(report["malformed"]))],
            *_regime_rows(report["regimes"]),
        ],
        "note": (
            "A trial pruned on a forecast at step t of rung i would have trained to r_i under "
            "plain Hyperband: sum(r_i - t) is a lower bound; promotions it might have won past "
            "r_i and its effect on other trials' ranks are unknown."
        ),
    }
    return [
        summary,
        _table("Brackets", report["brackets"], _BRACKET_COLUMNS),
        _table(
            "Rungs: decisions at t* and successive halving at r_i",
            report["rungs"],
            _RUNG_COLUMNS,
            "full: trained on without a forecast (training curves, threshold); "
            "no-forecast: no model yet, or a forecast, fit or rule that failed (each record"
            " says which); successive halving decides.",
        ),
        _table(
            "Predictor fits",
            report["fits"],
            _FIT_COLUMNS,
            "key r<target>_t<t*>; curves: training size; CV rmse: the fit's "
            "cross-validated error, in the units it forecasts.",
        ),
        _table(
            "Forecasts per key",
            report["fits"],
            _CHECK_COLUMNS,
            "checked: forecasts of trials that went on to the target step; rmse "
            "checked: their error against the value they reached.",
        ),
    ]


def _regime_rows(regimes: dict[str, Any]) -> list[list[str]]:
    """The forecast mode's regimes, when the study has any."""
    if not regimes["forecast"] and not regimes["hyperband"]:
        return []
    rho = regimes["persistence"]
    return [
        [
            "trials with forecasts / as Hyperband",
            f"{regimes['forecast']} / {regimes['hyperband']}",
        ],
        [
            "rank persistence, last measured",
            "not measured yet"
            if rho is None
            else f"{rho:.3f} (threshold {regimes['threshold']:g})",
        ],
    ]


def render_terminal(report: dict[str, Any], console: Any = None) -> None:
    """Print the report's tables with :mod:`rich`.

    Args:
        report: the output of :func:`~optuna_qsvr.report.build_report`.
        console: a :class:`rich.console.Console` to print to; standard output by default.
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    for spec in report_tables(report):
        table = Table(
            title=spec["title"],
            title_justify="left",
            caption=spec["note"] or None,
            caption_justify="left",
            show_header=any(spec["columns"]),
            box=box.SIMPLE_HEAD,
        )
        for i, column in enumerate(spec["columns"]):
            # Numbers are short: fold rather than cut them when the terminal is narrow.
            table.add_column(column, justify="left" if i == 0 else "right", overflow="fold")
        for row in spec["rows"]:
            table.add_row(*row)
        console.print(table)


def write_html(study: optuna.study.Study, report: dict[str, Any], path: str) -> None:
    """Write the tables and the plots to one HTML file that works offline (plotly.js inside).

    Args:
        study: the study the report was built from.
        report: the output of :func:`~optuna_qsvr.report.build_report`.
        path: the file to write.

    Raises:
        ImportError: plotly is not installed.
    """
    parts = []
    for spec in report_tables(report):
        head = "".join(f"<th>{html.escape(c)}</th>" for c in spec["columns"])
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in spec["rows"]
        )
        parts.append(
            f"<h2>{html.escape(spec['title'])}</h2><table>"
            + (f"<thead><tr>{head}</tr></thead>" if any(spec["columns"]) else "")
            + f"<tbody>{body}</tbody></table>"
            + (f"<p class='note'>{html.escape(spec['note'])}</p>" if spec["note"] else "")
        )
    for i, (figure_id, figure) in enumerate(report_figures(study, report).items()):
        parts.append(figure.to_html(full_html=False, include_plotlyjs=i == 0, div_id=figure_id))
    title = html.escape(f"Swift-Hyperband report: {report['study']}")
    document = (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;margin-bottom:.5em}"
        "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}"
        "td:first-child,th:first-child{text-align:left}.note{color:#555;font-size:90%}"
        f"</style></head><body><h1>{title}</h1>{''.join(parts)}</body></html>\n"
    )
    with open(path, "w", encoding="utf-8") as f:
        f.write(document)


def _table(
    title: str, records: Iterable[Mapping[str, Any]], columns: list[_Column], note: str = ""
) -> dict[str, Any]:
    """A table of ``records``, one row each, one cell per column."""
    return {
        "title": title,
        "columns": [heading for heading, *_ in columns],
        "rows": [[_fmt(r[field], *spec) for _, field, *spec in columns] for r in records],
        "note": note,
    }


def _fmt(value: Any, spec: str = ".4g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)
