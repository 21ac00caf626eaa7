"""Experiments on the forecast mode's rescue that did not become the default.

    python benchmarks/rescue_experiments.py --variant median-last-cut --seeds 60
    python benchmarks/rescue_experiments.py --variant hedge:0.15 --variant hedge:0.3 --seeds 60
    python benchmarks/rescue_experiments.py --variant hedge:0.3 \
        --swift-options '{"min_rank_persistence": false}'    # every trial with forecasts
    python benchmarks/rescue_experiments.py --variant same-step:1 --variant same-step:2

Each variant patches the rescue in this process (the replay runs in one process so the patch
applies) and replays the recorded tables beside the default on the same seeds:

* ``median-last-cut``: ``benchmarks/where_lost.py`` shows that on ``cnn_digits`` successive
  halving stops the best configuration at the last cut before enough trials have finished for
  a final-value model, so the rescue has nothing to ask. This keeps such a trial when its value
  at the cut is at least the median of every other trial's value there (MedianPruner's rule),
  only while no model can rescue it.
* ``hedge:H``: on ``lstm_babi17`` the rescue refuses the late bloomers because early epochs
  say little about later ones. This keeps a trial the rescue refuses when a hash of its number
  falls below ``H * (1 - R2)``, where ``R2`` is the share of the targets' variance that the
  rescue's weaker forecast explains (``1 - sigma_**2 / var``, ``sigma_`` the predictor's
  cross-validated error, over the curves it was fitted on): a hedge that grows where forecasts
  say little, as Hyperband's conservative brackets hedge everywhere.
* ``same-step:M``: in the last rung (after the last cut, where only a final-value model can
  prune and a 150-trial study rarely has one), prune at a decision point a trial whose value
  there is worse than the ``M``-th best of every other trial's value at that step: no model,
  only the observation that late values rank the final ones well (the script prints where
  each table's best configuration ranks among all of the table's at the last rung end and at
  the decision point after it). It bounds what the last stretch can still save.

Printed per table and worker count: Hyperband's mean regret, each variant's epochs against
Hyperband's (mean of the per-seed ratio) and mean regret, with 95% bootstrap intervals, then
each variant's regret minus the default's, paired by seed.
"""

from __future__ import annotations

import argparse
import binascii
import json
import math
from collections.abc import Callable
from typing import Any

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
_ORIGINAL = {
    "rescue_verdict": _decisions.rescue_verdict,
    "chance_rescue": _decisions.chance_rescue,
    "chance_record": _decisions.chance_record,
}


def _median_last_cut(max_resource: int) -> dict[str, Callable[..., Any]]:
    def rescue_verdict(
        view: _decisions.RungView,
        next_budget: int,
        reduction_factor: int,
        get_predictor: _decisions.GetPredictor,
    ) -> tuple[bool, str] | None:
        verdict = _ORIGINAL["rescue_verdict"](view, next_budget, reduction_factor, get_predictor)
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

    return {"rescue_verdict": rescue_verdict}


def _explained(view: _decisions.RungView, step: int, target: int, get: Any) -> float | None:
    """``1 - sigma_**2 / var`` of the ``(target, step)`` predictor over its pool's targets."""
    pool = _decisions._pool(view, step, target)
    predictor, _ = get(pool, step, target)
    if predictor is None:
        return None
    ys = np.array([_curves.value_at(t, target, view.sign) for t in pool], dtype=float)
    ys = ys[np.isfinite(ys)]
    if len(ys) < 3 or np.var(ys) == 0 or not math.isfinite(predictor.sigma_):
        return None
    return 1.0 - predictor.sigma_**2 / float(np.var(ys))


def _hedge(h: float) -> dict[str, Callable[..., Any]]:
    def chance_rescue(
        view: _decisions.RungView,
        options: Any,
        next_budget: int,
        get_predictor: _decisions.GetPredictor,
    ) -> tuple[bool, str] | None:
        verdict = _ORIGINAL["chance_rescue"](view, options, next_budget, get_predictor)
        if verdict is None or verdict[0]:
            return verdict
        step = view.rung.budget
        targets = [options.max_resource]
        if next_budget < options.max_resource:
            targets.append(next_budget)
        r2 = [r for t in targets if (r := _explained(view, step, t, get_predictor)) is not None]
        if not r2:
            return verdict
        u = binascii.crc32(f"hedge_{view.trial.number}".encode()) / 2**32
        if u < h * (1.0 - max(min(r2), 0.0)):
            return True, f"hedge: R2 {min(r2):.2f}"
        return verdict

    return {"chance_rescue": chance_rescue}


