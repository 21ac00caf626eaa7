from __future__ import annotations

import subprocess
import sys

import optuna_qsvr.report


def test_import_is_light() -> None:
    # A fresh interpreter: this one may have loaded plotly for another test.
    code = (
        "import sys, optuna_qsvr.report; "
        "print(sorted(m for m in ('plotly', 'optuna_dashboard') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names() -> None:
    for name in optuna_qsvr.report.__all__:
        assert getattr(optuna_qsvr.report, name).__module__.startswith("optuna_qsvr.report._")
    assert {"build_report", "fit_records", "DashboardCallback", "publish_plots"} <= set(
        optuna_qsvr.report.__all__
    )
