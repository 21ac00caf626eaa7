"""Reading a trial's learning curve as the pruner sees it: minimised, by step."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from optuna.trial import TrialState

if TYPE_CHECKING:
    import optuna


def value_at(trial: optuna.trial.FrozenTrial, step: int, sign: float) -> float | None:
    """The trial's value at ``step`` (times ``sign``), or at the first step reported after it
    when steps have gaps; ``None`` if it never got there. Non-finite values count as the worst."""
    values = trial.intermediate_values
    if step in values:
        v = values[step]
    else:
        later = [s for s in values if s > step]
        if not later:
            return None
        v = values[min(later)]
    v = sign * float(v)
    return v if math.isfinite(v) else math.inf


def final_value(trial: optuna.trial.FrozenTrial, max_resource: int, sign: float) -> float | None:
    """The trial's final value as a bar for the others: its finite value at ``max_resource``
    (times ``sign``), else ``None``. A failed trial has none: like ``study.best_value``, the
    bar counts what a study keeps, not a value reported before a crash."""
    if trial.state == TrialState.FAIL:
        return None
    v = value_at(trial, max_resource, sign)
    return v if v is not None and math.isfinite(v) else None


def curve(trial: optuna.trial.FrozenTrial, last_step: int, sign: float) -> np.ndarray:
    """The values at steps ``1..last_step`` (times ``sign``), ``NaN`` where none was reported.

    Raises:
        ValueError: no finite value was reported in those steps; the message says whether
            none was reported (and the first step that was) or all were NaN or infinite.
    """
    values = trial.intermediate_values
    out = np.array([sign * float(values.get(s, math.nan)) for s in range(1, last_step + 1)])
    out[~np.isfinite(out)] = math.nan
    if np.isnan(out).all():
        reported = [s for s in range(1, last_step + 1) if s in values]
        if reported:
            raise ValueError(
                f"its {len(reported)} values in steps 1..{last_step} are all NaN or infinite"
            )
        first = f"its first step is {min(values)}" if values else "it reported no step"
        raise ValueError(
            f"no step in 1..{last_step} was reported ({first}): a forecast needs the "
            "curve's start; report steps from 1 in increasing order"
        )
    return out


def has_curve(trial: optuna.trial.FrozenTrial, last_step: int, target: int) -> bool:
    """Whether the trial can train a predictor of key ``(target, last_step)``: a finite value in
    steps ``1..last_step`` and a finite value at ``target``."""
    values = trial.intermediate_values
    if not any(math.isfinite(values[s]) for s in range(1, last_step + 1) if s in values):
        return False
    v = value_at(trial, target, 1.0)
    return v is not None and math.isfinite(v)
