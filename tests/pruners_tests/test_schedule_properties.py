"""Schedule invariants for random (min_resource, max_resource, eta, known_curve, layout).

Pinned for every bracket of every generated schedule:
- the bracket count: ``min * eta^s_max <= max < min * eta^(s_max + 1)`` (integer arithmetic);
- Hyperband's bracket sizes ``n_s = ceil((s_max + 1) eta^s / (s + 1))``, and Optuna's
  ``HyperbandPruner`` assignment of every trial to a bracket in ``0..s_max``;
- rungs: indices ``0, 1, ...``, each starting where the previous one ended (the first at 0),
  budgets strictly increasing, the last (and only the last) at ``max_resource``;
- the decision step ``previous + ceil((budget - previous) * known_curve)`` strictly inside its
  rung, and ``None`` exactly when that step is not strictly inside;
- the layouts: Optuna's budgets ``min * eta^(s_max - s + i)`` below ``max``; Hyperband's
  ``max(min, R * eta^i // eta^s)``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import optuna
from hypothesis import given
from hypothesis import strategies as st

from optuna_qsvr.pruners import Schedule
from tests._hypothesis import props


@st.composite
def schedules(draw) -> Schedule:
    eta = draw(st.integers(2, 6))
    min_resource = draw(st.integers(1, 12))
    max_resource = draw(st.integers(min_resource, min_resource * eta**5 + 7))
    known_curve = draw(st.floats(0.01, 0.99))
    layout = draw(st.sampled_from(["optuna", "hyperband"]))
    return Schedule(min_resource, max_resource, eta, known_curve, layout)


PROPS = props(150)


@PROPS
@given(schedules())
def test_bracket_count_and_sizes(schedule) -> None:
    m, R, eta, s_max = (
        schedule.min_resource,
        schedule.max_resource,
        schedule.reduction_factor,
        schedule.s_max,
    )
    assert m * eta**s_max <= R < m * eta ** (s_max + 1)
    assert len(schedule.bracket_sizes) == s_max + 1
    for s, n in enumerate(schedule.bracket_sizes):
        assert n == math.ceil(Fraction((s_max + 1) * eta**s, s + 1))
        assert n >= 1
    # The most aggressive bracket has the most trials.
    assert list(schedule.bracket_sizes) == sorted(schedule.bracket_sizes)


@PROPS
@given(schedules())
def test_rungs_tile_zero_to_max_resource(schedule) -> None:
    R, kc = schedule.max_resource, schedule.known_curve
    for s in range(schedule.s_max + 1):
        rungs = schedule.rungs(s)
        assert rungs, s
        previous = 0
        for i, rung in enumerate(rungs):
            assert (rung.bracket, rung.index) == (s, i)
            assert rung.previous == previous < rung.budget
            assert rung.is_last == (i == len(rungs) - 1)
            assert rung.is_last == (rung.budget == R)
            step = rung.previous + math.ceil((rung.budget - rung.previous) * kc)
            if rung.previous < step < rung.budget:
                assert rung.decision_step == step
            else:
                assert rung.decision_step is None
            if rung.decision_step is not None:
                assert rung.previous < rung.decision_step < rung.budget
            previous = rung.budget
        assert rungs[-1].budget == R
        assert all(r.budget >= schedule.min_resource for r in rungs)


@PROPS
@given(schedules())
def test_rung_budgets_follow_the_layout(schedule) -> None:
    m, R, eta, s_max = (
        schedule.min_resource,
        schedule.max_resource,
        schedule.reduction_factor,
        schedule.s_max,
    )
    for s in range(s_max + 1):
        budgets = [r.budget for r in schedule.rungs(s)]
        if schedule.layout == "optuna":
            geometric = [m * eta ** (s_max - s + i) for i in range(s + 1)]
            assert budgets == [b for b in geometric if b < R] + [R]
            # Optuna's bracket b = s_max - s promotes at min * eta^(b + k) below max.
            assert len(budgets) == s + 1 + (m * eta**s_max < R)
        else:
            raw = [max(m, R * eta**i // eta**s) for i in range(s + 1)]
            assert budgets == sorted(set(raw))
            assert budgets[0] == max(m, R // eta**s)
    # Bracket 0 trains every trial to max_resource at once.
    assert [r.budget for r in schedule.rungs(0)][-1] == R
    if schedule.layout == "hyperband":
        assert [r.budget for r in schedule.rungs(0)] == [R]


@props(40)
@given(schedules(), st.text(min_size=1, max_size=20), st.integers(0, 10**7))
def test_every_trial_falls_in_a_bracket_as_optuna_assigns_it(schedule, name, first) -> None:
    pruner = optuna.pruners.HyperbandPruner(
        min_resource=schedule.min_resource,
        max_resource=schedule.max_resource,
        reduction_factor=schedule.reduction_factor,
    )
    study = optuna.create_study(pruner=pruner)
    pruner._try_initialization(study)
    m, R, eta = schedule.min_resource, schedule.max_resource, schedule.reduction_factor
    if _optuna_loses_a_bracket(m, R, eta):
        # Optuna's floating-point log rounds an exact power of eta down: one bracket fewer
        # than Hyperband's formula, which the schedule keeps (test below).
        assert pruner._n_brackets == schedule.s_max
        return
    assert pruner._n_brackets == schedule.s_max + 1
    study.study_name = name

    class _Trial:
        number = 0

    trial = _Trial()
    for number in range(first, first + 50):
        trial.number = number
        bracket = schedule.bracket_of(name, number)
        assert 0 <= bracket <= schedule.s_max
        assert bracket == schedule.s_max - pruner._get_bracket_id(study, trial)


def _optuna_loses_a_bracket(min_resource: int, max_resource: int, eta: int) -> bool:
    """``max/min`` is a power of ``eta`` whose floating-point log Optuna's
    ``HyperbandPruner`` rounds down (``math.log(243, 3)`` is 4.999...)."""
    s = round(math.log(max_resource / min_resource, eta))
    return min_resource * eta**s == max_resource and math.log(max_resource / min_resource, eta) < s


def test_the_schedule_keeps_the_bracket_optunas_float_log_loses() -> None:
    """With min 3, max 729 (a ratio of 3^5) Optuna's ``HyperbandPruner`` makes 5 brackets;
    Hyperband's ``s_max = floor(log_eta(R / r))`` is 5, so 6 brackets, which the schedule has.
    Elsewhere both agree (the property test above)."""
    assert _optuna_loses_a_bracket(3, 729, 3) and not _optuna_loses_a_bracket(1, 81, 3)
    pruner = optuna.pruners.HyperbandPruner(min_resource=3, max_resource=729, reduction_factor=3)
    pruner._try_initialization(optuna.create_study(pruner=pruner))
    assert pruner._n_brackets == 5
    assert Schedule(3, 729, 3, 0.5).s_max + 1 == 6


def test_bracket_sizes_when_max_is_not_a_power_of_eta() -> None:
    # R = 80 with eta 3 has s_max 3, R = 81 has s_max 4: 5 * 81 / 5 = 81, not 80.
    assert Schedule(1, 80, 3, 0.5).bracket_sizes == (4, 6, 12, 27)
    assert Schedule(1, 81, 3, 0.5).bracket_sizes == (5, 8, 15, 34, 81)
    assert Schedule(2, 100, 3, 0.5).bracket_sizes == (4, 6, 12, 27)
    assert Schedule(1, 100, 4, 0.5).bracket_sizes == (4, 8, 22, 64)


def test_hyperband_layout_anchors_rungs_at_max_resource() -> None:
    schedule = Schedule(1, 50, 3, 0.5, "hyperband")
    assert [r.budget for r in schedule.rungs(3)] == [1, 5, 16, 50]
    assert [r.budget for r in schedule.rungs(1)] == [16, 50]
    optuna_layout = Schedule(1, 50, 3, 0.5)
    assert [r.budget for r in optuna_layout.rungs(3)] == [1, 3, 9, 27, 50]
    assert [r.budget for r in optuna_layout.rungs(1)] == [9, 27, 50]
