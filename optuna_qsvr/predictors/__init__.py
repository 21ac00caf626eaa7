"""Learning-curve predictors: features, classical SVR, Q-SVR, and their JSON form."""

from optuna_qsvr.predictors._base import (
    AnnealerError,
    AnnealerTimeoutError,
    BasePredictor,
    ModelFormatError,
    NotEnoughCurvesError,
    PredictorError,
)
from optuna_qsvr.predictors._curve_predictors import QSVRPredictor, SVRPredictor, load_predictor
from optuna_qsvr.predictors._features import ParamEncoder, curve_features, fill_gaps

__all__ = [
    "QSVR",
    "AnnealerError",
    "AnnealerTimeoutError",
    "BasePredictor",
    "ModelFormatError",
    "NotEnoughCurvesError",
    "ParamEncoder",
    "PredictorError",
    "QSVRPredictor",
    "SVRPredictor",
    "curve_features",
    "fill_gaps",
    "load_predictor",
]


def __getattr__(name: str):
    # QSVR pulls in dimod; load it only when asked for.
    if name == "QSVR":
        from optuna_qsvr.predictors._qsvr import QSVR

        return QSVR
    raise AttributeError(f"module 'optuna_qsvr.predictors' has no attribute {name!r}")
