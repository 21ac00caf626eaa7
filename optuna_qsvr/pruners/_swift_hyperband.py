"""Swift-Hyperband: Hyperband brackets whose early stops use learning-curve forecasts."""

from __future__ import annotations

import copy
import logging
import threading
import warnings
import weakref
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
from optuna_qsvr.pruners._trial_index import TrialIndex

if TYPE_CHECKING:
    import optuna

_logger = logging.getLogger("optuna_qsvr.pruners")


class SwiftHyperbandPruner(BasePruner):
    """Hyperband whose early stops are decided on forecasts of each trial's learning curve.

    Every trial belongs to a Hyperband bracket (Optuna's ``HyperbandPruner`` assignment) and
    each bracket to rungs of growing epoch budgets ``r_i``; at ``r_i`` successive halving
    (ASHA) promotes the top ``1 / reduction_factor``. Forecasts act in one of two modes:

    * ``mode="forecast"`` (decides early and often): at geometric decision points inside each
      rung (``ceil(min_resource * checkpoint_ratio**k)``), a predictor with a calibrated error
      (out-of-fold residuals, cross-conformal) gives the probability that the trial beats the
      ``top_k``-th best final value, or the rung's promotion bar; below ``alpha`` it stops.
      At ``r_i``, a trial ASHA would stop is rescued while its calibrated chance to beat the
      final and the next rung's bars is at least ``rescue_alpha``. ``bracket_weights``
      (default: the two most aggressive brackets) sets how much of Hyperband's hedge remains.
    * ``mode="paper"`` (Swift-Hyperband as published): one decision step per rung,
      ``t* = r_prev + ceil((r_i - r_prev) * known_curve)``, a forecast of the value at ``r_i``
      judged by ``rules`` against the rung's full trainings, which a quota supplies.

    One predictor per key ``(target, decision step)`` is fitted once (refitted as curves
    accumulate) and shared by every bracket and worker through the storage. All state lives
    in the storage: another process, or a fresh pruner, makes the same decisions. Until a
    predictor can be fitted, and whenever it fails, successive halving decides alone. Report
    the epoch count as ``step`` (1 after the first epoch).

    Args:
        min_resource: epochs of the smallest rung.
        max_resource: epochs of a full training; an integer, never ``"auto"`` (workers that
            start before a trial finishes would disagree on the brackets).
        reduction_factor: Hyperband's ``eta``: each rung keeps ``1 / eta`` of its trials.
        mode: ``"forecast"`` or ``"paper"`` (above). An option of the other mode is an error.
        predictor: a registered name (``"svr"``, ``"qsvr"``), an unfitted
            :class:`~optuna_qsvr.BasePredictor` (copied per key), or a factory returning one.
        features: feature blocks of named predictors: ``"curve"``, ``"diff1"``, ``"diff2"``,
            ``"params"``.
        min_train_curves: curves a predictor needs before it is fitted (forecast 10, paper 15).
        max_train_curves: a predictor is fitted on at most this many curves, the most recent.
        residual_target: named predictors learn the change from a curve's last value
            (forecast: on; paper: off).
        rungs: ``"optuna"`` (Optuna's rung layout plus a last rung at ``max_resource``) or
            ``"hyperband"`` (anchored at ``max_resource`` as Li et al.).
        bracket_weights: each bracket's share relative to Hyperband's, most aggressive first
            (the last entry repeats); ``(1, 0)`` is successive halving alone. Forecast mode:
            ``(1, 1, 0)``; paper mode: Hyperband's.
        fit_lease_seconds: how long a worker may hold the right to fit before another takes
            over (a worker that died mid-fit).
        alpha: forecast mode: the smallest calibrated chance worth training for (0.1).
        top_k: forecast mode: the chance is to beat the ``top_k``-th best final value (1).
        checkpoint_ratio: forecast mode: spacing of the decision points (1.5).
        rescue: forecast mode: how a trial that successive halving stops at ``r_i`` may be
            rescued. ``"chance"`` (or ``True``): when its calibrated chance to beat both the
            ``top_k``-th best final value and the next rung's promotion bar is at least
            ``rescue_alpha`` (while those models do not exist yet, as ``"rank"``);
            ``"rank"``: when its forecast at the next rung ranks within the top ``1/eta`` of
            its rung-mates'; ``"none"`` (or ``False``).
        rescue_alpha: forecast mode: the chance a stopped trial needs to be rescued (0.3).
        refit_growth: forecast mode: refit a key's predictor when its curves grew by this
            factor (1.5), so fits, and annealer calls, grow with the log of the study.
        known_curve: paper mode: fraction of a rung's span observed before its forecast (0.5).
        full_fraction: paper mode: about ``full_fraction / eta`` of a rung's trials train on
            without a forecast (0.5).
        threshold_quantile: paper mode: quantile of the rung's full trainings a forecast
            must beat (0.25).
        confidence: paper mode: adds :class:`ConfidenceRule` (Baker's ``Delta``).
        forecast_final: paper mode: forecast the value at ``max_resource``; the threshold
            becomes the best final value so far.
        refit_every: paper mode: refit after this many new curves; ``None`` fits once.
        rank_quantile: paper mode: adds :class:`RankRule` in place of :class:`RungTopRule`.
        rules: paper mode: the decision rules in precedence order; by default
            :func:`~optuna_qsvr.pruners.default_rules` of the options above.

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
        mode: str = "forecast",
        predictor: PredictorSpec = "svr",
        features: Sequence[str] = ("curve",),
        min_train_curves: int | None = None,
        max_train_curves: int = 200,
        residual_target: bool | None = None,
        rungs: str = "optuna",
        bracket_weights: Sequence[float] | None = None,
        fit_lease_seconds: float = 600.0,
        alpha: float | None = None,
        top_k: int | None = None,
        checkpoint_ratio: float | None = None,
        rescue: bool | str | None = None,
        refit_growth: float | None = None,
        rescue_alpha: float | None = None,
        known_curve: float | None = None,
        full_fraction: float | None = None,
        threshold_quantile: float | None = None,
        confidence: float | None = None,
        forecast_final: bool | None = None,
        refit_every: int | None = None,
        rank_quantile: float | None = None,
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
            mode=mode,
            alpha=alpha,  # type: ignore[arg-type]
            top_k=top_k,  # type: ignore[arg-type]
            checkpoint_ratio=checkpoint_ratio,  # type: ignore[arg-type]
            rescue=rescue,  # type: ignore[arg-type]
            refit_growth=refit_growth,  # type: ignore[arg-type]
            rescue_alpha=rescue_alpha,
            bracket_weights=None if bracket_weights is None else tuple(bracket_weights),
        )
        self._schedule = Schedule(
            o.min_resource,
            o.max_resource,
            o.reduction_factor,
            o.known_curve,
            o.rungs,
            o.bracket_weights,
        )
        self._store = ModelStore(
            self._new_predictor,
            min_train_curves=o.min_train_curves,
            max_train_curves=o.max_train_curves,
            refit_every=o.refit_every,
            refit_growth=o.refit_growth if o.mode == "forecast" else None,
            lease_seconds=float(o.fit_lease_seconds),
            settings=o.model_settings(),
            warn=self._warn_once,
        )
        # Process-local caches: a trial's bracket (a pure function of study name and number)
        # and the names of its records, read once per trial and kept as they are written.
        # Keyed by the storage object, weakly: an id() could be reused by another storage
        # once the first is freed, and a dead storage's entries go with it.
        self._brackets: dict[tuple[str, int], int] = {}
        self._done: weakref.WeakKeyDictionary[Any, dict[int, set[str]]] = (
            weakref.WeakKeyDictionary()
        )
        self._warned: set[tuple[int, str]] = set()
        # Per study: its trials with what decisions derive from the finished ones.
        self._indexes: weakref.WeakKeyDictionary[Any, dict[int, TrialIndex]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

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
        if step is None:
            return False
        values = trial.intermediate_values
        # Trial.should_prune hands the values over in the order they were reported.
        latest = next(reversed(values))
        tag = problem = ""
        if 0 in values:
            tag = "0-based"
            problem = (
                "reported step 0: steps count the epochs done, 1 after the first; report "
                "epoch + 1 when epochs count from 0, else no trial reaches max_resource="
                f"{self._schedule.max_resource} and the last rung is never forecast"
            )
        elif latest < step:
            tag = "out of order"
            problem = (
                f"reported step {latest} after step {step}: report steps in increasing "
                "order; each rung is decided once, at the first step reported past its "
                "decision step"
            )
        if problem and (study._study_id, tag) not in self._warned:
            self._warned.add((study._study_id, tag))
            warnings.warn(
                f"SwiftHyperbandPruner: trial {trial.number} {problem}",
                UserWarning,
                stacklevel=3,  # the objective's call of should_prune
            )
        if step < 1:
            return False
        bracket = self.bracket_of(study.study_name, trial.number)
        done: set[str] | None = None
        for rung in self._schedule.rungs(bracket):
            if rung.previous >= step:
                break
            if done is None:
                done = self._recorded(study, trial, bracket)
            if step >= rung.budget:
                # Successive halving at r_i, once per rung (none at max_resource).
                if not rung.is_last and _records.promotion_attr(rung.index) not in done:
                    if self._promotion_decision(study, trial, rung):
                        return True
                continue
            if self._options.mode == "forecast":
                o = self._options
                point = _decisions.checkpoint_due(trial, rung, o.checkpoint_ratio, o.min_resource)
                return point is not None and self._chance_decision(study, trial, rung, point)
            due = rung.decision_step is not None and rung.decision_step <= step
            if due and _records.decision_attr(rung.index) not in done:
                return self._forecast_decision(study, trial, rung)
            return False
        return False

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_brackets={}, _warned=set())
        del state["_done"], state["_indexes"]  # weak dictionaries do not pickle
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._done, self._indexes = weakref.WeakKeyDictionary(), weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------
    def _recorded(
        self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, bracket: int
    ) -> set[str]:
        """Names of the records this trial already has. Optuna hands pruners lazy system
        attributes (a storage read per access), so they are read once per trial."""
        by_trial = self._done_of(study)
        done = by_trial.get(trial._trial_id)
        if done is None:
            records = _records.read_trial(trial.system_attrs)
            for name, problem in records.malformed.items():
                self._warn_once(study, name, f"malformed record skipped: {problem}")
            done = by_trial[trial._trial_id] = records.names
            if _records.BRACKET_ATTR not in trial.user_attrs:
                study._storage.set_trial_user_attr(trial._trial_id, _records.BRACKET_ATTR, bracket)
        return done

    def _done_of(self, study: optuna.study.Study) -> dict[int, set[str]]:
        """The record names of the trials of ``study``'s storage, by trial id."""
        with self._lock:
            return self._done.setdefault(study._storage, {})

    def _promotion_decision(
        self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, rung: Rung
    ) -> bool:
        view = self._view(study, trial, rung)
        eta, rescue = self._schedule.reduction_factor, None
        if self._options.mode == "forecast" and self._options.rescue != "none":
            following = self._schedule.rungs(rung.bracket)[rung.index + 1].budget
            chance = self._options.rescue == "chance"

            def rescue() -> tuple[bool, str] | None:
                get = self._predictor(study, view.sign)
                try:
                    # The calibrated chance decides once its models exist; before, the rank
                    # of the next rung's forecast among the rung-mates'.
                    verdict = None
                    if chance:
                        verdict = _decisions.chance_rescue(view, self._options, following, get)
                    if verdict is None:
                        verdict = _decisions.rescue_verdict(view, following, eta, get)
                    return verdict
                except Exception as err:  # Without a forecast, successive halving decides.
                    self._warn_once(study, "rescue", f"rescue failed: {type(err).__name__}: {err}")
                    return None

        record = _decisions.promotion_record(
            view, eta, rescue, stopped_rank_last=self._options.mode == "forecast"
        )
        name = _records.write_promotion(study._storage, trial._trial_id, record)
        self._done_of(study)[trial._trial_id].add(name)
        return record["decision"] == "stopped"

    def _forecast_decision(
        self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, rung: Rung
    ) -> bool:
        view = self._view(study, trial, rung)
        target = self._schedule.max_resource if self._options.forecast_final else rung.budget
        record = _decisions.forecast_record(
            view,
            self._options,
            target,
            self._predictor(study, view.sign),
            warn=lambda key, message: self._warn_once(study, key, message),
        )
        return self._record(study, trial, record)

    def _chance_decision(
        self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, rung: Rung, point: int
    ) -> bool:
        view = self._view(study, trial, rung)
        record = _decisions.chance_record(
            view,
            self._options,
            point,
            self._predictor(study, view.sign),
            warn=lambda key, message: self._warn_once(study, key, message),
        )
        if record is None:
            return False
        if record["decision"] == "kept":
            # One kept record per rung, its first forecast: the dashboard checks it against
            # the value the trial then reaches; a prune later in the rung replaces it.
            if _records.decision_attr(rung.index) not in self._done_of(study)[trial._trial_id]:
                self._record(study, trial, record)
            return False
        return self._record(study, trial, record)

    def _predictor(self, study: optuna.study.Study, sign: float) -> _decisions.GetPredictor:
        def get(pool: list[optuna.trial.FrozenTrial], step: int, target: int) -> Any:
            key = _records.predictor_key(target, step)
            return self._store.get(study, key, pool, step, target, sign)

        return get

    def _view(
        self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, rung: Rung
    ) -> _decisions.RungView:
        trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
        sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
        with self._lock:
            indexes = self._indexes.setdefault(study._storage, {})
            index = indexes.get(study._study_id)
            if index is None:
                name = study.study_name
                index = indexes[study._study_id] = TrialIndex(lambda n: self.bracket_of(name, n))
        if index.update(trials):
            return _decisions.RungView(trial=trial, rung=rung, sign=sign, index=index)
        others = [t for t in trials if t.number != trial.number]
        return _decisions.RungView(
            trial=trial,
            rung=rung,
            sign=sign,
            others=others,
            peers=[
                t for t in others if self.bracket_of(study.study_name, t.number) == rung.bracket
            ],
        )

    def _record(
        self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, record: dict[str, Any]
    ) -> bool:
        name = _records.write_decision(study._storage, trial._trial_id, record)
        self._done_of(study)[trial._trial_id].add(name)
        return record["decision"] == "pruned"

    def _new_predictor(self) -> BasePredictor:
        spec = self._options.predictor
        if isinstance(spec, str):
            from optuna_qsvr.predictors import make_predictor

            # The forecast mode's decisions need an error model: out-of-fold residuals.
            cv = {"cv": 5} if self._options.mode == "forecast" else {}
            return make_predictor(
                spec, features=self._options.features, residual=self._options.residual_target, **cv
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
