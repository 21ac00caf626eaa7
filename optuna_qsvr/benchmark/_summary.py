"""Benchmark results in words and numbers: the terminal tables and the JSON."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from optuna_qsvr.benchmark._stats import (
    Estimate,
    dominated_by,
    method_figures,
    reference_method,
)

if TYPE_CHECKING:
    from optuna_qsvr.benchmark._table import CurveTable


def _quartiles(values: Sequence[float | None]) -> tuple[float, float, float] | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    q1, median, q3 = np.percentile(present, [25, 50, 75])
    return float(median), float(q1), float(q3)


def summarize(results: Mapping[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per method, ``(median, first quartile, third quartile)`` of each measure over seeds.

    The quartile summary of earlier versions, kept for scripts; :func:`method_figures` gives
    the means and bootstrap intervals the tables show. A measure that no seed has (the best
    final value where no trial completed) is ``None``.

    Args:
        results:
            Per method, the :func:`run_one` results by seed, as :func:`run_benchmark` returns.
    """
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


def _num(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _cell(estimate: Estimate, kind: str = "num") -> str:
    """The value, and below it its interval, dimmed; ``-`` when no seed has the figure."""
    if estimate.n == 0 or not math.isfinite(estimate.value):
        return "-"
    if kind == "pct":
        value = f"{100 * estimate.value:.0f}%"
        interval = f"{100 * estimate.low:.0f}–{100 * estimate.high:.0f}%"
    else:
        fmt = (lambda v: f"{v:.2f}") if kind == "ratio" else _num
        value, interval = fmt(estimate.value), f"{fmt(estimate.low)}–{fmt(estimate.high)}"
    if estimate.low == estimate.high:
        return value
    return f"{value}\n[dim]{interval}[/dim]"


# The per-seed lists of a method's JSON entry, in order; "seeds" is written beside them.
_PER_SEED = (
    "epochs",
    "best_final",
    "regret",
    "found_best",
    "top1",
    "n_pruned",
    "n_complete",
    "n_cut",
    "n_trials",
    "n_fits",
    "fit_seconds",
    "annealer_calls",
    "wall_seconds",
    "makespan",
    "fewer_trials_regret",
    "trajectory",
)


def render_table(
    results: Mapping[str, list[dict[str, Any]]], table: CurveTable, direction: str, **header: Any
) -> Any:
    """The results as two :mod:`rich` tables that fit 80 columns: compute, then result.

    Each cell is the figure over seeds (the mean, or the median where the column says so)
    with its 95% bootstrap interval below it (see :func:`method_figures`). The result table
    names, per method, the methods that dominate it (:func:`dominated_by`).

    Args:
        results:
            Per method, the :func:`run_one` results by seed, as :func:`run_benchmark` returns.
        table:
            The replayed table, described in the title.
        direction:
            ``"minimize"`` or ``"maximize"``.
        header:
            More ``name value`` pairs for the title (workers, trials, eta, ...); ``time_unit``
            names the makespan's unit (default ``"epoch units"``).

    Returns:
        A :class:`rich.console.Group`.
    """
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    figures = method_figures(results, worst_regret(table, direction))
    dominated = dominated_by(figures)
    reference = reference_method(list(results))
    n_seeds = max((len(runs) for runs in results.values()), default=0)
    header = dict(header)
    unit = header.pop("time_unit", "epoch units")
    described = ", ".join(f"{k} {v}" for k, v in header.items())
    title = (
        f"{os.path.basename(table.source)}: {len(table)} configs x {table.max_step} epochs, "
        f"{direction}, best final {table.best_final(direction):.5g}; {n_seeds} seeds"
        + (f", {described}" if described else "")
    )
    style: dict[str, Any] = {"box": box.SIMPLE_HEAD, "title_justify": "left"}
    compute = Table(title="compute", **style)
    compute.add_column("method", no_wrap=True)
    compute.add_column("epochs", justify="right")
    compute.add_column(f"x {reference}" if reference else "x ref", justify="right")
    compute.add_column(f"makespan\n({unit})", justify="right")
    compute.add_column("pruned", justify="right")
    calls = any(f["annealer_calls"].value > 0 for f in figures.values())
    if calls:
        compute.add_column("annealer\ncalls", justify="right")
    result = Table(title="result", **style)
    result.add_column("method", no_wrap=True)
    result.add_column("regret\nmean", justify="right")
    result.add_column("regret\nmedian", justify="right")
    result.add_column("P(best)", justify="right")
    result.add_column("P(top\n1%)", justify="right")
    # The curve-blind rival, where the seeds have one (the seeded permutation).
    rival = None
    if any(f["vs_fewer"].n for f in figures.values()):
        rival = Table(title="against fewer trials, same epochs", **style)
        rival.add_column("method", no_wrap=True)
        rival.add_column("fewer trials:\nregret mean", justify="right")
        rival.add_column("regret minus\nfewer trials'", justify="right")
    result.add_column("dominated by", overflow="fold", min_width=12)
    for method, f in figures.items():
        row = [method, _cell(f["epochs"]), _cell(f["ratio"], "ratio"), _cell(f["makespan"])]
        row.append(_num(f["n_pruned"].value))
        if calls:
            row.append(_cell(f["annealer_calls"]))
        compute.add_row(*row)
        missing = sum(r["regret"] is None for r in results[method])
        regret = _cell(f["regret_mean"]) + (f"\n[dim]({missing} none)[/dim]" if missing else "")
        result.add_row(
            method,
            regret,
            _cell(f["regret_median"]),
            _cell(f["p_best"], "pct"),
            _cell(f["p_top1"], "pct"),
            ", ".join(dominated[method]) or "-",
        )
        if rival is not None and f["vs_fewer"].n:
            rival.add_row(method, _cell(f["fewer_trials"]), _cell(f["vs_fewer"]))
    note = Text.from_markup(
        "[dim]Mean over seeds (regret median: median), 95% bootstrap interval below. Regret: "
        "distance of the best fully trained trial to the table's best; a seed with none counts "
        "at the table's worst. Dominated by: at least as good on mean epochs and mean regret, "
        "and better on one beyond the intervals (the oracle, a bound, is never listed).[/dim]"
    )
    parts: list[Any] = [Text(title, style="bold"), compute, result]
    if rival is not None:
        parts.append(rival)
        note.append_text(
            Text.from_markup(
                "[dim] Fewer trials: random search that trains the first configurations of the "
                "seed's permutation to the end, as many as the method's epochs pay for; below 0, "
                "pruning paid.[/dim]"
            )
        )
    return Group(*parts, note)


def time_breakdown(results: Mapping[str, list[dict[str, Any]]]) -> str:
    """One line: where the processes' time went, by method, and the predictors' fit share.

    Args:
        results:
            Per method, the :func:`run_one` results by seed.
    """
    spent = {m: sum(r["wall_seconds"] for r in runs) for m, runs in results.items()}
    fits = sum(r["fit_seconds"] for runs in results.values() for r in runs)
    total = sum(spent.values()) or 1.0
    parts = [
        f"{m} {100 * t / total:.0f}%"
        for m, t in sorted(spent.items(), key=lambda kv: -kv[1])
        if t / total >= 0.01
    ]
    return (
        f"replay time {total:.1f} s summed over processes: {', '.join(parts)}; "
        f"predictor fits {100 * fits / total:.0f}% of it"
    )


def worst_regret(table: CurveTable, direction: str) -> float:
    """The regret of the table's worst configuration, which a seed without result counts at."""
    finals = list(table.finals.values())
    return float(max(finals) - min(finals))


def to_json(
    results: Mapping[str, list[dict[str, Any]]], table: CurveTable, options: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Per method name ``{"epochs": [...], "best_final": [...], ...}``, one entry per seed.

    Besides the per-seed lists (``epochs``, ``best_final``, ``regret``, ``found_best``,
    ``top1``, ``makespan``, ``annealer_calls``, ...), every entry holds ``figures`` (each
    figure of :func:`method_figures` as ``{value, low, high, n}``, ``null`` where no seed has
    it), ``dominated_by``, the table's description and the run's options.

    Args:
        results:
            Per method, the :func:`run_one` results by seed, as :func:`run_benchmark` returns.
        table:
            The replayed table, recorded by its source, best final value and last step.
        options:
            The run's settings (``direction`` at least), copied into every method's entry.
    """
    direction = options["direction"]
    figures = method_figures(results, worst_regret(table, direction))
    dominated = dominated_by(figures)
    out: dict[str, dict[str, Any]] = {}
    for method, runs in results.items():
        entry: dict[str, Any] = {key: [r.get(key) for r in runs] for key in _PER_SEED}
        entry["seeds"] = [r["seed"] for r in runs]
        entry["figures"] = {
            name: {k: _finite(v) for k, v in est.to_dict().items()}
            for name, est in figures[method].items()
        }
        entry["dominated_by"] = dominated[method]
        entry["table"] = table.source
        entry["table_best"] = table.best_final(direction)
        entry["table_worst_regret"] = worst_regret(table, direction)
        entry["max_step"] = table.max_step
        clash = sorted(set(options) & set(entry))
        if clash:
            raise ValueError(f"options {clash} would overwrite the per-seed lists")
        entry.update(options)
        out[method] = entry
    return out


def from_json(report: Mapping[str, Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The per-method, per-seed results back from :func:`to_json`'s output.

    Figures and dominance are recomputed from the per-seed lists, so reports of the same
    table, seeds and settings can be merged and summarised together.

    Args:
        report:
            A mapping as :func:`to_json` returns it (or the JSON file it was written to).
    """
    results: dict[str, list[dict[str, Any]]] = {}
    for method, entry in report.items():
        lists = {k: v for k, v in entry.items() if k in _PER_SEED}
        seeds = entry["seeds"]
        results[method] = [
            {"method": method, "seed": seed, **{k: v[i] for k, v in lists.items()}}
            for i, seed in enumerate(seeds)
        ]
    return results


def _finite(value: float) -> float | None:
    # Strict JSON has no NaN: a figure no seed has is null.
    return value if math.isfinite(value) else None
