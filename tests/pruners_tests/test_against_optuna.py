"""Differential tests: with no forecast, Swift-Hyperband is Optuna's HyperbandPruner.

Optuna's pruner is the oracle. A Swift pruner whose predictor can never be fitted (more
training curves required than the study has) sends every forecast decision to full training,
so only its successive halving acts; it must then stop exactly the trials Optuna's stops, at
the same steps, in sequential and interleaved (asynchronous) runs.
"""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from optuna_qsvr import SwiftHyperbandPruner, _records
from optuna_qsvr.pruners import Schedule

# (min_resource, max_resource, eta): powers of eta and not (81 = 3^4 with min 1 is a power;
# 50, 30 and 100 are not), and eta 2 and 4.
CASES = [(1, 27, 3), (1, 50, 3), (1, 81, 3), (2, 30, 2), (1, 100, 4), (3, 40, 3)]


def _swift(min_resource: int, max_resource: int, eta: int, mode: str) -> SwiftHyperbandPruner:
    # Hyperband's brackets in both modes (the forecast mode's default keeps only two), and
    # its successive halving within each bracket (the forecast mode's default ranks a trial
    # among the whole study's values at r_i, and keeps one at least at the median at the last
    # cut while no model exists).
    weights = (
        {"bracket_weights": (1.0,), "promote_among": "bracket", "rescue_fallback": "none"}
        if mode == "forecast"
        else {}
    )
    return SwiftHyperbandPruner(
        min_resource=min_resource,
        max_resource=max_resource,
        reduction_factor=eta,
        mode=mode,
        min_train_curves=10**6,  # never fitted: no forecast, no rescue, ever
        max_train_curves=10**6,
        **weights,
    )


def _optuna(min_resource: int, max_resource: int, eta: int) -> optuna.pruners.HyperbandPruner:
    return optuna.pruners.HyperbandPruner(
        min_resource=min_resource, max_resource=max_resource, reduction_factor=eta
    )


