"""Replay recorded learning curves through real Optuna studies.

A learning-curve table is a CSV file, optionally gzip-compressed (``.gz``), with one row per
configuration and reported epoch:

==================  ==========================================================================
column              meaning
==================  ==========================================================================
``config``          identifier of the configuration (any string)
``step``            1-based epoch (integer); gaps are allowed, e.g. a value every 2 epochs
``value``           the metric reported at that epoch (finite number)
``param_<name>``    one column per hyperparameter; the same value on every row of a config,
                    empty when the hyperparameter does not apply to that config
==================  ==========================================================================

Other columns are ignored. The table's last epoch ``max_step`` is the largest ``step``; a
configuration's final value is its value at ``max_step``, and configurations that never reach
``max_step`` are excluded with a warning. For example::

    config,step,value,param_lr,param_layers,param_act
    0,1,0.93,0.001,2,relu
    0,2,0.71,0.001,2,relu
    1,1,0.88,0.1,3,tanh
    1,2,0.80,0.1,3,tanh

Numeric ``param_`` columns become :class:`~optuna.distributions.IntDistribution` or
:class:`~optuna.distributions.FloatDistribution` (on a log scale when every value is positive
and they span more than a factor 100); other columns become
:class:`~optuna.distributions.CategoricalDistribution`.

A replayed trial picks a configuration (enqueued with :func:`enqueue_config`), reports its
recorded values epoch by epoch and obeys the study's pruner, so any Optuna pruner can be
compared on the curves of past runs without training anything. :func:`replay_async` simulates
several asynchronous workers in virtual time (one epoch is one time unit per worker) through
Optuna's ask-and-tell interface; :func:`make_objective` is the same replay for
:meth:`optuna.study.Study.optimize`.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
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

__all__ = [
    "CurveTable",
    "CurveTableError",
    "ReplayResult",
    "TrialRecord",
    "enqueue_config",
    "make_objective",
    "replay_async",
]

REQUIRED_COLUMNS = ("config", "step", "value")
PARAM_PREFIX = "param_"
# The user attribute that ties a replayed trial to its row of the table.
CONFIG_ATTR = "config"
# Values spanning more than this factor are suggested on a log scale.
_LOG_SPAN = 100.0


class CurveTableError(ValueError):
    """A learning-curve table that does not follow the format; the message names the place."""


def _parse_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    # "3.0" is an integer step written by a float formatter (pandas, numpy).
    if math.isfinite(number) and number.is_integer():
        return int(number)
    return None


def _strict_int(text: str) -> int | None:
    # Parameters keep the type they were written with: "32" is an int, "32.0" a float.
    try:
        return int(text)
    except ValueError:
        return None


def _parse_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


class CurveTable:
    """Learning curves of past runs, validated, with one final value per configuration.

    Build one with :meth:`load` (a CSV file) or :meth:`from_rows` (mappings of column name to
    value, e.g. rows a study wrote itself). See the module docstring for the format.

    Args:
        rows:
            Pairs ``(where, row)``: a description of the row's place used in error messages
            (``"line 7"``) and a mapping of column name to value.
        columns:
            The table's column names in order.
        source:
            Where the table came from, for messages.

    Raises:
        CurveTableError: A required column is missing, a step is not a positive integer, a
            value is not finite, a ``(config, step)`` pair repeats, or a hyperparameter
            changes between rows of one configuration.
    """

    def __init__(
        self,
        rows: Iterable[tuple[str, Mapping[str, Any]]],
        columns: Sequence[str],
        *,
        source: str = "<rows>",
    ) -> None:
        self.source = source
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise CurveTableError(
                f"{source}: missing column(s) {', '.join(map(repr, missing))}; a learning-curve "
                f"table needs {', '.join(REQUIRED_COLUMNS)} and param_<name> columns, "
                f"got {list(columns)}"
            )
        param_columns = [c for c in columns if c.startswith(PARAM_PREFIX)]
        for column in param_columns:
            if column == PARAM_PREFIX:
                raise CurveTableError(f"{source}: column {column!r} has no parameter name")
        self.param_names: tuple[str, ...] = tuple(c[len(PARAM_PREFIX) :] for c in param_columns)

        points: dict[str, dict[int, float]] = {}
        raw_params: dict[str, dict[str, str]] = {}
        first_seen: dict[str, str] = {}
        n_rows = 0
        for where, row in rows:
            n_rows += 1
            config = _cell(row, "config")
            if config == "":
                raise CurveTableError(f"{source}: {where}, column 'config': empty identifier")
            step_text = _cell(row, "step")
            step = _parse_int(step_text)
            if step is None or step < 1:
                raise CurveTableError(
                    f"{source}: {where}, column 'step': {step_text!r} is not a 1-based "
                    "integer epoch"
                )
            value_text = _cell(row, "value")
            value = _parse_float(value_text)
            if value is None or not math.isfinite(value):
                raise CurveTableError(
                    f"{source}: {where}, column 'value': {value_text!r} is not a finite number"
                )
            curve = points.setdefault(config, {})
            if step in curve:
                raise CurveTableError(
                    f"{source}: {where}: config {config!r} has step {step} twice"
                )
            curve[step] = value
            params = raw_params.setdefault(config, {})
            if config not in first_seen:
                first_seen[config] = where
                for name, column in zip(self.param_names, param_columns, strict=True):
                    params[name] = _cell(row, column)
            else:
                for name, column in zip(self.param_names, param_columns, strict=True):
                    text = _cell(row, column)
                    if text != params[name]:
                        raise CurveTableError(
                            f"{source}: {where}, column {column!r}: config {config!r} has "
                            f"{text!r} here but {params[name]!r} at {first_seen[config]}"
                        )
        if n_rows == 0:
            raise CurveTableError(f"{source}: the table has no rows")

        self.max_step: int = max(max(curve) for curve in points.values())
        complete = [c for c in points if self.max_step in points[c]]
        excluded = [c for c in points if self.max_step not in points[c]]
        if excluded:
            shown = ", ".join(map(repr, excluded[:5])) + (", ..." if len(excluded) > 5 else "")
            warnings.warn(
                f"{source}: {len(excluded)} of {len(points)} configurations never reach the "
                f"table's last step {self.max_step} and are excluded: {shown}",
                UserWarning,
                stacklevel=2,
            )
        self.configs: tuple[str, ...] = tuple(complete)
        self.excluded: tuple[str, ...] = tuple(excluded)
        self._curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for config in complete:
            steps = np.array(sorted(points[config]), dtype=int)
            values = np.array([points[config][s] for s in steps], dtype=float)
            self._curves[config] = (steps, values)
        self.finals: dict[str, float] = {c: points[c][self.max_step] for c in complete}
        self._distributions, self._params = _infer_params(
            self.param_names, {c: raw_params[c] for c in complete}
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CurveTable:
        """Read a table from a CSV file, gzip-compressed when its name ends in ``.gz``.

        Args:
            path:
                The file.
        """
        path = os.fspath(path)
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                raise CurveTableError(f"{path}: the file is empty") from None

            def rows() -> Iterable[tuple[str, Mapping[str, Any]]]:
                for record in reader:
                    if not record:
                        continue
                    if len(record) != len(header):
                        raise CurveTableError(
                            f"{path}: line {reader.line_num} has {len(record)} fields, the "
                            f"header has {len(header)}"
                        )
                    yield f"line {reader.line_num}", dict(zip(header, record, strict=True))

            return cls(rows(), header, source=path)

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]], *, source: str = "<rows>") -> CurveTable:
        """Build a table from mappings of column name to value, one per ``(config, step)``.

        Args:
            rows:
                The rows; all have the columns of the first.
            source:
                Where the rows came from, for messages.
        """
        columns = list(rows[0]) if rows else list(REQUIRED_COLUMNS)
        return cls(((f"row {i}", row) for i, row in enumerate(rows)), columns, source=source)

    def __len__(self) -> int:
        return len(self.configs)

    def __repr__(self) -> str:
        return (
            f"CurveTable({self.source!r}: {len(self)} configs, max_step {self.max_step}, "
            f"params {list(self.param_names)})"
        )

    def steps(self, config: str) -> np.ndarray:
        """The epochs at which ``config`` has a value, ascending; the last is ``max_step``."""
        return self._curves[config][0]

    def values(self, config: str) -> np.ndarray:
        """The recorded values of ``config``, aligned with :meth:`steps`."""
        return self._curves[config][1]

    def params(self, config: str) -> dict[str, Any]:
        """The hyperparameters of ``config`` that apply to it, as Optuna would suggest them."""
        return dict(self._params[config])

    def best_final(self, direction: str) -> float:
        """The best final value in the table, for ``"minimize"`` or ``"maximize"``."""
        finals = self.finals.values()
        return min(finals) if _direction(direction) == "minimize" else max(finals)

    def distributions(self) -> dict[str, BaseDistribution]:
        """Optuna distributions covering every configuration's hyperparameters."""
        return dict(self._distributions)


