"""Swift-Hyperband's plots for optuna-dashboard: forecasts against outcomes, epochs against
the best value.

The trial-level story needs nothing from here: the pruner writes each trial's bracket and, per
rung, its decision with forecast and threshold as user attributes, which the dashboard shows
on every trial. This module adds the study-level plots, saved with optuna-dashboard's custom
plot API under fixed ids so that publishing again overwrites them.

optuna-dashboard and plotly are optional: ``pip install optuna-qsvr[dashboard]``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from optuna_qsvr._report import build_report

if TYPE_CHECKING:
    import optuna
    import plotly.graph_objects as go

_logger = logging.getLogger(__name__)

FORECAST_PLOT_ID = "swift-forecast-vs-observed"
EPOCHS_PLOT_ID = "swift-epochs-vs-best"
_INSTALL = "pip install optuna-qsvr[dashboard]"
# The dashboard lays plots out in half-width cards: a legend at the side would squeeze them.
_LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    "legend": {"orientation": "h", "yanchor": "top", "y": -0.2, "xanchor": "left", "x": 0},
    "margin": {"l": 60, "r": 20, "t": 60, "b": 20},
}


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{module.split('.')[0]} is needed for Swift-Hyperband's plots: {_INSTALL}"
        ) from err


def forecast_figure(report: dict[str, Any]) -> go.Figure:
    """Forecast against the value then reached at the target step, one trace per key.

    Only trials that went on to the target after their forecast can be shown (kept ones):
    a pruned trial has no outcome to compare with.

    Args:
        report: the output of :func:`optuna_qsvr._report.build_report`.
    """
    go = _require("plotly.graph_objects")
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
        report: the output of :func:`optuna_qsvr._report.build_report`.
    """
    go = _require("plotly.graph_objects")
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
        report: its :func:`~optuna_qsvr._report.build_report`, if already built.
    """
    report = report if report is not None else build_report(study)
    return {FORECAST_PLOT_ID: forecast_figure(report), EPOCHS_PLOT_ID: epochs_figure(report)}


def publish_plots(study: optuna.study.Study) -> list[str]:
    """Save the plots to the study for optuna-dashboard, overwriting the previous ones.

    Args:
        study: a study run with :class:`~optuna_qsvr.SwiftHyperbandPruner`.

    Returns:
        The graph object ids written.

    Raises:
        ImportError: optuna-dashboard or plotly is not installed.
    """
    dashboard = _require("optuna_dashboard")
    ids = []
    for figure_id, figure in report_figures(study).items():
        ids.append(dashboard.save_plotly_graph_object(study, figure, graph_object_id=figure_id))
    return ids


class DashboardCallback:
    """Refresh the dashboard plots every ``every`` finished trials of this process.

    Pass it to :meth:`optuna.study.Study.optimize`; the plots keep fixed ids, so the study
    holds one copy of each however long it runs. A failure to plot is logged and never
    stops the study. Call :func:`publish_plots` once more after ``optimize`` for the final
    state.

    Args:
        every: trials finished in this process between refreshes.

    Example:

        .. code-block:: python

            study.optimize(objective, n_trials=200, callbacks=[DashboardCallback(every=10)])
            publish_plots(study)
    """

    def __init__(self, every: int = 10) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        # Fail at construction, not after the first ten trials of a long run.
        _require("optuna_dashboard")
        _require("plotly.graph_objects")
        self.every = every
        self._finished = 0

    def __call__(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> None:
        self._finished += 1
        if self._finished % self.every:
            return
        try:
            publish_plots(study)
        except Exception as err:
            _logger.warning(
                "Swift-Hyperband dashboard plots not saved: %s: %s", type(err).__name__, err
            )


@contextlib.contextmanager
def dashboard_server(storage: str | optuna.storages.BaseStorage) -> Iterator[str]:
    """Serve optuna-dashboard on 127.0.0.1 (a free port) in a thread; yield its base URL.

    The same WSGI application as the ``optuna-dashboard`` command, served by a threaded
    :mod:`wsgiref` server as that command does; it is shut down on exit however the block
    ends. For tests, screenshots and a quick look; run ``optuna-dashboard`` for real use.

    Args:
        storage: the storage to serve: a URL or a storage object.
    """
    dashboard = _require("optuna_dashboard")
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class _Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = make_server(
        "127.0.0.1", 0, dashboard.wsgi(storage), server_class=_Server, handler_class=_Quiet
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
