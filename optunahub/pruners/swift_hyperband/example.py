"""Swift-Hyperband on a small real model: a linear classifier of scikit-learn's 8x8 digits,
trained one epoch (one pass of ``partial_fit``) at a time. It runs in seconds."""

from __future__ import annotations

import os

import numpy as np
import optuna
import optunahub
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split


EPOCHS = 27

X, y = load_digits(return_X_y=True)
X_train, X_valid, y_train, y_valid = train_test_split(X / 16.0, y, test_size=0.3, random_state=0)
classes = np.unique(y)


def objective(trial: optuna.Trial) -> float:
    alpha = trial.suggest_float("alpha", 1e-6, 1e-1, log=True)
    eta0 = trial.suggest_float("eta0", 1e-5, 1e-1, log=True)
    clf = SGDClassifier(
        alpha=alpha, learning_rate="constant", eta0=eta0, random_state=trial.number
    )
    accuracy = 0.0
    # Report the number of epochs done, 1 after the first: the pruner's rungs count epochs.
    for epoch in range(1, EPOCHS + 1):
        clf.partial_fit(X_train, y_train, classes=classes)
        accuracy = float(clf.score(X_valid, y_valid))
        trial.report(accuracy, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return accuracy


# From the registry: optunahub.load_module(package="pruners/swift_hyperband"). This file loads
# the package from its own folder, two levels below the registry's root, so it runs offline.
module = optunahub.load_local_module(
    package="pruners/swift_hyperband",
    registry_root=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."),
)
pruner = module.SwiftHyperbandPruner(min_resource=1, max_resource=EPOCHS)
# Brackets are drawn from a hash of the study name and the trial number: a fixed name makes
# the run repeatable.
study = optuna.create_study(
    study_name="swift_hyperband_example",
    direction="maximize",
    sampler=optuna.samplers.TPESampler(seed=0),
    pruner=pruner,
)
study.optimize(objective, n_trials=60)

pruned = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,))
print(f"pruned {len(pruned)} of {len(study.trials)} trials")
print(f"best accuracy {study.best_value:.3f} with {study.best_params}")
# Every decision is recorded on its trial; the user attributes hold one line of text each:
# "swift:rung0" for a decision on a forecast (a prune, or a kept trial's first forecast in the
# rung), "swift:rung0:promotion" for a stop at a rung's end.
for trial in pruned:
    lines = [v for k, v in trial.user_attrs.items() if k.startswith("swift:rung")]
    print(f"trial {trial.number}: {'; '.join(lines)}")
