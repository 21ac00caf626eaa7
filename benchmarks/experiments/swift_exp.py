"""Prototype pruner/predictor variants for Swift-Hyperband (experiments only).

SwiftExp(SwiftHyperbandPruner) adds, in forecast_final (Baker) mode, rules that compare a
trial's forecast final value with a shrinkage-aware threshold:
  rule="baker": prune if forecast > best final so far (the library's rule)
  rule="cal":   prune if forecast - m > best, m = (1-alpha) quantile of (cv forecast - final)
                over the predictor's training curves (one-sided split-conformal margin)
  rule="rank":  keep if forecast <= best or within the top-q of the training curves' cv
                forecasts (forecasts compared with forecasts: SVR shrinks the extremes)
CVSVR: NuSVR predictor that keeps its cross-validated (LOO) training forecasts.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.model_selection import KFold, LeaveOneOut, cross_val_predict
from sklearn.preprocessing import MinMaxScaler
from sklearn.svm import NuSVR

from optuna_qsvr.predictors._base import BasePredictor, ModelFormatError
from optuna_qsvr.predictors._features import ParamEncoder, curve_features
from optuna_qsvr.pruners import _swift_hyperband as sh
from optuna_qsvr.pruners._swift_hyperband import SwiftHyperbandPruner


class CVSVR(BasePredictor):
    def __init__(self, features=("curve",), nu=0.5, C=1.0, gamma="scale", cv="loo", last_k=None, residual=False):
        self.features, self.nu, self.C, self.gamma, self.cv = tuple(features), nu, C, gamma, cv
        self.last_k, self.residual = last_k, residual

    def _base(self, curves):
        if not self.residual:
            return 0.0
        c = np.array(curves, dtype=float, ndmin=2)
        return np.array([row[np.isfinite(row)][-1] for row in c])

    def _X(self, curves, params):
        curves = np.array(curves, dtype=float, ndmin=2)
        if self.last_k:
            curves = curves[:, -self.last_k:]
        kinds = tuple(k for k in self.features if k != "params" or self.enc is not None)
        X = curve_features(curves, params, kinds=kinds, encoder=self.enc)
        return X

    def fit(self, curves, targets, params=None):
        targets = np.asarray(targets, float)
        base = self._base(curves)
        full_targets = targets
        targets = targets - base
        self.enc = ParamEncoder().fit(params) if "params" in self.features and params else None
        X = self._X(curves, params)
        self.xs = MinMaxScaler().fit(X)
        self.ys = MinMaxScaler().fit(targets[:, None])
        Xs = np.where(np.isfinite(self.xs.transform(X)), self.xs.transform(X), 0.5)
        y = self.ys.transform(targets[:, None]).ravel()
        self.est = NuSVR(nu=self.nu, C=self.C, gamma=self.gamma).fit(Xs, y)
        folds = LeaveOneOut() if self.cv == "loo" else KFold(min(self.cv, len(y)), shuffle=True, random_state=0)
        p = cross_val_predict(NuSVR(nu=self.nu, C=self.C, gamma=self.gamma), Xs, y, cv=folds)
        self.cv_pred_ = self.ys.inverse_transform(p[:, None]).ravel() + base
        self.train_y_ = full_targets
        targets = full_targets
        self.sigma_ = float(np.sqrt(np.mean((self.cv_pred_ - targets) ** 2)))
        return self

    def predict(self, curves, params=None):
        X = self._X(curves, params)
        Xs = self.xs.transform(X)
        Xs = np.where(np.isfinite(Xs), Xs, 0.5)
        m = self.ys.inverse_transform(self.est.predict(Xs)[:, None]).ravel() + self._base(curves)
        return m, np.full(m.shape, self.sigma_)

    def to_json(self):
        return "{}"

    @classmethod
    def from_json(cls, text):
        raise ModelFormatError("in-process only")


class SwiftExp(SwiftHyperbandPruner):
    def __init__(self, *a, rule="baker", alpha=0.1, q=0.2, svr=None, min_peers=5, keep_best=True, smooth=1, smooth_kind="mean", min_keep=1, min_save=0, **kw):
        svr = dict(svr or {})
        feats = kw.pop("features", ("curve",))
        kw.setdefault("forecast_final", True)
        kw["predictor"] = lambda: CVSVR(features=feats, **svr)
        super().__init__(*a, **kw)
        self.rule, self.alpha, self.q = rule, alpha, q
        self.min_peers, self.keep_best = min_peers, keep_best
        self.smooth, self.smooth_kind = smooth, smooth_kind
        self.min_keep, self.min_save = min_keep, min_save

    def _forecast_decision(self, study, trial, rung):
        t_star = rung.decision_step
        sign = self._sign(study)
        target = self._schedule.max_resource if self._forecast_final else rung.budget
        key = f"r{target}_t{t_star}"
        trials = sh._all_trials(study)
        pool = [t for t in trials if t.number != trial.number and sh._has_curve(t, t_star, target)]
        record: dict[str, Any] = {"bracket": rung.bracket, "rung": rung.index, "budget": rung.budget,
                                  "decision_step": t_star, "step": trial.last_step, "key": key,
                                  "forecast": None, "threshold": None}
        if rung.budget - t_star < self.min_save:
            record["decision"] = "skipped"  # saves too little to risk a late bloomer
            return self._record(study, trial, rung, record)
        if len(pool) < self._min_train_curves:
            record["decision"] = "full"
            return self._record(study, trial, rung, record)
        model, why = self._predictor(study, key, pool, t_star, target, sign)
        if model is None:
            record["decision"] = "no-forecast"
            return self._record(study, trial, rung, record)
        f = float(model.predict(sh._curve(trial, t_star, sign)[None, :], [trial.params])[0][0])
        finals = [v for t in pool for v in [sh._value_at(t, target, sign)] if v is not None and math.isfinite(v)]
        best = min(finals)
        if self.rule == "baker":
            keep = f <= best
        elif self.rule == "cal":
            m = float(np.quantile(model.cv_pred_ - model.train_y_, 1 - self.alpha))
            keep = f - max(m, 0.0) <= best
        elif self.rule == "rank":
            keep = f <= best or f <= float(np.quantile(model.cv_pred_, self.q))
        elif self.rule == "rankcal":
            m = float(np.quantile(model.cv_pred_ - model.train_y_, 1 - self.alpha))
            keep = f - max(m, 0.0) <= best or f <= float(np.quantile(model.cv_pred_, self.q))
        elif self.rule in ("peer", "peerraw"):
            # Rank among every other trial that reached t*: forecasts compared with forecasts.
            peers = [t for t in trials if t.number != trial.number and t.last_step is not None
                     and t.last_step >= t_star and t_star in t.intermediate_values]
            if len(peers) < self.min_peers:
                keep = True
            else:
                if self.rule == "peer":
                    C = np.vstack([sh._curve(t, t_star, sign) for t in peers])
                    pf = model.predict(C, [t.params for t in peers])[0]
                    me = f
                else:
                    k = self.smooth
                    def sm(t):
                        v = [sign * t.intermediate_values[s] for s in range(t_star - k + 1, t_star + 1) if s in t.intermediate_values]
                        return float(np.mean(v)) if self.smooth_kind == "mean" else float(np.min(v))
                    pf = np.array([sm(t) for t in peers])
                    me = sm(trial)
                rank = int(np.sum(pf < me)) + 1
                keep = rank <= max(self.min_keep, math.ceil(self.q * (len(peers) + 1))) or (self.keep_best and f <= best)
        else:
            raise ValueError(self.rule)
        record["forecast"] = sign * f
        record["threshold"] = sign * best
        record["decision"] = "kept" if keep else "pruned"
        return self._record(study, trial, rung, record)


class SwiftExpA(SwiftExp):
    """SwiftExp whose ASHA step also counts rung-mates forecast-pruned at EARLIER rungs,
    weighted eta^-(i-j) (the share of them Hyperband would have promoted to rung i), so that
    early forecast stops do not make later ASHA rungs stricter than Hyperband's."""

    def _promotion_decision(self, study, trial, rung):
        sign = self._sign(study)
        eta = self._schedule.reduction_factor
        value = sh._value_at(trial, rung.budget, sign)
        competing, ghosts = [], 0.0
        for t in sh._all_trials(study):
            if t.number == trial.number or self.bracket_of(study.study_name, t.number) != rung.bracket:
                continue
            v = sh._value_at(t, rung.budget, sign)
            if v is None:
                v = sh._pruned_forecast(t, rung, sign)
            if v is not None:
                competing.append(v)
                continue
            for j in range(rung.index):
                rec = t.system_attrs.get(f"{sh.DECISION_PREFIX}{j}")
                if isinstance(rec, dict) and rec.get("decision") == "pruned":
                    ghosts += float(eta) ** -(rung.index - j)
                    break
        own = value if value is not None else math.inf
        competing.append(own)
        competing.sort()
        n_eff = len(competing) + (ghosts if self.ghosts else 0.0)
        idx = max(int(n_eff // eta) - 1, 0)
        idx = min(idx, len(competing) - 1)
        promoted = own <= competing[idx] and math.isfinite(own)
        study._storage.set_trial_system_attr(trial._trial_id, f"{sh.PROMOTION_PREFIX}{rung.index}",
                                             {"rung": rung.index, "decision": "promoted" if promoted else "stopped"})
        return not promoted

    def __init__(self, *a, ghosts=True, **kw):
        super().__init__(*a, **kw)
        self.ghosts = ghosts
