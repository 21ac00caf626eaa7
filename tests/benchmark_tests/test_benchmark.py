from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from optuna_qsvr._cli import main
from optuna_qsvr.benchmark import (
    BenchmarkError,
    CurveTable,
    bundled_table,
    check_methods,
    config_sequence,
    enqueue_config,
    fewer_trials_regret,
    make_objective,
    make_pruner,
    median_trajectory,
    method_figures,
    run_benchmark,
    run_one,
    worst_regret,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

MAX_STEP = 9


def _write_table(path: Path, n_configs: int = 40, seed: int = 0) -> Path:
    """Noisy decaying curves: early values rank configurations only roughly."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["config", "step", "value", "param_lr", "param_depth"])
        for i in range(n_configs):
            final, gap, rate = rng.uniform(0.1, 1.0), rng.uniform(0.2, 1.5), rng.uniform(0.1, 0.9)
            lr, depth = 10 ** rng.uniform(-4, -1), int(rng.integers(1, 6))
            for step in range(1, MAX_STEP + 1):
                value = final + gap * math.exp(-rate * (step - 1))
                value = final if step == MAX_STEP else value + rng.normal(0, 0.05)
                writer.writerow([f"c{i}", step, value, lr, depth])
    return path


@pytest.fixture
def table(tmp_path: Path) -> CurveTable:
    return CurveTable.load(_write_table(tmp_path / "curves.csv"))


def _swift_available() -> bool:
    try:
        check_methods(["swift-svr"])
    except BenchmarkError:
        return False
    return True


def test_config_sequence_is_a_seeded_permutation(table: CurveTable) -> None:
    first = config_sequence(table, 0, 150)
    assert sorted(first) == sorted(table.configs)
    assert config_sequence(table, 0, 150) == first
    assert config_sequence(table, 1, 150) != first
    assert config_sequence(table, 0, 10) == first[:10]


def test_every_method_replays_the_same_sequence(table: CurveTable) -> None:
    runs = [run_one(table, m, 3, direction="minimize", n_trials=25) for m in ("none", "sha")]
    runs.append(run_one(table, "oracle", 3, direction="minimize", n_trials=25, n_workers=4))
    expected = config_sequence(table, 3, 25)
    assert all(r["sequence"] == expected for r in runs)
    assert runs[1]["n_pruned"] > 0


@pytest.mark.parametrize("n_workers", [1, 4])
@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_oracle_reaches_no_pruning_best_with_fewer_epochs(
    table: CurveTable, n_workers: int, direction: str
) -> None:
    for seed in range(3):
        none = run_one(table, "none", seed, direction=direction, n_workers=n_workers)
        oracle = run_one(table, "oracle", seed, direction=direction, n_workers=n_workers)
        finals = [table.finals[c] for c in none["sequence"]]
        assert none["epochs"] == len(table) * MAX_STEP
        assert none["best_final"] == (min(finals) if direction == "minimize" else max(finals))
        assert oracle["best_final"] == none["best_final"]
        assert oracle["epochs"] < none["epochs"]
        # Only the trials that set a new record (in start order) run to the end.
        sign = 1 if direction == "minimize" else -1
        records = sum(
            sign * f < min(sign * g for g in finals[:i]) for i, f in enumerate(finals) if i
        )
        assert oracle["n_complete"] == 1 + records
        assert oracle["epochs"] == oracle["n_complete"] * MAX_STEP + oracle["n_pruned"]


def test_fewer_trials_trains_what_the_epochs_pay_for() -> None:
    rows = [
        {"config": c, "step": step, "value": final + 1 / step}
        for c, final in (("a", 0.5), ("b", 0.2), ("c", 0.9), ("d", 0.1))
        for step in (1, 2, 3)
    ]
    table = CurveTable.from_rows(rows)
    order = ["c", "a", "b", "d"]
    # 3 epochs per training: 7 epochs train c and a; 9 add b; 2 train none (worst, 0.8).
    assert fewer_trials_regret(table, "minimize", order, 7) == pytest.approx(0.4)
    assert fewer_trials_regret(table, "minimize", order, 9) == pytest.approx(0.1)
    assert fewer_trials_regret(table, "minimize", order, 12) == pytest.approx(0.0)
    assert fewer_trials_regret(table, "minimize", order, 2) == pytest.approx(0.8)
    assert fewer_trials_regret(table, "maximize", order, 3) == pytest.approx(0.0)
    assert fewer_trials_regret(table, "maximize", ["d", "c"], 5) == pytest.approx(0.8)


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_no_pruning_is_its_own_fewer_trials_rival(table: CurveTable, direction: str) -> None:
    # Without pruning every trial trains to the end: the rival with the same epochs trains
    # the same configurations, so the regrets agree seed by seed; a pruner's rival trains
    # the first of them only.
    results = run_benchmark(
        table, ["none", "sha"], seeds=range(3), direction=direction, n_trials=30
    )
    for run in results["none"]:
        assert run["fewer_trials_regret"] == pytest.approx(run["regret"])
    for run in results["sha"]:
        n = run["epochs"] // MAX_STEP
        finals = [table.finals[c] for c in run["sequence"][:n]]
        best = min(finals) if direction == "minimize" else max(finals)
        assert 0 < n < 30
        assert run["fewer_trials_regret"] == pytest.approx(abs(best - table.best_final(direction)))
    figures = method_figures(results, worst_regret(table, direction))
    assert figures["none"]["vs_fewer"].value == pytest.approx(0.0)
    assert figures["sha"]["vs_fewer"].n == 3
    # A sampler's choices depend on the trials, so it has no rival; the figures count the
    # seeds that have one.
    tpe = run_one(table, "none", 0, direction=direction, n_trials=12, sampler="tpe")
    assert tpe["fewer_trials_regret"] is None
    assert math.isnan(method_figures({"none": [tpe]}, 1.0)["none"]["vs_fewer"].value)
    mixed = method_figures(
        {"sha": [*results["sha"][:2], {**results["sha"][2], "fewer_trials_regret": None}]}, 1.0
    )
    assert mixed["sha"]["vs_fewer"].n == 2


def test_oracle_as_an_ordinary_pruner(table: CurveTable) -> None:
    study = optuna.create_study(
        pruner=make_pruner("oracle", max_resource=table.max_step, table=table)
    )
    sequence = config_sequence(table, 0, 20)
    for config in sequence:
        enqueue_config(study, table, config)
    study.optimize(make_objective(table), n_trials=20)
    assert study.best_value == min(table.finals[c] for c in sequence)
    assert all(t.last_step in (1, MAX_STEP) for t in study.trials)


@pytest.mark.parametrize("n_workers", [1, 4])
def test_hyperband_spends_fewer_epochs_than_none(table: CurveTable, n_workers: int) -> None:
    none = run_one(table, "none", 0, direction="minimize", n_workers=n_workers)
    hyperband = run_one(table, "hyperband", 0, direction="minimize", n_workers=n_workers)
    assert hyperband["epochs"] < none["epochs"]
    assert hyperband["n_pruned"] > 0
    assert hyperband["regret"] >= none["regret"] >= 0


def test_workers_change_median_pruner_decisions(table: CurveTable) -> None:
    # With 8 workers the first trials are judged against fewer finished curves.
    one = run_one(table, "median", 0, direction="minimize", n_workers=1)
    eight = run_one(table, "median", 0, direction="minimize", n_workers=8)
    assert eight["makespan"] < one["makespan"]
    assert (one["epochs"], one["n_pruned"]) != (eight["epochs"], eight["n_pruned"])


def test_run_benchmark_pool_matches_in_process(table: CurveTable) -> None:
    options = {"direction": "minimize", "n_trials": 30, "progress": False}
    pooled = run_benchmark(table, ["sha", "oracle"], [0, 1], processes=2, **options)
    inline = run_benchmark(table, ["sha", "oracle"], [0, 1], processes=1, **options)
    for method in ("sha", "oracle"):
        assert [r["seed"] for r in pooled[method]] == [0, 1]
        for key in ("epochs", "best_final", "sequence", "trajectory"):
            assert [r[key] for r in pooled[method]] == [r[key] for r in inline[method]]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("none", optuna.pruners.NopPruner),
        ("median", optuna.pruners.MedianPruner),
        ("sha", optuna.pruners.SuccessiveHalvingPruner),
        ("hyperband", optuna.pruners.HyperbandPruner),
    ],
)
def test_make_pruner_by_name(name: str, expected: type) -> None:
    assert type(make_pruner(name, max_resource=MAX_STEP)) is expected


def test_make_pruner_names_what_it_cannot_build() -> None:
    with pytest.raises(BenchmarkError, match="'asha'"):
        make_pruner("asha", max_resource=MAX_STEP)
    # The oracle reads final values, which only a recorded table has.
    with pytest.raises(BenchmarkError, match="table"):
        make_pruner("oracle", max_resource=MAX_STEP)


@pytest.mark.skipif(not _swift_available(), reason="SwiftHyperbandPruner not importable")
def test_make_pruner_swift_methods() -> None:
    from optuna_qsvr import SwiftHyperbandPruner

    for name in ("swift-svr", "swift-qsvr"):
        assert isinstance(make_pruner(name, max_resource=MAX_STEP), SwiftHyperbandPruner)
    pruner = make_pruner("swift-qsvr", max_resource=MAX_STEP, annealer="exact")
    assert isinstance(pruner, SwiftHyperbandPruner)


def test_unknown_method_is_rejected(table: CurveTable) -> None:
    with pytest.raises(BenchmarkError, match="'asha'"):
        run_benchmark(table, ["none", "asha"], [0], direction="minimize", progress=False)


@pytest.mark.skipif(not _swift_available(), reason="SwiftHyperbandPruner not importable")
def test_swift_svr_method_runs(table: CurveTable) -> None:
    run = run_one(table, "swift-svr", 0, direction="minimize")
    none = run_one(table, "none", 0, direction="minimize")
    assert run["sequence"] == none["sequence"]
    assert 0 < run["epochs"] < none["epochs"]
    assert run["n_fits"] is not None and run["fit_seconds"] >= 0


def test_median_trajectory_counts_missing_seeds_as_worst() -> None:
    runs = [
        {"trajectory": [[2, 5.0], [6, 3.0]]},
        {"trajectory": [[4, 4.0]]},
        {"trajectory": [[10, 1.0]]},
    ]
    got = median_trajectory(runs, "minimize", [1, 2, 4, 6, 10])
    assert got[:2] == [pytest.approx(math.nan, nan_ok=True)] * 2
    assert got[2:] == [5.0, 4.0, 3.0]
    rising = [
        {"trajectory": [[2, 3.0], [6, 5.0]]},
        {"trajectory": [[4, 4.0]]},
        {"trajectory": [[10, 1.0]]},
    ]
    assert median_trajectory(rising, "maximize", [4, 10]) == [3.0, 4.0]


def test_cli_benchmark_end_to_end(tmp_path: Path) -> None:
    curves = _write_table(tmp_path / "curves.csv")
    out, png = tmp_path / "out.json", tmp_path / "plot.png"
    argv = ["benchmark", "--curves", str(curves), "--direction", "minimize", "--seeds", "2"]
    argv += ["--methods", "none,hyperband", "--json", str(out), "--plot", str(png)]
    assert main([*argv, "--no-progress"]) == 0

    report = json.loads(out.read_text())
    assert set(report) == {"none", "hyperband"}
    for entry in report.values():
        assert len(entry["epochs"]) == len(entry["best_final"]) == 2
        assert all(isinstance(e, int) for e in entry["epochs"])
        assert all(isinstance(b, float) for b in entry["best_final"])
    assert report["none"]["epochs"] == [40 * MAX_STEP] * 2
    assert all(
        h < n for h, n in zip(report["hyperband"]["epochs"], report["none"]["epochs"], strict=True)
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_reports_a_malformed_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("config,step,value\na,1,0.5\na,0,0.4\n")
    argv = ["benchmark", "--curves", str(bad), "--direction", "minimize", "--methods", "none"]
    assert main(argv) == 2
    assert "line 3, column 'step'" in capsys.readouterr().err


def test_python_m_entry_point(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    argv = ["benchmark", "--curves", str(missing), "--direction", "maximize", "--methods", "none"]
    done = subprocess.run(
        [sys.executable, "-m", "optuna_qsvr", *argv], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "missing.csv" in done.stderr


# Epochs and best final value of the historic replay (every epoch one time unit) on the bundled
# MLPF table, measured before per-configuration epoch times existed: the contract that keeps
# earlier figures comparable.
HISTORIC = [
    ("median", 1, 0, 961, 0.132819),
    ("median", 1, 1, 1168, 0.0770011),
    ("median", 8, 0, 2148, 0.0770011),
    ("median", 8, 1, 2032, 0.0770011),
    ("sha", 1, 0, 565, 0.132819),
    ("sha", 8, 1, 595, 0.0770011),
    ("hyperband", 1, 0, 1298, 0.132819),
    ("hyperband", 8, 1, 1523, 0.0770011),
    ("oracle", 8, 0, 444, 0.0770011),
]


@pytest.mark.parametrize(("method", "workers", "seed", "epochs", "best"), HISTORIC)
def test_equal_epoch_times_reproduce_the_historic_replay(
    method: str, workers: int, seed: int, epochs: int, best: float
) -> None:
    table = CurveTable.load(bundled_table("mlpf_delphes_sim"))
    options = {"direction": "minimize", "n_workers": workers}
    run = run_one(table, method, seed, epoch_time="equal", **options)
    assert (run["epochs"], run["best_final"]) == (epochs, best)
    if workers == 1:
        # One worker runs trials one after the other, whatever each epoch takes.
        drawn = run_one(table, method, seed, epoch_time="draw", **options)
        assert (drawn["epochs"], drawn["best_final"], drawn["trajectory"]) == (
            epochs,
            best,
            run["trajectory"],
        )
        assert drawn["makespan"] != run["makespan"] == epochs
