from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import Any, ClassVar

import dimod
import numpy as np
import pytest
from dwave.samplers import SimulatedAnnealingSampler
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score
from sklearn.preprocessing import MinMaxScaler
from sklearn.svm import NuSVR

from optuna_qsvr.exceptions import AnnealerError
from optuna_qsvr.predictors import (
    FitInfo,
    ModelFormatError,
    NotEnoughCurvesError,
    QSVRPredictor,
    SVRPredictor,
    load_predictor,
    make_predictor,
    predictor_class,
)

# Small anneals: the QUBOs here have at most 120 variables.
FAST = dict(num_reads=10, annealer_params={"num_sweeps": 50})


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


def test_svr_parameters_reach_nusvr_and_typos_fail_at_once() -> None:
    X, y, _ = _curves(30)
    p = SVRPredictor(cv=0, C=10.0, nu=0.3).fit(X, y)
    xs, ys = MinMaxScaler().fit(X), MinMaxScaler().fit(y[:, None])
    ref = NuSVR(C=10.0, nu=0.3).fit(xs.transform(X), ys.transform(y[:, None]).ravel())
    expected = ys.inverse_transform(ref.predict(xs.transform(X))[:, None]).ravel()
    np.testing.assert_allclose(p.predict(X)[0], expected, rtol=0, atol=1e-12)
    with pytest.raises(TypeError, match="nuu"):
        SVRPredictor(nuu=0.3)
    with pytest.raises(ValueError, match="cv must be"):
        SVRPredictor(cv=1)


def test_named_predictors_come_from_the_registry() -> None:
    assert predictor_class("svr") is SVRPredictor and SVRPredictor.name == "svr"
    assert predictor_class("qsvr") is QSVRPredictor and QSVRPredictor.name == "qsvr"
    svr = make_predictor("svr", features=("curve", "diff1"), residual=True)
    assert type(svr) is SVRPredictor
    assert (svr.features, svr.residual, svr.cv) == (("curve", "diff1"), True, 5)
    qsvr = make_predictor("qsvr", features=("curve",), residual=False)
    assert type(qsvr) is QSVRPredictor
    # Each fold is another annealer call: no cross-validation unless asked for.
    assert qsvr.cv == 0
    assert qsvr.estimator_params == {"gamma": "scale", "num_reads": 100}


def test_svr_fit_info() -> None:
    X, y, _ = _curves(30)
    p = SVRPredictor().fit(X, y)
    assert p.fit_info_ == FitInfo(
        cv_rmse=p.sigma_, annealer=None, annealer_calls=0, estimator="NuSVR"
    )
    assert p.fit_info_.cv_rmse > 0
    assert load_predictor(p.to_json()).fit_info_ == p.fit_info_
    # Without cross-validation the error is unknown: None, never NaN.
    assert SVRPredictor(cv=0).fit(X, y).fit_info_.cv_rmse is None
    with pytest.raises(NotFittedError):
        _ = SVRPredictor().fit_info_


@pytest.fixture
def sampler_calls(monkeypatch) -> list[int]:
    """Every call of SimulatedAnnealingSampler.sample, also from the copies the folds clone."""
    calls: list[int] = []
    sample = SimulatedAnnealingSampler.sample

    def counting(self, bqm, **kwargs):
        calls.append(bqm.num_variables)
        return sample(self, bqm, **kwargs)

    monkeypatch.setattr(SimulatedAnnealingSampler, "sample", counting)
    return calls


@pytest.mark.parametrize(("n_curves", "cv", "expected"), [(12, 0, 1), (12, 3, 4), (45, 3, 9)])
def test_qsvr_fit_info_counts_every_annealer_call(sampler_calls, n_curves, cv, expected) -> None:
    # 45 curves and max_points=20 make a 3-member ensemble; each of 3 folds trains on 30
    # curves, a 2-member ensemble: 3 + 3 * 2 = 9 calls.
    X, y, _ = _curves(n_curves)
    p = QSVRPredictor(cv=cv, annealer="simulated", **FAST).fit(X, y)
    info = p.fit_info_
    assert len(sampler_calls) == expected
    assert info.annealer_calls == len(sampler_calls)
    assert (info.annealer, info.estimator) == ("simulated", "QSVR")
    assert (info.cv_rmse is None) == (cv == 0)
    if cv:
        assert info.cv_rmse == p.sigma_ > 0
    again = load_predictor(p.to_json())
    assert again.fit_info_ == info
    assert len(sampler_calls) == expected  # loading never anneals


