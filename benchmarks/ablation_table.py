"""The README's ablation table from ``docs/benchmark/ablation-<table>.json`` (written by
``benchmarks/ablation.sh``): per variant and table, epochs relative to Hyperband and mean regret.

    python benchmarks/ablation_table.py
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmark"
TABLES = ("cnn_digits", "lstm_babi17", "mlpf_delphes_sim")
ROWS = {
    "hyperband": "Optuna's HyperbandPruner",
    "swift-svr": "forecast mode, defaults",
    "swift:no-points": "no decision points inside rungs (ASHA + rescue)",
    "swift:no-final": "no final-value target (rung targets only)",
    "swift:uncalibrated": "point forecast, no calibration (alpha 0.49)",
    "swift:no-rescue": "no rescue at rung ends",
    "swift:rank-rescue": "rescue by forecast rank, not calibrated chance (an earlier default)",
    "swift:params": "hyperparameters as features",
    "swift:hyperband-brackets": "all of Hyperband's brackets (in the forecast regime)",
    "swift:no-regimes": "every trial with forecasts, whatever the rank persistence "
    "(an earlier default)",
    "swift:pairs10": "rank persistence measured at 10 trials per rung pair (an earlier default)",
    "swift:bracket-cut": "successive halving within the bracket, as Hyperband "
    '(`promote_among="bracket"`)',
    "swift:two-brackets": "the second bracket whole (`bracket_weights=(1, 1, 0)`)",
    "swift:rescue3": "a rescue at a chance of 0.3 (`rescue_alpha=0.3`)",
    "swift:no-fallback": "no median at the last cut "
    '(`rescue_fallback="none"`, the previous version\'s change)',
    "swift:m10": "a model from 10 curves (`min_train_curves=10`, the previous default)",
    "swift:previous": "the bracket's cut, two brackets, a rescue at 0.3, no median and 10 "
    "curves (the default three versions ago)",
}


def cell(figures: dict | None) -> str:
    """A method's epochs against Hyperband's and mean regret, with the benchmark's intervals."""
    if figures is None:
        return "–"
    ratio, regret = figures["ratio"]["value"], figures["regret_mean"]
    return f"{ratio:.2f}×, {regret['value']:.3g} [{regret['low']:.3g}–{regret['high']:.3g}]"


def main() -> None:
    results = {t: json.loads((OUT / f"ablation-{t}.json").read_text()) for t in TABLES}
    print("| variant | " + " | ".join(TABLES) + " |")
    print("|---|" + "---|" * len(TABLES))
    for method, label in ROWS.items():
        cells = [cell(results[table].get(method, {}).get("figures")) for table in TABLES]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
