"""Learning-curve predictors: the contract and its registry, features, SVR, Q-SVR."""

from optuna_qsvr.predictors._base import (
    AnnealerError,
    AnnealerTimeoutError,
    BasePredictor,
    FitInfo,
    ModelFormatError,
    NotEnoughCurvesError,
    PredictorError,
)
from optuna_qsvr.predictors._curve_predictors import QSVRPredictor, SVRPredictor
from optuna_qsvr.predictors._features import ParamEncoder, curve_features, fill_gaps
from optuna_qsvr.predictors._registry import (
    load_predictor,
    make_predictor,
    predictor_class,
    register_predictor,
    registered_predictors,
)

__all__ = [
    "QSVR",
    "AnnealerError",
    "AnnealerTimeoutError",
    "BasePredictor",
    "FitInfo",
    "ModelFormatError",
    "NotEnoughCurvesError",
    "ParamEncoder",
    "PredictorError",
    "QSVRPredictor",
    "SVRPredictor",
    "curve_features",
    "fill_gaps",
    "load_predictor",
    "make_predictor",
    "predictor_class",
    "register_predictor",
    "registered_predictors",
]


def __getattr__(name: str):
    # QSVR pulls in dimod; load it only when asked for.
    if name == "QSVR":
        from optuna_qsvr.predictors._qsvr import QSVR

        return QSVR
    raise AttributeError(f"module 'optuna_qsvr.predictors' has no attribute {name!r}")
