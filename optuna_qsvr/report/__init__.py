"""What Swift-Hyperband decided in a study, and what it saved: data, tables, plots, dashboard.

Everything is read from the study's storage through :mod:`optuna_qsvr._records`, from any
process, while the study still runs. Imports are light: plotly and optuna-dashboard (the
``dashboard`` extra) and rich load only when a plot, the dashboard or a table is drawn.

Example:

    .. code-block:: python

        import optuna
        from optuna_qsvr import SwiftHyperbandPruner
        from optuna_qsvr.report import build_report, render_terminal


        def objective(trial):
            rate = trial.suggest_float("rate", 0.01, 1.0, log=True)
            for epoch in range(1, 10):
                trial.report(1.0 / (1.0 + rate * epoch), epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()
            return 1.0 / (1.0 + rate * 9)


        study = optuna.create_study(
            storage="sqlite:///report-example.db",
            study_name="report-example",
            load_if_exists=True,
            pruner=SwiftHyperbandPruner(max_resource=9, min_train_curves=5),
        )
        study.optimize(objective, n_trials=30)
        report = build_report(study)  # plain data: counts, epochs, fits, forecasts
        render_terminal(report)
"""

from __future__ import annotations

from optuna_qsvr.report._dashboard import DashboardCallback, dashboard_server, publish_plots
from optuna_qsvr.report._data import build_report, fit_records, forecast_pairs, trial_records
from optuna_qsvr.report._plots import epochs_figure, forecast_figure, report_figures
from optuna_qsvr.report._tables import render_terminal, write_html

__all__ = [
    "DashboardCallback",
    "build_report",
    "dashboard_server",
    "epochs_figure",
    "fit_records",
    "forecast_figure",
    "forecast_pairs",
    "publish_plots",
    "render_terminal",
    "report_figures",
    "trial_records",
    "write_html",
]
