from __future__ import annotations

import contextlib
import csv
from pathlib import Path

import numpy as np
import pytest

from optuna_qsvr.benchmark import CurveTable, CurveTableError, infer_direction


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _rect(n_configs: int = 4, steps: int = 3, extra: dict | None = None) -> list[list[object]]:
    return [
        [f"c{i}", s, 1.0 / (i + s), *(extra or {}).get(i, [])]
        for i in range(n_configs)
        for s in range(1, steps + 1)
    ]


def test_time_column_is_seconds_per_epoch_per_step(tmp_path: Path) -> None:
    rows = [["a", 1, 0.5, 2.0], ["a", 2, 0.4, 2.0], ["b", 1, 0.6, 0.5], ["b", 2, 0.3, 0.5]]
    table = CurveTable.load(_write(tmp_path / "t.csv", ["config", "step", "value", "time"], rows))
    assert table.has_times
    np.testing.assert_array_equal(table.seconds_per_epoch("a"), [2.0, 2.0])
    np.testing.assert_array_equal(table.seconds_per_epoch("b"), [0.5, 0.5])
    plain = CurveTable.load(_write(tmp_path / "p.csv", ["config", "step", "value"], _rect()))
    assert not plain.has_times and plain.seconds_per_epoch("c0") is None


@pytest.mark.parametrize("bad", ["", "nan", "0", "-1", "fast"])
def test_time_column_must_be_positive(tmp_path: Path, bad: str) -> None:
    rows = [["a", 1, 0.5, 1.0], ["a", 2, 0.4, bad]]
    with pytest.raises(CurveTableError, match=r"line 3, column 'time'"):
        CurveTable.load(_write(tmp_path / "t.csv", ["config", "step", "value", "time"], rows))


def test_metric_column_and_keyword(tmp_path: Path) -> None:
    rows = [["a", 1, 0.5, "val_loss"], ["a", 2, 0.4, "val_loss"]]
    table = CurveTable.load(
        _write(tmp_path / "m.csv", ["config", "step", "value", "metric"], rows)
    )
    assert table.metric == "val_loss"
    rows[1][3] = "accuracy"
    with pytest.raises(CurveTableError, match=r"line 3, column 'metric'.*one metric"):
        CurveTable.load(_write(tmp_path / "m2.csv", ["config", "step", "value", "metric"], rows))
    from_rows = CurveTable.from_rows(
        [{"config": "a", "step": 1, "value": 0.5}], metric="Train/val_accuracy"
    )
    assert from_rows.metric == "Train/val_accuracy"


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("val_loss", "minimize"),
        ("Train/val_balanced_accuracy", "maximize"),
        ("Train/val_cross_entropy", "minimize"),
        ("test-RMSE", "minimize"),
        ("f1", "maximize"),
        ("value", None),
        ("loss_accuracy", None),
        (None, None),
    ],
)
def test_infer_direction(metric: str | None, direction: str | None) -> None:
    assert infer_direction(metric) == direction


def test_check_replayable_accepts_a_good_table(tmp_path: Path) -> None:
    table = CurveTable.load(_write(tmp_path / "t.csv", ["config", "step", "value"], _rect()))
    table.check_replayable("minimize", 4)
    table.check_replayable("maximize")


@pytest.mark.parametrize(
    ("rows", "direction", "n_trials", "match"),
    [
        ([*_rect(), ["short", 1, 0.9]], "minimize", None, r"ragged curves: 1 of 5 .*'short'"),
        (_rect(steps=1), "minimize", None, r"single step"),
        (_rect(), "minimize", 5, r"5 trials asked for but the table has only 4"),
    ],
)
def test_check_replayable_names_the_problem(
    tmp_path: Path, rows: list, direction: str, n_trials: int | None, match: str
) -> None:
    with pytest.warns(UserWarning) if rows[-1][0] == "short" else contextlib.nullcontext():
        table = CurveTable.load(_write(tmp_path / "t.csv", ["config", "step", "value"], rows))
    with pytest.raises(CurveTableError, match=match):
        table.check_replayable(direction, n_trials)


def test_check_replayable_rejects_a_direction_against_the_metric(tmp_path: Path) -> None:
    rows = [[*r, "val_loss"] for r in _rect()]
    table = CurveTable.load(
        _write(tmp_path / "t.csv", ["config", "step", "value", "metric"], rows)
    )
    table.check_replayable("minimize")
    with pytest.raises(CurveTableError, match=r"'maximize' contradicts the metric 'val_loss'"):
        table.check_replayable("maximize")
