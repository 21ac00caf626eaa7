"""Benchmark pictures: the anytime plot and the Pareto plot of compute against result (PNG).

Both need matplotlib (the ``dev`` extra), imported on use.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from optuna_qsvr.benchmark._stats import Estimate
    from optuna_qsvr.benchmark._table import CurveTable


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


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError('plots need matplotlib: pip install "optuna-qsvr[plots]"') from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _log_ticks(ax: Any) -> None:
    # Plain numbers at 1, 2 and 5 times powers of ten; minor ticks unlabelled.
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def _save(fig: Any, path: str) -> None:
    # Written under a temporary name and renamed, so a failed save leaves no half file.
    root, ext = os.path.splitext(path)
    tmp = f"{root}.tmp{os.getpid()}{ext or '.png'}"
    try:
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def plot_anytime(
    results: Mapping[str, list[dict[str, Any]]],
    table: CurveTable,
    direction: str,
    path: str,
) -> None:
    """Save the median best final value against epochs spent, one line per method (PNG).

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
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    shown: list[float] = []
    for method, runs in results.items():
        end = max(r["epochs"] for r in runs)
        grid = np.unique(np.geomspace(1, max(end, 1), 400).astype(int))
        curve = median_trajectory(runs, direction, grid)
        shown += [v for v in curve if math.isfinite(v)]
        ax.step(grid, curve, where="post", label=method)
    best = table.best_final(direction)
    ax.axhline(best, color="grey", linestyle="--", linewidth=1, label="table best")
    if shown:
        # The first completions are far off; frame the part where the methods differ.
        far = float(np.quantile(shown, 0.8 if direction == "minimize" else 0.2))
        low, high = sorted((best, far))
        ax.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low) or None)
    ax.set_xscale("log")
    _log_ticks(ax)
    ax.set_xlabel("epochs spent (all workers)")
    ax.set_ylabel(f"best final value ({direction})")
    n_seeds = len(next(iter(results.values())))
    ax.set_title(f"{os.path.basename(table.source)}: median over {n_seeds} seeds")
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_pareto(
    figures: Mapping[str, Mapping[str, Estimate]],
    dominated: Mapping[str, Sequence[str]],
    title: str,
    path: str,
) -> None:
    """Save mean regret against mean epochs per method, with 95% intervals on both (PNG).

    Args:
        figures:
            Per method, as :func:`~optuna_qsvr.benchmark.method_figures` gives them.
        dominated:
            Per method, the methods that dominate it (:func:`dominated_by`).
        title:
            The plot's title.
        path:
            The image file.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.8))
    pareto_axes(ax, figures, dominated, title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def pareto_axes(
    ax: Any,
    figures: Mapping[str, Mapping[str, Estimate]],
    dominated: Mapping[str, Sequence[str]],
    title: str,
    *,
    legend: bool = True,
) -> None:
    """Draw the Pareto plot of :func:`plot_pareto` on matplotlib axes ``ax``.

    Methods that no other method dominates (beyond the intervals, see
    :func:`~optuna_qsvr.benchmark.dominates`) are filled, dominated ones hollow; a dotted line
    joins the Pareto front of the mean values of the methods one could choose (the oracle is
    drawn, not joined).

    Args:
        ax:
            The axes.
        figures, dominated, title:
            As for :func:`plot_pareto`.
        legend:
            Draw a legend.
    """
    from optuna_qsvr.benchmark._stats import NOT_A_CHOICE

    plt = _pyplot()
    colours = plt.get_cmap("tab20").colors
    markers = "osD^vP*Xh<>p"
    points = {
        m: (f["epochs"].value, f["regret_mean"].value)
        for m, f in figures.items()
        if m not in NOT_A_CHOICE
    }
    for i, (method, f) in enumerate(figures.items()):
        x, y = f["epochs"], f["regret_mean"]
        colour = colours[(2 * i) % 20 + (2 * i) // 20]
        free = not dominated.get(method)
        ax.errorbar(
            x.value,
            y.value,
            xerr=[[x.value - x.low], [x.high - x.value]],
            yerr=[[y.value - y.low], [y.high - y.value]],
            fmt=markers[i % len(markers)],
            color=colour,
            markerfacecolor=colour if free else "white",
            capsize=3,
            label=method + ("" if free else " (dominated)"),
        )
        ax.annotate(
            method, (x.value, y.value), xytext=(4, 4), textcoords="offset points", fontsize=7
        )
    front = [
        p
        for p in points.values()
        if not any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in points.values())
    ]
    if len(front) > 1:
        xs, ys = zip(*sorted(front), strict=True)
        ax.step(xs, ys, where="post", color="grey", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    _log_ticks(ax)
    ax.set_xlabel("epochs, mean over seeds (log)")
    ax.set_ylabel("regret of the best trial, mean")
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=9)
    if legend:
        ax.legend(fontsize="x-small", ncol=2)
