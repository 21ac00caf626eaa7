"""Learning-curve tables: the recorded curves a benchmark replays, and the ones that ship."""

from __future__ import annotations

import csv
import gzip
import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import StudyDirection

REQUIRED_COLUMNS = ("config", "step", "value")
PARAM_PREFIX = "param_"
# Optional columns: seconds per epoch, and the name of the metric in ``value``.
TIME_COLUMN = "time"
METRIC_COLUMN = "metric"
# Words in a metric's name that say which way is better (see infer_direction).
_MINIMIZE_WORDS = frozenset(
    {
        "loss",
        "error",
        "err",
        "mse",
        "rmse",
        "mae",
        "nll",
        "perplexity",
        "ppl",
        "entropy",
        "crossentropy",
        "regret",
        "cost",
        "wer",
        "cer",
    }
)
_MAXIMIZE_WORDS = frozenset(
    {
        "accuracy",
        "acc",
        "auc",
        "auroc",
        "f1",
        "precision",
        "recall",
        "r2",
        "score",
        "iou",
        "map",
        "bleu",
        "rouge",
        "reward",
        "return",
        "fitness",
    }
)
# Values spanning more than this factor are suggested on a log scale.
_LOG_SPAN = 100.0
# Shipped as package data (pyproject.toml), next to this module in the wheel and the checkout.
_BUNDLED_DIR = Path(__file__).resolve().parent / "curves"
_BUNDLED_SUFFIX = ".csv.gz"


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
    value, e.g. rows a study wrote itself); :func:`bundled_table` gives the tables that ship
    with the package.

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
    ``time``            optional: seconds one epoch of the config takes up to this step (a
                        positive number; the recorded tables write the config's mean on every
                        row); the replay's simulated workers use it (see :func:`epoch_clock`)
    ``metric``          optional: the name of the metric in ``value`` (``val_loss``,
                        ``accuracy``), the same on every row; it lets the benchmark infer the
                        direction and reject one that contradicts the name
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

    Args:
        rows:
            Pairs ``(where, row)``: a description of the row's place used in error messages
            (``"line 7"``) and a mapping of column name to value.
        columns:
            The table's column names in order.
        source:
            Where the table came from, for messages.
        metric:
            The name of the metric in ``value``, when the rows have no ``metric`` column
            (a reader of another format knows it).

    Raises:
        CurveTableError: A required column is missing, a step is not a positive integer, a
            value is not finite, a ``(config, step)`` pair repeats, a hyperparameter changes
            between rows of one configuration, a ``time`` is not a positive number, or the
            ``metric`` differs between rows.
    """

    def __init__(
        self,
        rows: Iterable[tuple[str, Mapping[str, Any]]],
        columns: Sequence[str],
        *,
        source: str = "<rows>",
        metric: str | None = None,
    ) -> None:
        self.source = source
        has_time = TIME_COLUMN in columns
        has_metric = METRIC_COLUMN in columns
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
        seconds: dict[str, dict[int, float]] = {}
        metric_at: tuple[str, str] | None = None
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
            if has_time:
                time_text = _cell(row, TIME_COLUMN)
                duration = _parse_float(time_text)
                if duration is None or not math.isfinite(duration) or duration <= 0:
                    raise CurveTableError(
                        f"{source}: {where}, column {TIME_COLUMN!r}: {time_text!r} is not a "
                        "positive number of seconds per epoch"
                    )
                seconds.setdefault(config, {})[step] = duration
            if has_metric:
                name = _cell(row, METRIC_COLUMN)
                if metric_at is None:
                    metric_at = (name, where)
                elif name != metric_at[0]:
                    raise CurveTableError(
                        f"{source}: {where}, column {METRIC_COLUMN!r}: {name!r} here but "
                        f"{metric_at[0]!r} at {metric_at[1]}; one table holds one metric"
                    )
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
        self._seconds: dict[str, np.ndarray] | None = None
        if has_time:
            self._seconds = {
                c: np.array([seconds[c][s] for s in self._curves[c][0]]) for c in complete
            }
        #: The name of the metric in ``value``, or ``None`` when the table does not say.
        self.metric: str | None = (metric_at[0] or None) if metric_at is not None else metric
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
    def from_rows(
        cls,
        rows: Sequence[Mapping[str, Any]],
        *,
        source: str = "<rows>",
        metric: str | None = None,
    ) -> CurveTable:
        """Build a table from mappings of column name to value, one per ``(config, step)``.

        Args:
            rows:
                The rows; all have the columns of the first.
            source:
                Where the rows came from, for messages.
            metric:
                The name of the metric in ``value`` (when the rows have no ``metric``).
        """
        columns = list(rows[0]) if rows else list(REQUIRED_COLUMNS)
        return cls(
            ((f"row {i}", row) for i, row in enumerate(rows)),
            columns,
            source=source,
            metric=metric,
        )

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

    @property
    def has_times(self) -> bool:
        """Whether the table records epoch times (a ``time`` column)."""
        return self._seconds is not None

    def seconds_per_epoch(self, config: str) -> np.ndarray | None:
        """Seconds per epoch of ``config`` at each of its :meth:`steps`, or ``None``."""
        return None if self._seconds is None else self._seconds[config]

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

    def check_replayable(self, direction: str, n_trials: int | None = None) -> None:
        """Raise :class:`CurveTableError` unless a benchmark can compare pruners on the table.

        :meth:`load` accepts more than a fair comparison does: the benchmark needs every
        configuration to reach the last step (otherwise the exclusion changes what the
        methods are compared on), at least two steps per configuration (a pruner decides
        before the last), ``n_trials`` distinct configurations, and a direction that agrees
        with :attr:`metric`'s name (see :func:`infer_direction`).

        Args:
            direction:
                ``"minimize"`` or ``"maximize"``.
            n_trials:
                Trials per study, each a different configuration.
        """
        if self.excluded:
            shown = ", ".join(map(repr, self.excluded[:3]))
            more = ", ..." if len(self.excluded) > 3 else ""
            raise CurveTableError(
                f"{self.source}: ragged curves: {len(self.excluded)} of "
                f"{len(self.excluded) + len(self)} configurations end before the last step "
                f"{self.max_step} ({shown}{more}); drop or complete them"
            )
        short = [c for c in self.configs if len(self.steps(c)) < 2]
        if short:
            raise CurveTableError(
                f"{self.source}: configuration {short[0]!r} has a single step "
                f"({int(self.steps(short[0])[0])}); pruning needs at least two steps per curve"
            )
        if n_trials is not None and n_trials > len(self):
            raise CurveTableError(
                f"{self.source}: {n_trials} trials asked for but the table has only "
                f"{len(self)} configurations; pass --n-trials {len(self)} or fewer"
            )
        self.check_direction(direction)

    def check_direction(self, direction: str) -> None:
        """Raise :class:`CurveTableError` when :attr:`metric`'s name implies the other
        direction (see :func:`infer_direction`); a name that implies none passes."""
        implied = infer_direction(self.metric)
        if implied is not None and implied != _direction(direction):
            raise CurveTableError(
                f"{self.source}: direction {direction!r} contradicts the metric "
                f"{self.metric!r}, which is better when it is "
                f"{'lower' if implied == 'minimize' else 'higher'}; pass --direction {implied}"
            )


def infer_direction(metric: str | None) -> str | None:
    """The direction a metric's name implies, or ``None`` when it says nothing clear.

    The name is split into lowercase words at any non-alphanumeric character
    (``"Train/val_balanced_accuracy"`` gives ``train, val, balanced, accuracy``). Words such
    as ``loss``, ``error``, ``mse``, ``rmse``, ``mae``, ``nll``, ``perplexity``,
    ``entropy`` mean ``"minimize"``; ``accuracy``, ``acc``, ``auc``, ``f1``,
    ``precision``, ``recall``, ``r2``, ``score``, ``iou``, ``bleu``, ``reward`` mean
    ``"maximize"``. A name with words of both kinds, or of neither, gives ``None``.

    Args:
        metric:
            The metric's name, or ``None``.
    """
    if not metric:
        return None
    words = set(re.split(r"[^0-9a-z]+", metric.lower()))
    lower, higher = bool(words & _MINIMIZE_WORDS), bool(words & _MAXIMIZE_WORDS)
    if lower == higher:
        return None
    return "minimize" if lower else "maximize"


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


def _direction(direction: str | StudyDirection) -> str:
    if isinstance(direction, StudyDirection):
        return "minimize" if direction == StudyDirection.MINIMIZE else "maximize"
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
    return direction


def bundled_tables() -> dict[str, Path]:
    """The learning-curve tables that ship with the package, by name, sorted.

    ``cnn_digits`` (a CNN on scikit-learn's digits, accuracy, maximize), ``lstm_babi17`` (an
    LSTM on generated bAbI task 17, accuracy, maximize) and ``mlpf_delphes_sim`` (an
    MLPF-style network on simulated Delphes events, loss, minimize): 200 configurations of 50
    epochs each, recorded by the scripts under ``studies/`` in the source repository.
    """
    paths = sorted(_BUNDLED_DIR.glob(f"*{_BUNDLED_SUFFIX}"))
    return {p.name.removesuffix(_BUNDLED_SUFFIX): p for p in paths}


def bundled_table(name: str) -> Path:
    """The path of the bundled table ``name``, for :meth:`CurveTable.load`.

    Args:
        name:
            One of the names of :func:`bundled_tables`, e.g. ``"cnn_digits"``.

    Example:

        .. code::

            table = CurveTable.load(bundled_table("mlpf_delphes_sim"))
    """
    tables = bundled_tables()
    if name not in tables:
        raise ValueError(
            f"no bundled table {name!r}; choose one of {', '.join(map(repr, tables))}"
        )
    return tables[name]
