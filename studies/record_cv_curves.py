"""Record a learning-curve table: the CNN's 5-HP space trained on real offline digit images.

Draws ``--n-configs`` random configurations from the CIFAR-10 search space (learning rate,
weight decay, dropout, filters, momentum), trains each for ``--epochs`` epochs on a small
stratified subset of scikit-learn's 8x8 handwritten digits, and writes every epoch's validation
accuracy to a gzipped CSV with columns ``config,step,value,param_<name>...`` (``step`` is the
1-based epoch). Benchmarks replay the table instead of training again.

The draws and every run are seeded, so rerunning writes the same table. Progress goes to
``<out>.partial`` as it is made; an interrupted recording resumes from there.

Example::

    python -m studies.record_cv_curves --n-configs 200 --epochs 50
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from studies._cnn import CNNConfig, suggest_cifar_config, train_epochs
from studies._common import CURVES_DIR
from studies._image_data import load_digits_offline

DEFAULT_OUT = CURVES_DIR / "cnn_digits.csv.gz"
PARAMS = ("learning_rate", "weight_decay", "dropout", "filters", "momentum")


def draw_configs(n: int, seed: int, *, batch_size: int, filters: tuple[int, int]) -> list[dict]:
    """``n`` seeded random draws from the 5-HP space, as parameter dicts.

    Args:
        n: Number of configurations.
        seed: Seed of Optuna's random sampler.
        batch_size: Fixed mini-batch size.
        filters: Range of the first block's width.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    draws = []
    for _ in range(n):
        trial = study.ask()
        suggest_cifar_config(trial, batch_size=batch_size, filters=filters)
        draws.append(dict(trial.params))
        # Tell a constant: the sampler is random, so no value feeds back into the draws.
        study.tell(trial, 0.0)
    return draws


def _read_partial(path: Path) -> dict[int, list[str]]:
    done: dict[int, list[str]] = {}
    if not path.exists():
        return done
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if row and row[0] != "config":
                done.setdefault(int(row[0]), []).append(",".join(row))
    return done


def record(
    out: Path,
    *,
    n_configs: int,
    epochs: int,
    seed: int,
    batch_size: int,
    filters: tuple[int, int],
    max_train: int,
    n_val: int,
) -> None:
    """Train every configuration and write the table to ``out``.

    Args:
        out: Path of the gzipped CSV.
        n_configs: Number of random configurations.
        epochs: Epochs per configuration.
        seed: Seed of the draws, the data split and every run.
        batch_size: Mini-batch size.
        filters: Range of the first block's width.
        max_train: Training images (a stratified subset of the digits).
        n_val: Validation images.
    """
    data = load_digits_offline(n_val=n_val, max_train=max_train, seed=seed)
    draws = draw_configs(n_configs, seed, batch_size=batch_size, filters=filters)
    header = ["config", "step", "value", *(f"param_{p}" for p in PARAMS)]
    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {c: rows for c, rows in _read_partial(partial).items() if len(rows) == epochs}
    start = time.perf_counter()
    with open(partial, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for rows in done.values():
            f.write("\n".join(rows) + "\n")
        f.flush()
        for index, params in enumerate(draws):
            if index in done:
                continue
            config = CNNConfig(batch_size=batch_size, **params)
            values = list(train_epochs(config, data, epochs, seed=seed + index))
            for step, value in enumerate(values, start=1):
                writer.writerow([index, step, f"{value:.4f}", *(_fmt(params[p]) for p in PARAMS)])
            f.flush()
            elapsed = time.perf_counter() - start
            print(
                f"config {index + 1}/{n_configs}: final {values[-1]:.3f} "
                f"best {max(values):.3f} ({elapsed:.0f} s)",
                flush=True,
            )

    with open(partial, newline="") as f:
        rows = list(csv.reader(f))[1:]
    rows.sort(key=lambda r: (int(r[0]), int(r[1])))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    # mtime=0 keeps the gzip bytes identical across reruns.
    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(text.getvalue().encode())
    partial.unlink()
    print(
        f"wrote {out}: {n_configs} configurations x {epochs} epochs "
        f"({time.perf_counter() - start:.0f} s)"
    )


def _fmt(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6g}"


def rank_check(path: Path, early: int, late: int) -> float:
    """Spearman correlation between the configurations' values at epochs ``early`` and ``late``.

    Args:
        path: A learning-curve table.
        early: The earlier epoch.
        late: The later epoch.
    """
    from scipy.stats import spearmanr

    with gzip.open(path, "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    at: dict[int, dict[int, float]] = {}
    for row in rows:
        at.setdefault(int(row["step"]), {})[int(row["config"])] = float(row["value"])
    common = sorted(set(at[early]) & set(at[late]))
    a = np.array([at[early][c] for c in common])
    b = np.array([at[late][c] for c in common])
    return float(spearmanr(a, b).statistic)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m studies.record_cv_curves", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--n-configs", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--min-filters", type=int, default=4)
    parser.add_argument("--max-filters", type=int, default=16)
    parser.add_argument("--max-train", type=int, default=300)
    parser.add_argument("--n-val", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    record(
        args.out,
        n_configs=args.n_configs,
        epochs=args.epochs,
        seed=args.seed,
        batch_size=args.batch_size,
        filters=(args.min_filters, args.max_filters),
        max_train=args.max_train,
        n_val=args.n_val,
    )
    early = min(5, args.epochs)
    rho = rank_check(args.out, early, args.epochs)
    print(f"Spearman rank correlation, epoch {early} vs epoch {args.epochs}: {rho:.3f}")


if __name__ == "__main__":
    main()
