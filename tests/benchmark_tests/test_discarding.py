from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from optuna_qsvr.benchmark import CurveTable, EarlyDiscardingPruner, replay_async, run_one

optuna.logging.set_verbosity(optuna.logging.WARNING)

MAX_STEP = 5


def _table(early: dict[str, tuple[float, float, float]]) -> CurveTable:
    """Curves given by their values at steps 1 and 3 and their final value (minimised)."""
    rows = []
    for config, (first, third, final) in early.items():
        values = [first, (first + third) / 2, third, (third + final) / 2, final]
        rows += [{"config": config, "step": s, "value": v} for s, v in enumerate(values, 1)]
    return CurveTable.from_rows(rows)


# In start order: a sets the first record at epoch 1, b is worse, c better, d ties c, e better.
EARLY = {
    "a": (0.5, 0.50, 0.30),
    "b": (0.7, 0.20, 0.10),
    "c": (0.4, 0.45, 0.35),
    "d": (0.4, 0.10, 0.05),
    "e": (0.3, 0.60, 0.50),
}


@pytest.mark.parametrize(
    ("epochs", "continuing"),
    [
        # At epoch 1: a first; b 0.7 >= 0.5; c 0.4 < 0.5; d ties 0.4; e 0.3 < 0.4.
        (1, {"a", "c", "e"}),
        # At epoch 3: a 0.5 first; b 0.2; c 0.45 >= 0.2; d 0.1 < 0.2; e 0.6.
        (3, {"a", "b", "d"}),
    ],
)
def test_early_discarding_prunes_exactly_the_non_records(
    epochs: int, continuing: set[str]
) -> None:
    table = _table(EARLY)
    study = optuna.create_study(pruner=EarlyDiscardingPruner(epochs))
    result = replay_async(study, table, list(EARLY), n_workers=1)
    kept = {t.config for t in result.trials if t.state == TrialState.COMPLETE}
    assert kept == continuing
    for t in result.trials:
        assert t.epochs == (MAX_STEP if t.config in continuing else epochs)
    assert result.epochs == len(continuing) * MAX_STEP + (len(EARLY) - len(continuing)) * epochs


def test_early_discarding_maximize_flips_the_comparison() -> None:
    table = _table(EARLY)
    study = optuna.create_study(direction="maximize", pruner=EarlyDiscardingPruner(1))
    result = replay_async(study, table, list(EARLY), n_workers=1)
    # Higher is better: a first, b 0.7 > 0.5 continues, the rest are below 0.7.
    assert {t.config for t in result.trials if t.state == TrialState.COMPLETE} == {"a", "b"}


def test_early_discarding_decides_at_the_first_step_past_a_gap() -> None:
    rows = [
        {"config": c, "step": s, "value": v}
        for c, base in (("a", 1.0), ("b", 2.0), ("c", 0.5))
        for s, v in ((2, base), (4, base / 2), (6, base / 4))
    ]
    table = CurveTable.from_rows(rows)
    study = optuna.create_study(pruner=EarlyDiscardingPruner(1))
    result = replay_async(study, table, ["a", "b", "c"])
    assert [(t.config, t.epochs) for t in result.trials] == [("a", 6), ("b", 2), ("c", 6)]


def test_i_epoch_methods_by_name() -> None:
    table = _table(EARLY)
    run = run_one(table, "i-epoch-1", 0, direction="minimize", n_trials=5)
    assert run["n_complete"] == run["n_trials"] - run["n_pruned"]
    assert run["epochs"] == run["n_complete"] * MAX_STEP + run["n_pruned"]
    with pytest.raises(ValueError, match="epochs"):
        EarlyDiscardingPruner(0)
