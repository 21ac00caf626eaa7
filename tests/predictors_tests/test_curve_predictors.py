from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import r2_score
from sklearn.preprocessing import MinMaxScaler
from sklearn.svm import NuSVR

from optuna_qsvr.predictors import (
    ModelFormatError,
    NotEnoughCurvesError,
    SVRPredictor,
    load_predictor,
)


def _curves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    rng = np.random.default_rng(seed)
    rate = rng.uniform(0.05, 0.6, n)
    floor = rng.uniform(0.0, 0.4, n)
    steps = np.arange(1, 31)
    full = floor[:, None] + np.exp(-np.outer(rate, steps)) + rng.normal(0, 0.005, (n, 30))
    params = [
        {"rate": r, "opt": "adam" if f > 0.2 else "sgd"} for r, f in zip(rate, floor, strict=True)
    ]
    return full[:, :8], full[:, -1], params


def test_svr_predictor_is_the_reference_nusvr() -> None:
    X, y, _ = _curves(40)
    p = SVRPredictor(cv=0).fit(X, y)
    xs, ys = MinMaxScaler().fit(X), MinMaxScaler().fit(y[:, None])
    ref = NuSVR().fit(xs.transform(X), ys.transform(y[:, None]).ravel())
    expected = ys.inverse_transform(ref.predict(xs.transform(X))[:, None]).ravel()
    np.testing.assert_allclose(p.predict(X)[0], expected, rtol=0, atol=1e-12)
    assert math.isnan(p.sigma_)


def test_svr_forecasts_held_out_curves() -> None:
    X, y, params = _curves(120)
    for features in (("curve",), ("curve", "diff1", "diff2", "params")):
        p = SVRPredictor(features=features).fit(X[:80], y[:80], params[:80])
        mean, std = p.predict(X[80:], params[80:])
        assert r2_score(y[80:], mean) > 0.9, features
        # The cross-validated error is on the scale of the held-out error.
        rmse = float(np.sqrt(np.mean((mean - y[80:]) ** 2)))
        assert 0.3 * rmse < std[0] < 3 * rmse


def test_round_trip_predictions_are_identical() -> None:
    X, y, params = _curves(30)
    X[3, 2] = math.nan
    p = SVRPredictor(features=("curve", "diff1", "params")).fit(X, y, params)
    q = load_predictor(p.to_json())
    assert type(q) is SVRPredictor
    for a, b in zip(p.predict(X, params), q.predict(X, params), strict=False):
        assert np.array_equal(a, b)
    assert q.to_json() == p.to_json()


def test_too_few_curves() -> None:
    X, y, _ = _curves(2)
    with pytest.raises(NotEnoughCurvesError, match="at least 3"):
        SVRPredictor().fit(X, y)


def test_non_finite_targets_and_shape_mismatch() -> None:
    X, y, _ = _curves(10)
    y[0] = math.inf
    with pytest.raises(ValueError, match="finite"):
        SVRPredictor().fit(X, y)
    p = SVRPredictor().fit(*_curves(10)[:2])
    with pytest.raises(ValueError, match="8 steps"):
        p.predict(np.ones((1, 5)))


def _doc() -> dict:
    X, y, _ = _curves(20)
    return json.loads(SVRPredictor().fit(X, y).to_json())


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.update(format="pickle"), "not an optuna-qsvr"),
        (lambda d: d.update(version=99), "version"),
        (lambda d: d.update(kind="eval"), "unknown predictor kind"),
        (lambda d: d.pop("dual_coef"), "lacks"),
        (lambda d: d.update(dual_coef=d["dual_coef"][:-1]), "shape"),
        (lambda d: d.update(support_vectors=[["x"] * 8]), "numeric"),
        (lambda d: d.update(gamma=-1.0), "positive"),
        (lambda d: d.update(gamma="scale"), "finite number"),
        (lambda d: d.update(n_steps=10**9), "n_steps"),
        (lambda d: d.update(support_vectors=[[0.0] * 8] * 200_000), "bounded size"),
        (lambda d: d.update(info={"x": [1, 2]}), "flat mapping"),
        (lambda d: d["x_scaler"].update(code="os.system"), "exactly"),
    ],
)
def test_tampered_records_are_rejected(mutate, match) -> None:
    doc = _doc()
    mutate(doc)
    with pytest.raises(ModelFormatError, match=match):
        load_predictor(json.dumps(doc))


@pytest.mark.parametrize("text", ["not json", "[]", '{"format": 1}', b"{}", "NaN"])
def test_garbage_is_rejected(text) -> None:
    with pytest.raises(ModelFormatError):
        load_predictor(text)


def test_nan_inside_a_record_is_rejected() -> None:
    text = (
        SVRPredictor()
        .fit(*_curves(20)[:2])
        .to_json()
        .replace('"intercept":', '"intercept":NaN,"_":', 1)
    )
    with pytest.raises(ModelFormatError, match="NaN"):
        load_predictor(text)


def test_residual_target_learns_the_change_and_round_trips() -> None:
    # Curves at different heights that all fall by the same 0.1 after the decision step:
    # the change is constant, the value is not.
    rng = np.random.default_rng(0)
    offsets = rng.uniform(0.0, 5.0, 25)
    curves = offsets[:, None] + np.linspace(1.0, 0.5, 6)[None, :]
    targets = curves[:, -1] - 0.1
    p = SVRPredictor(residual=True, cv=0).fit(curves, targets)
    new = np.array([[7.0, 6.9, 6.8, 6.7, 6.6, 6.5]])  # outside the training heights
    assert p.predict(new)[0][0] == pytest.approx(6.4, abs=0.02)
    plain = SVRPredictor(cv=0).fit(curves, targets)
    assert abs(plain.predict(new)[0][0] - 6.4) > 0.2  # an RBF model shrinks it to the mean
    q = load_predictor(p.to_json())
    assert np.array_equal(p.predict(new)[0], q.predict(new)[0])
