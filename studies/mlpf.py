"""The paper's HEP case: MLPF-style particle-flow reconstruction on Delphes events.

A network in the spirit of MLPF (Pata et al. 2021) reads the detector elements of an event
(tracks and calorimeter towers), mixes information between elements that are close in a learned
space (k-nearest-neighbour message passing, as MLPF's GNN does with its learned graph), and
predicts for every element the class of the particle it stands for and that particle's
momentum. Seven hyperparameters, 100 epochs by default, validation loss minimised. Run
``python -m studies.mlpf --help``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from studies import _delphes
from studies._common import main_for, resolve_device

if TYPE_CHECKING:
    import optuna
    import torch

NAME = "mlpf"
DEFAULT_EPOCHS = 100
N_CLASSES = len(_delphes.PARTICLE_TYPES)
N_INPUTS = 13
N_TARGETS = 5  # log(1 + pt), eta, sin phi, cos phi, log(1 + energy)
BATCH_SIZE = 32
VALID_BATCH_SIZE = 256  # no gradients kept, so larger batches only save time
GRAD_CLIP = 5.0
# A diverged run (non-finite or exploding loss) is reported as this loss from then on, so
# curves stay finite and comparable; an untrained network scores about 2.5.
DIVERGED_LOSS = 10.0

# Search space shared by the study and the learning-curve recording.
LEARNING_RATE = (1e-4, 3e-2)
WEIGHT_DECAY = (1e-6, 1e-1)
HIDDEN = (8, 64)
LAYERS = (1, 3)
DROPOUT = (0.0, 0.5)
REGRESSION_WEIGHT = (0.1, 10.0)
NEIGHBOURS = (2, 16)


@dataclass(frozen=True)
class MLPFConfig:
    """The seven tuned hyperparameters.

    Args:
        learning_rate: AdamW step size.
        weight_decay: AdamW decoupled weight decay.
        hidden: width of every hidden layer.
        layers: number of message-passing layers.
        dropout: dropout after the encoder and every message-passing layer.
        regression_weight: weight of the momentum loss against the classification loss in
            training (the validation loss always weighs them 1:1, so configurations compare).
        neighbours: elements each element gathers messages from, in the learned space.
    """

    learning_rate: float
    weight_decay: float
    hidden: int
    layers: int
    dropout: float
    regression_weight: float
    neighbours: int


def suggest_config(trial: optuna.trial.Trial) -> MLPFConfig:
    """Draw the seven hyperparameters from the study's search space."""
    return MLPFConfig(
        learning_rate=trial.suggest_float("learning_rate", *LEARNING_RATE, log=True),
        weight_decay=trial.suggest_float("weight_decay", *WEIGHT_DECAY, log=True),
        hidden=trial.suggest_int("hidden", *HIDDEN, log=True),
        layers=trial.suggest_int("layers", *LAYERS),
        dropout=trial.suggest_float("dropout", *DROPOUT),
        regression_weight=trial.suggest_float("regression_weight", *REGRESSION_WEIGHT, log=True),
        neighbours=trial.suggest_int("neighbours", *NEIGHBOURS),
    )


@dataclass
class MLPFData:
    """Events turned into per-event tensors, split into training and validation.

    Args:
        train: per training event, ``(inputs, classes, targets)``: ``(n, 13)`` float inputs,
            ``(n,)`` class ids and ``(n, 5)`` regression targets.
        valid: the same for validation events.
        class_weights: ``(6,)`` inverse-frequency weights of the classes in ``train``.
    """

    train: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    valid: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    class_weights: torch.Tensor


def element_inputs(x: np.ndarray) -> np.ndarray:
    """Network inputs of one event's elements: type one-hot, then scaled features.

    Momenta and energies span orders of magnitude, so they enter as ``log(1 + value)``; the
    tower columns 6 and 7 (electromagnetic and hadronic energy) too.
    """
    is_track = (x[:, 0] == _delphes.TRACK).astype(np.float32)
    is_tower = (x[:, 0] == _delphes.TOWER).astype(np.float32)
    features = x[:, 1:].copy()
    for col in (0, 4):  # pt or et, p or energy
        features[:, col] = np.log1p(np.clip(features[:, col], 0.0, None))
    tower = is_tower.astype(bool)
    features[tower, 5:7] = np.log1p(np.clip(features[tower, 5:7], 0.0, None))
    return np.column_stack([is_track, is_tower, features]).astype(np.float32)


