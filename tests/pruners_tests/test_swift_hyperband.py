from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from optuna_qsvr import SwiftHyperbandPruner, _records
from optuna_qsvr.predictors import BasePredictor, ModelFormatError, SVRPredictor
from optuna_qsvr.report import fit_records
from tests.conftest import plant_hostile_model
from tests.pruners_tests._helpers import add_complete
from tests.pruners_tests._helpers import ask_in_bracket as _ask_in_bracket
from tests.pruners_tests._helpers import flat as _flat
from tests.pruners_tests._helpers import run_curve as _run_curve


class LastValuePredictor(BasePredictor):
    """A transparent forecaster: the target equals the last value seen, plus ``offset``."""

    fits = 0

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def fit(self, curves, targets, params=None):
        type(self).fits += 1
        return self

    def predict(self, curves, params=None):
        last = np.array([row[np.isfinite(row)][-1] for row in np.atleast_2d(curves)])
        return last + self.offset, np.full(len(last), 0.1)

    def to_json(self) -> str:
        return json.dumps({"offset": self.offset})

    @classmethod
    def from_json(cls, text: str):
        doc = json.loads(text)
        if set(doc) != {"offset"} or not isinstance(doc["offset"], (int, float)):
            raise ModelFormatError("bad LastValuePredictor record")
        return cls(doc["offset"])


class BrokenPredictor(LastValuePredictor):
    def predict(self, curves, params=None):
        raise RuntimeError("annealer exploded")


def _paper_pruner(predictor: BasePredictor, min_train_curves: int) -> SwiftHyperbandPruner:
    """The paper mode at R=9, every decision a forecast (no full trainings)."""
    return SwiftHyperbandPruner(
        mode="paper",
        max_resource=9,
        min_train_curves=min_train_curves,
        full_fraction=0.0,
        predictor=predictor,
    )


def _add_complete(study: optuna.Study, value: float, steps: int) -> None:
    add_complete(study, _flat(value, steps))


def _decision(trial: optuna.trial.FrozenTrial, rung: int) -> dict:
    return _records.decisions(trial.system_attrs)[rung]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_resource": None},
        {"max_resource": "auto"},
        {"max_resource": 9, "reduction_factor": 1},
        {"max_resource": 9, "min_resource": 0},
        {"max_resource": 9, "known_curve": 1.0},
        {"max_resource": 9, "threshold_quantile": 0.0},
        {"max_resource": 9, "min_train_curves": 2},
        {"max_resource": 9, "full_fraction": 1.5},
        {"max_resource": 9, "confidence": 1.0},
        {"max_resource": 9, "predictor": "gp"},
        {"max_resource": 9, "features": ("curve", "spline")},
    ],
)
def test_invalid_arguments_name_the_value(kwargs) -> None:
    with pytest.raises(ValueError, match=r"must|auto"):
        SwiftHyperbandPruner(mode="paper", **kwargs)


def test_hand_checked_decisions(storage_factory, study_name) -> None:
    """Bracket 0 of R=9 has one rung: decide at step 5 on a forecast of step 9."""
    pruner = SwiftHyperbandPruner(
        mode="paper",
        max_resource=9,
        min_train_curves=4,
        full_fraction=0.0,
        predictor=LastValuePredictor(),
    )
    study = optuna.create_study(storage=storage_factory(), study_name=study_name, pruner=pruner)
    for value in (0.1, 0.2, 0.3, 0.4):
        _add_complete(study, value, 9)
    # No rung-mates trained fully yet: the threshold is the 25th percentile of the key's
    # curves at step 9, np.quantile([.1, .2, .3, .4], .25) = 0.175.
    _ask_in_bracket(study, pruner, 0)
    good = _run_curve(study, _flat(0.15, 9))
    d = _decision(good, 0)
    assert (d["decision"], d["decision_step"], d["key"]) == ("kept", 5, "r9_t5")
    assert d["forecast"] == pytest.approx(0.15) and d["threshold"] == pytest.approx(0.175)
    assert good.state == TrialState.COMPLETE and good.last_step == 9
    assert _records.bracket_of_trial(good.user_attrs) == 0
    assert "kept at 5 (r9_t5)" in good.user_attrs[_records.decision_text_attr(0)]

    _ask_in_bracket(study, pruner, 0)
    bad = _run_curve(study, _flat(0.35, 9))
    d = _decision(bad, 0)
    # The kept trial's curve joined the pool: quantile([.1, .15, .2, .3, .4], .25) = 0.15.
    # 0.35 loses to it and ranks last of the rung's values (0.15 observed, itself).
    assert d["decision"] == "pruned" and d["threshold"] == pytest.approx(0.15)
    assert bad.state == TrialState.PRUNED and bad.last_step == 5
    assert LastValuePredictor.fits >= 1
    records = fit_records(study)
    assert [r["key"] for r in records] == ["r9_t5"] and records[0]["n_train"] == 4


