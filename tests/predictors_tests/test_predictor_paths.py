"""Branches of the predictors that the maths tests do not reach: where a cloud token comes
from, which Leap solver a name gives, how hyperparameters become features at their edges,
what a Q-SVR predictor passes to its estimator and records, and the normal error model."""

from __future__ import annotations

import math
from typing import ClassVar

import dimod
import numpy as np
import pytest
from scipy.stats import norm

from optuna_qsvr.predictors import BasePredictor, ParamEncoder, QSVRPredictor, _annealers

FAST = dict(num_reads=5, annealer_params={"num_sweeps": 20})


# -- credentials and solvers ----------------------------------------------------------------
def _config(monkeypatch, value) -> None:
    import dwave.cloud.config

    def load_config(*args, **kwargs):
        if isinstance(value, Exception):
            raise value
        return value

    monkeypatch.setattr(dwave.cloud.config, "load_config", load_config)


@pytest.mark.parametrize(
    ("env", "config", "expected"),
    [
        ("DEV-token", {}, True),
        ("  DEV-token ", {}, True),
        ("   ", {}, False),  # blank: the configuration file decides
        (None, {"token": "from-file"}, True),
        (None, {"token": ""}, False),
        (None, {"token": None}, False),
        (None, {"TOKEN": "wrong key"}, False),
        (None, {}, False),
        (None, OSError("unreadable config"), False),
    ],
)
def test_a_cloud_token_comes_from_the_environment_or_the_config(
    monkeypatch, env, config, expected
) -> None:
    if env is None:
        monkeypatch.delenv("DWAVE_API_TOKEN", raising=False)
    else:
        monkeypatch.setenv("DWAVE_API_TOKEN", env)
    monkeypatch.setenv("dwave_api_token", "lower-case is another variable")
    _config(monkeypatch, config)
    assert _annealers._has_cloud_token() is expected


def test_qpu_and_hybrid_names_build_their_own_leap_solver(monkeypatch) -> None:
    import dwave.system

    made: list = []

    class Fake(dimod.Sampler):
        parameters: ClassVar[dict] = {}
        properties: ClassVar[dict] = {}

        def __init__(self, child=None) -> None:
            made.append((type(self).__name__, child))

        def sample(self, bqm, **kwargs):  # never called
            raise AssertionError

    class DWaveSampler(Fake):
        pass

    class EmbeddingComposite(Fake):
        pass

    class LeapHybridSampler(Fake):
        pass

    for cls in (DWaveSampler, EmbeddingComposite, LeapHybridSampler):
        monkeypatch.setattr(dwave.system, cls.__name__, cls)
    monkeypatch.setenv("DWAVE_API_TOKEN", "DEV-token")
    qpu = _annealers.resolve_annealer("qpu")
    assert type(qpu) is EmbeddingComposite
    assert [name for name, _ in made] == ["DWaveSampler", "EmbeddingComposite"]
    assert type(made[1][1]) is DWaveSampler  # the composite wraps the QPU
    made.clear()
    assert type(_annealers.resolve_annealer("hybrid")) is LeapHybridSampler
    assert [name for name, _ in made] == ["LeapHybridSampler"]


# -- hyperparameters as features ------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([1.0, 100.0], "num"),  # two decades exactly: linear
        ([1.0, 100.5], "log"),
        ([0.0, 1000.0], "num"),  # zero cannot be logged
        ([-5.0, 1000.0], "num"),
        ([1, 1000], "log"),  # integers too
        ([np.float32(0.001), np.int64(1)], "log"),
    ],
)
def test_a_numeric_parameter_is_logged_past_two_decades(values, kind) -> None:
    enc = ParamEncoder().fit([{"x": v} for v in values])
    assert enc.columns_ == [("x", kind, None)]
    out = enc.transform([{"x": v} for v in values])
    expected = [math.log(v) if kind == "log" else float(v) for v in values]
    np.testing.assert_allclose(out[:, 0], expected)


