"""Benchmark the Q-SVR: QUBO build and annealing time vs N, and R^2 on learning curves.

Examples::

    python benchmarks/bench_qsvr.py --curves digits-mlp
    python benchmarks/bench_qsvr.py --json out.json \\
        --curves optuna_qsvr/benchmark/curves/mlpf_delphes_sim.csv.gz

The curve table is a CSV (optionally gzipped) with columns ``config, step, value`` and any
``param_*`` columns; the features of a curve are its values at the first ``--features``
steps and the target its value at the last step.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from dwave.samplers import SimulatedAnnealingSampler
from sklearn.metrics import r2_score
from sklearn.model_selection import RepeatedKFold
from sklearn.preprocessing import MinMaxScaler
from sklearn.svm import NuSVR

from optuna_qsvr.predictors._qsvr import QSVR
from optuna_qsvr.predictors._qubo import bqm_from_matrix, qubo_matrix

REFERENCE_C = 67.61
REFERENCE_GAMMA = 0.1


def time_qubo(sizes: list[int], repeats: int, anneal_reads: int, seed: int) -> list[dict]:
    """Median QUBO build time, BQM wrapping time and SA time per read, for each N."""
    rng = np.random.default_rng(seed)
    sampler = SimulatedAnnealingSampler()
    rows = []
    for n in sizes:
        X = rng.uniform(size=(n, 5))
        y = rng.uniform(size=n)
        qubo_matrix(X, y)
        build, wrap = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            Q = qubo_matrix(X, y)
            build.append(time.perf_counter() - start)
            start = time.perf_counter()
            bqm = bqm_from_matrix(Q)
            wrap.append(time.perf_counter() - start)
        start = time.perf_counter()
        sampleset = sampler.sample(bqm, num_reads=anneal_reads, seed=seed)
        anneal = time.perf_counter() - start
        rows.append(
            {
                "n_points": n,
                "n_variables": Q.shape[0],
                "qubo_build_ms": 1e3 * statistics.median(build),
                "bqm_wrap_ms": 1e3 * statistics.median(wrap),
                "anneal_s_per_read": anneal / anneal_reads,
                "best_energy": float(sampleset.first.energy),
            }
        )
    return rows


def read_curve_table(path: Path, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Features (values at the first ``n_features`` steps) and targets (last step)."""
    opener = gzip.open if path.suffix == ".gz" else open
    values: dict[str, dict[float, float]] = {}
    with opener(path, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["value"] in ("", "nan", "NaN"):
                continue
            values.setdefault(row["config"], {})[float(row["step"])] = float(row["value"])
    steps = sorted({step for curve in values.values() for step in curve})
    if len(steps) <= n_features:
        raise SystemExit(f"{path}: {len(steps)} steps, need more than --features={n_features}")
    wanted = [*steps[:n_features], steps[-1]]
    complete = [curve for curve in values.values() if all(s in curve for s in wanted)]
    if len(complete) < 10:
        raise SystemExit(f"{path}: only {len(complete)} complete curves")
    table = np.array([[curve[s] for s in wanted] for curve in complete])
    return table[:, :-1], table[:, -1]


def digits_mlp_curves(
    n_configs: int = 30, n_epochs: int = 20, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Validation-accuracy curves of MLPs with random hyperparameters on sklearn's digits."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(
        X / 16.0, y, train_size=500, test_size=400, random_state=seed, stratify=y
    )
    rng = np.random.default_rng(seed)
    curves = np.empty((n_configs, n_epochs))
    for i in range(n_configs):
        model = MLPClassifier(
            hidden_layer_sizes=(int(rng.choice([8, 16, 32])),),
            learning_rate_init=10 ** rng.uniform(-4, -1.5),
            alpha=10 ** rng.uniform(-6, -1),
            batch_size=int(rng.choice([64, 128, 256])),
            random_state=i,
        )
        for epoch in range(n_epochs):
            model.partial_fit(X_train, y_train, classes=np.arange(10))
            curves[i, epoch] = model.score(X_val, y_val)
    return curves[:, :-1], curves[:, -1]


def compare_r2(
    features: np.ndarray,
    targets: np.ndarray,
    *,
    folds: int,
    cv_repeats: int,
    num_reads: int,
    num_sweeps: int,
    gamma: float,
    seed: int,
) -> list[dict]:
    """Held-out R^2 of NuSVR, a 20-point Q-SVR and the ensemble Q-SVR, by repeated K-fold."""
    scores: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    rng = np.random.default_rng(seed)
    splitter = RepeatedKFold(n_splits=folds, n_repeats=cv_repeats, random_state=seed)
    qsvr_params = dict(
        num_reads=num_reads, gamma=gamma, annealer_params={"num_sweeps": num_sweeps}
    )
    for fold, (train, test) in enumerate(splitter.split(features)):
        x_scaler = MinMaxScaler().fit(features[train])
        y_scaler = MinMaxScaler().fit(targets[train, None])
        X_train, X_test = x_scaler.transform(features[train]), x_scaler.transform(features[test])
        y_train = y_scaler.transform(targets[train, None])[:, 0]
        y_test = y_scaler.transform(targets[test, None])[:, 0]
        subset = rng.choice(len(train), size=min(20, len(train)), replace=False)
        models = {
            "NuSVR (all training curves)": (NuSVR(C=REFERENCE_C, gamma=gamma), None),
            "NuSVR (same 20 curves)": (NuSVR(C=REFERENCE_C, gamma=gamma), subset),
            "Q-SVR single (20 curves)": (QSVR(random_state=fold, **qsvr_params), subset),
            "Q-SVR ensemble (all, 20 per QUBO)": (QSVR(random_state=fold, **qsvr_params), None),
        }
        for name, (model, rows) in models.items():
            rows = slice(None) if rows is None else rows
            start = time.perf_counter()
            model.fit(X_train[rows], y_train[rows])
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
            scores.setdefault(name, []).append(r2_score(y_test, model.predict(X_test)))
    return [
        {
            "model": name,
            "r2_mean": float(np.mean(values)),
            "r2_std": float(np.std(values)),
            "fit_s_mean": seconds[name] / len(values),
            "n_splits": len(values),
        }
        for name, values in scores.items()
    ]


def markdown(rows: list[dict], floats: str = ".3f") -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [format(v, floats) if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[20, 50, 100, 200])
    parser.add_argument("--repeats", type=int, default=5, help="QUBO builds per size")
    parser.add_argument(
        "--anneal-reads", type=int, default=1, help="SA reads timed per size (SA defaults)"
    )
    parser.add_argument(
        "--curves", help="curve table (CSV, .csv.gz) or 'digits-mlp' to generate curves"
    )
    parser.add_argument("--features", type=int, default=5, help="first steps used as features")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--cv-repeats", type=int, default=1)
    parser.add_argument("--num-reads", type=int, default=100, help="Q-SVR reads per QUBO")
    parser.add_argument("--num-sweeps", type=int, default=200, help="Q-SVR SA sweeps")
    parser.add_argument(
        "--gamma", type=float, default=REFERENCE_GAMMA, help="RBF gamma of every model"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)

    results: dict[str, object] = {}
    if args.sizes:
        timing = time_qubo(args.sizes, args.repeats, args.anneal_reads, args.seed)
        results["timing"] = timing
        print("## QUBO build and simulated annealing time\n")
        print(markdown(timing, ".4g"))
        print()

    if args.curves:
        if args.curves == "digits-mlp":
            features, targets = digits_mlp_curves(seed=args.seed)
            features = features[:, : args.features]
        else:
            features, targets = read_curve_table(Path(args.curves), args.features)
        r2 = compare_r2(
            features,
            targets,
            folds=args.folds,
            cv_repeats=args.cv_repeats,
            num_reads=args.num_reads,
            num_sweeps=args.num_sweeps,
            gamma=args.gamma,
            seed=args.seed,
        )
        results["r2"] = r2
        results["curves"] = {"source": args.curves, "n_curves": len(targets)}
        print(
            f"## Held-out R^2 on {len(targets)} curves from {args.curves} "
            f"({args.folds}-fold x {args.cv_repeats}, features = first {args.features} steps, "
            f"gamma={args.gamma}, Q-SVR {args.num_reads} reads x {args.num_sweeps} sweeps)\n"
        )
        print(markdown(r2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
