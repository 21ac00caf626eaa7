"""Swift-Hyperband: Hyperband brackets whose early stops use learning-curve forecasts."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from optuna.pruners import BasePruner
from optuna.study import StudyDirection

from optuna_qsvr import _records
from optuna_qsvr.predictors._base import BasePredictor
from optuna_qsvr.pruners import _decisions, _rules
from optuna_qsvr.pruners._model_store import ModelStore
from optuna_qsvr.pruners._options import PredictorSpec, SwiftOptions
from optuna_qsvr.pruners._schedule import Rung, Schedule

if TYPE_CHECKING:
    import optuna

_logger = logging.getLogger("optuna_qsvr.pruners")


class SwiftHyperbandPruner(BasePruner):
    """Hyperband whose early stops are decided on forecasts of each trial's learning curve.

    Every trial belongs to a Hyperband bracket (Optuna's ``HyperbandPruner`` assignment), and
    each bracket to rungs of growing epoch budgets ``r_i``. Within each rung, at the decision
    step ``t* = r_prev + ceil((r_i - r_prev) * known_curve)``, a predictor forecasts the
    trial's value at ``r_i`` (or at ``max_resource``) from its curve so far and the decision
    ``rules`` keep or prune it; at ``r_i`` successive halving (ASHA) promotes the top
    ``1 / reduction_factor``. A quota of trials per rung trains on without a forecast and
    supplies the training curves and the threshold. One predictor per key ``(target, t*)`` is
    fitted once and shared by every bracket and worker through the storage. All state lives
    in the storage: another process, or a fresh pruner, makes the same decisions. Report the
    epoch count as ``step`` (1 after the first epoch).

    Args:
        min_resource: epochs of the smallest rung.
        max_resource: epochs of a full training; an integer, never ``"auto"`` (workers that
            start before a trial finishes would disagree on the brackets).
        reduction_factor: Hyperband's ``eta``: each rung keeps ``1 / eta`` of its trials.
        known_curve: fraction of a rung's span observed before its forecast.
        min_train_curves: curves a predictor needs before it is fitted.
        max_train_curves: a predictor is fitted on at most this many curves, the most recent.
        full_fraction: about ``full_fraction / eta`` of a rung's trials train on without a
            forecast.
        threshold_quantile: quantile of the rung's fully trained values a forecast must beat.
        predictor: a registered name (``"svr"``, ``"qsvr"``), an unfitted
            :class:`~optuna_qsvr.BasePredictor` (copied per key), or a factory returning one.
        features: feature blocks of named predictors: ``"curve"``, ``"diff1"``, ``"diff2"``,
            ``"params"``.
        confidence: adds :class:`ConfidenceRule` (Baker's ``Delta``) to the default rules.
        forecast_final: forecast the value at ``max_resource``; the threshold becomes the best
            final value so far.
        refit_every: refit a key's predictor once this many new curves arrived; ``None`` fits
            once and freezes it, as the reference does.
        rank_quantile: adds :class:`RankRule` in place of :class:`RungTopRule`.
        residual_target: named predictors learn the change from a curve's last value.
        rungs: ``"optuna"`` (Optuna's rung layout plus a last rung at ``max_resource``) or
            ``"hyperband"`` (anchored at ``max_resource`` as Li et al.).
        fit_lease_seconds: how long a worker may hold the right to fit before another takes
            over (a worker that died mid-fit).
        rules: the decision rules, in precedence order; by default
            :func:`~optuna_qsvr.pruners.default_rules` of the options above. Passing
            ``rules`` together with ``confidence`` or ``rank_quantile`` is an error.

    Example:

        .. code-block:: python

            import optuna
            from optuna_qsvr import SwiftHyperbandPruner


            def objective(trial):
                lr = trial.suggest_float("lr", 1e-3, 1.0, log=True)
                loss = 1.0
                for epoch in range(1, 28):
                    loss *= 1 - 0.1 * lr
                    trial.report(loss, epoch)
                    if trial.should_prune():
                        raise optuna.TrialPruned()
                return loss


            study = optuna.create_study(
                pruner=SwiftHyperbandPruner(min_resource=1, max_resource=27)
            )
            study.optimize(objective, n_trials=40)
    """

    def __init__(
        self,
        min_resource: int = 1,
        max_resource: int | None = None,
        reduction_factor: int = 3,
        *,
        known_curve: float = 0.5,
        min_train_curves: int = 15,
        max_train_curves: int = 200,
        full_fraction: float = 0.5,
        threshold_quantile: float = 0.25,
        predictor: PredictorSpec = "svr",
        features: Sequence[str] = ("curve",),
        confidence: float | None = None,
        forecast_final: bool = False,
        refit_every: int | None = None,
        rank_quantile: float | None = None,
        residual_target: bool = False,
        rungs: str = "optuna",
        fit_lease_seconds: float = 600.0,
        rules: Sequence[_rules.DecisionRule] | None = None,
    ) -> None:
        self._options = o = SwiftOptions(
            min_resource=min_resource,
            max_resource=max_resource,  # type: ignore[arg-type]
            reduction_factor=reduction_factor,
            known_curve=known_curve,
            min_train_curves=min_train_curves,
            max_train_curves=max_train_curves,
            full_fraction=full_fraction,
            threshold_quantile=threshold_quantile,
            predictor=predictor,
            features=tuple(features),
            confidence=confidence,
            forecast_final=forecast_final,
            refit_every=refit_every,
            rank_quantile=rank_quantile,
            residual_target=residual_target,
            rungs=rungs,
            fit_lease_seconds=fit_lease_seconds,
            rules=None if rules is None else tuple(rules),
        )
        self._schedule = Schedule(
            o.min_resource, o.max_resource, o.reduction_factor, o.known_curve, o.rungs
        )
        self._store = ModelStore(
            self._new_predictor,
            min_train_curves=o.min_train_curves,
            max_train_curves=o.max_train_curves,
            refit_every=o.refit_every,
            lease_seconds=float(o.fit_lease_seconds),
            settings=o.model_settings(),
            warn=self._warn_once,
        )
        # Process-local caches: a trial's bracket (a pure function of study name and number)
        # and the names of its records, read once per trial and kept as they are written.
        self._brackets: dict[tuple[str, int], int] = {}
        self._done: dict[tuple[int, int], set[str]] = {}
        self._warned: set[tuple[int, str]] = set()

    @property
    def schedule(self) -> Schedule:
        """The brackets and rungs, with their decision steps."""
        return self._schedule

    @property
    def rules(self) -> tuple[_rules.DecisionRule, ...]:
        """The decision rules, in precedence order."""
        return self._options.rules

    def bracket_of(self, study_name: str, trial_number: int) -> int:
        """The bracket of a trial: known before it runs, the same in every process."""
        key = (study_name, trial_number)
        if key not in self._brackets:
            self._brackets[key] = self._schedule.bracket_of(study_name, trial_number)
        return self._brackets[key]

    def prune(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if len(study.directions) > 1:
            raise ValueError(
                "SwiftHyperbandPruner supports single-objective studies only; this study has "
                f"{len(study.directions)} objectives"
            )
        step = trial.last_step
        if step is None or step < 1:
            return False
        bracket = self.bracket_of(study.study_name, trial.number)
        done: set[str] | None = None
        for rung in self._schedule.rungs(bracket):
            if rung.previous >= step:
                break
            due_forecast = rung.decision_step is not None and rung.decision_step <= step
            due_forecast = due_forecast and step < rung.budget
            due_promotion = not rung.is_last and step >= rung.budget
            if not (due_forecast or due_promotion):
                continue
            if done is None:
                done = self._recorded(study, trial, bracket)
            if due_forecast and _records.decision_attr(rung.index) not in done:
                return self._forecast_decision(study, trial, rung)
            if due_promotion and _records.promotion_attr(rung.index) not in done:
                if self._promotion_decision(study, trial, rung):
                    return True
        return False

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_brackets={}, _done={}, _warned=set())
        return state

    # ------------------------------------------------------------------------------------
    def _recorded(
        self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, bracket: int
    ) -> set[str]:
        """Names of the records this trial already has. Optuna hands pruners lazy system
        attributes (a storage read per access), so they are read once per trial."""
        key = (id(study._storage), trial._trial_id)
        done = self._done.get(key)
        if done is None:
            records = _records.read_trial(trial.system_attrs)
            for name, problem in records.malformed.items():
                self._warn_once(study, name, f"malformed record skipped: {problem}")
            done = self._done[key] = records.names
            if _records.BRACKET_ATTR not in trial.user_attrs:
                study._storage.set_trial_user_attr(trial._trial_id, _records.BRACKET_ATTR, bracket)
        return done

    def _promotion_decision(
        self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, rung: Rung
    ) -> bool:
        view = self._view(study, trial, rung)
        record = _decisions.promotion_record(view, self._schedule.reduction_factor)
        name = _records.write_promotion(study._storage, trial._trial_id, record)
        self._done[(id(study._storage), trial._trial_id)].add(name)
        return record["decision"] == "stopped"

    def _forecast_decision(
        self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, rung: Rung
    ) -> bool:
        view = self._view(study, trial, rung)
        target = self._schedule.max_resource if self._options.forecast_final else rung.budget

        def predictor(key: str, pool: list[optuna.trial.FrozenTrial]) -> Any:
            return self._store.get(study, key, pool, rung.decision_step, target, view.sign)

        record = _decisions.forecast_record(
            view,
            self._options,
            target,
            predictor,
            warn=lambda key, message: self._warn_once(study, key, message),
        )
        return self._record(study, trial, record)

    def _view(
        self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, rung: Rung
    ) -> _decisions.RungView:
        others = [
            t
            for t in study._storage.get_all_trials(study._study_id, deepcopy=False)
            if t.number != trial.number
        ]
        return _decisions.RungView(
            trial=trial,
            rung=rung,
            sign=-1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0,
            others=others,
            peers=[
                t for t in others if self.bracket_of(study.study_name, t.number) == rung.bracket
            ],
        )

    def _record(
        self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, record: dict[str, Any]
    ) -> bool:
        name = _records.write_decision(study._storage, trial._trial_id, record)
        self._done[(id(study._storage), trial._trial_id)].add(name)
        return record["decision"] == "pruned"

    def _new_predictor(self) -> BasePredictor:
        spec = self._options.predictor
        if isinstance(spec, str):
            from optuna_qsvr.predictors import make_predictor

            return make_predictor(
                spec, features=self._options.features, residual=self._options.residual_target
            )
        if isinstance(spec, BasePredictor):
            return copy.deepcopy(spec)
        made = spec()
        if not isinstance(made, BasePredictor):
            raise TypeError(
                f"predictor factory returned {type(made).__name__}, not a BasePredictor"
            )
        return made

    def _warn_once(self, study: optuna.study.Study, key: str, message: str) -> None:
        tag = (study._study_id, message.split(":")[0] + key)
        if tag not in self._warned:
            self._warned.add(tag)
            _logger.warning("Swift-Hyperband, predictor %s: %s", key, message)
