"""Forecast accuracy of the pruner's predictors on recorded learning curves.

For each table and decision key ``(target step, decision step)`` of Swift-Hyperband with
``max_resource=50, eta=3`` (rungs 3, 9, 27, 50), predictors are fitted on ``--train``
random curves (the pruner's ``min_train_curves``) and scored by R^2 on all other curves,
over ``--splits`` random splits: classical SVR, a single Q-SVR (simulated annealing), and
an ensemble of 20-point Q-SVRs on ``--ensemble-train`` curves.

    python benchmarks/bench_predictors.py --splits 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from sklearn.metrics import r2_score

from optuna_qsvr import QSVRPredictor, SVRPredictor
from optuna_qsvr.benchmark import CurveTable, bundled_table

TABLES = ("cnn_digits", "lstm_babi17", "mlpf_delphes_sim")
KEYS = ((9, 6), (27, 18), (50, 39))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--train", type=int, default=15)
    parser.add_argument("--ensemble-train", type=int, default=60)
    parser.add_argument("--tables", nargs="+", default=list(TABLES))
    parser.add_argument("--num-reads", type=int, default=None, help="Q-SVR reads (default 100)")
    args = parser.parse_args()
    print(
        "| table | key (target, decision) | SVR R^2 | Q-SVR R^2 | Q-SVR ensemble R^2 "
        "| SVR fit s | Q-SVR fit s | ensemble fit s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    qsvr = {} if args.num_reads is None else {"num_reads": args.num_reads}
    for name in args.tables:
        table = CurveTable.load(bundled_table(name))
        configs = list(table.finals)
        for target, t_star in KEYS:
            X = np.array([table.values(c)[:t_star] for c in configs])
            y = np.array([table.values(c)[target - 1] for c in configs])
            scores: dict[str, list[float]] = {"svr": [], "qsvr": [], "ens": []}
            secs: dict[str, list[float]] = {"svr": [], "qsvr": [], "ens": []}
            for split in range(args.splits):
                order = np.random.default_rng(split).permutation(len(configs))
                for label, n, model in (
                    ("svr", args.train, SVRPredictor(cv=0)),
                    ("qsvr", args.train, QSVRPredictor(random_state=split, **qsvr)),
                    ("ens", args.ensemble_train, QSVRPredictor(random_state=split, **qsvr)),
                ):
                    train, test = order[:n], order[args.ensemble_train :]
                    start = time.perf_counter()
                    model.fit(X[train], y[train])
                    secs[label].append(time.perf_counter() - start)
                    scores[label].append(r2_score(y[test], model.predict(X[test])[0]))
            med = {k: statistics.median(v) for k, v in scores.items()}
            sec = {k: statistics.median(v) for k, v in secs.items()}
            print(
                f"| {name} | ({target}, {t_star}) | {med['svr']:.3f} | {med['qsvr']:.3f} | "
                f"{med['ens']:.3f} | {sec['svr']:.3f} | {sec['qsvr']:.2f} | {sec['ens']:.2f} |"
            )


if __name__ == "__main__":
    main()
