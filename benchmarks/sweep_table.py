"""The README's table of the option sweep around the default (``benchmarks/default_sweep.sh``):
per option set, epochs against Hyperband's and mean regret on each recorded table and worker
count, from ``docs/benchmark/sweep2-<table>-w<W>.json``.

    python benchmarks/sweep_table.py
"""

from __future__ import annotations

import glob
import json
import statistics
from pathlib import Path

OUT = Path(__file__).parents[1] / "docs" / "benchmark"


def main() -> None:
    cells: dict[str, dict[str, str]] = {}
    tags = []
    for path in sorted(glob.glob(str(OUT / "sweep2-*.json"))):
        tag = Path(path).stem.removeprefix("sweep2-")
        tags.append(tag)
        runs = json.loads(Path(path).read_text())
        hyperband = statistics.mean(runs["hyperband"]["epochs"])
        for method, run in runs.items():
            ratio = statistics.mean(run["epochs"]) / hyperband
            regret = statistics.mean(run["regret"])
            cells.setdefault(method, {})[tag] = f"{ratio:.2f}×, {regret:.4f}"
    print("| option set | " + " | ".join(t.replace("-w", ", W=") for t in tags) + " |")
    print("|---|" + "---|" * len(tags))
    for method, row in cells.items():
        print(f"| {method} | " + " | ".join(row.get(t, "") for t in tags) + " |")


if __name__ == "__main__":
    main()
