"""A small configurable CNN for the computer-vision studies, its training loop and HP spaces.

The network is the classic stack the Swift-Hyperband CV benchmarks use: blocks of two 3x3
convolutions with ReLU and 2x2 max-pooling, the number of filters doubling per block, then
global average pooling, dropout and a linear classifier. It adapts to any image size, channel
count and number of classes, so the same code trains on 8x8 digits, 28x28 MNIST, 32x32
CIFAR-10 and 64x64 Tiny ImageNet.

Training is plain SGD with momentum and weight decay. Without batch normalisation the learning
rate, momentum and regularisation matter a lot, which is what makes learning curves cross and
early rankings unreliable: the situation performance prediction is meant for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna
    import torch

    from studies._image_data import ImageSplits

METRICS = ("accuracy", "loss")


@dataclass(frozen=True)
class CNNConfig:
    """Everything that defines one training run of the CNN.

    Args:
        learning_rate: SGD step size.
        weight_decay: L2 penalty applied by the optimiser.
        dropout: Dropout probability before the classifier.
        filters: Channels of the first convolution block; doubled in each further block.
        momentum: SGD momentum (0 disables it).
        batch_size: Training mini-batch size.
        n_blocks: Convolution blocks (each halves the resolution); ``None`` picks as many as
            the image allows, up to three.
        metric: ``"accuracy"`` (fraction correct) or ``"loss"`` (mean cross-entropy) on the
            validation split: what :func:`train_epochs` yields.
    """

    learning_rate: float = 0.01
    weight_decay: float = 5e-4
    dropout: float = 0.25
    filters: int = 32
    momentum: float = 0.9
    batch_size: int = 128
    n_blocks: int | None = None
    metric: str = "accuracy"

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.filters < 1:
            raise ValueError(f"filters must be >= 1, got {self.filters}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.n_blocks is not None and self.n_blocks < 1:
            raise ValueError(f"n_blocks must be >= 1, got {self.n_blocks}")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {self.metric!r}")


def default_blocks(height: int, width: int, max_blocks: int = 3) -> int:
    """As many resolution-halving blocks as keep the feature map at least 2x2."""
    side = min(height, width)
    return max(1, min(max_blocks, int(math.log2(max(side, 2))) - 1))


def build_cnn(
    config: CNNConfig, *, in_channels: int, image_size: tuple[int, int], n_classes: int
) -> torch.nn.Module:
    """The CNN for images of ``in_channels`` x ``image_size`` and ``n_classes`` classes.

    Args:
        config: Architecture choices (``filters``, ``dropout``, ``n_blocks``).
        in_channels: Channels of the input images (1 for grey, 3 for colour).
        image_size: ``(height, width)`` of the input images.
        n_classes: Number of output logits.
    """
    from torch import nn

    n_blocks = config.n_blocks or default_blocks(*image_size)
    layers: list[nn.Module] = []
    channels = in_channels
    for block in range(n_blocks):
        out = config.filters * 2**block
        layers += [
            nn.Conv2d(channels, out, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(out, out, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
        ]
        channels = out
    layers += [
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(config.dropout),
        nn.Linear(channels, n_classes),
    ]
    model = nn.Sequential(*layers)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            # PyTorch's default init shrinks the signal through stacked ReLU convolutions
            # without normalisation, leaving most runs at chance for many epochs; He
            # initialisation keeps the variance and lets the hyperparameters decide.
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return model


def train_epochs(
    config: CNNConfig,
    data: ImageSplits,
    epochs: int,
    *,
    seed: int = 0,
    device: str = "cpu",
) -> Iterator[float]:
    """Train the CNN on ``data`` and yield the validation metric after every epoch.

    The run is deterministic for a given ``seed`` (on a GPU up to cuDNN's own nondeterminism):
    initialisation, shuffling and dropout draw from a private random state, so interleaving
    other torch code between epochs (another trial, a pruner) changes nothing. A diverged run
    (non-finite training loss) keeps yielding chance accuracy or ``inf`` loss rather than
    raising, as a real broken configuration would report.

    Args:
        config: Hyperparameters of the run.
        data: Standardised training and validation images.
        epochs: Number of epochs to train (and values to yield).
        seed: Seed of the run's random state.
        device: Torch device to train on.
    """
    import torch
    from torch import nn

    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    x_train = torch.as_tensor(data.x_train, device=device)
    y_train = torch.as_tensor(data.y_train, device=device)
    x_val = torch.as_tensor(data.x_val, device=device)
    y_val = torch.as_tensor(data.y_val, device=device)

    devices = [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        model = build_cnn(
            config,
            in_channels=data.x_train.shape[1],
            image_size=tuple(data.x_train.shape[2:]),
            n_classes=data.n_classes,
        ).to(device)
        rng_state = _get_rng_state(devices)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.learning_rate,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    loss_fn = nn.CrossEntropyLoss()
    shuffler = torch.Generator().manual_seed(seed)
    diverged = False
    for _ in range(epochs):
        if not diverged:
            with torch.random.fork_rng(devices=devices):
                _set_rng_state(rng_state, devices)
                diverged = not _train_one_epoch(
                    model, optimizer, loss_fn, x_train, y_train, config.batch_size, shuffler
                )
                rng_state = _get_rng_state(devices)
        if diverged:
            yield 1.0 / data.n_classes if config.metric == "accuracy" else math.inf
        else:
            yield _evaluate(model, loss_fn, x_val, y_val, config.metric, config.batch_size)


def _get_rng_state(devices: list[int]) -> list:
    import torch

    return [torch.get_rng_state(), *(torch.cuda.get_rng_state(d) for d in devices)]


def _set_rng_state(state: list, devices: list[int]) -> None:
    import torch

    torch.set_rng_state(state[0])
    for d, s in zip(devices, state[1:], strict=True):
        torch.cuda.set_rng_state(s, d)


def _train_one_epoch(model, optimizer, loss_fn, x, y, batch_size, shuffler) -> bool:
    import torch

    model.train()
    order = torch.randperm(len(x), generator=shuffler).to(x.device)
    for start in range(0, len(x), batch_size):
        idx = order[start : start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        if not torch.isfinite(loss):
            return False
        loss.backward()
        optimizer.step()
    return True


def _evaluate(model, loss_fn, x, y, metric: str, batch_size: int) -> float:
    import torch

    model.eval()
    total_loss = 0.0
    correct = 0
    # Evaluation holds no graph, so larger batches are cheap.
    step = max(batch_size, 512)
    with torch.no_grad():
        for start in range(0, len(x), step):
            logits = model(x[start : start + step])
            target = y[start : start + step]
            total_loss += float(loss_fn(logits, target)) * len(target)
            correct += int((logits.argmax(1) == target).sum())
    if metric == "accuracy":
        return correct / len(x)
    mean = total_loss / len(x)
    return mean if math.isfinite(mean) else math.inf


def suggest_cifar_config(
    trial: optuna.trial.BaseTrial,
    *,
    batch_size: int = 128,
    metric: str = "accuracy",
    filters: tuple[int, int] = (8, 64),
) -> CNNConfig:
    """The 5-HP CIFAR-10 space: learning rate, weight decay, dropout, filters, momentum.

    The ranges are deliberately wide: small learning rates learn slowly but steadily, large
    ones with high momentum start fast and may plateau or diverge, and strong regularisation
    pays off only late, so early rankings often do not hold.

    Args:
        trial: The Optuna trial (or ``FixedTrial``) to draw from.
        batch_size: Fixed mini-batch size of the study.
        metric: Validation metric the run yields.
        filters: Range of the first block's width; small images on a CPU need a smaller one.
    """
    return CNNConfig(
        learning_rate=trial.suggest_float("learning_rate", 1e-3, 0.3, log=True),
        weight_decay=trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        dropout=trial.suggest_float("dropout", 0.0, 0.7),
        filters=trial.suggest_int("filters", filters[0], filters[1], log=True),
        momentum=trial.suggest_float("momentum", 0.0, 0.95),
        batch_size=batch_size,
        metric=metric,
    )


def suggest_tiny_imagenet_config(
    trial: optuna.trial.BaseTrial,
    *,
    filters: int = 32,
    batch_size: int = 128,
    metric: str = "loss",
) -> CNNConfig:
    """The 3-HP Tiny ImageNet space: learning rate, weight decay and dropout.

    Args:
        trial: The Optuna trial (or ``FixedTrial``) to draw from.
        filters: Fixed width of the first block.
        batch_size: Fixed mini-batch size of the study.
        metric: Validation metric the run yields.
    """
    return CNNConfig(
        learning_rate=trial.suggest_float("learning_rate", 1e-3, 0.2, log=True),
        weight_decay=trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        dropout=trial.suggest_float("dropout", 0.0, 0.7),
        filters=filters,
        momentum=0.9,
        batch_size=batch_size,
        metric=metric,
    )


def make_objective(
    data: ImageSplits,
    suggest: Callable[[optuna.trial.Trial], CNNConfig],
    *,
    epochs: int,
    seed: int,
    device: str,
) -> Callable[[optuna.trial.Trial], float]:
    """An Optuna objective that trains the CNN and reports the metric after every epoch.

    Each epoch's validation metric is reported at its 1-based epoch number, and the trial
    stops as soon as the study's pruner says so: this is what gives the pruner its learning
    curves. A completed trial returns the metric of its last epoch.

    Args:
        data: The study's training and validation images.
        suggest: Maps a trial to a configuration (one of the ``suggest_*`` functions).
        epochs: Maximum epochs per trial.
        seed: Base seed; trial ``n`` trains with ``seed + n``.
        device: Torch device.
    """
    import optuna

    def objective(trial: optuna.trial.Trial) -> float:
        config = suggest(trial)
        value = math.nan
        runs = train_epochs(config, data, epochs, seed=seed + trial.number, device=device)
        for epoch, value in enumerate(runs, start=1):
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch} with value {value:.5g}")
        return value

    return objective
