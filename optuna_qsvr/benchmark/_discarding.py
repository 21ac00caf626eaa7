"""Early discarding: a baseline that trains every trial a few epochs and keeps only records."""

from __future__ import annotations

import math

import optuna

from optuna_qsvr._validation import check_int


class EarlyDiscardingPruner(optuna.pruners.BasePruner):
    """Train every trial ``epochs`` epochs; continue to the end only if it sets a new best there.

    The "i-Epoch" early-discarding baseline of Egele et al. (2024, "Is one epoch all you
    need for multi-fidelity hyperparameter optimization?"), in the form the benchmark's
    ``i-epoch-1`` and ``i-epoch-3`` methods use: a trial is decided once, at its first
    reported step at or after ``epochs`` (its *decision step*). Its value there is compared
    with the value every other trial of the study reported at its own decision step so far
    (running, pruned or complete); the trial continues to the end only if it is strictly
    better than all of them, and is pruned otherwise. The first trial to get there always
    continues; a tie with the best does not. A non-finite value is pruned. Before the decision
    step nothing is pruned, and after it a continuing trial is never asked again.

    Args:
        epochs:
            ``i``: the epoch of the decision.

    Example:

        .. code-block:: python

            import optuna
            from optuna_qsvr.benchmark import EarlyDiscardingPruner


            def objective(trial):
                rate = trial.suggest_float("rate", 0.01, 1.0, log=True)
                for epoch in range(1, 10):
                    trial.report(1.0 / (1.0 + rate * epoch), epoch)
                    if trial.should_prune():
                        raise optuna.TrialPruned()
                return 1.0 / (1.0 + rate * 9)


            study = optuna.create_study(pruner=EarlyDiscardingPruner(1))
            study.optimize(objective, n_trials=20)
    """

    def __init__(self, epochs: int) -> None:
        self._epochs = check_int("epochs", epochs, 1)

    @property
    def epochs(self) -> int:
        return self._epochs

    def prune(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or self._decision_step(trial) != step:
            return False
        value = trial.intermediate_values[step]
        if not math.isfinite(value):
            return True
        sign = 1.0 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1.0
        for other in study.get_trials(deepcopy=False):
            if other.number == trial.number:
                continue
            at = self._decision_step(other)
            if at is None:
                continue
            seen = other.intermediate_values[at]
            if math.isfinite(seen) and sign * seen <= sign * value:
                return True
        return False

    def _decision_step(self, trial: optuna.trial.FrozenTrial) -> int | None:
        reached = [s for s in trial.intermediate_values if s >= self._epochs]
        return min(reached) if reached else None
