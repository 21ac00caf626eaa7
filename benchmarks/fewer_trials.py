"""What the same epochs buy without any pruner: fewer trials, each trained to the end.

    python benchmarks/fewer_trials.py            # reads docs/benchmark/<table>-w1.json

A pruner earns its keep only if it beats this curve-blind rival. For every table, seed and
method of the saved 1-worker benchmark (but no pruning and the oracle), the rival trains the
first ``n`` configurations of the seed's permutation (the ones the methods replay) to the last
step, ``n`` the most that fit in the method's epochs on that seed. Printed: the method's mean
regret and the rival's, each with its 95% bootstrap interval, and the mean of their per-seed
difference (method minus rival, with its interval: below 0 is where pruning pays). Then, per
table, the rival's mean regret at half of Hyperband's epochs on each seed. New runs of
``optuna-qsvr benchmark`` print the same comparison; this script reads runs saved before it
did.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from more_seeds_table import TABLES

from optuna_qsvr.benchmark import (
    CurveTable,
    bootstrap,
    bundled_table,
    config_sequence,
    fewer_trials_regret,
)

# Every saved method but the two the rival is not for: no pruning (its own rival) and the
# hindsight oracle (a bound, not a choice).
SKIP = ("none", "oracle")
N_TRIALS = 150


def _fmt(estimate: object) -> str:
    value, low, high = (getattr(estimate, k) for k in ("value", "low", "high"))
    return f"{value:.3g} [{low:.3g}–{high:.3g}]"


def fewer_trials_regrets(
    table: CurveTable,
    direction: str,
    seeds: list[int],
    epochs: list[int],
    n_trials: int = N_TRIALS,
) -> list[float]:
    """Per seed: the rival's regret with that seed's permutation and epochs."""
    return [
        fewer_trials_regret(table, direction, config_sequence(table, seed, n_trials), spent)
        for seed, spent in zip(seeds, epochs, strict=True)
    ]


def main(directory: str = "docs/benchmark") -> None:
    print(
        "| table | method | × Hyperband | its mean regret | fewer trials, same epochs | "
        "difference (method − fewer trials) |"
    )
    print("|---|---|---|---|---|---|")
    for name in TABLES:
        saved = json.loads((Path(directory) / f"{name}-w1.json").read_text())
        table = CurveTable.load(bundled_table(name))
        for method in [m for m in saved if m not in SKIP]:
            runs = saved[method]
            direction = runs["direction"]  # as the run was made
            worst = runs["table_worst_regret"]
            mine = [worst if r is None else r for r in runs["regret"]]
            rival = fewer_trials_regrets(table, direction, runs["seeds"], runs["epochs"])
            ratio = [
                a / b for a, b in zip(runs["epochs"], saved["hyperband"]["epochs"], strict=True)
            ]
            print(
                f"| {name} | {method} | {bootstrap(ratio).value:.2f}× | {_fmt(bootstrap(mine))} "
                f"| {_fmt(bootstrap(rival))} "
                f"| {_fmt(bootstrap([a - b for a, b in zip(mine, rival, strict=True)]))} |"
            )
    print()
    for name in TABLES:
        hyperband = json.loads((Path(directory) / f"{name}-w1.json").read_text())["hyperband"]
        table = CurveTable.load(bundled_table(name))
        half = [e // 2 for e in hyperband["epochs"]]
        rival = fewer_trials_regrets(table, hyperband["direction"], hyperband["seeds"], half)
        print(f"{name}: fewer trials at 0.5x Hyperband's epochs: regret {_fmt(bootstrap(rival))}")


if __name__ == "__main__":
    main(*sys.argv[1:])
