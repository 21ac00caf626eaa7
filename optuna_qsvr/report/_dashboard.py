"""Swift-Hyperband's plots in optuna-dashboard: publish them, refresh them during a study, serve.

The trial-level story needs nothing from here: the pruner writes each trial's bracket and, per
rung, its decision with forecast and threshold as user attributes, which the dashboard shows
on every trial. This module adds the study-level plots, saved with optuna-dashboard's custom
plot API under fixed ids so that publishing again overwrites them.

optuna-dashboard and plotly are optional: ``pip install "optuna-qsvr[dashboard]"``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from optuna_qsvr.report._optional import require
from optuna_qsvr.report._plots import report_figures

if TYPE_CHECKING:
    import optuna

_logger = logging.getLogger(__name__)


def publish_plots(study: optuna.study.Study) -> list[str]:
    """Save the plots to the study for optuna-dashboard, overwriting the previous ones.

    Args:
        study: a study run with :class:`~optuna_qsvr.SwiftHyperbandPruner`.

    Returns:
        The graph object ids written.

    Raises:
        ImportError: optuna-dashboard or plotly is not installed.
    """
    dashboard = require("optuna_dashboard")
    return [
        dashboard.save_plotly_graph_object(study, figure, graph_object_id=figure_id)
        for figure_id, figure in report_figures(study).items()
    ]


class DashboardCallback:
    """Refresh the dashboard plots every ``every`` finished trials of this process.

    Pass it to :meth:`optuna.study.Study.optimize`; the plots keep fixed ids, so the study
    holds one copy of each however long it runs. A failure to plot is logged and never
    stops the study. Call :func:`~optuna_qsvr.report.publish_plots` once more after
    ``optimize`` for the final state.

    Args:
        every: trials finished in this process between refreshes.

    Raises:
        ValueError: ``every`` is not an integer >= 1.
        ImportError: optuna-dashboard or plotly is not installed.

    Example:

        .. code-block:: python

            import optuna
            import optuna_qsvr


            def objective(trial):
                rate = trial.suggest_float("rate", 0.01, 1.0, log=True)
                for epoch in range(1, 10):
                    trial.report(1.0 / (1.0 + rate * epoch), epoch)
                    if trial.should_prune():
                        raise optuna.TrialPruned()
                return 1.0 / (1.0 + rate * 9)


            study = optuna.create_study(
                storage="sqlite:///dashboard-example.db",
                study_name="dashboard-example",
                load_if_exists=True,
                pruner=optuna_qsvr.SwiftHyperbandPruner(max_resource=9, min_train_curves=5),
            )
            # Refresh the forecast and epochs plots in optuna-dashboard every 10 trials.
            callback = optuna_qsvr.DashboardCallback(every=10)
            study.optimize(objective, n_trials=30, callbacks=[callback])
    """

    def __init__(self, every: int = 10) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        # Fail at construction, not after the first ten trials of a long run.
        require("optuna_dashboard")
        require("plotly.graph_objects")
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

    Raises:
        ImportError: optuna-dashboard is not installed.
    """
    dashboard = require("optuna_dashboard")
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
