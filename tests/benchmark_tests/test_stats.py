from __future__ import annotations

import numpy as np
import pytest

from optuna_qsvr.benchmark import Estimate, bootstrap, dominated_by, dominates, method_figures


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("statistic", ["mean", "median"])
def test_bootstrap_interval_contains_the_statistic(seed: int, statistic: str) -> None:
    values = np.random.default_rng(seed).lognormal(size=20)
    est = bootstrap(values, statistic)
    expected = np.mean(values) if statistic == "mean" else np.median(values)
    assert est.value == pytest.approx(expected)
    assert est.low <= est.value <= est.high
    assert est.low < est.high
    assert est.n == 20
    # Seeded: the same values give the same interval.
    assert bootstrap(values, statistic) == est


def test_bootstrap_interval_narrows_with_more_seeds() -> None:
    rng = np.random.default_rng(0)
    few, many = bootstrap(rng.normal(size=10)), bootstrap(rng.normal(size=400))
    assert many.high - many.low < few.high - few.low


def test_bootstrap_degenerate_cases() -> None:
    assert bootstrap([7.0, 7.0, 7.0]) == Estimate(7.0, 7.0, 7.0, 3)
    assert bootstrap([3.0]) == Estimate(3.0, 3.0, 3.0, 1)
    assert bootstrap([]).n == 0


def _fig(epochs: tuple[float, float, float], regret: tuple[float, float, float]) -> dict:
    return {"epochs": Estimate(*epochs, n=20), "regret_mean": Estimate(*regret, n=20)}


FIGURES = {
    "a": _fig((100, 90, 110), (0.10, 0.05, 0.15)),
    # Fewer epochs beyond the intervals, same regret: dominates a.
    "b": _fig((50, 45, 55), (0.10, 0.05, 0.15)),
    # Better on both, but within the intervals on both: dominates nobody.
    "c": _fig((95, 85, 105), (0.09, 0.04, 0.14)),
    # Far fewer epochs but a worse mean regret: not at least as good on both.
    "d": _fig((10, 8, 12), (0.11, 0.06, 0.16)),
    # Same epochs as a, regret lower beyond the intervals: dominates a and c.
    "e": _fig((95, 85, 105), (0.01, 0.0, 0.02)),
    # The hindsight bound beats everyone and is never listed.
    "oracle": _fig((5, 5, 5), (0.0, 0.0, 0.0)),
}


def test_dominance_on_hand_made_figures() -> None:
    assert dominates(FIGURES["b"], FIGURES["a"])
    assert not dominates(FIGURES["a"], FIGURES["b"])
    assert not dominates(FIGURES["c"], FIGURES["a"])
    assert not dominates(FIGURES["d"], FIGURES["a"])
    assert not dominates(FIGURES["a"], FIGURES["a"])
    assert dominated_by(FIGURES) == {
        "a": ["b", "e"],
        "b": [],
        "c": ["e"],
        "d": [],
        "e": [],
        "oracle": [],
    }


def _runs(epochs: list[int], regrets: list[float | None]) -> list[dict]:
    return [
        {
            "seed": i,
            "epochs": e,
            "regret": r,
            "makespan": float(e),
            "found_best": r == 0,
            "top1": r is not None and r < 0.05,
            "n_pruned": 1,
        }
        for i, (e, r) in enumerate(zip(epochs, regrets, strict=True))
    ]


def test_method_figures_ratio_probabilities_and_missing_results() -> None:
    results = {
        "hyperband": _runs([100, 200, 100, 100], [0.0, 0.1, 0.0, 0.2]),
        "x": _runs([50, 100, 100, 25], [0.0, None, 0.04, 0.0]),
    }
    figures = method_figures(results, worst_regret=1.0)
    x = figures["x"]
    assert x["ratio"].value == pytest.approx(np.mean([0.5, 0.5, 1.0, 0.25]))
    assert figures["hyperband"]["ratio"] == Estimate(1.0, 1.0, 1.0, 4)
    # The seed without a fully trained trial counts at the worst regret.
    assert x["regret_mean"].value == pytest.approx((0 + 1.0 + 0.04 + 0) / 4)
    assert x["regret_median"].value == pytest.approx(0.02)
    assert x["p_best"].value == pytest.approx(0.5)
    assert x["p_top1"].value == pytest.approx(0.75)
    assert x["annealer_calls"].value == 0
