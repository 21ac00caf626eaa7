from __future__ import annotations

import csv
import gzip
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from optuna_qsvr.benchmark import (
    CurveTable,
    CurveTableError,
    bundled_table,
    bundled_tables,
    enqueue_config,
    epoch_clock,
    make_objective,
    replay_async,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

MAX_STEP = 9


def _curves(n_configs: int = 30, seed: int = 0) -> dict[str, tuple[float, list[float]]]:
    """Decaying curves whose value at MAX_STEP is a known final value."""
    rng = np.random.default_rng(seed)
    curves = {}
    for i in range(n_configs):
        final = float(rng.uniform(0.1, 1.0))
        gap = float(rng.uniform(0.2, 1.0))
        rate = float(rng.uniform(0.2, 0.8))
        values = [final + gap * math.exp(-rate * (s - 1)) for s in range(1, MAX_STEP)]
        curves[f"c{i}"] = (final, [*values, final])
    return curves


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _write_curves(path: Path, curves: dict[str, tuple[float, list[float]]]) -> Path:
    rows = []
    for i, (config, (_, values)) in enumerate(curves.items()):
        lr, units, act = (
            10.0 ** (-4 + 3 * i / len(curves)),
            16 * (1 + i % 4),
            ["relu", "tanh"][i % 2],
        )
        for step, value in enumerate(values, start=1):
            rows.append([config, step, repr(value), repr(lr), units, act])
    header = ["config", "step", "value", "param_lr", "param_units", "param_act"]
    return _write(path, header, rows)


@pytest.mark.parametrize("name", ["curves.csv", "curves.csv.gz"])
def test_load_finals_and_distributions(tmp_path: Path, name: str) -> None:
    curves = _curves()
    table = CurveTable.load(_write_curves(tmp_path / name, curves))
    assert table.max_step == MAX_STEP
    assert table.configs == tuple(curves)
    assert table.finals == pytest.approx({c: f for c, (f, _) in curves.items()})
    assert table.best_final("minimize") == pytest.approx(min(f for f, _ in curves.values()))
    assert table.best_final("maximize") == pytest.approx(max(f for f, _ in curves.values()))
    np.testing.assert_allclose(table.values("c3"), curves["c3"][1])
    np.testing.assert_array_equal(table.steps("c3"), np.arange(1, MAX_STEP + 1))

    dists = table.distributions()
    lrs = [table.params(c)["lr"] for c in table.configs]
    assert dists["lr"] == FloatDistribution(min(lrs), max(lrs), log=True)
    assert dists["units"] == IntDistribution(16, 64, log=False)
    assert dists["act"] == CategoricalDistribution(["relu", "tanh"])
    assert table.params("c1") == {"lr": lrs[1], "units": 32, "act": "tanh"}


def test_log_int_and_linear_float(tmp_path: Path) -> None:
    header = ["config", "step", "value", "param_batch", "param_dropout"]
    rows = [["a", 1, 0.5, 2, 0.1], ["b", 1, 0.4, 512, 0.5], ["c", 1, 0.3, 64, 0.3]]
    table = CurveTable.load(_write(tmp_path / "t.csv", header, rows))
    assert table.distributions() == {
        "batch": IntDistribution(2, 512, log=True),
        "dropout": FloatDistribution(0.1, 0.5, log=False),
    }


def test_gaps_and_missing_last_step(tmp_path: Path) -> None:
    header = ["config", "step", "value", "param_x"]
    rows = [
        ["every2", 2, 0.9, 1.0],
        ["every2", 4, 0.7, 1.0],
        ["every2", 6, 0.6, 1.0],
        *[["dense", s, 0.8 - 0.05 * s, 2.0] for s in range(1, 7)],
        ["short", 1, 0.5, 3.0],
        ["short", 3, 0.4, 3.0],
    ]
    with pytest.warns(UserWarning, match=r"1 of 3 configurations .* last step 6 .*'short'"):
        table = CurveTable.load(_write(tmp_path / "gaps.csv", header, rows))
    assert table.max_step == 6
    assert table.configs == ("every2", "dense")
    assert table.excluded == ("short",)
    np.testing.assert_array_equal(table.steps("every2"), [2, 4, 6])
    assert table.finals == pytest.approx({"every2": 0.6, "dense": 0.5})
    assert table.distributions() == {"x": FloatDistribution(1.0, 2.0)}


@pytest.mark.parametrize(
    ("header", "rows", "match"),
    [
        (["config", "step", "param_x"], [["a", 1, 1.0]], r"missing column\(s\) 'value'"),
        (["config", "step", "value"], [["a", 1, 0.5], ["a", 2, "nan"]], r"line 3, column 'value'"),
        (["config", "step", "value"], [["a", 1, 0.5], ["a", 2, ""]], r"line 3, column 'value'"),
        (["config", "step", "value"], [["a", 0, 0.5]], r"line 2, column 'step': '0'"),
        (["config", "step", "value"], [["a", 1.5, 0.5]], r"line 2, column 'step': '1.5'"),
        (["config", "step", "value"], [["a", 1, 0.5], ["a", 1, 0.4]], r"line 3.*step 1 twice"),
        (
            ["config", "step", "value", "param_x"],
            [["a", 1, 0.5, 1], ["a", 2, 0.4, 2]],
            r"line 3, column 'param_x'.*'2' here but '1' at line 2",
        ),
        (["config", "step", "value"], [], "no rows"),
    ],
)
def test_malformed_tables_name_the_place(
    tmp_path: Path, header: list[str], rows: list[list[object]], match: str
) -> None:
    with pytest.raises(CurveTableError, match=match):
        CurveTable.load(_write(tmp_path / "bad.csv", header, rows))


def test_bundled_tables_ship_with_the_package() -> None:
    # Held-out tables may ship beside the three recorded ones.
    assert {"cnn_digits", "lstm_babi17", "mlpf_delphes_sim"} <= set(bundled_tables())
    table = CurveTable.load(bundled_table("cnn_digits"))
    assert (len(table), table.max_step) == (200, 50)
    with pytest.raises(ValueError, match=r"'nope'.*'cnn_digits'"):
        bundled_table("nope")


def _study(pruner: optuna.pruners.BasePruner) -> optuna.study.Study:
    return optuna.create_study(study_name="replay-test", pruner=pruner)


@pytest.mark.parametrize("n_workers", [1, 4])
@pytest.mark.parametrize(
    "make_pruner",
    [
        lambda: optuna.pruners.MedianPruner(n_startup_trials=3),
        lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
        lambda: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=MAX_STEP),
    ],
    ids=["median", "sha", "hyperband"],
)
def test_replay_reports_recorded_values(
    tmp_path: Path, n_workers: int, make_pruner: Callable[[], optuna.pruners.BasePruner]
) -> None:
    table = CurveTable.load(_write_curves(tmp_path / "t.csv", _curves()))
    sequence = list(reversed(table.configs))
    study = _study(make_pruner())
    result = replay_async(study, table, sequence, n_workers=n_workers)

    trials = study.trials
    assert [t.user_attrs["config"] for t in trials] == sequence
    assert [r.config for r in result.trials] == sequence
    for trial, config in zip(trials, sequence, strict=True):
        assert trial.params == table.params(config)
        recorded = dict(zip(table.steps(config).tolist(), table.values(config), strict=True))
        assert trial.intermediate_values == {s: recorded[s] for s in trial.intermediate_values}
        assert sorted(trial.intermediate_values) == list(range(1, trial.last_step + 1))
        assert trial.state in (TrialState.PRUNED, TrialState.COMPLETE)
        if trial.state == TrialState.COMPLETE:
            assert trial.last_step == MAX_STEP
            assert trial.value == table.finals[config]
    assert result.epochs == sum(t.last_step for t in trials)
    assert result.n_pruned == sum(t.state == TrialState.PRUNED for t in trials) > 0
    assert result.n_complete == len(trials) - result.n_pruned
    completed = [t.value for t in trials if t.state == TrialState.COMPLETE]
    assert result.best_final == min(completed)