def test_full_quota_follows_full_fraction(storage_factory, study_name) -> None:
    # full_fraction 1, eta 3: the n-th decision of a rung is "full" while
    # n_full < ceil((n + 1) / 3): decisions 1 and 4 are full, 2 and 3 are forecast.
    pruner = SwiftHyperbandPruner(
        mode="paper",
        max_resource=9,
        min_train_curves=3,
        full_fraction=1.0,
        predictor=LastValuePredictor(),
    )
    study = optuna.create_study(storage=storage_factory(), study_name=study_name, pruner=pruner)
    for value in (0.1, 0.2, 0.3):
        _add_complete(study, value, 9)
    got = []
    for value in (0.5, 0.05, 0.06, 0.9):
        _ask_in_bracket(study, pruner, 0)
        got.append(_decision(_run_curve(study, _flat(value, 9)), 0)["decision"])
    assert got == ["full", "kept", "kept", "full"]


def test_too_few_curves_means_full_then_asha(storage_factory, study_name) -> None:
    pruner = SwiftHyperbandPruner(mode="paper", max_resource=9, min_train_curves=50)
    study = optuna.create_study(storage=storage_factory(), study_name=study_name, pruner=pruner)
    for i in range(12):
        _run_curve(study, _flat(1.0 - i / 20, 9))
    decisions = [
        v["decision"] for t in study.trials for v in _records.decisions(t.system_attrs).values()
    ]
    assert decisions and set(decisions) == {"full"}
    assert fit_records(study) == []


def test_broken_predictor_falls_back_and_warns_once(caplog, study_name) -> None:
    pruner = SwiftHyperbandPruner(
        mode="paper",
        max_resource=9,
        min_train_curves=3,
        full_fraction=0.0,
        predictor=BrokenPredictor(),
    )
    study = optuna.create_study(study_name=study_name, pruner=pruner)
    for value in (0.1, 0.2, 0.3):
        _add_complete(study, value, 9)
    with caplog.at_level(logging.WARNING):
        for value in (0.5, 0.6):
            _ask_in_bracket(study, pruner, 0)
            trial = _run_curve(study, _flat(value, 9))
            d = _decision(trial, 0)
            assert d["decision"] == "no-forecast"
            assert "RuntimeError: annealer exploded" in d["reason"]
            assert trial.state == TrialState.COMPLETE
    assert sum("annealer exploded" in r.message for r in caplog.records) == 1


def test_failing_fit_is_recorded_and_not_retried_at_once(study_name) -> None:
    class FailingFit(LastValuePredictor):
        def fit(self, curves, targets, params=None):
            raise TimeoutError("QPU unreachable")

    pruner = SwiftHyperbandPruner(
        mode="paper", max_resource=9, min_train_curves=3, full_fraction=0.0, predictor=FailingFit()
    )
    study = optuna.create_study(study_name=study_name, pruner=pruner)
    for value in (0.1, 0.2, 0.3):
        _add_complete(study, value, 9)
    for value in (0.5, 0.6):
        _ask_in_bracket(study, pruner, 0)
        d = _decision(_run_curve(study, _flat(value, 9)), 0)
        assert d["decision"] == "no-forecast"
        assert "QPU unreachable" in d["reason"]
    assert fit_records(study) == []


