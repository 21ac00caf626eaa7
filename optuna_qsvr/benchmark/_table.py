"""Learning-curve tables: the recorded curves a benchmark replays, and the ones that ship."""

from __future__ import annotations

import csv
import gzip
import math
import os
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