def test_gaps_replay_reports_only_recorded_steps(tmp_path: Path) -> None:
    header = ["config", "step", "value"]
    rows = [[c, s, v + s / 100] for c, v in (("a", 1.0), ("b", 2.0)) for s in (3, 6, 9)]
    table = CurveTable.load(_write(tmp_path / "t.csv", header, rows))
    study = _study(optuna.pruners.NopPruner())
    result = replay_async(study, table, ["a", "b"], n_workers=2)
    assert [t.intermediate_values for t in study.trials] == [
        {3: 1.03, 6: 1.06, 9: 1.09},
        {3: 2.03, 6: 2.06, 9: 2.09},
    ]
    assert result.epochs == 18
    assert result.makespan == 9


def test_sequential_replay_matches_optimize(tmp_path: Path) -> None:
    table = CurveTable.load(_write_curves(tmp_path / "t.csv", _curves(seed=1)))
    sequence = list(table.configs)

    def pruner() -> optuna.pruners.BasePruner:
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)

    asked = _study(pruner())
    replay_async(asked, table, sequence, n_workers=1)
    optimized = _study(pruner())
    for config in sequence:
        enqueue_config(optimized, table, config)
    optimized.optimize(make_objective(table), n_trials=len(sequence))

    def summary(study: optuna.study.Study) -> list[tuple[str, object, int | None]]:
        return [(t.user_attrs["config"], t.state, t.last_step) for t in study.trials]

    assert summary(asked) == summary(optimized)
    assert any(t.state == TrialState.PRUNED for t in asked.trials)