def _cell(row: Mapping[str, Any], column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value).strip()


def _infer_params(
    names: Sequence[str], raw: Mapping[str, Mapping[str, str]]
) -> tuple[dict[str, BaseDistribution], dict[str, dict[str, Any]]]:
    distributions: dict[str, BaseDistribution] = {}
    params: dict[str, dict[str, Any]] = {c: {} for c in raw}
    for name in names:
        texts = {c: p[name] for c, p in raw.items() if p[name] != ""}
        if not texts:
            continue
        ints = {c: _strict_int(t) for c, t in texts.items()}
        floats = {c: _parse_float(t) for c, t in texts.items()}
        typed: dict[str, Any]
        if all(v is not None for v in ints.values()):
            typed = ints
            low, high = min(typed.values()), max(typed.values())
            log = low > 0 and high / low > _LOG_SPAN
            distributions[name] = IntDistribution(low, high, log=log)
        elif all(v is not None and math.isfinite(v) for v in floats.values()):
            typed = floats
            low, high = min(typed.values()), max(typed.values())
            log = low > 0 and high / low > _LOG_SPAN
            distributions[name] = FloatDistribution(low, high, log=log)
        else:
            typed = dict(texts)
            distributions[name] = CategoricalDistribution(sorted(set(texts.values())))
        for config, value in typed.items():
            params[config][name] = value
    return distributions, params


