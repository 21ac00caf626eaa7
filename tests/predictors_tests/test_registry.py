from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from optuna_qsvr.predictors import (
    BasePredictor,
    FitInfo,
    ModelFormatError,
    QSVRPredictor,
    SVRPredictor,
    _registry,
    fill_gaps,
    load_predictor,
    make_predictor,
    predictor_class,
    register_predictor,
    registered_predictors,
)


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch) -> None:
    """Classes registered by a test vanish after it; the built-ins stay."""
    monkeypatch.setattr(_registry, "_registry", dict(_registry._registry))


def _define_ridge() -> type[BasePredictor]:
    """A user's predictor, as in the README: a ridge regression on the filled-in curve."""

    @register_predictor
    class RidgeCurvePredictor(BasePredictor):
        name = "test-ridge"

        def __init__(self, alpha: float = 1.0) -> None:
            self.alpha = alpha
            self.coef_: np.ndarray | None = None
            self.intercept_ = 0.0
            self.rmse_ = math.nan

        def fit(self, curves, targets, params=None):
            X = fill_gaps(curves)
            model = Ridge(alpha=self.alpha).fit(X, targets)
            self.coef_, self.intercept_ = model.coef_, float(model.intercept_)
            self.rmse_ = float(np.sqrt(np.mean((self._mean(X) - targets) ** 2)))
            return self

        def _mean(self, X: np.ndarray) -> np.ndarray:
            return X @ self.coef_ + self.intercept_

        def predict(self, curves, params=None):
            mean = self._mean(fill_gaps(curves))
            return mean, np.full(mean.shape, self.rmse_)

        @property
        def fit_info_(self) -> FitInfo:
            return FitInfo(cv_rmse=self.rmse_, estimator="Ridge")

        def to_json(self) -> str:
            doc = {
                "kind": self.name,
                "alpha": self.alpha,
                "coef": self.coef_.tolist(),
                "intercept": self.intercept_,
                "rmse": self.rmse_,
            }
            return json.dumps(doc)

        @classmethod
        def from_json(cls, text: str) -> RidgeCurvePredictor:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("kind") != cls.name:
                raise ModelFormatError(f"not a {cls.name} record")
            numbers = [doc.get("alpha"), doc.get("intercept"), doc.get("rmse")]
            coef = doc.get("coef")
            if not isinstance(coef, list) or not 1 <= len(coef) <= 10_000:
                raise ModelFormatError("coef must be a non-empty list")
            for value in [*numbers, *coef]:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ModelFormatError(f"not a number: {value!r}")
            pred = cls(alpha=doc["alpha"])
            pred.coef_ = np.array(coef, dtype=float)
            pred.intercept_, pred.rmse_ = float(doc["intercept"]), float(doc["rmse"])
            return pred

    return RidgeCurvePredictor


def _curves(n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    rates = np.random.default_rng(0).uniform(0.1, 1.0, n)
    curves = 1 - np.exp(-np.outer(rates, np.arange(1, 6)))
    curves[2, 1] = math.nan
    return curves, 1 - np.exp(-rates * 20)


def test_builtins_are_registered() -> None:
    names = registered_predictors()
    assert {"svr", "qsvr"} <= set(names)
    assert names == tuple(sorted(names))
    assert predictor_class("svr") is SVRPredictor
    assert predictor_class("qsvr") is QSVRPredictor


def test_qsvr_is_imported_from_the_package_on_first_use() -> None:
    import optuna_qsvr.predictors as predictors
    from optuna_qsvr.predictors._qsvr import QSVR

    assert predictors.QSVR is QSVR
    with pytest.raises(AttributeError, match=r"'optuna_qsvr\.predictors' has no attribute 'QSVM'"):
        predictors.QSVM  # noqa: B018


def test_user_predictor_round_trips_through_the_registry() -> None:
    ridge = _define_ridge()
    assert "test-ridge" in registered_predictors()
    assert predictor_class("test-ridge") is ridge
    curves, targets = _curves()
    fitted = make_predictor("test-ridge", alpha=0.1).fit(curves, targets)
    assert type(fitted) is ridge and fitted.alpha == 0.1
    text = fitted.to_json()
    for loaded in (load_predictor(text), load_predictor(text, name="test-ridge")):
        assert type(loaded) is ridge
        for a, b in zip(fitted.predict(curves), loaded.predict(curves), strict=True):
            assert np.array_equal(a, b)
        assert (
            loaded.fit_info_
            == fitted.fit_info_
            == FitInfo(cv_rmse=fitted.rmse_, estimator="Ridge")
        )
    # What the pruner does with a stored model: its kind, then that class's from_json.
    kind = type(fitted).name or type(fitted).__name__
    assert type(predictor_class(kind).from_json(text)) is ridge


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(coef=["os.system"]),
        lambda d: d.update(coef=[]),
        lambda d: d.update(rmse=None),
        lambda d: d.pop("intercept"),
    ],
)
def test_user_predictor_rejects_tampered_records(mutate) -> None:
    _define_ridge()
    curves, targets = _curves()
    doc = json.loads(make_predictor("test-ridge").fit(curves, targets).to_json())
    mutate(doc)
    with pytest.raises(ModelFormatError):
        load_predictor(json.dumps(doc))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"kind": "pickle"}', r"unknown predictor kind 'pickle'; registered: qsvr, svr"),
        ('{"kind": ["svr"]}', "no registered kind"),
        ('{"coef": [1.0]}', "no registered kind"),
        ("[]", "JSON object"),
        ("not json", "not valid JSON"),
        (b'{"kind": "svr"}', "str"),
    ],
)
def test_unknown_or_missing_kind_is_rejected(text, match) -> None:
    with pytest.raises(ModelFormatError, match=match):
        load_predictor(text)


