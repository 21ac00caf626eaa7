"""Time the benchmark at the size its speed target names, and say where the time goes.

Writes a seeded synthetic table of 400 configurations x 50 epochs (noisy saturating curves,
five hyperparameters, a ``time`` column) to a temporary folder and runs

    optuna-qsvr benchmark --curves TABLE --direction minimize --seeds 20 --workers 8 \\
        --n-trials 150 --processes 2 (every default method)

printing the command's own tables, its wall time and its per-method time breakdown.

    python benchmarks/speed.py [--seeds 20] [--processes 2] [--methods ...]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from optuna_qsvr._cli import main as cli


def write_table(path: Path, n_configs: int = 400, n_epochs: int = 50, seed: int = 0) -> Path:
    """A table of saturating loss curves whose early ranking only roughly predicts the last."""
    rng = np.random.default_rng(seed)
    with gzip.open(path, "wt", newline="") as f:
        writer = csv.writer(f)
        header = ["config", "step", "value", "time"]
        writer.writerow(
            header[:3] + [f"param_{n}" for n in ("lr", "wd", "width", "depth", "act")] + header[3:]
        )
        for i in range(n_configs):
            lr, wd = 10 ** rng.uniform(-4, -1), 10 ** rng.uniform(-6, -2)
            width, depth = int(2 ** rng.integers(4, 10)), int(rng.integers(1, 6))
            act = ["relu", "gelu", "tanh"][int(rng.integers(3))]
            final, gap, rate = rng.uniform(0.1, 1.0), rng.uniform(0.2, 1.5), rng.uniform(0.05, 0.6)
            seconds = 0.01 * width**0.5 * depth * rng.lognormal(0, 0.2)
            for step in range(1, n_epochs + 1):
                value = final + gap * math.exp(-rate * (step - 1)) + rng.normal(0, 0.02)
                writer.writerow(
                    [
                        i,
                        step,
                        f"{value:.5f}",
                        f"{lr:.6g}",
                        f"{wd:.6g}",
                        width,
                        depth,
                        act,
                        f"{seconds:.4g}",
                    ]
                )
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--methods", default=None, help="default: every default method")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        table = write_table(Path(folder) / "synthetic_400x50.csv.gz")
        argv = ["benchmark", "--curves", str(table), "--direction", "minimize"]
        argv += ["--seeds", str(args.seeds), "--workers", str(args.workers), "--n-trials", "150"]
        argv += ["--processes", str(args.processes), "--no-progress"]
        if args.methods:
            argv += ["--methods", args.methods]
        began = time.perf_counter()
        status = cli(argv)
        print(f"speed target run: {time.perf_counter() - began:.1f} s end to end")
    return status


if __name__ == "__main__":
    sys.exit(main())
