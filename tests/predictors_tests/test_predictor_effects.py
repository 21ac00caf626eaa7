"""What the predictors' options do: the cross-validated sigma in the target's units, the
residual target's base value, cross-validation folds and feature blocks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.preprocessing import MinMaxScaler
from sklearn.svm import NuSVR

from optuna_qsvr.predictors import (
    ModelFormatError,
    QSVRPredictor,
    SVRPredictor,
    curve_features,
    fill_gaps,
)
from optuna_qsvr.predictors._curve_predictors import _build, _last_values

FAST = dict(num_reads=10, annealer_params={"num_sweeps": 50})


def _data(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rate, floor = rng.uniform(0.05, 0.6, n), rng.uniform(0.0, 0.4, n)
    full = floor[:, None] + np.exp(-np.outer(rate, np.arange(1, 21)))
    full += rng.normal(0, 0.01, full.shape)
    return full[:, :6], full[:, -1]


def test_svr_sigma_is_the_pooled_cross_validated_rmse_in_target_units() -> None:
    X, y = _data()
    y = 200.0 * y + 30.0  # a target far from [0, 1]: scaled units would show
    p = SVRPredictor(cv=4, random_state=3).fit(X, y)
    xs, ys = MinMaxScaler().fit(X), MinMaxScaler().fit(y[:, None])
    Xs, ys_scaled = xs.transform(X), ys.transform(y[:, None]).ravel()
    folds = KFold(4, shuffle=True, random_state=3)
    pred = cross_val_predict(NuSVR(), Xs, ys_scaled, cv=folds)
    residuals = ys.inverse_transform(pred[:, None]).ravel() - y
    expected = math.sqrt(np.mean(residuals**2))
    assert p.sigma_ == pytest.approx(expected, rel=1e-9)
    assert p.fit_info_.cv_rmse == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(p.predict(X[:3])[1], expected, rtol=1e-12)


@pytest.mark.parametrize("kind", ["svr", "qsvr"])
def test_sigma_scales_with_the_target_and_ignores_its_offset(kind) -> None:
    X, y = _data(24)

    def sigma(targets: np.ndarray) -> float:
        if kind == "svr":
            return SVRPredictor().fit(X, targets).sigma_
        return QSVRPredictor(cv=3, random_state=0, **FAST).fit(X, targets).sigma_

    base = sigma(y)
    assert 0 < base < 0.2
    # Equal up to the solver's tolerance; scaled units would be 1000 times off.
    assert sigma(1000.0 * y) == pytest.approx(1000.0 * base, rel=1e-3)
    assert sigma(y + 50.0) == pytest.approx(base, rel=1e-3)


def test_cv_zero_gives_no_sigma_and_folds_are_capped_by_the_curves() -> None:
    X, y = _data(6)
    assert math.isnan(SVRPredictor(cv=0).fit(X, y).sigma_)
    assert SVRPredictor(cv=0).fit(X, y).fit_info_.cv_rmse is None
    # 10 folds over 6 curves: leave-one-out, not an error.
    assert SVRPredictor(cv=10).fit(X, y).sigma_ > 0
    for bad in (-1, 1):
        with pytest.raises(ValueError, match="cv"):
            SVRPredictor(cv=bad)


def test_residual_base_is_each_curves_last_reported_value() -> None:
    curves = np.array([[0.9, 0.5, math.nan], [math.nan, 0.7, 0.6], [1.0, math.nan, math.nan]])
    np.testing.assert_array_equal(_last_values(curves), [0.5, 0.6, 1.0])
    # Every curve falls by 0.1 after its last value: the residual target is constant, so the
    # forecast is the last reported value minus 0.1, wherever the curve lies.
    rng = np.random.default_rng(1)
    heights = rng.uniform(0.0, 1.0, 20)
    train = heights[:, None] + np.linspace(0.3, 0.0, 5)[None, :]
    train[::3, -1] = math.nan  # a gap at the decision step: the last reported value counts
    targets = fill_gaps(train)[:, -1] - 0.1
    p = SVRPredictor(residual=True, cv=0).fit(train, targets)
    new = np.array([[5.3, 5.2, 5.1, 5.05, math.nan], [-3.0, -3.1, -3.2, -3.3, -3.4]])
    np.testing.assert_allclose(p.predict(new)[0], [4.95, -3.5], atol=1e-9)
    plain = SVRPredictor(cv=0).fit(train, targets).predict(new)[0]
    assert np.all(np.abs(plain - [4.95, -3.5]) > 1.0)


def test_feature_blocks_follow_the_filled_curve() -> None:
    curves = np.array([[1.0, math.nan, 0.4, 0.3, math.nan]])
    filled = [1.0, 0.7, 0.4, 0.3, 0.3]
    X = curve_features(curves, kinds=("curve", "diff1", "diff2"))
    np.testing.assert_allclose(X[0], [*filled, -0.3, -0.3, -0.1, 0.0, 0.0, 0.2, 0.1], atol=1e-12)
    np.testing.assert_allclose(
        curve_features(curves, kinds=("diff2",))[0], [0.0, 0.2, 0.1], atol=1e-12
    )
    # The blocks come in a fixed order, whatever the order asked.
    np.testing.assert_array_equal(
        curve_features(curves, kinds=("diff1", "curve")),
        curve_features(curves, kinds=("curve", "diff1")),
    )


def test_param_features_change_the_forecast_and_need_params() -> None:
    X, y = _data(30)
    params = [{"lr": 10 ** (-4 + 4 * i / 29)} for i in range(30)]
    y = y + 0.5 * np.log10([p["lr"] for p in params])  # the target depends on lr
    with_params = SVRPredictor(features=("curve", "params")).fit(X, y, params)
    without = SVRPredictor().fit(X, y)
    assert with_params.sigma_ < 0.5 * without.sigma_
    assert with_params.fit_info_.cv_rmse < without.fit_info_.cv_rmse
    # No params at fit time: the params block is dropped, the curve still serves.
    alone = SVRPredictor(features=("params",)).fit(X, y)
    assert alone._fitted["kinds"] == ["curve"]


def test_a_stored_feature_count_must_match_the_blocks() -> None:
    X, y = _data(10)
    p = SVRPredictor(features=("curve", "diff1", "diff2")).fit(X, y)
    doc = json.loads(p.to_json())
    assert len(doc["support_vectors"][0]) == 6 + 5 + 4
    doc["kinds"] = ["curve", "diff1"]
    with pytest.raises(ModelFormatError, match="support_vectors"):
        _build(SVRPredictor, doc)
