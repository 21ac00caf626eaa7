"""The pruner's options, validated once: Optuna's style, each error names the value."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from optuna_qsvr._validation import check_int
from optuna_qsvr.predictors._base import BasePredictor
from optuna_qsvr.predictors._features import FEATURE_KINDS
from optuna_qsvr.pruners import _rules

PredictorSpec = str | BasePredictor | Callable[[], BasePredictor]


MODES = ("forecast", "paper")

# Options of one mode only, with their defaults there. ``None`` in the constructor means
# "not given", so an option of the other mode is an error rather than silently ignored.
PAPER_DEFAULTS: dict[str, Any] = {
    "known_curve": 0.5,
    "full_fraction": 0.5,
    "threshold_quantile": 0.25,
    "confidence": None,
    "forecast_final": False,
    "refit_every": None,
    "rank_quantile": None,
    "rules": None,
}
FORECAST_DEFAULTS: dict[str, Any] = {
    "alpha": 0.1,
    "top_k": 1,
    "checkpoint_ratio": 1.5,
    "rescue": "chance",
    "rescue_alpha": 0.5,
    "refit_growth": 1.5,
    "min_rank_persistence": 0.5,
    "min_persistence_pairs": 6,
    "second_look": False,
    "promote_among": "study",
    "rescue_fallback": "median",
}
RESCUES = ("chance", "rank", "none")
PROMOTE_AMONG = ("study", "bracket")
RESCUE_FALLBACKS = ("none", "median")
SHARED_DEFAULTS: dict[str, dict[str, Any]] = {
    # 15 curves in both modes. The forecast mode's chances are cross-conformal, never below
    # 1/(n + 1): from 10 curves that floor (0.091) sits just under alpha, so one forecast past
    # every residual pruned; waiting for 15 lowered the recorded tables' regret (README, "A
    # model from 15 curves"). The forecast mode learns a curve's change (Baker et al.'s
    # remedy for an RBF model's pull towards the training mean).
    "min_train_curves": {"forecast": 15, "paper": 15},
    "residual_target": {"forecast": True, "paper": False},
    # Hyperband's most aggressive bracket and a quarter of the next: the calibrated rules,
    # and successive halving over the whole study's values, replace the hedge that the
    # conservative brackets buy at a high price (README, "The default rule").
    "bracket_weights": {"forecast": (1.0, 0.25, 0.0), "paper": None},
}


@dataclass(frozen=True)
class SwiftOptions:
    """Every option of :class:`~optuna_qsvr.SwiftHyperbandPruner` (see its docstring), checked
    and normalised (NumPy integers become ``int``; ``None`` becomes the mode's default;
    ``rules`` defaults from the options)."""

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
    mode: str = "forecast"
    alpha: float = 0.1
    top_k: int = 1
    checkpoint_ratio: float = 1.5
    rescue: str = "chance"
    refit_growth: float = 1.5
    bracket_weights: tuple[float, ...] | None = None
    rescue_alpha: float = 0.5
    # None once normalised: every trial in the forecast regime (passed as False).
    min_rank_persistence: float | None = 0.5
    min_persistence_pairs: int = 6
    second_look: bool = False
    promote_among: str = "study"
    rescue_fallback: str = "median"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        own, other = (
            (FORECAST_DEFAULTS, PAPER_DEFAULTS)
            if self.mode == "forecast"
            else (PAPER_DEFAULTS, FORECAST_DEFAULTS)
        )
        # forecast_final=False is the paper mode's default, harmless to pass to either mode.
        given = sorted(
            name
            for name in other
            if getattr(self, name) is not None
            and not (name == "forecast_final" and getattr(self, name) is False)
        )
        if given:
            hint = "mode='paper'" if self.mode == "forecast" else "the default mode='forecast'"
            raise ValueError(
                f"{', '.join(given)} apply to {hint} only, not to mode={self.mode!r}; "
                "see the pruner's docstring"
            )
        for name, default in {**own, **other}.items():
            if getattr(self, name) is None:
                self._set(name, default)
        for name, defaults in SHARED_DEFAULTS.items():
            if getattr(self, name) is None:
                self._set(name, defaults[self.mode])
        if self.max_resource is None or isinstance(self.max_resource, str):
            why = ": 'auto' lets workers disagree on the brackets" * (self.max_resource == "auto")
            raise ValueError(
                f"max_resource must be an integer number of epochs, got {self.max_resource!r}{why}"
            )
        fewest = check_int("min_train_curves", self.min_train_curves, 3)
        if isinstance(self.max_train_curves, int) and self.max_train_curves < fewest:
            raise ValueError(
                f"max_train_curves ({self.max_train_curves}) must be at least min_train_curves"
                f" ({fewest}): raise max_train_curves too"
            )
        ints = [
            ("min_resource", 1),
            ("reduction_factor", 2),
            ("max_resource", check_int("min_resource", self.min_resource, 1)),
            ("min_train_curves", 3),
            ("max_train_curves", fewest),
            ("top_k", 1),
            # Spearman's correlation is undefined on fewer than three pairs.
            ("min_persistence_pairs", 3),
        ] + ([("refit_every", 1)] if self.refit_every is not None else [])
        for name, minimum in ints:
            self._set(name, check_int(name, getattr(self, name), minimum))
        for name, low, high, closed in (
            ("known_curve", 0.0, 1.0, False),
            ("threshold_quantile", 0.0, 1.0, False),
            ("full_fraction", 0.0, 1.0, True),
            ("alpha", 0.0, 0.5, False),
            ("rescue_alpha", 0.0, 1.0, False),
        ):
            value = getattr(self, name)
            inside = _real(value) and (low <= value <= high if closed else low < value < high)
            if not inside:
                bounds = f"[{low:g}, {high:g}]" if closed else f"({low:g}, {high:g})"
                raise ValueError(f"{name} must be in {bounds}, got {value!r}")
        for name in ("checkpoint_ratio", "refit_growth"):
            value = getattr(self, name)
            if not (_real(value) and 1.0 < value < math.inf):
                raise ValueError(f"{name} must be > 1 and finite, got {value!r}")
        # At 1 + 1/(max_resource + 1) consecutive points are at most one step apart up to
        # max_resource: every step is a point, and a smaller ratio only costs time.
        every_step = 1.0 + 1.0 / (self.max_resource + 1)
        if self.checkpoint_ratio < every_step:
            raise ValueError(
                f"checkpoint_ratio must be at least 1 + 1/(max_resource + 1) = {every_step:.6g},"
                f" which already makes every step a decision point; got {self.checkpoint_ratio!r}"
            )
        if self.bracket_weights is not None:
            weights = _as_tuple(self.bracket_weights)
            finite = all(_real(w) and 0 <= w < math.inf for w in weights)
            if not weights or not finite or weights[0] <= 0:
                raise ValueError(
                    "bracket_weights must be non-negative numbers, most aggressive bracket "
                    f"first, the first one positive; got {self.bracket_weights!r}"
                )
            # All ones is Hyperband's allocation: keep Optuna's exact bracket assignment.
            # Weights are relative: scaled by the largest, so tiny ones keep their shares.
            top = max(weights)
            normal = None if all(w == top for w in weights) else tuple(w / top for w in weights)
            self._set("bracket_weights", normal)
        persistence = self.min_rank_persistence
        if persistence is False:
            self._set("min_rank_persistence", None)
        elif self.mode == "forecast" and not (_real(persistence) and -1.0 <= persistence <= 1.0):
            raise ValueError(
                f"min_rank_persistence must be in [-1, 1] or False, got {persistence!r}"
            )
        for name in ("residual_target", "forecast_final"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.mode == "forecast" and not isinstance(self.second_look, bool):
            raise ValueError(f"second_look must be True or False, got {self.second_look!r}")
        if self.mode == "forecast" and self.promote_among not in PROMOTE_AMONG:
            raise ValueError(
                f"promote_among must be one of {PROMOTE_AMONG}, got {self.promote_among!r}"
            )
        if self.mode == "forecast" and self.rescue_fallback not in RESCUE_FALLBACKS:
            raise ValueError(
                f"rescue_fallback must be one of {RESCUE_FALLBACKS}, got {self.rescue_fallback!r}"
            )
        # True and False read naturally: the default rescue, or none.
        rescue = self.rescue
        if isinstance(rescue, bool):
            rescue = "chance" if rescue else "none"
        if rescue not in RESCUES:
            raise ValueError(
                f"rescue must be one of {RESCUES}, True or False; got {self.rescue!r}"
            )
        self._set("rescue", rescue)
        if not (_real(self.fit_lease_seconds) and self.fit_lease_seconds > 0):
            raise ValueError(f"fit_lease_seconds must be > 0, got {self.fit_lease_seconds!r}")
        if self.rungs not in ("optuna", "hyperband"):
            raise ValueError(f"rungs must be 'optuna' or 'hyperband', got {self.rungs!r}")
        features = _as_tuple(self.features)
        if (
            not features
            or not all(isinstance(f, str) for f in features)
            or (set(features) - set(FEATURE_KINDS))
        ):
            raise ValueError(
                f"features must be a non-empty list of names from {FEATURE_KINDS}, got"
                f" {self.features!r}"
            )
        if len(set(features)) != len(features):
            raise ValueError(f"features must name each block once, got {self.features!r}")
        self._set("features", features)
        self._set("rules", self._checked_rules())
        _check_predictor(self.predictor)

    def _checked_rules(self) -> tuple[_rules.DecisionRule, ...]:
        if self.mode == "forecast":
            return (_rules.ChanceRule(self.alpha),)
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
        more = ("features", "residual_target", "max_train_curves", "mode")
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


def _as_tuple(value: Any) -> tuple[Any, ...]:
    """A list option's items, or ``()`` for a value that is not a list of them: a string
    would otherwise read as its letters, a number not at all."""
    if isinstance(value, (str, bytes)):
        return ()
    try:
        return tuple(value)
    except TypeError:
        return ()
