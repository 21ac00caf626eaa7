"""Benchmark results: statistics over seeds, the terminal table, the plot and the JSON."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from optuna_qsvr.benchmark._table import CurveTable

# Epochs are reported relative to this method when it is part of the run.
REFERENCE_METHOD = "hyperband"


def _quartiles(values: Sequence[float | None]) -> tuple[float, float, float] | None:
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
    """Per method, ``(median, first quartile, third quartile)`` of each measure over seeds.

    A measure that no seed has (the best final value where no trial completed) is ``None``.

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


def render_table(
    results: Mapping[str, list[dict[str, Any]]], table: CurveTable, direction: str, **header: Any
) -> Any:
    """A :class:`rich.table.Table` with one row per method: median [IQR] over seeds.

    Args:
        results:
            Per method, the :func:`run_one` results by seed, as :func:`run_benchmark` returns.
        table:
            The replayed table, described in the title.
        direction:
            ``"minimize"`` or ``"maximize"``.
        header:
            More ``name value`` pairs for the title (workers, trials, eta).
    """
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

    Args:
        runs:
            One method's :func:`run_one` results, one per seed.
        direction:
            ``"minimize"`` or ``"maximize"``.
        grid:
            Epoch budgets, ascending.
    """
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
    """Save the median best final value against epochs spent, one line per method (PNG).

    Needs matplotlib.

    Args:
        results:
            Per method, the :func:`run_one` results by seed, as :func:`run_benchmark` returns.
        table:
            The replayed table; its best final value is drawn as a reference line.
        direction:
            ``"minimize"`` or ``"maximize"``.
        path:
            The image file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    """Per method name ``{"epochs": [...], "best_final": [...], ...}``, one entry per seed.

    Args:
        results:
            Per method, the :func:`run_one` results by seed, as :func:`run_benchmark` returns.
        table:
            The replayed table, recorded by its source, best final value and last step.
        options:
            The run's settings, copied into every method's entry.
    """
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