def element_targets(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class ids and regression targets ``log(1 + pt), eta, sin, cos, log(1 + E)``."""
    classes = np.clip(y[:, 0].round(), 0, N_CLASSES - 1).astype(np.int64)
    targets = np.column_stack(
        [
            np.log1p(np.clip(y[:, 2], 0.0, None)),
            y[:, 3],
            y[:, 4],
            y[:, 5],
            np.log1p(np.clip(y[:, 6], 0.0, None)),
        ]
    ).astype(np.float32)
    return classes, targets


def prepare_data(events: _delphes.Events, *, val_fraction: float = 0.2) -> MLPFData:
    """Turn events into tensors; the last ``val_fraction`` of events is the validation split.

    Events without any element carry nothing to learn and are dropped. Targets are the
    generator-level particles (``ygen``), as MLPF trains on.

    Args:
        events: Loaded or simulated events.
        val_fraction: Share of events held out for validation, in ``(0, 1)``.
    """
    import torch

    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    tensors = []
    for x, y in zip(events.X, events.ygen, strict=True):
        if len(x) == 0:
            continue
        classes, targets = element_targets(y)
        tensors.append(
            (
                torch.from_numpy(element_inputs(x)),
                torch.from_numpy(classes),
                torch.from_numpy(targets),
            )
        )
    n_valid = max(1, round(len(tensors) * val_fraction))
    if len(tensors) - n_valid < 1:
        raise ValueError(f"need at least 2 non-empty events, got {len(tensors)}")
    train, valid = tensors[:-n_valid], tensors[-n_valid:]
    counts = torch.bincount(torch.cat([c for _, c, _ in train]), minlength=N_CLASSES).double()
    # Rare classes (electrons, muons) would be ignored otherwise; absent ones get the largest
    # weight seen rather than infinity.
    freq = counts / counts.sum()
    weights = torch.where(freq > 0, 1.0 / (N_CLASSES * freq.clamp_min(1e-12)), 0.0)
    weights = torch.where(freq > 0, weights, weights.max()).float()
    return MLPFData(train=train, valid=valid, class_weights=weights)


def load_data(
    data_dir: str | None,
    *,
    n_events: int = 2000,
    mean_particles: float = 30.0,
    max_files: int | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> MLPFData:
    """Delphes files from ``data_dir``, or ``n_events`` simulated events when it is None."""
    if data_dir is not None:
        events = _delphes.load_dir(data_dir, max_files=max_files)
    else:
        events = _delphes.simulate_events(n_events, seed=seed, mean_particles=mean_particles)
    return prepare_data(events, val_fraction=val_fraction)


def _pad(
    batch: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], device: str
) -> tuple[torch.Tensor, ...]:
    from torch.nn.utils.rnn import pad_sequence

    inputs = pad_sequence([b[0] for b in batch], batch_first=True)
    classes = pad_sequence([b[1] for b in batch], batch_first=True)
    targets = pad_sequence([b[2] for b in batch], batch_first=True)
    mask = pad_sequence([b[1].new_ones(len(b[1]), dtype=bool) for b in batch], batch_first=True)
    return tuple(t.to(device) for t in (inputs, classes, targets, mask))


def _build_model(config: MLPFConfig) -> torch.nn.Module:
    import torch
    from torch import nn

    hidden = config.hidden

    class KNNMessagePassing(nn.Module):
        """Each element averages its k nearest neighbours' messages, nearest weighing most.

        The neighbourhood is found in a small space the layer learns (as in GravNet and
        MLPF's learned graph), so the network decides which tracks and towers belong together.
        """

        def __init__(self) -> None:
            super().__init__()
            self.coords = nn.Linear(hidden, 4)
            self.message = nn.Linear(hidden, hidden)
            self.update = nn.Sequential(
                nn.Linear(2 * hidden, hidden), nn.ELU(), nn.Dropout(config.dropout)
            )
            self.norm = nn.LayerNorm(hidden)

        def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            n_batch, n_elem, _ = h.shape
            coords = self.coords(h)
            dist2 = (coords[:, :, None, :] - coords[:, None, :, :]).pow(2).sum(-1)
            dist2 = dist2.masked_fill(~mask[:, None, :], math.inf)
            k = min(config.neighbours, n_elem)
            near, index = dist2.topk(k, dim=-1, largest=False)
            weight = torch.exp(-near)  # padding sits at infinite distance: weight 0
            messages = self.message(h)
            rows = torch.arange(n_batch, device=h.device)[:, None, None]
            gathered = messages[rows, index]
            aggregated = (weight[..., None] * gathered).sum(2) / (
                weight.sum(-1, keepdim=True) + 1e-6
            )
            return self.norm(h + self.update(torch.cat([h, aggregated], dim=-1)))

    class MLPFNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(
                nn.Linear(N_INPUTS, hidden),
                nn.ELU(),
                nn.Linear(hidden, hidden),
                nn.ELU(),
                nn.Dropout(config.dropout),
            )
            self.mixers = nn.ModuleList(KNNMessagePassing() for _ in range(config.layers))
            self.classify = nn.Sequential(
                nn.Linear(hidden, hidden), nn.ELU(), nn.Linear(hidden, N_CLASSES)
            )
            # Regression also sees the raw inputs and corrects the element's own measurement.
            self.regress = nn.Sequential(
                nn.Linear(hidden + N_INPUTS, hidden), nn.ELU(), nn.Linear(hidden, N_TARGETS)
            )

        def forward(
            self, inputs: torch.Tensor, mask: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.encoder(inputs)
            for mixer in self.mixers:
                h = mixer(h, mask)
            # Element's own log pt, eta, sin phi, cos phi, log energy: columns 2, 3, 4, 5, 6.
            baseline = inputs[..., 2:7]
            return self.classify(h), baseline + self.regress(torch.cat([h, inputs], dim=-1))

    return MLPFNet()


def _losses(
    logits: torch.Tensor,
    predicted: torch.Tensor,
    classes: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    class_weights: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    import torch.nn.functional as F

    classification = F.cross_entropy(logits[mask], classes[mask], weight=class_weights)
    # Momentum is only defined where there is a particle to reconstruct.
    particle = mask & (classes > 0)
    if not particle.any():
        return classification, logits.new_zeros(())
    regression = F.huber_loss(predicted[particle], targets[particle], delta=1.0)
    return classification, regression


def train_epochs(
    config: MLPFConfig,
    data: MLPFData,
    epochs: int,
    *,
    seed: int = 0,
    device: str = "cpu",
) -> Iterator[float]:
    """Train the network and yield the validation loss after every epoch.

    Training minimises class-weighted cross-entropy plus ``regression_weight`` times the Huber
    loss of the momentum; the yielded validation loss weighs the two 1:1. If the loss turns
    non-finite or exceeds :data:`DIVERGED_LOSS`, training stops and that cap is yielded for the
    remaining epochs. The same seed gives the same curve (on one device and thread count).

    Args:
        config: the hyperparameters.
        data: tensors from :func:`prepare_data`.
        epochs: passes over the training events.
        seed: seeds initialisation, event order and dropout.
        device: torch device.
    """
    import torch

    torch.manual_seed(seed)
    model = _build_model(config).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    weights = data.class_weights.to(device)
    valid = [
        _pad(data.valid[i : i + VALID_BATCH_SIZE], device)
        for i in range(0, len(data.valid), VALID_BATCH_SIZE)
    ]
    n_valid_elements = sum(int(b[3].sum()) for b in valid)
    shuffle = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(data.train), generator=shuffle).tolist()
        for start in range(0, len(order), BATCH_SIZE):
            inputs, classes, targets, mask = _pad(
                [data.train[i] for i in order[start : start + BATCH_SIZE]], device
            )
            logits, predicted = model(inputs, mask)
            cls, reg = _losses(logits, predicted, classes, targets, mask, weights)
            loss = cls + config.regression_weight * reg
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            optimizer.step()
        model.eval()
        total = 0.0
        with torch.no_grad():
            for inputs, classes, targets, mask in valid:
                logits, predicted = model(inputs, mask)
                cls, reg = _losses(logits, predicted, classes, targets, mask, weights)
                # Weigh batches by their elements so the loss does not depend on batching.
                total += float(cls + reg) * int(mask.sum()) / n_valid_elements
        if not math.isfinite(total) or total > DIVERGED_LOSS:
            yield from [DIVERGED_LOSS] * (epochs - epoch)
            return
        yield total


def make_objective(args: argparse.Namespace) -> Callable[[optuna.trial.Trial], float]:
    """The study's objective: report validation loss each epoch, prune when told."""
    import optuna

    data = load_data(
        args.data_dir,
        n_events=args.n_events,
        mean_particles=args.mean_particles,
        max_files=args.max_files,
        val_fraction=args.val_fraction,
        seed=args.seed,
    )
    device = resolve_device(args.device)

    def objective(trial: optuna.trial.Trial) -> float:
        config = suggest_config(trial)
        loss = math.inf
        curve = train_epochs(
            config, data, args.epochs, seed=args.seed + trial.number, device=device
        )
        for epoch, loss in enumerate(curve, start=1):
            trial.report(loss, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return loss

    return objective


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--n-events",
        type=int,
        default=2000,
        help="without --data-dir: simulated events (training and validation together)",
    )
    parser.add_argument(
        "--mean-particles",
        type=float,
        default=30.0,
        help="without --data-dir: mean particles per simulated event",
    )
    parser.add_argument(
        "--max-files", type=int, default=None, help="with --data-dir: read at most this many"
    )
    parser.add_argument(
        "--val-fraction", type=float, default=0.2, help="share of events used for validation"
    )


def main(argv: Sequence[str] | None = None) -> optuna.study.Study:
    """Run the study from the command line."""
    return main_for(
        argv,
        name=NAME,
        description=(
            "MLPF-style particle-flow reconstruction (Pata et al. 2021): a k-nearest-neighbour "
            "message-passing network classifies every track and tower of a Delphes event and "
            "regresses its particle's momentum; 7 hyperparameters, validation loss "
            "(class-weighted cross-entropy + Huber) minimised. --data-dir is a folder holding "
            "the MLPF Delphes files (*.pkl.bz2 as on Zenodo, or *.npz); without it, events "
            "come from the built-in simulation in studies._delphes (nothing is downloaded)."
        ),
        default_epochs=DEFAULT_EPOCHS,
        direction="minimize",
        add_arguments=_add_arguments,
        make_objective=make_objective,
    )


if __name__ == "__main__":
    main()
