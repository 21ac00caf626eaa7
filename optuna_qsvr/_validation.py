"""Argument checks shared by the package, in Optuna's style: the error names the value."""

from __future__ import annotations

import numbers
from typing import Any


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an ``int`` if it is an integer (NumPy's included) ``>= minimum``, else
    raise ``ValueError`` naming it. Booleans are rejected: ``True`` is no epoch count."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
