"""The report's plotly figures: forecasts against outcomes, epochs against the best value.

plotly is optional (``pip install "optuna-qsvr[dashboard]"``) and imported only when a figure
is drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optuna_qsvr.report._data import build_report
from optuna_qsvr.report._optional import require

if TYPE_CHECKING:
    import optuna
    import plotly.graph_objects as go

# Fixed ids: the dashboard replaces a plot saved again under its id instead of adding one.
FORECAST_PLOT_ID = "swift-forecast-vs-observed"
EPOCHS_PLOT_ID = "swift-epochs-vs-best"
# The dashboard lays plots out in half-width cards: a legend at the side would squeeze them.
_LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    "legend": {"orientation": "h", "yanchor": "top", "y": -0.2, "xanchor": "left", "x": 0},
    "margin": {"l": 60, "r": 20, "t": 60, "b": 20},
}


def forecast_figure(report: dict[str, Any]) -> go.Figure:
    """Forecast against the value then reached at the target step, one trace per key.

    Only trials that went on to the target after their forecast can be shown (kept ones):
    a pruned trial has no outcome to compare with.

    Args:
        report: the output of :func:`~optuna_qsvr.report.build_report`.

    Raises:
        ImportError: plotly is not installed.
    """
    go = require("plotly.graph_objects")
    fig = go.Figure()
    lo, hi = float("inf"), float("-inf")
    for key, pairs in report["forecasts"].items():
        xs = [p["forecast"] for p in pairs]
        ys = [p["observed"] for p in pairs]
        lo, hi = min(lo, *xs, *ys), max(hi, *xs, *ys)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                name=key,
                text=[f"trial {p['number']}, {p['decision']}" for p in pairs],
                hovertemplate="%{text}<br>forecast %{x:.4g}<br>observed %{y:.4g}",
            )
        )
    if lo <= hi:
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[lo, hi],
                mode="lines",
                name="x = y",
                line={"dash": "dot", "color": "gray"},
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        title="Swift: forecast vs value reached, per key",
        xaxis_title="forecast",
        yaxis_title="observed",
        legend_title="r<target>_t<t*>",
        **_LAYOUT,
    )
    return fig


def epochs_figure(report: dict[str, Any]) -> go.Figure:
    """Best value so far against epochs spent, beside plain Hyperband's known lower bound.

    Args:
        report: the output of :func:`~optuna_qsvr.report.build_report`.

    Raises:
        ImportError: plotly is not installed.
    """
    go = require("plotly.graph_objects")
    progress = [p for p in report["progress"] if p["best"] is not None]
    fig = go.Figure()
    for field, name, dash in (
        ("epochs", "Swift-Hyperband (spent)", "solid"),
        ("hyperband_epochs", "plain Hyperband, same trials (at least)", "dash"),
    ):
        fig.add_trace(
            go.Scatter(
                x=[p[field] for p in progress],
                y=[p["best"] for p in progress],
                mode="lines",
                line={"shape": "hv", "dash": dash},
                name=name,
                text=[f"after trial {p['number']}" for p in progress],
                hovertemplate="%{text}<br>epochs %{x}<br>best %{y:.4g}",
            )
        )
    fig.update_layout(
        title="Swift: best value against epochs spent",
        xaxis_title="epochs (sum of trials' last steps)",
        yaxis_title=f"best value ({report['direction']})",
        **_LAYOUT,
    )
    return fig


def report_figures(
    study: optuna.study.Study, report: dict[str, Any] | None = None
) -> dict[str, go.Figure]:
    """The plots by their dashboard id.

    Args:
        study: a study run with :class:`~optuna_qsvr.SwiftHyperbandPruner`.
        report: its :func:`~optuna_qsvr.report.build_report`, if already built.

    Raises:
        ImportError: plotly is not installed.
    """
    report = report if report is not None else build_report(study)
    return {FORECAST_PLOT_ID: forecast_figure(report), EPOCHS_PLOT_ID: epochs_figure(report)}
