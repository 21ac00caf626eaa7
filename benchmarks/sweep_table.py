"""The README's table of the option sweep around the default (``benchmarks/default_sweep.sh``):
per option set, the benchmark's epochs against Hyperband's and mean regret (with its intervals)
on each recorded table and worker count, from ``docs/benchmark/sweep2-<table>-w<W>.json``.

    python benchmarks/sweep_table.py
    python benchmarks/sweep_table.py --prefix hedge60 --p-best   # any <prefix>-*.json, P(best)
"""

from __future__ import annotations

import argparse
import json

from ablation_table import OUT, cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", default="sweep2", help="reads docs/benchmark/<prefix>-*.json")
    parser.add_argument("--p-best", action="store_true", help="add how often the best was found")
    args = parser.parse_args()
    runs = {
        path.stem.removeprefix(f"{args.prefix}-"): json.loads(path.read_text())
        for path in sorted(OUT.glob(f"{args.prefix}-*.json"))
    }
    tags = list(runs)
    print("| option set | " + " | ".join(t.replace("-w", ", W=") for t in tags) + " |")
    print("|---|" + "---|" * len(tags))
    for method in runs[tags[0]]:
        cells = []
        for tag in tags:
            figures = runs[tag].get(method, {}).get("figures")
            text = cell(figures)
            if args.p_best and figures is not None:
                text += f", P(best) {figures['p_best']['value']:.0%}"
            cells.append(text)
        print(f"| {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
