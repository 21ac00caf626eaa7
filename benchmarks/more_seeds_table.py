"""The README's 60-seed table from ``docs/benchmark/seeds60-<table>.json`` (written by
``benchmarks/more_seeds.sh``): per table and method, epochs against Hyperband's, mean regret
over the 60 seeds and over the first 20 (the seeds of the README's main tables), the regret
minus that of fewer trials trained to the end with the same epochs, and the methods that
dominate it, all with the benchmark's 95% bootstrap intervals.

    python benchmarks/more_seeds_table.py
"""

from __future__ import annotations

import json
from pathlib import Path

from optuna_qsvr.benchmark import bootstrap

OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmark"
# Recorded tables first, then the held-out ones.
TABLES = (
    "cnn_digits",
    "lstm_babi17",
    "mlpf_delphes_sim",
    "resnet_mnist",
    "transformer_sort",
    "mlp_mnist1d",
    "gru_mnist1d",
    "cnn1d_mnist1d",
)
HELD_OUT = ("resnet_mnist", "transformer_sort", "mlp_mnist1d", "gru_mnist1d", "cnn1d_mnist1d")
FIRST = 20


def _interval(figure: dict) -> str:
    """A figure as the JSON holds it (``value``, ``low``, ``high``), or "–" without one."""
    if figure.get("value") is None:
        return "–"
    return f"{figure['value']:.3g} [{figure['low']:.3g}–{figure['high']:.3g}]"


def main() -> None:
    print(
        "| table | method | × Hyperband | regret, 60 seeds | regret, seeds 0–19 "
        "| minus fewer trials' | dominated by |"
    )
    print("|---|---|---|---|---|---|---|")
    for table in TABLES:
        path = OUT / f"seeds60-{table}.json"
        if not path.exists():
            continue
        report = json.loads(path.read_text())
        label = f"{table} (held out)" if table in HELD_OUT else table
        for method, entry in report.items():
            figures = entry["figures"]
            worst = entry["table_worst_regret"]
            regrets = [worst if r is None else r for r in entry["regret"]]
            first = bootstrap(
                [r for r, s in zip(regrets, entry["seeds"], strict=True) if s < FIRST]
            )
            ratio = figures["ratio"]
            cells = [
                label,
                method,
                f"{ratio['value']:.2f} [{ratio['low']:.2f}–{ratio['high']:.2f}]",
                _interval(figures["regret_mean"]),
                _interval(first.to_dict()),
                _interval(figures.get("vs_fewer") or {}),
                ", ".join(entry["dominated_by"]) or "–",
            ]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
