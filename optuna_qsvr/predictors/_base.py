"""The predictor contract the pruner relies on; it knows nothing about Optuna."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


class PredictorError(RuntimeError):
    """A predictor could not be fitted or could not forecast."""


class NotEnoughCurvesError(PredictorError, ValueError):
    """Too few learning curves to fit a predictor."""


class AnnealerError(PredictorError):
    """The annealer failed, was unreachable, or returned no usable sample."""


class AnnealerTimeoutError(AnnealerError, TimeoutError):
    """The annealer did not answer within the allowed time."""


class ModelFormatError(PredictorError, ValueError):
    """A serialised predictor is malformed, tampered with, or of an unknown version."""


Params = Sequence[Mapping[str, Any]]


class BasePredictor(abc.ABC):
    """Forecast a learning curve's value at a later step from its first ``t`` values.

    ``curves`` is an ``(n, t)`` float array: row ``i`` holds trial ``i``'s values at the steps
    ``1..t`` of the decision key, with ``NaN`` where a step was not reported. ``params`` is one
    mapping per row (hyperparameter name to number or string) or ``None``.
    """

    @abc.abstractmethod
    def fit(
        self, curves: np.ndarray, targets: np.ndarray, params: Params | None = None
    ) -> BasePredictor:
        """Learn ``targets`` (the value at the target step) from ``curves``; return ``self``."""

    @abc.abstractmethod
    def predict(
        self, curves: np.ndarray, params: Params | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the forecast and its standard error (``NaN`` when unknown), one per row."""

    @abc.abstractmethod
    def to_json(self) -> str:
        """Serialise the fitted predictor; data only, never code."""

    @classmethod
    @abc.abstractmethod
    def from_json(cls, text: str) -> BasePredictor:
        """Rebuild a fitted predictor from :meth:`to_json`, validating every field."""
