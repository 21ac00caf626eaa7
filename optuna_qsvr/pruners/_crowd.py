"""Crowds: early values tied within the metric's noise, where a rank or a forecast says nothing.

Many runs start on a plateau (accuracy at chance, a loss that has not moved yet) and sit there
tied within the epoch-to-epoch noise of the metric. Inside such a crowd a rung's ranking is
noise, and a forecast from a curve that is still in it is the crowd's average: a late bloomer
looks exactly like the runs that never learn, and gets the same small chance. Stopping it
there is a draw, and when it is the study's best configuration the draw loses it
(``benchmarks/where_lost.py``: on ``cnn_digits`` the best configuration was stopped at epoch 1
with chance-level accuracy, ranked 34th of 66, in 2 of 20 seeds).

With ``second_look=True`` the forecast mode gives a trial one more look when it *enters* a
crowd: it is not stopped at a decision point where its value is in a crowd unless its value was
in a crowd at its previous decision point too. A run still in the crowd one decision interval
later is stopped as before; one that left it is judged on a curve that now tells it apart. The
cost is one decision interval per crowd a trial enters, which adds up where most of a study
starts in one: the look is off by default (README, "The second look", has both sides).

Definitions, measured on the study at decision time from what every worker sees in the
storage (no state of its own):

* the **noise** at step ``s`` is the median of ``|value(s + 1) - value(s)|`` over the trials
  that reported both steps (at least ``min_pairs`` of them; otherwise unknown and no trial is
  spared). It is the metric's jitter between epochs, plus what runs learn in one: a
  tie tolerance the study measures on itself instead of one the user must know;
* a value is in a **crowd** at ``s`` when at least ``1 / eta`` of the other trials' values
  there lie within the noise of it: a tie larger than the share successive halving promotes.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from optuna_qsvr.pruners import _curves
from optuna_qsvr.pruners._persistence import RECENT, paired_values
from optuna_qsvr.pruners._schedule import decision_points
from optuna_qsvr.pruners._trial_index import count_between

if TYPE_CHECKING:
    from optuna_qsvr.pruners._decisions import RungView


@dataclass(frozen=True)
class Crowd:
    """The others' values within ``noise`` of a value at ``step``: ``share`` of ``n``."""

    step: int
    noise: float
    share: float
    n: int

    def crowded(self, reduction_factor: int) -> bool:
        return self.share >= 1.0 / reduction_factor


def noise_level(first: Sequence[float], second: Sequence[float], min_pairs: int) -> float:
    """The median absolute change between paired values (``nan`` below ``min_pairs`` finite
    pairs or when every pair is unchanged: a noise of zero makes no tie)."""
    changes = [
        abs(b - a)
        for a, b in zip(first, second, strict=True)
        if math.isfinite(a) and math.isfinite(b)
    ]
    if len(changes) < min_pairs:
        return math.nan
    noise = statistics.median(changes)
    return noise if noise > 0 else math.nan


def crowd_at(view: RungView, step: int, min_pairs: int) -> Crowd | None:
    """The crowd around the trial's value at ``step`` (``None``: no finite value there, or
    the noise cannot be measured yet)."""
    own = _curves.value_at(view.trial, step, view.sign)
    if own is None or not math.isfinite(own):
        return None
    # The most recent pairs, as the rank persistence reads them: a bounded cost per look.
    if view.index is not None:
        first, second = view.index.paired_values(step, step + 1, RECENT)
    else:
        # The trial's own pair counts too, as in the index.
        first, second = paired_values([*view.others, view.trial], step, step + 1)
        first, second = first[-RECENT:], second[-RECENT:]
    noise = noise_level(first, second, min_pairs)
    if not math.isfinite(noise):
        return None
    if view.index is not None:
        near, n = view.index.count_near(step, view.sign, view.trial.number, own, noise)
    else:
        values = sorted(
            v for t in view.others if (v := _curves.value_at(t, step, view.sign)) is not None
        )
        near, n = count_between(values, own - noise, own + noise), len(values)
    if n < min_pairs:
        return None
    return Crowd(step, noise, near / n, n)


def previous_look(view: RungView, step: int, ratio: float, min_resource: int) -> int | None:
    """The trial's decision step before ``step``: the later of the latest geometric decision
    point (:func:`~._schedule.decision_points`) below ``step`` and the end of the previous rung
    (``None`` when ``step`` is the trial's first look)."""
    last = max(decision_points(min_resource, ratio, step), default=0)
    look = max(view.rung.previous, last)
    return look if look > 0 else None


def second_look(
    view: RungView,
    step: int,
    *,
    reduction_factor: int,
    ratio: float,
    min_resource: int,
    min_pairs: int,
) -> tuple[str, Crowd] | None:
    """Why a trial the forecast mode would stop at ``step`` trains on to its next decision
    point, or ``None`` when it is stopped: its value is in a crowd at ``step`` and was in
    none at its previous decision point (or ``step`` is its first, or the crowd there cannot
    be measured)."""
    crowd = crowd_at(view, step, min_pairs)
    if crowd is None or not crowd.crowded(reduction_factor):
        return None
    before = previous_look(view, step, ratio, min_resource)
    if before is not None:
        earlier = crowd_at(view, before, min_pairs)
        if earlier is not None and earlier.crowded(reduction_factor):
            return None
    reason = (
        f"second look: its value at {step} ties {crowd.share:.0%} of the {crowd.n} values "
        f"there (within the noise {crowd.noise:.3g})"
    )
    return reason, crowd