def _direction(direction: str | optuna.study.StudyDirection) -> str:
    if isinstance(direction, optuna.study.StudyDirection):
        return "minimize" if direction == optuna.study.StudyDirection.MINIMIZE else "maximize"
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
    return direction


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


def make_objective(table: CurveTable) -> Callable[[optuna.trial.Trial], float]:
    """An objective for :meth:`~optuna.study.Study.optimize` that replays enqueued configs.

    Each trial reports its configuration's recorded values step by step and raises
    :class:`optuna.TrialPruned` when the pruner says so. The pruner is not asked after the
    last step: stopping then saves no epoch, and the final value is what the benchmark
    compares.

    Args:
        table:
            The curves to replay. Enqueue one configuration per trial with
            :func:`enqueue_config`.

    Example:

        .. code::

            study = optuna.create_study(pruner=optuna.pruners.HyperbandPruner())
            for config in table.configs[:20]:
                enqueue_config(study, table, config)
            study.optimize(make_objective(table), n_trials=20)
    """
    distributions = table.distributions()

    def objective(trial: optuna.trial.Trial) -> float:
        config = _suggest_config(trial, table, distributions)
        steps, values = table.steps(config).tolist(), table.values(config).tolist()
        for step, value in zip(steps, values, strict=True):
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
    if n_workers < 1:
        raise ValueError(f"n_workers must be >= 1, got {n_workers}")
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