def test_unknown_name_is_rejected() -> None:
    with pytest.raises(ModelFormatError, match="unknown predictor kind 'nope'; registered: "):
        predictor_class("nope")
    with pytest.raises(ModelFormatError, match="unknown predictor kind None"):
        predictor_class(None)  # type: ignore[arg-type]
    with pytest.raises(ModelFormatError, match=r"unknown predictor kind \['svr'\]"):
        predictor_class(["svr"])  # type: ignore[arg-type]  # unhashable: no TypeError
    with pytest.raises(ModelFormatError, match="'nope'"):
        make_predictor("nope")
    text = SVRPredictor().fit(*_curves()).to_json()
    with pytest.raises(ModelFormatError, match="'nope'"):
        load_predictor(text, name="nope")


def test_a_sloppy_from_json_still_raises_model_format_error() -> None:
    @register_predictor
    class Sloppy(BasePredictor):
        name = "test-sloppy"

        def fit(self, curves, targets, params=None):
            return self

        def predict(self, curves, params=None):
            return np.zeros(len(curves)), np.zeros(len(curves))

        def to_json(self) -> str:
            return json.dumps({"kind": self.name, "scale": 1.0})

        @classmethod
        def from_json(cls, text: str) -> Sloppy:
            float(json.loads(text)["scale"])
            return cls()

    assert type(load_predictor(Sloppy().to_json())) is Sloppy
    with pytest.raises(ModelFormatError, match=r"Sloppy\.from_json rejected.*KeyError"):
        load_predictor('{"kind": "test-sloppy"}')
    with pytest.raises(ModelFormatError, match="ValueError"):
        load_predictor('{"kind": "test-sloppy", "scale": "x"}')


def test_clashing_names_raise() -> None:
    ridge = _define_ridge()
    assert register_predictor(ridge) is ridge  # the same class again: a no-op

    class Impostor(SVRPredictor):
        name = "test-ridge"

    with pytest.raises(ValueError, match=r"'test-ridge' is already registered to .*Ridge"):
        register_predictor(Impostor)

    # A subclass that does not choose its own name inherits its parent's.
    class TunedSVR(SVRPredictor):
        pass

    with pytest.raises(ValueError, match=r"'svr' is already registered to .*SVRPredictor"):
        register_predictor(TunedSVR)
    assert predictor_class("test-ridge") is ridge
    assert predictor_class("svr") is SVRPredictor


def test_redefining_the_same_class_replaces_it() -> None:
    # Re-running a class definition (a notebook cell) makes a new class of the same name.
    first, second = _define_ridge(), _define_ridge()
    assert first is not second
    assert predictor_class("test-ridge") is second


@pytest.mark.parametrize("bad", [SVRPredictor(), dict, "svr", Ridge])
def test_only_predictor_classes_register(bad) -> None:
    with pytest.raises(TypeError, match="BasePredictor subclasses"):
        register_predictor(bad)


@pytest.mark.parametrize("name", ["", "   ", None, 3])
def test_a_registered_class_needs_a_name(name) -> None:
    class Nameless(SVRPredictor):
        pass

    Nameless.name = name
    with pytest.raises(ValueError, match="non-empty str"):
        register_predictor(Nameless)
    assert name not in registered_predictors()


def test_from_json_must_return_its_class() -> None:
    @register_predictor
    class Liar(SVRPredictor):
        name = "test-liar"

        @classmethod
        def from_json(cls, text: str) -> SVRPredictor:
            return SVRPredictor()

    with pytest.raises(TypeError, match="returned SVRPredictor"):
        load_predictor('{"kind": "test-liar"}')
