"""Replay recorded learning curves through real Optuna studies.

A replayed trial picks a configuration of a :class:`CurveTable`, reports its recorded values
epoch by epoch and obeys the study's pruner, so any Optuna pruner can be compared on the curves
of past runs without training anything. :func:`replay_async` simulates several asynchronous
workers in virtual time (one epoch is one time unit per worker) through Optuna's ask-and-tell
interface; :func:`make_objective` is the same replay for :meth:`optuna.study.Study.optimize`,
in one process or in many workers sharing a storage.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from optuna_qsvr._validation import check_int
from optuna_qsvr.benchmark._table import CurveTable, _direction

# The user attribute that ties a replayed trial to its row of the table.
CONFIG_ATTR = "config"


def enqueue_config(study: optuna.study.Study, table: CurveTable, config: str) -> None:
    """Make the study's next new trial replay ``config``.

    Args:
        study:
            The study.
        table:
            The table holding ``config``.
        config:
            A configuration of ``table``.
    """
    if config not in table.finals:
        raise KeyError(f"config {config!r} is not in {table.source} (or lacks its last step)")
    study.enqueue_trial(table.params(config), user_attrs={CONFIG_ATTR: config})


def _suggest_config(
    trial: optuna.trial.Trial, table: CurveTable, distributions: Mapping[str, BaseDistribution]
) -> str:
    config = trial.user_attrs.get(CONFIG_ATTR)
    if config is None:
        raise RuntimeError(
            f"trial {trial.number} has no {CONFIG_ATTR!r} user attribute: enqueue each replayed "
            "configuration with enqueue_config(study, table, config) before the trial starts"
        )
    expected = table.params(config)
    for name in expected:
        dist = distributions[name]
        # The public suggest API records the parameter with its distribution, exactly as a
        # live objective would, so samplers and dashboards see an ordinary trial.
        if isinstance(dist, IntDistribution):
            value = trial.suggest_int(name, dist.low, dist.high, log=dist.log)
        elif isinstance(dist, FloatDistribution):
            value = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
        else:
            assert isinstance(dist, CategoricalDistribution)
            value = trial.suggest_categorical(name, dist.choices)
        if value != expected[name]:
            raise RuntimeError(
                f"trial {trial.number} suggested {name}={value!r}, but config {config!r} has "
                f"{expected[name]!r}: the study had other enqueued trials waiting"
            )
    return config


def make_objective(
    table: CurveTable,
    *,
    order: Sequence[str] | None = None,
    epoch_seconds: float = 0.0,
) -> Callable[[optuna.trial.Trial], float]:
    """An objective for :meth:`~optuna.study.Study.optimize` that replays the table's curves.

    Each trial reports its configuration's recorded values step by step and raises
    :class:`optuna.TrialPruned` when the pruner says so. The pruner is not asked after the
    last step: stopping then saves no epoch, and the final value is what the benchmark
    compares.

    Args:
        table:
            The curves to replay.
        order:
            Where a trial's configuration comes from. ``None``: every trial replays the
            configuration enqueued for it with :func:`enqueue_config` and suggests its
            hyperparameters, as a live objective would. A sequence of configurations: a trial
            without an enqueued configuration replays ``order[trial.number % len(order)]`` and
            records it in the ``config`` user attribute. Trial numbers are unique across the
            workers of a shared storage, so the choice needs no coordination, and a trial
            re-queued after its worker died keeps its configuration.
        epoch_seconds:
            Seconds to sleep before each reported epoch, standing in for training.

    Example:

        .. code::

            study = optuna.create_study(pruner=optuna.pruners.HyperbandPruner())
            for config in table.configs[:20]:
                enqueue_config(study, table, config)
            study.optimize(make_objective(table), n_trials=20)
    """
    if order is not None and not order:
        raise ValueError("order must name at least one configuration, got an empty sequence")
    distributions = table.distributions()

    def objective(trial: optuna.trial.Trial) -> float:
        if order is None:
            config = _suggest_config(trial, table, distributions)
        else:
            config = trial.user_attrs.get(CONFIG_ATTR) or order[trial.number % len(order)]
            trial.set_user_attr(CONFIG_ATTR, config)
        steps, values = table.steps(config).tolist(), table.values(config).tolist()
        for step, value in zip(steps, values, strict=True):
            if epoch_seconds:
                time.sleep(epoch_seconds)
            trial.report(value, step)
            if step < table.max_step and trial.should_prune():
                raise optuna.TrialPruned()
        return table.finals[config]

    return objective


@dataclass(frozen=True)
class TrialRecord:
    """What one replayed trial cost and gave.

    Args:
        number: The Optuna trial number.
        config: The configuration it replayed.
        state: ``TrialState.COMPLETE`` or ``TrialState.PRUNED``.
        epochs: Epochs trained (its last reported step).
        start: Virtual time at which its worker started it.
        end: Virtual time at which it finished (``start + epochs``).
        final: The recorded final value when it completed, else ``None``.
    """

    number: int
    config: str
    state: TrialState
    epochs: int
    start: int
    end: int
    final: float | None


@dataclass
class ReplayResult:
    """The outcome of one replay: per-trial records and the best-final trajectory.

    Args:
        direction: ``"minimize"`` or ``"maximize"``.
        n_workers: The number of simulated workers.
        trials: One record per trial, by trial number.
    """

    direction: str
    n_workers: int
    trials: list[TrialRecord] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        """Epochs consumed by all trials."""
        return sum(t.epochs for t in self.trials)

    @property
    def n_pruned(self) -> int:
        return sum(t.state == TrialState.PRUNED for t in self.trials)

    @property
    def n_complete(self) -> int:
        return sum(t.state == TrialState.COMPLETE for t in self.trials)

    @property
    def makespan(self) -> int:
        """Virtual time at which the last trial finished."""
        return max((t.end for t in self.trials), default=0)

    @property
    def best_final(self) -> float:
        """Best final value among the trials that ran to the end (NaN if none did)."""
        finals = [t.final for t in self.trials if t.final is not None]
        if not finals:
            return math.nan
        return min(finals) if self.direction == "minimize" else max(finals)

    def trajectory(self) -> list[tuple[int, float]]:
        """``(epochs spent, best final so far)`` at every completion that improved the best.

        Epochs spent are counted over all workers up to the virtual time of the completion,
        including the partial training of trials still running then.
        """
        starts = np.array([t.start for t in self.trials])
        lengths = np.array([t.epochs for t in self.trials])
        sign = 1.0 if self.direction == "minimize" else -1.0
        points: list[tuple[int, float]] = []
        best = math.inf
        for t in sorted(self.trials, key=lambda t: (t.end, t.number)):
            if t.final is None or sign * t.final >= best:
                continue
            best = sign * t.final
            spent = int(np.clip(t.end - starts, 0, lengths).sum())
            points.append((spent, t.final))
        return points


def replay_async(
    study: optuna.study.Study,
    table: CurveTable,
    config_sequence: Sequence[str],
    n_workers: int = 1,
) -> ReplayResult:
    """Replay ``config_sequence`` on ``n_workers`` simulated asynchronous workers.

    Every worker holds one running trial and trains it one epoch per time unit. Events (a
    trial reaching one of its recorded steps) are processed in virtual-time order, ties by
    worker index, so a run is deterministic. At each event the value is reported and
    ``trial.should_prune()`` is asked; the trial is told ``PRUNED`` when it says so, or
    ``COMPLETE`` with its final value at the table's last step. A worker that finishes starts
    the next configuration of the sequence at once, until every one has started. With one
    worker this is the sequential case, identical to :func:`make_objective` under
    ``study.optimize``.

    Args:
        study:
            A single-objective study with no waiting trials; its pruner makes the decisions.
        table:
            The recorded curves.
        config_sequence:
            The configuration of trial ``i`` (as numbered from the first one this call
            starts), in start order.
        n_workers:
            Number of simulated workers.

    Returns:
        Per-trial records of the trials started by this call.
    """
    n_workers = check_int("n_workers", n_workers, 1)
    unknown = [c for c in config_sequence if c not in table.finals]
    if unknown:
        raise KeyError(f"configs not in {table.source}: {unknown[:5]}")
    if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        raise ValueError("the study has waiting (enqueued) trials; replay needs it without them")
    direction = _direction(study.direction)
    distributions = table.distributions()

    # Per worker: [trial, config, index of its next recorded step, start time].
    running: dict[int, list[Any]] = {}
    events: list[tuple[int, int]] = []
    starts: dict[int, int] = {}
    numbers: list[int] = []
    next_config = 0

    def start(worker: int, now: int) -> None:
        nonlocal next_config
        if next_config >= len(config_sequence):
            return
        config = config_sequence[next_config]
        next_config += 1
        enqueue_config(study, table, config)
        trial = study.ask()
        _suggest_config(trial, table, distributions)
        starts[trial.number] = now
        numbers.append(trial.number)
        running[worker] = [trial, config, 0, now]
        heapq.heappush(events, (now + int(table.steps(config)[0]), worker))

    for worker in range(n_workers):
        start(worker, 0)
    while events:
        now, worker = heapq.heappop(events)
        trial, config, index, began = running[worker]
        step = int(table.steps(config)[index])
        trial.report(float(table.values(config)[index]), step)
        if step == table.max_step:
            study.tell(trial, table.finals[config])
        elif trial.should_prune():
            study.tell(trial, state=TrialState.PRUNED)
        else:
            running[worker][2] = index + 1
            heapq.heappush(events, (began + int(table.steps(config)[index + 1]), worker))
            continue
        del running[worker]
        start(worker, now)

    result = ReplayResult(direction=direction, n_workers=n_workers)
    frozen = {t.number: t for t in study.get_trials(deepcopy=False)}
    for number in numbers:
        t = frozen[number]
        epochs = t.last_step or 0
        result.trials.append(
            TrialRecord(
                number=number,
                config=t.user_attrs[CONFIG_ATTR],
                state=t.state,
                epochs=epochs,
                start=starts[number],
                end=starts[number] + epochs,
                final=t.value if t.state == TrialState.COMPLETE else None,
            )
        )
    return result
