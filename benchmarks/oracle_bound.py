import json, statistics, sys
import numpy as np, optuna
from concurrent.futures import ProcessPoolExecutor
from optuna_qsvr import SwiftHyperbandPruner
from optuna_qsvr.predictors import BasePredictor
from studies.benchmark import config_sequence
from studies.replay import CurveTable, replay_async
CURVES, DIRECTION = sys.argv[1], sys.argv[2]

class Oracle(BasePredictor):
    def fit(self, curves, targets, params=None):
        t = CurveTable.load(CURVES); self.t = t
        row, y = np.asarray(curves)[0], targets[0]
        sign = -1.0 if DIRECTION == "maximize" else 1.0
        for c in t.configs:
            v = sign * t.values(c)
            if np.allclose(v[: len(row)], row):
                self.step = int(np.flatnonzero(np.isclose(v, y))[0])
                break
        self.sign = sign
        return self
    def predict(self, curves, params=None):
        out = []
        for row in np.atleast_2d(curves):
            for c in self.t.configs:
                v = self.sign * self.t.values(c)
                if np.allclose(v[: len(row)], row):
                    out.append(v[self.step]); break
        return np.array(out), np.zeros(len(out))
    def to_json(self): return "{}"
    @classmethod
    def from_json(cls, text): raise NotImplementedError

def run(seed, variant):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    table = CurveTable.load(CURVES)
    kw = json.loads(variant) if variant else None
    pruner = optuna.pruners.HyperbandPruner(1, table.max_step, 3) if kw is None else SwiftHyperbandPruner(1, table.max_step, 3, predictor=Oracle, **kw)
    st = optuna.create_study(study_name=f"replay-seed{seed}", direction=DIRECTION, pruner=pruner)
    r = replay_async(st, table, config_sequence(table, seed, 150), 1)
    return r.epochs, abs(r.best_final - table.best_final(DIRECTION))

variants = [None] + sys.argv[3:]
with ProcessPoolExecutor(2) as pool:
    res = {(v, s): pool.submit(run, s, v) for v in variants for s in range(12)}
    res = {k: f.result() for k, f in res.items()}
hb = [res[(None, s)][0] for s in range(12)]
for v in variants:
    e = statistics.median(res[(v, s)][0] / hb[s] for s in range(12)); g = [res[(v, s)][1] for s in range(12)]
    print(f"{v or 'hyperband':55s} x{e:.2f} regret median {statistics.median(g):.4g} mean {statistics.mean(g):.4g}")