def test_nan_inf_and_gaps_never_crash(storage_factory, study_name) -> None:
    pruner = SwiftHyperbandPruner(mode="paper", max_resource=27, min_train_curves=5)
    study = optuna.create_study(storage=storage_factory(), study_name=study_name, pruner=pruner)
    rng = np.random.default_rng(0)
    for i in range(60):
        rate = rng.uniform(0.05, 0.5)
        curve = {s: math.exp(-rate * s) for s in range(2, 28, 2)}  # every 2 epochs
        if i % 7 == 0:
            curve[4] = math.nan
        if i % 11 == 0:
            curve[6] = math.inf
        _run_curve(study, curve)
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    records = [v for t in study.trials for v in _records.decisions(t.system_attrs).values()]
    assert {r["decision"] for r in records} >= {"full"}
    # With reports every 2 epochs, each decision happens at the first step past t*.
    for r in records:
        assert r["step"] >= r["decision_step"] and r["step"] - r["decision_step"] <= 1
    assert fit_records(study), "a predictor should have been fitted from the gapped curves"


def test_maximize_mirrors_minimize(study_name) -> None:
    def run(direction: str) -> list[tuple]:
        pruner = SwiftHyperbandPruner(mode="paper", max_resource=27, min_train_curves=5)
        study = optuna.create_study(direction=direction, study_name=study_name, pruner=pruner)
        sign = 1.0 if direction == "minimize" else -1.0
        rng = np.random.default_rng(1)
        for _ in range(50):
            rate, floor = rng.uniform(0.05, 0.5), rng.uniform(0, 0.3)
            _run_curve(study, {s: sign * (floor + math.exp(-rate * s)) for s in range(1, 28)})
        return [(t.state, t.last_step) for t in study.trials]

    assert run("minimize") == run("maximize")


def test_multi_objective_is_a_clear_error(study_name) -> None:
    pruner = SwiftHyperbandPruner(mode="paper", max_resource=9)
    study = optuna.create_study(directions=["minimize", "minimize"], pruner=pruner)
    trial = study.ask()
    with pytest.raises(NotImplementedError, match="multi-objective"):
        trial.report(1.0, 1)
    with pytest.raises(ValueError, match="single-objective"):
        pruner.prune(study, study._storage.get_trial(trial._trial_id))


def test_trial_that_never_reaches_a_decision_step(study_name) -> None:
    pruner = SwiftHyperbandPruner(mode="paper", max_resource=27)
    study = optuna.create_study(study_name=study_name, pruner=pruner)
    trial = _run_curve(study, {1: 0.5})
    assert trial.state == TrialState.COMPLETE
    assert not _records.decisions(trial.system_attrs)


def test_hostile_model_record_is_rejected_and_refitted(study_name) -> None:
    pruner = SwiftHyperbandPruner(
        mode="paper", max_resource=9, min_train_curves=3, full_fraction=0.0
    )
    study = optuna.create_study(study_name=study_name, pruner=pruner)
    rng = np.random.default_rng(0)
    for _ in range(6):
        rate = rng.uniform(0.1, 0.5)
        study.add_trial(
            optuna.trial.create_trial(
                value=math.exp(-rate * 9),
                intermediate_values={s: math.exp(-rate * s) for s in range(1, 10)},
            )
        )
    plant_hostile_model(study, "r9_t5", "svr")
    _ask_in_bracket(study, pruner, 0)
    trial = _run_curve(study, {s: math.exp(-0.3 * s) for s in range(1, 10)})
    d = _decision(trial, 0)
    assert d["decision"] in ("kept", "pruned") and d["forecast"] is not None
    (record,) = fit_records(study)
    assert record["version"] == 2 and record["kind"] == "svr"


