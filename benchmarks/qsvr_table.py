"""The README's "Q-SVR in the same rule" table from ``docs/benchmark/qsvr-<table>.json``
(written by ``benchmarks/qsvr_rule.sh``).

Per table: each predictor's epochs against Hyperband's and mean regret, then the Q-SVR against
the SVR seed by seed (both replay the same permutation of the table on a seed): the mean ratio
of their epochs and the mean difference of their regrets, each with its 95% bootstrap interval,
and the annealer calls per study.

    python benchmarks/qsvr_table.py
    python benchmarks/qsvr_table.py --prefix qsvr60    # 60 seeds (SEEDS=60 OUT=qsvr60)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from optuna_qsvr.benchmark import bootstrap

OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmark"
TABLES = ("cnn_digits", "lstm_babi17", "mlpf_delphes_sim")


def _interval(estimate, digits: str) -> str:
    return f"{estimate.value:{digits}} [{estimate.low:{digits}}–{estimate.high:{digits}}]"


def _method(report: dict, method: str) -> str:
    figures = report[method]["figures"]
    ratio, regret = figures["ratio"]["value"], figures["regret_mean"]
    return f"{ratio:.2f}×, {regret['value']:.3g} [{regret['low']:.3g}–{regret['high']:.3g}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", default="qsvr", help="reads <prefix>-<table>.json")
    parser.add_argument("--tables", default=",".join(TABLES))
    args = parser.parse_args()
    print(
        "| table | seeds | swift-svr: × Hyperband, mean regret | swift-qsvr: × Hyperband, mean "
        "regret | Q-SVR / SVR epochs | Q-SVR − SVR regret | annealer calls per study |"
    )
    print("|---|---|---|---|---|---|---|")
    for table in args.tables.split(","):
        report = json.loads((OUT / f"{args.prefix}-{table}.json").read_text())
        svr, qsvr = report["swift-svr"], report["swift-qsvr"]
        # The same seed replays the same permutation for both methods: compare them paired.
        assert svr["seeds"] == qsvr["seeds"], table
        ratio = bootstrap([q / s for q, s in zip(qsvr["epochs"], svr["epochs"], strict=True)])
        diff = bootstrap([q - s for q, s in zip(qsvr["regret"], svr["regret"], strict=True)])
        calls = bootstrap(qsvr["annealer_calls"])
        print(
            f"| {table} | {len(svr['seeds'])} | {_method(report, 'swift-svr')} | "
            f"{_method(report, 'swift-qsvr')} | {_interval(ratio, '.2f')} | "
            f"{_interval(diff, '+.3g')} | {calls.value:.0f} |"
        )


if __name__ == "__main__":
    main()
