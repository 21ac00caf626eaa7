"""Record a held-out learning-curve table: a one-dimensional CNN on MNIST-1D, offline.

Draws ``--configs`` random configurations of a convolutional classifier (learning rate, weight
decay, channels, convolution blocks, kernel size, pooling, dropout, batch size, optimiser,
learning-rate schedule, input noise), trains each for ``--epochs`` epochs on MNIST-1D and
writes every epoch's validation accuracy (maximize) to
``optuna_qsvr/benchmark/curves/cnn1d_mnist1d.csv.gz`` with the columns
``config,step,value,param_<name>...,time,metric`` (step is the 1-based epoch, time the
configuration's median CPU seconds per epoch).

The data are those of ``record_mlp_curves`` (``mnist1d``'s ``make_dataset``; nothing is
downloaded), 4,000 training signals. Convolutions are the model family MNIST-1D was made to
separate from fully connected networks: shift-invariant features that reach a higher accuracy,
at a pace that depends on depth, kernel and pooling. A run whose training loss becomes NaN or
infinite has diverged and is recorded at chance (0.1) from then on. The table was recorded on
1 December 2026, after every default of the package was fixed, and is held out: nothing is
tuned on it.

Seeded, resumable and parallel as every recording (``studies/_recording.py``): a rerun with
the same arguments writes the same values.

Example::

    nice -n 19 python -m studies.record_cnn1d_curves --processes 2
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from studies._common import CURVES_DIR

# Every MNIST-1D table records the validation accuracy, chance for a diverged run.
from studies.record_mlp_curves import CHANCE as CHANCE
from studies.record_mlp_curves import DIRECTION as DIRECTION
from studies.record_mlp_curves import METRIC as METRIC
from studies.record_mlp_curves import Signals, record_mnist1d, train_classifier

if TYPE_CHECKING:
    import torch

DEFAULT_OUT = CURVES_DIR / "cnn1d_mnist1d.csv.gz"
PARAMS = (
    "learning_rate",
    "weight_decay",
    "channels",
    "blocks",
    "kernel",
    "pooling",
    "dropout",
    "batch_size",
    "optimizer",
    "schedule",
    "input_noise",
)


def draw_configs(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` seeded random configurations.

    Learning rate log-uniform in [1e-4, 0.3], weight decay log-uniform in [1e-6, 1e-2], 8, 16,
    32 or 64 channels, one to three convolution blocks, kernel 3, 5 or 7, max or average
    pooling (or none) after each block, dropout uniform in [0, 0.5] before the classifier,
    batch 32/64/128/256, SGD with Nesterov momentum 0.9 or Adam, constant or cosine learning
    rate, and Gaussian input noise of standard deviation 0 (half the draws) or uniform in
    [0, 0.5].

    Args:
        n: Number of configurations.
        seed: Seed of the draws.
    """
    rng = np.random.default_rng([seed, 5])
    configs = []
    for _ in range(n):
        noise = float(rng.uniform(0.0, 0.5)) if rng.random() < 0.5 else 0.0
        configs.append(
            {
                "learning_rate": float(np.exp(rng.uniform(np.log(1e-4), np.log(0.3)))),
                "weight_decay": float(np.exp(rng.uniform(np.log(1e-6), np.log(1e-2)))),
                "channels": int(rng.choice([8, 16, 32, 64])),
                "blocks": int(rng.choice([1, 2, 3])),
                "kernel": int(rng.choice([3, 5, 7])),
                "pooling": str(rng.choice(["max", "avg", "none"])),
                "dropout": float(rng.uniform(0.0, 0.5)),
                "batch_size": int(rng.choice([32, 64, 128, 256])),
                "optimizer": str(rng.choice(["sgd", "adam"])),
                "schedule": str(rng.choice(["constant", "cosine"])),
                "input_noise": noise,
            }
        )
    return configs


def build_model(params: Mapping[str, Any], n_in: int = 40, n_classes: int = 10) -> torch.nn.Module:
    """``blocks`` blocks of a same-padded convolution of ``channels`` and ReLU, each followed
    by a pooling of 2 (unless ``pooling`` is ``"none"``), then dropout and a linear classifier
    over the flattened features."""
    from torch import nn

    channels, kernel = int(params["channels"]), int(params["kernel"])
    pool = {"max": nn.MaxPool1d, "avg": nn.AvgPool1d}.get(str(params["pooling"]))
    layers: list[nn.Module] = [nn.Unflatten(1, (1, n_in))]
    length = n_in
    for i in range(int(params["blocks"])):
        layers += [nn.Conv1d(1 if i == 0 else channels, channels, kernel, padding="same")]
        layers.append(nn.ReLU())
        if pool is not None:
            layers.append(pool(2))
            length //= 2
    layers += [nn.Flatten(), nn.Dropout(float(params["dropout"]))]
    layers.append(nn.Linear(channels * length, n_classes))
    return nn.Sequential(*layers)


def train(params: Mapping[str, Any], data: Signals, epochs: int, *, seed: int) -> Iterator[float]:
    """Train one configuration of :func:`draw_configs` with ``seed``; yield the validation
    accuracy after every epoch: the MLP table's loop (``train_classifier``, which records a
    diverged run at :data:`CHANCE`)."""
    return train_classifier(
        lambda: build_model(params, n_in=data.x_train.shape[1]), params, data, epochs, seed=seed
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Record the table from the command line and print its rank statistics."""
    record_mnist1d(
        argv,
        prog="python -m studies.record_cnn1d_curves",
        description=__doc__.split("\n\n")[0],
        default_out=DEFAULT_OUT,
        n_train=4000,
        draw_configs=draw_configs,
        train=train,
    )


if __name__ == "__main__":
    main()
