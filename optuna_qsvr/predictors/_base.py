"""The predictor contract the pruner relies on; it knows nothing about Optuna."""

from __future__ import annotations

import abc
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from optuna_qsvr.exceptions import (  # noqa: F401  (re-exported: the contract's errors)
    AnnealerError,
    AnnealerTimeoutError,
    ModelFormatError,
    NotEnoughCurvesError,
    PredictorError,
)

Params = Sequence[Mapping[str, Any]]

#: Longest serialised predictor accepted: a hostile record must not exhaust memory.
MAX_MODEL_CHARS = 64 * 1024 * 1024


def parse_model_json(text: str) -> dict[str, Any]:
    """Parse a serialised predictor as untrusted input: a JSON object, or ModelFormatError.

    For :meth:`BasePredictor.from_json` implementations: it rejects bytes, oversized text,
    invalid or too deeply nested JSON, ``NaN`` and ``Infinity`` (not JSON), and anything but
    an object. Checking the object's fields is the caller's job.

    Args:
        text: the output of a :meth:`BasePredictor.to_json`.

    Returns:
        The parsed JSON object.

    Raises:
        ModelFormatError: If ``text`` is not a JSON object within :data:`MAX_MODEL_CHARS`.
    """
    if not isinstance(text, str):
        raise ModelFormatError(
            f"a predictor record must be JSON text (str), got {type(text).__name__}"
        )
    if len(text) > MAX_MODEL_CHARS:
        raise ModelFormatError(f"predictor record too large ({len(text)} characters)")
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise ModelFormatError(f"predictor record is not valid JSON: {err}") from err
    except RecursionError:
        raise ModelFormatError("predictor record is nested too deeply") from None
    if not isinstance(doc, dict):
        raise ModelFormatError(
            f"a predictor record must be a JSON object, not {type(doc).__name__}"
        )
    return doc


def _reject_constant(name: str) -> None:
    raise ModelFormatError(f"predictor record holds {name}, which JSON does not allow")


@dataclass(frozen=True)
class FitInfo:
    """What a fit cost and how good it is expected to be; stored with the model record.

    Args:
        cv_rmse: cross-validated RMS forecast error, in the target's units (``None`` if not
            estimated).
        annealer: the annealer that solved the fit (``None`` for a classical predictor).
        annealer_calls: sampler calls the fit made (each costs QPU time on real hardware).
        estimator: the underlying estimator's name, for reports.
    """

    cv_rmse: float | None = None
    annealer: str | None = None
    annealer_calls: int = 0
    estimator: str | None = None

    def __post_init__(self) -> None:
        if self.cv_rmse is not None:
            if isinstance(self.cv_rmse, bool) or not isinstance(self.cv_rmse, numbers.Real):
                raise TypeError(f"cv_rmse must be a number or None, got {self.cv_rmse!r}")
            # A NaN error means "unknown": store it as such, never as NaN in JSON.
            rmse = float(self.cv_rmse)
            object.__setattr__(self, "cv_rmse", rmse if math.isfinite(rmse) else None)
        for name in ("annealer", "estimator"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a str or None, got {value!r}")
        calls = self.annealer_calls
        if isinstance(calls, bool) or not isinstance(calls, numbers.Integral):
            raise TypeError(f"annealer_calls must be an int, got {calls!r}")
        if calls < 0:
            raise ValueError(f"annealer_calls must be >= 0, got {calls}")
        # NumPy integers are accepted but stored as int, so that to_dict() is plain JSON.
        object.__setattr__(self, "annealer_calls", int(calls))

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready mapping."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FitInfo:
        """Rebuild from :meth:`to_dict`; unknown fields are ignored, wrong types rejected."""
        try:
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except (TypeError, ValueError) as err:
            raise ModelFormatError(f"bad fit metadata: {err}") from err


class BasePredictor(abc.ABC):
    """Forecast a learning curve's value at a later step from its first ``t`` values.

    ``curves`` is an ``(n, t)`` float array: row ``i`` holds trial ``i``'s values at the steps
    ``1..t`` of the decision key, with ``NaN`` where a step was not reported. ``params`` is one
    mapping per row (hyperparameter name to number or string) or ``None``.

    A predictor is stored in the study as ``to_json()`` under its registry ``name`` (see
    :func:`~optuna_qsvr.predictors.register_predictor`) and rebuilt by that class's
    ``from_json``; the pruner knows nothing else about it. ``fit_info_`` describes the last
    fit; the default says nothing.
    """

    #: The name this class is registered under; stored with every fitted model.
    name: ClassVar[str] = ""

    @property
    def fit_info_(self) -> FitInfo:
        """Metadata of the last fit (cost, expected error); empty unless overridden."""
        return FitInfo()

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

    def prob_below(
        self, curves: np.ndarray, thresholds: np.ndarray, params: Params | None = None
    ) -> np.ndarray:
        """``P(target <= threshold)`` per row, under the predictor's calibrated error.

        The default treats the error as normal with :meth:`predict`'s standard error and
        returns ``NaN`` where that is unknown; a predictor with a better error model (the
        kernel predictors' out-of-fold residuals) overrides it. The pruner prunes on it only
        when it is finite.
        """
        from scipy.special import ndtr

        mean, std = self.predict(curves, params)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = ndtr((np.asarray(thresholds, dtype=float) - mean) / std)
        return np.where(np.isfinite(std) & (std > 0), p, np.nan)

    @abc.abstractmethod
    def to_json(self) -> str:
        """Serialise the fitted predictor; data only, never code."""

    @classmethod
    @abc.abstractmethod
    def from_json(cls, text: str) -> BasePredictor:
        """Rebuild a fitted predictor from :meth:`to_json`, validating every field.

        The text comes from the study's storage, which other processes write: parse it with
        :func:`parse_model_json` and raise :class:`ModelFormatError` for anything malformed.
        """
