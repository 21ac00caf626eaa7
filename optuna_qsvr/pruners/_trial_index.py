"""A study's trials as the pruner's decisions read them, kept between calls.

A decision reads every trial of the study: the curves that can train a predictor, the best
final values, the values at a rung's end, the rung-mates. Rebuilding those from every trial at
every decision point made the pruner's time per call grow with the study. Finished trials never
change (Optuna refuses to update them), so what a decision derives from one is computed once,
when the trial is first seen finished, and kept; only the running trials are read afresh.
A call then costs the storage's read plus work in the number of running and newly finished
trials, not in the size of the study.

:class:`TrialIndex` answers the same questions as walking the trial list; the decision
functions in ``_decisions`` use it when the pruner hands one over and walk the list otherwise
(tests check both give the same answers).
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from optuna_qsvr import _records
from optuna_qsvr.pruners import _curves
from optuna_qsvr.pruners._persistence import value_pair

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial


class TrialIndex:
    """The trials of one study, with what decisions derive from its finished ones cached.

    Args:
        bracket_of: a trial's Hyperband bracket (the one recorded on it, since it may depend
            on the study when the trial started).
    """

    def __init__(self, bracket_of: Callable[[FrozenTrial], int]) -> None:
        self._bracket_of = bracket_of
        self._lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        self._trials: list[FrozenTrial] = []
        self._unfinished: list[int] = []  # numbers, ascending
        self._finished: list[FrozenTrial] = []  # in the order they were first seen finished
        self._finished_numbers: set[int] = set()
        # What is derived from the finished trials: key -> (finished trials scanned, data).
        self._derived: dict[Hashable, tuple[int, Any]] = {}

    def update(self, trials: list[FrozenTrial]) -> bool:
        """Take the study's current trials, ordered by number as storages return them.

        Returns whether the index can answer for them: Optuna numbers a study's trials 0, 1,
        2, ..., so a trial's number is its position; a list that is not so numbered cannot be
        indexed (the decisions then walk it). An older read of the same study (a prefix of
        the trials it holds) leaves the index as it is: it answers from the newer trials.
        """
        with self._lock:
            n = len(trials)
            if n and (trials[0].number != 0 or trials[-1].number != n - 1):
                self._reset()
                return False
            if (
                0 < n < len(self._trials)
                and _same_trial(trials[0], self._trials[0])
                and _same_trial(trials[-1], self._trials[n - 1])
            ):
                # An older read of this study (another thread read before this one's update
                # landed): keep the newer state and answer from it.
                return True
            if n < len(self._trials) or (
                self._trials and trials[0]._trial_id != self._trials[0]._trial_id
            ):
                self._reset()  # another study's trials, or a storage that lost some
            unfinished = []
            for number in [*self._unfinished, *range(len(self._trials), n)]:
                trial = trials[number]
                if trial.state.is_finished():
                    self._finished.append(trial)
                    self._finished_numbers.add(number)
                else:
                    unfinished.append(number)
            self._trials, self._unfinished = trials, unfinished
            return True

    @property
    def running(self) -> list[FrozenTrial]:
        """The trials not finished (running or waiting), by number."""
        with self._lock:
            return [self._trials[n] for n in self._unfinished]

    def others(self, exclude: int) -> list[FrozenTrial]:
        """Every trial but number ``exclude``, by number."""
        with self._lock:
            return [t for t in self._trials if t.number != exclude]

    def peers(self, bracket: int, exclude: int) -> list[FrozenTrial]:
        """The trials of ``bracket`` but number ``exclude``, by number."""
        with self._lock:
            of = self._bracket_of
            return [t for t in self._trials if t.number != exclude and of(t) == bracket]

    # Queries: the finished trials' part from the cache, the running trials' part afresh.
    def pool(self, step: int, target: int, exclude: int) -> Sequence[FrozenTrial]:
        """The trials that can train a predictor of ``(target, step)`` (any order)."""
        with self._lock:
            done = self._scan(("pool", step, target), list, _append_if(_has_curve(step, target)))
            live = [
                t
                for t in self.running
                if t.number != exclude and _curves.has_curve(t, step, target)
            ]
            # A copy: another thread's scan may append to the cached list meanwhile.
            return _Joined(self._without(done, exclude), live)

    def finals(self, max_resource: int, sign: float, k: int, exclude: int) -> list[float]:
        """The ``k`` best finite values at ``max_resource`` (``sign`` applied), ascending."""

        with self._lock:

            def add(values: list[float], trial: FrozenTrial) -> None:
                v = _curves.final_value(trial, max_resource, sign)
                if v is not None:
                    bisect.insort(values, v)

            done = self._scan(("finals", max_resource, sign), list, add)
            live = [
                v
                for t in self.running
                if t.number != exclude
                and (v := _curves.final_value(t, max_resource, sign)) is not None
            ]
            return sorted(self._values_without(done, max_resource, sign, exclude, k) + live)[:k]

    def rung_value(
        self, budget: int, sign: float, exclude: int, pick: Callable[[int, int], int | None]
    ) -> float | None:
        """The value at ``budget`` (non-finite as ``inf``) of rank ``pick(n, stopped)`` (0-based,
        ascending; ``None``: no value) among the ``n`` values there, where ``stopped`` trials
        stopped early in a rung ending at ``budget`` (a recorded prune there, never reached it).
        """
        with self._lock:
            values, stopped = self._rung_values(budget, sign, exclude)
            index = pick(len(values), stopped)
            return None if index is None else values[index]

    def rung_median(self, budget: int, sign: float, exclude: int) -> tuple[float, int]:
        """The median of the values at ``budget`` (``sign`` applied, non-finite as ``inf``;
        NaN when there are none) and how many there are."""
        with self._lock:
            values, _ = self._rung_values(budget, sign, exclude)
            return sorted_median(values), len(values)

    def rung_standing(
        self, budget: int, sign: float, exclude: int, value: float
    ) -> tuple[int, int]:
        """How many values at ``budget`` (``sign`` applied, non-finite as ``inf``) are smaller
        than ``value``, and how many trials the step holds: those with a value there and those
        stopped early in a rung ending there (ranked below every value)."""
        with self._lock:
            values, stopped = self._rung_values(budget, sign, exclude)
            below = values.count_between(-math.inf, value) - values.count_between(value, value)
            return below, len(values) + stopped

    def count_near(
        self, step: int, sign: float, exclude: int, value: float, radius: float
    ) -> tuple[int, int]:
        """How many values at ``step`` (``sign`` applied, non-finite as ``inf``) lie within
        ``radius`` of ``value``, ends included, and how many there are."""
        with self._lock:
            values, _ = self._rung_values(step, sign, exclude)
            return values.count_between(value - radius, value + radius), len(values)

    def _rung_values(self, budget: int, sign: float, exclude: int) -> tuple[_SortedPart, int]:

        def add(part: tuple[list[float], list[int]], trial: FrozenTrial) -> None:
            values, stopped = part
            v = _curves.value_at(trial, budget, sign)
            if v is not None:
                bisect.insort(values, v)
            elif stopped_early(trial, budget):
                stopped[0] += 1

        values, stopped = self._scan(("rung", budget, sign), lambda: ([], [0]), add)
        own = self._own_finished(exclude)
        n_stopped = stopped[0]
        if own is not None:
            v = _curves.value_at(own, budget, sign)
            if v is not None:
                values = _removed(values, v)
            elif stopped_early(own, budget):
                n_stopped -= 1
        live = []
        for t in self.running:
            if t.number == exclude:
                continue
            v = _curves.value_at(t, budget, sign)
            if v is not None:
                live.append(v)
            elif stopped_early(t, budget):
                n_stopped += 1
        return _SortedPart(values, sorted(live)), n_stopped

    def competing(
        self,
        bracket: int,
        budget: int,
        key: Hashable,
        value_of: Callable[[FrozenTrial], float | None],
        exclude: int,
    ) -> list[float]:
        """``value_of`` each trial of ``bracket`` but ``exclude`` (``None`` dropped). ``key``
        names ``value_of``: what it returns for a finished trial is cached under it."""

        with self._lock:

            def add(values: list[tuple[int, float]], trial: FrozenTrial) -> None:
                if self._bracket_of(trial) != bracket:
                    return
                if (v := value_of(trial)) is not None:
                    values.append((trial.number, v))

            done = self._scan(("competing", bracket, budget, key), list, add)
            values = [v for n, v in done if n != exclude]
            for t in self.running:
                if t.number != exclude and self._bracket_of(t) == bracket:
                    v = value_of(t)
                    if v is not None:
                        values.append(v)
            return values

    def paired_values(
        self, first: int, second: int, last: int | None = None
    ) -> tuple[list[float], list[float]]:
        """The values at steps ``first`` and ``second`` of every trial that reported both (the
        same order in both lists: finished trials as they finished, then running ones;
        non-finite values included), or of the ``last`` of them in that order, copying no more."""
        with self._lock:

            def add(part: tuple[list[float], list[float]], trial: FrozenTrial) -> None:
                if (pair := value_pair(trial, first, second)) is not None:
                    part[0].append(pair[0])
                    part[1].append(pair[1])

            done = self._scan(("pair", first, second), lambda: ([], []), add)
            live = [p for t in self.running if (p := value_pair(t, first, second)) is not None]
            start = 0
            if last is not None:
                live = live[max(len(live) - last, 0) :]
                start = max(len(done[0]) - (last - len(live)), 0)
            # Slices are copies: the cached lists keep growing.
            return (
                done[0][start:] + [a for a, _ in live],
                done[1][start:] + [b for _, b in live],
            )

    # ------------------------------------------------------------------------------------
    def _scan(self, key: Hashable, new: Callable[[], Any], add: Callable[[Any, Any], None]) -> Any:
        """The data under ``key``, brought up to date with the trials finished since."""
        scanned, data = self._derived.get(key, (0, None))
        if data is None:
            data = new()
        for trial in self._finished[scanned:]:
            add(data, trial)
        self._derived[key] = (len(self._finished), data)
        return data

    def _own_finished(self, exclude: int) -> FrozenTrial | None:
        # The decided trial is running when the pruner asks; a finished one is taken out.
        return self._trials[exclude] if exclude in self._finished_numbers else None

    def _without(self, trials: list[FrozenTrial], exclude: int) -> list[FrozenTrial]:
        """A new list of ``trials`` but number ``exclude``."""
        if exclude not in self._finished_numbers:
            return trials[:]
        return [t for t in trials if t.number != exclude]

    def _values_without(
        self, values: list[float], max_resource: int, sign: float, exclude: int, k: int
    ) -> list[float]:
        """The ``k`` smallest of ``values`` once the excluded trial's value is taken out."""
        own = self._own_finished(exclude)
        v = None if own is None else _curves.final_value(own, max_resource, sign)
        head = values[: k + 1]
        return _removed(head, v)[:k] if v is not None else head[:k]


