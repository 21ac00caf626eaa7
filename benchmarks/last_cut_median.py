"""An experiment that did not become the default: a median rule at the last cut.

    python benchmarks/last_cut_median.py                         # recorded tables, 1 and 8 workers
    python benchmarks/last_cut_median.py --tables lstm_babi17 --workers 1 --seeds 60

``benchmarks/where_lost.py`` shows where the forecast mode loses the best configuration of
``cnn_digits``: successive halving stops it at the last cut, before enough trials have finished
for a final-value model, so the rescue has nothing to ask. The variant keeps such a trial when
its value at the cut is at least the median of every other trial's value there (MedianPruner's
rule), only while no model can rescue it. It patches the rescue in this process (the replay
runs in one process so the patch applies), and runs the default beside it on the same seeds.

Printed per table and worker count: Hyperband's mean regret, each variant's epochs against
Hyperband's (mean of the per-seed ratio) and mean regret, with 95% bootstrap intervals, then
the variant's regret minus the default's, paired by seed.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import numpy as np

from optuna_qsvr.benchmark import (
    CurveTable,
    Estimate,
    bootstrap,
    bundled_table,
    run_benchmark,
    worst_regret,
)
from optuna_qsvr.pruners import _curves, _decisions

TABLES = {"cnn_digits": "maximize", "lstm_babi17": "maximize", "mlpf_delphes_sim": "minimize"}
_rescue_verdict = _decisions.rescue_verdict


def _median_at_last_cut(max_resource: int) -> Callable[..., tuple[bool, str] | None]:
    def rescue_verdict(
        view: _decisions.RungView,
        next_budget: int,
        reduction_factor: int,
        get_predictor: _decisions.GetPredictor,
    ) -> tuple[bool, str] | None:
        verdict = _rescue_verdict(view, next_budget, reduction_factor, get_predictor)
        if verdict is not None or next_budget != max_resource:
            return verdict
        budget, sign = view.rung.budget, view.sign
        own = _curves.value_at(view.trial, budget, sign)
        values = [
            v
            for t in view.others
            if (v := _curves.value_at(t, budget, sign)) is not None and math.isfinite(v)
        ]
        if own is None or len(values) < reduction_factor:
            return None
        bar = float(np.median(values))
        return own <= bar, f"last cut, no model: value vs median {sign * bar:.4g}"

    return rescue_verdict


def _fmt(e: Estimate) -> str:
    return f"{e.value:.3g} [{e.low:.3g}–{e.high:.3g}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--workers", default="1,8")
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    for name in args.tables.split(","):
        direction = TABLES[name]
        table = CurveTable.load(bundled_table(name))
        worst = worst_regret(table, direction)
        for workers in (int(w) for w in args.workers.split(",")):
            runs = {}
            for variant in ("default", "median at last cut"):
                _decisions.rescue_verdict = (
                    _rescue_verdict
                    if variant == "default"
                    else _median_at_last_cut(table.max_step)
                )
                runs[variant] = run_benchmark(
                    table,
                    ["hyperband", "swift-svr"],
                    range(args.seeds),
                    direction=direction,
                    n_workers=workers,
                    processes=1,
                    progress=False,
                )
            _decisions.rescue_verdict = _rescue_verdict
            reference = [
                worst if r["regret"] is None else r["regret"] for r in runs["default"]["hyperband"]
            ]
            print(f"{name}, {workers} worker(s), Hyperband: regret {_fmt(bootstrap(reference))}")
            regrets = {}
            for variant, result in runs.items():
                hyperband = {r["seed"]: r["epochs"] for r in result["hyperband"]}
                swift = result["swift-svr"]
                regrets[variant] = [worst if r["regret"] is None else r["regret"] for r in swift]
                ratio = bootstrap([r["epochs"] / hyperband[r["seed"]] for r in swift])
                print(
                    f"{name}, {workers} worker(s), {variant}: {_fmt(ratio)}× Hyperband, "
                    f"regret {_fmt(bootstrap(regrets[variant]))}"
                )
            difference = [
                a - b
                for a, b in zip(regrets["median at last cut"], regrets["default"], strict=True)
            ]
            print(f"  regret, median at last cut minus default: {_fmt(bootstrap(difference))}")


if __name__ == "__main__":
    main()
