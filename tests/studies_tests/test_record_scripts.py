from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from optuna_qsvr.benchmark import CurveTable, infer_direction
from studies import (
    _recording,
    record_cnn1d_curves,
    record_gru_curves,
    record_mlp_curves,
    record_resnet_curves,
    record_transformer_curves,
)

# Tiny data: each script trains 2 configurations for 2 epochs in a few seconds.
TINY = {
    record_transformer_curves: ["--n-train", "48", "--n-val", "24", "--length", "6"],
    record_resnet_curves: ["--max-train", "40", "--n-val", "20"],
    record_mlp_curves: ["--n-train", "64", "--n-val", "32"],
    record_gru_curves: ["--n-train", "64", "--n-val", "32"],
    record_cnn1d_curves: ["--n-train", "64", "--n-val", "32"],
}
SCRIPTS = list(TINY)


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    # The recorder sets one intra-op thread in the process that trains.
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _record(script, out: Path, *extra: str) -> CurveTable:
    script.main(
        ["--out", str(out), "--configs", "2", "--epochs", "2", "--processes", "1"]
        + TINY[script]
        + list(extra)
    )
    return CurveTable.load(out)


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_writes_a_curve_table(script, tmp_path: Path, capsys) -> None:
    out = tmp_path / "curves.csv.gz"

    table = _record(script, out)

    assert table.configs == ("0", "1")
    assert table.max_step == 2
    assert set(table.param_names) == set(script.PARAMS)
    assert table.metric == script.METRIC
    assert infer_direction(table.metric) == script.DIRECTION
    assert table.has_times and all(table.seconds_per_epoch(c)[0] > 0 for c in table.configs)
    drawn = script.draw_configs(2, 0)[1]
    recorded = table.params("1")
    assert recorded.keys() == drawn.keys()
    for name, value in drawn.items():
        # Floats are written with 6 significant digits.
        assert recorded[name] == (
            pytest.approx(value, rel=1e-5) if isinstance(value, float) else value
        )
    for config in table.configs:
        values = table.values(config)
        if script.DIRECTION == "maximize":
            assert np.all((values >= 0) & (values <= 1))
        else:
            assert np.all((values > 0) & (values <= record_resnet_curves.DIVERGED_LOSS))
    assert not out.with_name(out.name + ".partial").exists()
    assert "Spearman" in capsys.readouterr().out


def test_rerun_in_two_processes_writes_the_same_values(tmp_path: Path) -> None:
    script = record_transformer_curves
    _record(script, tmp_path / "one.csv.gz")
    _record(script, tmp_path / "two.csv.gz", "--processes", "2")

    def without_time(path: Path) -> list[list[str]]:
        with gzip.open(path, "rt") as f:
            rows = [line.rstrip("\n").split(",") for line in f]
        time = rows[0].index("time")
        return [row[:time] + row[time + 1 :] for row in rows]

    assert without_time(tmp_path / "one.csv.gz") == without_time(tmp_path / "two.csv.gz")


@pytest.mark.parametrize("script", SCRIPTS)
def test_draws_are_seeded_and_in_range(script) -> None:
    draws = script.draw_configs(50, 3)

    assert draws == script.draw_configs(50, 3)
    assert draws != script.draw_configs(50, 4)
    rates = [d["learning_rate"] for d in draws]
    assert 1e-4 <= min(rates) and max(rates) <= 1.0
    assert max(rates) / min(rates) > 100
    assert all(set(d) == set(script.PARAMS) for d in draws)


def test_sorting_task_targets_are_sorted_and_splits_disjoint() -> None:
    data = record_transformer_curves.make_data(n_train=200, n_val=100, length=7, vocab=9, seed=0)

    assert data.x_train.shape == (200, 7) and data.x_val.shape == (100, 7)
    assert torch.equal(data.y_train, data.x_train.sort(dim=1).values)
    assert torch.equal(data.y_val, data.x_val.sort(dim=1).values)
    train = {tuple(row) for row in data.x_train.tolist()}
    assert not train & {tuple(row) for row in data.x_val.tolist()}
    assert int(data.x_train.max()) < 9


