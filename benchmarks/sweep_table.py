"""The README's table of the option sweep around the default (``benchmarks/default_sweep.sh``):
per option set, the benchmark's epochs against Hyperband's and mean regret (with its intervals)
on each recorded table and worker count, from ``docs/benchmark/sweep2-<table>-w<W>.json``.

    python benchmarks/sweep_table.py
"""

from __future__ import annotations

import json

from ablation_table import OUT, cell


def main() -> None:
    runs = {
        path.stem.removeprefix("sweep2-"): json.loads(path.read_text())
        for path in sorted(OUT.glob("sweep2-*.json"))
    }
    tags = list(runs)
    print("| option set | " + " | ".join(t.replace("-w", ", W=") for t in tags) + " |")
    print("|---|" + "---|" * len(tags))
    for method in runs[tags[0]]:
        cells = [cell(runs[t].get(method, {}).get("figures")) for t in tags]
        print(f"| {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
