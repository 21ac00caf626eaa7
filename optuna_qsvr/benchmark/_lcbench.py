"""LCBench's learning curves as a :class:`CurveTable`, read from the JSON files users download.

LCBench (Zimmer et al., 2021, https://github.com/automl/LCBench) trained 2,000 random
configurations of funnel-shaped MLPs for 50 epochs on each of 35 OpenML datasets. Its files
(``data_2k.json``, the lightweight ``data_2k_lw.json``, ``six_datasets_lw.json``, or one
dataset's file such as ``fashion_mnist.json``) all have the layout LCBench's ``api.py`` reads::

    {dataset_name: {config_id: {"log": {tag: [one value per logged epoch], ...},
                                "results": {name: final value, ...},
                                "config": {hyperparameter: value, ...}}}}

with per-epoch tags such as ``Train/val_accuracy`` (percent), ``Train/val_balanced_accuracy``,
``Train/val_cross_entropy``, ``Train/loss``, ``Train/test_result``, ``time`` and ``epoch``.
Every log holds 52 entries: position 0 is the network before any weight update ("epoch 0"),
positions 1 to 50 are the 50 training epochs, and the last entry repeats the end of training
(the LCBench notebooks drop it). Nothing is downloaded here.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import os
from collections.abc import Mapping
from typing import Any

from optuna_qsvr.benchmark._table import PARAM_PREFIX, CurveTable, CurveTableError

# LCBench trains every configuration for 50 epochs (cosine annealing with T_max = 50).
LCBENCH_EPOCHS = 50
_SHOWN = 8
_SHOWN_TAGS = 14


def load_lcbench(
    path: str | os.PathLike[str],
    dataset: str | None = None,
    metric: str = "Train/val_accuracy",
    *,
    epochs: int | None = LCBENCH_EPOCHS,
) -> CurveTable:
    """Read one dataset's curves from an LCBench JSON file (``.json`` or ``.json.gz``).

    Each configuration becomes one curve of ``metric`` with steps ``1..epochs``: the value
    logged after epoch ``k`` is step ``k``; the untrained network (position 0 of the log) and
    entries after ``epochs`` are left out. The configuration's hyperparameters become
    ``param_<name>`` columns; those with the same value in every configuration (LCBench's
    fixed settings: optimiser, scheduler, activation...) are dropped, leaving the searched
    ones (batch size, learning rate, momentum, weight decay, layers, units, dropout). When
    the logs have ``time`` (cumulative seconds since the start of the run), every row gets
    the configuration's mean seconds per epoch, ``(time[epochs] - time[0]) / epochs``, as its
    ``time`` (see :meth:`CurveTable.seconds_per_epoch`). The table's :attr:`CurveTable.metric`
    is ``metric``, from which the benchmark infers the direction (accuracies are maximised,
    ``Train/val_cross_entropy`` and ``Train/loss`` minimised).

    The whole file is parsed in memory, as LCBench's own ``api.py`` does; the lightweight
    ``_lw`` files need far less memory than ``data_2k.json``.

    Args:
        path:
            The JSON file, gzip-compressed when its name ends in ``.gz``.
        dataset:
            The dataset's name as in the file (``"Fashion-MNIST"``, ``"adult"``); may be
            omitted when the file holds a single dataset.
        metric:
            A per-epoch tag of the logs.
        epochs:
            Epochs to keep, from the first; ``None`` keeps every logged entry after position 0
            (51 for LCBench, the last a repeat).

    Raises:
        CurveTableError: The file is not in LCBench's layout, the dataset or the metric is
            missing, curves are too short or of different lengths (ragged), a value is not a
            finite number, or ``time`` is missing for some configurations only or is not
            cumulative.

    Example:

        .. code::

            table = load_lcbench("data_2k_lw.json", "Fashion-MNIST", "Train/val_cross_entropy")
            print(table, infer_direction(table.metric))  # ... 2000 configs ... minimize
    """
    if epochs is not None and epochs < 1:
        raise ValueError(f"epochs must be >= 1 or None, got {epochs}")
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as error:
            raise CurveTableError(f"{path}: not a JSON file: {error}") from None
    if not isinstance(data, dict) or not data:
        raise CurveTableError(
            f"{path}: not an LCBench file: expected an object of datasets, "
            "{dataset_name: {config_id: {'log': ..., 'config': ...}}}"
        )
    name = _pick_dataset(path, data, dataset)
    runs = data[name]
    source = f"{path} [{name}]"
    if not isinstance(runs, dict) or not runs:
        raise CurveTableError(f"{source}: no configurations (expected {{config_id: run}})")

    curves: dict[str, list[float]] = {}
    times: dict[str, list[Any] | None] = {}
    configs: dict[str, Mapping[str, Any]] = {}
    for config_id, run in runs.items():
        log = run.get("log") if isinstance(run, dict) else None
        if not isinstance(log, dict):
            raise CurveTableError(f"{source}: config {config_id!r} has no 'log' object")
        if metric not in log:
            raise CurveTableError(_missing_metric(source, config_id, metric, run))
        curves[config_id] = _curve(source, config_id, metric, log[metric])
        times[config_id] = log.get("time")
        config = run.get("config", {})
        if not isinstance(config, dict):
            raise CurveTableError(f"{source}: config {config_id!r}: 'config' is not an object")
        configs[config_id] = config

    n_epochs = _epochs_kept(source, metric, curves, epochs)
    seconds = _seconds_per_epoch(source, times, n_epochs)
    params = _varying_params(configs)
    rows = []
    for config_id, curve in curves.items():
        cells = {f"{PARAM_PREFIX}{p}": _param_text(configs[config_id].get(p)) for p in params}
        if seconds is not None:
            cells["time"] = repr(seconds[config_id])
        for step in range(1, n_epochs + 1):
            rows.append({"config": config_id, "step": step, "value": repr(curve[step]), **cells})
    return CurveTable.from_rows(rows, source=source, metric=metric)


def _pick_dataset(path: str, data: Mapping[str, Any], dataset: str | None) -> str:
    names = list(data)
    shown = ", ".join(map(repr, names[:_SHOWN])) + (", ..." if len(names) > _SHOWN else "")
    if dataset is None:
        if len(names) == 1:
            return names[0]
        raise CurveTableError(
            f"{path}: holds {len(names)} datasets; choose one with dataset=... ({shown})"
        )
    if dataset not in data:
        raise CurveTableError(f"{path}: no dataset {dataset!r}; it has {shown}")
    return dataset


def _missing_metric(source: str, config_id: str, metric: str, run: Mapping[str, Any]) -> str:
    # The full files also log dozens of gradient statistics per epoch; nobody replays those.
    tags = [t for t, v in run["log"].items() if isinstance(v, list) and "gradient" not in t]
    shown = ", ".join(map(repr, tags[:_SHOWN_TAGS])) + (", ..." if len(tags) > _SHOWN_TAGS else "")
    results = run.get("results")
    if isinstance(results, dict) and metric in results:
        return (
            f"{source}: {metric!r} is a final result, not a per-epoch log; "
            f"choose a per-epoch tag: {shown}"
        )
    return f"{source}: config {config_id!r} has no per-epoch {metric!r}; its logs have {shown}"


def _curve(source: str, config_id: str, metric: str, values: Any) -> list[float]:
    if not isinstance(values, list) or len(values) < 2:
        raise CurveTableError(
            f"{source}: config {config_id!r}, {metric!r}: expected a list of per-epoch values "
            f"(epoch 0 first), got {values!r:.60}"
        )
    curve = []
    for position, value in enumerate(values):
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        if number is None or not math.isfinite(number):
            raise CurveTableError(
                f"{source}: config {config_id!r}, {metric!r} at epoch {position}: {value!r} is "
                "not a finite number"
            )
        curve.append(number)
    return curve


def _epochs_kept(
    source: str, metric: str, curves: Mapping[str, list[float]], epochs: int | None
) -> int:
    lengths = {c: len(v) for c, v in curves.items()}
    if epochs is None:
        first, n = next(iter(lengths.items()))
        for config_id, length in lengths.items():
            if length != n:
                raise CurveTableError(
                    f"{source}: ragged curves: {metric!r} has {length} entries for config "
                    f"{config_id!r} but {n} for config {first!r}"
                )
        return n - 1
    for config_id, length in lengths.items():
        if length < epochs + 1:
            raise CurveTableError(
                f"{source}: ragged curves: config {config_id!r} logs {metric!r} for epochs 0 to "
                f"{length - 1} only, {epochs} epochs asked for (pass a smaller epochs=)"
            )
    return epochs


def _seconds_per_epoch(
    source: str, times: Mapping[str, list[Any] | None], n_epochs: int
) -> dict[str, float] | None:
    missing = [c for c, t in times.items() if t is None]
    if len(missing) == len(times):
        return None
    if missing:
        raise CurveTableError(
            f"{source}: config {missing[0]!r} logs no 'time' but others do "
            f"({len(missing)} of {len(times)} without)"
        )
    seconds = {}
    for config_id, log in times.items():
        clock = _curve(source, config_id, "time", log)
        if len(clock) < n_epochs + 1:
            raise CurveTableError(
                f"{source}: config {config_id!r} logs 'time' for epochs 0 to {len(clock) - 1} "
                f"only, {n_epochs} epochs kept"
            )
        kept = clock[: n_epochs + 1]
        if any(b < a for a, b in itertools.pairwise(kept)):
            raise CurveTableError(
                f"{source}: config {config_id!r}: 'time' decreases; expected cumulative seconds "
                "since the start of the run"
            )
        mean = (kept[-1] - kept[0]) / n_epochs
        if not mean > 0:
            raise CurveTableError(
                f"{source}: config {config_id!r}: 'time' does not advance over {n_epochs} epochs"
            )
        seconds[config_id] = mean
    return seconds


def _varying_params(configs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for config in configs.values():
        names.extend(n for n in config if n not in names)
    return [
        n
        for n in names
        if len({_param_text(c.get(n)) for c in configs.values()}) > 1 or len(configs) == 1
    ]


def _param_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # repr round-trips, so the table sees exactly the logged value.
        return repr(value)
    return json.dumps(value, sort_keys=True)