def test_a_header_whose_settings_are_not_a_mapping_is_rejected_and_refitted(study_name) -> None:
    pruner = SwiftHyperbandPruner(
        mode="paper", max_resource=9, min_train_curves=3, full_fraction=0.0
    )
    study = optuna.create_study(study_name=study_name, pruner=pruner)
    for value in (0.1, 0.2, 0.3):
        _add_complete(study, value, 9)
    plant_hostile_model(study, "r9_t5", "svr")
    header = study._storage.get_study_system_attrs(study._study_id)[_records.model_attr("r9_t5")]
    study._storage.set_study_system_attr(
        study._study_id, _records.model_attr("r9_t5"), dict(header, settings="abc")
    )
    _ask_in_bracket(study, pruner, 0)
    trial = _run_curve(study, _flat(0.15, 9))
    assert trial.state == TrialState.COMPLETE
    assert _decision(trial, 0)["forecast"] is not None
    (record,) = fit_records(study)
    assert record["version"] == 2 and record["kind"] == "svr"


def test_a_from_json_that_raises_anything_is_a_rejected_record(caplog, study_name) -> None:
    # A user's predictor whose from_json fails with another error than ModelFormatError:
    # the workers that load its model refit it instead of failing their trials.
    class Brittle(LastValuePredictor):
        @classmethod
        def from_json(cls, text: str):
            raise KeyError("offset")

    def pruner() -> SwiftHyperbandPruner:
        return _paper_pruner(Brittle(), min_train_curves=3)

    first = pruner()
    study = optuna.create_study(study_name=study_name, pruner=first)
    for value in (0.1, 0.2, 0.3):
        _add_complete(study, value, 9)
    _ask_in_bracket(study, first, 0)
    _run_curve(study, _flat(0.15, 9))
    assert [r["version"] for r in fit_records(study)] == [1]
    # Another worker: a fresh pruner on the same storage, which must load the model.
    second = pruner()
    other = optuna.load_study(study_name=study_name, storage=study._storage, pruner=second)
    _ask_in_bracket(other, second, 0)
    with caplog.at_level(logging.WARNING):
        trial = _run_curve(other, _flat(0.12, 9))
    assert trial.state == TrialState.COMPLETE
    assert _decision(trial, 0)["forecast"] is not None
    assert [r["version"] for r in fit_records(other)] == [2]
    assert any("Brittle.from_json raised KeyError" in r.message for r in caplog.records)


def test_n_jobs_4_fits_each_key_once(tmp_path, study_name) -> None:
    pruner = SwiftHyperbandPruner(mode="paper", max_resource=27, min_train_curves=5)
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'jobs.db'}", study_name=study_name, pruner=pruner
    )

    def objective(trial: optuna.Trial) -> float:
        rate = trial.suggest_float("rate", 0.02, 0.5, log=True)
        floor = trial.suggest_float("floor", 0.0, 0.3)
        for s in range(1, 28):
            value = floor + math.exp(-rate * s)
            trial.report(value, s)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    study.optimize(objective, n_trials=80, n_jobs=4)
    assert len(study.trials) == 80
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    records = fit_records(study)
    assert records and all(r["version"] == 1 for r in records)
    pruned_on_forecast = [
        t
        for t in study.trials
        for v in _records.decisions(t.system_attrs).values()
        if v["decision"] == "pruned"
    ]
    assert pruned_on_forecast


SECOND_PROCESS = textwrap.dedent(
    """
    import json, math, sys
    import optuna
    from optuna.trial import TrialState
    from optuna_qsvr import SwiftHyperbandPruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, name, start, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    study = optuna.load_study(
        storage=url, study_name=name,
        pruner=SwiftHyperbandPruner(mode="paper", max_resource=27, min_train_curves=5),
    )
    for i in range(start, stop):
        rate, floor = 0.03 + (i * 37 % 50) / 100, (i * 13 % 30) / 100
        trial = study.ask()
        for s in range(1, 28):
            trial.report(floor + math.exp(-rate * s), s)
            if trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, floor + math.exp(-rate * 27))
    """
)


