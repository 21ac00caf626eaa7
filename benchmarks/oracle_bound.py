"""The most a Swift-Hyperband rule can save on a table: run it with a perfect forecaster.

The oracle predictor looks every forecast up in the table itself, so the epochs it saves are
an upper bound for that rule and setting; a real predictor can only do worse.

    python benchmarks/oracle_bound.py \\
        optuna_qsvr/benchmark/curves/mlpf_delphes_sim.csv.gz minimize \\
        '{}' '{"forecast_final": true, "min_train_curves": 3}'
"""

from __future__ import annotations

import json
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import optuna

from optuna_qsvr import SwiftHyperbandPruner
from optuna_qsvr.benchmark import CurveTable, config_sequence, replay_async
from optuna_qsvr.predictors import BasePredictor

SEEDS = 12


class OraclePredictor(BasePredictor):
    """Forecasts by finding the curve in the table and reading its value at the target."""

    def __init__(self, curves: str, direction: str) -> None:
        self.table = CurveTable.load(curves)
        self.sign = -1.0 if direction == "maximize" else 1.0
        self.step = 0

    def _config_values(self, row: np.ndarray) -> np.ndarray:
        for config in self.table.configs:
            values = self.sign * self.table.values(config)
            if np.allclose(values[: len(row)], row):
                return values
        raise KeyError("curve not in the table")

    def fit(self, curves, targets, params=None):
        values = self._config_values(np.asarray(curves)[0])
        self.step = int(np.flatnonzero(np.isclose(values, targets[0]))[0])
        return self

    def predict(self, curves, params=None):
        rows = np.atleast_2d(curves)
        forecast = np.array([self._config_values(row)[self.step] for row in rows])
        return forecast, np.zeros(len(rows))

    def to_json(self) -> str:
        return json.dumps({"step": self.step})

    @classmethod
    def from_json(cls, text: str):
        raise NotImplementedError("the oracle is never shared between processes")


def _run(curves: str, direction: str, seed: int, variant: str | None) -> tuple[int, float]:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    table = CurveTable.load(curves)
    if variant is None:
        pruner = optuna.pruners.HyperbandPruner(1, table.max_step, 3)
    else:
        oracle = OraclePredictor(curves, direction)
        pruner = SwiftHyperbandPruner(
            1, table.max_step, 3, predictor=lambda: oracle, **json.loads(variant)
        )
    study = optuna.create_study(
        study_name=f"replay-seed{seed}", direction=direction, pruner=pruner
    )
    result = replay_async(study, table, config_sequence(table, seed, 150), 1)
    return result.epochs, abs(result.best_final - table.best_final(direction))


def main() -> None:
    curves, direction, *variants = sys.argv[1:]
    runs = [None, *variants]
    with ProcessPoolExecutor(2) as pool:
        futures = {
            (v, s): pool.submit(_run, curves, direction, s, v) for v in runs for s in range(SEEDS)
        }
        results = {k: f.result() for k, f in futures.items()}
    hb = [results[(None, s)][0] for s in range(SEEDS)]
    for v in runs:
        ratio = statistics.median(results[(v, s)][0] / hb[s] for s in range(SEEDS))
        regret = [results[(v, s)][1] for s in range(SEEDS)]
        print(
            f"{v or 'hyperband':60s} epochs x{ratio:.2f}  regret median "
            f"{statistics.median(regret):.4g} mean {statistics.mean(regret):.4g}"
        )


if __name__ == "__main__":
    main()
