"""The README's table of the second look (``benchmarks/second_look.sh``): per bundled table and
worker count, Hyperband's mean regret, then the default and the default with
``second_look=True``: epochs against Hyperband's, mean regret (95% intervals), P(best) and the
methods of the run (Hyperband, MedianPruner, SuccessiveHalving, the two) that dominate each,
and the look's regret minus the default's, paired by seed (95% bootstrap interval).

    python benchmarks/second_look_table.py
    python benchmarks/second_look_table.py --prefix look60    # the 60-seed run
"""

from __future__ import annotations

import argparse
import json

from ablation_table import OUT, cell
from more_seeds_table import HELD_OUT, TABLES

from optuna_qsvr.benchmark import bootstrap


def _p_best(figures: dict) -> str:
    return f"{figures['p_best']['value']:.0%}"


def _regrets(method: dict) -> dict[int, float]:
    worst = method["table_worst_regret"]  # a seed that finished no trial, as the benchmark
    return {
        seed: worst if regret is None else regret
        for seed, regret in zip(method["seeds"], method["regret"], strict=True)
    }


def _difference(look: dict, default: dict) -> str:
    a, b = _regrets(look), _regrets(default)
    d = bootstrap([a[seed] - b[seed] for seed in sorted(a)])
    return f"{d.value:+.3g} [{d.low:+.3g}–{d.high:+.3g}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", default="look", help="docs/benchmark/<prefix>-*.json")
    prefix = parser.parse_args().prefix
    print(
        "| table | workers | Hyperband regret | default | default P(best), dominated by "
        "| `second_look=True` | its P(best), dominated by | regret difference |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for table in TABLES:
        for workers in (1, 8):
            path = OUT / f"{prefix}-{table}-w{workers}.json"
            if not path.exists():
                continue
            run = json.loads(path.read_text())
            hyperband = run["hyperband"]["figures"]["regret_mean"]
            name = f"{table} (held out)" if table in HELD_OUT else table
            cells = [name, str(workers), f"{hyperband['value']:.3g}"]
            for method in ("swift-svr", "swift:look"):
                figures = run[method]["figures"]
                by = ", ".join(run[method].get("dominated_by") or []) or "–"
                cells += [cell(figures), f"{_p_best(figures)}, {by}"]
            cells.append(_difference(run["swift:look"], run["swift-svr"]))
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
