"""A sampler wrapper that lets a model-based sampler learn per bracket and from forecasts."""

from __future__ import annotations

import copy
from collections.abc import Callable, Container, Sequence
from typing import TYPE_CHECKING, Any

import optuna
from optuna.samplers import BaseSampler
from optuna.trial import TrialState

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import Study
    from optuna.trial import FrozenTrial


class SwiftSampler(BaseSampler):
    """Wrap any sampler so that it works with Hyperband-style pruners.

    * Bracket-aware: with :class:`~optuna_qsvr.SwiftHyperbandPruner` or Optuna's
      :class:`~optuna.pruners.HyperbandPruner`, the base sampler sees only the trials of the
      bracket of the trial being sampled, through both ``Study.get_trials`` and the private
      ``Study._get_trials`` that TPE reads (Optuna's own bracket view filters only the first).
    * Forecast-aware (``forecast_aware=True``): a trial pruned on a forecast is shown to the
      base sampler as complete with its forecast value instead of as a pruned trial with a
      truncated curve. Forecasts are of the rung's end unless the pruner was built with
      ``forecast_final=True``, which makes them forecasts of the final value.

    With any other pruner it is a transparent wrapper.

    Args:
        base_sampler: the sampler that proposes parameters; TPE by default (Random is the
            Hyperband paper's choice).
        bracket_aware: filter the base sampler's history to the trial's bracket.
        forecast_aware: replace pruned trials by their forecasts.

    Example:

        .. code-block:: python

            import optuna
            from optuna_qsvr import SwiftHyperbandPruner, SwiftSampler

            study = optuna.create_study(
                sampler=SwiftSampler(optuna.samplers.TPESampler(seed=0)),
                pruner=SwiftHyperbandPruner(max_resource=27),
            )
    """

    def __init__(
        self,
        base_sampler: BaseSampler | None = None,
        *,
        bracket_aware: bool = True,
        forecast_aware: bool = False,
    ) -> None:
        if base_sampler is not None and not isinstance(base_sampler, BaseSampler):
            raise TypeError(
                "base_sampler must be an optuna.samplers.BaseSampler instance such as "
                f"TPESampler(), got {base_sampler!r}"
            )
        for name, flag in (("bracket_aware", bracket_aware), ("forecast_aware", forecast_aware)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {flag!r}")
        self._base = base_sampler if base_sampler is not None else optuna.samplers.TPESampler()
        self._bracket_aware = bracket_aware
        self._forecast_aware = forecast_aware

    @property
    def base_sampler(self) -> BaseSampler:
        return self._base

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._base.infer_relative_search_space(self._view(study, trial), trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._base.sample_relative(self._view(study, trial), trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._base.sample_independent(
            self._view(study, trial), trial, param_name, param_distribution
        )

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._base.before_trial(self._view(study, trial), trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._base.after_trial(self._view(study, trial), trial, state, values)

    def reseed_rng(self) -> None:
        self._base.reseed_rng()

    def _view(self, study: Study, trial: FrozenTrial) -> Study:
        if type(study).__name__ == "_BracketStudy":
            # Optuna's partial bracket view of HyperbandPruner: filter the full study instead.
            study = study._study
        keep = self._bracket_filter(study, trial) if self._bracket_aware else None
        if keep is None and not self._forecast_aware:
            return study
        return _StudyView(study, keep, self._forecast_aware)

    @staticmethod
    def _bracket_filter(study: Study, trial: FrozenTrial) -> Callable[[FrozenTrial], bool] | None:
        from optuna_qsvr.pruners import SwiftHyperbandPruner

        pruner = study.pruner
        name = study.study_name
        if isinstance(pruner, SwiftHyperbandPruner):
            # Chosen (and recorded) now for the trial being sampled; the others' as recorded.
            bracket = pruner.bracket(study, trial)
            return lambda t: pruner._known_bracket(name, t) == bracket
        if isinstance(pruner, optuna.pruners.HyperbandPruner):
            # Optuna's pruner knows its brackets only after its first prune call.
            if not pruner._pruners:
                return None
            bracket = pruner._get_bracket_id(study, trial)
            return lambda t: _optuna_bracket(pruner, study, t.number) == bracket
        return None


def _optuna_bracket(pruner: Any, study: Study, number: int) -> int:
    stub = copy.copy(_STUB)
    stub.number = number
    return pruner._get_bracket_id(study, stub)


class _NumberOnly:
    number = 0


_STUB = _NumberOnly()


class _StudyView(optuna.study.Study):
    """The study as the base sampler should see it; shares the original's storage and state."""

    def __init__(
        self, study: Study, keep: Callable[[FrozenTrial], bool] | None, forecast_aware: bool
    ) -> None:
        self.__dict__.update(study.__dict__)
        self._inner = study
        self._keep = keep
        self._forecast_aware = forecast_aware

    def stop(self) -> None:
        # The flag lives on the study that optimize() watches, not on this copy of its fields:
        # a base sampler that ends the study (GridSampler, once its grid is done) must end it.
        self._inner.stop()

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        inner_states = states
        if self._forecast_aware and states is not None and TrialState.COMPLETE in states:
            inner_states = (
                tuple({*states, TrialState.PRUNED})
                if isinstance(states, (set, frozenset, tuple, list))
                else None
            )
        trials = self._inner._get_trials(
            deepcopy=deepcopy, states=inner_states, use_cache=use_cache
        )
        out = []
        for t in trials:
            if self._keep is not None and not self._keep(t):
                continue
            if self._forecast_aware and t.state == TrialState.PRUNED:
                forecast = _pruned_forecast(t)
                if forecast is not None:
                    t = copy.copy(t)
                    t.state = TrialState.COMPLETE
                    t._values = [forecast]
            if states is not None and t.state not in states:
                continue
            out.append(t)
        return out


def _pruned_forecast(trial: FrozenTrial) -> float | None:
    from optuna_qsvr import _records

    for record in _records.decisions(trial.system_attrs).values():
        if record["decision"] == "pruned" and record["forecast"] is not None:
            return float(record["forecast"])
    return None
