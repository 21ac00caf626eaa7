"""SVR and Q-SVR learning-curve predictors behind the :class:`BasePredictor` contract.

Both fitted regressors are kernel expansions ``f(x) = sum_j c_j k(x, s_j) + b`` (Q-SVR's
sample combinations and ensembles are linear too), so one JSON format and one prediction
path serve both: predictions are computed from the stored arrays before and after a round
trip, which makes them identical by construction.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.model_selection import KFold, cross_validate
from sklearn.preprocessing import MinMaxScaler

from optuna_qsvr.predictors._base import (
    BasePredictor,
    FitInfo,
    ModelFormatError,
    NotEnoughCurvesError,
    Params,
    parse_model_json,
)
from optuna_qsvr.predictors._features import (
    FEATURE_KINDS,
    ParamEncoder,
    curve_features,
    fill_gaps,
)
from optuna_qsvr.predictors._registry import register_predictor

FORMAT = "optuna-qsvr/predictor"
VERSION = 1
MIN_CURVES = 3
# Bounds on what a stored model may hold: a hostile record must not exhaust memory.
_MAX_SUPPORT = 100_000
_MAX_FEATURES = 10_000


class _KernelCurvePredictor(BasePredictor):
    """Features, scaling, cross-validated error and JSON around a kernel regressor.

    Subclasses only say which scikit-learn-style regressor to fit (``_make_estimator``) and
    how to read its fitted kernel expansion; everything else is shared.
    """

    #: Default of ``cv``.
    _default_cv: ClassVar[int] = 5
    #: Estimator parameters that differ from the estimator's own defaults.
    _estimator_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        *,
        features: Sequence[str] = ("curve",),
        cv: int | None = None,
        random_state: int | None = 0,
        residual: bool = False,
        **estimator_params: Any,
    ) -> None:
        bad = [k for k in features if k not in FEATURE_KINDS]
        if bad or not features:
            raise ValueError(
                f"features must be a non-empty subset of {FEATURE_KINDS}, got {features}"
            )
        cv = self._default_cv if cv is None else cv
        if cv < 0 or cv == 1:
            raise ValueError(f"cv must be 0 (no uncertainty) or >= 2 folds, got {cv}")
        self.features = tuple(features)
        self.residual = residual
        self.cv = cv
        self.random_state = random_state
        self.estimator_params = {**self._estimator_defaults, **estimator_params}
        self._fitted: dict[str, Any] | None = None
        # Built once here so that a misspelt estimator parameter fails now, not at a fit.
        self._make_estimator()

    # -- subclass hooks --------------------------------------------------------------
    def _make_estimator(self) -> Any:
        raise NotImplementedError

    def _fitted_gamma(self, est: Any) -> float:
        raise NotImplementedError

    def _annealer(self, est: Any) -> str | None:
        return None

    def _annealer_calls(self, est: Any) -> int:
        return 0

    def _details(self, est: Any) -> dict[str, Any]:
        return {}

    # -- BasePredictor ---------------------------------------------------------------
    def fit(
        self, curves: np.ndarray, targets: np.ndarray, params: Params | None = None
    ) -> _KernelCurvePredictor:
        curves = np.array(curves, dtype=float, ndmin=2)
        targets = np.asarray(targets, dtype=float).ravel()
        if curves.shape[0] != targets.shape[0]:
            raise ValueError(f"{curves.shape[0]} curves but {targets.shape[0]} targets")
        if not np.all(np.isfinite(targets)):
            raise ValueError("targets must be finite")
        if curves.shape[0] < MIN_CURVES:
            raise NotEnoughCurvesError(
                f"need at least {MIN_CURVES} curves to fit, got {curves.shape[0]}"
            )
        start = time.perf_counter()
        encoder = ParamEncoder().fit(params) if "params" in self.features and params else None
        kinds = (
            self.features
            if encoder is not None
            else tuple(k for k in self.features if k != "params") or ("curve",)
        )
        X = curve_features(curves, params, kinds=kinds, encoder=encoder)
        base = _last_values(curves) if self.residual else np.zeros(len(targets))
        targets = targets - base
        x_scaler = MinMaxScaler().fit(X)
        y_scaler = MinMaxScaler().fit(targets[:, None])
        Xs = _impute(x_scaler.transform(X))
        ys = y_scaler.transform(targets[:, None]).ravel()
        est = self._make_estimator().fit(Xs, ys)
        calls = self._annealer_calls(est)
        sigma = math.nan
        residuals = None
        if self.cv:
            folds = KFold(min(self.cv, len(ys)), shuffle=True, random_state=self.random_state)
            scores = cross_validate(
                est,
                Xs,
                ys,
                cv=folds,
                scoring="neg_mean_squared_error",
                return_estimator=True,
                return_indices=True,
                error_score="raise",
            )
            # Pool the folds' squared errors over all points, then undo the target scaling:
            # MinMaxScaler is affine, so a residual scales by 1 / scale_.
            n_test = np.array([len(test) for test in scores["indices"]["test"]])
            mse = float(np.sum(-scores["test_score"] * n_test) / n_test.sum())
            sigma = math.sqrt(mse) / float(y_scaler.scale_[0])
            calls += sum(self._annealer_calls(e) for e in scores["estimator"])
            # Out-of-fold residuals in the target's units: the predictor's calibrated error
            # distribution (cross-conformal), which prob_below uses instead of a normal.
            oof = np.empty(len(ys))
            for fold, test in zip(scores["estimator"], scores["indices"]["test"], strict=True):
                oof[test] = fold.predict(Xs[test])
            residuals = np.sort((ys - oof) / float(y_scaler.scale_[0]))
        self._fitted = {
            "kinds": list(kinds),
            "residual": self.residual,
            "n_steps": int(curves.shape[1]),
            "x_scaler": x_scaler,
            "y_scaler": y_scaler,
            "encoder": encoder,
            "support_vectors": np.asarray(est.support_vectors_, dtype=float),
            "dual_coef": np.asarray(est.dual_coef_, dtype=float).ravel(),
            "intercept": float(np.ravel(est.intercept_)[0]),
            "gamma": float(self._fitted_gamma(est)),
            "sigma": sigma,
            "residuals": residuals,
            "info": {
                "n_train": len(ys),
                "fit_seconds": time.perf_counter() - start,
                "estimator": type(est).__name__,
                "annealer": self._annealer(est),
                "annealer_calls": calls,
                **self._details(est),
            },
        }
        self._fitted["fit_info"] = _fit_info(self._fitted["info"], sigma)
        return self

    def predict(
        self, curves: np.ndarray, params: Params | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        f = self._require_fitted()
        curves = np.array(curves, dtype=float, ndmin=2)
        if curves.shape[1] != f["n_steps"]:
            raise ValueError(
                f"fitted on curves of {f['n_steps']} steps, got {curves.shape[1]} steps"
            )
        X = curve_features(curves, params, kinds=f["kinds"], encoder=f["encoder"])
        Xs = _impute(f["x_scaler"].transform(X))
        sv = f["support_vectors"]
        # Constant targets leave no support vector: the model is its intercept.
        ys = (
            rbf_kernel(Xs, sv, gamma=f["gamma"]) @ f["dual_coef"] if len(sv) else np.zeros(len(Xs))
        )
        mean = f["y_scaler"].inverse_transform((ys + f["intercept"])[:, None]).ravel()
        if f["residual"]:
            mean = mean + _last_values(curves)
        return mean, np.full(mean.shape, f["sigma"])

    def prob_below(
        self, curves: np.ndarray, thresholds: np.ndarray, params: Params | None = None
    ) -> np.ndarray:
        """``P(target <= threshold)`` per row from the out-of-fold residuals (cross-conformal):
        ``(1 + #{r : forecast + r <= threshold}) / (n + 1)``, which leans towards "may beat
        it", the safe side for pruning. Without residuals (``cv=0``), the normal default."""
        residuals = self._require_fitted()["residuals"]
        if residuals is None:
            return super().prob_below(curves, thresholds, params)
        mean, _ = self.predict(curves, params)
        below = np.searchsorted(residuals, np.asarray(thresholds, dtype=float) - mean, "right")
        return (below + 1.0) / (len(residuals) + 1.0)

    @property
    def fit_info_(self) -> FitInfo:
        """Cross-validated error (``sigma_``), annealer, its calls and the estimator's name."""
        return self._require_fitted()["fit_info"]

    @property
    def sigma_(self) -> float:
        """Cross-validated RMS forecast error in the target's units (``NaN`` if ``cv=0``)."""
        return float(self._require_fitted()["sigma"])

    @property
    def residuals_(self) -> np.ndarray | None:
        """Out-of-fold residuals (target minus forecast) in the target's units, ascending:
        the error distribution :meth:`prob_below` reads (``None`` if ``cv=0``)."""
        residuals = self._require_fitted()["residuals"]
        return None if residuals is None else residuals.copy()

    def _require_fitted(self) -> dict[str, Any]:
        if self._fitted is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet")
        return self._fitted

    # -- JSON ------------------------------------------------------------------------
    def to_json(self) -> str:
        f = self._require_fitted()
        doc = {
            "format": FORMAT,
            "version": VERSION,
            # "kind" is the registry name; version 0.1 records carry it under this key too.
            "kind": type(self).name,
            "features": list(self.features),
            "kinds": f["kinds"],
            "residual": f["residual"],
            "n_steps": f["n_steps"],
            "x_scaler": _scaler_to_dict(f["x_scaler"]),
            "y_scaler": _scaler_to_dict(f["y_scaler"]),
            "param_columns": None if f["encoder"] is None else f["encoder"].to_dict(),
            "support_vectors": f["support_vectors"].tolist(),
            "dual_coef": f["dual_coef"].tolist(),
            "intercept": f["intercept"],
            "gamma": f["gamma"],
            "sigma": None if math.isnan(f["sigma"]) else f["sigma"],
            "info": f["info"],
        }
        if f["residuals"] is not None:  # absent, as in 0.1's records, when cv=0
            doc["residuals"] = f["residuals"].tolist()
        return json.dumps(doc, allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> _KernelCurvePredictor:
        doc = parse_model_json(text)
        if doc.get("format") != FORMAT:
            raise ModelFormatError(f"not an {FORMAT} record")
        if doc.get("version") != VERSION:
            raise ModelFormatError(f"unsupported predictor record version {doc.get('version')!r}")
        if doc.get("kind") != cls.name:
            raise ModelFormatError(
                f"record holds a {doc.get('kind')!r} predictor, not {cls.name!r}"
            )
        return _build(cls, doc)


@register_predictor
class SVRPredictor(_KernelCurvePredictor):
    """The reference's classical predictor: scikit-learn ``NuSVR`` on MinMax-scaled curves.

    Its forecast error ``sigma_`` is the RMS of cross-validated residuals (Baker et al.),
    which the pruner's probabilistic rule uses.

    Args:
        features: feature blocks (see :func:`curve_features`); the reference uses the curve.
        cv: folds for the error estimate; ``0`` skips it. ``None`` means 5.
        random_state: seeds the folds.
        residual: learn the change from the curve's last value instead of the value itself.
            An RBF model shrinks unusual curves toward the training mean; learning the change
            keeps their ranking (measured with ``benchmarks/tune_swift.py``).
        **svr_params: ``NuSVR`` parameters (``nu``, ``C``, ``gamma``, ...); its defaults are
            the reference's.

    Example:

        .. code-block:: python

            import numpy as np
            from optuna_qsvr import SVRPredictor

            rng = np.random.default_rng(0)
            rates = rng.uniform(0.1, 1.0, 30)
            curves = 1 - np.exp(-np.outer(rates, np.arange(1, 6)))
            final = 1 - np.exp(-rates * 20)
            mean, std = SVRPredictor().fit(curves, final).predict(curves[:3])
    """

    name = "svr"

    def _make_estimator(self) -> Any:
        from sklearn.svm import NuSVR

        return NuSVR(**self.estimator_params)

    def _fitted_gamma(self, est: Any) -> float:
        return est._gamma  # the value "scale" resolved to at fit time

    def _details(self, est: Any) -> dict[str, Any]:
        return {"n_support": len(est.support_)}


@register_predictor
class QSVRPredictor(_KernelCurvePredictor):
    """Q-SVR learning-curve predictor: the SVR dual solved as a QUBO by an annealer.

    Args:
        features, random_state, residual: as :class:`SVRPredictor`.
        cv: as :class:`SVRPredictor`, but ``None`` means ``0``: each fold is another annealer
            call, which costs QPU time on real hardware.
        **qsvr_params: parameters of :class:`~optuna_qsvr.QSVR` (``annealer``, ``num_reads``,
            ``max_points``, ...). Defaults differ from :class:`~optuna_qsvr.QSVR`'s reference
            values in two measured ways: ``gamma="scale"`` and ``num_reads=100``; on a QPU,
            where reads are cheap, pass ``num_reads=1000``.

    Example:

        .. code-block:: python

            import numpy as np
            from optuna_qsvr import QSVRPredictor

            curves = np.sqrt(np.linspace(0.1, 1.0, 60).reshape(12, 5))
            predictor = QSVRPredictor(num_reads=20, cv=3).fit(curves, curves[:, -1] + 0.05)
            forecast, error = predictor.predict(curves[:2])
            assert predictor.fit_info_.annealer_calls == 4  # the fit, then one per fold
    """

    name = "qsvr"
    _default_cv = 0
    # gamma "scale" as NuSVR: the reference's 0.1 makes the kernel nearly linear on
    # MinMax-scaled curves, and the encoding caps every dual variable at about 1.75, so the
    # Q-SVR underfits. 100 reads forecast as well as the reference's 1,000 under simulated
    # annealing, ten times faster (README, "Predictor accuracy").
    _estimator_defaults: ClassVar[dict[str, Any]] = {"gamma": "scale", "num_reads": 100}

    def _make_estimator(self) -> Any:
        from optuna_qsvr.predictors._qsvr import QSVR

        return QSVR(random_state=self.random_state, **self.estimator_params)

    def _fitted_gamma(self, est: Any) -> float:
        return est.gamma_

    def _annealer(self, est: Any) -> str | None:
        return est.annealer if isinstance(est.annealer, str) else type(est.annealer).__name__

    def _annealer_calls(self, est: Any) -> int:
        return est.n_annealer_calls_

    def _details(self, est: Any) -> dict[str, Any]:
        return {"n_estimators": est.n_estimators_, "anneal_seconds": est.anneal_seconds_}


def _fit_info(info: dict[str, Any], sigma: float) -> FitInfo:
    return FitInfo.from_dict(
        {
            "cv_rmse": sigma,
            "annealer": info.get("annealer"),
            # Version 0.1 records did not count annealer calls: one per ensemble member, the
            # cross-validation folds' unknown, is the best stand-in.
            "annealer_calls": info.get("annealer_calls", info.get("n_estimators", 0)),
            "estimator": info.get("estimator"),
        }
    )


def _last_values(curves: np.ndarray) -> np.ndarray:
    """Each curve's last reported value: the base a residual target is measured from."""
    return fill_gaps(curves)[:, -1]


def _impute(Xs: np.ndarray) -> np.ndarray:
    # A hyperparameter absent from a trial (conditional spaces) sits mid-range after scaling.
    return np.where(np.isfinite(Xs), Xs, 0.5)


def _scaler_to_dict(s: MinMaxScaler) -> dict[str, list[float]]:
    return {"data_min": s.data_min_.tolist(), "data_max": s.data_max_.tolist()}


def _scaler_from_dict(d: Any, n: int, name: str) -> MinMaxScaler:
    if not isinstance(d, dict) or set(d) != {"data_min", "data_max"}:
        raise ModelFormatError(f"{name} must hold exactly data_min and data_max")
    lo = _array(d["data_min"], f"{name}.data_min", (n,))
    hi = _array(d["data_max"], f"{name}.data_max", (n,))
    if np.any(hi < lo):
        raise ModelFormatError(f"{name}: data_max below data_min")
    # Refit on the two extreme rows: the scaler is rebuilt by scikit-learn, not by hand.
    return MinMaxScaler().fit(np.vstack([lo, hi]))


def _array(value: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise ModelFormatError(f"{name} is not a numeric array") from err
    if arr.shape != shape:
        raise ModelFormatError(f"{name} has shape {arr.shape}, expected {shape}")
    if not np.all(np.isfinite(arr)):
        raise ModelFormatError(f"{name} holds non-finite numbers")
    return arr


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelFormatError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _build(cls: type[_KernelCurvePredictor], doc: dict[str, Any]) -> _KernelCurvePredictor:
    required = {
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
    }
    missing = required - set(doc)
    if missing:
        raise ModelFormatError(f"predictor record lacks {sorted(missing)}")
    kinds = doc["kinds"]
    if not isinstance(kinds, list) or not kinds or any(k not in FEATURE_KINDS for k in kinds):
        raise ModelFormatError(f"bad feature kinds {kinds!r}")
    features = doc["features"]
    if not isinstance(features, list) or any(k not in FEATURE_KINDS for k in features):
        raise ModelFormatError(f"bad features {features!r}")
    n_steps = doc["n_steps"]
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or not 1 <= n_steps <= 100_000:
        raise ModelFormatError(f"bad n_steps {n_steps!r}")
    encoder = None
    if doc["param_columns"] is not None:
        encoder = ParamEncoder.from_dict(doc["param_columns"])
    if ("params" in kinds) != (encoder is not None):
        raise ModelFormatError("param features and param columns disagree")
    n_features = (
        ("curve" in kinds) * n_steps
        + ("diff1" in kinds) * max(n_steps - 1, 0)
        + ("diff2" in kinds) * max(n_steps - 2, 0)
        + (len(encoder.columns_) if encoder is not None else 0)
    )
    if not 1 <= n_features <= _MAX_FEATURES:
        raise ModelFormatError(f"bad feature count {n_features}")
    sv_raw = doc["support_vectors"]
    if not isinstance(sv_raw, list) or len(sv_raw) > _MAX_SUPPORT:
        raise ModelFormatError("support_vectors must be a list of bounded size")
    sv = (
        _array(sv_raw, "support_vectors", (len(sv_raw), n_features))
        if sv_raw
        else np.zeros((0, n_features))
    )
    coef = _array(doc["dual_coef"], "dual_coef", (len(sv_raw),))
    gamma = _number(doc["gamma"], "gamma")
    if gamma <= 0:
        raise ModelFormatError(f"gamma must be positive, got {gamma}")
    sigma = math.nan if doc["sigma"] is None else _number(doc["sigma"], "sigma")
    # Version 0.1 records have no residuals: they forecast with the normal error.
    raw = doc.get("residuals")
    if raw is not None and (not isinstance(raw, list) or len(raw) > _MAX_SUPPORT):
        raise ModelFormatError("residuals must be a list of bounded size")
    residuals = None if raw is None else np.sort(_array(raw, "residuals", (len(raw),)))
    if not isinstance(doc["residual"], bool):
        raise ModelFormatError(f"residual must be true or false, got {doc['residual']!r}")
    info = doc["info"]
    if not isinstance(info, dict) or any(
        not isinstance(v, (str, int, float, type(None))) for v in info.values()
    ):
        raise ModelFormatError("info must be a flat mapping of plain values")
    # Not through __init__: a loaded model only predicts, and building its estimator there
    # would import the annealing stack for nothing.
    pred = cls.__new__(cls)
    pred.features = tuple(features)
    pred.residual = doc["residual"]
    pred.cv = 0
    pred.random_state = 0
    pred.estimator_params = dict(cls._estimator_defaults)
    pred._fitted = {
        "kinds": kinds,
        "residual": doc["residual"],
        "n_steps": n_steps,
        "x_scaler": _scaler_from_dict(doc["x_scaler"], n_features, "x_scaler"),
        "y_scaler": _scaler_from_dict(doc["y_scaler"], 1, "y_scaler"),
        "encoder": encoder,
        "support_vectors": sv,
        "dual_coef": coef,
        "intercept": _number(doc["intercept"], "intercept"),
        "gamma": gamma,
        "sigma": sigma,
        "residuals": residuals,
        "info": info,
        "fit_info": _fit_info(info, sigma),
    }
    return pred
