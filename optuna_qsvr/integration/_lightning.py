"""optuna-integration's PyTorch Lightning callback, counting steps as epochs done."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import optuna

try:
    import lightning.pytorch  # noqa: F401 - optuna-integration alone imports without it
    from optuna_integration import PyTorchLightningPruningCallback as _Callback
except ImportError as err:  # pragma: no cover - the message is the point
    raise ImportError(
        "the Lightning callback needs lightning and optuna-integration: pip install "
        '"optuna-qsvr[lightning]"'
    ) from err


class _EpochsDone:
    """A trial whose ``report(value, step)`` reports at ``step + 1``; everything else is the
    trial's. The callback's step is Lightning's ``current_epoch``, 0 after the first epoch."""

    def __init__(self, trial: Any) -> None:
        self._wrapped = trial

    def report(self, value: float, step: int) -> None:
        self._wrapped.report(value, step + 1)

    def __getattr__(self, name: str) -> Any:
        if name == "_wrapped":  # not set yet: unpickling (DDP sends the callback to processes)
            raise AttributeError(name)
        return getattr(self._wrapped, name)


class PyTorchLightningPruningCallback(_Callback):
    """optuna-integration's :class:`~optuna_integration.PyTorchLightningPruningCallback`,
    reporting the number of epochs done as the step.

    The original reports Lightning's ``current_epoch``, which counts from 0, so the last of
    ``max_epochs`` epochs is step ``max_epochs - 1`` and the first is step 0, which
    :class:`~optuna_qsvr.SwiftHyperbandPruner` warns about. With this one, pass
    ``max_resource=max_epochs``. Everything else, distributed training (DDP) and
    :meth:`check_pruned` included, is the original's.

    Args:
        trial: the trial being trained.
        monitor: the logged metric to report, e.g. ``"val_acc"``.
    """

    def __init__(self, trial: Any, monitor: str) -> None:
        super().__init__(_EpochsDone(trial), monitor)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        with _epochs_done_message():
            super().on_validation_end(trainer, pl_module)

    def check_pruned(self) -> None:
        with _epochs_done_message():
            super().check_pruned()


@contextlib.contextmanager
def _epochs_done_message() -> Iterator[None]:
    """Rewrites the original's "pruned at epoch N" (``current_epoch``, from 0) as the epochs
    done, the step the pruner saw."""
    try:
        yield
    except optuna.TrialPruned as err:
        match = re.fullmatch(r"Trial was pruned at epoch (\d+)\.", str(err))
        if match is None:
            raise
        raise optuna.TrialPruned(f"Trial was pruned after {int(match[1]) + 1} epochs.") from None
