"""Sampler mode: a real sampler proposes parameters, the replay runs the nearest configuration.

A curve table holds a fixed set of configurations, while a sampler such as TPE proposes any
point of the space. :class:`TableSampler` lets any Optuna sampler drive a replay: for each new
trial it asks the wrapped sampler for a full proposal, picks the nearest configuration of the
table that no trial has used yet, and makes the trial suggest exactly that configuration's
parameters. The wrapped sampler therefore learns from the configurations that were really run
and the values they really gave, under whatever the pruner decided, so the interplay of sampler
and pruner, and the value of :class:`~optuna_qsvr.SwiftSampler`, are measured too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.samplers import BaseSampler

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import Study
    from optuna.trial import FrozenTrial, Trial, TrialState

    from optuna_qsvr.benchmark._table import CurveTable

SAMPLERS = ("random", "tpe", "swift")


class TableSampler(BaseSampler):
    """Let any sampler choose among a table's configurations, nearest unused first.

    For each new trial the wrapped sampler proposes a value for every hyperparameter of the
    table: first its relative proposal (``sample_relative`` over its own inferred space),
    then ``sample_independent`` for each parameter still missing, both on the study as Optuna
    shows it to the sampler (for Hyperband, the trial's bracket). The trial then runs the
    unused configuration nearest to the proposal under this distance:

    * a numeric parameter is mapped to ``[0, 1]`` across the table's range of it (on a log
      scale when its distribution is logarithmic) and contributes its squared difference;
    * a categorical parameter contributes 0 when equal and 1 when not;
    * a parameter that the configuration lacks (an empty cell) contributes 1;

    the distance is the square root of the sum. Ties go to the configuration listed first in
    the table. A configuration is used once per study, as in the seeded permutation of the
    ``random`` mode.

    Args:
        base_sampler:
            The sampler that proposes parameters (e.g. ``optuna.samplers.TPESampler``).
        table:
            The table whose configurations the replay runs.

    Example:

        .. code-block:: python

            import optuna
            from optuna_qsvr.benchmark import CurveTable, TableSampler, bundled_table, replay_async

            table = CurveTable.load(bundled_table("cnn_digits"))
            study = optuna.create_study(
                direction="maximize",
                sampler=TableSampler(optuna.samplers.TPESampler(seed=0), table),
                pruner=optuna.pruners.MedianPruner(),
            )
            result = replay_async(study, table, None, n_trials=30)
    """

    def __init__(self, base_sampler: BaseSampler, table: CurveTable) -> None:
        self._base = base_sampler
        self.table = table
        self._space = table.distributions()
        self._numeric = [n for n, d in self._space.items() if not _categorical(d)]
        self._categories = [n for n, d in self._space.items() if _categorical(d)]
        self._x = np.array(
            [self._point(table.params(c))[0] for c in table.configs], dtype=float
        ).reshape(len(table.configs), len(self._numeric))
        self._codes = np.array(
            [self._point(table.params(c))[1] for c in table.configs], dtype=int
        ).reshape(len(table.configs), len(self._categories))
        self._unused = np.ones(len(table.configs), dtype=bool)
        self._chosen: dict[int, str] = {}

    @property
    def base_sampler(self) -> BaseSampler:
        return self._base

    def choose(self, trial: Trial) -> str:
        """The configuration ``trial`` replays; the trial's first call samples it."""
        # The first read of relative_params runs sample_relative below, once per trial.
        trial.relative_params  # noqa: B018
        return self._chosen[trial.number]

    def nearest(self, proposal: dict[str, Any]) -> str:
        """The unused configuration nearest to ``proposal``; marks it used."""
        if not self._unused.any():
            raise RuntimeError(f"every configuration of {self.table.source} is already used")
        values, codes = self._point(proposal)
        x = np.asarray(values, dtype=float)
        # NaN marks a parameter a configuration (or the proposal) lacks: 1 unless both lack it.
        missing = np.isnan(self._x) | np.isnan(x)
        both = np.isnan(self._x) & np.isnan(x)
        numeric = np.where(missing, np.where(both, 0.0, 1.0), (self._x - x) ** 2)
        squared = numeric.sum(axis=1) + (self._codes != np.asarray(codes, dtype=int)).sum(axis=1)
        distances = np.where(self._unused, np.sqrt(squared), np.inf)
        index = int(np.argmin(distances))
        self._unused[index] = False
        return self.table.configs[index]

    def _point(self, params: Mapping[str, Any]) -> tuple[list[float], list[int]]:
        x = [
            _unit(self._space[n], params[n]) if params.get(n) is not None else math.nan
            for n in self._numeric
        ]
        codes = []
        for name in self._categories:
            choices = self._space[name].choices  # type: ignore[attr-defined]
            value = params.get(name)
            codes.append(choices.index(value) if value in choices else -1)
        return x, codes

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        # The whole table space is "relative": every parameter comes from the chosen config.
        return dict(self._space)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        own = self._base.infer_relative_search_space(study, trial)
        own = {n: d for n, d in own.items() if self._space.get(n) == d}
        proposal = dict(self._base.sample_relative(study, trial, own)) if own else {}
        for name, dist in self._space.items():
            if name not in proposal:
                proposal[name] = self._base.sample_independent(study, trial, name, dist)
        config = self.nearest(proposal)
        self._chosen[trial.number] = config
        return self.table.params(config)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._base.reseed_rng()


def make_sampler(name: str, seed: int, table: CurveTable) -> BaseSampler:
    """The study sampler of a sampler mode.

    ``random``: Optuna's ``RandomSampler``, never consulted (the replay follows the seeded
    permutation of :func:`~optuna_qsvr.benchmark.config_sequence`, which is what uniform
    sampling without replacement from the table is). ``tpe``: :class:`TableSampler` over
    ``TPESampler(seed=seed)``. ``swift``: :class:`TableSampler` over
    ``SwiftSampler(TPESampler(seed=seed))`` with the extension's defaults.

    Args:
        name:
            One of :data:`SAMPLERS`.
        seed:
            Seed of the sampler.
        table:
            The replayed table.
    """
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {name!r}")
    base: BaseSampler = optuna.samplers.TPESampler(seed=seed)
    if name == "swift":
        from optuna_qsvr import SwiftSampler

        base = SwiftSampler(base)
    return TableSampler(base, table)


def _categorical(dist: BaseDistribution) -> bool:
    return isinstance(dist, CategoricalDistribution)


def _unit(dist: Any, value: Any) -> float:
    # A numeric value's place in [0, 1] across the distribution, on its log scale if it has one.
    low, high, value = float(dist.low), float(dist.high), float(value)
    if dist.log:
        low, high, value = math.log(low), math.log(high), math.log(value)
    return 0.0 if high == low else (value - low) / (high - low)
