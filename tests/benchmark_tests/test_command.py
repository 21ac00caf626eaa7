from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from optuna_qsvr._cli import main
from optuna_qsvr.benchmark import CurveTable, from_json, method_figures, worst_regret

MAX_STEP = 6


def _write(path: Path, n_configs: int = 12, *, metric: str | None = None, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    header = ["config", "step", "value", "param_lr", "time"] + (["metric"] if metric else [])
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for i in range(n_configs):
            final, gap = rng.uniform(0.1, 1.0), rng.uniform(0.2, 1.0)
            lr, seconds = 10 ** rng.uniform(-4, -1), rng.uniform(0.5, 2.0)
            for step in range(1, MAX_STEP + 1):
                value = final + gap * math.exp(-0.5 * (step - 1)) + rng.normal(0, 0.02)
                value = final if step == MAX_STEP else value
                writer.writerow([f"c{i}", step, value, lr, seconds] + ([metric] if metric else []))
    return path


def _argv(curves: Path, *more: str) -> list[str]:
    return [
        "benchmark",
        "--curves",
        str(curves),
        "--seeds",
        "2",
        "--processes",
        "1",
        "--no-progress",
        *more,
    ]


def test_json_keeps_the_per_seed_lists_and_adds_figures(tmp_path: Path) -> None:
    curves = _write(tmp_path / "c.csv")
    out, anytime, pareto = tmp_path / "o.json", tmp_path / "a.png", tmp_path / "p.png"
    argv = _argv(curves, "--direction", "minimize", "--methods", "none,hyperband,i-epoch-1")
    argv += ["--json", str(out), "--plot", str(anytime), "--pareto", str(pareto)]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert list(report) == ["none", "hyperband", "i-epoch-1"]
    table = CurveTable.load(curves)
    for entry in report.values():
        assert len(entry["epochs"]) == len(entry["best_final"]) == len(entry["regret"]) == 2
        assert all(isinstance(e, int) for e in entry["epochs"])
        assert entry["seeds"] == [0, 1]
        assert entry["table_best"] == table.best_final("minimize")
        for name in ("epochs", "ratio", "regret_mean", "regret_median", "p_best", "makespan"):
            figure = entry["figures"][name]
            assert figure["low"] <= figure["value"] <= figure["high"]
        assert isinstance(entry["dominated_by"], list)
        assert entry["sampler"] == "random" and entry["time_unit"] == "s"
    assert report["none"]["epochs"] == [12 * MAX_STEP] * 2
    assert report["none"]["regret"] == [0.0, 0.0] and report["none"]["found_best"] == [True] * 2
    assert report["hyperband"]["figures"]["ratio"]["value"] == 1.0
    # The JSON holds everything the figures come from.
    again = method_figures(from_json(report), worst_regret(table, "minimize"))
    for method, entry in report.items():
        assert {k: e.to_dict() for k, e in again[method].items()} == entry["figures"]
    for png in (anytime, pareto):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "c.csv", "o.json", "p.png"]


