from __future__ import annotations

import argparse
import collections
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator

import optuna
import pytest
from optuna.trial import TrialState

from optuna_qsvr import SwiftHyperbandPruner
from optuna_qsvr._dashboard import EPOCHS_PLOT_ID, FORECAST_PLOT_ID
from optuna_qsvr._report import add_report_arguments, build_report, run_report

MAX_RESOURCE = 9


def swift_objective(trial: optuna.Trial) -> float:
    """Exponential decay to a floor: curves cross rarely, so forecasts are meaningful."""
    rate = trial.suggest_float("rate", 0.02, 1.0, log=True)
    floor = trial.suggest_float("floor", 0.0, 1.0)
    for step in range(1, MAX_RESOURCE + 1):
        trial.report(floor + math.exp(-rate * step), step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return floor + math.exp(-rate * MAX_RESOURCE)


def make_swift_study(url: str, name: str, n_trials: int) -> optuna.Study:
    """A real study decided by the real pruner, on ``url``."""
    study = optuna.create_study(
        storage=url,
        study_name=name,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=SwiftHyperbandPruner(min_resource=1, max_resource=MAX_RESOURCE, min_train_curves=3),
    )
    study.optimize(swift_objective, n_trials=n_trials)
    return study


def fast_sqlite_dir() -> str:
    # SQLite syncs every commit; on tmpfs the study builds in seconds instead of a minute.
    return tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)


@pytest.fixture(scope="module")
def swift_study() -> Iterator[tuple[str, str]]:
    directory = fast_sqlite_dir()
    url = f"sqlite:///{directory}/study.db"
    try:
        make_swift_study(url, "swift-report", 36)
        yield url, "swift-report"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _load(swift_study: tuple[str, str]) -> optuna.Study:
    url, name = swift_study
    return optuna.load_study(study_name=name, storage=url)


def _records(trial: optuna.trial.FrozenTrial, prefix: str) -> dict[int, dict]:
    attrs = trial.system_attrs
    return {int(k[len(prefix) :]): v for k, v in attrs.items() if k.startswith(prefix)}


def test_rung_counts_match_the_trials_records(swift_study) -> None:
    study = _load(swift_study)
    expected: collections.Counter = collections.Counter()
    for t in study.trials:
        bracket = t.user_attrs.get("swift:bracket")
        for rung, d in _records(t, "swift:decision:").items():
            assert d["bracket"] == bracket
            expected[(bracket, rung, d["decision"])] += 1
        for rung, p in _records(t, "swift:promotion:").items():
            expected[(bracket, rung, p["decision"])] += 1
    # The study must exercise every kind of decision, or the comparison proves little.
    kinds = {k[2] for k in expected}
    assert {"full", "kept", "pruned", "promoted", "stopped"} <= kinds

    report = build_report(study)
    got: collections.Counter = collections.Counter()
    for row in report["rungs"]:
        for kind in ("full", "kept", "pruned", "no-forecast", "promoted", "stopped"):
            if row[kind]:
                got[(row["bracket"], row["rung"], kind)] += row[kind]
    assert got == expected

    per_bracket = collections.Counter(t.user_attrs.get("swift:bracket") for t in study.trials)
    assert {b["bracket"]: b["trials"] for b in report["brackets"]} == dict(per_bracket)
    assert report["states"] == dict(collections.Counter(t.state.name for t in study.trials))


def test_epochs_spent_and_known_saving(swift_study) -> None:
    study = _load(swift_study)
    spent = sum(t.last_step or 0 for t in study.trials)
    saving = 0
    n_pruned = 0
    for t in study.trials:
        for d in _records(t, "swift:decision:").values():
            if d["decision"] == "pruned":
                # Pruned where it was forecast, before the rung's budget.
                assert t.state == TrialState.PRUNED
                assert d["decision_step"] <= t.last_step == d["step"] < d["budget"]
                saving += d["budget"] - t.last_step
                n_pruned += 1
    assert n_pruned > 0

    report = build_report(study)
    assert report["epochs"] == {
        "spent": spent,
        "forecast_pruned": n_pruned,
        "known_saving": saving,
        "hyperband_at_least": spent + saving,
    }
    assert sum(b["epochs"] for b in report["brackets"]) == spent
    assert sum(b["known_saving"] for b in report["brackets"]) == saving
    progress = report["progress"]
    assert [p["number"] for p in progress] == [t.number for t in study.trials]
    assert progress[-1]["epochs"] == spent
    assert progress[-1]["hyperband_epochs"] == spent + saving
    assert progress[-1]["best"] == study.best_value == report["best_value"]
    bests = [p["best"] for p in progress if p["best"] is not None]
    assert bests == sorted(bests, reverse=True)  # minimised: never gets worse


