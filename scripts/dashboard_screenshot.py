"""Screenshot optuna-dashboard on a Swift-Hyperband study for the README: docs/dashboard.png.

Builds a demo study (synthetic exponential-decay curves, 27 epochs, the plots saved by
``DashboardCallback``) unless ``--storage`` and ``--study-name`` name one, starts the
``optuna-dashboard`` command on 127.0.0.1 and opens two pages in headless Chromium (Debian's
``chromium`` package, driven by Playwright): a trial pruned on a forecast, with its decision,
and the study page with the Swift plots. Each page is shot once what it must show is drawn;
the two are stacked into one small PNG with Pillow.
tests/report_tests/test_dashboard_browser.py opens the same pages and checks what they show.

    python scripts/dashboard_screenshot.py --mode paper          # demo study (the README's)
    python scripts/dashboard_screenshot.py --storage sqlite:///s.db --study-name mine
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import optuna

from optuna_qsvr import DashboardCallback, SwiftHyperbandPruner
from optuna_qsvr.report import publish_plots
from optuna_qsvr.report._plots import EPOCHS_PLOT_ID, FORECAST_PLOT_ID

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

WIDTH = 1400
TRIAL_HEIGHT, STUDY_HEIGHT = 900, 1900
SERVER_SECONDS = 60
# A busy machine can take a while to run the dashboard's bundle and plotly.
RENDER_MS = 90_000
# Chromium as it runs here and in CI: no sandbox (root), no GPU, nothing fetched in the
# background. Playwright gives every launch a fresh, temporary profile.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def find_chromium() -> str | None:
    """The Chromium to drive: ``OPTUNA_QSVR_CHROMIUM``, else ``chromium`` on the PATH."""
    named = os.environ.get("OPTUNA_QSVR_CHROMIUM")
    return shutil.which(named) if named else shutil.which("chromium")


def demo_study(storage: str, n_trials: int, mode: str = "forecast") -> optuna.Study:
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
        pruner=SwiftHyperbandPruner(
            mode=mode, min_resource=1, max_resource=27, min_train_curves=5
        ),
    )
    study.optimize(objective, n_trials=n_trials, callbacks=[DashboardCallback(every=10)])
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dashboard_command() -> str:
    # The venv's own command even when the venv is not activated.
    beside = Path(sys.executable).with_name("optuna-dashboard")
    found = str(beside) if beside.exists() else shutil.which("optuna-dashboard")
    if found is None:
        raise FileNotFoundError(
            'no optuna-dashboard command: pip install "optuna-qsvr[dashboard]"'
        )
    return found


@contextlib.contextmanager
def dashboard_process(storage: str) -> Iterator[str]:
    """Run ``optuna-dashboard STORAGE`` on 127.0.0.1 (a free port); yield its base URL.

    The command users run, in its own process; it is stopped on exit however the block ends.

    Raises:
        RuntimeError: the dashboard exited or did not answer within a minute (its output
            is in the message).
    """
    port = _free_port()
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [_dashboard_command(), storage, "--host", "127.0.0.1", "--port", str(port), "--quiet"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/studies", timeout=5):
                    break
            except (urllib.error.URLError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    output = log.read().decode(errors="replace").strip()[-2000:]
                    raise RuntimeError(f"optuna-dashboard did not start: {output}") from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextlib.contextmanager
def chromium(executable: str) -> Iterator[Browser]:
    """Headless Chromium at ``executable``, driven by Playwright (which downloads nothing)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def study_id(base: str, name: str) -> int:
    """The dashboard's id of the study called ``name``."""
    with urllib.request.urlopen(f"{base}/api/studies", timeout=30) as response:
        summaries = json.load(response)["study_summaries"]
    (found,) = [s["study_id"] for s in summaries if s["study_name"] == name]
    return found


def _open(browser: Browser, base: str, path: str, height: int) -> Page:
    page = browser.new_page(viewport={"width": WIDTH, "height": height})
    # Only the dashboard itself is loaded: anything else the page asks for is refused.
    page.route(lambda url: not url.startswith(base), lambda route: route.abort())
    page.goto(f"{base}{path}")
    return page


def plot_locator(page: Page, figure_id: str):
    """The rendered plotly figure the dashboard draws for a saved plot's id."""
    # optuna-dashboard draws a saved plot into <div id="user-defined-plot:ID">.
    return page.locator(f'[id="user-defined-plot:{figure_id}"] .main-svg').first


def attr_locator(page: Page, key: str, value: str):
    """A user attribute as the trial page shows it: one line, ``key value``."""
    return page.get_by_text(f"{key} {value}", exact=True)


def open_trial(browser: Browser, base: str, study: int, number: int, key: str, value: str) -> Page:
    """The trial's page, once its user attribute ``key`` (a decision) is shown."""
    from playwright.sync_api import expect

    path = f"/dashboard/studies/{study}/trials?numbers={number}"
    page = _open(browser, base, path, TRIAL_HEIGHT)
    expect(attr_locator(page, key, value)).to_be_visible(timeout=RENDER_MS)
    return page


def open_study(browser: Browser, base: str, study: int) -> Page:
    """The study's page, once the two Swift plots are drawn."""
    from playwright.sync_api import expect

    page = _open(browser, base, f"/dashboard/studies/{study}", STUDY_HEIGHT)
    for figure_id in (FORECAST_PLOT_ID, EPOCHS_PLOT_ID):
        expect(plot_locator(page, figure_id)).to_be_visible(timeout=RENDER_MS)
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--storage", help="storage URL (default: a demo study in a temp file)")
    parser.add_argument("--study-name", help="the study to show (with --storage)")
    parser.add_argument("--trials", type=int, default=60, help="trials of the demo study")
    parser.add_argument(
        "--mode",
        choices=["forecast", "paper"],
        default="forecast",
        help="the demo study's pruner mode (paper: every rung's forecast is recorded and plotted)",
    )
    parser.add_argument("--output", default="docs/dashboard.png")
    parser.add_argument("--chromium", default=find_chromium(), help="the Chromium binary")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        import playwright  # noqa: F401
        from PIL import Image
    except ImportError as err:
        print(
            f"error: {err.name} is needed: pip install playwright pillow (the dev extra)",
            file=sys.stderr,
        )
        return 2
    if not args.chromium or not shutil.which(args.chromium):
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
            study = demo_study(storage, args.trials, args.mode)
        publish_plots(study)  # the final state, as the README does after optimize
        number = pick_trial(study)
        decisions = [
            (k, v)
            for k, v in study.trials[number].user_attrs.items()
            if isinstance(v, str) and "forecast" in v
        ]

        shots = [os.path.join(work, "trial.png"), os.path.join(work, "plots.png")]
        with dashboard_process(storage) as base, chromium(args.chromium) as browser:
            sid = study_id(base, study.study_name)
            pages = [
                open_trial(browser, base, sid, number, *decisions[-1])
                if decisions
                else _open(browser, base, f"/dashboard/studies/{sid}/trials", TRIAL_HEIGHT),
                open_study(browser, base, sid),
            ]
            for page, shot in zip(pages, shots, strict=True):
                page.screenshot(path=shot)

        images = [Image.open(shot).convert("RGB") for shot in shots]
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
