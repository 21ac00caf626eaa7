"""The training-loop examples under examples/, run as the README runs them (fewer trials and
epochs): a real model trains, trials complete, and the pruner stops some with its record."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import optuna

from optuna_qsvr.report import trial_records

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, tmp_path: Path, *args: str) -> tuple[optuna.Study, str]:
    storage = f"sqlite:///{tmp_path / 'example.db'}"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--storage", storage, *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    name = script.removesuffix(".py")
    return optuna.load_study(storage=storage, study_name=name), done.stdout + done.stderr


def _check_study(
    study: optuna.Study, output: str, trials: int, last_step: int, first_step: int
) -> None:
    records = trial_records(study)
    assert all(min(r["intermediate_values"]) == first_step for r in records)
    states = [r["state"] for r in records]
    assert len(records) == trials
    assert set(states) == {"COMPLETE", "PRUNED"}
    # The pruner stopped each pruned trial, and its record says where: a forecast's decision
    # or successive halving's stop, at the trial's last step.
    for r in records:
        stops = [d["step"] for d in r["decisions"].values() if d["decision"] == "pruned"]
        stops += [p["step"] for p in r["promotions"].values() if p["decision"] == "stopped"]
        if r["state"] == "PRUNED":
            assert stops == [r["epochs"]] and r["epochs"] < last_step, r
        else:
            assert stops == [] and r["epochs"] == last_step, r
    # A real model learned the digits: far above chance (0.1).
    assert study.best_value > 0.5
    summary = re.search(r"^(\d+) trials, (\d+) pruned, (\d+) epochs trained$", output, re.M)
    assert summary is not None, output
    assert int(summary.group(1)) == trials
    assert int(summary.group(2)) == states.count("PRUNED")
    # Epochs trained: the last step reported, plus one where steps count from 0.
    assert int(summary.group(3)) == sum(r["epochs"] + 1 - first_step for r in records)
    assert f"best accuracy {study.best_value:.3f}" in output


def test_pytorch_simple(tmp_path: Path) -> None:
    study, output = _run("pytorch_simple.py", tmp_path, "--trials", "16", "--epochs", "9")
    # The loop reports the epochs done, 1 after the first: the last of 9 epochs is step 9.
    _check_study(study, output, trials=16, last_step=9, first_step=1)
    assert all({"n_layers", "lr"} <= set(t.params) for t in study.trials)


def test_pytorch_lightning_simple(tmp_path: Path) -> None:
    # lightning and optuna-integration are in the `lightning` extra, which scripts/setup.sh
    # installs: a missing one fails this test rather than skipping it.
    study, output = _run(
        "pytorch_lightning_simple.py", tmp_path, "--trials", "16", "--epochs", "9"
    )
    # optuna_qsvr.integration's callback reports the epochs done, 1 after the first epoch:
    # the last of 9 epochs is step 9, the pruner's max_resource.
    _check_study(study, output, trials=16, last_step=9, first_step=1)
    # No step 0, so no warning about one (the example filters none).
    assert "SwiftHyperbandPruner" not in output
