from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from optuna_qsvr.benchmark import CurveTable, CurveTableError, infer_direction, load_lcbench

# LCBench's fixed settings: the same in every configuration of data_2k.json.
CONSTANTS = {
    "imputation_strategy": "mean",
    "learning_rate_scheduler": "cosine_annealing",
    "loss": "cross_entropy_weighted",
    "network": "shapedmlpnet",
    "normalization_strategy": "standardize",
    "optimizer": "sgd",
    "cosine_annealing_T_max": 50,
    "cosine_annealing_eta_min": 1e-08,
    "activation": "relu",
    "mlp_shape": "funnel",
}
SEARCHED = (
    "batch_size",
    "max_dropout",
    "max_units",
    "num_layers",
    "learning_rate",
    "momentum",
    "weight_decay",
)


def _run(index: int, n_entries: int = 52) -> dict[str, Any]:
    """One configuration's record, laid out as LCBench's api.py reads it: 52 log entries,
    epoch 0 (untrained) first and the end of training repeated last."""
    rng = np.random.default_rng(index)
    epochs = np.arange(n_entries)
    trained = np.minimum(epochs, n_entries - 2)
    accuracy = 50.0 + 40.0 * (1 - np.exp(-trained / (5.0 + index))) + rng.normal(0, 0.1, n_entries)
    cross_entropy = 0.7 * np.exp(-trained / (8.0 + index)) + 0.2
    seconds = 1.5 + 0.25 * (index + 1)
    return {
        "log": {
            "time": (0.4 + seconds * trained).tolist(),
            "epoch": epochs.tolist(),
            "Train/loss": (cross_entropy + 0.05).tolist(),
            "Train/train_accuracy": (accuracy + 3).tolist(),
            "Train/val_accuracy": accuracy.tolist(),
            "Train/train_cross_entropy": (cross_entropy - 0.05).tolist(),
            "Train/val_cross_entropy": cross_entropy.tolist(),
            "Train/train_balanced_accuracy": (accuracy / 100 + 0.02).tolist(),
            "Train/val_balanced_accuracy": (accuracy / 100).tolist(),
            "Train/test_result": (accuracy - 1).tolist(),
            "Train/test_cross_entropy": (cross_entropy + 0.01).tolist(),
            "Train/test_balanced_accuracy": (accuracy / 100 - 0.01).tolist(),
            "Train/lr": (0.01 * np.ones(n_entries)).tolist(),
        },
        "results": {
            "model_parameters": 10_000 + index,
            "final_train_accuracy": float(accuracy[-1] + 3),
            "final_val_accuracy": float(accuracy[-1]),
            "final_val_cross_entropy": float(cross_entropy[-1]),
            "final_test_accuracy": float(accuracy[-1] - 1),
            "OpenML_task_id": 189908,
            "test_split": 0.33,
            "budget": 50,
            "seed": 1,
            "instances": 70000,
            "classes": 10,
            "features": 784,
        },
        "config": {
            "batch_size": int(16 * 2**index),
            "imputation_strategy": CONSTANTS["imputation_strategy"],
            "learning_rate_scheduler": CONSTANTS["learning_rate_scheduler"],
            "loss": CONSTANTS["loss"],
            "network": CONSTANTS["network"],
            "max_dropout": 0.1 * index + 0.025926231827891333,
            "normalization_strategy": CONSTANTS["normalization_strategy"],
            "optimizer": CONSTANTS["optimizer"],
            "cosine_annealing_T_max": CONSTANTS["cosine_annealing_T_max"],
            "cosine_annealing_eta_min": CONSTANTS["cosine_annealing_eta_min"],
            "activation": CONSTANTS["activation"],
            "max_units": [293, 106, 1024, 64][index % 4],
            "mlp_shape": CONSTANTS["mlp_shape"],
            "num_layers": 1 + index % 5,
            "learning_rate": [0.0018243300267253295, 0.07113964491331314, 0.0001, 0.01][index % 4],
            "momentum": 0.21325193168301043 + 0.1 * index,
            "weight_decay": 0.020472816917443872 / (index + 1),
        },
    }


def _write(path: Path, data: dict[str, Any]) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as f:
        # json.dump writes NaN as the bare NaN literal, as Python-written LCBench files would.
        json.dump(data, f)
    return path


def _file(tmp_path: Path, n_configs: int = 4, name: str = "data_2k_lw.json") -> Path:
    data = {
        "Fashion-MNIST": {str(i): _run(i) for i in range(n_configs)},
        "adult": {str(i): _run(i + 10) for i in range(n_configs)},
    }
    return _write(tmp_path / name, data)


def test_curves_are_epochs_1_to_50_of_the_log(tmp_path: Path) -> None:
    path = _file(tmp_path)

    table = load_lcbench(path, "Fashion-MNIST")

    assert isinstance(table, CurveTable)
    assert table.configs == ("0", "1", "2", "3")
    assert table.max_step == 50
    run = _run(2)
    steps = table.steps("2")
    np.testing.assert_array_equal(steps, np.arange(1, 51))
    # Position k of the log is epoch k: position 0 (untrained) and the repeat are left out.
    np.testing.assert_array_equal(table.values("2"), run["log"]["Train/val_accuracy"][1:51])
    assert table.finals["2"] == run["log"]["Train/val_accuracy"][50]
    assert table.metric == "Train/val_accuracy"
    assert infer_direction(table.metric) == "maximize"


