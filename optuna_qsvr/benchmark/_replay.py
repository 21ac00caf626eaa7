"""Replay recorded learning curves through real Optuna studies.

A replayed trial picks a configuration of a :class:`CurveTable`, reports its recorded values
epoch by epoch and obeys the study's pruner, so any Optuna pruner can be compared on the curves
of past runs without training anything. :func:`replay_async` simulates several asynchronous
workers in virtual time through Optuna's ask-and-tell interface, each configuration's epochs
taking the time :func:`epoch_clock` gives them; :func:`make_objective` is the same replay for
:meth:`optuna.study.Study.optimize`, in one process or in many workers sharing a storage.
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

EPOCH_TIME_MODES = ("auto", "equal", "table", "draw")
# Spread of the drawn per-configuration epoch times: log-normal, median 1, sigma 0.5 (the
# middle two thirds of configurations take 0.6 to 1.65 time units per epoch).
DRAW_SIGMA = 0.5
# Second word of the draw's seed, so the draw never shares a stream with the permutation.
_DRAW_STREAM = 0x51F7

# Per configuration: (recorded steps, virtual time from the trial's start to each step).
Clock = Mapping[str, tuple[np.ndarray, np.ndarray]]


def epoch_clock(table: CurveTable, mode: str = "auto", seed: int = 0) -> dict[str, Any] | None:
    """How long each configuration's epochs take in a replay: the virtual time of each step.

    ``"equal"``: every epoch takes one time unit, the replay's historic model (returns
    ``None``). ``"table"``: the table's ``time`` column, seconds per epoch (time units are
    seconds). ``"draw"``: one epoch time per configuration, drawn log-normal with median 1 and
    sigma :data:`DRAW_SIGMA` from ``numpy.random.default_rng((seed, 0x51F7))`` in the order of
    ``table.configs``: every method of a seed sees the same times, another seed other ones.
    ``"auto"``: ``"table"`` when the table has a ``time`` column, else ``"draw"``.

    With one worker the times change no decision (trials run one after the other whatever
    they take). With several, they decide which trial reaches a rung first, which changes
    what asynchronous pruners decide and how long the run takes (its makespan): the point of
    giving configurations their own speed.

    Args:
        table:
            The table.
        mode:
            One of :data:`EPOCH_TIME_MODES`.
        seed:
            Seed of the ``"draw"`` mode.

    Returns:
        Per configuration ``(steps, time of each step from the trial's start)``, or ``None``
        for ``"equal"``.
    """
    if mode not in EPOCH_TIME_MODES:
        raise ValueError(f"epoch time mode must be one of {EPOCH_TIME_MODES}, got {mode!r}")
    if mode == "auto":
        mode = "table" if table.has_times else "draw"
    if mode == "equal":
        return None
    clock: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if mode == "table":
        if not table.has_times:
            raise ValueError(f"{table.source} has no {'time'!r} column to take epoch times from")
        for config in table.configs:
            steps = table.steps(config)
            seconds = table.seconds_per_epoch(config)
            assert seconds is not None
            clock[config] = (steps, np.cumsum(np.diff(steps, prepend=0) * seconds))
        return clock
    rng = np.random.default_rng((seed, _DRAW_STREAM))
    factors = rng.lognormal(0.0, DRAW_SIGMA, size=len(table.configs))
    for config, factor in zip(table.configs, factors, strict=True):
        steps = table.steps(config)
        clock[config] = (steps, steps * float(factor))
    return clock


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
        state: ``TrialState.COMPLETE``, ``TrialState.PRUNED``, or ``TrialState.FAIL`` for a
            trial cut short when the epoch budget ran out.
        epochs: Epochs trained (its last reported step).
        start: Virtual time at which its worker started it.
        end: Virtual time at which it finished (``start + epochs`` when every epoch takes
            one time unit).
        final: The recorded final value when it completed, else ``None``.
    """

    number: int
    config: str
    state: TrialState
    epochs: int
    start: float
    end: float
    final: float | None


@dataclass
class ReplayResult:
    """The outcome of one replay: per-trial records and the best-final trajectory.

    Args:
        direction: ``"minimize"`` or ``"maximize"``.
        n_workers: The number of simulated workers.
        trials: One record per trial, by trial number.
        clock: The :func:`epoch_clock` of the replay; ``None`` when every epoch took one time
            unit.
    """

    direction: str
    n_workers: int
    trials: list[TrialRecord] = field(default_factory=list)
    clock: Clock | None = None

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
    def n_cut(self) -> int:
        """Trials stopped because the epoch budget ran out."""
        return sum(t.state == TrialState.FAIL for t in self.trials)

    @property
    def makespan(self) -> float:
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
        sign = 1.0 if self.direction == "minimize" else -1.0
        points: list[tuple[int, float]] = []
        best = math.inf
        for t in sorted(self.trials, key=lambda t: (t.end, t.number)):
            if t.final is None or sign * t.final >= best:
                continue
            best = sign * t.final
            points.append((self.epochs_by(t.end), t.final))
        return points

    def epochs_by(self, time: float) -> int:
        """Epochs all workers had trained by virtual time ``time``, partial trials included."""
        if self.clock is None:
            starts = np.array([t.start for t in self.trials])
            lengths = np.array([t.epochs for t in self.trials])
            return int(np.clip(time - starts, 0, lengths).sum())
        spent = 0.0
        for t in self.trials:
            if time <= t.start:
                continue
            steps, times = self.clock[t.config]
            # Epochs within a step's span are trained at an even pace.
            trained = np.interp(time - t.start, np.r_[0.0, times], np.r_[0, steps])
            spent += min(float(trained), t.epochs)
        # A float sum of whole epochs can land a hair under the integer.
        return int(spent + 1e-6)


def replay_async(
    study: optuna.study.Study,
    table: CurveTable,
    config_sequence: Sequence[str] | None,
    n_workers: int = 1,
    *,
    clock: Clock | None = None,
    budget: int | None = None,
    n_trials: int | None = None,
) -> ReplayResult:
    """Replay configurations on ``n_workers`` simulated asynchronous workers.

    Every worker holds one running trial. Events (a trial reaching one of its recorded steps,
    at the virtual time ``clock`` gives that step) are processed in virtual-time order, ties
    by worker index, so a run is deterministic. At each event the value is reported and
    ``trial.should_prune()`` is asked; the trial is told ``PRUNED`` when it says so, or
    ``COMPLETE`` with its final value at the table's last step. A worker that finishes starts
    the next configuration at once, until every one has started. With one worker this is the
    sequential case, identical to :func:`make_objective` under ``study.optimize`` whatever
    the clock.

    Args:
        study:
            A single-objective study with no waiting trials; its pruner makes the decisions.
        table:
            The recorded curves.
        config_sequence:
            The configuration of trial ``i`` (as numbered from the first one this call
            starts), in start order. ``None``: the study's sampler, a
            :class:`~optuna_qsvr.benchmark.TableSampler` over ``table``, chooses each
            trial's configuration, for ``n_trials`` trials.
        n_workers:
            Number of simulated workers.
        clock:
            Virtual time of every step from its trial's start, per configuration, as
            :func:`epoch_clock` returns; ``None``: each epoch takes one time unit.
        budget:
            Stop when the epochs reported by all trials would exceed this many: the event
            that would cross it is not replayed and every running trial is told ``FAIL``
            (counted with the epochs it reported). ``None``: no limit.
        n_trials:
            Trials to run when the sampler chooses the configurations.

    Returns:
        Per-trial records of the trials started by this call.
    """
    n_workers = check_int("n_workers", n_workers, 1)
    if budget is not None:
        budget = check_int("budget", budget, 1)
    chooser: Any = None
    if config_sequence is None:
        from optuna_qsvr.benchmark._samplers import TableSampler

        chooser = study.sampler
        if not isinstance(chooser, TableSampler) or chooser.table is not table:
            raise ValueError(
                "without a config_sequence the study's sampler must be a TableSampler over "
                "the replayed table"
            )
        n_total = check_int("n_trials", n_trials, 1)
    else:
        unknown = [c for c in config_sequence if c not in table.finals]
        if unknown:
            raise KeyError(f"configs not in {table.source}: {unknown[:5]}")
        n_total = len(config_sequence)
    if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        raise ValueError("the study has waiting (enqueued) trials; replay needs it without them")
    direction = _direction(study.direction)
    distributions = table.distributions()

    def time_of(config: str, index: int) -> float:
        if clock is None:
            return float(table.steps(config)[index])
        return float(clock[config][1][index])

    # Per worker: [trial, config, index of its next recorded step, start time].
    running: dict[int, list[Any]] = {}
    events: list[tuple[float, int]] = []
    starts: dict[int, float] = {}
    numbers: list[int] = []
    n_started = 0
    spent = 0

    def start(worker: int, now: float) -> None:
        nonlocal n_started
        if n_started >= n_total:
            return
        if chooser is None:
            enqueue_config(study, table, config_sequence[n_started])
            trial = study.ask()
        else:
            trial = study.ask()
            trial.set_user_attr(CONFIG_ATTR, chooser.choose(trial))
        n_started += 1
        config = _suggest_config(trial, table, distributions)
        starts[trial.number] = now
        numbers.append(trial.number)
        running[worker] = [trial, config, 0, now]
        heapq.heappush(events, (now + time_of(config, 0), worker))

    for worker in range(n_workers):
        start(worker, 0)
    while events:
        now, worker = heapq.heappop(events)
        trial, config, index, began = running[worker]
        steps = table.steps(config)
        step = int(steps[index])
        if budget is not None:
            spent += step - (int(steps[index - 1]) if index else 0)
            if spent > budget:
                for _, (cut, *_) in sorted(running.items()):
                    study.tell(cut, state=TrialState.FAIL)
                break
        trial.report(float(table.values(config)[index]), step)
        if step == table.max_step:
            study.tell(trial, table.finals[config])
        elif trial.should_prune():
            study.tell(trial, state=TrialState.PRUNED)
        else:
            running[worker][2] = index + 1
            heapq.heappush(events, (began + time_of(config, index + 1), worker))
            continue
        del running[worker]
        start(worker, now)

    result = ReplayResult(direction=direction, n_workers=n_workers, clock=clock)
    frozen = {t.number: t for t in study.get_trials(deepcopy=False)}
    for number in numbers:
        t = frozen[number]
        config = t.user_attrs[CONFIG_ATTR]
        epochs = t.last_step or 0
        index = int(np.searchsorted(table.steps(config), epochs))
        end = starts[number] + (time_of(config, index) if epochs else 0.0)
        result.trials.append(
            TrialRecord(
                number=number,
                config=config,
                state=t.state,
                epochs=epochs,
                start=starts[number],
                end=end,
                final=t.value if t.state == TrialState.COMPLETE else None,
            )
        )
    return result
