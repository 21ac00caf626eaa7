"""Record MLPF learning curves on simulated Delphes events for the replay benchmark.

Draws random configurations of the study's seven hyperparameters (Optuna's seeded
``RandomSampler`` over :func:`studies.mlpf.suggest_config`, so the table and the study share one
search space), trains each for ``--epochs`` epochs on a small fixed set of simulated events and
writes ``optuna_qsvr/benchmark/curves/mlpf_delphes_sim.csv.gz`` in the format of
:class:`optuna_qsvr.benchmark.CurveTable`:
``config,step,value,param_<name>...`` with the validation loss of every epoch.

Events (80 for training, 40 for validation, about 15 elements each) and models are small, so
the default 200 configurations x 50 epochs take about 10 minutes of CPU on one thread (26
minutes wall on a 2-core machine shared with other jobs). A configuration that diverges is
recorded at :data:`studies.mlpf.DIVERGED_LOSS` from the epoch it diverges on, so every value
is finite. The same arguments give the same table (on one thread). Run with
``python -m studies.record_hep_curves``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from studies import mlpf
from studies._common import CURVES_DIR

DEFAULT_OUTPUT = CURVES_DIR / "mlpf_delphes_sim.csv.gz"
PARAMS = (
    "learning_rate",
    "weight_decay",
    "hidden",
    "layers",
    "dropout",
    "regression_weight",
    "neighbours",
)


def draw_configs(n_configs: int, seed: int) -> list[dict[str, float | int]]:
    """``n_configs`` random draws from the study's search space, reproducible from ``seed``."""
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    configs = []
    for _ in range(n_configs):
        trial = study.ask()
        mlpf.suggest_config(trial)
        configs.append(dict(trial.params))
        study.tell(trial, 0.0)
    return configs


def write_table(path: Path, rows: list[list[object]]) -> None:
    """Write the table atomically, so an interrupted run leaves the last complete one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    # mtime=0 keeps the gzip bytes identical across reruns.
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        text = _TextSink(gz)
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["config", "step", "value", *(f"param_{p}" for p in PARAMS)])
        writer.writerows(rows)
    os.replace(tmp, path)


class _TextSink:
    # csv wants a text file; GzipFile is binary.
    def __init__(self, binary: gzip.GzipFile) -> None:
        self._binary = binary

    def write(self, text: str) -> int:
        return self._binary.write(text.encode())


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (ties get their mean rank)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def record(
    *,
    n_configs: int,
    epochs: int,
    n_events: int,
    mean_particles: float,
    seed: int,
    output: Path,
    checkpoint_every: int = 10,
) -> list[list[float]]:
    """Train every configuration and write the table; returns the curves.

    Args:
        n_configs: configurations drawn.
        epochs: epochs per configuration (every one is trained to the end).
        n_events: simulated events, a third of them for validation.
        mean_particles: mean particles per simulated event.
        seed: seeds the events, the draws and each configuration's training (seed + index).
        output: the ``.csv.gz`` to write, rewritten every ``checkpoint_every`` configurations.
        checkpoint_every: configurations between rewrites of ``output``.
    """
    data = mlpf.load_data(
        None, n_events=n_events, mean_particles=mean_particles, val_fraction=1 / 3, seed=seed
    )
    configs = draw_configs(n_configs, seed)
    rows: list[list[object]] = []
    curves: list[list[float]] = []
    start = time.perf_counter()
    for index, params in enumerate(configs):
        config = mlpf.MLPFConfig(**params)
        curve = list(mlpf.train_epochs(config, data, epochs, seed=seed + index))
        curves.append(curve)
        rows.extend(
            [index, step, f"{value:.6g}", *(params[p] for p in PARAMS)]
            for step, value in enumerate(curve, start=1)
        )
        elapsed = time.perf_counter() - start
        print(
            f"config {index + 1}/{n_configs}: final {curve[-1]:.4f}, "
            f"{elapsed:.0f}s elapsed, {elapsed / (index + 1) * n_configs:.0f}s projected",
            flush=True,
        )
        if (index + 1) % checkpoint_every == 0 or index + 1 == n_configs:
            write_table(output, rows)
    return curves


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: record the table and print how well early rankings hold."""
    parser = argparse.ArgumentParser(
        prog="python -m studies.record_hep_curves", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--n-configs", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--n-events", type=int, default=120, help="simulated events in all")
    parser.add_argument("--mean-particles", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    import optuna
    import torch

    # The in-memory study behind the draws would log every trial; progress lines say enough.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Curves are reproducible only for a fixed thread count; one also leaves cores to others.
    torch.set_num_threads(1)
    start, cpu_start = time.perf_counter(), time.process_time()
    curves = np.array(
        record(
            n_configs=args.n_configs,
            epochs=args.epochs,
            n_events=args.n_events,
            mean_particles=args.mean_particles,
            seed=args.seed,
            output=args.output,
        )
    )
    print(
        f"wrote {args.output} ({args.output.stat().st_size} bytes) in "
        f"{time.perf_counter() - start:.0f}s wall ({time.process_time() - cpu_start:.0f}s CPU): "
        f"{len(curves)} configs x {args.epochs} epochs, "
        f"loss {curves.min():.4f}..{curves.max():.4f}, "
        f"{int((curves == mlpf.DIVERGED_LOSS).any(axis=1).sum())} diverged"
    )
    early = min(5, args.epochs)
    print(
        f"Spearman(rank at epoch {early}, rank at epoch {args.epochs}) = "
        f"{spearman(curves[:, early - 1], curves[:, -1]):.3f}"
    )


if __name__ == "__main__":
    main()
