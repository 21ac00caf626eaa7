"""Swift-Hyperband driven by a PyTorch Lightning pruning callback.

A multi-layer perceptron, as a LightningModule, learns scikit-learn's 8x8 digits (1,797
images that ship with scikit-learn, so nothing is downloaded). Optuna tunes its width, depth,
dropout and learning rate. ``optuna_qsvr.integration.PyTorchLightningPruningCallback``
(optuna-integration's callback, with the epochs done as the step) reports the validation
accuracy after every epoch and asks SwiftHyperbandPruner whether the trial goes on.

    python examples/pytorch_lightning_simple.py --trials 40 --epochs 28

Needs ``pip install "optuna-qsvr[lightning]"`` (lightning and optuna-integration). The study is
kept in SQLite (``--storage``), so the pruner's records can be read afterwards:
``optuna-qsvr report --storage sqlite:///pytorch_lightning_simple.db
--study-name pytorch_lightning_simple``.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from collections.abc import Callable

import lightning.pytorch as pl
import optuna
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from optuna_qsvr import SwiftHyperbandPruner, SwiftSampler
from optuna_qsvr.integration import PyTorchLightningPruningCallback

BATCH_SIZE = 64


def load_data() -> tuple[TensorDataset, TensorDataset]:
    x, y = load_digits(return_X_y=True)
    x_train, x_valid, y_train, y_valid = train_test_split(
        x / 16.0, y, test_size=0.3, random_state=0, stratify=y
    )

    def tensors(x, y) -> TensorDataset:
        return TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y))

    return tensors(x_train, y_train), tensors(x_valid, y_valid)


class DigitsNet(pl.LightningModule):
    def __init__(self, trial: optuna.Trial) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 64
        for i in range(trial.suggest_int("n_layers", 1, 2)):
            units = trial.suggest_int(f"n_units_l{i}", 8, 128, log=True)
            dropout = trial.suggest_float(f"dropout_l{i}", 0.0, 0.5)
            layers += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        self.model = nn.Sequential(*layers, nn.Linear(width, 10))
        self.lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self.model(x), y)

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        accuracy = (self.model(x).argmax(dim=1) == y).float().mean()
        self.log("val_acc", accuracy, batch_size=len(y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def make_objective(epochs: int, seed: int) -> Callable[[optuna.Trial], float]:
    train_set, valid_set = load_data()

    def objective(trial: optuna.Trial) -> float:
        torch.manual_seed(seed + trial.number)
        model = DigitsNet(trial)
        trainer = pl.Trainer(
            max_epochs=epochs,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[PyTorchLightningPruningCallback(trial, monitor="val_acc")],
        )
        trainer.fit(
            model,
            train_dataloaders=DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True),
            # The whole validation set in one batch: the logged accuracy is exact.
            val_dataloaders=DataLoader(valid_set, batch_size=len(valid_set)),
        )
        return trainer.callback_metrics["val_acc"].item()

    return objective


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40, help="trials to run (default 40)")
    parser.add_argument("--epochs", type=int, default=28, help="Lightning's max_epochs")
    parser.add_argument("--storage", default="sqlite:///pytorch_lightning_simple.db")
    parser.add_argument("--study-name", default="pytorch_lightning_simple")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)  # a model this small trains fastest on one thread
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
    study = optuna.create_study(
        storage=args.storage,
        study_name=args.study_name,
        load_if_exists=True,
        direction="maximize",
        sampler=SwiftSampler(optuna.samplers.TPESampler(seed=args.seed)),
        # The callback reports the epochs done: the last of max_epochs epochs is step max_epochs.
        pruner=SwiftHyperbandPruner(min_resource=1, max_resource=args.epochs),
    )
    study.optimize(make_objective(args.epochs, args.seed), n_trials=args.trials)

    pruned = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,))
    epochs = sum(t.last_step or 0 for t in study.trials)
    print(f"{len(study.trials)} trials, {len(pruned)} pruned, {epochs} epochs trained")
    print(f"best accuracy {study.best_value:.3f}: {study.best_params}")
    print(f"optuna-qsvr report --storage {args.storage} --study-name {args.study_name}")


if __name__ == "__main__":
    main()
