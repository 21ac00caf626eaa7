"""What Swift-Hyperband decided in a study, and what it saved: data, tables, terminal, HTML.

Everything is read from the study's storage (the records the pruner writes on each trial and
the predictor headers it publishes on the study), so the report works on any study run with
:class:`~optuna_qsvr.SwiftHyperbandPruner`, from any process, while the study still runs.

Epochs against plain Hyperband. Only part of what plain Hyperband would have spent on the
same trials can be known. A trial pruned on a forecast at step ``t`` of rung ``i`` (the
decision step ``t*``, or the first step reported after it) would, under plain Hyperband,
have trained to ``r_i`` at least, since every trial of a rung reaches ``r_i`` before
successive halving judges it. So ``sum(r_i - t)`` over the forecast-pruned trials is a
lower bound on the epochs Swift saved on those trials, and ``spent + sum(r_i - t)`` a lower
bound on what plain Hyperband would have spent on them and on the others as they ran.
It is not the whole counterfactual: such a trial might have been promoted past ``r_i``
(more saved), and its value at ``r_i`` would have entered the rung's successive-halving
ranks, which could have stopped or promoted other trials differently (either way). A
different run, and a sampler that learned from different values, is not estimated at all.
Every other decision (full trainings, kept trials, trials without a forecast and every
successive-halving decision at ``r_i``) trains exactly as plain Hyperband would.
"""

from __future__ import annotations

import html
import math
import re
import sys
from typing import TYPE_CHECKING, Any

from optuna.study import StudyDirection
from optuna.trial import TrialState

from optuna_qsvr.pruners import fit_records
from optuna_qsvr.pruners._swift_hyperband import (
    BRACKET_ATTR,
    DECISION_PREFIX,
    PROMOTION_PREFIX,
)

if TYPE_CHECKING:
    import argparse

    import optuna

DECISIONS = ("full", "kept", "pruned", "no-forecast")
PROMOTIONS = ("promoted", "stopped")
_KEY = re.compile(r"^r(\d+)_t(\d+)$")


def trial_records(study: optuna.study.Study) -> list[dict[str, Any]]:
    """One plain record per trial: number, state, bracket, epochs, value and Swift's records.

    Args:
        study: a study run with :class:`~optuna_qsvr.SwiftHyperbandPruner`.

    Returns:
        Per trial in number order: ``number``, ``state`` (name), ``bracket`` (``None`` if the
        pruner never saw a step), ``epochs`` (``last_step``, 0 if none), ``value``,
        ``decisions`` and ``promotions`` (rung index to the pruner's record) and
        ``intermediate_values``.
    """
    out = []
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.WAITING:
            continue
        decisions, promotions = {}, {}
        for name, record in t.system_attrs.items():
            if not isinstance(record, dict):
                continue
            if name.startswith(DECISION_PREFIX):
                decisions[int(name[len(DECISION_PREFIX) :])] = record
            elif name.startswith(PROMOTION_PREFIX):
                promotions[int(name[len(PROMOTION_PREFIX) :])] = record
        bracket = t.user_attrs.get(BRACKET_ATTR)
        out.append(
            {
                "number": t.number,
                "state": t.state.name,
                "bracket": bracket if isinstance(bracket, int) else None,
                "epochs": int(t.last_step) if t.last_step is not None else 0,
                "value": t.value if t.state == TrialState.COMPLETE else None,
                "decisions": dict(sorted(decisions.items())),
                "promotions": dict(sorted(promotions.items())),
                "intermediate_values": dict(t.intermediate_values),
            }
        )
    return out


def observed_at(intermediate_values: dict[int, float], step: int) -> float | None:
    """The value reported at ``step``, or at the first step after it (the pruner's rule)."""
    if step in intermediate_values:
        return float(intermediate_values[step])
    later = [s for s in intermediate_values if s > step]
    return float(intermediate_values[min(later)]) if later else None


