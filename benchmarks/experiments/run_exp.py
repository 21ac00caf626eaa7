"""Copy of tune_swift.py for experiments: variants may name {"cls": "SwiftExp", ...}.
Hyperband results are cached. Prints epochs ratio, median best (HB's too), mean regret."""
from __future__ import annotations

import argparse, json, os, statistics, sys
from concurrent.futures import ProcessPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
TABLES = {"mlpf": ("mlpf_delphes_sim", "minimize"), "lstm": ("lstm_babi17", "maximize"),
          "cnn": ("cnn_digits", "maximize")}


def _run(tab, seed, variant, n_trials, n_workers):
    sys.path[:0] = [HERE, os.path.dirname(os.path.dirname(HERE))]
    import optuna
    from optuna_qsvr import SwiftHyperbandPruner
    from studies.benchmark import config_sequence
    from studies.replay import CurveTable, replay_async
    import swift_exp
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    import logging; logging.getLogger("optuna_qsvr").setLevel(logging.ERROR)
    name, direction = TABLES[tab]
    table = CurveTable.load(os.path.join(HERE, "tables", f"{name}.csv.gz"))
    if variant is None:
        pruner = optuna.pruners.HyperbandPruner(1, table.max_step, 3)
    else:
        kw = json.loads(variant)
        cls = getattr(swift_exp, kw.pop("cls")) if "cls" in kw else SwiftHyperbandPruner
        pruner = cls(1, table.max_step, 3, **kw)
    study = optuna.create_study(study_name=f"replay-seed{seed}", direction=direction, pruner=pruner,
                                sampler=optuna.samplers.RandomSampler(seed=seed))
    r = replay_async(study, table, config_sequence(table, seed, n_trials), n_workers)
    return {"epochs": r.epochs, "best": r.best_final, "regret": abs(r.best_final - table.best_final(direction))}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tables", nargs="+", default=["mlpf", "lstm", "cnn"])
    p.add_argument("--seeds", type=int, default=12)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--variants", nargs="+", default=["{}"])
    p.add_argument("--processes", type=int, default=1)
    a = p.parse_args()
    cache_f = os.path.join(HERE, "hb_cache.json")
    cache = json.load(open(cache_f)) if os.path.exists(cache_f) else {}
    with ProcessPoolExecutor(a.processes) as pool:
        for tab in a.tables:
            res = {}
            for s in range(a.seeds):
                k = f"{tab}/{s}/{a.workers}"
                if k not in cache:
                    cache[k] = _run(tab, s, None, 150, a.workers)
                res[(None, s)] = cache[k]
            json.dump(cache, open(cache_f, "w"))
            jobs = {(v, s): pool.submit(_run, tab, s, v, 150, a.workers) for v in a.variants for s in range(a.seeds)}
            res.update({k: f.result() for k, f in jobs.items()})
            hb = [res[(None, s)]["epochs"] for s in range(a.seeds)]
            for v in [None, *a.variants]:
                rows = [res[(v, s)] for s in range(a.seeds)]
                ratio = statistics.median(r["epochs"] / h for r, h in zip(rows, hb))
                hbw = sum(r["regret"] > res[(None, s)]["regret"] + 1e-12 for s, r in enumerate(rows))
                print(f"{tab:4s} w{a.workers} {v or 'hyperband':70s} x{ratio:.3f} best {statistics.median(r['best'] for r in rows):.4g} "
                      f"regret mean {statistics.mean(r['regret'] for r in rows):.4g} worse-seeds {hbw}", flush=True)


if __name__ == "__main__":
    main()
