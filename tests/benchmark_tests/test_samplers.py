from __future__ import annotations

from typing import Any

import optuna
import pytest
from optuna.samplers import BaseSampler

from optuna_qsvr.benchmark import CurveTable, TableSampler, make_sampler, replay_async, run_one

optuna.logging.set_verbosity(optuna.logging.WARNING)

CONFIGS = {
    "A": {"lr": 1e-3, "units": 16, "act": "relu"},
    "B": {"lr": 1e-2, "units": 16, "act": "relu"},
    "C": {"lr": 1e-3, "units": 64, "act": "tanh"},
    "D": {"lr": 1e-1, "units": 64, "act": "tanh"},
}


def _table(configs: dict[str, dict[str, Any]] = CONFIGS) -> CurveTable:
    rows = [
        {"config": c, "step": s, "value": 1.0 / (s + i), **{f"param_{k}": v for k, v in p.items()}}
        for i, (c, p) in enumerate(configs.items())
        for s in (1, 2, 3)
    ]
    return CurveTable.from_rows(rows)


class FixedSampler(BaseSampler):
    """Proposes the same point every time."""

    def __init__(self, point: dict[str, Any]) -> None:
        self.point = point

    def infer_relative_search_space(self, study, trial):  # type: ignore[no-untyped-def]
        return {}

    def sample_relative(self, study, trial, search_space):  # type: ignore[no-untyped-def]
        return {}

    def sample_independent(self, study, trial, name, distribution):  # type: ignore[no-untyped-def]
        return self.point[name]


def test_nearest_unused_configuration_in_distance_order() -> None:
    table = _table()
    # lr is on a log scale over [1e-3, 1e-1]: 2e-3 lies 0.15 from A's lr and 0.35 from B's.
    sampler = TableSampler(FixedSampler({"lr": 2e-3, "units": 16, "act": "relu"}), table)
    study = optuna.create_study(sampler=sampler)
    result = replay_async(study, table, None, n_trials=4)
    # A (0.15), then B (0.35), then C (0.15 and two differences of 1), then D.
    assert [t.config for t in result.trials] == ["A", "B", "C", "D"]
    for trial in study.trials:
        assert trial.params == table.params(trial.user_attrs["config"])


def test_categorical_and_missing_parameters_count_one() -> None:
    configs = {
        "same-act": {"lr": 1e-1, "units": 16, "act": "tanh"},
        "no-act": {"lr": 1e-3, "units": 16, "act": None},
        "other-act": {"lr": 1e-3, "units": 16, "act": "relu"},
    }
    rows = [
        {"config": c, "step": s, "value": 1.0 / s, **{f"param_{k}": v for k, v in p.items()}}
        for c, p in configs.items()
        for s in (1, 2)
    ]
    table = CurveTable.from_rows(rows)
    assert table.params("no-act") == {"lr": 1e-3, "units": 16}
    sampler = TableSampler(FixedSampler({"lr": 1e-3, "units": 16, "act": "tanh"}), table)
    # Distances: same-act 1 (lr at the other end), no-act 1 (missing), other-act 1 (act):
    # a three-way tie goes to the first listed.
    assert sampler.nearest({"lr": 1e-3, "units": 16, "act": "tanh"}) == "same-act"
    assert sampler.nearest({"lr": 1e-3, "units": 16, "act": "tanh"}) == "no-act"
    assert sampler.nearest({"lr": 1e-3, "units": 16, "act": "tanh"}) == "other-act"
    with pytest.raises(RuntimeError, match="already used"):
        sampler.nearest({"lr": 1e-3, "units": 16, "act": "tanh"})


@pytest.mark.parametrize("name", ["tpe", "swift"])
def test_sampler_modes_run_distinct_configurations(name: str) -> None:
    table = _table({f"c{i}": {"lr": 10 ** (-4 + i / 10), "units": 16 + i} for i in range(30)})
    run = run_one(table, "median", 0, direction="minimize", n_trials=20, sampler=name)
    assert len(run["sequence"]) == len(set(run["sequence"])) == 20
    again = run_one(table, "median", 0, direction="minimize", n_trials=20, sampler=name)
    assert again["sequence"] == run["sequence"]


def test_make_sampler_names() -> None:
    table = _table()
    assert isinstance(make_sampler("random", 0, table), optuna.samplers.RandomSampler)
    tpe = make_sampler("tpe", 0, table)
    assert isinstance(tpe, TableSampler)
    assert isinstance(tpe.base_sampler, optuna.samplers.TPESampler)
    with pytest.raises(ValueError, match="'cmaes'"):
        make_sampler("cmaes", 0, table)
