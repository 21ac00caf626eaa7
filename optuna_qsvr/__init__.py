"""Swift-Hyperband for Optuna: prune trials on forecasts of their learning curves.

Public names are imported lazily so that ``import optuna_qsvr`` stays as light as
``import optuna``: scikit-learn and dimod load only when a predictor is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0.dev0"

_LAZY = {
    "AtomicStateRDBStorage": "optuna_qsvr._rdb",
    "SwiftHyperbandPruner": "optuna_qsvr.pruners",
    "SwiftSampler": "optuna_qsvr.samplers",
    "QSVR": "optuna_qsvr.predictors",
    "SVRPredictor": "optuna_qsvr.predictors",
    "QSVRPredictor": "optuna_qsvr.predictors",
    "BasePredictor": "optuna_qsvr.predictors",
    "FitInfo": "optuna_qsvr.predictors",
    "load_predictor": "optuna_qsvr.predictors",
    "register_predictor": "optuna_qsvr.predictors",
    "DashboardCallback": "optuna_qsvr.report",
}

__all__ = [
    "QSVR",
    "AtomicStateRDBStorage",
    "BasePredictor",
    "DashboardCallback",
    "FitInfo",
    "QSVRPredictor",
    "SVRPredictor",
    "SwiftHyperbandPruner",
    "SwiftSampler",
    "__version__",
    "load_predictor",
    "register_predictor",
]

if TYPE_CHECKING:
    from optuna_qsvr._rdb import AtomicStateRDBStorage
    from optuna_qsvr.predictors import (
        QSVR,
        BasePredictor,
        FitInfo,
        QSVRPredictor,
        SVRPredictor,
        load_predictor,
        register_predictor,
    )
    from optuna_qsvr.pruners import SwiftHyperbandPruner
    from optuna_qsvr.report import DashboardCallback
    from optuna_qsvr.samplers import SwiftSampler


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'optuna_qsvr' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
