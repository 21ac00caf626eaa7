"""Integrations with training frameworks.

:class:`PyTorchLightningPruningCallback` is optuna-integration's callback for PyTorch
Lightning, reporting the epochs done (``current_epoch + 1``) as the step, as the pruner
expects. It needs the ``lightning`` extra and is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["PyTorchLightningPruningCallback"]

if TYPE_CHECKING:
    from optuna_qsvr.integration._lightning import PyTorchLightningPruningCallback


def __getattr__(name: str) -> Any:
    if name != "PyTorchLightningPruningCallback":
        raise AttributeError(f"module 'optuna_qsvr.integration' has no attribute {name!r}")
    return importlib.import_module("optuna_qsvr.integration._lightning").__dict__[name]
