"""Hypothesis settings of this suite.

No example database, so runs write nothing into the tree. Under mutmut (which sets
``MUTANT_UNDER_TEST``) the examples are derandomised and a failure is not shrunk: a mutant's
verdict is then reproducible, and a killed mutant costs one failing example, not a shrink;
a fifth of the examples (at least 5; the explicit ones always run) keeps thousands of
mutant runs within the half hour.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

UNDER_MUTMUT = "MUTANT_UNDER_TEST" in os.environ
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


def props(max_examples: int, *, shrink: bool = True, **kwargs) -> settings:
    """Settings for a property test with ``max_examples`` examples and no deadline (storages
    and fits vary in speed on a shared machine)."""
    return settings(
        max_examples=max(5, max_examples // 5) if UNDER_MUTMUT else max_examples,
        deadline=None,
        database=None,
        derandomize=UNDER_MUTMUT,
        phases=NO_SHRINK if UNDER_MUTMUT or not shrink else tuple(Phase),
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        **kwargs,
    )