def _v0_1() -> dict:
    return json.loads((Path(__file__).parent / "records_v0_1.json").read_text())


@pytest.mark.parametrize(
    ("kind", "fit_info"),
    [
        ("svr", FitInfo(cv_rmse=0.05012766721285736, estimator="NuSVR")),
        (
            "qsvr",
            FitInfo(
                cv_rmse=0.08088202199904276,
                annealer="simulated",
                annealer_calls=1,
                estimator="QSVR",
            ),
        ),
    ],
)
def test_records_of_version_0_1_still_load(kind, fit_info) -> None:
    data = _v0_1()
    curves = np.array(data["curves"])
    entry = data[kind]
    for p in (load_predictor(entry["record"]), predictor_class(kind).from_json(entry["record"])):
        assert type(p) is predictor_class(kind)
        mean, std = p.predict(curves[:2])
        np.testing.assert_allclose(mean, entry["predictions"], rtol=1e-12)
        assert p.sigma_ == entry["sigma"] and np.all(std == entry["sigma"])
        # 0.1 did not count annealer calls; its ensemble size stands in.
        assert p.fit_info_ == fit_info
        assert json.loads(p.to_json()) == json.loads(entry["record"])


def test_a_record_of_another_kind_is_refused() -> None:
    text = SVRPredictor().fit(*_curves(10)[:2]).to_json()
    with pytest.raises(ModelFormatError, match="'svr' predictor, not 'qsvr'"):
        QSVRPredictor.from_json(text)
    with pytest.raises(ModelFormatError, match="'svr' predictor, not 'qsvr'"):
        load_predictor(text, "qsvr")


@pytest.mark.parametrize(
    "info",
    [
        {"annealer_calls": -1},
        {"annealer_calls": 1.5},
        {"annealer_calls": True},
        {"annealer": 3},
        {"estimator": 0.5},
    ],
)
def test_tampered_fit_metadata_is_rejected(info) -> None:
    doc = _doc()
    doc["info"].update(info)
    with pytest.raises(ModelFormatError, match="bad fit metadata"):
        load_predictor(json.dumps(doc))


# -- calibration: the out-of-fold residuals and the probabilities made from them -----------
def _residuals(p) -> np.ndarray:
    return np.array(json.loads(p.to_json())["residuals"])


