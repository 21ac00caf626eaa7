"""Record LSTM learning curves on generated bAbI task 17 for the replay benchmark.

Trains ``--configs`` random draws of the study's four hyperparameters for ``--epochs`` epochs
each and writes ``optuna_qsvr/benchmark/curves/lstm_babi17.csv.gz`` with the columns
``config,step,value,param_<name>...`` (step is the 1-based epoch, value the validation
accuracy). The same seed writes the same table.

The data set is kept small so the whole recording fits in about twenty minutes on one CPU
thread: bare shapes (no colours), two questions per story, and the function words every
sentence shares ("the", "is", "to", "of") left out of the token sequences. The task stays
the real one, two statements that must be combined, and good configurations learn it.

Run ``python -m studies.record_nlp_curves --help``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from studies import _babi
from studies._common import CURVES_DIR
from studies.babi17 import (
    BATCH_SIZES,
    DROPOUT,
    HIDDEN_SIZE,
    LEARNING_RATE,
    LSTMConfig,
    train_epochs,
)

DEFAULT_OUTPUT = CURVES_DIR / "lstm_babi17.csv.gz"


def draw_configs(n: int, seed: int) -> list[LSTMConfig]:
    """``n`` independent random draws from the study's search space.

    Args:
        n: number of configurations.
        seed: seeds the draws; the same seed gives the same list.
    """
    rng = np.random.default_rng(seed)
    log_lr = np.log(LEARNING_RATE)
    log_hidden = np.log([HIDDEN_SIZE[0], HIDDEN_SIZE[1] + 1])
    configs = []
    for _ in range(n):
        hidden = int(np.exp(rng.uniform(*log_hidden)))
        configs.append(
            LSTMConfig(
                learning_rate=float(np.exp(rng.uniform(*log_lr))),
                hidden_size=min(hidden, HIDDEN_SIZE[1]),
                dropout=float(rng.uniform(*DROPOUT)),
                batch_size=int(rng.choice(BATCH_SIZES)),
            )
        )
    return configs


def recording_data(n_stories: int, seed: int) -> _babi.BabiData:
    """The generated, compact task-17 set the curves are recorded on.

    Args:
        n_stories: training-file stories (two questions each); 30% become validation.
        seed: generator seed.
    """
    with tempfile.TemporaryDirectory(prefix="babi17-rec-") as tmp:
        _babi.generate_task17(
            tmp,
            n_train_stories=n_stories,
            n_test_stories=2,
            questions_per_story=2,
            colour_probability=0.0,
            seed=seed,
        )
        return _babi.load_task17(tmp, valid_fraction=0.3, drop_words=_babi.FUNCTION_WORDS)


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    # Write then rename so an interrupted run never leaves a truncated table behind.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with gzip.open(tmp, "wt", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation of two equally long sequences (ties share their rank)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def main(argv: Sequence[str] | None = None) -> None:
    """Record the table from the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m studies.record_nlp_curves", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--configs", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--stories", type=int, default=800, help="generated training stories")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    data = recording_data(args.stories, args.seed)
    print(
        f"data: {len(data.train)} train / {len(data.valid)} valid questions, "
        f"vocabulary {len(data.vocab)}",
        flush=True,
    )
    rows: list[dict[str, object]] = []
    curves: list[list[float]] = []
    start = time.perf_counter()
    configs = draw_configs(args.configs, args.seed)
    for index, config in enumerate(configs):
        curve = list(train_epochs(config, data, args.epochs, seed=args.seed + index))
        curves.append(curve)
        params = {f"param_{k}": v for k, v in asdict(config).items()}
        params["param_learning_rate"] = f"{config.learning_rate:.6g}"
        params["param_dropout"] = f"{config.dropout:.4f}"
        for step, value in enumerate(curve, start=1):
            rows.append({"config": index, "step": step, "value": f"{value:.4f}", **params})
        elapsed = time.perf_counter() - start
        print(
            f"config {index + 1}/{len(configs)} {config}: final {curve[-1]:.3f} "
            f"best {max(curve):.3f} [{elapsed:.0f}s]",
            flush=True,
        )
        if (index + 1) % 20 == 0:
            _write(args.output, rows)
    _write(args.output, rows)

    finals = np.array([c[-1] for c in curves])
    early = min(5, args.epochs)
    rho = spearman([c[early - 1] for c in curves], finals)
    print(
        f"wrote {args.output} ({args.output.stat().st_size / 1024:.0f} KiB) "
        f"in {time.perf_counter() - start:.0f}s"
    )
    print(
        f"final accuracy: min {finals.min():.3f} median {np.median(finals):.3f} "
        f"max {finals.max():.3f}; {int((finals > 0.6).sum())} configs above 0.6"
    )
    if not math.isnan(rho):
        print(f"Spearman rank correlation, epoch {early} vs epoch {args.epochs}: {rho:.3f}")


if __name__ == "__main__":
    main()
