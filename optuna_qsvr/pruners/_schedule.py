"""Hyperband's brackets and rungs with Swift's decision steps, in integer arithmetic."""

from __future__ import annotations

import binascii
import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property


def decision_points(min_resource: int, ratio: float, below: int) -> Iterator[int]:
    """The forecast mode's geometric decision points below ``below``, ascending and distinct:
    ``ceil(min_resource * ratio**k)`` for ``k = 0, 1, ...``. A ratio near 1 repeats a value,
    which is one point; the options keep the ratio at ``1 + 1/(max_resource + 1)`` or more, a
    point at every step, so the terms counted stay few."""
    point, k = min_resource, 0
    while point < below:
        yield point
        while (following := math.ceil(min_resource * ratio**k)) <= point:
            k += 1
        point = following


@dataclass(frozen=True)
class Rung:
    """Rung ``index`` of bracket ``bracket``: trials train from ``previous`` to ``budget``
    epochs; Swift decides at ``decision_step`` (``None`` when no step lies strictly between,
    so successive halving alone decides at ``budget``)."""

    bracket: int
    index: int
    previous: int
    budget: int
    decision_step: int | None
    is_last: bool


@dataclass(frozen=True)
class Schedule:
    """Brackets ``s = 0..s_max`` (``s`` = how aggressive) and their rungs.

    ``rungs="optuna"`` places rungs as Optuna's ``HyperbandPruner`` does, geometrically from
    ``min_resource`` (bracket ``s`` at ``min * eta^(s_max - s + i)``) and adds a last rung at
    ``max_resource``; ``rungs="hyperband"`` anchors them at ``max_resource`` as Li et al.
    and the reference do (``r_i = R * eta^(i - s)``). Bracket sizes and assignment are
    Hyperband's either way, and match Optuna's ``HyperbandPruner`` trial for trial, except
    where ``max_resource / min_resource`` is a power of ``eta`` whose floating-point log Optuna
    rounds down (3 and 729 with ``eta=3``: Optuna makes 5 brackets, Hyperband's formula 6).
    """

    min_resource: int
    max_resource: int
    reduction_factor: int
    known_curve: float
    layout: str = "optuna"
    weights: tuple[float, ...] | None = None

    @cached_property
    def s_max(self) -> int:
        # Integer search: math.log(243, 3) is 4.999... and would lose a bracket.
        s = 0
        while self.min_resource * self.reduction_factor ** (s + 1) <= self.max_resource:
            s += 1
        return s

    @cached_property
    def bracket_sizes(self) -> tuple[int, ...]:
        """Hyperband's ``n`` per bracket ``s``: ``ceil((s_max + 1) eta^s / (s + 1))``."""
        eta, n = self.reduction_factor, self.s_max + 1
        return tuple(-(-n * eta**s // (s + 1)) for s in range(n))

    @cached_property
    def allocation(self) -> tuple[int, ...]:
        """The share of trials each bracket gets: Hyperband's sizes, each scaled by its entry
        of ``weights`` (most aggressive bracket first; the last entry repeats for the rest).
        Weight 0 removes a bracket; ``weights=(1, 0)`` is successive halving alone."""
        if self.weights is None:
            return self.bracket_sizes
        w = self.weights
        used = [w[min(self.s_max - s, len(w) - 1)] for s in range(self.s_max + 1)]
        # Relative to the largest weight of a bracket that exists (the first, most aggressive,
        # is positive), so some bracket always has trials; in thousandths, so fractional
        # shares survive the rounding to whole trials.
        top = max(used)
        return tuple(
            round(1000 * n * u / top) for n, u in zip(self.bracket_sizes, used, strict=True)
        )

    def bracket_of(self, study_name: str, trial_number: int) -> int:
        """The bracket ``s`` of a trial: the same in every process (crc32, as Optuna's)."""
        n = binascii.crc32(f"{study_name}_{trial_number}".encode()) % sum(self.allocation)
        for s in range(self.s_max, -1, -1):  # most aggressive bracket first, as Hyperband
            n -= self.allocation[s]
            if n < 0:
                return s
        raise AssertionError("unreachable")

    def rungs(self, bracket: int) -> tuple[Rung, ...]:
        return self._rungs[bracket]

    @cached_property
    def _rungs(self) -> tuple[tuple[Rung, ...], ...]:
        out = []
        eta, R = self.reduction_factor, self.max_resource
        for s in range(self.s_max + 1):
            if self.layout == "hyperband":
                # r_i = R * eta^(i - s), anchored at R, floored to whole epochs.
                budgets = [max(self.min_resource, R * eta**i // eta**s) for i in range(s + 1)]
            else:
                first = self.s_max - s
                budgets = [self.min_resource * eta ** (first + i) for i in range(s + 1)]
                budgets = [b for b in budgets if b < R] + [R]
            rungs, previous = [], 0
            for budget in budgets:
                if budget <= previous:
                    continue
                step = previous + math.ceil((budget - previous) * self.known_curve)
                rungs.append(
                    Rung(
                        bracket=s,
                        index=len(rungs),
                        previous=previous,
                        budget=budget,
                        decision_step=step if previous < step < budget else None,
                        is_last=budget == R,
                    )
                )
                previous = budget
            out.append(tuple(rungs))
        return tuple(out)
