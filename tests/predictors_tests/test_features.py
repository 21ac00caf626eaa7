from __future__ import annotations

import math

import numpy as np
import pytest

from optuna_qsvr.predictors import ParamEncoder, curve_features, fill_gaps


def test_fill_gaps_interpolates_and_extends() -> None:
    curves = np.array([[math.nan, 2.0, math.nan, 4.0, math.nan]])
    assert fill_gaps(curves).tolist() == [[2.0, 2.0, 3.0, 4.0, 4.0]]


def test_fill_gaps_takes_lists_with_none_and_a_single_flat_curve() -> None:
    assert fill_gaps([[1, None, 3]]).tolist() == [[1.0, 2.0, 3.0]]
    assert fill_gaps([math.nan, 2.0, 4.0]).tolist() == [[2.0, 2.0, 4.0]]


def test_the_params_block_needs_both_params_and_an_encoder() -> None:
    curves = np.ones((1, 3))
    params = [{"lr": 0.1}]
    enc = ParamEncoder().fit(params)
    for given in ({"params": params}, {"encoder": enc}, {}):
        with pytest.raises(ValueError, match="need params and a fitted ParamEncoder"):
            curve_features(
                curves, given.get("params"), kinds=("params",), encoder=given.get("encoder")
            )


def test_fill_gaps_rejects_an_empty_curve() -> None:
    with pytest.raises(ValueError, match="no finite value"):
        fill_gaps(np.array([[math.nan, math.nan]]))


def test_feature_blocks_have_the_documented_widths() -> None:
    curves = np.arange(12, dtype=float).reshape(2, 6) ** 2
    params = [{"lr": 1e-4, "opt": "adam", "depth": 2}, {"lr": 1e-1, "opt": "sgd", "depth": 4}]
    enc = ParamEncoder().fit(params)
    X = curve_features(curves, params, kinds=("curve", "diff1", "diff2", "params"), encoder=enc)
    # 6 curve values, 5 first and 4 second differences, depth, lr (log), adam, sgd.
    assert X.shape == (2, 6 + 5 + 4 + 4)
    np.testing.assert_allclose(X[0, 6:11], np.diff(curves[0]))
    np.testing.assert_allclose(X[0, 11:15], np.diff(curves[0], n=2))
    assert [c[:2] for c in enc.columns_] == [
        ("depth", "num"),
        ("lr", "log"),
        ("opt", "cat"),
        ("opt", "cat"),
    ]
    np.testing.assert_allclose(X[:, 15:], [[2, math.log(1e-4), 1, 0], [4, math.log(1e-1), 0, 1]])


def test_param_encoder_round_trip_and_unknown_values() -> None:
    enc = ParamEncoder().fit([{"a": 1.0, "c": "x"}, {"a": 2.0, "c": "y"}])
    again = ParamEncoder.from_dict(enc.to_dict())
    rows = [{"a": 3.0, "c": "z"}, {"c": "x"}]
    got = again.transform(rows)
    np.testing.assert_array_equal(got, enc.transform(rows))
    assert got[0].tolist() == [3.0, 0.0, 0.0] and math.isnan(got[1, 0])


def test_unknown_feature_kind() -> None:
    with pytest.raises(ValueError, match="unknown feature kinds"):
        curve_features(np.ones((1, 3)), kinds=("curve", "fft"))
