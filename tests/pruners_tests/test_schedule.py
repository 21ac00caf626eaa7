from __future__ import annotations

import collections
import math

import pytest

from optuna_qsvr import SwiftHyperbandPruner
from optuna_qsvr.pruners import Schedule
from optuna_qsvr.pruners._schedule import decision_points


@pytest.mark.parametrize(
    ("min_resource", "max_resource", "eta", "s_max"),
    [(1, 243, 3, 5), (1, 242, 3, 4), (1, 27, 3, 3), (1, 100, 2, 6), (2, 100, 3, 3), (1, 2, 3, 0)],
)
def test_bracket_count_uses_integer_arithmetic(min_resource, max_resource, eta, s_max) -> None:
    # math.log(243, 3) is 4.999...: a float floor would lose the sixth bracket.
    assert math.floor(math.log(243, 3)) == 4
    assert Schedule(min_resource, max_resource, eta, 0.5).s_max == s_max


def test_hyperband_bracket_sizes_and_rungs() -> None:
    s = Schedule(1, 27, 3, 0.5)
    # n = ceil((s_max + 1) * eta**s / (s + 1)) for s = 0..3.
    assert s.bracket_sizes == (4, 6, 12, 27)
    spans = {b: [(r.previous, r.decision_step, r.budget) for r in s.rungs(b)] for b in range(4)}
    assert spans[0] == [(0, 14, 27)]
    assert spans[1] == [(0, 5, 9), (9, 18, 27)]
    assert spans[2] == [(0, 2, 3), (3, 6, 9), (9, 18, 27)]
    # Rung (0, 1]: no step lies strictly between, so successive halving alone decides.
    assert spans[3] == [(0, None, 1), (1, 2, 3), (3, 6, 9), (9, 18, 27)]
    assert all(r.is_last == (r.budget == 27) for b in range(4) for r in s.rungs(b))


def test_shared_keys_across_brackets() -> None:
    s = Schedule(1, 27, 3, 0.5)
    keys = collections.Counter((r.budget, r.decision_step) for b in range(4) for r in s.rungs(b))
    # The (27, 18) and (9, 6) predictors serve several brackets.
    assert keys[(27, 18)] == 3 and keys[(9, 6)] == 2


def test_bracket_assignment_is_deterministic_and_proportional() -> None:
    a, b = Schedule(1, 27, 3, 0.5), Schedule(1, 27, 3, 0.5)
    got = [a.bracket_of("name", n) for n in range(4000)]
    assert got == [b.bracket_of("name", n) for n in range(4000)]
    counts = collections.Counter(got)
    total = sum(a.bracket_sizes)
    for bracket, size in enumerate(a.bracket_sizes):
        assert abs(counts[bracket] / 4000 - size / total) < 0.03
    assert got != [a.bracket_of("other", n) for n in range(4000)]


def test_decision_points_are_geometric_and_strictly_below_the_bound() -> None:
    assert list(decision_points(1, 1.5, 27)) == [1, 2, 3, 4, 6, 8, 12, 18, 26]
    assert list(decision_points(1, 1.5, 26)) == [1, 2, 3, 4, 6, 8, 12, 18]  # 26 is not below
    assert list(decision_points(2, 2.0, 17)) == [2, 4, 8, 16]
    assert list(decision_points(3, 1.5, 3)) == []


def _naive_points(min_resource: int, ratio: float, below: int) -> list[int]:
    points, k = [], 0
    while (point := math.ceil(min_resource * ratio**k)) < below:
        if point not in points:
            points.append(point)
        k += 1
    return points


@pytest.mark.parametrize("ratio", [1.01, 1.1, 1.3, 1.5, 2.0, math.sqrt(3), 3.0, 10.0])
@pytest.mark.parametrize(("min_resource", "below"), [(1, 50), (1, 243), (2, 81), (5, 400)])
def test_decision_points_are_the_formulas_distinct_values(min_resource, ratio, below) -> None:
    assert list(decision_points(min_resource, ratio, below)) == _naive_points(
        min_resource, ratio, below
    )


def test_the_smallest_ratio_the_options_allow_makes_every_step_a_point() -> None:
    for max_resource in (1, 2, 9, 50, 1000):
        ratio = SwiftHyperbandPruner(
            max_resource=max_resource, checkpoint_ratio=1 + 1 / (max_resource + 1)
        )._options.checkpoint_ratio
        assert list(decision_points(1, ratio, max_resource)) == list(range(1, max_resource))
    with pytest.raises(ValueError, match=r"at least 1 \+ 1/\(max_resource \+ 1\) = 1.0196"):
        SwiftHyperbandPruner(max_resource=50, checkpoint_ratio=1.0195)
    with pytest.raises(ValueError, match="already makes every step a decision point"):
        SwiftHyperbandPruner(max_resource=50, checkpoint_ratio=1 + 1e-9)


def test_weights_of_brackets_that_do_not_exist_leave_the_others_their_trials() -> None:
    # max_resource 2 with eta 3 has one bracket; a larger weight for a second one must not
    # round its share to nothing.
    schedule = Schedule(1, 2, 3, 0.5, weights=(1e-4, 1.0))
    assert schedule.s_max == 0 and schedule.allocation == (1000,)
    assert {schedule.bracket_of("s", n) for n in range(50)} == {0}
    # With every bracket present the shares are those of the weights as given.
    assert Schedule(1, 27, 3, 0.5, weights=(1.0, 0.25, 0.0)).allocation == (0, 0, 3000, 27000)
