"""Swift-Hyperband on a plain PyTorch training loop.

A multi-layer perceptron learns scikit-learn's 8x8 digits (1,797 images that ship with
scikit-learn, so nothing is downloaded). Optuna tunes its width, depth, dropout and learning
rate; after every epoch the loop reports the validation accuracy, and SwiftHyperbandPruner
decides whether the trial goes on. SwiftSampler lets TPE learn from one bracket at a time.

    python examples/pytorch_simple.py --trials 60 --epochs 27

The study is kept in SQLite (``--storage``), so the pruner's records can be read afterwards:
``optuna-qsvr report --storage sqlite:///pytorch_simple.db --study-name pytorch_simple``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import optuna
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from optuna_qsvr import SwiftHyperbandPruner, SwiftSampler

BATCH_SIZE = 64


def load_data() -> tuple[TensorDataset, TensorDataset]:
    x, y = load_digits(return_X_y=True)
    x_train, x_valid, y_train, y_valid = train_test_split(
        x / 16.0, y, test_size=0.3, random_state=0, stratify=y
    )

    def tensors(x, y) -> TensorDataset:
        return TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y))

    return tensors(x_train, y_train), tensors(x_valid, y_valid)


def define_model(trial: optuna.Trial) -> nn.Module:
    layers: list[nn.Module] = []
    width = 64
    for i in range(trial.suggest_int("n_layers", 1, 2)):
        units = trial.suggest_int(f"n_units_l{i}", 8, 128, log=True)
        layers += [
            nn.Linear(width, units),
            nn.ReLU(),
            nn.Dropout(trial.suggest_float(f"dropout_l{i}", 0.0, 0.5)),
        ]
        width = units
    return nn.Sequential(*layers, nn.Linear(width, 10))


def make_objective(epochs: int, seed: int) -> Callable[[optuna.Trial], float]:
    train_set, valid_set = load_data()
    x_valid, y_valid = valid_set.tensors

    def objective(trial: optuna.Trial) -> float:
        torch.manual_seed(seed + trial.number)
        model = define_model(trial)
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        loader = DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True)
        accuracy = 0.0
        for epoch in range(epochs):
            model.train()
            for x, y in loader:
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                accuracy = (model(x_valid).argmax(dim=1) == y_valid).float().mean().item()
            # The step is the number of epochs done, 1 after the first: the pruner's rungs
            # count epochs, and max_resource=epochs is reached by the last report.
            trial.report(accuracy, epoch + 1)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return accuracy

    return objective


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60, help="trials to run (default 60)")
    parser.add_argument("--epochs", type=int, default=27, help="epochs of a full training")
    parser.add_argument("--storage", default="sqlite:///pytorch_simple.db")
    parser.add_argument("--study-name", default="pytorch_simple")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)  # a model this small trains fastest on one thread
    study = optuna.create_study(
        storage=args.storage,
        study_name=args.study_name,
        load_if_exists=True,
        direction="maximize",
        sampler=SwiftSampler(optuna.samplers.TPESampler(seed=args.seed)),
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
