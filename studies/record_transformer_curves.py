"""Record a held-out learning-curve table: a small transformer learning to sort, offline.

Draws ``--configs`` random configurations of a small ``torch.nn.TransformerEncoder`` (learning
rate, weight decay, width, depth, heads, dropout, batch size, optimiser, warm-up, pre- or
post-norm), trains each for ``--epochs`` epochs on a generated sorting task and writes every
epoch's validation token accuracy (maximize) to
``optuna_qsvr/benchmark/curves/transformer_sort.csv.gz`` with the columns
``config,step,value,param_<name>...,time,metric`` (step is the 1-based epoch, time the
configuration's median CPU seconds per epoch).

The task: a sequence of ``--length`` symbols drawn uniformly from ``--vocab`` symbols; the
model reads it once (an encoder, no causal mask, no decoder) and must output, at every
position, the symbol that belongs there once the sequence is sorted; chance is one in
``--vocab`` per token. With the defaults, runs end anywhere from chance (SGD with a tiny
learning rate, AdamW with a large one) to above 99% of tokens, and curves cross: the run that
ends best is 28th at epoch 5. The data is generated from the seed, nothing is downloaded, and
the table is held out: no default or option of the package is tuned on it.

The draws and every run are seeded (configuration ``i`` trains with ``seed + i`` on one torch
thread), so a rerun writes the same values. Progress is kept in ``<out>.partial``; an
interrupted recording resumes from it when rerun with the same arguments.

Example::

    nice -n 19 python -m studies.record_transformer_curves --processes 2
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from studies import _recording
from studies._common import CURVES_DIR

if TYPE_CHECKING:
    import torch

DEFAULT_OUT = CURVES_DIR / "transformer_sort.csv.gz"
METRIC = "val_token_accuracy"
DIRECTION = "maximize"
PARAMS = (
    "learning_rate",
    "weight_decay",
    "d_model",
    "layers",
    "heads",
    "dropout",
    "batch_size",
    "optimizer",
    "warmup_epochs",
    "norm_first",
)


@dataclass(frozen=True)
class SortData:
    """Generated sequences and their sorted versions, as int64 tensors ``(N, length)``.

    Args:
        x_train: Training inputs.
        y_train: Training targets (each row of ``x_train`` sorted).
        x_val: Validation inputs.
        y_val: Validation targets.
        vocab: Number of symbols.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    vocab: int


def make_data(*, n_train: int, n_val: int, length: int, vocab: int, seed: int) -> SortData:
    """The sorting task: uniform random sequences, training and validation disjoint.

    Args:
        n_train: Training sequences.
        n_val: Validation sequences.
        length: Symbols per sequence.
        vocab: Number of distinct symbols.
        seed: Seed of the generator.
    """
    import torch

    rng = np.random.default_rng(seed)
    seen: set[bytes] = set()
    rows = []
    # Distinct sequences, so a validation sequence is never one the model trained on.
    while len(rows) < n_train + n_val:
        row = rng.integers(0, vocab, size=length, dtype=np.int64)
        key = row.tobytes()
        if key not in seen:
            seen.add(key)
            rows.append(row)
    x = np.stack(rows)
    y = np.sort(x, axis=1)
    as_tensor = torch.from_numpy
    return SortData(
        as_tensor(x[:n_train]),
        as_tensor(y[:n_train]),
        as_tensor(x[n_train:]),
        as_tensor(y[n_train:]),
        vocab,
    )


