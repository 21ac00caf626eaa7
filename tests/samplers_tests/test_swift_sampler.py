from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

from optuna_qsvr import SwiftHyperbandPruner, SwiftSampler, _records


class RecordingTPE(optuna.samplers.TPESampler):
    """TPE that records which trials each of its two study read paths returned."""

    def __init__(self) -> None:
        super().__init__(seed=0, n_startup_trials=5)
        self.seen: list[tuple[int, set[int], set[int]]] = []

    def _record(self, study, trial) -> None:
        public = {t.number for t in study.get_trials(deepcopy=False)}
        private = {t.number for t in study._get_trials(deepcopy=False, use_cache=False)}
        self.seen.append((trial.number, public, private))

    def sample_relative(self, study, trial, search_space):
        self._record(study, trial)
        return super().sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        self._record(study, trial)
        return super().sample_independent(study, trial, param_name, param_distribution)


def _objective(trial: optuna.Trial) -> float:
    rate = trial.suggest_float("rate", 0.02, 0.5, log=True)
    for s in range(1, 28):
        value = math.exp(-rate * s)
        trial.report(value, s)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return value


def _bracket_of(study: optuna.Study, number: int) -> int:
    pruner = study.pruner
    if isinstance(pruner, SwiftHyperbandPruner):
        # The bracket the trial ran in, recorded on it (it depends on the study's rank
        # persistence when the trial started).
        return _records.bracket_of_trial(study.trials[number].user_attrs)
    stub = optuna.trial.create_trial(value=0.0)
    stub.number = number
    return pruner._get_bracket_id(study, stub)


@pytest.mark.parametrize(
    "pruner",
    [
        lambda: SwiftHyperbandPruner(max_resource=27, min_train_curves=5),
        lambda: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=27),
    ],
)
def test_base_sampler_sees_only_its_bracket_through_both_paths(pruner, storage_factory) -> None:
    base = RecordingTPE()
    study = optuna.create_study(
        storage=storage_factory(), sampler=SwiftSampler(base), pruner=pruner()
    )
    study.optimize(_objective, n_trials=40)
    checked = 0
    for number, public, private in base.seen:
        if not (public - {number}):
            continue  # Optuna's pruner has no brackets before its first prune call.
        bracket = _bracket_of(study, number)
        assert {_bracket_of(study, n) for n in public} == {bracket}
        assert {_bracket_of(study, n) for n in private} == {bracket}
        checked += 1
    assert checked > 20


def test_plain_tpe_sees_all_brackets_under_optuna_hyperband() -> None:
    """The Optuna pitfall SwiftSampler fixes: TPE's private read path is not filtered."""
    base = RecordingTPE()
    study = optuna.create_study(
        sampler=base, pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=27)
    )
    study.optimize(_objective, n_trials=40)
    leaks = [
        number
        for number, _, private in base.seen
        if len({_bracket_of(study, n) for n in private if n != number}) > 1
    ]
    assert leaks, "Optuna no longer leaks other brackets through _get_trials"


def test_forecast_aware_view_shows_pruned_trials_with_their_forecast() -> None:
    pruner = SwiftHyperbandPruner(
        mode="paper", max_resource=27, min_train_curves=5, forecast_final=True
    )
    sampler = SwiftSampler(
        optuna.samplers.RandomSampler(seed=0), bracket_aware=False, forecast_aware=True
    )
    study = optuna.create_study(sampler=sampler, pruner=pruner)
    study.optimize(_objective, n_trials=60)
    forecast_pruned = {
        t.number: v["forecast"]
        for t in study.trials
        for v in _records.decisions(t.system_attrs).values()
        if v["decision"] == "pruned"
    }
    assert forecast_pruned
    view = sampler._view(study, study.trials[-1])
    complete = {t.number: t.value for t in view._get_trials(states=(TrialState.COMPLETE,))}
    for number, forecast in forecast_pruned.items():
        assert complete[number] == forecast
    # Trials pruned by successive halving have no forecast and stay pruned.
    asha_pruned = [
        t.number
        for t in study.trials
        if t.state == TrialState.PRUNED and t.number not in forecast_pruned
    ]
    assert all(n not in complete for n in asha_pruned)


def test_transparent_with_other_pruners() -> None:
    base = optuna.samplers.RandomSampler(seed=3)
    sampler = SwiftSampler(base)
    study = optuna.create_study(sampler=sampler, pruner=optuna.pruners.MedianPruner())
    assert sampler._view(study, study.ask().study._storage.get_trial(0)) is study
    plain = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    wrapped = optuna.create_study(sampler=SwiftSampler(optuna.samplers.RandomSampler(seed=3)))
    plain.optimize(_objective, n_trials=5)
    wrapped.optimize(_objective, n_trials=5)
    assert [t.params for t in plain.trials] == [t.params for t in wrapped.trials]


@pytest.mark.parametrize(
    "pruner",
    [
        lambda: SwiftHyperbandPruner(max_resource=27, min_train_curves=5),
        lambda: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=27),
    ],
)
@pytest.mark.parametrize("forecast_aware", [False, True])
def test_a_base_sampler_that_stops_the_study_stops_it(pruner, forecast_aware) -> None:
    # GridSampler ends the study once its grid is done (study.stop() in after_trial): through
    # the wrapper too, or optimize() without n_trials would run the grid for ever.
    grid = optuna.samplers.GridSampler({"rate": [0.02, 0.05, 0.1, 0.2, 0.5]}, seed=0)
    sampler = SwiftSampler(grid, forecast_aware=forecast_aware)
    study = optuna.create_study(sampler=sampler, pruner=pruner())
    study.optimize(_objective, n_trials=None, timeout=60)
    assert len(study.trials) == 5
    assert sorted(t.params["rate"] for t in study.trials) == [0.02, 0.05, 0.1, 0.2, 0.5]
