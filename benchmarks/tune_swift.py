"""Measure Swift-Hyperband variants against Optuna's HyperbandPruner on recorded tables.

Every variant replays the same configuration sequences (one per seed) as Hyperband, so
the differences come from pruning alone. Prints, per table and variant, the median epochs
relative to Hyperband and the median best final value and regret.

    python benchmarks/tune_swift.py \\
        --curves optuna_qsvr/benchmark/curves/mlpf_delphes_sim.csv.gz \\
        --direction minimize --seeds 10 --variants '{"rungs": "hyperband"}' '{}'
"""

from __future__ import annotations

import argparse
import json
import statistics
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def _run(
    curves: str, direction: str, seed: int, variant: str | None, n_trials: int, n_workers: int
) -> dict[str, Any]:
    import optuna

    from optuna_qsvr import SwiftHyperbandPruner
    from optuna_qsvr.benchmark import CurveTable, config_sequence, replay_async

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    table = CurveTable.load(curves)
    if variant is None:
        pruner: Any = optuna.pruners.HyperbandPruner(1, table.max_step, 3)
    else:
        pruner = SwiftHyperbandPruner(1, table.max_step, 3, **json.loads(variant))
    study = optuna.create_study(
        study_name=f"replay-seed{seed}",
        direction=direction,
        pruner=pruner,
        sampler=optuna.samplers.RandomSampler(seed=seed),
    )
    result = replay_async(study, table, config_sequence(table, seed, n_trials), n_workers)
    best = table.best_final(direction)
    regret = abs(result.best_final - best)
    return {"epochs": result.epochs, "best": result.best_final, "regret": regret}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", required=True)
    parser.add_argument("--direction", required=True)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--n-trials", type=int, default=150)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=["{}"])
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    jobs = {}
    with ProcessPoolExecutor(args.processes) as pool:
        for variant in [None, *args.variants]:
            for seed in range(args.seeds):
                jobs[(variant, seed)] = pool.submit(
                    _run, args.curves, args.direction, seed, variant, args.n_trials, args.workers
                )
        results = {k: f.result() for k, f in jobs.items()}
    hb = [results[(None, s)]["epochs"] for s in range(args.seeds)]
    for variant in [None, *args.variants]:
        rows = [results[(variant, s)] for s in range(args.seeds)]
        ratio = statistics.median(r["epochs"] / h for r, h in zip(rows, hb, strict=True))
        print(
            f"{variant or 'hyperband':60s} epochs x{ratio:.2f}  "
            f"best {statistics.median(r['best'] for r in rows):.4g}  "
            f"regret {statistics.median(r['regret'] for r in rows):.4g} "
            f"(mean {statistics.mean(r['regret'] for r in rows):.4g})"
        )


if __name__ == "__main__":
    main()
