"""The report's optional dependencies, imported only when a plot or the dashboard is asked for."""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL = 'pip install "optuna-qsvr[dashboard]"'


def require(module: str) -> ModuleType:
    """Import ``module`` of the ``dashboard`` extra, or say how to install it.

    Args:
        module: a module of plotly or optuna-dashboard, e.g. ``"plotly.graph_objects"``.

    Raises:
        ImportError: the package is not installed; the message names the extra.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{module.split('.')[0]} is needed for Swift-Hyperband's plots and dashboard: "
            f"{INSTALL}"
        ) from err