def test_prob_below_counts_the_out_of_fold_residuals_under_each_threshold() -> None:
    X, y, _ = _curves(40)
    p = SVRPredictor(cv=5).fit(X, y)
    r = _residuals(p)
    assert len(r) == 40 and np.all(np.diff(r) >= 0)
    mean, _ = p.predict(X[:4])
    thresholds = mean + np.array([r[0] - 1e-9, r[0], r[10], r[-1] + 1.0])
    expected = [
        (np.sum(r <= t - m) + 1) / (len(r) + 1) for t, m in zip(thresholds, mean, strict=True)
    ]
    assert expected[0] == 1 / 41 and expected[-1] == 1.0
    np.testing.assert_allclose(p.prob_below(X[:4], thresholds), expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(
        load_predictor(p.to_json()).prob_below(X[:4], thresholds), p.prob_below(X[:4], thresholds)
    )


def test_residuals_are_the_recorded_out_of_fold_errors_and_a_copy() -> None:
    X, y, _ = _curves(30)
    p = SVRPredictor(cv=5).fit(X, y)
    r = p.residuals_
    np.testing.assert_array_equal(r, _residuals(p))
    np.testing.assert_array_equal(load_predictor(p.to_json()).residuals_, r)
    mean, _ = p.predict(X[:1])
    # Past every residual but the most negative: the conformal floor plus one.
    before = p.prob_below(X[:1], mean + r[0])
    r[:] = 1e9  # the caller's copy: the calibration is untouched
    assert p.prob_below(X[:1], mean + p.residuals_[0]) == before == 2 / 31
    assert SVRPredictor(cv=0).fit(X, y).residuals_ is None
    with pytest.raises(NotFittedError):
        SVRPredictor().residuals_  # noqa: B018


@pytest.mark.parametrize("residual", [False, True])
def test_the_calibration_is_mapies_cross_conformal_interval(residual: bool) -> None:
    # MAPIE, the field's conformal library, is the oracle. Its cross-conformal interval
    # (method "base": the model fitted on every curve, signed out-of-fold scores, the same
    # folds) has, at confidence 1 - 2 beta, the lower bound where prob_below crosses beta.
    # 24 curves: beta * 25 is no integer, where the two definitions share every threshold.
    from mapie.conformity_scores import AbsoluteConformityScore
    from mapie.regression import CrossConformalRegressor
    from sklearn.model_selection import KFold

    X, y, _ = _curves(24)
    new, _, _ = _curves(8, seed=1)
    p = SVRPredictor(cv=5, random_state=0, residual=residual).fit(X, y)
    base, new_base = (X[:, -1], new[:, -1]) if residual else (0.0, 0.0)
    # The predictor scales curves and targets on all curves before its folds, as here.
    x_scaler, y_scaler = MinMaxScaler().fit(X), MinMaxScaler().fit((y - base)[:, None])
    betas = [0.1, 0.3]
    oracle = CrossConformalRegressor(
        NuSVR(),
        confidence_level=[1 - 2 * b for b in betas],
        conformity_score=AbsoluteConformityScore(sym=False),
        method="base",
        cv=KFold(5, shuffle=True, random_state=0),
    ).fit_conformalize(x_scaler.transform(X), y_scaler.transform((y - base)[:, None]).ravel())
    point, bounds = oracle.predict_interval(
        x_scaler.transform(new), aggregate_point_predictions=None
    )
    mean, _ = p.predict(new)
    np.testing.assert_allclose(
        y_scaler.inverse_transform(point[:, None]).ravel() + new_base, mean, atol=1e-9
    )
    for j, beta in enumerate(betas):
        lower = y_scaler.inverse_transform(bounds[:, 0, j][:, None]).ravel() + new_base
        # The bound is the k-th smallest score, k = floor(beta (n + 1)): the conformal
        # chance is k / (n + 1) just under it and (k + 1) / (n + 1) at it.
        k = math.floor(beta * 25)
        for shift, expected in ((-1e-9, k / 25), (1e-9, (k + 1) / 25)):
            chance = p.prob_below(new, lower + shift)
            np.testing.assert_allclose(chance, expected, rtol=0, atol=1e-12)
        assert k / 25 < beta <= (k + 1) / 25


def test_out_of_fold_residuals_are_forecast_errors_in_the_targets_units() -> None:
    X, y, _ = _curves(60)
    r = _residuals(SVRPredictor(cv=5, residual=False).fit(X, y))
    # Min-max scaling makes the fit the same for 10 y + 3 (up to the solver's tolerance): its
    # errors are 10 times larger.
    scaled = SVRPredictor(cv=5, residual=False).fit(X, 10 * y + 3)
    np.testing.assert_allclose(_residuals(scaled), 10 * r, rtol=0, atol=0.01 * np.ptp(10 * y))
    # Errors of a good forecast, not the targets themselves: small against their spread.
    assert np.max(np.abs(r)) < 0.25 * np.ptp(y)
    assert abs(np.median(r)) < 0.05 * np.ptp(y)


class _BreaksInTheFolds(dimod.Sampler):
    """Simulated annealing that answers the model's fit, then fails: the cross-validation
    folds' fits come after it. Calls are counted on the class, since the folds fit clones."""

    calls: ClassVar[list[int]] = []
    parameters: ClassVar[dict[str, Any]] = {"num_reads": []}
    properties: ClassVar[dict[str, Any]] = {}

    def sample(self, bqm, **kwargs):
        type(self).calls.append(1)
        if len(type(self).calls) > 1:
            raise RuntimeError("solver exploded in a fold")
        return SimulatedAnnealingSampler().sample(bqm, num_sweeps=100, **kwargs)


def test_a_fold_whose_annealer_fails_fails_the_fit_with_the_annealers_error() -> None:
    # Not a fold scored NaN and a calibration from the others: the pruner records why and
    # falls back to Hyperband's decision.
    _BreaksInTheFolds.calls.clear()
    X, y, _ = _curves(12)
    predictor = QSVRPredictor(cv=3, annealer=_BreaksInTheFolds(), num_reads=5)
    with pytest.raises(AnnealerError, match="solver exploded in a fold"):
        predictor.fit(X, y)
    assert len(_BreaksInTheFolds.calls) == 2


def test_the_record_keeps_the_training_size_fit_time_and_support_vectors() -> None:
    X, y, _ = _curves(30)
    started = time.perf_counter()
    p = SVRPredictor().fit(X, y)
    elapsed = time.perf_counter() - started
    doc = json.loads(p.to_json())
    assert doc["info"]["n_train"] == 30
    assert 0.0 <= doc["info"]["fit_seconds"] <= elapsed
    assert doc["info"]["n_support"] == len(doc["support_vectors"]) > 0


def test_a_missing_hyperparameter_sits_mid_range() -> None:
    X, y, params = _curves(30)
    p = SVRPredictor(features=("curve", "params")).fit(X, y, params)
    rates = [q["rate"] for q in params]
    missing = [{"opt": q["opt"]} for q in params[:5]]
    middle = [{**q, "rate": (min(rates) + max(rates)) / 2} for q in missing]
    np.testing.assert_allclose(p.predict(X[:5], missing)[0], p.predict(X[:5], middle)[0])


@pytest.mark.parametrize("features", [("nope",), (), ("curve", "lag")])
def test_unknown_or_no_feature_kinds_are_refused(features) -> None:
    with pytest.raises(ValueError, match="features"):
        SVRPredictor(features=features)


def test_the_fewest_curves_a_fit_takes() -> None:
    X, y, _ = _curves(3)
    assert SVRPredictor(cv=0).fit(X, y).fit_info_.estimator == "NuSVR"


def test_one_step_curves_and_a_constant_step_round_trip() -> None:
    X, y, _ = _curves(20)
    one = SVRPredictor(features=("curve", "diff1", "diff2"), cv=0).fit(X[:, :1], y)
    np.testing.assert_array_equal(
        load_predictor(one.to_json()).predict(X[:, :1])[0], one.predict(X[:, :1])[0]
    )
    X[:, 0] = 0.5  # one step every curve shares: its scaler's minimum is its maximum
    flat = SVRPredictor(cv=0).fit(X, y)
    np.testing.assert_array_equal(load_predictor(flat.to_json()).predict(X)[0], flat.predict(X)[0])


def test_a_single_curve_may_be_passed_flat() -> None:
    X, y, _ = _curves(20)
    p = SVRPredictor(cv=0).fit(X, y)
    np.testing.assert_array_equal(p.predict(X[0])[0], p.predict(X[:1])[0])
    # Fitting takes one curve per target: a flat curve is one curve, never one per value.
    with pytest.raises(ValueError, match="1 curves but 8 targets"):
        SVRPredictor(cv=0).fit(X[0], y[:8])


def test_the_normal_probability_warns_nothing_where_sigma_is_zero_or_unknown() -> None:
    X, y, _ = _curves(20)
    p = SVRPredictor(cv=0).fit(X, y)  # no cross-validation: the normal default, sigma NaN
    mean = p.predict(X[:2])[0]
    p._fitted["sigma"] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0/0 and x/0 stay quiet: the answer is NaN
        assert np.isnan(p.prob_below(X[:2], [mean[0], mean[1] + 1.0])).all()
        p._fitted["sigma"] = math.nan
        assert np.isnan(p.prob_below(X[:2], mean)).all()


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda d: d.update(support_vectors=[r[:-1] for r in d["support_vectors"]]),
            r"^support_vectors has shape",
        ),
        (
            lambda d: d.update(dual_coef=["x"] * len(d["dual_coef"])),
            r"^dual_coef is not a numeric array",
        ),
        (lambda d: d.update(gamma=None), r"^gamma must be a finite number"),
        (lambda d: d.update(sigma="x"), r"^sigma must be a finite number"),
        (lambda d: d.update(intercept="x"), r"^intercept must be a finite number"),
        (lambda d: d.update(residuals=["x"]), r"^residuals is not a numeric array"),
        (lambda d: d["x_scaler"].update(data_min=[0.0]), r"^x_scaler\.data_min has shape"),
        (lambda d: d["x_scaler"].update(data_max=[0.0]), r"^x_scaler\.data_max has shape"),
        (lambda d: d["y_scaler"].update(data_max=[0.0, 1.0]), r"^y_scaler\.data_max has shape"),
        (
            lambda d: d["y_scaler"].update(data_min=["x"]),
            r"^y_scaler\.data_min is not a numeric array",
        ),
    ],
)
def test_a_rejected_record_names_the_field(mutate, match) -> None:
    X, y, _ = _curves(20)
    doc = json.loads(SVRPredictor(cv=5).fit(X, y).to_json())
    mutate(doc)
    with pytest.raises(ModelFormatError, match=match):
        load_predictor(json.dumps(doc))
