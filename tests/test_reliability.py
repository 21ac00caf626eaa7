"""Nothing silent, nothing lost (issue 14): the pruner and the sampler used the ways Optuna users
use them (a study deleted and recreated, resumed with other settings, 0-based or out-of-order
steps, NaN curves, NumPy integers, deep copies, pickles sent to another process), on SQLite.

Stored records are read by their key names rather than through the package, so that these tests
also run against older versions of it.
"""

from __future__ import annotations

import copy
import logging
import math
import pickle
import re
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import optuna
import pytest

from optuna_qsvr import SwiftHyperbandPruner, SwiftSampler

R = 9
# Decay rates in a fixed, shuffled order: every run of a test sees the same trials.
RATES = [0.05 + 0.9 * ((7 * i) % 24) / 23 for i in range(24)]
PRUNER = {"max_resource": R, "min_train_curves": 4}


def _objective(scale: float = 1.0, steps: range = range(1, R + 1)):
    """Exponential decays to a floor; ``scale`` changes what a predictor learns."""

    def objective(trial: optuna.Trial) -> float:
        rate = trial.suggest_float("rate", 0.01, 1.0)
        value = math.nan
        for step in steps:
            value = scale * (0.1 + math.exp(-rate * step))
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    return objective


def _run(study: optuna.Study, objective, rates=RATES) -> optuna.Study:
    for rate in rates:
        study.enqueue_trial({"rate": rate})
    study.optimize(objective, n_trials=len(rates))
    return study


def _decisions(study: optuna.Study) -> dict[int, dict[str, object]]:
    return {
        t.number: {k: v for k, v in t.system_attrs.items() if k.startswith("swift:decision:")}
        for t in study.trials
    }


def _headers(study: optuna.Study) -> dict[str, dict]:
    attrs = study._storage.get_study_system_attrs(study._study_id)
    prefix = "swift:model:"
    return {
        k[len(prefix) :]: v
        for k, v in attrs.items()
        if k.startswith(prefix) and ":v" not in k[len(prefix) :]
    }


def _forecasts(study: optuna.Study) -> int:
    return sum(
        d.get("forecast") is not None
        for records in _decisions(study).values()
        for d in records.values()
    )


# -- 1: a study deleted and recreated under the same name ----------------------------------
def test_recreated_study_is_not_served_the_deleted_ones_caches(tmp_path) -> None:
    # One storage object, as a worker holds: SQLite gives the new study the deleted one's
    # study and trial ids again.
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'a.db'}")
    pruner = SwiftHyperbandPruner(**PRUNER)
    # The first study's curves are ten times larger: a predictor or record name cached from
    # it would give the second study other forecasts, or no decisions at all.
    first = optuna.create_study(storage=storage, study_name="same", pruner=pruner)
    _run(first, _objective(scale=10.0))
    assert _forecasts(first) > 0
    optuna.delete_study(study_name="same", storage=storage)

    again = optuna.create_study(storage=storage, study_name="same", pruner=pruner)
    _run(again, _objective())
    fresh_pruner = SwiftHyperbandPruner(**PRUNER)
    fresh = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'b.db'}", study_name="same", pruner=fresh_pruner
    )
    _run(fresh, _objective())

    assert _forecasts(again) > 0
    assert _decisions(again) == _decisions(fresh)
    # Every predictor of the recreated study was fitted on its own curves, once.
    assert {k: (h["version"], h["n_train"]) for k, h in _headers(again).items()} == {
        k: (h["version"], h["n_train"]) for k, h in _headers(fresh).items()
    }


# -- 2: 0-based steps ---------------------------------------------------------------------
def test_zero_based_steps_warn_once_with_the_fix() -> None:
    study = optuna.create_study(pruner=SwiftHyperbandPruner(**PRUNER))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _run(study, _objective(steps=range(R)), RATES[:8])
    messages = [str(w.message) for w in caught if "SwiftHyperbandPruner" in str(w.message)]
    assert len(messages) == 1, messages
    assert "reported step 0" in messages[0] and "epoch + 1" in messages[0]
    assert f"max_resource={R}" in messages[0]
    assert caught[0].filename == __file__  # points at the objective's should_prune

    one_based = optuna.create_study(pruner=SwiftHyperbandPruner(**PRUNER))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run(one_based, _objective(), RATES[:8])


# -- 3: resuming a study with other pruner settings ----------------------------------------
def test_resumed_study_with_other_settings_refits_and_warns_once(tmp_path, caplog) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(
        storage=url, study_name="resumed", pruner=SwiftHyperbandPruner(**PRUNER)
    )
    _run(study, _objective(), RATES[:16])
    before = _headers(study)
    assert before

    # The same rungs and keys, but predictors of other features: the stored ones are stale.
    changed = SwiftHyperbandPruner(**PRUNER, features=("curve", "diff1"))
    resumed = optuna.load_study(storage=url, study_name="resumed", pruner=changed)
    with caplog.at_level(logging.WARNING, logger="optuna_qsvr"):
        _run(resumed, _objective(), RATES[16:] + RATES[:8])
    after = _headers(resumed)
    refitted = {k for k in before if after[k]["version"] > before[k]["version"]}
    assert refitted, after
    assert all(after[k]["settings"]["features"] == ["curve", "diff1"] for k in refitted)
    rejected = [
        r.getMessage() for r in caplog.records if "fitted under other pruner settings" in r.message
    ]
    assert len(rejected) == len(refitted), rejected  # once per key
    assert all("features" in m for m in rejected)