def _decisions(url: str, name: str) -> list:
    study = optuna.load_study(storage=url, study_name=name)
    return [
        (
            t.number,
            t.state,
            t.last_step,
            sorted(
                (k, v["decision"], v.get("forecast"))
                for k, v in _records.decisions(t.system_attrs).items()
            ),
        )
        for t in study.trials
    ]


def test_fresh_process_reproduces_decisions_from_storage(tmp_path, study_name) -> None:
    script = tmp_path / "worker.py"
    script.write_text(SECOND_PROCESS)
    one, two = f"sqlite:///{tmp_path / 'one.db'}", f"sqlite:///{tmp_path / 'two.db'}"
    for url in (one, two):
        optuna.create_study(storage=url, study_name=study_name)
    # Same study name, same trial sequence: once in one process, once split over two
    # processes (the second one loads the first one's fitted predictors from storage).
    run = [sys.executable, str(script)]
    subprocess.run([*run, one, study_name, "0", "70"], check=True)
    subprocess.run([*run, two, study_name, "0", "35"], check=True)
    subprocess.run([*run, two, study_name, "35", "70"], check=True)
    a, b = _decisions(one, study_name), _decisions(two, study_name)
    assert a == b
    assert any(d == "pruned" for *_, ds in a for _, d, _ in ds)
    assert len(fit_records(optuna.load_study(storage=two, study_name=study_name))) >= 1


def test_svr_predictor_survives_the_storage_round_trip(study_name) -> None:
    rng = np.random.default_rng(0)
    rates = rng.uniform(0.05, 0.5, 20)
    curves = np.exp(-np.outer(rates, np.arange(1, 6)))
    p = SVRPredictor().fit(curves, np.exp(-rates * 9))
    study = optuna.create_study(study_name=study_name)
    _records.publish_model(
        study._storage,
        study._study_id,
        "k",
        p.to_json(),
        {"kind": "svr", "n_train": 20, "fit_seconds": 0.0},
    )
    _header, text = _records.read_model(
        study._storage.get_study_system_attrs(study._study_id), "k"
    )
    q = SVRPredictor.from_json(text)
    assert np.array_equal(p.predict(curves)[0], q.predict(curves)[0])


def test_rank_rule_compares_forecasts_with_forecasts(study_name) -> None:
    """Baker mode with the rank rule: R=9, bracket 0 decides at 5 on a forecast of step 9."""
    pruner = SwiftHyperbandPruner(
        mode="paper",
        max_resource=9,
        min_train_curves=3,
        full_fraction=0.0,
        forecast_final=True,
        rank_quantile=0.34,
        predictor=LastValuePredictor(),
    )
    study = optuna.create_study(study_name=study_name, pruner=pruner)
    for value in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6):
        _add_complete(study, value, 9)
    # The threshold is the best final so far (0.1). 0.15 loses to it, but its forecast ranks
    # 2nd of 7 among the forecasts of all trials that reached step 5: within ceil(.34 * 7) = 3.
    _ask_in_bracket(study, pruner, 0)
    d = _decision(_run_curve(study, _flat(0.15, 9)), 0)
    assert (d["decision"], d["threshold"]) == ("kept", pytest.approx(0.1))
    assert d["reason"] == "forecast ranks 2 of 7, within top 3"
    # 0.55 ranks 7th of 8: pruned.
    _ask_in_bracket(study, pruner, 0)
    d = _decision(_run_curve(study, _flat(0.55, 9)), 0)
    assert d["decision"] == "pruned"
    assert d["reason"] == "forecast loses to threshold; forecast ranks 7 of 8, outside top 3"


