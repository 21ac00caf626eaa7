"""``optuna_qsvr.integration``: the PyTorch Lightning callback reports the epochs done, in a
real Lightning training, in the distributed path's re-report, and after pickling (DDP sends
the callback to its processes)."""

from __future__ import annotations

import pickle
import warnings

import optuna
import pytest

pl = pytest.importorskip("lightning.pytorch", reason="the lightning extra")
torch = pytest.importorskip("torch")

from optuna_qsvr import SwiftHyperbandPruner  # noqa: E402
from optuna_qsvr.integration import PyTorchLightningPruningCallback  # noqa: E402


class _Line(pl.LightningModule):
    """Fits y = 2x; logs the validation loss it is pruned on."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)

    def _loss(self, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def training_step(self, batch, _):
        return self._loss(batch)

    def validation_step(self, batch, _):
        self.log("val_loss", self._loss(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _trainer(trial: optuna.Trial, max_epochs: int):
    return pl.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[PyTorchLightningPruningCallback(trial, monitor="val_loss")],
    )


def _loader():
    x = torch.linspace(-1, 1, 32).unsqueeze(1)
    data = torch.utils.data.TensorDataset(x, 2 * x)
    return torch.utils.data.DataLoader(data, batch_size=32)


def test_a_lightning_training_reports_the_epochs_done(tmp_path) -> None:
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'l.db'}",
        pruner=SwiftHyperbandPruner(min_resource=1, max_resource=4),
    )

    def objective(trial: optuna.Trial) -> float:
        trainer = _trainer(trial, max_epochs=4)
        trainer.fit(_Line(), _loader(), _loader())
        return trainer.callback_metrics["val_loss"].item()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study.optimize(objective, n_trials=2)
    assert not [w for w in caught if "SwiftHyperbandPruner" in str(w.message)]
    # Steps 1, 2, ... up to where the trial stopped; the first trial, alone, ran all 4 epochs.
    for trial in study.trials:
        assert sorted(trial.intermediate_values) == list(range(1, trial.last_step + 1))
    assert study.trials[0].last_step == 4


def test_a_pruned_training_says_how_many_epochs_it_trained() -> None:
    # Every loss is above -1: the pruner stops the trial at its first step past the warm-up.
    study = optuna.create_study(
        pruner=optuna.pruners.ThresholdPruner(upper=-1.0, n_warmup_steps=2)
    )
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned, match=r"^Trial was pruned after 2 epochs\.$"):
        _trainer(trial, max_epochs=4).fit(_Line(), _loader(), _loader())
    assert sorted(study.trials[0].intermediate_values) == [1, 2]


def test_the_distributed_re_report_and_pickling_keep_the_shift(tmp_path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'd.db'}")
    trial = study.ask()
    callback = pickle.loads(pickle.dumps(PyTorchLightningPruningCallback(trial, "val_loss")))
    # What the rank-0 process leaves for the main one under DDP: values by current_epoch,
    # and the pruned flag; check_pruned reports them in the main process, then raises.
    storage = study._storage
    storage.set_trial_system_attr(trial._trial_id, "ddp_pl:intermediate_value", {"0": 3, "1": 2})
    storage.set_trial_system_attr(trial._trial_id, "ddp_pl:pruned", True)
    storage.set_trial_system_attr(trial._trial_id, "ddp_pl:epoch", 1)
    # The message counts epochs done, as the pruner's steps do, not current_epoch.
    with pytest.raises(optuna.TrialPruned, match=r"^Trial was pruned after 2 epochs\.$"):
        callback.check_pruned()
    assert storage.get_trial(trial._trial_id).intermediate_values == {1: 3.0, 2: 2.0}