def test_mnist1d_signals_are_standardised_on_the_training_split() -> None:
    data = record_mlp_curves.make_data(n_train=400, n_val=100, seed=42)

    assert data.x_train.shape == (400, 40) and data.x_val.shape == (100, 40)
    assert abs(float(data.x_train.mean())) < 1e-5
    assert float(data.x_train.std()) == pytest.approx(1.0, abs=1e-2)
    assert set(data.y_train.tolist()) == set(range(10))
    with pytest.raises(ValueError, match="n_train"):
        record_mlp_curves.make_data(n_train=4001, n_val=100, seed=42)


def test_mlp_run_that_diverges_is_recorded_at_chance() -> None:
    data = record_mlp_curves.make_data(n_train=256, n_val=64, seed=42)
    # ReLU: tanh saturates and keeps a huge step's network finite (a real, poor accuracy).
    params = record_mlp_curves.draw_configs(1, 0)[0] | {
        "activation": "relu",
        "learning_rate": 1e30,
        "optimizer": "sgd",
        "weight_decay": 0.0,
        "schedule": "constant",
    }

    values = list(record_mlp_curves.train(params, data, 5, seed=0))

    assert values[-1] == record_mlp_curves.CHANCE
    assert len(values) < 5


def test_augmentation_shifts_and_cuts_without_changing_shape() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.arange(2 * 14 * 14, dtype=torch.float32).reshape(2, 1, 14, 14) + 1

    assert torch.equal(record_resnet_curves.augment(images, 0, 0.0, generator), images)
    shifted = record_resnet_curves.augment(images, 2, 0.0, generator)
    assert shifted.shape == images.shape
    # Every kept pixel comes from the same image, at most 2 pixels away; the rest is padding.
    for i in range(2):
        kept = shifted[i][shifted[i] != 0]
        assert set(kept.tolist()) <= set(images[i].flatten().tolist())
    cut = record_resnet_curves.augment(images, 0, 1.0, generator)
    assert ((cut == 0).sum(dim=(1, 2, 3)) == (14 // 3) ** 2).all()


def _stop_early(params, data, epochs, *, seed):
    yield from params["values"]


def test_recorder_repeats_the_last_value_of_a_run_that_stopped(tmp_path: Path) -> None:
    out = tmp_path / "t.csv.gz"
    configs = [{"values": [0.5, 0.25]}, {"values": [0.75]}]

    curves = _recording.record(
        out,
        configs=configs,
        epochs=3,
        seed=0,
        processes=1,
        make_data=dict,
        data_args={},
        train=_stop_early,
        metric="val_loss",
    )

    assert [c.values for c in curves] == [(0.5, 0.25, 0.25), (0.75, 0.75, 0.75)]
    table = CurveTable.load(out)
    np.testing.assert_array_equal(table.values("1"), [0.75, 0.75, 0.75])


def test_recorder_resumes_from_the_partial_file(tmp_path: Path) -> None:
    out = tmp_path / "t.csv.gz"
    partial = tmp_path / "t.csv.gz.partial"
    # Config 1 finished before an interruption (with values the task would not give);
    # config 0 only half.
    partial.write_text("1,1,9.0,0.5\n1,2,8.0,0.5\n0,1,7.0,0.5\n")

    curves = _recording.record(
        out,
        configs=[{"values": [1.0, 2.0]}, {"values": [3.0, 4.0]}],
        epochs=2,
        seed=0,
        processes=1,
        make_data=dict,
        data_args={},
        train=_stop_early,
        metric="val_loss",
    )

    assert [c.values for c in curves] == [(1.0, 2.0), (9.0, 8.0)]
    assert not partial.exists()


def test_rank_summary_counts_crossings() -> None:
    def curve(i: int, values: list[float]) -> _recording.Curve:
        return _recording.Curve(i, tuple(values), 1.0)

    # Ten curves ranked the same at epochs 1 and 2, except the last overtakes everyone.
    curves = [curve(i, [i, i]) for i in range(9)] + [curve(9, [-1.0, 100.0])]

    summary = _recording.rank_summary(curves, "maximize", early=1)

    assert summary["early"] == 1
    assert summary["top10"] == 1
    assert summary["late_bloomers"] == 1
    assert summary["discordant_pairs"] == pytest.approx(9 / 45)
    assert -1 < summary["spearman"] < 1


@pytest.mark.parametrize("step_samples", [1, 2, 4])
def test_gru_reads_the_signal_in_steps_of_its_samples(step_samples) -> None:
    params = record_gru_curves.draw_configs(1, 0)[0] | {"step_samples": step_samples}
    model = record_gru_curves.build_model(params)
    seen = []
    model.gru.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].shape))

    logits = model(torch.zeros(3, 40))

    assert logits.shape == (3, 10)
    assert seen == [(3, 40 // step_samples, step_samples)]


@pytest.mark.parametrize(
    ("blocks", "pooling", "length"),
    [(1, "none", 40), (3, "none", 40), (1, "max", 20), (3, "avg", 5), (2, "max", 10)],
)
def test_cnn1d_blocks_halve_the_signal_only_when_they_pool(blocks, pooling, length) -> None:
    params = record_cnn1d_curves.draw_configs(1, 0)[0] | {
        "blocks": blocks,
        "pooling": pooling,
        "channels": 8,
        "kernel": 5,
    }
    model = record_cnn1d_curves.build_model(params)
    convs = [m for m in model if isinstance(m, torch.nn.Conv1d)]
    classifier = model[-1]

    logits = model(torch.zeros(3, 40))

    assert logits.shape == (3, 10)
    assert len(convs) == blocks and all(c.kernel_size == (5,) for c in convs)
    assert classifier.in_features == 8 * length


_COMMON = {
    "learning_rate": 3e-3,
    "weight_decay": 0.0,
    "dropout": 0.0,
    "batch_size": 32,
    "optimizer": "adam",
    "schedule": "constant",
    "input_noise": 0.0,
}


@pytest.mark.parametrize(
    ("script", "params"),
    [
        (record_cnn1d_curves, {"channels": 16, "blocks": 2, "kernel": 5, "pooling": "max"}),
        (record_gru_curves, {"hidden": 32, "layers": 1, "step_samples": 4, "clip": 1.0}),
    ],
    ids=["cnn1d", "gru"],
)
def test_an_mnist1d_run_learns_above_chance(script, params) -> None:
    data = record_mlp_curves.make_data(n_train=1000, n_val=300, seed=42)

    values = list(script.train(_COMMON | params, data, 4, seed=0))

    assert len(values) == 4
    assert values[-1] > 2 * script.CHANCE


@pytest.mark.parametrize("clip", [1e-3, None])
def test_mnist1d_loop_clips_the_gradient_norm(clip) -> None:
    data = record_mlp_curves.make_data(n_train=64, n_val=32, seed=42)
    params = record_gru_curves.draw_configs(1, 0)[0] | {
        "learning_rate": 1.0,
        "weight_decay": 0.0,
        "batch_size": 64,  # one step per epoch
        "optimizer": "sgd",
        "schedule": "constant",
        "input_noise": 0.0,
    }
    models, before = [], []

    def make_model() -> torch.nn.Module:
        model = record_gru_curves.build_model(params)
        models.append(model)
        before.append(torch.cat([p.detach().flatten().clone() for p in model.parameters()]))
        return model

    list(record_mlp_curves.train_classifier(make_model, params, data, 1, seed=0, clip=clip))

    after = torch.cat([p.detach().flatten() for p in models[0].parameters()])
    moved = float(torch.linalg.vector_norm(after - before[0]))
    # SGD with Nesterov momentum 0.9 moves the first step by 1.9 * lr * the (clipped) gradient.
    if clip is None:
        assert moved > 10 * 1.9 * 1e-3
    else:
        assert moved == pytest.approx(1.9 * clip, rel=1e-3)
