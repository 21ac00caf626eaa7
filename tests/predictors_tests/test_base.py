from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from optuna_qsvr.predictors import FitInfo, ModelFormatError
from optuna_qsvr.predictors._base import MAX_MODEL_CHARS, parse_model_json


def test_fit_info_round_trips_through_plain_json() -> None:
    info = FitInfo(cv_rmse=0.25, annealer="qpu", annealer_calls=np.int64(3), estimator="QSVR")
    assert type(info.annealer_calls) is int
    text = json.dumps(info.to_dict(), allow_nan=False)
    assert FitInfo.from_dict(json.loads(text)) == info
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.annealer_calls = 4  # type: ignore[misc]


@pytest.mark.parametrize("rmse", [math.nan, math.inf, np.float64(math.nan), None])
def test_unknown_error_is_none(rmse) -> None:
    assert FitInfo(cv_rmse=rmse).cv_rmse is None


def test_from_dict_ignores_unknown_fields_and_fills_defaults() -> None:
    assert FitInfo.from_dict({"estimator": "NuSVR", "n_support": 4}) == FitInfo(estimator="NuSVR")


@pytest.mark.parametrize(
    "data",
    [
        {"cv_rmse": "0.1"},
        {"cv_rmse": True},
        {"annealer": 1},
        {"estimator": ["NuSVR"]},
        {"annealer_calls": -1},
        {"annealer_calls": 2.0},
        {"annealer_calls": False},
        {"annealer_calls": None},
    ],
)
def test_from_dict_rejects_wrong_types(data) -> None:
    with pytest.raises(ModelFormatError, match="bad fit metadata"):
        FitInfo.from_dict(data)


def test_parse_model_json_returns_the_object() -> None:
    assert parse_model_json('{"kind": "svr", "x": [1, 2.5]}') == {"kind": "svr", "x": [1, 2.5]}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (b'{"kind": "svr"}', "str"),
        (None, "str"),
        ("{", "not valid JSON"),
        ('{"x": NaN}', "NaN"),
        ('{"x": -Infinity}', "-Infinity"),
        ("[1, 2]", "JSON object"),
        ('"svr"', "JSON object"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_parse_model_json_rejects_hostile_text(text, match) -> None:
    with pytest.raises(ModelFormatError, match=match):
        parse_model_json(text)


def test_parse_model_json_rejects_oversized_text() -> None:
    text = '{"x": "' + "a" * MAX_MODEL_CHARS + '"}'
    with pytest.raises(ModelFormatError, match="too large"):
        parse_model_json(text)
    # Exactly at the limit is still read.
    at_limit = '{"x": "' + "a" * (MAX_MODEL_CHARS - 9) + '"}'
    assert len(at_limit) == MAX_MODEL_CHARS
    assert len(parse_model_json(at_limit)["x"]) == MAX_MODEL_CHARS - 9
