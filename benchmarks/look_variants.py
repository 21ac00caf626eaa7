"""Variants of the second look tried on the recorded tables before the option was chosen.

    python benchmarks/look_variants.py                      # every variant, 20 seeds
    python benchmarks/look_variants.py --variant cut --seeds 60

Each variant replaces ``_crowd.second_look`` in this process (the benchmark's worker processes
are forked from it, so the patch applies there too) and replays the recorded tables beside the
default (no look) on the same seeds, 1 and 8 workers:

* ``crowd``: the option as shipped (``second_look=True``): a trial entering a crowd of at least
  ``1/eta`` of the values at the step, tied within the study's noise, trains on once;
* ``crowd-end``: the same at rung ends only, never at a decision point inside a rung;
* ``cut``: a trial whose value is within the noise of the step's top-``1/eta`` value (the cut
  successive halving would make there), or better, trains on, every time;
* ``cut1``: ``cut``, but not when it was already within the noise of the cut at its previous
  decision point;
* ``cut1-end``: ``cut1`` at rung ends only.

Printed per table and worker count: Hyperband's mean regret, each variant's epochs against
Hyperband's (mean of the per-seed ratio) and mean regret, and its regret minus the default's,
paired by seed, with 95% bootstrap intervals. The variants were designed on the recorded
tables; ``--tables cnn1d_mnist1d`` measures them once on the table recorded after them, which
reports and chooses nothing:

    python benchmarks/look_variants.py --tables cnn1d_mnist1d
"""

from __future__ import annotations

import argparse
import math

from optuna_qsvr.benchmark import (
    CurveTable,
    bootstrap,
    bundled_table,
    infer_direction,
    run_benchmark,
    worst_regret,
)
from optuna_qsvr.pruners import _crowd, _curves
from optuna_qsvr.pruners._persistence import RECENT

TABLES = {"cnn_digits": "maximize", "lstm_babi17": "maximize", "mlpf_delphes_sim": "minimize"}
VARIANTS = ("crowd", "crowd-end", "cut", "cut1", "cut1-end")
_SHIPPED = _crowd.second_look


def _at_cut(view, step: int, eta: int, min_pairs: int) -> bool:
    """Whether the trial's value at ``step`` is within the noise of the top-``1/eta`` value of
    the others' there, or better (the walk, not the index: an experiment, not the pruner)."""
    own = _curves.value_at(view.trial, step, view.sign)
    if own is None or not math.isfinite(own):
        return False
    first, second = _crowd.paired_values([*view.others, view.trial], step, step + 1)
    noise = _crowd.noise_level(first[-RECENT:], second[-RECENT:], min_pairs)
    values = sorted(
        v for t in view.others if (v := _curves.value_at(t, step, view.sign)) is not None
    )
    if not math.isfinite(noise) or len(values) < min_pairs:
        return False
    return own - values[max(math.ceil(len(values) / eta) - 1, 0)] <= noise


def _variant(name: str):
    def second_look(view, step, *, reduction_factor, ratio, min_resource, min_pairs):
        if name.endswith("-end") and step != view.rung.budget:
            return None
        if name.startswith("crowd"):
            return _SHIPPED(
                view,
                step,
                reduction_factor=reduction_factor,
                ratio=ratio,
                min_resource=min_resource,
                min_pairs=min_pairs,
            )
        if not _at_cut(view, step, reduction_factor, min_pairs):
            return None
        before = _crowd.previous_look(view, step, ratio, min_resource)
        if name.startswith("cut1") and before is not None:
            if _at_cut(view, before, reduction_factor, min_pairs):
                return None
        return "second look: at the cut", _crowd.Crowd(step, math.nan, math.nan, 0)

    return second_look


def _fmt(estimate, signed: bool = False) -> str:
    f = "+.4f" if signed else ".4f"
    return f"{estimate.value:{f}} [{estimate.low:{f}}, {estimate.high:{f}}]"


def _regrets(rows: list, worst: float) -> list[float]:
    """Per seed, in seed order (a seed that finished no trial at the table's worst)."""
    rows = sorted(rows, key=lambda r: r["seed"])
    return [worst if r["regret"] is None else r["regret"] for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", action="append", choices=VARIANTS)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--tables", default=",".join(TABLES), help="comma-separated")
    args = parser.parse_args()
    variants = args.variant or list(VARIANTS)
    for name in args.tables.split(","):
        table = CurveTable.load(bundled_table(name))
        direction = TABLES.get(name) or infer_direction(table.metric)
        worst = worst_regret(table, direction)
        for workers in (1, 8):
            runs = {}
            for variant in ("default", *variants):
                _crowd.second_look = _SHIPPED if variant == "default" else _variant(variant)
                runs[variant] = run_benchmark(
                    table,
                    ["hyperband", "swift-svr"] if variant == "default" else ["swift-svr"],
                    range(args.seeds),
                    direction=direction,
                    n_workers=workers,
                    processes=2,
                    progress=False,
                    swift_options={"second_look": variant != "default"},
                )
            _crowd.second_look = _SHIPPED

            hyperband = runs["default"]["hyperband"]
            epochs = {r["seed"]: r["epochs"] for r in hyperband}
            reference = bootstrap(_regrets(hyperband, worst))
            print(f"{name}, {workers} worker(s), Hyperband: regret {_fmt(reference)}")
            base = _regrets(runs["default"]["swift-svr"], worst)
            for variant in ("default", *variants):
                rows = runs[variant]["swift-svr"]
                ratio = bootstrap([r["epochs"] / epochs[r["seed"]] for r in rows])
                mine = _regrets(rows, worst)
                diff = bootstrap([a - b for a, b in zip(mine, base, strict=True)])
                print(
                    f"  {variant:9s} {ratio.value:.2f}× Hyperband, regret "
                    f"{_fmt(bootstrap(mine))}, minus the default's {_fmt(diff, True)}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
