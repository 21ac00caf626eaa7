"""Turn the JSON files of benchmarks/compute.sh into the README's markdown table."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ORDER = ["none", "median", "sha", "hyperband", "swift-svr", "swift-qsvr", "oracle"]


def _q(values: list[float]) -> tuple[float, float, float]:
    v = sorted(values)
    if len(v) == 1:
        return v[0], v[0], v[0]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return q[0], statistics.median(v), q[2]


def _row(table: str, d: dict, method: str, hb: list[float]) -> str:
    lo, med, hi = _q(d["epochs"])
    ratio = statistics.median(e / h for e, h in zip(d["epochs"], hb, strict=True))
    blo, bmed, bhi = _q([b for b in d["best_final"] if b is not None])
    regrets = [r for r in d["regret"] if r is not None]
    fits = [f for f in d.get("n_fits", []) if f is not None]
    secs = [s for s in d.get("fit_seconds", []) if s is not None]
    fit_text = f"{statistics.median(fits):.0f} ({statistics.median(secs):.1f})" if fits else "-"
    return (
        f"| {table} | {d['n_workers']} | {method} | {med:.0f} [{lo:.0f}–{hi:.0f}] | {ratio:.2f} | "
        f"{bmed:.4g} [{blo:.4g}–{bhi:.4g}] | "
        f"{statistics.median(regrets):.3g} ({statistics.mean(regrets):.3g}) | "
        f"{statistics.median(d['n_pruned']):.0f} | {fit_text} |"
    )


def main(folder: str) -> None:
    print(
        "| table | workers | method | epochs, median [IQR] | × Hyperband | best final, median "
        "[IQR] | regret, median (mean) | pruned | fits (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for path in sorted(p for p in Path(folder).glob("*.json") if not p.stem.endswith("-p33")):
        table = path.stem.rsplit("-w", 1)[0]
        data = json.loads(path.read_text())
        hb = data["hyperband"]["epochs"]
        p33_path = path.with_name(f"{path.stem}-p33.json")
        p33 = json.loads(p33_path.read_text()) if p33_path.exists() else None
        for method in [m for m in ORDER if m in data]:
            print(_row(table, data[method], method, hb))
            if method == "swift-svr" and p33 is not None:
                print(_row(table, p33["swift-svr"], "swift-svr (P33)", hb))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/benchmark")