def test_objective_picks_by_trial_number_in_the_given_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = CurveTable.load(_write_curves(tmp_path / "t.csv", _curves(n_configs=5)))
    order = list(reversed(table.configs))
    study = _study(optuna.pruners.NopPruner())
    # A trial re-queued after its worker died carries its configuration and keeps it.
    study.enqueue_trial({}, user_attrs={"config": "c2"})
    slept: list[float] = []
    monkeypatch.setattr("time.sleep", slept.append)
    study.optimize(make_objective(table, order=order, epoch_seconds=0.5), n_trials=7)

    configs = [t.user_attrs["config"] for t in study.trials]
    assert configs == ["c2", *(order[n % len(order)] for n in range(1, 7))]
    assert [t.value for t in study.trials] == [table.finals[c] for c in configs]
    assert slept == [0.5] * 7 * MAX_STEP


def test_objective_without_order_needs_an_enqueued_config(tmp_path: Path) -> None:
    table = CurveTable.load(_write_curves(tmp_path / "t.csv", _curves(n_configs=3)))
    study = _study(optuna.pruners.NopPruner())
    with pytest.raises(RuntimeError, match="enqueue_config"):
        study.optimize(make_objective(table), n_trials=1)
    with pytest.raises(ValueError, match="order"):
        make_objective(table, order=[])


