from __future__ import annotations

import json
import shutil
import sys
import urllib.request

import optuna
import pytest

from optuna_qsvr import SwiftHyperbandPruner, _records
from optuna_qsvr.report import DashboardCallback, build_report, dashboard_server, publish_plots
from optuna_qsvr.report._plots import EPOCHS_PLOT_ID, FORECAST_PLOT_ID
from tests.report_tests.conftest import (
    MAX_RESOURCE,
    fast_sqlite_dir,
    make_swift_study,
    swift_objective,
)

pytest.importorskip("optuna_dashboard")

# optuna-dashboard's own key for a saved plot's chunks, not one of Swift's records.
PLOT_PREFIX = "dashboard:plot_data:"


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return json.load(response)


def _study_detail(base: str, name: str) -> dict:
    summaries = _get(f"{base}/api/studies")["study_summaries"]
    (study_id,) = [s["study_id"] for s in summaries if s["study_name"] == name]
    return _get(f"{base}/api/studies/{study_id}")


def _plot_keys(study: optuna.Study) -> set[str]:
    attrs = study._storage.get_study_system_attrs(study._study_id)
    return {k for k in attrs if k.startswith(PLOT_PREFIX)}


def test_dashboard_serves_swift_attributes_and_one_plot_per_id() -> None:
    directory = fast_sqlite_dir()
    url = f"sqlite:///{directory}/study.db"
    try:
        study = make_swift_study(url, "swift-dashboard", 24)
        publish_plots(study)
        first_keys = _plot_keys(study)
        study.optimize(swift_objective, n_trials=6)  # the study grows, then is published again
        assert publish_plots(study) == [FORECAST_PLOT_ID, EPOCHS_PLOT_ID]
        assert {k.rsplit(":", 1)[0] for k in _plot_keys(study)} == {
            k.rsplit(":", 1)[0] for k in first_keys
        }
        report = build_report(study)

        with dashboard_server(url) as base:
            detail = _study_detail(base, "swift-dashboard")

        trials = {t.number: t for t in study.trials}
        assert len(detail["trials"]) == len(trials)
        n_forecast = 0
        for shown in detail["trials"]:
            trial = trials[shown["number"]]
            attrs = {a["key"]: a["value"] for a in shown["user_attrs"]}
            bracket = _records.bracket_of_trial(trial.user_attrs)
            assert attrs[_records.BRACKET_ATTR] == str(bracket)
            records = _records.read_trial(trial.system_attrs)
            for rung, d in records.decisions.items():
                text = attrs[_records.decision_text_attr(rung)]
                promotion = records.promotions.get(rung, {})
                if promotion.get("decision") == "stopped":
                    # Successive halving's stop has its own attribute beside the decision.
                    stop = attrs[_records.promotion_text_attr(rung)]
                    assert stop.startswith(f"stopped at {promotion['budget']}: rank")
                assert text.startswith(f"{d['decision']} at {d['step']} ({d['key']})")
                if d["forecast"] is not None:
                    n_forecast += 1
                    told = f"forecast {d['forecast']:.4g} vs threshold {d['threshold']:.4g}"
                    assert told in text
        assert n_forecast > 0

        plots = {g["id"]: json.loads(g["graph_object"]) for g in detail["plotly_graph_objects"]}
        assert sorted(plots) == sorted([FORECAST_PLOT_ID, EPOCHS_PLOT_ID])
        by_name = {trace["name"]: trace for trace in plots[FORECAST_PLOT_ID]["data"]}
        assert set(report["forecasts"]) <= set(by_name)
        for key, pairs in report["forecasts"].items():
            assert by_name[key]["x"] == [p["forecast"] for p in pairs]
            assert by_name[key]["y"] == [p["observed"] for p in pairs]
        spent = sum(t.last_step or 0 for t in study.trials)
        swift_trace = plots[EPOCHS_PLOT_ID]["data"][0]
        assert swift_trace["x"][-1] == spent
        assert swift_trace["y"][-1] == pytest.approx(study.best_value)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_every_forecast_stays_visible_as_a_user_attribute() -> None:
    study = optuna.create_study(
        study_name="swift-visible",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=SwiftHyperbandPruner(
            mode="paper", min_resource=1, max_resource=MAX_RESOURCE, min_train_curves=3
        ),
    )
    study.optimize(swift_objective, n_trials=30)
    for trial in study.trials:
        shown = " | ".join(str(v) for v in trial.user_attrs.values())
        for d in _records.read_trial(trial.system_attrs).decisions.values():
            if d["forecast"] is not None:
                assert f"forecast {d['forecast']:.4g} vs threshold {d['threshold']:.4g}" in shown


def test_callback_refreshes_the_plots_every_n_trials() -> None:
    study = optuna.create_study(
        study_name="swift-callback",
        sampler=optuna.samplers.RandomSampler(seed=1),
        pruner=SwiftHyperbandPruner(
            mode="paper", min_resource=1, max_resource=MAX_RESOURCE, min_train_curves=3
        ),
    )
    study.optimize(swift_objective, n_trials=7, callbacks=[DashboardCallback(every=3)])
    # Refreshed after trials 3 and 6, not after 7: the plot shows the study after trial 6.
    attrs = study._storage.get_study_system_attrs(study._study_id)
    prefix = f"{PLOT_PREFIX}{EPOCHS_PLOT_ID}:"
    chunks = sorted((int(k[len(prefix) :]), v) for k, v in attrs.items() if k.startswith(prefix))
    figure = json.loads("".join(v for _, v in chunks))
    after_six = sum(t.last_step or 0 for t in study.trials[:6])
    assert figure["data"][0]["x"][-1] == after_six
    assert after_six < sum(t.last_step or 0 for t in study.trials)


@pytest.mark.parametrize("every", [0, -1, 2.5, True])
def test_callback_rejects_bad_every(every) -> None:
    with pytest.raises(ValueError, match="every must be"):
        DashboardCallback(every=every)


@pytest.mark.parametrize("missing", ["optuna_dashboard", "plotly"])
def test_missing_dashboard_names_the_extra(monkeypatch, missing) -> None:
    study = optuna.create_study()
    # None in sys.modules makes the import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, missing, None)
    monkeypatch.setitem(sys.modules, f"{missing}.graph_objects", None)
    extra = r'pip install "optuna-qsvr\[dashboard\]"'
    with pytest.raises(ImportError, match=extra):
        publish_plots(study)
    with pytest.raises(ImportError, match=extra):
        DashboardCallback()
