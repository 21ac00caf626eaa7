"""Swift-Hyperband: Hyperband brackets whose early stops use learning-curve forecasts."""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import logging
import threading
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from optuna.pruners import BasePruner
from optuna.study import StudyDirection

from optuna_qsvr import _records
from optuna_qsvr._secrets import scrub
from optuna_qsvr.predictors._base import BasePredictor
from optuna_qsvr.pruners import _crowd, _decisions, _rules
from optuna_qsvr.pruners._model_store import ModelStore
from optuna_qsvr.pruners._options import PredictorSpec, SwiftOptions
from optuna_qsvr.pruners._persistence import (
    RECENT,
    Persistence,
    paired_values,
    rank_persistence,
)
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
      final and the next rung's bars is at least ``rescue_alpha`` (at the last cut, before
      those models exist, while its value is at least the median there: ``rescue_fallback``);
      successive halving ranks it among every trial's value at ``r_i`` (``promote_among``).
      ``bracket_weights`` (default: the most aggressive bracket and a quarter of the next) sets
      how much of Hyperband's hedge remains.
      All of that rests on early values ranking later ones, which the pruner measures on the
      study (rank persistence, ``min_rank_persistence``): a trial that starts before it is
      measured, or while it is low, runs as Hyperband runs it, in any of its brackets and
      stopped by successive halving alone.
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
        min_train_curves: curves a predictor needs before it is fitted (15 in both modes).
        max_train_curves: a predictor is fitted on at most this many curves, the most recent.
        residual_target: named predictors learn the change from a curve's last value
            (forecast: on; paper: off).
        rungs: ``"optuna"`` (Optuna's rung layout plus a last rung at ``max_resource``) or
            ``"hyperband"`` (anchored at ``max_resource`` as Li et al.).
        bracket_weights: each bracket's share relative to Hyperband's, most aggressive first
            (the last entry repeats); ``(1, 0)`` is successive halving alone. Forecast mode:
            ``(1, 0.25, 0)``; paper mode: Hyperband's.
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
        rescue_alpha: forecast mode: the chance a stopped trial needs to be rescued (0.5:
            more likely than not).
        refit_growth: forecast mode: refit a key's predictor when its curves grew by this
            factor (1.5), so fits, and annealer calls, grow with the log of the study.
        min_rank_persistence: forecast mode: the study's rank persistence (the Spearman
            correlation between the trials' values at consecutive rung ends, pooled over the
            rungs, once a rung pair has ``min_persistence_pairs`` trials) that a new trial
            needs to run with forecasts, in ``bracket_weights``' brackets (0.5). Below it, or
            before it can be measured, the trial runs as in Optuna's ``HyperbandPruner``. The
            choice is recorded on the trial (``swift:regime``). ``False``: every trial runs
            with forecasts.
        min_persistence_pairs: forecast mode: trials that must have reported both ends of a
            rung pair before it counts in the rank persistence (6). The trials before it run
            as Hyperband, and cost the most per trial; the measure is taken again for every
            new trial, so a noisy early value is corrected as the pairs accumulate.
        second_look: forecast mode: a trial whose value at a decision point ties a crowd
            of at least ``1/eta`` of the study's values there (within the epoch-to-epoch
            noise the study measures) is not stopped at the point where it enters the crowd,
            only if it is still in one at its next decision point (False). Early plateaus,
            such as accuracy at chance, rank and forecast nothing within them; the look
            costs epochs (README, "The second look").
        promote_among: forecast mode: whose values at ``r_i`` successive halving ranks a
            trial among, the top ``1/eta`` going on. ``"study"``: every trial's, any bracket
            (trials stopped early in a rung ending there rank below them), the bar the
            forecasts of ``r_i`` aim at; ``"bracket"``: its bracket's rung-mates', as
            Hyperband does. Trials that run as Hyperband always use ``"bracket"``.
        rescue_fallback: forecast mode: who decides the rescue at the last rung end before
            ``max_resource`` while no model can (too few trials have finished): ``"none"``
            (successive halving's stop stands) or ``"median"`` (MedianPruner's rule: a trial
            whose value there is at least as good as the median of the other trials' values
            there trains on). ``"median"`` (README, "MedianPruner's rule at the last
            cut").
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
        min_rank_persistence: float | bool | None = None,
        min_persistence_pairs: int | None = None,
        second_look: bool | None = None,
        promote_among: str | None = None,
        rescue_fallback: str | None = None,
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
            features=features,  # type: ignore[arg-type]
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
            min_rank_persistence=min_rank_persistence,  # type: ignore[arg-type]
            min_persistence_pairs=min_persistence_pairs,  # type: ignore[arg-type]
            second_look=second_look,  # type: ignore[arg-type]
            promote_among=promote_among,  # type: ignore[arg-type]
            rescue_fallback=rescue_fallback,  # type: ignore[arg-type]
            bracket_weights=bracket_weights,  # type: ignore[arg-type]
        )
        self._schedule = Schedule(
            o.min_resource,
            o.max_resource,
            o.reduction_factor,
            o.known_curve,
            o.rungs,
            o.bracket_weights,
        )
        # Trials that run as Hyperband does take Hyperband's brackets.
        self._hyperband = dataclasses.replace(self._schedule, weights=None)
        self._regimes = o.mode == "forecast" and o.min_rank_persistence is not None
        self._store = ModelStore(
            self.new_predictor,
            min_train_curves=o.min_train_curves,
            max_train_curves=o.max_train_curves,
            refit_every=o.refit_every,
            refit_growth=o.refit_growth if o.mode == "forecast" else None,
            lease_seconds=float(o.fit_lease_seconds),
            settings=o.model_settings(),
            warn=self._warn_once,
        )
        # Process-local caches: a trial's forecast-regime bracket (a pure function of study
        # name and number), the bracket and regime each decided trial runs in (chosen once,
        # recorded on the trial), and the names of its records, read once per trial and kept
        # as they are written.
        # Keyed by the storage object, weakly: an id() could be reused by another storage
        # once the first is freed, and a dead storage's entries go with it.
        self._brackets: dict[tuple[str, int], int] = {}
        self._done: weakref.WeakKeyDictionary[Any, dict[int, set[str]]] = (
            weakref.WeakKeyDictionary()
        )
        self._assigned: weakref.WeakKeyDictionary[Any, dict[int, tuple[int, str]]] = (
            weakref.WeakKeyDictionary()
        )
        # Warnings given, per study (its name: in-memory studies all have id 0) and kind.
        self._warned: set[tuple[str, int, str]] = set()
        # Per study: its trials with what decisions derive from the finished ones.
        self._indexes: weakref.WeakKeyDictionary[Any, dict[int, TrialIndex]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        # The study read of the current prune call, per thread.
        self._call = threading.local()

    @property
    def schedule(self) -> Schedule:
        """The brackets and rungs, with their decision steps."""
        return self._schedule

    @property
    def rules(self) -> tuple[_rules.DecisionRule, ...]:
        """The decision rules, in precedence order."""
        return self._options.rules

    def new_predictor(self) -> BasePredictor:
        """An unfitted predictor, made as the pruner makes one for each of its models: the
        ``predictor`` option (a named one with the pruner's ``features`` and
        ``residual_target``, and in the forecast mode 5-fold out-of-fold residuals, which its
        calibrated chances read), or a copy of a template, or the factory's product. For
        fitting the pruner's model on curves of your own."""
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

    def bracket_of(self, study_name: str, trial_number: int) -> int:
        """The bracket a trial gets when it runs with forecasts: known before it runs, the
        same in every process (Optuna's assignment under ``bracket_weights``). With
        ``min_rank_persistence`` a trial may run as Hyperband does instead: :meth:`bracket`
        gives the bracket it runs in."""
        key = (study_name, trial_number)
        if key not in self._brackets:
            self._brackets[key] = self._schedule.bracket_of(study_name, trial_number)
        return self._brackets[key]

    def bracket(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> int:
        """The bracket ``trial`` runs in: the one recorded on it, else chosen now from the
        study's rank persistence and recorded (``swift:bracket``, ``swift:regime``). Ask it
        for the trial being run (the pruner does at its first report, a sampler may before);
        the same in every process from then on."""
        return self._assign(study, trial)[0]

    def _assign(
        self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial
    ) -> tuple[int, str]:
        """The trial's bracket and regime (``"forecast"`` or ``"hyperband"``)."""
        with self._lock:
            cache = self._assigned.setdefault(study._storage, {})
            if trial._trial_id in cache:
                return cache[trial._trial_id]
        chosen = self._recorded_assignment(trial)
        if chosen is None:
            chosen = self._choose(study, trial)
        with self._lock:
            return cache.setdefault(trial._trial_id, chosen)

    def _recorded_assignment(self, trial: optuna.trial.FrozenTrial) -> tuple[int, str] | None:
        record = _records.regime_of_trial(trial.system_attrs)
        # The record's bracket first: the trial's own process sees its user attributes as they
        # were when it started (see _records.new_regime).
        if record is not None and "bracket" in record:
            bracket = record["bracket"]
        else:
            bracket = _records.bracket_of_trial(trial.user_attrs)
        if bracket is None or not 0 <= bracket <= self._schedule.s_max:
            return None
        if record is None:
            # Chosen without regimes: the paper mode (whose rules are its own), the option
            # off, or an earlier version of the package.
            return None if self._regimes else (bracket, "forecast")
        return bracket, record["regime"]

    def _choose(
        self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial
    ) -> tuple[int, str]:
        """Choose the trial's regime and bracket and record them on it."""
        storage, name = study._storage, study.study_name
        if not self._regimes:
            bracket = self.bracket_of(name, trial.number)
            storage.set_trial_user_attr(trial._trial_id, _records.BRACKET_ATTR, bracket)
            return bracket, "forecast"
        regime, measured = self._regime_now(study)
        bracket = self._bracket_in(regime, name, trial.number)
        threshold = float(self._options.min_rank_persistence)  # type: ignore[arg-type]
        record = _records.new_regime(regime, measured.rho, measured.pairs, threshold, bracket)
        storage.set_trial_system_attr(trial._trial_id, _records.REGIME_ATTR, record)
        storage.set_trial_user_attr(
            trial._trial_id, _records.REGIME_ATTR, _records.regime_text(record)
        )
        storage.set_trial_user_attr(trial._trial_id, _records.BRACKET_ATTR, bracket)
        return bracket, regime

    def _regime_now(self, study: optuna.study.Study) -> tuple[str, Persistence]:
        """The regime a trial starting now gets, and the rank persistence it rests on."""
        measured = self._persistence(study)
        threshold = self._options.min_rank_persistence
        # Forecasts and cuts on early values earn their place: until early ranks are shown
        # to last, a trial runs as Hyperband runs it.
        lasting = threshold is not None and measured.pairs and measured.rho >= threshold
        return ("forecast" if lasting else "hyperband"), measured

    def _bracket_in(self, regime: str, study_name: str, trial_number: int) -> int:
        if regime == "forecast":
            return self.bracket_of(study_name, trial_number)
        return self._hyperband.bracket_of(study_name, trial_number)

    def _persistence(self, study: optuna.study.Study) -> Persistence:
        trials = self._read(study)
        index = self._index(study)
        budgets = self._rung_budgets
        pairs = list(itertools.pairwise(budgets))
        if index.update(trials):
            columns = [index.paired_values(a, b, RECENT) for a, b in pairs]
        else:
            columns = [paired_values(trials, a, b) for a, b in pairs]
        return rank_persistence(columns, self._options.min_persistence_pairs, RECENT)

    @functools.cached_property
    def _rung_budgets(self) -> list[int]:
        s = self._schedule
        return sorted({r.budget for b in range(s.s_max + 1) for r in s.rungs(b)})

    def _known_bracket(self, study_name: str, trial: optuna.trial.FrozenTrial) -> int:
        """Another trial's bracket: the one recorded on it (a trial that never reached the
        pruner has none yet, and belongs to no rung), else its forecast-regime bracket."""
        bracket = _records.bracket_of_trial(trial.user_attrs)
        if bracket is not None and 0 <= bracket <= self._schedule.s_max:
            return bracket
        return self.bracket_of(study_name, trial.number)

    def prune(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> bool:
        self._call.active, self._call.trials = True, None
        try:
            return self._prune(study, trial)
        finally:
            self._call.active, self._call.trials = False, None

    def _prune(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> bool:
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
        if problem and (study.study_name, study._study_id, tag) not in self._warned:
            self._warned.add((study.study_name, study._study_id, tag))
            warnings.warn(
                f"SwiftHyperbandPruner: trial {trial.number} {problem}",
                UserWarning,
                stacklevel=4,  # the objective's call of should_prune (via prune)
            )
        if step < 1:
            return False
        bracket, regime = self._assign(study, trial)
        done: set[str] | None = None
        for rung in self._schedule.rungs(bracket):
            if rung.previous >= step:
                break
            if done is None:
                done = self._recorded(study, trial)
            if step >= rung.budget:
                # Successive halving at r_i, once per rung (none at max_resource).
                if not rung.is_last and _records.promotion_attr(rung.index) not in done:
                    if self._promotion_decision(study, trial, rung, regime):
                        return True
                continue
            if regime == "hyperband":
                return False  # Hyperband decides at r_i alone.
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
        # Weak dictionaries do not pickle.
        del state["_done"], state["_indexes"], state["_assigned"]
        del state["_lock"], state["_call"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._done, self._indexes = weakref.WeakKeyDictionary(), weakref.WeakKeyDictionary()
        self._assigned = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._call = threading.local()

    # ------------------------------------------------------------------------------------
    def _recorded(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> set[str]:
        """Names of the records this trial already has. Optuna hands pruners lazy system
        attributes (a storage read per access), so they are read once per trial."""
        by_trial = self._done_of(study)
        done = by_trial.get(trial._trial_id)
        if done is None:
            records = _records.read_trial(trial.system_attrs)
            for name, problem in records.malformed.items():
                self._warn_once(study, name, f"malformed record skipped: {problem}")
            done = by_trial[trial._trial_id] = records.names
        return done

    def _done_of(self, study: optuna.study.Study) -> dict[int, set[str]]:
        """The record names of the trials of ``study``'s storage, by trial id."""
        with self._lock:
            return self._done.setdefault(study._storage, {})

    def _promotion_decision(
        self,
        study: optuna.study.Study,
        trial: optuna.trial.FrozenTrial,
        rung: Rung,
        regime: str,
    ) -> bool:
        view = self._view(study, trial, rung)
        eta, rescue = self._schedule.reduction_factor, None
        forecast = self._options.mode == "forecast" and regime == "forecast"
        if forecast and self._options.rescue != "none":
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
                    # The final-value model comes last: until then the last cut may fall back
                    # on MedianPruner's rule rather than a 1/eta cut among a few trials.
                    last = following == self._options.max_resource
                    if verdict is None and last and self._options.rescue_fallback == "median":
                        verdict = _decisions.median_rescue(view, eta)
                    return verdict
                except Exception as err:  # Without a forecast, successive halving decides.
                    self._warn_once(
                        study, "rescue", scrub(f"rescue failed: {type(err).__name__}: {err}")
                    )
                    return None

        record = _decisions.promotion_record(
            view,
            eta,
            rescue,
            stopped_rank_last=self._options.mode == "forecast",
            spare=self._spare(study, view) if forecast else None,
            pooled=forecast and self._options.promote_among == "study",
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
            spare=self._spare(study, view),
        )
        if record is None:
            return False
        if record["decision"] != "pruned":
            # One kept (or no-forecast) record per rung, its first: the dashboard checks a
            # forecast against the value the trial then reaches, and a failing predictor
            # costs one write per rung, not per decision point; a prune later replaces it.
            if _records.decision_attr(rung.index) not in self._done_of(study)[trial._trial_id]:
                self._record(study, trial, record)
            return False
        return self._record(study, trial, record)

    def _spare(
        self, study: optuna.study.Study, view: _decisions.RungView
    ) -> Callable[[int], tuple[str, _crowd.Crowd] | None] | None:
        """The second look at a trial about to be stopped at a step (``None`` when off)."""
        o = self._options
        if not o.second_look:
            return None

        def spare(step: int) -> tuple[str, _crowd.Crowd] | None:
            try:
                return _crowd.second_look(
                    view,
                    step,
                    reduction_factor=o.reduction_factor,
                    ratio=o.checkpoint_ratio,
                    min_resource=o.min_resource,
                    min_pairs=o.min_train_curves,
                )
            except Exception as err:  # Without it, the stop stands: never a crashed trial.
                self._warn_once(study, "second-look", f"second look failed: {err!r}")
                return None

        return spare

    def _predictor(self, study: optuna.study.Study, sign: float) -> _decisions.GetPredictor:
        def get(pool: list[optuna.trial.FrozenTrial], step: int, target: int) -> Any:
            key = _records.predictor_key(target, step)
            return self._store.get(study, key, pool, step, target, sign)

        return get

    def _view(
        self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, rung: Rung
    ) -> _decisions.RungView:
        trials = self._read(study)
        sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
        index = self._index(study)
        if index.update(trials):
            return _decisions.RungView(trial=trial, rung=rung, sign=sign, index=index)
        others = [t for t in trials if t.number != trial.number]
        name = study.study_name
        return _decisions.RungView(
            trial=trial,
            rung=rung,
            sign=sign,
            others=others,
            peers=[t for t in others if self._known_bracket(name, t) == rung.bracket],
        )

    def _read(self, study: optuna.study.Study) -> list[optuna.trial.FrozenTrial]:
        """The study's trials, read once per ``prune`` call: a trial's first call chooses its
        regime and decides from the same read."""
        trials = getattr(self._call, "trials", None)
        if trials is None:
            trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
            if getattr(self._call, "active", False):
                self._call.trials = trials
        return trials

    def _index(self, study: optuna.study.Study) -> TrialIndex:
        with self._lock:
            indexes = self._indexes.setdefault(study._storage, {})
            index = indexes.get(study._study_id)
            if index is None:
                name = study.study_name
                index = indexes[study._study_id] = TrialIndex(
                    lambda t: self._known_bracket(name, t)
                )
            return index

    def _record(
        self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, record: dict[str, Any]
    ) -> bool:
        name = _records.write_decision(study._storage, trial._trial_id, record)
        self._done_of(study)[trial._trial_id].add(name)
        return record["decision"] == "pruned"

    def _warn_once(self, study: optuna.study.Study, key: str, message: str) -> None:
        tag = (study.study_name, study._study_id, message.split(":")[0] + key)
        if tag not in self._warned:
            self._warned.add(tag)
            _logger.warning("Swift-Hyperband, predictor %s: %s", key, message)