def _curves(n: int, steps: int, seed: int) -> np.ndarray:
    """Crossing curves (late bloomers included), so a wrong rank or slice changes decisions."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, steps + 1)
    start = rng.uniform(0.5, 1.0, (n, 1))
    rate = rng.uniform(0.01, 0.5, (n, 1))
    floor = rng.uniform(0.0, 0.4, (n, 1))
    noise = rng.normal(0.0, 0.01, (n, steps))
    return floor + (start - floor) * np.exp(-rate * t) + noise


def _run(pruner, curves: np.ndarray, n_parallel: int, direction: str, keep_study: bool = False):
    """Trials report one epoch at a time, ``n_parallel`` at once in round-robin order; the
    pruner is asked after every epoch but the last."""
    study = optuna.create_study(study_name="differential", direction=direction, pruner=pruner)
    sign = 1.0 if direction == "minimize" else -1.0
    queue = list(range(len(curves)))
    running: list[list] = []
    out: dict[int, tuple] = {}
    while queue or running:
        while queue and len(running) < n_parallel:
            running.append([study.ask(), queue.pop(0), 0])
        for item in list(running):
            trial, row, done = item
            step = done + 1
            trial.report(float(sign * curves[row, done]), step)
            item[2] = step
            # At max_resource the training is over: Optuna's pruner would still stop a trial
            # whose last rung is max_resource, which saves nothing; neither is asked there.
            if step == curves.shape[1]:
                study.tell(trial, float(sign * curves[row, -1]))
            elif trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
            else:
                continue
            running.remove(item)
            out[trial.number] = (trial.number, study.trials[trial.number].state, step)
    decided = [out[k] for k in sorted(out)]
    return (decided, study) if keep_study else decided


@pytest.mark.parametrize(("min_resource", "max_resource", "eta"), CASES)
@pytest.mark.parametrize("n_parallel", [1, 5])
@pytest.mark.parametrize("mode", ["forecast", "paper"])
def test_no_forecast_decides_like_optuna_hyperband(
    min_resource, max_resource, eta, n_parallel, mode
):
    curves = _curves(90, max_resource, seed=max_resource + eta)
    swift = _run(_swift(min_resource, max_resource, eta, mode), curves, n_parallel, "minimize")
    reference = _run(_optuna(min_resource, max_resource, eta), curves, n_parallel, "minimize")
    assert swift == reference
    assert sum(state == TrialState.PRUNED for _, state, _ in swift) > 30  # pruning happened


@pytest.mark.parametrize("mode", ["forecast", "paper"])
def test_maximize_decides_like_optuna_hyperband(mode) -> None:
    curves = _curves(60, 27, seed=7)
    swift = _run(_swift(1, 27, 3, mode), curves, 3, "maximize")
    assert swift == _run(_optuna(1, 27, 3), curves, 3, "maximize")


@pytest.mark.parametrize("n_parallel", [1, 5])
def test_trials_that_run_as_hyperband_promote_within_their_bracket(n_parallel) -> None:
    # Crossing curves never rank alike at every rung end (persistence 1): every trial runs
    # as Hyperband, whose successive halving ranks among the bracket's rung-mates whatever
    # promote_among says.
    curves = _curves(90, 50, seed=11)
    pruner = SwiftHyperbandPruner(
        max_resource=50,
        min_train_curves=10**6,
        max_train_curves=10**6,
        min_rank_persistence=1.0,
        promote_among="study",
    )
    swift, study = _run(pruner, curves, n_parallel, "minimize", keep_study=True)
    regimes = {_records.regime_of_trial(t.system_attrs)["regime"] for t in study.trials}
    assert regimes == {"hyperband"}
    assert swift == _run(_optuna(1, 50, 3), curves, n_parallel, "minimize")


@pytest.mark.parametrize(("min_resource", "max_resource", "eta"), [(1, 27, 3), (1, 50, 3)])
@pytest.mark.parametrize("n_parallel", [1, 5])
@pytest.mark.parametrize("among", ["study", "bracket"])
def test_one_bracket_promotes_like_optuna_successive_halving(
    min_resource, max_resource, eta, n_parallel, among
) -> None:
    # With every trial in the most aggressive bracket and no forecast, the whole study is the
    # bracket: both ways of ranking at r_i are Optuna's SuccessiveHalvingPruner (without the
    # median at the last cut, which keeps more: tested in test_forecast_mode.py).
    curves = _curves(90, max_resource, seed=max_resource + 1)
    pruner = SwiftHyperbandPruner(
        min_resource=min_resource,
        max_resource=max_resource,
        reduction_factor=eta,
        min_train_curves=10**6,
        max_train_curves=10**6,
        bracket_weights=(1.0, 0.0),
        min_rank_persistence=False,
        promote_among=among,
        rescue_fallback="none",
    )
    reference = optuna.pruners.SuccessiveHalvingPruner(
        min_resource=min_resource, reduction_factor=eta
    )
    swift = _run(pruner, curves, n_parallel, "minimize")
    assert swift == _run(reference, curves, n_parallel, "minimize")
    assert sum(state == TrialState.PRUNED for _, state, _ in swift) > 50


@pytest.mark.parametrize(("min_resource", "max_resource", "eta"), CASES)
def test_bracket_assignment_is_optunas(min_resource, max_resource, eta) -> None:
    pruner = _optuna(min_resource, max_resource, eta)
    study = optuna.create_study(pruner=pruner)
    pruner._try_initialization(study)
    schedule = Schedule(min_resource, max_resource, eta, 0.5)
    assert schedule.s_max + 1 == pruner._n_brackets
    # Optuna's bracket id 0 is the most aggressive bracket: Swift's s = s_max.
    assert list(schedule.bracket_sizes[::-1]) == pruner._trial_allocation_budgets

    class _Trial:
        number = 0

    trial = _Trial()
    for name in ("a", "study", "cifar10-run-7"):
        study.study_name = name  # _get_bracket_id hashes the name and the number
        for number in range(2000):
            trial.number = number
            expected = schedule.s_max - pruner._get_bracket_id(study, trial)
            assert schedule.bracket_of(name, number) == expected


def test_rungs_below_max_are_optunas_promotion_steps() -> None:
    # Optuna's bracket b promotes at min * eta^(b + k) below max_resource.
    schedule = Schedule(1, 50, 3, 0.5)
    for s in range(schedule.s_max + 1):
        b = schedule.s_max - s
        budgets = [r.budget for r in schedule.rungs(s) if not r.is_last]
        expected = [3 ** (b + k) for k in range(10) if 3 ** (b + k) < 50]
        assert budgets == expected
        assert schedule.rungs(s)[-1].budget == 50
    # Hyperband's n = ceil((s_max + 1) eta^s / (s + 1)) for s = 0..3.
    assert schedule.bracket_sizes == (4, 6, 12, 27)
