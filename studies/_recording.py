"""What the held-out recording scripts share: parallel training, the table file, rank statistics.

A recording script supplies a *task*: a module-level function that builds the data once per
process, and one that trains a configuration and returns its curve. :func:`record` runs the
configurations in ``processes`` worker processes (one torch thread each), keeps finished
configurations in ``<out>.partial`` so an interrupted recording resumes, and writes the gzipped
table in the format of :class:`optuna_qsvr.benchmark.CurveTable`, sorted by configuration and
step whatever order the workers finish in.

Besides ``config, step, value, param_<name>`` the table has a ``metric`` column (the metric's
name, from which the benchmark infers the direction) and a ``time`` column: the configuration's
median CPU seconds per epoch of training and validation (process time of its worker, less
sensitive to other jobs than wall time), the same on every row of the configuration; the
replay's simulated workers use it. It is the only column a rerun does not reproduce exactly.

Exactly means on the same machine and torch build: every run is seeded and uses one thread, so
a rerun there writes the same values (tested). On another CPU, torch's kernels may round
differently, and a run that amplifies small differences (a high learning rate) drifts: of the
first 8 configurations of ``mlp_mnist1d``, recorded on 30 November 2026, 6 reproduce to 1e-7
on this machine and 2 drift from epoch 3 and 14, by up to 0.041. The script as it was then
drifts the same way, so the cause is the machine or the torch build, not the script.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import gzip
import io
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Set in each worker by _init_worker: the task's data, built once per process.
_DATA: Any = None
_TRAIN: Callable[..., Iterable[float]] | None = None


@dataclass(frozen=True)
class Curve:
    """One configuration's recorded curve.

    Args:
        index: The configuration's position in the draws (its ``config`` identifier).
        values: The metric after each epoch, finite.
        seconds_per_epoch: Median CPU seconds per epoch of training and evaluation.
    """

    index: int
    values: tuple[float, ...]
    seconds_per_epoch: float


def add_arguments(parser: argparse.ArgumentParser, *, default_out: Path) -> None:
    """The options every recording script has."""
    parser.add_argument("--out", type=Path, default=default_out, help="the .csv.gz to write")
    parser.add_argument("--configs", type=int, default=200, help="random configurations")
    parser.add_argument("--epochs", type=int, default=50, help="epochs per configuration")
    parser.add_argument("--processes", type=int, default=2, help="configurations in parallel")
    parser.add_argument("--seed", type=int, default=0, help="seeds data, draws and every run")


def _init_worker(make_data: Callable[..., Any], data_args: Mapping[str, Any], train) -> None:
    global _DATA, _TRAIN
    import torch

    # Curves are reproducible only for a fixed thread count; one also leaves cores to others.
    torch.set_num_threads(1)
    _DATA = make_data(**data_args)
    _TRAIN = train


def _run_one(index: int, params: Mapping[str, Any], epochs: int, seed: int) -> Curve:
    assert _TRAIN is not None, "worker not initialised"
    values, seconds = [], []
    start = time.process_time()
    for value in _TRAIN(params, _DATA, epochs, seed=seed):
        values.append(float(value))
        seconds.append(time.process_time() - start)
        start = time.process_time()
    if not 1 <= len(values) <= epochs or not all(math.isfinite(v) for v in values):
        raise RuntimeError(f"config {index}: expected 1 to {epochs} finite values, got {values}")
    # A run that stopped early diverged: its last value stands for the remaining epochs.
    values += values[-1:] * (epochs - len(values))
    # The median ignores the one-off start-up cost of a worker's first configuration.
    return Curve(index, tuple(values), float(np.median(seconds)))


def record(
    out: Path,
    *,
    configs: Sequence[Mapping[str, Any]],
    epochs: int,
    seed: int,
    processes: int,
    make_data: Callable[..., Any],
    data_args: Mapping[str, Any],
    train: Callable[..., Iterable[float]],
    metric: str,
    value_format: str = "{:.4f}",
) -> list[Curve]:
    """Train every configuration for ``epochs`` epochs and write the table to ``out``.

    Args:
        out: The gzipped CSV to write; ``<out>.partial`` holds progress until it is written.
        configs: The hyperparameters of each configuration, all with the same keys.
        epochs: Epochs per configuration.
        seed: Configuration ``i`` trains with seed ``seed + i``.
        processes: Worker processes (1 trains in this process).
        make_data: Module-level function building the task's data from ``data_args``.
        data_args: Keyword arguments of ``make_data``.
        train: Module-level generator function ``train(params, data, epochs, seed=...)``
            yielding the value after each epoch (timed epoch by epoch); a run that diverges
            stops early and its last value is recorded for the remaining epochs.
        metric: The name of the metric, written in a ``metric`` column (it tells the
            benchmark which direction is better).
        value_format: How a value is written.
    """
    names = list(configs[0])
    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {c.index: c for c in _read_partial(partial, epochs)}
    todo = [i for i in range(len(configs)) if i not in done]
    if done:
        print(f"resuming: {len(done)} configurations already in {partial}", flush=True)
    start = time.perf_counter()
    with open(partial, "a", newline="") as f:

        def keep(curve: Curve) -> None:
            done[curve.index] = curve
            # A configuration is written in one call, so a resume never sees half of it.
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows(
                [curve.index, step, repr(v), repr(curve.seconds_per_epoch)]
                for step, v in enumerate(curve.values, start=1)
            )
            f.write(text.getvalue())
            f.flush()
            elapsed = time.perf_counter() - start
            finished = len(done) - (len(configs) - len(todo))
            remaining = elapsed / finished * (len(configs) - len(done))
            print(
                f"config {curve.index} ({len(done)}/{len(configs)}): "
                f"final {curve.values[-1]:.4f}, at epoch {min(5, epochs)} "
                f"{curve.values[min(4, epochs - 1)]:.4f}, "
                f"{curve.seconds_per_epoch:.2f} s/epoch CPU; {elapsed:.0f} s elapsed, "
                f"~{remaining:.0f} s to go",
                flush=True,
            )

        if processes <= 1:
            _init_worker(make_data, data_args, train)
            for i in todo:
                keep(_run_one(i, configs[i], epochs, seed + i))
        else:
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(
                max_workers=processes,
                mp_context=context,
                initializer=_init_worker,
                initargs=(make_data, dict(data_args), train),
            ) as pool:
                futures = [pool.submit(_run_one, i, configs[i], epochs, seed + i) for i in todo]
                for future in concurrent.futures.as_completed(futures):
                    keep(future.result())

    curves = [done[i] for i in range(len(configs))]
    write_table(out, curves, configs, names, metric, value_format)
    partial.unlink()
    return curves


def _read_partial(path: Path, epochs: int) -> list[Curve]:
    if not path.exists():
        return []
    points: dict[int, dict[int, tuple[float, float]]] = {}
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if len(row) == 4:
                index, step, value, seconds = row
                points.setdefault(int(index), {})[int(step)] = (float(value), float(seconds))
    curves = []
    for index, steps in points.items():
        if sorted(steps) == list(range(1, epochs + 1)):
            values = tuple(steps[s][0] for s in range(1, epochs + 1))
            curves.append(Curve(index, values, steps[1][1]))
    return curves


def write_table(
    out: Path,
    curves: Sequence[Curve],
    configs: Sequence[Mapping[str, Any]],
    names: Sequence[str],
    metric: str,
    value_format: str = "{:.4f}",
) -> None:
    """Write the curves as a gzipped CSV atomically; the same curves give the same bytes.

    Args:
        out: The file.
        curves: The recorded curves.
        configs: Every configuration's hyperparameters, by index.
        names: The hyperparameters to write, as ``param_<name>`` columns.
        metric: The metric's name, for the ``metric`` column.
        value_format: How a value is written.
    """
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["config", "step", "value", *(f"param_{n}" for n in names), "time", "metric"])
    for curve in sorted(curves, key=lambda c: c.index):
        params = [format_param(configs[curve.index][n]) for n in names]
        seconds = f"{curve.seconds_per_epoch:.4g}"
        for step, value in enumerate(curve.values, start=1):
            writer.writerow(
                [curve.index, step, value_format.format(value), *params, seconds, metric]
            )
    tmp = out.with_name(out.name + ".tmp")
    # mtime=0 keeps the gzip bytes identical across reruns.
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(text.getvalue().encode())
    os.replace(tmp, out)


def optimizer_and_schedule(model: Any, params: Mapping[str, Any], total_steps: int) -> tuple:
    """The optimiser of a configuration (``"adam"``, else SGD with Nesterov momentum 0.9, both
    with its ``learning_rate`` and ``weight_decay``) and its per-step learning-rate schedule:
    cosine from the full rate to 0 over ``total_steps`` when ``schedule`` is ``"cosine"``,
    else constant."""
    import torch

    lr, decay = float(params["learning_rate"]), float(params["weight_decay"])
    if params["optimizer"] == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=decay)
    else:
        optimizer = torch.optim.SGD(
            model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=decay
        )
    cosine = params["schedule"] == "cosine"
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: 0.5 * (1 + math.cos(math.pi * step / total_steps)) if cosine else 1.0,
    )
    return optimizer, scheduler


def format_param(value: Any) -> str:
    """Ints stay ints, floats get 6 significant digits, anything else its ``str``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return str(value) if isinstance(value, int) else f"{value:.6g}"


