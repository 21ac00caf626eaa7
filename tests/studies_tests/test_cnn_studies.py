from __future__ import annotations

import csv
import gzip
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from optuna.trial import TrialState

from studies import cifar10, mnist, tiny_imagenet
from studies._cnn import (
    CNNConfig,
    build_cnn,
    default_blocks,
    make_objective,
    suggest_cifar_config,
    suggest_tiny_imagenet_config,
    train_epochs,
)
from studies._image_data import load_digits_offline
from studies.record_cv_curves import DEFAULT_OUT, PARAMS, rank_check, record
from tests.studies_tests.test_image_data import write_cifar10, write_tiny_imagenet

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    return load_digits_offline(n_val=150, max_train=200, seed=0)


# --- The network and its training loop -------------------------------------------------------


@pytest.mark.parametrize(
    ("channels", "size", "n_classes", "blocks"),
    [(1, (8, 8), 10, 2), (1, (14, 14), 10, 2), (3, (32, 32), 10, 3), (3, (64, 64), 200, 3)],
)
def test_cnn_fits_any_image_shape(channels, size, n_classes, blocks):
    assert default_blocks(*size) == blocks
    model = build_cnn(
        CNNConfig(filters=4), in_channels=channels, image_size=size, n_classes=n_classes
    )
    logits = model(torch.zeros(3, channels, *size))
    assert logits.shape == (3, n_classes)


def test_train_epochs_learns_real_digits(digits):
    config = CNNConfig(learning_rate=0.01, momentum=0.9, filters=8, dropout=0.1, batch_size=16)
    accuracies = list(train_epochs(config, digits, 8, seed=1))
    assert len(accuracies) == 8
    assert all(0.0 <= a <= 1.0 for a in accuracies)
    # Ten classes: chance is 0.1; a working network is far above it within a few epochs.
    assert max(accuracies[-3:]) > 0.5
    losses = list(
        train_epochs(CNNConfig(**{**config.__dict__, "metric": "loss"}), digits, 8, seed=1)
    )
    assert losses[-1] < losses[0]


def test_train_epochs_is_deterministic_and_isolated_from_other_torch_code(digits):
    config = CNNConfig(learning_rate=0.01, momentum=0.9, filters=4, dropout=0.3, batch_size=16)
    first = list(train_epochs(config, digits, 3, seed=7))
    # Interleave another run and global random draws between the epochs of this one.
    run = train_epochs(config, digits, 3, seed=7)
    other = train_epochs(config, digits, 3, seed=8)
    interleaved, others = [], []
    for value in run:
        interleaved.append(value)
        torch.rand(100)
        others.append(next(other))
    assert interleaved == first
    assert others != first


def test_a_diverging_configuration_reports_chance_or_infinite_loss(digits):
    config = CNNConfig(learning_rate=1e4, momentum=0.9, filters=4, batch_size=50)
    accuracies = list(train_epochs(config, digits, 3, seed=0))
    assert accuracies[-1] == pytest.approx(0.1, abs=0.05)
    losses = list(train_epochs(CNNConfig(**{**config.__dict__, "metric": "loss"}), digits, 3))
    assert math.isinf(losses[-1]) or losses[-1] > 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"dropout": 1.0}, "dropout"),
        ({"momentum": -0.1}, "momentum"),
        ({"filters": 0}, "filters"),
        ({"metric": "f1"}, "metric"),
    ],
)
def test_config_validation_names_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CNNConfig(**kwargs)


def test_search_spaces_have_5_and_3_hyperparameters():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        config = suggest_cifar_config(trial, batch_size=16)
        assert set(trial.params) == set(PARAMS)
        assert 1e-3 <= config.learning_rate <= 0.3
        assert 8 <= config.filters <= 64
        assert config.batch_size == 16
        study.tell(trial, 0.0)
    trial = study.ask()
    config = suggest_tiny_imagenet_config(trial, filters=12)
    assert set(trial.params) == {"learning_rate", "weight_decay", "dropout"}
    assert config.metric == "loss"
    assert config.filters == 12