def test_searched_hyperparameters_become_params_and_constants_are_dropped(
    tmp_path: Path,
) -> None:
    table = load_lcbench(_file(tmp_path), "Fashion-MNIST")

    assert set(table.param_names) == set(SEARCHED)
    assert table.params("1") == {
        name: value for name, value in _run(1)["config"].items() if name in SEARCHED
    }
    distributions = table.distributions()
    assert isinstance(distributions["batch_size"], IntDistribution)
    assert isinstance(distributions["num_layers"], IntDistribution)
    assert isinstance(distributions["learning_rate"], FloatDistribution)
    assert distributions["learning_rate"].log
    assert not isinstance(distributions["momentum"], CategoricalDistribution)


def test_epoch_time_is_the_mean_of_the_cumulative_clock(tmp_path: Path) -> None:
    table = load_lcbench(_file(tmp_path), "Fashion-MNIST")

    assert table.has_times
    for config in table.configs:
        clock = _run(int(config))["log"]["time"]
        expected = (clock[50] - clock[0]) / 50
        np.testing.assert_allclose(table.seconds_per_epoch(config), np.full(50, expected))


def test_other_metrics_datasets_and_epochs(tmp_path: Path) -> None:
    path = _file(tmp_path)

    table = load_lcbench(path, "adult", "Train/val_cross_entropy", epochs=12)

    assert table.max_step == 12
    np.testing.assert_allclose(table.values("0"), _run(10)["log"]["Train/val_cross_entropy"][1:13])
    assert infer_direction(table.metric) == "minimize"
    every = load_lcbench(path, "adult", epochs=None)
    assert every.max_step == 51


def test_single_dataset_file_and_gzip(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "fashion_mnist.json.gz", {"Fashion-MNIST": {"0": _run(0), "1": _run(1)}}
    )

    table = load_lcbench(path)

    assert len(table) == 2
    assert "Fashion-MNIST" in table.source


def test_replayable_with_the_metric_direction(tmp_path: Path) -> None:
    table = load_lcbench(_file(tmp_path), "Fashion-MNIST")

    table.check_replayable("maximize", n_trials=4)
    with pytest.raises(CurveTableError, match="contradicts"):
        table.check_replayable("minimize")


def _error(path: Path, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(CurveTableError) as excinfo:
        load_lcbench(path, *args, **kwargs)
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_missing_dataset_names_the_ones_there(tmp_path: Path) -> None:
    path = _file(tmp_path)

    message = _error(path, "higgs")
    assert "'higgs'" in message and "'Fashion-MNIST'" in message and "'adult'" in message
    message = _error(path)
    assert "2 datasets" in message and "dataset=" in message


def test_missing_metric_names_the_logged_ones(tmp_path: Path) -> None:
    path = _file(tmp_path)

    message = _error(path, "adult", "Train/val_acc")
    assert "'Train/val_acc'" in message and "'Train/val_accuracy'" in message
    message = _error(path, "adult", "final_val_accuracy")
    assert "final result" in message


def test_ragged_curves_name_the_config(tmp_path: Path) -> None:
    data = {"adult": {"0": _run(0), "1": _run(1, n_entries=30), "2": _run(2)}}
    path = _write(tmp_path / "ragged.json", data)

    message = _error(path, "adult")
    assert "ragged" in message and "config '1'" in message and "29" in message
    # Epochs both curves have are fine; keeping every entry is not.
    assert load_lcbench(path, "adult", epochs=29).max_step == 29
    message = _error(path, "adult", epochs=None)
    assert "ragged" in message and "'1'" in message


@pytest.mark.parametrize("bad", [math.nan, math.inf, None, "0.5"])
def test_non_finite_values_name_the_config_and_epoch(tmp_path: Path, bad: Any) -> None:
    run = _run(1)
    run["log"]["Train/val_accuracy"][7] = bad
    path = _write(tmp_path / "bad.json", {"adult": {"0": _run(0), "1": run}})

    message = _error(path, "adult")
    assert "config '1'" in message and "epoch 7" in message and "finite" in message


def test_time_must_be_cumulative_and_logged_by_all_or_none(tmp_path: Path) -> None:
    decreasing = _run(1)
    decreasing["log"]["time"][5] = 0.0
    path = _write(tmp_path / "decreasing.json", {"adult": {"0": _run(0), "1": decreasing}})
    assert "cumulative" in _error(path, "adult")

    partly = _run(1)
    del partly["log"]["time"]
    path = _write(tmp_path / "partly.json", {"adult": {"0": _run(0), "1": partly}})
    assert "'time'" in _error(path, "adult")

    none = [_run(0), _run(1)]
    for run in none:
        del run["log"]["time"]
    path = _write(tmp_path / "none.json", {"adult": {str(i): r for i, r in enumerate(none)}})
    assert not load_lcbench(path, "adult").has_times


@pytest.mark.parametrize(
    "content",
    ['{"adult": ', "[1, 2]", '{"adult": {}}', '{"adult": {"0": {"config": {}}}}'],
)
def test_files_not_in_the_layout(tmp_path: Path, content: str) -> None:
    path = tmp_path / "other.json"
    path.write_text(content)

    _error(path, "adult")


def test_epochs_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="epochs"):
        load_lcbench(_file(tmp_path), "adult", epochs=0)