def test_fits_match_the_published_predictors(swift_study) -> None:
    study = _load(swift_study)
    attrs = study._storage.get_study_system_attrs(study._study_id)
    headers = {
        k[len("swift:model:") :]: v
        for k, v in attrs.items()
        if k.startswith("swift:model:") and ":v" not in k[len("swift:model:") :]
    }
    assert headers
    forecasts: collections.Counter = collections.Counter()
    pruned: collections.Counter = collections.Counter()
    checked: dict[str, list[float]] = collections.defaultdict(list)
    for t in study.trials:
        for d in _records(t, "swift:decision:").values():
            if d["forecast"] is None:
                continue
            forecasts[d["key"]] += 1
            pruned[d["key"]] += d["decision"] == "pruned"
            target = int(d["key"].split("_")[0][1:])
            if target in t.intermediate_values:
                checked[d["key"]].append(d["forecast"] - t.intermediate_values[target])

    report = build_report(study)
    assert {f["key"] for f in report["fits"]} == set(headers)
    for f in report["fits"]:
        h = headers[f["key"]]
        assert (f["kind"], f["n_train"], f["fit_seconds"], f["cv_rmse"], f["annealer"]) == (
            h["kind"],
            h["n_train"],
            h["fit_seconds"],
            h["cv_rmse"],
            h.get("annealer"),
        )
        assert f["forecasts"] == forecasts[f["key"]]
        assert f["pruned"] == pruned[f["key"]]
        errors = checked.get(f["key"], [])
        assert f["checked"] == len(errors)
        if errors:
            rmse = math.sqrt(sum(e * e for e in errors) / len(errors))
            assert f["observed_rmse"] == pytest.approx(rmse)
        assert len(report["forecasts"].get(f["key"], [])) == len(errors)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    return parser.parse_args(list(argv))


def test_report_command_prints_tables_and_writes_html(swift_study, tmp_path, capsys) -> None:
    url, name = swift_study
    study = _load(swift_study)
    report = build_report(study)
    out_file = tmp_path / "report.html"

    assert run_report(_parse("--storage", url, "--study-name", name, "--html", str(out_file))) == 0
    printed = capsys.readouterr().out
    for heading in ("Brackets", "Rungs", "Predictor fits", "epochs spent"):
        assert heading in printed
    assert str(report["epochs"]["spent"]) in printed
    for f in report["fits"]:
        assert f["key"] in printed

    page = out_file.read_text()
    assert page.startswith("<!DOCTYPE html>")
    # Offline: plotly.js is inside the file, not fetched from a CDN.
    assert not re.search(r"<script[^>]*\ssrc=", page) and len(page) > 1_000_000
    for figure_id in (FORECAST_PLOT_ID, EPOCHS_PLOT_ID):
        assert f'id="{figure_id}"' in page
    assert page.count("Plotly.newPlot(") == 2
    for f in report["fits"]:
        assert f"<td>{f['key']}</td>" in page
    # The figure data are the report's: every checked forecast appears in its key's trace.
    figure_json = page[page.index(f'"{FORECAST_PLOT_ID}"') :]
    first = next(iter(report["forecasts"].values()))[0]
    assert json.dumps(first["forecast"]) in figure_json


def test_report_command_finds_the_only_study_and_rejects_unknown(swift_study, capsys) -> None:
    url, name = swift_study
    assert run_report(_parse("--storage", url)) == 0
    assert name in capsys.readouterr().out
    assert run_report(_parse("--storage", url, "--study-name", "nope")) == 2
    assert "no study named 'nope'" in capsys.readouterr().err


def test_maximised_study_reports_in_the_users_units() -> None:
    def maximised_objective(trial: optuna.Trial) -> float:
        # The same curves, negated: reports and values are maximised.
        rate = trial.suggest_float("rate", 0.02, 1.0, log=True)
        floor = trial.suggest_float("floor", 0.0, 1.0)
        for step in range(1, MAX_RESOURCE + 1):
            trial.report(-(floor + math.exp(-rate * step)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return -(floor + math.exp(-rate * MAX_RESOURCE))

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=SwiftHyperbandPruner(min_resource=1, max_resource=MAX_RESOURCE, min_train_curves=3),
    )
    study.optimize(maximised_objective, n_trials=24)
    report = build_report(study)
    assert report["direction"] == "maximize"
    assert report["best_value"] == study.best_value < 0
    bests = [p["best"] for p in report["progress"] if p["best"] is not None]
    assert bests == sorted(bests) and bests[-1] == study.best_value
    pairs = [p for ps in report["forecasts"].values() for p in ps]
    assert pairs and all(p["forecast"] < 0 and p["observed"] < 0 for p in pairs)


def test_study_without_the_pruner_reports_nothing_decided() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    report = build_report(study)
    assert report["rungs"] == [] and report["fits"] == [] and report["forecasts"] == {}
    assert report["brackets"] == [
        {"bracket": None, "trials": 3, "complete": 3, "pruned": 0, "epochs": 0, "known_saving": 0}
    ]
    assert report["epochs"]["known_saving"] == 0