def _same_step(m: int) -> dict[str, Callable[..., Any]]:
    def chance_record(
        view: _decisions.RungView, options: Any, point: int, *args: Any, **kw: Any
    ) -> dict[str, Any] | None:
        record = _ORIGINAL["chance_record"](view, options, point, *args, **kw)
        if not view.rung.is_last or (record is not None and record["decision"] != "kept"):
            return record
        sign = view.sign
        own = _curves.value_at(view.trial, point, sign)
        values = sorted(
            v
            for t in view.others
            if (v := _curves.value_at(t, point, sign)) is not None and math.isfinite(v)
        )
        if own is None or len(values) < m:
            return record
        bar = values[m - 1]
        if own <= bar:
            return record
        base = _decisions._chance_base(view, point, options.max_resource)
        return base | {
            "threshold": sign * bar,
            "threshold_basis": f"same step, top {m}",
            "decision": "pruned",
            "reason": f"same step: worse than the {m}-th best of {len(values)} at {point}",
        }

    return {"chance_record": chance_record}


def _best_ranks(table: CurveTable, direction: str, steps: tuple[int, ...] = (27, 39)) -> str:
    """Where the table's best configuration ranks (1 = best) among all its configurations'
    values at each of ``steps``."""
    sign = 1.0 if direction == "minimize" else -1.0
    best = min(table.configs, key=lambda c: sign * table.finals[c])
    ranks = []
    for step in steps:
        at = {c: sign * table.values(c)[list(table.steps(c)).index(step)] for c in table.configs}
        ranks.append(f"{1 + sum(v < at[best] for v in at.values())} at {step}")
    return f"best configuration ranks {', '.join(ranks)} of {len(table.configs)}"


def _patches(variant: str, max_resource: int) -> dict[str, Callable[..., Any]]:
    if variant == "default":
        return {}
    if variant == "median-last-cut":
        return _median_last_cut(max_resource)
    if variant.startswith("hedge:"):
        return _hedge(float(variant.removeprefix("hedge:")))
    if variant.startswith("same-step:"):
        return _same_step(int(variant.removeprefix("same-step:")))
    raise SystemExit(f"unknown variant {variant!r}: median-last-cut, hedge:H or same-step:M")


def _fmt(e: Estimate) -> str:
    return f"{e.value:.3g} [{e.low:.3g}–{e.high:.3g}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", action="append", required=True)
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--workers", default="1,8")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument(
        "--swift-options",
        type=json.loads,
        default=None,
        help="pruner keyword arguments (JSON) of the default and every variant",
    )
    args = parser.parse_args()
    variants = ["default", *args.variant]
    for name in args.tables.split(","):
        direction = TABLES[name]
        table = CurveTable.load(bundled_table(name))
        worst = worst_regret(table, direction)
        if any(v.startswith("same-step:") for v in args.variant):
            print(f"{name}: {_best_ranks(table, direction)}")
        for workers in (int(w) for w in args.workers.split(",")):
            runs = {}
            for variant in variants:
                for attr, function in {**_ORIGINAL, **_patches(variant, table.max_step)}.items():
                    setattr(_decisions, attr, function)
                runs[variant] = run_benchmark(
                    table,
                    ["hyperband", "swift-svr"] if variant == "default" else ["swift-svr"],
                    range(args.seeds),
                    direction=direction,
                    n_workers=workers,
                    processes=1,
                    progress=False,
                    swift_options=args.swift_options,
                )
            for attr, function in _ORIGINAL.items():
                setattr(_decisions, attr, function)
            hyperband = runs["default"]["hyperband"]
            epochs = {r["seed"]: r["epochs"] for r in hyperband}
            reference = [worst if r["regret"] is None else r["regret"] for r in hyperband]
            print(f"{name}, {workers} worker(s), Hyperband: regret {_fmt(bootstrap(reference))}")
            regrets = {}
            for variant in variants:
                swift = runs[variant]["swift-svr"]
                regrets[variant] = [worst if r["regret"] is None else r["regret"] for r in swift]
                ratio = bootstrap([r["epochs"] / epochs[r["seed"]] for r in swift])
                print(
                    f"{name}, {workers} worker(s), {variant}: {_fmt(ratio)}× Hyperband, "
                    f"regret {_fmt(bootstrap(regrets[variant]))}"
                )
            for variant in args.variant:
                difference = [
                    a - b for a, b in zip(regrets[variant], regrets["default"], strict=True)
                ]
                print(f"  regret, {variant} minus default: {_fmt(bootstrap(difference))}")


if __name__ == "__main__":
    main()
