from __future__ import annotations

import gzip
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from studies import _delphes, mlpf, record_hep_curves

SMALL = mlpf.MLPFConfig(
    learning_rate=3e-3,
    weight_decay=1e-4,
    hidden=16,
    layers=2,
    dropout=0.1,
    regression_weight=1.0,
    neighbours=4,
)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Tiny models run fastest on one thread, and the machine is shared.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data() -> mlpf.MLPFData:
    return mlpf.prepare_data(
        _delphes.simulate_events(40, seed=0, mean_particles=6), val_fraction=0.25
    )


def test_element_inputs_one_hot_the_type_and_log_scale_energies() -> None:
    events = _delphes.simulate_events(3, seed=1, mean_particles=10)
    x = events.X[0]
    inputs = mlpf.element_inputs(x)
    assert inputs.shape == (len(x), mlpf.N_INPUTS)
    np.testing.assert_array_equal(inputs[:, 0], x[:, 0] == _delphes.TRACK)
    np.testing.assert_array_equal(inputs[:, 1], x[:, 0] == _delphes.TOWER)
    np.testing.assert_allclose(inputs[:, 2], np.log1p(x[:, 1]), rtol=1e-6)
    np.testing.assert_array_equal(inputs[:, 3:6], x[:, 2:5])
    classes, targets = mlpf.element_targets(events.ygen[0])
    np.testing.assert_array_equal(classes, events.ygen[0][:, 0].astype(int))
    assert targets.shape == (len(x), mlpf.N_TARGETS)


def test_prepare_data_splits_events_and_weights_rare_classes(data: mlpf.MLPFData) -> None:
    assert (len(data.train), len(data.valid)) == (30, 10)
    counts = torch.bincount(torch.cat([c for _, c, _ in data.train]), minlength=6)
    weights = data.class_weights
    assert weights.shape == (mlpf.N_CLASSES,) and torch.all(weights > 0)
    # Rarer classes weigh more.
    present = counts > 0
    order = torch.argsort(counts[present])
    assert torch.all(torch.diff(weights[present][order]) <= 1e-6)
    with pytest.raises(ValueError, match="val_fraction"):
        mlpf.prepare_data(_delphes.simulate_events(4, seed=0), val_fraction=1.0)


def test_prepare_data_drops_empty_events() -> None:
    events = _delphes.simulate_events(6, seed=2, mean_particles=5)
    events.X[0] = np.zeros((0, 12), dtype=np.float32)
    events.ygen[0] = np.zeros((0, 7), dtype=np.float32)
    events.ycand[0] = np.zeros((0, 7), dtype=np.float32)
    prepared = mlpf.prepare_data(events, val_fraction=0.2)
    assert len(prepared.train) + len(prepared.valid) == 5


def test_padding_does_not_change_an_events_predictions(data: mlpf.MLPFData) -> None:
    torch.manual_seed(0)
    config = mlpf.MLPFConfig(1e-3, 0.0, 16, 2, 0.0, 1.0, neighbours=16)
    model = mlpf._build_model(config).eval()
    events = sorted(data.train, key=lambda e: len(e[0]))
    small, large = events[0], events[-1]
    assert len(small[0]) < len(large[0])
    with torch.no_grad():
        alone = model(*mlpf._pad([small], "cpu")[::3])
        inputs, _, _, mask = mlpf._pad([small, large], "cpu")
        batched = model(inputs, mask)
    n = len(small[0])
    torch.testing.assert_close(batched[0][0, :n], alone[0][0])
    torch.testing.assert_close(batched[1][0, :n], alone[1][0])


def test_train_epochs_is_deterministic_and_learns(data: mlpf.MLPFData) -> None:
    first = list(mlpf.train_epochs(SMALL, data, 8, seed=5))
    again = list(mlpf.train_epochs(SMALL, data, 8, seed=5))
    other = list(mlpf.train_epochs(SMALL, data, 8, seed=6))
    assert len(first) == 8 and all(math.isfinite(v) for v in first)
    assert first == again
    assert first != other
    assert first[-1] < first[0]


def test_a_diverging_configuration_is_recorded_at_the_finite_cap(data: mlpf.MLPFData) -> None:
    exploding = mlpf.MLPFConfig(1e4, 0.0, 16, 1, 0.0, 10.0, 4)
    curve = list(mlpf.train_epochs(exploding, data, 4, seed=0))
    assert curve == [mlpf.DIVERGED_LOSS] * 4


@pytest.mark.parametrize("pruner", ["none", "hyperband"])
def test_study_command_runs_trials_reporting_every_epoch(tmp_path: Path, pruner: str) -> None:
    storage = f"sqlite:///{tmp_path / 'mlpf.db'}"
    mlpf.main(
        [
            "--storage",
            storage,
            "--n-trials",
            "2",
            "--epochs",
            "3",
            "--pruner",
            pruner,
            "--sampler",
            "random",
            "--n-events",
            "24",
            "--mean-particles",
            "5",
        ]
    )
    loaded = optuna.load_study(study_name="mlpf", storage=storage)
    assert loaded.direction == optuna.study.StudyDirection.MINIMIZE
    assert len(loaded.trials) == 2
    for trial in loaded.trials:
        assert set(trial.params) == set(record_hep_curves.PARAMS)
        steps = sorted(trial.intermediate_values)
        assert steps == list(range(1, len(steps) + 1))
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert steps == [1, 2, 3]
            assert trial.value == trial.intermediate_values[3]


def test_study_command_reads_delphes_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "delphes"
    data_dir.mkdir()
    for i in range(2):
        events = _delphes.simulate_events(10, seed=i, mean_particles=5)
        _delphes.write_pickle(events, data_dir / f"tev14_pythia8_ttbar_{i}_0.pkl.bz2")
    storage = f"sqlite:///{tmp_path / 'mlpf.db'}"
    study = mlpf.main(
        [
            "--storage",
            storage,
            "--n-trials",
            "1",
            "--epochs",
            "2",
            "--pruner",
            "none",
            "--data-dir",
            str(data_dir),
        ]
    )
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE
    assert sorted(study.trials[0].intermediate_values) == [1, 2]


def test_study_command_help_says_data_is_simulated_without_data_dir(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        mlpf.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "built-in simulation" in text and "nothing is downloaded" in text
    assert "--n-events" in text


def test_recording_writes_the_replay_table(tmp_path: Path) -> None:
    from optuna_qsvr.benchmark import CurveTable

    output = tmp_path / "curves.csv.gz"
    record_hep_curves.main(
        [
            "--n-configs",
            "3",
            "--epochs",
            "2",
            "--n-events",
            "12",
            "--mean-particles",
            "4",
            "--output",
            str(output),
        ]
    )
    with gzip.open(output, "rt") as f:
        header = f.readline().strip().split(",")
        rows = [line.strip().split(",") for line in f]
    assert header == ["config", "step", "value", *(f"param_{p}" for p in record_hep_curves.PARAMS)]
    assert len(rows) == 3 * 2
    assert [int(r[1]) for r in rows] == [1, 2] * 3
    assert all(math.isfinite(float(r[2])) for r in rows)
    assert len(record_hep_curves.draw_configs(3, seed=0)) == 3
    assert record_hep_curves.draw_configs(3, seed=0) == record_hep_curves.draw_configs(3, 0)
    table = CurveTable.load(output)
    assert len(table) == 3
    np.testing.assert_allclose(table.values("0"), [float(r[2]) for r in rows[:2]])
    assert set(table.params("0")) == set(record_hep_curves.PARAMS)
