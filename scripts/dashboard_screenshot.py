"""Screenshot optuna-dashboard on a Swift-Hyperband study for the README: docs/dashboard.png.

Builds a demo study (synthetic exponential-decay curves, 27 epochs) unless ``--storage`` and
``--study-name`` name one, saves the Swift plots into it, serves optuna-dashboard on
127.0.0.1 and shoots two pages with headless Chromium (Debian's ``chromium`` package): a
trial pruned on a forecast, with its user attributes, and the study page with the plots.
The two are stacked into one small PNG with Pillow.

    python scripts/dashboard_screenshot.py                       # demo study
    python scripts/dashboard_screenshot.py --storage sqlite:///s.db --study-name mine
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request

import optuna

from optuna_qsvr import SwiftHyperbandPruner
from optuna_qsvr.report import dashboard_server, publish_plots

WIDTH = 1400
CHROMIUM_SECONDS = 120


def demo_study(storage: str, n_trials: int) -> optuna.Study:
    """A study of ``n_trials`` decaying curves, 27 epochs each, decided by Swift-Hyperband."""

    def objective(trial: optuna.Trial) -> float:
        rate = trial.suggest_float("rate", 0.02, 1.0, log=True)
        floor = trial.suggest_float("floor", 0.0, 1.0)
        for epoch in range(1, 28):
            trial.report(floor + math.exp(-rate * epoch), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return floor + math.exp(-rate * 27)

    study = optuna.create_study(
        storage=storage,
        study_name="swift-hyperband-demo",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=SwiftHyperbandPruner(min_resource=1, max_resource=27, min_train_curves=5),
    )
    study.optimize(objective, n_trials=n_trials)
    return study


def pick_trial(study: optuna.Study) -> int:
    """A trial whose user attributes tell a forecast decision, a pruned one if any."""
    best = None
    for trial in study.trials:
        texts = [v for v in trial.user_attrs.values() if isinstance(v, str) and "forecast" in v]
        if not texts:
            continue
        score = (any(t.startswith("pruned") for t in texts), len(trial.user_attrs))
        if best is None or score > best[0]:
            best = (score, trial.number)
    return best[1] if best else study.trials[-1].number


def shoot(chromium: str, url: str, path: str, height: int) -> None:
    """One headless Chromium screenshot; a fresh profile so nothing is read or kept."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                # The dashboard renders after its API calls: let the page's clock run first.
                "--virtual-time-budget=15000",
                f"--window-size={WIDTH},{height}",
                f"--screenshot={path}",
                url,
            ],
            check=True,
            timeout=CHROMIUM_SECONDS,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--storage", help="storage URL (default: a demo study in a temp file)")
    parser.add_argument("--study-name", help="the study to show (with --storage)")
    parser.add_argument("--trials", type=int, default=60, help="trials of the demo study")
    parser.add_argument("--output", default="docs/dashboard.png")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        from PIL import Image
    except ImportError:
        print(
            "error: Pillow is needed to combine the screenshots: pip install pillow",
            file=sys.stderr,
        )
        return 2
    if not shutil.which(args.chromium):
        print(
            f"error: no Chromium at {args.chromium!r} (apt-get install chromium)", file=sys.stderr
        )
        return 2

    # SQLite on tmpfs when there is one: it syncs every commit.
    work = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        if args.storage:
            storage = args.storage
            names = optuna.get_all_study_names(storage=storage)
            name = args.study_name or (names[0] if len(names) == 1 else None)
            if name is None:
                print(f"error: --study-name is needed, one of {names}", file=sys.stderr)
                return 2
            study = optuna.load_study(study_name=name, storage=storage)
        else:
            storage = f"sqlite:///{work}/demo.db"
            study = demo_study(storage, args.trials)
        publish_plots(study)
        number = pick_trial(study)

        with dashboard_server(storage) as base:
            with urllib.request.urlopen(f"{base}/api/studies", timeout=30) as response:
                summaries = json.load(response)["study_summaries"]
            (study_id,) = [s["study_id"] for s in summaries if s["study_name"] == study.study_name]
            trial_png, plots_png = os.path.join(work, "trial.png"), os.path.join(work, "plots.png")
            shoot(
                args.chromium,
                f"{base}/dashboard/studies/{study_id}/trials?numbers={number}",
                trial_png,
                900,
            )
            shoot(args.chromium, f"{base}/dashboard/studies/{study_id}", plots_png, 1900)

        images = [Image.open(trial_png).convert("RGB"), Image.open(plots_png).convert("RGB")]
        sheet = Image.new("RGB", (WIDTH, sum(i.height for i in images)), "white")
        top = 0
        for image in images:
            sheet.paste(image, (0, top))
            top += image.height
        sheet = sheet.resize((WIDTH // 2, sheet.height // 2), Image.Resampling.LANCZOS)
        # A 256-colour palette keeps the README's image small; screenshots lose nothing visible.
        sheet = sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        sheet.save(args.output, optimize=True)
        print(f"wrote {args.output} (trial {number} of study {study.study_name})")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