def test_missing_or_odd_values_are_nan_and_categories_are_one_hot() -> None:
    enc = ParamEncoder().fit([{"x": 1.0, "c": "a"}, {"x": 1000.0, "c": "b"}, {"c": 3}])
    assert enc.columns_ == [
        ("c", "cat", "3"),
        ("c", "cat", "a"),
        ("c", "cat", "b"),
        ("x", "log", None),
    ]
    rows = [{"x": None, "c": "b"}, {"c": "z"}, {"x": "fast", "c": 3}, {"x": 0.0}, {"x": -1.0}]
    out = enc.transform(rows)
    assert out[:, :3].tolist() == [[0, 0, 1], [0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert np.isnan(out[:3, 3]).all()
    # A value a log column cannot take (<= 0) passes through as it is.
    assert out[3, 3] == 0.0 and out[4, 3] == -1.0


@pytest.mark.parametrize(
    "column",
    [
        "x",
        ["x", "num"],
        ["x", "num", None, 1],
        [1, "num", None],
        ["x", "sqrt", None],
        ["x", "cat", 3],
    ],
)
def test_a_malformed_param_column_is_rejected(column) -> None:
    from optuna_qsvr.predictors import ModelFormatError

    with pytest.raises(ModelFormatError, match="param column"):
        ParamEncoder.from_dict([["ok", "num", None], column])
    for good in (["x", "num", None], ["x", "log", None], ["x", "cat", "a"]):
        assert ParamEncoder.from_dict([good]).columns_ == [tuple(good)]


# -- the Q-SVR predictor --------------------------------------------------------------------
def test_qsvr_predictor_passes_its_parameters_and_records_the_fit() -> None:
    curves = np.sqrt(np.linspace(0.1, 1.0, 60).reshape(12, 5))
    targets = curves[:, -1] + 0.05
    p = QSVRPredictor(max_points=5, K=2, random_state=3, **FAST)
    est = p._make_estimator()
    assert (est.max_points, est.K, est.num_reads, est.random_state) == (5, 2, 5, 3)
    assert est.gamma == "scale"  # the predictor's default, not QSVR's 0.1
    p.fit(curves, targets)
    info = p._fitted["info"]
    assert info["n_estimators"] == 3  # 12 points in parts of at most 5
    assert info["anneal_seconds"] > 0 and info["annealer"] == "simulated"
    sampler = QSVRPredictor(annealer=dimod.ExactSolver(), K=1, max_points=4, num_reads=1)
    sampler.fit(curves[:4], targets[:4])
    assert sampler._fitted["info"]["annealer"] == "ExactSolver"
    assert sampler.fit_info_.annealer == "ExactSolver"


# -- the contract's normal error model ------------------------------------------------------
class _Normal(BasePredictor):
    name = ""

    def __init__(self, sigma) -> None:
        self.sigma = sigma

    def fit(self, curves, targets, params=None):
        return self

    def predict(self, curves, params=None):
        rows = np.atleast_2d(curves)
        offset = 0.0 if params is None else params[0].get("offset", 0.0)
        return rows[:, -1] + offset, np.broadcast_to(np.asarray(self.sigma, float), len(rows))

    def to_json(self):
        return "{}"

    @classmethod
    def from_json(cls, text):
        return cls(1.0)


def test_the_default_probability_is_normal_around_the_forecast() -> None:
    curves = np.array([[0.9, 0.5], [0.9, 0.2]])
    p = _Normal(0.1).prob_below(curves, np.array([0.6, 0.2]))
    np.testing.assert_allclose(p, [norm.cdf(1.0), 0.5])
    # Thresholds as a plain list, and the params reach predict.
    p = _Normal(0.1).prob_below(curves, [0.6, 0.2], [{"offset": 0.1}, {"offset": 0.1}])
    np.testing.assert_allclose(p, [0.5, norm.cdf(-1.0)])
    # No usable error: unknown, never 0 or 1.
    unknown = _Normal([np.nan, 0.0]).prob_below(curves, np.array([0.0, 1.0]))
    assert np.isnan(unknown).all()
    assert np.isnan(_Normal(-0.1).prob_below(curves, np.array([0.0, 1.0]))).all()
    assert np.isnan(_Normal(np.inf).prob_below(curves, np.array([0.0, 1.0]))).all()
