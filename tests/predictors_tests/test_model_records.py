"""A stored kernel predictor is untrusted input: every field is checked, at its limits.

Each case below breaks one field of a real fitted model's JSON and expects
:class:`ModelFormatError`; the limits themselves (one step, the largest feature count, the
largest support set) still load and predict as the original.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from optuna_qsvr.predictors import (
    ModelFormatError,
    QSVRPredictor,
    SVRPredictor,
    load_predictor,
)
from optuna_qsvr.predictors._curve_predictors import _MAX_FEATURES, _MAX_SUPPORT


def _fitted(steps: int = 6, n: int = 20, **kwargs) -> SVRPredictor:
    rng = np.random.default_rng(0)
    rate = rng.uniform(0.1, 0.6, n)
    curves = np.exp(-np.outer(rate, np.arange(1, steps + 1)))
    params = [{"lr": float(r), "opt": "adam" if r > 0.3 else "sgd"} for r in rate]
    return SVRPredictor(**kwargs).fit(curves, np.exp(-rate * 20), params)


def _doc(**kwargs) -> dict:
    return json.loads(_fitted(**kwargs).to_json())


INF = "__inf__"  # written as the JSON number 1e400, which Python reads as infinity


def _load(doc: dict):
    return load_predictor(json.dumps(doc).replace(f'"{INF}"', "1e400"))


BROKEN = [
    (lambda d: d.update(kinds="curve"), "feature kinds"),
    (lambda d: d.update(kinds=[]), "feature kinds"),
    (lambda d: d.update(kinds=["curve", "fft"]), "feature kinds"),
    (lambda d: d.update(features="curve"), "bad features"),
    (lambda d: d.update(features=["spline"]), "bad features"),
    (lambda d: d.update(n_steps=True), "n_steps"),
    (lambda d: d.update(n_steps="6"), "n_steps"),
    (lambda d: d.update(n_steps=6.0), "n_steps"),
    (lambda d: d.update(n_steps=0), "n_steps"),
    (lambda d: d.update(n_steps=100_001), "n_steps"),
    (lambda d: d.update(kinds=["curve", "diff1"]), "disagree"),
    (lambda d: d.update(param_columns=None), "disagree"),
    (lambda d: d.update(param_columns=[["lr", "exp", None]]), "param column"),
    (lambda d: d.update(param_columns={"lr": "log"}), "param_columns"),
    (lambda d: d.update(kinds=["diff2"], n_steps=2, param_columns=None), "feature count"),
    (lambda d: d.update(support_vectors={"0": [0.0]}), "bounded size"),
    (lambda d: d.update(support_vectors=[[0.0] * 5] * len(d["dual_coef"])), "shape"),
    (lambda d: d.update(dual_coef=[INF] * len(d["dual_coef"])), "non-finite"),
    (lambda d: d.update(dual_coef=d["dual_coef"] + [0.0]), "shape"),
    (lambda d: d.update(gamma=0), "positive"),
    (lambda d: d.update(gamma=True), "finite number"),
    (lambda d: d.update(intercept="0.1"), "intercept"),
    (lambda d: d.update(intercept=INF), "intercept"),
    (lambda d: d.update(sigma="0.1"), "sigma"),
    (lambda d: d.update(sigma=INF), "sigma"),
    (lambda d: d.update(residual=1), "residual must be"),
    (lambda d: d.update(residual=None), "residual must be"),
    (lambda d: d.update(residuals={"r": 0.1}), "residuals"),
    (lambda d: d.update(residuals=[0.1, "x"]), "residuals"),
    (lambda d: d.update(residuals=[INF]), "residuals"),
    (lambda d: d.update(info=[1]), "flat mapping"),
    (lambda d: d.update(info={"a": {"b": 1}}), "flat mapping"),
    (lambda d: d.update(x_scaler=[0.0, 1.0]), "exactly"),
    (lambda d: d["x_scaler"].pop("data_max"), "exactly"),
    (lambda d: d["x_scaler"].update(data_min=d["x_scaler"]["data_min"][:-1]), "shape"),
    (lambda d: d["y_scaler"].update(data_max=[-1e9]), "below"),
    (lambda d: d["x_scaler"].update(data_max=[-1e9] * len(d["x_scaler"]["data_max"])), "below"),
]


@pytest.mark.parametrize(("breaks", "match"), BROKEN)
def test_a_broken_field_is_rejected(breaks, match) -> None:
    doc = _doc(features=("curve", "diff1", "params"))
    breaks(doc)
    with pytest.raises(ModelFormatError, match=match):
        _load(doc)


@pytest.mark.parametrize(
    "field",
    [
        "features",
        "kinds",
        "residual",
        "n_steps",
        "x_scaler",
        "y_scaler",
        "param_columns",
        "support_vectors",
        "dual_coef",
        "intercept",
        "gamma",
        "sigma",
        "info",
    ],
)
def test_every_field_is_required(field) -> None:
    doc = _doc()
    del doc[field]
    with pytest.raises(ModelFormatError, match=f"lacks \\['{field}'\\]"):
        _load(doc)


def test_a_loaded_model_predicts_as_fitted_with_its_settings() -> None:
    fitted = _fitted(features=("curve", "diff2", "params"), residual=True, cv=4)
    loaded = _load(json.loads(fitted.to_json()))
    curves = np.exp(-np.outer([0.15, 0.45], np.arange(1, 7)))
    params = [{"lr": 0.15, "opt": "sgd"}, {"lr": 0.45, "opt": "adam"}]
    for a, b in zip(fitted.predict(curves, params), loaded.predict(curves, params), strict=True):
        np.testing.assert_array_equal(a, b)
    thresholds = np.array([0.01, 0.02])
    np.testing.assert_array_equal(
        fitted.prob_below(curves, thresholds, params),
        loaded.prob_below(curves, thresholds, params),
    )
    assert loaded.features == ("curve", "diff2", "params") and loaded.residual is True
    assert (loaded.cv, loaded.random_state) == (0, 0)
    assert loaded.estimator_params == {}
    assert loaded.sigma_ == fitted.sigma_ and loaded.fit_info_ == fitted.fit_info_
    assert loaded.to_json() == fitted.to_json()


def test_no_sigma_and_no_residuals_load_as_unknown() -> None:
    doc = _doc(cv=0)
    assert doc["sigma"] is None and "residuals" not in doc
    loaded = _load(doc)
    assert math.isnan(loaded.sigma_) and loaded.fit_info_.cv_rmse is None
    curves = np.exp(-np.outer([0.2], np.arange(1, 7)))
    assert np.isnan(loaded.prob_below(curves, np.array([0.5]))).all()


def test_a_record_without_residuals_takes_the_normal_error() -> None:
    """Version 0.1's records have a sigma but no residuals: P(target <= threshold) is then
    the normal probability around the forecast, row by row, with the rows' params."""
    doc = _doc(features=("curve", "params"), cv=4)
    del doc["residuals"]
    loaded = _load(doc)
    curves = np.exp(-np.outer([0.15, 0.45], np.arange(1, 7)))
    params = [{"lr": 0.15, "opt": "sgd"}, {"lr": 0.45, "opt": "adam"}]
    mean, std = loaded.predict(curves, params)
    assert loaded.sigma_ > 0 and np.all(std == loaded.sigma_)
    z = np.array([-1.0, 0.5])
    p = loaded.prob_below(curves, mean + z * loaded.sigma_, params)
    np.testing.assert_allclose(p, [0.15865525393145707, 0.6914624612740131], rtol=1e-9)


