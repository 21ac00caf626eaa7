"""The pruner's options, validated once: Optuna's style, each error names the value."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from optuna_qsvr._validation import check_int
from optuna_qsvr.predictors._base import BasePredictor
from optuna_qsvr.predictors._features import FEATURE_KINDS
from optuna_qsvr.pruners import _rules

PredictorSpec = str | BasePredictor | Callable[[], BasePredictor]


@dataclass(frozen=True)
class SwiftOptions:
    """Every option of :class:`~optuna_qsvr.SwiftHyperbandPruner` (see its docstring), checked
    and normalised (NumPy integers become ``int``; ``rules`` defaults from the options)."""

    min_resource: int
    max_resource: int
    reduction_factor: int
    known_curve: float
    min_train_curves: int
    max_train_curves: int
    full_fraction: float
    threshold_quantile: float
    predictor: PredictorSpec
    features: tuple[str, ...]
    confidence: float | None
    forecast_final: bool
    refit_every: int | None
    rank_quantile: float | None
    residual_target: bool
    rungs: str
    fit_lease_seconds: float
    rules: tuple[_rules.DecisionRule, ...] | None

    def __post_init__(self) -> None:
        if self.max_resource is None or isinstance(self.max_resource, str):
            raise ValueError(
                f"max_resource must be an integer number of epochs, got {self.max_resource!r}: "
                "'auto' lets workers disagree on the brackets"
            )
        ints = [
            ("min_resource", 1),
            ("reduction_factor", 2),
            ("max_resource", check_int("min_resource", self.min_resource, 1)),
            ("min_train_curves", 3),
            ("max_train_curves", check_int("min_train_curves", self.min_train_curves, 3)),
        ] + ([("refit_every", 1)] if self.refit_every is not None else [])
        for name, minimum in ints:
            self._set(name, check_int(name, getattr(self, name), minimum))
        for name, low, high, closed in (
            ("known_curve", 0.0, 1.0, False),
            ("threshold_quantile", 0.0, 1.0, False),
            ("full_fraction", 0.0, 1.0, True),
        ):
            value = getattr(self, name)
            inside = _real(value) and (low <= value <= high if closed else low < value < high)
            if not inside:
                bounds = f"[{low:g}, {high:g}]" if closed else f"({low:g}, {high:g})"
                raise ValueError(f"{name} must be in {bounds}, got {value!r}")
        if not (_real(self.fit_lease_seconds) and self.fit_lease_seconds > 0):
            raise ValueError(f"fit_lease_seconds must be > 0, got {self.fit_lease_seconds!r}")
        if self.rungs not in ("optuna", "hyperband"):
            raise ValueError(f"rungs must be 'optuna' or 'hyperband', got {self.rungs!r}")
        features = self.features
        if isinstance(features, str) or not features or set(features) - set(FEATURE_KINDS):
            raise ValueError(
                f"features must be a non-empty subset of {FEATURE_KINDS}, got {features}"
            )
        self._set("features", tuple(features))
        self._set("rules", self._checked_rules())
        _check_predictor(self.predictor)

    def _checked_rules(self) -> tuple[_rules.DecisionRule, ...]:
        if self.rules is None:
            return _rules.default_rules(
                confidence=self.confidence,
                rank_quantile=self.rank_quantile,
                forecast_final=self.forecast_final,
            )
        if self.confidence is not None or self.rank_quantile is not None:
            raise ValueError("pass either rules or confidence/rank_quantile, not both")
        rules = tuple(self.rules)
        bad = [r for r in rules if not isinstance(r, _rules.DecisionRule)]
        if not rules or bad:
            raise TypeError(f"rules must be a non-empty list of DecisionRule, got {bad or rules}")
        return rules

    def model_settings(self) -> dict[str, Any]:
        """The options a fitted model depends on, stored with it and compared on load."""
        names = ("min_resource", "max_resource", "reduction_factor", "known_curve", "rungs")
        more = ("features", "residual_target", "max_train_curves")
        return {name: getattr(self, name) for name in (*names, *more)}

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_predictor(predictor: Any) -> None:
    if isinstance(predictor, str):
        from optuna_qsvr.predictors import registered_predictors

        if predictor not in registered_predictors():
            raise ValueError(
                f"predictor must be one of {registered_predictors()} or a BasePredictor, "
                f"got {predictor!r}"
            )
    elif not isinstance(predictor, BasePredictor) and not callable(predictor):
        raise TypeError(f"predictor must be a name or a BasePredictor, got {predictor!r}")