def forecast_pairs(trials: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per predictor key, the forecasts whose trial went on to the forecast's target step.

    These are the kept trials (and any pruned trial that reported past its decision): the
    only ones whose forecast can be checked against what happened.

    Args:
        trials: the output of :func:`trial_records`.

    Returns:
        Key to a list of ``{number, bracket, rung, forecast, observed, threshold,
        decision}``, in trial order.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for t in trials:
        for rung, d in t["decisions"].items():
            match = _KEY.match(str(d.get("key", "")))
            if d.get("forecast") is None or match is None:
                continue
            observed = observed_at(t["intermediate_values"], int(match.group(1)))
            if observed is None or not math.isfinite(observed):
                continue
            out.setdefault(d["key"], []).append(
                {
                    "number": t["number"],
                    "bracket": t["bracket"],
                    "rung": rung,
                    "forecast": float(d["forecast"]),
                    "observed": observed,
                    "threshold": d.get("threshold"),
                    "decision": d.get("decision"),
                }
            )
    return dict(sorted(out.items(), key=lambda kv: _key_order(kv[0])))


def best_so_far(study: optuna.study.Study, trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cumulative epochs and best value after each trial, in trial order.

    ``hyperband_epochs`` adds the known lower bound of what plain Hyperband would have spent
    (see the module docstring) so both curves can be drawn against the same best values.
    """
    better = min if study.direction == StudyDirection.MINIMIZE else max
    best: float | None = None
    spent = bound = 0
    out = []
    for t in trials:
        spent += t["epochs"]
        bound += t["epochs"] + _known_saving(t)
        if t["value"] is not None and math.isfinite(t["value"]):
            best = t["value"] if best is None else better(best, t["value"])
        out.append(
            {"number": t["number"], "epochs": spent, "hyperband_epochs": bound, "best": best}
        )
    return out


def build_report(study: optuna.study.Study) -> dict[str, Any]:
    """The report's data: plain dicts and lists, ready for tables, JSON or plots.

    Args:
        study: a study run with :class:`~optuna_qsvr.SwiftHyperbandPruner`.

    Returns:
        ``study``, ``direction``, ``states`` (count per trial state), ``best_value``,
        ``epochs`` (``spent``, ``forecast_pruned``, ``known_saving``,
        ``hyperband_at_least``), ``brackets`` and ``rungs`` (counts of each decision),
        ``fits`` (one row per published predictor, with the error of its checked
        forecasts), ``forecasts`` (see :func:`forecast_pairs`) and ``progress`` (see
        :func:`best_so_far`).
    """
    trials = trial_records(study)
    single = len(study.directions) == 1
    states: dict[str, int] = {}
    brackets: dict[Any, dict[str, Any]] = {}
    rungs: dict[tuple[int, int], dict[str, Any]] = {}
    for t in trials:
        states[t["state"]] = states.get(t["state"], 0) + 1
        b = brackets.setdefault(
            t["bracket"],
            {
                "bracket": t["bracket"],
                "trials": 0,
                "complete": 0,
                "pruned": 0,
                "epochs": 0,
                "known_saving": 0,
            },
        )
        b["trials"] += 1
        b["complete"] += t["state"] == "COMPLETE"
        b["pruned"] += t["state"] == "PRUNED"
        b["epochs"] += t["epochs"]
        b["known_saving"] += _known_saving(t)
        for kind, records in (("decision", t["decisions"]), ("promotion", t["promotions"])):
            for index, record in records.items():
                bracket = record.get("bracket", t["bracket"])
                row = rungs.setdefault(
                    (bracket, index),
                    {
                        "bracket": bracket,
                        "rung": index,
                        "budget": record.get("budget"),
                        "decision_step": None,
                        **dict.fromkeys(DECISIONS + PROMOTIONS, 0),
                    },
                )
                if kind == "decision":
                    row["decision_step"] = record.get("decision_step")
                if record.get("decision") in row:
                    row[record["decision"]] += 1

    forecasts = forecast_pairs(trials)
    decided: dict[str, dict[str, int]] = {}
    for t in trials:
        for d in t["decisions"].values():
            if d.get("forecast") is not None:
                n = decided.setdefault(d.get("key"), {"forecasts": 0, "pruned": 0})
                n["forecasts"] += 1
                n["pruned"] += d.get("decision") == "pruned"
    fits = []
    for f in fit_records(study):
        pairs = forecasts.get(f["key"], [])
        errors = [p["forecast"] - p["observed"] for p in pairs]
        fits.append(
            {
                "key": f["key"],
                "kind": f.get("kind"),
                "annealer": f.get("annealer"),
                "version": f.get("version"),
                "n_train": f.get("n_train"),
                "fit_seconds": f.get("fit_seconds"),
                "cv_rmse": f.get("cv_rmse"),
                **decided.get(f["key"], {"forecasts": 0, "pruned": 0}),
                "checked": len(errors),
                "observed_rmse": (
                    math.sqrt(sum(e * e for e in errors) / len(errors)) if errors else None
                ),
            }
        )
    fits.sort(key=lambda r: _key_order(r["key"]))

    spent = sum(t["epochs"] for t in trials)
    saving = sum(_known_saving(t) for t in trials)
    best_value = None
    if single and states.get("COMPLETE"):
        best_value = study.best_value
    return {
        "study": study.study_name,
        "direction": study.directions[0].name.lower() if single else "multi-objective",
        "states": dict(sorted(states.items())),
        "best_value": best_value,
        "epochs": {
            "spent": spent,
            "forecast_pruned": sum(
                1 for t in trials for d in t["decisions"].values() if d.get("decision") == "pruned"
            ),
            "known_saving": saving,
            "hyperband_at_least": spent + saving,
        },
        "brackets": [brackets[k] for k in sorted(brackets, key=_none_last)],
        "rungs": [rungs[k] for k in sorted(rungs, key=lambda k: (*_none_last(k[0]), k[1]))],
        "fits": fits,
        "forecasts": forecasts,
        "progress": best_so_far(study, trials) if single else [],
    }


def report_tables(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report as tables, each ``{title, columns, rows, note}`` of display strings.

    One source for the terminal and the HTML, so both say the same.
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
        ],
        "note": (
            "A trial pruned on a forecast at step t of rung i would have trained to r_i under "
            "plain Hyperband: sum(r_i - t) is a lower bound; promotions it might have won past "
            "r_i and its effect on other trials' ranks are unknown."
        ),
    }
    brackets = {
        "title": "Brackets",
        "columns": ["bracket", "trials", "complete", "pruned", "epochs", "saved, at least"],
        "rows": [
            [
                _fmt(b["bracket"]),
                *(str(b[k]) for k in ("trials", "complete", "pruned", "epochs", "known_saving")),
            ]
            for b in report["brackets"]
        ],
        "note": "",
    }
    rungs = {
        "title": "Rungs: decisions at t* and successive halving at r_i",
        "columns": ["bracket", "rung", "r_i", "t*", *DECISIONS, *PROMOTIONS],
        "rows": [
            [
                _fmt(r["bracket"]),
                str(r["rung"]),
                _fmt(r["budget"]),
                _fmt(r["decision_step"]),
                *(str(r[k]) for k in DECISIONS + PROMOTIONS),
            ]
            for r in report["rungs"]
        ],
        "note": "full: trained on without a forecast (training curves, threshold); "
        "no-forecast: no predictor yet, successive halving decides.",
    }
    fits = {
        "title": "Predictor fits",
        "columns": ["key", "kind", "annealer", "version", "curves", "fit s", "CV rmse"],
        "rows": [
            [
                f["key"],
                _fmt(f["kind"]),
                _fmt(f["annealer"]),
                _fmt(f["version"]),
                _fmt(f["n_train"]),
                _fmt(f["fit_seconds"], ".3g"),
                _fmt(f["cv_rmse"]),
            ]
            for f in report["fits"]
        ],
        "note": "key r<target>_t<t*>; curves: training size; CV rmse: the fit's "
        "cross-validated error, in the units it forecasts.",
    }
    checks = {
        "title": "Forecasts per key",
        "columns": ["key", "forecasts", "pruned", "checked", "rmse checked"],
        "rows": [
            [
                f["key"],
                str(f["forecasts"]),
                str(f["pruned"]),
                str(f["checked"]),
                _fmt(f["observed_rmse"]),
            ]
            for f in report["fits"]
        ],
        "note": "checked: forecasts of trials that went on to the target step; rmse "
        "checked: their error against the value they reached.",
    }
    return [summary, brackets, rungs, fits, checks]


def render_terminal(report: dict[str, Any], console: Any = None) -> None:
    """Print the report's tables with :mod:`rich`."""
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
        report: the output of :func:`build_report`.
        path: the file to write.
    """
    from optuna_qsvr._dashboard import report_figures

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
    if getattr(args, "dashboard", False):
        from optuna_qsvr._dashboard import publish_plots

        ids = publish_plots(study)
        print(f"saved plots {', '.join(ids)} to study {name}")
    return 0


def _known_saving(trial: dict[str, Any]) -> int:
    """``r_i - t`` for a trial pruned on a forecast (see the module docstring), else 0."""
    for d in trial["decisions"].values():
        if d.get("decision") == "pruned" and isinstance(d.get("budget"), int):
            return max(d["budget"] - trial["epochs"], 0)
    return 0


def _none_last(bracket: int | None) -> tuple[bool, int]:
    return bracket is None, bracket or 0


def _key_order(key: str) -> tuple[int, int, str]:
    match = _KEY.match(key)
    return (int(match.group(1)), int(match.group(2)), key) if match else (1 << 30, 0, key)


def _fmt(value: Any, spec: str = ".4g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)