def test_limits_still_load() -> None:
    # One step, one feature.
    one = _doc(steps=1)
    assert one["n_steps"] == 1
    _load(one)
    # The largest feature count: the curve of _MAX_FEATURES steps.
    wide = _doc(steps=3)
    wide.update(n_steps=_MAX_FEATURES, support_vectors=[[0.5] * _MAX_FEATURES], dual_coef=[0.1])
    wide["x_scaler"] = {"data_min": [0.0] * _MAX_FEATURES, "data_max": [1.0] * _MAX_FEATURES}
    assert _load(wide).predict(np.full((1, _MAX_FEATURES), 0.5))[0].shape == (1,)
    wide.update(n_steps=_MAX_FEATURES + 1)
    with pytest.raises(ModelFormatError, match="feature count"):
        _load(wide)
    # The most steps a record may name, for a predictor that reads only the hyperparameters
    # (its feature count does not grow with them).
    long = _doc(steps=3, features=("params",))
    long.update(n_steps=100_000)
    mean, _ = _load(long).predict(np.zeros((2, 100_000)), [{"lr": 0.1, "opt": "sgd"}] * 2)
    assert mean.shape == (2,)
    # The largest support set and residual sample.
    big = _doc(steps=1, cv=0)
    big.update(support_vectors=[[0.5]] * _MAX_SUPPORT, dual_coef=[0.0] * _MAX_SUPPORT)
    big["residuals"] = [0.0] * _MAX_SUPPORT
    _load(big)
    big["residuals"] = [0.0] * (_MAX_SUPPORT + 1)
    with pytest.raises(ModelFormatError, match="residuals"):
        _load(big)
    # No support vector: a constant model, its intercept.
    flat = _doc(steps=2)
    flat.update(support_vectors=[], dual_coef=[], intercept=0.25)
    flat["y_scaler"] = {"data_min": [0.0], "data_max": [1.0]}
    np.testing.assert_allclose(_load(flat).predict(np.ones((3, 2)))[0], 0.25)


def test_info_takes_plain_values_only() -> None:
    doc = _doc()
    doc["info"] = {"s": "x", "i": 1, "f": 1.5, "n": None, "b": True}
    assert _load(doc).fit_info_.annealer is None
    doc["info"]["annealer"] = "qpu"
    doc["info"]["annealer_calls"] = 3
    assert _load(doc).fit_info_.annealer_calls == 3


def test_a_qsvr_record_loads_only_as_qsvr() -> None:
    curves = np.sqrt(np.linspace(0.1, 1.0, 40).reshape(8, 5))
    q = QSVRPredictor(num_reads=5, annealer_params={"num_sweeps": 20}).fit(curves, curves[:, -1])
    doc = json.loads(q.to_json())
    assert doc["kind"] == "qsvr" and doc["info"]["annealer"] == "simulated"
    assert type(_load(doc)) is QSVRPredictor
    with pytest.raises(ModelFormatError, match="not 'svr'"):
        SVRPredictor.from_json(json.dumps(doc))
