"""Statistics over seeds: bootstrap intervals of each method's figures, and dominance.

Every figure is an estimate over the seeds of a run with a 95% percentile-bootstrap interval
(:func:`scipy.stats.bootstrap`, 9,999 resamples, seeded, so the same results give the same
intervals):

=================  ==========================================================================
figure             per seed, then over seeds
=================  ==========================================================================
``epochs``         epochs trained by all trials; mean
``ratio``          epochs divided by the reference method's epochs on the same seed (Optuna's
                   ``HyperbandPruner`` when it ran, else ``none``); mean
``makespan``       virtual time until the last trial ended, with the run's workers and epoch
                   times; mean
``regret_mean``    regret of the best fully trained trial: its distance to the table's best
                   final value; mean. A seed where no trial ran to the end counts at the
                   table's largest regret (best minus worst final value)
``regret_median``  the same regret; median
``p_best``         1 if the best fully trained trial is the table's best configuration; mean
``p_top1``         1 if it is within the table's top 1% (see ``top_threshold``); mean
``annealer_calls`` annealer calls of the run's predictor fits (Q-SVR); mean
``n_pruned``       trials pruned; mean
``fewer_trials``   regret of the curve-blind rival: random search that trains the first
                   configurations of the seed's permutation to the end, as many as the
                   method's epochs pay for (``run_one``'s ``fewer_trials_regret``); mean
``vs_fewer``       the method's regret minus the rival's, on the same seed; mean. Below 0:
                   pruning paid. Both over the seeds that have a rival (none when a
                   sampler ran, or in reports saved before the rival existed)
=================  ==========================================================================

:func:`dominated_by` then says which methods beat which on compute and result together.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CONFIDENCE = 0.95
N_RESAMPLES = 9999
# Seeds the resampling, so that the same results always give the same intervals.
BOOTSTRAP_SEED = 0
# Epoch ratios are taken against the first of these that ran.
REFERENCE_METHODS = ("hyperband", "none")
# A bound computed with hindsight, never a method one could choose: it dominates nobody.
NOT_A_CHOICE = ("oracle",)


@dataclass(frozen=True)
class Estimate:
    """A figure over seeds: its value and a 95% bootstrap interval.

    Args:
        value: The statistic (mean or median) over the seeds.
        low: Lower end of the interval (``value`` when there is one seed or no spread).
        high: Upper end of the interval.
        n: The number of seeds.
    """

    value: float
    low: float
    high: float
    n: int

    def below(self, other: Estimate) -> bool:
        """Whether this whole interval lies below ``other``'s (lower beyond the intervals)."""
        return self.high < other.low

    def to_dict(self) -> dict[str, float | int]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def bootstrap(
    values: Sequence[float],
    statistic: str = "mean",
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Estimate:
    """The ``statistic`` of ``values`` with its percentile-bootstrap interval.

    Args:
        values:
            One finite value per seed.
        statistic:
            ``"mean"`` or ``"median"``.
        confidence:
            Confidence level of the interval.
        n_resamples:
            Bootstrap resamples.
        seed:
            Seed of the resampling.
    """
    func: Callable[..., Any] = {"mean": np.mean, "median": np.median}[statistic]
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    value = float(func(data))
    # One seed, or every seed alike: nothing to resample, the interval is the value.
    if data.size == 1 or np.all(data == data[0]):
        return Estimate(value, value, value, int(data.size))
    from scipy.stats import bootstrap as scipy_bootstrap

    kwargs: dict[str, Any] = {
        "confidence_level": confidence,
        "n_resamples": n_resamples,
        "method": "percentile",
        "vectorized": True,
        "axis": -1,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = scipy_bootstrap((data,), func, rng=np.random.default_rng(seed), **kwargs)
        except TypeError:  # SciPy before 1.15 names it random_state.
            result = scipy_bootstrap(
                (data,), func, random_state=np.random.default_rng(seed), **kwargs
            )
    low, high = result.confidence_interval
    # The percentile interval of a mean contains it except in freak resamples: make it so.
    return Estimate(value, min(float(low), value), max(float(high), value), int(data.size))


def reference_method(methods: Sequence[str]) -> str | None:
    """The method epoch ratios are taken against: ``hyperband``, else ``none``, else none."""
    return next((m for m in REFERENCE_METHODS if m in methods), None)


def method_figures(
    results: Mapping[str, Sequence[Mapping[str, Any]]], worst_regret: float
) -> dict[str, dict[str, Estimate]]:
    """Per method, every figure of the module docstring as an :class:`Estimate`.

    Args:
        results:
            Per method, the :func:`~optuna_qsvr.benchmark.run_one` results by seed.
        worst_regret:
            The regret a seed without a fully trained trial counts at: the table's best
            minus worst final value, in absolute terms.
    """
    reference = reference_method(list(results))
    ref_epochs = {r["seed"]: r["epochs"] for r in results[reference]} if reference else {}
    figures: dict[str, dict[str, Estimate]] = {}
    for method, runs in results.items():
        regrets = [worst_regret if r["regret"] is None else r["regret"] for r in runs]
        ratios = [r["epochs"] / ref_epochs[r["seed"]] for r in runs if ref_epochs.get(r["seed"])]
        figures[method] = {
            "epochs": bootstrap([r["epochs"] for r in runs]),
            "ratio": bootstrap(ratios),
            "makespan": bootstrap([r["makespan"] for r in runs]),
            "regret_mean": bootstrap(regrets),
            "regret_median": bootstrap(regrets, "median"),
            "p_best": bootstrap([float(r["found_best"]) for r in runs]),
            "p_top1": bootstrap([float(r["top1"]) for r in runs]),
            "annealer_calls": bootstrap([r.get("annealer_calls", 0) for r in runs]),
            "n_pruned": bootstrap([r["n_pruned"] for r in runs]),
        }
        rival = [r.get("fewer_trials_regret") for r in runs]
        paired = [(a, b) for a, b in zip(regrets, rival, strict=True) if b is not None]
        figures[method]["fewer_trials"] = bootstrap([b for _, b in paired])
        figures[method]["vs_fewer"] = bootstrap([a - b for a, b in paired])
    return figures


def dominates(a: Mapping[str, Estimate], b: Mapping[str, Estimate]) -> bool:
    """Whether method ``a`` dominates method ``b`` on epochs and mean regret.

    ``a`` dominates ``b`` when it is at least as good on both (its mean epochs and its mean
    regret are each at most ``b``'s) and better on at least one beyond the intervals (on
    epochs or on mean regret, ``a``'s whole 95% interval lies below ``b``'s). Requiring
    disjoint intervals is conservative: a saving that the seeds cannot tell from luck never
    makes a method dominated.

    Args:
        a, b:
            Figures of two methods, as :func:`method_figures` gives them.
    """
    at_least_as_good = all(a[k].value <= b[k].value for k in ("epochs", "regret_mean"))
    beyond = any(a[k].below(b[k]) for k in ("epochs", "regret_mean"))
    return at_least_as_good and beyond


def dominated_by(figures: Mapping[str, Mapping[str, Estimate]]) -> dict[str, list[str]]:
    """Per method, every other method that :func:`dominates` it, in the figures' order.

    The ``oracle`` knows every final value in advance; it is a bound, not a choice, and is
    never listed as dominating.

    Args:
        figures:
            Per method, as :func:`method_figures` gives them.
    """
    return {
        method: [
            other
            for other in figures
            if other != method
            and other not in NOT_A_CHOICE
            and dominates(figures[other], figures[method])
        ]
        for method in figures
    }
