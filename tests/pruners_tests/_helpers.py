"""Predictors and study helpers shared by the pruner's property, option and concurrency tests.

The predictors are registered (``test-*`` names) so a stored model of them loads in any process
that imports this module, as a user's predictor would.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import ClassVar

import numpy as np
import optuna
from optuna.trial import TrialState

from optuna_qsvr import SwiftHyperbandPruner
from optuna_qsvr.predictors import BasePredictor, ModelFormatError, register_predictor

FIT_LOG_ENV = "OPTUNA_QSVR_TEST_FIT_LOG"


def _last(curves: np.ndarray) -> np.ndarray:
    rows = np.atleast_2d(np.asarray(curves, dtype=float))
    return np.array([row[np.isfinite(row)][-1] for row in rows])


@register_predictor
class LastValue(BasePredictor):
    """Forecasts a curve's last reported value plus ``offset``, with error ``sigma``: monotone
    in the curve, deterministic, and transparent enough to check a decision by hand."""

    name = "test-last-value"

    def __init__(self, offset: float = 0.0, sigma: float = float("nan"), **named) -> None:
        # A named predictor is made with the pruner's ``features`` and ``residual``.
        self.named = named
        self.offset = offset
        self.sigma = sigma

    def fit(self, curves, targets, params=None):
        return self

    def predict(self, curves, params=None):
        last = _last(curves)
        return last + self.offset, np.full(len(last), self.sigma)

    def to_json(self) -> str:
        return json.dumps({"offset": self.offset, "sigma": _nan_none(self.sigma)})

    @classmethod
    def from_json(cls, text: str):
        doc = json.loads(text)
        if not isinstance(doc, dict) or set(doc) != {"offset", "sigma"}:
            raise ModelFormatError(f"bad {cls.name} record")
        return cls(doc["offset"], float("nan") if doc["sigma"] is None else doc["sigma"])


def _nan_none(x: float) -> float | None:
    return None if x != x else x


@register_predictor
class Recorder(LastValue):
    """A last-value forecaster that keeps what it was fitted on and what it was asked, and
    counts its fits in the class and, when ``OPTUNA_QSVR_TEST_FIT_LOG`` names a file, in that
    file (one line per fit: ``pid key-less tag``) so that fits in other processes count."""

    name = "test-recorder"
    fits = 0
    fitted: ClassVar[list[tuple[np.ndarray, np.ndarray, list]]] = []
    asked: ClassVar[list[np.ndarray]] = []
    fit_seconds = 0.0
    fail_with: str | None = None
    _lock = threading.Lock()

    def fit(self, curves, targets, params=None):
        with Recorder._lock:
            type(self).fits += 1
            type(self).fitted.append((np.array(curves), np.array(targets), list(params or [])))
        path = os.environ.get(FIT_LOG_ENV)
        if path:
            with open(path, "a") as f:
                f.write(f"{os.getpid()} {curves.shape[1]} {len(targets)}\n")
        if self.fit_seconds:
            time.sleep(self.fit_seconds)
        if self.fail_with:
            raise RuntimeError(self.fail_with)
        return self

    def predict(self, curves, params=None):
        type(self).asked.append(np.array(curves))
        return super().predict(curves, params)

    @classmethod
    def reset(cls, *, fit_seconds: float = 0.0, fail_with: str | None = None) -> None:
        cls.fits, cls.fitted, cls.asked = 0, [], []
        cls.fit_seconds, cls.fail_with = fit_seconds, fail_with


def flat(value: float, steps: int) -> dict[int, float]:
    return {s: value for s in range(1, steps + 1)}


def add_complete(study: optuna.Study, curve: dict[int, float], params=None) -> None:
    """A finished trial with ``curve`` (its value the curve's last), added without the pruner."""
    distributions = {k: optuna.distributions.FloatDistribution(-1e9, 1e9) for k in params or {}}
    study.add_trial(
        optuna.trial.create_trial(
            value=curve[max(curve)],
            intermediate_values=curve,
            params=params or {},
            distributions=distributions,
        )
    )


def run_curve(study: optuna.Study, curve: dict[int, float]) -> optuna.trial.FrozenTrial:
    """Report a curve step by step through ask-and-tell, obeying the pruner."""
    trial = study.ask()
    for step in sorted(curve):
        trial.report(curve[step], step)
        if trial.should_prune():
            study.tell(trial, state=TrialState.PRUNED)
            break
    else:
        study.tell(trial, curve[max(curve)])
    return study._storage.get_trial(trial._trial_id)


def ask_in_bracket(study: optuna.Study, pruner: SwiftHyperbandPruner, bracket: int) -> None:
    """Fill trial numbers until the next one falls in ``bracket`` (fillers fail at once,
    with no values, so they leave the study's rank persistence, and the next trial's regime,
    as they are)."""
    regime = pruner._regime_now(study)[0] if pruner._regimes else "forecast"
    for _ in range(1000):  # bounded: a broken bracket assignment fails, never hangs
        if pruner._bracket_in(regime, study.study_name, len(study.trials)) == bracket:
            return
        study.tell(study.ask(), state=TrialState.FAIL)
    raise AssertionError(f"no trial number falls in bracket {bracket}")


def run_interleaved(
    study: optuna.Study, curves: np.ndarray, n_parallel: int, sign: float = 1.0
) -> None:
    """Trials report one epoch at a time, ``n_parallel`` at once in round-robin order, each
    value times ``sign``; the pruner is asked after every epoch but the last."""
    queue = list(range(len(curves)))
    running: list[list] = []
    while queue or running:
        while queue and len(running) < n_parallel:
            running.append([study.ask(), queue.pop(0), 0])
        for item in list(running):
            trial, row, done = item
            step = done + 1
            value = float(sign * curves[row, done])
            trial.report(value, step)
            item[2] = step
            if step == curves.shape[1]:
                study.tell(trial, value)
            elif trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
            else:
                continue
            running.remove(item)


def crossing_curves(n: int, steps: int, seed: int, nan_fraction: float = 0.0) -> np.ndarray:
    """Exponential decays with crossing rates and floors (late bloomers included)."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, steps + 1)
    start = rng.uniform(0.5, 1.0, (n, 1))
    rate = rng.uniform(0.01, 0.6, (n, 1))
    floor = rng.uniform(0.0, 0.4, (n, 1))
    curves = floor + (start - floor) * np.exp(-rate * t) + rng.normal(0.0, 0.01, (n, steps))
    if nan_fraction:
        curves[rng.random(curves.shape) < nan_fraction] = np.nan
    return curves