# -- 5: the user's own curve: NaN values, steps out of order --------------------------------
def test_unusable_curve_is_named_not_blamed_on_the_predictor(caplog) -> None:
    pruner = SwiftHyperbandPruner(**PRUNER)
    # A fixed name fixes the brackets (a random one put all six NaN trials in the most
    # aggressive bracket in 5 of 60 tries: decided at rung ends only, never forecast).
    study = optuna.create_study(pruner=pruner, study_name="unusable-curve")
    assert {pruner.bracket_of(study.study_name, n) for n in range(12, 18)} != {2}
    study = _run(study, _objective(), RATES[:12])
    nan_curve = _objective(scale=math.nan)
    # Steps 6..9 first, then 1..5: nothing is known of the curve's start when it is judged.
    late_start = _objective(steps=[*range(6, R + 1), *range(1, 6)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with caplog.at_level(logging.WARNING, logger="optuna_qsvr"):
            _run(study, nan_curve, RATES[12:18])
            _run(study, late_start, RATES[18:])
    # What the records and the log say about those trials.
    said = [
        str(d.get("reason"))
        for t in study.trials[12:]
        for d in _decisions(study)[t.number].values()
    ] + [r.getMessage() for r in caplog.records]
    assert not [text for text in said if "predictor failed" in text], said
    assert any("NaN or infinite" in text for text in said), said
    late = re.compile(r"no step in 1\.\.\d+ was reported \(its first step is 6\).*increasing")
    assert any(late.search(text) for text in said), said
    out_of_order = [str(w.message) for w in caught if "increasing order" in str(w.message)]
    assert len(out_of_order) == 1 and "reported step 1 after step 9" in out_of_order[0]


# -- 11: arguments accepted but wrong ------------------------------------------------------
def test_sampler_rejects_a_sampler_name() -> None:
    with pytest.raises(TypeError, match=r"base_sampler must be .*BaseSampler.*'tpe'"):
        SwiftSampler(base_sampler="tpe")


def test_negative_fit_lease_is_rejected() -> None:
    with pytest.raises(ValueError, match="fit_lease_seconds must be > 0, got -1"):
        SwiftHyperbandPruner(max_resource=R, fit_lease_seconds=-1)


def test_numpy_integer_resources_run_a_study(tmp_path) -> None:
    pruner = SwiftHyperbandPruner(
        min_resource=np.int64(1),
        max_resource=np.int64(R),
        reduction_factor=np.int32(3),
        min_train_curves=np.int64(4),
    )
    url = f"sqlite:///{tmp_path / 'np.db'}"
    study = _run(optuna.create_study(storage=url, study_name="np", pruner=pruner), _objective())
    assert _forecasts(study) > 0
    plain = optuna.create_study(study_name="np", pruner=SwiftHyperbandPruner(**PRUNER))
    assert _decisions(study) == _decisions(_run(plain, _objective()))
    # The settings stored with each model are plain JSON numbers.
    assert all(type(h["settings"]["max_resource"]) is int for h in _headers(study).values())


# -- 12: deep copies and pickles -----------------------------------------------------------
def test_deep_copy_of_a_used_pruner_and_sampler_decides_the_same(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(
        storage=url,
        study_name="copied",
        sampler=SwiftSampler(optuna.samplers.RandomSampler(seed=0)),
        pruner=SwiftHyperbandPruner(**PRUNER),
    )
    _run(study, _objective(), RATES[:16])
    # Copied after use, with its caches and lock: as optuna users copy a study's parts.
    pruner, sampler = copy.deepcopy(study.pruner), copy.deepcopy(study.sampler)
    assert pruner is not study.pruner and sampler.base_sampler is not study.sampler.base_sampler
    shutil.copy(tmp_path / "study.db", tmp_path / "twin.db")
    twin = optuna.load_study(
        storage=f"sqlite:///{tmp_path / 'twin.db'}",
        study_name="copied",
        sampler=sampler,
        pruner=pruner,
    )
    _run(study, _objective(), RATES[16:])
    _run(twin, _objective(), RATES[16:])
    assert _forecasts(twin) > 0
    assert _decisions(twin) == _decisions(study)


_CHILD = textwrap.dedent(
    """
    import math, pickle, sys
    import optuna

    with open(sys.argv[1], "rb") as f:
        pruner, sampler = pickle.load(f)
    study = optuna.load_study(
        study_name="shared", storage=sys.argv[2], pruner=pruner, sampler=sampler
    )

    def objective(trial):
        rate = trial.suggest_float("rate", 0.01, 1.0)
        for step in range(1, 10):
            value = 0.1 + math.exp(-rate * step)
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    for rate in [float(r) for r in sys.argv[3].split(",")]:
        study.enqueue_trial({"rate": rate})
    study.optimize(objective, n_trials=len(sys.argv[3].split(",")))
    """
)


def test_pickled_pruner_and_sampler_work_in_another_process(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    pruner = SwiftHyperbandPruner(**PRUNER)
    sampler = SwiftSampler(optuna.samplers.TPESampler(seed=0))
    study = optuna.create_study(storage=url, study_name="shared", pruner=pruner, sampler=sampler)
    _run(study, _objective(), RATES[:16])
    fitted = _headers(study)
    assert fitted

    path = tmp_path / "pruner.pkl"
    path.write_bytes(pickle.dumps((study.pruner, study.sampler)))
    rest = RATES[16:]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), url, ",".join(map(str, rest))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(storage=url, study_name="shared")
    child_trials = study.trials[16:]
    assert len(child_trials) == len(rest)
    assert all(t.state.is_finished() and t.state.name != "FAIL" for t in child_trials)
    decided = [d for t in child_trials for d in _decisions(study)[t.number].values()]
    assert any(d["forecast"] is not None for d in decided), decided
    # The unpickled pruner has the same settings: the child trusts the published predictors.
    assert "stored predictor rejected" not in done.stderr
    settings = next(iter(fitted.values()))["settings"]
    assert all(h["settings"] == settings for h in _headers(study).values())