def rank_summary(curves: Sequence[Curve], direction: str, *, early: int = 5) -> dict[str, Any]:
    """How well the ranking at epoch ``early`` predicts the final ranking.

    Returns ``spearman`` (rank correlation of the values at ``early`` and at the last epoch),
    ``discordant_pairs`` (the fraction of configuration pairs whose order flips between the
    two, i.e. whose curves cross after ``early``), ``late_bloomers`` (configurations in the
    final top 10% that were not in the top 10% at ``early``) and ``top10`` (that top size).

    Args:
        curves: The recorded curves.
        direction: ``"minimize"`` or ``"maximize"``.
        early: The early epoch (clipped to the curves' length).
    """
    from scipy.stats import kendalltau, spearmanr

    values = np.array([c.values for c in curves])
    early = min(early, values.shape[1])
    sign = 1.0 if direction == "minimize" else -1.0
    a, b = sign * values[:, early - 1], sign * values[:, -1]
    n = len(values)
    top = max(1, n // 10)
    top_early = set(np.argsort(a, kind="stable")[:top].tolist())
    top_final = np.argsort(b, kind="stable")[:top].tolist()
    tau = kendalltau(a, b).statistic if n > 1 else 1.0
    return {
        "early": early,
        "spearman": float(spearmanr(a, b).statistic) if n > 2 else float("nan"),
        # Kendall's tau-b counts concordant minus discordant pairs; ties make this approximate.
        "discordant_pairs": float((1 - tau) / 2) if math.isfinite(tau) else float("nan"),
        "late_bloomers": sum(1 for i in top_final if i not in top_early),
        "top10": top,
    }


def print_summary(out: Path, curves: Sequence[Curve], direction: str, seconds: float) -> None:
    """Print what the README's held-out block needs: size, spread, rank statistics, time."""
    values = np.array([c.values for c in curves])
    finals = values[:, -1]
    stats = rank_summary(curves, direction)
    print(
        f"wrote {out}: {len(curves)} configurations x {values.shape[1]} epochs in "
        f"{seconds:.0f} s wall"
    )
    print(
        f"final values ({direction}): min {finals.min():.4f}, median {np.median(finals):.4f}, "
        f"max {finals.max():.4f}"
    )
    print(
        f"Spearman(epoch {stats['early']}, epoch {values.shape[1]}) = {stats['spearman']:.3f}; "
        f"{stats['discordant_pairs']:.1%} of configuration pairs swap order after epoch "
        f"{stats['early']}; {stats['late_bloomers']} of the final top {stats['top10']} were "
        f"not in the top {stats['top10']} at epoch {stats['early']}"
    )
