from __future__ import annotations

import collections
import io
import math

import optuna
import pytest
from optuna.trial import TrialState
from rich.console import Console

from optuna_qsvr import SwiftHyperbandPruner, _records
from optuna_qsvr.report import build_report, fit_records, render_terminal
from tests.report_tests.conftest import MAX_RESOURCE, load, make_swift_study


def test_rung_counts_match_the_trials_records(swift_study) -> None:
    study = load(swift_study)
    expected: collections.Counter = collections.Counter()
    for t in study.trials:
        bracket = _records.bracket_of_trial(t.user_attrs)
        records = _records.read_trial(t.system_attrs)
        assert not records.malformed
        for rung, d in records.decisions.items():
            assert d["bracket"] == bracket
            expected[(bracket, rung, d["decision"])] += 1
        for rung, p in records.promotions.items():
            expected[(bracket, rung, p["decision"])] += 1
    # The study must exercise every kind of decision, or the comparison proves little.
    kinds = {k[2] for k in expected}
    assert {"full", "kept", "pruned", "promoted", "stopped"} <= kinds

    report = build_report(study)
    got: collections.Counter = collections.Counter()
    for row in report["rungs"]:
        for kind in _records.DECISIONS + _records.PROMOTIONS:
            if row[kind]:
                got[(row["bracket"], row["rung"], kind)] += row[kind]
    assert got == expected

    per_bracket = collections.Counter(
        _records.bracket_of_trial(t.user_attrs) for t in study.trials
    )
    assert {b["bracket"]: b["trials"] for b in report["brackets"]} == dict(per_bracket)
    assert report["states"] == dict(collections.Counter(t.state.name for t in study.trials))
    assert report["malformed"] == []


def test_regimes_count_the_trials_records() -> None:
    pruner = SwiftHyperbandPruner(min_resource=1, max_resource=MAX_RESOURCE, min_train_curves=3)
    study = make_swift_study(None, "regimes", 30, pruner=pruner)
    records = [_records.regime_of_trial(t.system_attrs) for t in study.trials]
    measured = [r for r in records if r is not None and r["persistence"] is not None]
    assert measured  # the study got far enough to measure its persistence

    regimes = build_report(study)["regimes"]
    assert regimes["forecast"] == sum(r is not None and r["regime"] == "forecast" for r in records)
    assert regimes["hyperband"] == sum(
        r is not None and r["regime"] == "hyperband" for r in records
    )
    assert regimes["forecast"] + regimes["hyperband"] == len(study.trials)
    assert regimes["persistence"] == measured[-1]["persistence"]
    out = io.StringIO()
    render_terminal(build_report(study), Console(file=out, width=200))
    assert f"{regimes['forecast']} / {regimes['hyperband']}" in out.getvalue()
    assert "rank persistence, last measured" in out.getvalue()


def test_paper_mode_reports_no_regime(swift_study) -> None:
    assert build_report(load(swift_study))["regimes"] == {
        "forecast": 0,
        "hyperband": 0,
        "persistence": None,
        "threshold": None,
    }


def test_epochs_spent_and_known_saving(swift_study) -> None:
    study = load(swift_study)
    spent = sum(t.last_step or 0 for t in study.trials)
    saving = 0
    n_pruned = 0
    for t in study.trials:
        for d in _records.read_trial(t.system_attrs).decisions.values():
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
    study = load(swift_study)
    headers = _records.model_headers(study._storage.get_study_system_attrs(study._study_id))
    assert headers
    forecasts: collections.Counter = collections.Counter()
    pruned: collections.Counter = collections.Counter()
    checked: dict[str, list[float]] = collections.defaultdict(list)
    for t in study.trials:
        for d in _records.read_trial(t.system_attrs).decisions.values():
            if d["forecast"] is None:
                continue
            forecasts[d["key"]] += 1
            pruned[d["key"]] += d["decision"] == "pruned"
            target, _ = _records.parse_predictor_key(d["key"])
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


def test_fit_records_are_the_headers_with_key_predictor_and_seconds(swift_study) -> None:
    study = load(swift_study)
    headers = _records.model_headers(study._storage.get_study_system_attrs(study._study_id))
    records = fit_records(study)
    assert [r["key"] for r in records] == sorted(headers, key=_records.key_order)
    for r in records:
        h = headers[r["key"]]
        assert r == {"key": r["key"], "predictor": h["kind"], "seconds": h["fit_seconds"], **h}


@pytest.mark.parametrize(
    "bad",
    ["pruned at 3", None, {"rung": 0, "step": 3, "key": "r9_t3", "forecast": None}],
    ids=["string", "null", "no-decision"],
)
def test_malformed_decision_record_is_skipped_and_counted(storage_factory, bad) -> None:
    study = make_swift_study(storage_factory(), "swift-malformed", 12)
    before = build_report(study)
    # A finished trial's attributes cannot change: plant the record on a new trial, beside a
    # well-formed record it must not hide.
    good = next(
        d for t in study.trials for d in _records.read_trial(t.system_attrs).decisions.values()
    )
    trial = study.ask()
    trial.report(1.0, 1)
    _records.write_decision(study._storage, trial._trial_id, {**good, "rung": 1})
    study._storage.set_trial_system_attr(trial._trial_id, _records.decision_attr(0), bad)
    study.tell(trial, 1.0)

    report = build_report(study)
    (malformed,) = report["malformed"]
    assert (malformed["number"], malformed["name"]) == (trial.number, _records.decision_attr(0))
    assert malformed["error"]
    decided = sum(r[k] for r in report["rungs"] for k in _records.DECISIONS)
    assert decided == sum(r[k] for r in before["rungs"] for k in _records.DECISIONS) + 1
    assert report["states"]["COMPLETE"] == before["states"]["COMPLETE"] + 1

    out = io.StringIO()
    render_terminal(report, Console(file=out, width=120))
    assert "malformed records, skipped" in out.getvalue()
    row = next(line for line in out.getvalue().splitlines() if "malformed records" in line)
    assert row.split()[-1] == "1"


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
        pruner=SwiftHyperbandPruner(
            mode="paper", min_resource=1, max_resource=MAX_RESOURCE, min_train_curves=3
        ),
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