def test_a_copied_or_unpickled_pruner_starts_afresh_with_its_own_lease_owner() -> None:
    """Workers get the pruner as a copy or a pickle, often of one already used. Each copy
    decides as a fresh pruner does, fits with a lock of its own, holds leases under an owner
    id of its own (two workers sharing one would both believe they hold a fit lease), and
    gives its own warnings once."""
    import copy
    import pickle

    def play(pruner: SwiftHyperbandPruner) -> list:
        study = optuna.create_study(study_name="copies", pruner=pruner)
        for value in (0.1, 0.2, 0.3, 0.4):
            _add_complete(study, value, 9)
        out = []
        for value in (0.15, 0.9, 0.35):
            _ask_in_bracket(study, pruner, 0)
            trial = _run_curve(study, _flat(value, 9))
            out.append((trial.state, trial.last_step, _records.decisions(trial.system_attrs)))
        return out

    def warns_of_step_0(pruner: SwiftHyperbandPruner, study: optuna.Study) -> bool:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trial = optuna.trial.Trial(study, study._storage.create_new_trial(study._study_id))
            trial.report(0.5, 0)
            pruner.prune(study, study._storage.get_trial(trial._trial_id))
        return any("reported step 0" in str(w.message) for w in caught)

    def new() -> SwiftHyperbandPruner:
        return _paper_pruner(LastValuePredictor(), min_train_curves=4)

    used = new()
    expected = play(used)
    assert {d["decision"] for *_, ds in expected for d in ds.values()} == {"kept", "pruned"}
    zero = optuna.create_study(study_name="zero-based")
    assert warns_of_step_0(used, zero) and not warns_of_step_0(used, zero)  # once per study
    copies = [copy.deepcopy(used), pickle.loads(pickle.dumps(used))]
    for twin in copies:
        assert play(twin) == expected
        assert warns_of_step_0(twin, zero)
    owners = {p._store._owner for p in (used, *copies)}
    assert len(owners) == 3 and None not in owners


def test_each_kind_of_problem_warns_once_per_predictor_key(caplog, monkeypatch) -> None:
    """An outage would otherwise flood the log: one warning per study, kind of problem and
    predictor key, however its details vary (the first fit fails, then every forecast fails
    with another message)."""
    from optuna_qsvr.pruners import _model_store

    monkeypatch.setattr(_model_store, "FAILED_FIT_PAUSE", 0.0)

    class Flaky(LastValuePredictor):
        fitted = predicted = 0

        def fit(self, curves, targets, params=None):
            Flaky.fitted += 1
            if Flaky.fitted == 1:
                raise RuntimeError("outage")
            return self

        def predict(self, curves, params=None):
            Flaky.predicted += 1
            raise RuntimeError(f"glitch {Flaky.predicted}")

    pruner = SwiftHyperbandPruner(
        mode="paper", max_resource=9, min_train_curves=3, full_fraction=0.0, predictor=Flaky()
    )
    study = optuna.create_study(study_name="flaky", pruner=pruner)
    for value in (0.1, 0.2, 0.3):
        _add_complete(study, value, 9)
    with caplog.at_level(logging.WARNING, logger="optuna_qsvr.pruners"):
        for bracket in (0, 0, 0, 1, 1):
            _ask_in_bracket(study, pruner, bracket)
            trial = _run_curve(study, _flat(0.5, 9))
            assert _decision(trial, 0)["decision"] == "no-forecast"
    warned = [r.getMessage() for r in caplog.records if r.name == "optuna_qsvr.pruners"]
    assert Flaky.fitted == 3 and Flaky.predicted == 4  # r9_t5 twice, then r3_t2
    assert len(warned) == 3, warned
    assert "r9_t5: predictor fit failed, ASHA decides: RuntimeError: outage" in warned[0]
    assert "r9_t5: predictor failed: RuntimeError: glitch 1" in warned[1]
    assert "r3_t2: predictor failed: RuntimeError: glitch 3" in warned[2]