class _PruneAtStep(optuna.pruners.BasePruner):
    """A real pruner that prunes every trial once it has reported ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def prune(self, study, trial) -> bool:
        return trial.last_step is not None and trial.last_step >= self.step


def test_objective_reports_every_epoch_and_obeys_the_pruner(digits):
    suggest = lambda trial: suggest_cifar_config(trial, batch_size=50, filters=(4, 8))  # noqa: E731
    objective = make_objective(digits, suggest, epochs=4, seed=0, device="cpu")
    study = optuna.create_study(direction="maximize", pruner=_PruneAtStep(2))
    study.optimize(objective, n_trials=2)
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    assert all(sorted(t.intermediate_values) == [1, 2] for t in study.trials)

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [1, 2, 3, 4]
    assert trial.value == trial.intermediate_values[4]


# --- The studies' command lines --------------------------------------------------------------


def _check_trials(study: optuna.study.Study, epochs: int, n_trials: int) -> None:
    assert len(study.trials) == n_trials
    for trial in study.trials:
        assert trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
        steps = sorted(trial.intermediate_values)
        assert steps == list(range(1, len(steps) + 1))
        if trial.state == TrialState.COMPLETE:
            assert steps[-1] == epochs
            assert trial.value == trial.intermediate_values[epochs]
        else:
            assert 1 <= steps[-1] < epochs


def test_cifar10_command_end_to_end(tmp_path, capsys):
    write_cifar10(tmp_path, per_batch=8, n_test=10)
    storage = f"sqlite:///{tmp_path / 'cifar.db'}"
    study = cifar10.main(
        [
            "--data-dir",
            str(tmp_path),
            "--storage",
            storage,
            "--n-trials",
            "3",
            "--epochs",
            "2",
            "--pruner",
            "none",
            "--sampler",
            "random",
            "--batch-size",
            "16",
            "--min-filters",
            "4",
            "--max-filters",
            "6",
        ]
    )
    _check_trials(study, epochs=2, n_trials=3)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert len(study.trials[0].params) == 5
    reloaded = optuna.load_study(study_name="cifar10", storage=storage)
    assert len(reloaded.trials) == 3
    assert "3 trials" in capsys.readouterr().out


def test_cifar10_command_without_the_files_explains(tmp_path):
    with pytest.raises(SystemExit, match=r"data_batch_1.*Nothing is downloaded"):
        cifar10.main(
            [
                "--data-dir",
                str(tmp_path),
                "--storage",
                f"sqlite:///{tmp_path / 'x.db'}",
                "--pruner",
                "none",
            ]
        )


def test_tiny_imagenet_command_end_to_end_with_hyperband(tmp_path):
    write_tiny_imagenet(tmp_path, n_train=4, n_val=6)
    study = tiny_imagenet.main(
        [
            "--data-dir",
            str(tmp_path),
            "--storage",
            f"sqlite:///{tmp_path / 't.db'}",
            "--n-trials",
            "3",
            "--epochs",
            "3",
            "--pruner",
            "hyperband",
            "--sampler",
            "random",
            "--filters",
            "4",
            "--batch-size",
            "8",
        ]
    )
    _check_trials(study, epochs=3, n_trials=3)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert set(study.trials[0].params) == {"learning_rate", "weight_decay", "dropout"}
    assert all(v > 0 for t in study.trials for v in t.intermediate_values.values())


@pytest.mark.parametrize("pruner", ["sha", "swift-svr"])
def test_mnist_command_runs_offline(tmp_path, pruner):
    study = mnist.main(
        [
            "--storage",
            f"sqlite:///{tmp_path / 'm.db'}",
            "--n-trials",
            "3",
            "--epochs",
            "3",
            "--pruner",
            pruner,
            "--max-train",
            "100",
            "--n-val",
            "50",
            "--max-filters",
            "6",
            "--batch-size",
            "25",
        ]
    )
    _check_trials(study, epochs=3, n_trials=3)
    assert len(study.trials[0].params) == 5


# --- The recorded learning-curve table -------------------------------------------------------


def _read_table(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", newline="") as f:
        return list(csv.DictReader(f))


def test_record_writes_the_table_format_and_is_reproducible(tmp_path):
    kwargs = dict(
        n_configs=3, epochs=4, seed=1, batch_size=25, filters=(4, 6), max_train=60, n_val=60
    )
    out = tmp_path / "curves.csv.gz"
    record(out, **kwargs)
    with gzip.open(out, "rt") as f:
        header = f.readline().strip().split(",")
    assert header == ["config", "step", "value", *(f"param_{p}" for p in PARAMS)]
    rows = _read_table(out)
    assert len(rows) == 12
    assert [int(r["step"]) for r in rows[:4]] == [1, 2, 3, 4]
    assert {int(r["config"]) for r in rows} == {0, 1, 2}
    assert all(0.0 <= float(r["value"]) <= 1.0 for r in rows)
    assert not (tmp_path / "curves.csv.gz.partial").exists()
    first = out.read_bytes()
    record(out, **kwargs)
    assert out.read_bytes() == first


def test_rank_check_measures_whether_early_rankings_hold(tmp_path):
    header = "config,step,value," + ",".join(f"param_{p}" for p in PARAMS)
    params = "0.01,0.0001,0.2,8,0.9"
    # Config c is best at epoch 1 and worst at epoch 3; config a the other way round.
    values = {0: (0.2, 0.5, 0.9), 1: (0.3, 0.5, 0.6), 2: (0.4, 0.4, 0.3)}
    lines = [header] + [
        f"{c},{step},{v},{params}"
        for c, curve in values.items()
        for step, v in enumerate(curve, start=1)
    ]
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    assert rank_check(path, 1, 3) == pytest.approx(-1.0)
    assert rank_check(path, 3, 3) == pytest.approx(1.0)


def test_recorded_cnn_digits_table():
    if not DEFAULT_OUT.exists():
        pytest.skip(f"{DEFAULT_OUT} has not been recorded yet")
    assert DEFAULT_OUT.stat().st_size < 2_000_000
    rows = _read_table(DEFAULT_OUT)
    assert list(rows[0]) == ["config", "step", "value", *(f"param_{p}" for p in PARAMS)]
    steps: dict[int, list[int]] = {}
    for row in rows:
        steps.setdefault(int(row["config"]), []).append(int(row["step"]))
    assert len(steps) >= 200
    assert all(s == list(range(1, len(s) + 1)) and len(s) >= 50 for s in steps.values())
    finals = np.array([float(r["value"]) for r in rows if int(r["step"]) == 50])
    # A useful table spans good and bad configurations.
    assert finals.max() > 0.9 and finals.min() < 0.5