def draw_configs(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` seeded random configurations.

    Learning rate log-uniform in [1e-4, 3e-1] (AdamW is unstable at the top, SGD barely moves
    at the bottom), weight decay log-uniform in [1e-6, 1e-1], width 16/32/64, 1 or 2 layers, 1/2/4
    heads, dropout uniform in [0, 0.3], batch 32/64/128, AdamW or SGD with Nesterov momentum
    0.9, 0/2/5 warm-up epochs before a cosine decay, pre- or post-norm layers.

    Args:
        n: Number of configurations.
        seed: Seed of the draws.
    """
    rng = np.random.default_rng([seed, 1])
    configs = []
    for _ in range(n):
        configs.append(
            {
                "learning_rate": float(np.exp(rng.uniform(np.log(1e-4), np.log(3e-1)))),
                "weight_decay": float(np.exp(rng.uniform(np.log(1e-6), np.log(1e-1)))),
                "d_model": int(rng.choice([16, 32, 64])),
                "layers": int(rng.choice([1, 2])),
                "heads": int(rng.choice([1, 2, 4])),
                "dropout": float(rng.uniform(0.0, 0.3)),
                "batch_size": int(rng.choice([32, 64, 128])),
                "optimizer": str(rng.choice(["adamw", "sgd"])),
                "warmup_epochs": int(rng.choice([0, 2, 5])),
                "norm_first": str(rng.choice(["pre", "post"])),
            }
        )
    return configs


def build_model(params: Mapping[str, Any], vocab: int, length: int) -> torch.nn.Module:
    """Token and learned position embeddings, a ``TransformerEncoder``, a per-position head."""
    import torch
    from torch import nn

    d_model = int(params["d_model"])

    class SortTransformer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokens = nn.Embedding(vocab, d_model)
            self.positions = nn.Parameter(torch.randn(1, length, d_model) * 0.1)
            layer = nn.TransformerEncoderLayer(
                d_model,
                int(params["heads"]),
                dim_feedforward=2 * d_model,
                dropout=float(params["dropout"]),
                batch_first=True,
                norm_first=params["norm_first"] == "pre",
            )
            # The fast path and nested tensors only matter for inference with padding.
            self.encoder = nn.TransformerEncoder(
                layer, int(params["layers"]), enable_nested_tensor=False
            )
            self.norm = nn.LayerNorm(d_model)
            self.head = nn.Linear(d_model, vocab)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.norm(self.encoder(self.tokens(x) + self.positions)))

    return SortTransformer()


def train(params: Mapping[str, Any], data: SortData, epochs: int, *, seed: int) -> Iterator[float]:
    """Train one configuration; yield the validation token accuracy after every epoch.

    A run whose training loss becomes NaN or infinite has diverged: it yields its accuracy at
    that point and stops early (the recorder repeats that value for the remaining epochs).

    Args:
        params: One configuration of :func:`draw_configs`.
        data: The task.
        epochs: Epochs to train (also the length of the cosine schedule).
        seed: Seeds the initialisation, dropout and the batch order.
    """
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    length = data.x_train.shape[1]
    model = build_model(params, data.vocab, length)
    lr = float(params["learning_rate"])
    if params["optimizer"] == "adamw":
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=lr, weight_decay=float(params["weight_decay"])
        )
    else:
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=lr,
            momentum=0.9,
            nesterov=True,
            weight_decay=float(params["weight_decay"]),
        )
    batch = int(params["batch_size"])
    n = len(data.x_train)
    steps_per_epoch = math.ceil(n / batch)
    total = epochs * steps_per_epoch
    warmup = min(int(params["warmup_epochs"]), epochs) * steps_per_epoch

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            logits = model(data.x_train[idx])
            loss = F.cross_entropy(logits.reshape(-1, data.vocab), data.y_train[idx].reshape(-1))
            if not torch.isfinite(loss):
                yield _accuracy(model, data)
                return
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        yield _accuracy(model, data)


def _accuracy(model: torch.nn.Module, data: SortData) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        predicted = model(data.x_val).argmax(-1)
    return float((predicted == data.y_val).float().mean())


def main(argv: Sequence[str] | None = None) -> None:
    """Record the table from the command line and print its rank statistics."""
    parser = argparse.ArgumentParser(
        prog="python -m studies.record_transformer_curves",
        description=__doc__.split("\n\n")[0],
    )
    _recording.add_arguments(parser, default_out=DEFAULT_OUT)
    parser.add_argument("--n-train", type=int, default=1000, help="training sequences")
    parser.add_argument("--n-val", type=int, default=500, help="validation sequences")
    parser.add_argument("--length", type=int, default=12, help="symbols per sequence")
    parser.add_argument("--vocab", type=int, default=16, help="distinct symbols")
    args = parser.parse_args(argv)

    configs = draw_configs(args.configs, args.seed)
    data_args = {
        "n_train": args.n_train,
        "n_val": args.n_val,
        "length": args.length,
        "vocab": args.vocab,
        "seed": args.seed,
    }
    start = time.perf_counter()
    curves = _recording.record(
        args.out,
        configs=configs,
        epochs=args.epochs,
        seed=args.seed,
        processes=args.processes,
        make_data=make_data,
        data_args=data_args,
        train=train,
        metric=METRIC,
    )
    _recording.print_summary(args.out, curves, DIRECTION, time.perf_counter() - start)


if __name__ == "__main__":
    main()
