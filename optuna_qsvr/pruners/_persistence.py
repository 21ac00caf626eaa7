"""Rank persistence: how well a study's values at one rung's end rank them at the next.

Successive halving, and every forecast read from an early part of a curve, assume that a trial
ahead early stays ahead. Where it does not (runs that sit on a plateau and then separate, or
noisy validation curves), stopping on early values picks at random which runs finish, and
Hyperband's conservative brackets, which train some trials to the end whatever their early
values, are what finds the best one. This measures the assumption on the study itself: the
Spearman correlation between the trials' values at consecutive rung budgets ``r_i`` and
``r_{i+1}``, over every trial that reported both, pooled over the rung pairs (weighted by
their numbers of trials). The pruner runs a new trial the way Hyperband would when it is low.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import spearmanr

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial


# A rung pair's most recent trials that the measure reads: enough for a correlation to two
# decimals, and a bound on its cost (a study of 10,000 trials would otherwise rank them all
# for every new trial).
RECENT = 1000


@dataclass(frozen=True)
class Persistence:
    """The pooled rank correlation ``rho`` (``nan`` without pairs) over ``pairs`` trial-pairs
    of values, one per trial and consecutive rung pair."""

    rho: float
    pairs: int


def rank_persistence(
    columns: Sequence[tuple[Sequence[float], Sequence[float]]],
    min_pairs: int,
    recent: int = RECENT,
) -> Persistence:
    """Pool the Spearman correlations of ``(values at r_i, values at r_{i+1})`` per rung pair.

    A rung pair counts once it has ``min_pairs`` trials with finite values at both budgets and
    a defined correlation (not every value tied); the result is the mean of the counted pairs'
    correlations, weighted by their trials. Each pair uses its last ``recent`` trials only, so
    the measure costs the same in a study of any size.

    Args:
        columns: per consecutive rung pair, the trials' values at both budgets (same order,
            oldest first).
        min_pairs: trials a rung pair needs before it counts.
        recent: the most trials a rung pair uses, the last ones.
    """
    total = weighted = 0.0
    for first, second in columns:
        x = np.asarray(first[-recent:], dtype=float)
        y = np.asarray(second[-recent:], dtype=float)
        finite = np.isfinite(x) & np.isfinite(y)
        n = int(finite.sum())
        x, y = x[finite], y[finite]
        # Every value tied at one budget (a plateau, a diverged rung) orders nothing.
        if n < max(min_pairs, 3) or np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        rho = float(spearmanr(x, y).statistic)
        total += n
        weighted += rho * n
    if total == 0:
        return Persistence(math.nan, 0)
    return Persistence(weighted / total, int(total))


def paired_values(
    trials: Sequence[FrozenTrial], first: int, second: int
) -> tuple[list[float], list[float]]:
    """The values at steps ``first`` and ``second`` of every trial that reported both."""
    xs, ys = [], []
    for t in trials:
        if (pair := value_pair(t, first, second)) is not None:
            xs.append(pair[0])
            ys.append(pair[1])
    return xs, ys


def value_pair(trial: FrozenTrial, first: int, second: int) -> tuple[float, float] | None:
    """The trial's values at steps ``first`` and ``second``, if it reported both."""
    values = trial.intermediate_values
    if first in values and second in values:
        return values[first], values[second]
    return None