@pytest.mark.parametrize("n_workers", [1, 3, 4])
def test_virtual_time_without_pruning(tmp_path: Path, n_workers: int) -> None:
    table = CurveTable.load(_write_curves(tmp_path / "t.csv", _curves(n_configs=10)))
    result = replay_async(_study(optuna.pruners.NopPruner()), table, table.configs, n_workers)
    assert result.epochs == 10 * MAX_STEP
    # Equal-length trials run in waves of n_workers.
    assert result.makespan == math.ceil(10 / n_workers) * MAX_STEP
    assert [r.start for r in result.trials] == [(i // n_workers) * MAX_STEP for i in range(10)]

    trajectory = result.trajectory()
    bests = [b for _, b in trajectory]
    assert bests == sorted(bests, reverse=True) and len(set(bests)) == len(bests)
    assert bests[-1] == result.best_final == table.best_final("minimize")
    for spent, best in trajectory:
        # Every trial that finished in the same wave as this one counts its epochs.
        end = next(r.end for r in result.trials if r.final == best)
        assert spent == sum(min(max(end - r.start, 0), r.epochs) for r in result.trials)


def test_replay_rejects_unknown_config_and_waiting_trials(tmp_path: Path) -> None:
    table = CurveTable.load(_write_curves(tmp_path / "t.csv", _curves(n_configs=3)))
    with pytest.raises(KeyError, match="nope"):
        replay_async(_study(optuna.pruners.NopPruner()), table, ["c0", "nope"])
    study = _study(optuna.pruners.NopPruner())
    study.enqueue_trial({"lr": 1e-3})
    with pytest.raises(ValueError, match="waiting"):
        replay_async(study, table, ["c0"])
    with pytest.raises(ValueError, match="n_workers"):
        replay_async(_study(optuna.pruners.NopPruner()), table, ["c0"], n_workers=0)


def _steady_table(seconds: dict[str, float] | None = None) -> CurveTable:
    rows = []
    for i, config in enumerate(("a", "b", "c")):
        for step in range(1, 4):
            row = {"config": config, "step": step, "value": float(i + 1) / step}
            if seconds is not None:
                row["time"] = seconds[config]
            rows.append(row)
    return CurveTable.from_rows(rows)


def test_epoch_clock_modes() -> None:
    table = _steady_table({"a": 2.0, "b": 0.5, "c": 1.0})
    assert epoch_clock(table, "equal") is None
    from_table = epoch_clock(table, "table")
    assert from_table is not None
    np.testing.assert_allclose(from_table["a"][1], [2.0, 4.0, 6.0])
    np.testing.assert_allclose(from_table["b"][1], [0.5, 1.0, 1.5])
    assert epoch_clock(table, "auto")["a"][1].tolist() == from_table["a"][1].tolist()

    plain = _steady_table()
    drawn = epoch_clock(plain, "auto", seed=3)
    assert drawn is not None and drawn.keys() == {"a", "b", "c"}
    for steps, times in drawn.values():
        # One time per configuration: every epoch of it takes the same.
        np.testing.assert_allclose(times / steps, times[0])
    again, other = epoch_clock(plain, "draw", seed=3), epoch_clock(plain, "draw", seed=4)
    assert all(np.array_equal(drawn[c][1], again[c][1]) for c in drawn)
    assert any(not np.array_equal(drawn[c][1], other[c][1]) for c in drawn)
    with pytest.raises(ValueError, match="no 'time' column"):
        epoch_clock(plain, "table")
    with pytest.raises(ValueError, match="'fast'"):
        epoch_clock(plain, "fast")


def test_drawn_times_are_lognormal_around_one() -> None:
    rows = [{"config": f"c{i}", "step": s, "value": 1.0} for i in range(2000) for s in (1, 2)]
    clock = epoch_clock(CurveTable.from_rows(rows), "draw", seed=0)
    factors = np.array([times[0] for _, times in clock.values()])
    assert np.median(factors) == pytest.approx(1.0, abs=0.05)
    assert np.std(np.log(factors)) == pytest.approx(0.5, abs=0.05)


def test_per_configuration_times_order_the_workers() -> None:
    # a is slow and b fast: with two workers, b finishes first and c starts on b's worker.
    table = _steady_table({"a": 2.0, "b": 0.5, "c": 1.0})
    study = _study(optuna.pruners.NopPruner())
    result = replay_async(study, table, ["a", "b", "c"], 2, clock=epoch_clock(table, "table"))
    assert [(t.config, t.start, t.end) for t in result.trials] == [
        ("a", 0, 6.0),
        ("b", 0, 1.5),
        ("c", 1.5, 4.5),
    ]
    assert result.makespan == 6.0
    # By time 1.5: a trained 0.75 epochs, b its 3: the trajectory counts 3 when b completes.
    assert result.epochs_by(1.5) == 3
    assert result.epochs_by(100) == 9


@pytest.mark.parametrize("n_workers", [1, 3])
def test_times_change_no_sequential_decision(tmp_path: Path, n_workers: int) -> None:
    table = CurveTable.load(_write_curves(tmp_path / "t.csv", _curves(n_configs=20)))

    def run(clock):  # type: ignore[no-untyped-def]
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
        result = replay_async(_study(pruner), table, table.configs, n_workers, clock=clock)
        return [(t.config, t.state, t.epochs) for t in result.trials], result.trajectory()

    equal = run(None)
    drawn = run(epoch_clock(table, "draw", seed=1))
    if n_workers == 1:
        assert drawn == equal
    else:
        # With several workers the rung order changes, which is the point of the times.
        assert drawn[0] != equal[0]


def test_budget_stops_every_trial_at_the_epoch_budget(tmp_path: Path) -> None:
    table = CurveTable.load(_write_curves(tmp_path / "t.csv", _curves(n_configs=5)))
    study = _study(optuna.pruners.NopPruner())
    result = replay_async(study, table, table.configs, 1, budget=2 * MAX_STEP + 4)
    assert result.epochs == 2 * MAX_STEP + 4
    assert [t.state for t in result.trials] == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.FAIL,
    ]
    assert result.n_cut == 1 and result.trials[2].epochs == 4
    assert result.best_final == min(table.finals[c] for c in table.configs[:2])
    with pytest.raises(ValueError, match="budget"):
        replay_async(_study(optuna.pruners.NopPruner()), table, table.configs, budget=0)


def test_budget_with_workers_counts_all_of_them(tmp_path: Path) -> None:
    table = CurveTable.load(_write_curves(tmp_path / "t.csv", _curves(n_configs=8)))
    result = replay_async(_study(optuna.pruners.NopPruner()), table, table.configs, 4, budget=30)
    assert result.epochs == 30
    assert result.n_cut == 4 and result.n_complete == 0