def test_printed_tables_fit_80_columns_when_piped(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    curves = _write(tmp_path / "c.csv")
    argv = _argv(curves, "--direction", "minimize", "--workers", "3")
    argv += [
        "--methods",
        "none,median,percentile,patient,sha,hyperband,i-epoch-1,i-epoch-3,oracle",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "\x1b[" not in out
    for word in (
        "compute",
        "result",
        "dominated by",
        "P(best)",
        "x hyperband",
        "wall time",
        "against fewer trials, same epochs",
        "regret minus",
    ):
        assert word in out
    assert "i-epoch-3" in out


def test_direction_from_the_metric_name(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    curves = _write(tmp_path / "c.csv", metric="val_loss")
    assert main(_argv(curves, "--methods", "none")) == 0
    assert "minimize" in capsys.readouterr().out


def _table_rows(path: Path, rows: list[list[object]], header: list[str] | None = None) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header or ["config", "step", "value"])
        writer.writerows(rows)
    return path


def _rect(n: int, steps: int) -> list[list[object]]:
    return [[f"c{i}", s, 1.0 / (i + s)] for i in range(n) for s in range(1, steps + 1)]


BAD_INPUTS = {
    "ragged": (lambda p: _table_rows(p, [*_rect(4, 3), ["short", 1, 0.5]]), [], "ragged"),
    "nan": (lambda p: _table_rows(p, [*_rect(4, 3), ["c9", 1, "nan"]]), [], "finite"),
    "single step": (lambda p: _table_rows(p, _rect(4, 1)), [], "single step"),
    "too few configs": (
        lambda p: _table_rows(p, _rect(4, 3)),
        ["--n-trials", "5"],
        "only 4 configurations",
    ),
    "direction vs metric": (
        lambda p: _table_rows(
            p, [[*r, "accuracy"] for r in _rect(4, 3)], ["config", "step", "value", "metric"]
        ),
        [],
        "contradicts the metric 'accuracy'",
    ),
    "unknown method": (lambda p: _table_rows(p, _rect(4, 3)), ["--methods", "none,asha"], "asha"),
    "bad swift set": (
        lambda p: _table_rows(p, _rect(4, 3)),
        ["--swift-set", "broken"],
        "NAME=JSON",
    ),
    "missing file": (lambda p: p, [], "missing.csv"),
    # No --direction, and no metric name to take it from.
    "no direction": (lambda p: _table_rows(p, _rect(4, 3)), None, "give --direction"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_one_line_exit_2_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture, case: str
) -> None:
    make, more, message = BAD_INPUTS[case]
    curves = make(tmp_path / "missing.csv")
    out = tmp_path / "out"
    out.mkdir()
    argv = _argv(curves, "--methods", "none,sha")
    argv += ["--direction", "minimize", *more] if more is not None else []
    argv += ["--json", str(out / "o.json"), "--plot", str(out / "a.png")]
    argv += ["--pareto", str(out / "p.png")]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("optuna-qsvr benchmark: error: ")
    assert message in lines[0]
    assert list(out.iterdir()) == []


def test_an_unwritable_output_fails_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    curves = _write(tmp_path / "c.csv")
    argv = _argv(curves, "--direction", "minimize", "--methods", "none")
    assert main([*argv, "--json", str(tmp_path / "no" / "such" / "o.json")]) == 2
    assert "not a writable directory" in capsys.readouterr().err


def test_lcbench_files_go_to_the_lcbench_reader(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    lcbench = tmp_path / "lcbench.json"
    lcbench.write_text("{}")
    calls = []
    table = CurveTable.load(_write(tmp_path / "c.csv", metric="Train/val_accuracy"))

    def load_lcbench(path: str, dataset: str | None = None, metric: str = "x") -> CurveTable:
        calls.append((path, dataset, metric))
        return table

    monkeypatch.setattr("optuna_qsvr.benchmark._lcbench.load_lcbench", load_lcbench)
    assert main(_argv(lcbench, "--methods", "none", "--dataset", "adult")) == 0
    assert calls == [(str(lcbench), "adult", "x")]
    # The metric's name sets the direction: accuracy is maximised.
    assert "maximize" in capsys.readouterr().out
    assert main(_argv(lcbench, "--methods", "none", "--metric", "Train/loss")) == 0
    assert calls[-1] == (str(lcbench), None, "Train/loss")


def _lcbench_run(index: int, accuracy_at_1: float, final: float) -> dict:
    # LCBench's layout: epoch 0 (untrained), 50 epochs, the last repeated.
    curve = [10.0, *np.linspace(accuracy_at_1, final, 50).tolist(), final]
    return {
        "log": {
            "Train/val_accuracy": curve,
            "Train/val_cross_entropy": [100 - v for v in curve],
            "time": [0.1 + (index + 1) * k for k in range(len(curve))],
        },
        "config": {"learning_rate": 10.0 ** -(1 + index % 3), "num_layers": 1 + index % 4},
    }


def test_lcbench_file_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    runs = {str(i): _lcbench_run(i, 50.0 + i, 60.0 + 3 * (i % 5)) for i in range(10)}
    lcbench = tmp_path / "lcbench.json"
    lcbench.write_text(json.dumps({"adult": runs, "car": runs}))
    out = tmp_path / "o.json"
    argv = _argv(lcbench, "--dataset", "car", "--methods", "none,i-epoch-1", "--workers", "2")
    assert main([*argv, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["none"]["direction"] == "maximize"
    assert report["none"]["time_unit"] == "s"
    assert report["none"]["best_final"] == [72.0, 72.0]
    # Configuration i takes i + 1 seconds per epoch: 2,750 s of training on two workers.
    assert report["none"]["makespan"][0] >= 2750 / 2
    # The cross entropy is minimised: maximising it contradicts the name.
    argv = _argv(lcbench, "--dataset", "car", "--metric", "Train/val_cross_entropy")
    assert main([*argv, "--methods", "none", "--direction", "maximize"]) == 2
    assert "contradicts the metric" in capsys.readouterr().err


def test_budget_mode_stops_every_method_at_the_budget(tmp_path: Path) -> None:
    curves = _write(tmp_path / "c.csv", n_configs=20)
    out = tmp_path / "o.json"
    argv = _argv(curves, "--direction", "minimize", "--methods", "none,sha,i-epoch-1")
    assert main([*argv, "--budget", "40", "--workers", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["none"]["epochs"] == [40, 40]
    for entry in report.values():
        assert all(e <= 40 for e in entry["epochs"])
        assert entry["budget"] == 40 and entry["trials_per_study"] == 20
    # Forty epochs hold at most six complete trials of six epochs.
    assert all(n <= 6 for n in report["none"]["n_complete"])


def test_sampler_mode_from_the_command(tmp_path: Path) -> None:
    curves = _write(tmp_path / "c.csv", n_configs=20)
    out = tmp_path / "o.json"
    argv = _argv(curves, "--direction", "minimize", "--methods", "median", "--sampler", "tpe")
    assert main([*argv, "--n-trials", "15", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["median"]["sampler"] == "tpe"
    assert report["median"]["n_trials"] == [15, 15]