def count_between(values: Sequence[float], low: float, high: float) -> int:
    """How many of ``values`` (ascending) lie in ``[low, high]``."""
    return bisect.bisect_right(values, high) - bisect.bisect_left(values, low)


class _SortedPart:
    """Two ascending lists read as their sorted union, without building it."""

    def __init__(self, big: list[float], small: list[float]) -> None:
        self._big, self._small = big, small

    def __len__(self) -> int:
        return len(self._big) + len(self._small)

    def count_between(self, low: float, high: float) -> int:
        """How many values lie in ``[low, high]``."""
        return count_between(self._big, low, high) + count_between(self._small, low, high)

    def __getitem__(self, index: int) -> float:
        """The ``index``-th smallest (0-based, non-negative)."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        # At most len(small) values of ``small`` precede the answer, so every value of ``big``
        # before ``index - len(small)`` precedes it too: merge only the window after those.
        start = max(index - len(self._small), 0)
        return sorted(self._big[start : index + 1] + self._small)[index - start]


class _Joined(Sequence):
    """Two lists read as one, built only if iterated (``len`` is free)."""

    def __init__(self, first: list[FrozenTrial], second: list[FrozenTrial]) -> None:
        self._first, self._second = first, second

    def __len__(self) -> int:
        return len(self._first) + len(self._second)

    def __getitem__(self, index: Any) -> Any:
        return (self._first + self._second)[index]

    def __iter__(self) -> Iterator[FrozenTrial]:
        yield from self._first
        yield from self._second


def _has_curve(step: int, target: int) -> Callable[[FrozenTrial], bool]:
    return lambda t: _curves.has_curve(t, step, target)


def _append_if(test: Callable[[FrozenTrial], bool]) -> Callable[[list, FrozenTrial], None]:
    def add(items: list, trial: FrozenTrial) -> None:
        if test(trial):
            items.append(trial)

    return add


def _removed(values: list[float], v: float) -> list[float]:
    """``values`` (ascending) without one occurrence of ``v``."""
    i = bisect.bisect_left(values, v)
    if i < len(values) and values[i] == v:
        return values[:i] + values[i + 1 :]
    return list(values)


def _same_trial(older: FrozenTrial, newer: FrozenTrial) -> bool:
    """Whether ``older`` is an earlier read of ``newer``. A deleted study's ids can be reused
    by a new one, whose trials start at other times; a trial waiting in the older read has
    no start yet."""
    return older._trial_id == newer._trial_id and older.datetime_start in (
        None,
        newer.datetime_start,
    )


def stopped_early(trial: FrozenTrial, budget: int) -> bool:
    """Stopped early in a rung ending at ``budget``: a recorded prune there, never reached."""
    return (
        trial.last_step is not None
        and trial.last_step < budget
        and any(
            r["decision"] == "pruned" and r.get("budget") == budget
            for r in _records.decisions(trial.system_attrs).values()
        )
    )


def sorted_median(values: Sequence[float]) -> float:
    """The median of ascending ``values`` (NaN when empty)."""
    n = len(values)
    return (values[(n - 1) // 2] + values[n // 2]) / 2 if n else math.nan
