"""How the default forecast mode splits each table's trials between its two regimes.

    python benchmarks/regimes.py                    # every bundled table, 1 worker, 20 seeds
    python benchmarks/regimes.py --workers 8

For every bundled table (the recorded ones and the held-out ones) and seed, the benchmark's
replay runs the default pruner once (``_replay_study.py``) and the script reads each trial's
regime record (``swift:regime``): whether it ran with forecasts or as Hyperband runs it, and the
study's rank persistence when it started. Printed per table, over the seeds:

* the trials that started before the persistence could be measured (Hyperband's regime);
* the share of trials that ran with forecasts, and of those measured;
* the persistence the study measured last (median and the seeds' 10th-90th percentiles), which
  the default ``min_rank_persistence`` (0.5) is compared with;
* the table's own persistence over all its configurations (the same measure on every trial of
  the table: an unselected sample, which a study's survivors are not).
"""

from __future__ import annotations

import argparse
import itertools
import statistics

import numpy as np
import optuna
from _replay_study import replay_study
from readme import HELD_OUT_DIRECTIONS, RECORDED

from optuna_qsvr import _records
from optuna_qsvr.benchmark import CurveTable, bundled_tables, infer_direction
from optuna_qsvr.pruners._options import FORECAST_DEFAULTS
from optuna_qsvr.pruners._persistence import rank_persistence


def table_persistence(table: CurveTable, budgets: list[int]) -> float:
    """The measure on every configuration of the table, with the default pruner's pair count."""
    min_pairs = FORECAST_DEFAULTS["min_persistence_pairs"]
    values = np.array([table.values(c) for c in table.configs])
    columns = [(values[:, a - 1], values[:, b - 1]) for a, b in itertools.pairwise(budgets)]
    return rank_persistence(columns, min_pairs).rho


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(
        "| table | not measured yet (trials) | with forecasts | of those measured "
        "| persistence measured last | the whole table's |"
    )
    print("|---|---|---|---|---|---|")
    for name, path in bundled_tables().items():
        table = CurveTable.load(path)
        held_out = name not in RECORDED
        direction = RECORDED.get(name) or HELD_OUT_DIRECTIONS.get(name)
        direction = direction or infer_direction(table.metric)
        early, forecast, measured_forecast, last = [], [], [], []
        budgets = None
        for seed in range(args.seeds):
            study, _, _ = replay_study(table, direction, seed, "swift-svr", args.workers)
            budgets = study.pruner._rung_budgets  # the rung ends the pruner pairs
            records = [
                r
                for t in study.get_trials(deepcopy=False)
                if (r := _records.regime_of_trial(t.system_attrs)) is not None
            ]
            measured = [r for r in records if r["persistence"] is not None]
            early.append(len(records) - len(measured))
            forecast.append(sum(r["regime"] == "forecast" for r in records) / len(records))
            if measured:
                share = sum(r["regime"] == "forecast" for r in measured) / len(measured)
                measured_forecast.append(share)
                last.append(measured[-1]["persistence"])
        label = f"{name} (held out)" if held_out else name
        p10, p90 = np.percentile(last, [10, 90]) if last else (np.nan, np.nan)
        print(
            f"| {label} | {statistics.median(early):g} | {np.mean(forecast):.0%} "
            f"| {np.mean(measured_forecast):.0%} "
            f"| {statistics.median(last):.2f} [{p10:.2f}–{p90:.2f}] "
            f"| {table_persistence(table, budgets):.2f} |"
        )


if __name__ == "__main__":
    main()
