"""Record a held-out learning-curve table: a recurrent network (GRU) on MNIST-1D, offline.

Draws ``--configs`` random configurations of a GRU classifier (learning rate, weight decay,
hidden size, layers, dropout between layers, samples read per step, batch size, optimiser,
learning-rate schedule, gradient clipping, input noise), trains each for ``--epochs`` epochs on
MNIST-1D and writes every epoch's validation accuracy (maximize) to
``optuna_qsvr/benchmark/curves/gru_mnist1d.csv.gz`` with the columns
``config,step,value,param_<name>...,time,metric`` (step is the 1-based epoch, time the
configuration's median CPU seconds per epoch).

The data are those of ``record_mlp_curves`` (``mnist1d``'s ``make_dataset``; nothing is
downloaded), 2,000 training signals by default to keep a recording under half an hour on two
cores. A recurrent network reads the 40 samples in order (1, 2 or 4 per step) and must carry
the digit's shape to the end of the sequence: runs often sit near chance for some epochs before
they learn, and how long depends on the learning rate, the clipping and the steps, a shape
that tests whether a run's early rank lasts. A run whose training loss becomes NaN or infinite
has diverged and is recorded at chance (0.1) from then on. The table is held out: no default
or option of the package is tuned on it.

Seeded, resumable and parallel as every recording (``studies/_recording.py``): a rerun with
the same arguments writes the same values.

Example::

    nice -n 19 python -m studies.record_gru_curves --processes 2
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

DEFAULT_OUT = CURVES_DIR / "gru_mnist1d.csv.gz"
PARAMS = (
    "learning_rate",
    "weight_decay",
    "hidden",
    "layers",
    "dropout",
    "step_samples",
    "batch_size",
    "optimizer",
    "schedule",
    "clip",
    "input_noise",
)


def draw_configs(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` seeded random configurations.

    Learning rate log-uniform in [3e-4, 0.1], weight decay log-uniform in [1e-6, 1e-2], hidden
    size 16/32/64/96, one or two layers (dropout uniform in [0, 0.4] between two), 1, 2 or 4
    samples read per step, batch 32/64/128/256, SGD with Nesterov momentum 0.9 or Adam,
    constant or cosine learning rate, gradient-norm clipping at 0.5, 1 or 5, and Gaussian input
    noise of standard deviation 0 (half the draws) or uniform in [0, 0.3].

    Args:
        n: Number of configurations.
        seed: Seed of the draws.
    """
    rng = np.random.default_rng([seed, 4])
    configs = []
    for _ in range(n):
        noise = float(rng.uniform(0.0, 0.3)) if rng.random() < 0.5 else 0.0
        layers = int(rng.choice([1, 2]))
        dropout = float(rng.uniform(0.0, 0.4))
        configs.append(
            {
                "learning_rate": float(np.exp(rng.uniform(np.log(3e-4), np.log(0.1)))),
                "weight_decay": float(np.exp(rng.uniform(np.log(1e-6), np.log(1e-2)))),
                "hidden": int(rng.choice([16, 32, 64, 96])),
                "layers": layers,
                # Torch applies a GRU's dropout between layers only: none with one layer.
                "dropout": dropout if layers > 1 else 0.0,
                "step_samples": int(rng.choice([1, 2, 4])),
                "batch_size": int(rng.choice([32, 64, 128, 256])),
                "optimizer": str(rng.choice(["sgd", "adam"])),
                "schedule": str(rng.choice(["constant", "cosine"])),
                "clip": float(rng.choice([0.5, 1.0, 5.0])),
                "input_noise": noise,
            }
        )
    return configs


def build_model(params: Mapping[str, Any], n_classes: int = 10) -> torch.nn.Module:
    """A GRU over the signal, ``step_samples`` samples per step, classified from its last
    hidden state."""
    from torch import nn

    class GRUClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.step = int(params["step_samples"])
            self.gru = nn.GRU(
                self.step,
                int(params["hidden"]),
                num_layers=int(params["layers"]),
                dropout=float(params["dropout"]),
                batch_first=True,
            )
            self.head = nn.Linear(int(params["hidden"]), n_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out, _ = self.gru(x.reshape(len(x), -1, self.step))
            return self.head(out[:, -1])

    return GRUClassifier()


def train(params: Mapping[str, Any], data: Signals, epochs: int, *, seed: int) -> Iterator[float]:
    """Train one configuration of :func:`draw_configs` with ``seed``; yield the validation
    accuracy after every epoch: the MLP table's loop (``train_classifier``, which records a
    diverged run at :data:`CHANCE`), the gradient norm clipped at ``clip``."""
    return train_classifier(
        lambda: build_model(params), params, data, epochs, seed=seed, clip=float(params["clip"])
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Record the table from the command line and print its rank statistics."""
    record_mnist1d(
        argv,
        prog="python -m studies.record_gru_curves",
        description=__doc__.split("\n\n")[0],
        default_out=DEFAULT_OUT,
        n_train=2000,
        draw_configs=draw_configs,
        train=train,
    )


if __name__ == "__main__":
    main()
