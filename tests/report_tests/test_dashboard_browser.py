"""optuna-dashboard in a real browser: the README's screenshot path, checked.

A study pruned by Swift-Hyperband on SQLite, with the plots saved by DashboardCallback, is
served by the ``optuna-dashboard`` command in its own process and opened in headless Chromium
(Debian's ``chromium``, driven by Playwright) as scripts/dashboard_screenshot.py does. The
checks are on the page as rendered: the decision of a trial pruned on a forecast, and the two
Swift plots drawn with their titles, legends and one marker per forecast. Skipped only where
there is no Chromium; .ci/run installs it and sets OPTUNA_QSVR_CHROMIUM, which turns a missing
browser into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator

import optuna
import pytest
from PIL import Image
from playwright.sync_api import expect

from optuna_qsvr import SwiftHyperbandPruner, _records
from optuna_qsvr.report import DashboardCallback, build_report
from optuna_qsvr.report._plots import EPOCHS_PLOT_ID, FORECAST_PLOT_ID
from scripts.dashboard_screenshot import (
    RENDER_MS,
    TRIAL_HEIGHT,
    WIDTH,
    attr_locator,
    chromium,
    dashboard_process,
    find_chromium,
    open_study,
    open_trial,
    study_id,
)
from tests.report_tests.conftest import MAX_RESOURCE, fast_sqlite_dir, swift_objective

pytest.importorskip("optuna_dashboard")

N_TRIALS, EVERY = 30, 10


def _chromium() -> str:
    found = find_chromium()
    if found is not None:
        return found
    named = os.environ.get("OPTUNA_QSVR_CHROMIUM")
    if named:
        pytest.fail(f"OPTUNA_QSVR_CHROMIUM={named!r} is not an executable Chromium")
    pytest.skip("no Chromium to open the dashboard in: apt-get install chromium (.ci/chromium.sh)")


def _pruned_on_a_forecast(study: optuna.Study) -> tuple[int, str, str]:
    """A pruned trial's number and the user attribute (key, text) of its forecast decision."""
    for trial in study.trials:
        for rung, d in _records.read_trial(trial.system_attrs).decisions.items():
            if d["decision"] == "pruned" and d["forecast"] is not None:
                assert trial.state == optuna.trial.TrialState.PRUNED
                key = _records.decision_text_attr(rung)
                return trial.number, key, trial.user_attrs[key]
    pytest.fail("the pruner pruned no trial on a forecast: nothing to show")


def _saturated_pixels(path) -> int:
    """Pixels of a clear colour: plotly's markers and lines, not the page's greys and white."""
    image = Image.open(path).convert("RGB")
    return sum(
        n
        for n, (r, g, b) in image.getcolors(image.width * image.height)
        if max(r, g, b) - min(r, g, b) > 80
    )


@pytest.fixture
def sqlite_url() -> Iterator[str]:
    directory = fast_sqlite_dir()
    yield f"sqlite:///{directory}/study.db"
    shutil.rmtree(directory, ignore_errors=True)


# Both modes fill the forecast plot: the paper mode records every rung's forecast, the default
# mode a kept trial's first forecast in each rung (its prunes never reach their target).
@pytest.mark.parametrize("mode", ["forecast", "paper"])
def test_dashboard_shows_a_pruned_decision_and_the_forecast_plots(
    tmp_path, sqlite_url, mode
) -> None:
    executable = _chromium()
    url = sqlite_url
    study = optuna.create_study(
        storage=url,
        study_name="swift-browser",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=SwiftHyperbandPruner(
            mode=mode, min_resource=1, max_resource=MAX_RESOURCE, min_train_curves=3
        ),
    )
    # The callback alone saves the plots: its last refresh, after trial 30, is the final state.
    study.optimize(swift_objective, n_trials=N_TRIALS, callbacks=[DashboardCallback(every=EVERY)])
    number, key, decision = _pruned_on_a_forecast(study)
    assert re.fullmatch(r"pruned at \d+ \(r\d+_t\d+\): forecast \S+ vs threshold \S+", decision)
    report = build_report(study)
    n_checked = sum(len(pairs) for pairs in report["forecasts"].values())
    assert n_checked > 0

    with dashboard_process(url) as base, chromium(executable) as browser:
        sid = study_id(base, "swift-browser")

        trial_page = open_trial(browser, base, sid, number, key, decision)
        expect(trial_page.get_by_text(f"Trial {number} (trial_id=")).to_be_visible()
        expect(attr_locator(trial_page, key, decision)).to_be_visible()
        bracket = _records.bracket_of_trial(study.trials[number].user_attrs)
        expect(attr_locator(trial_page, _records.BRACKET_ATTR, str(bracket))).to_be_visible()
        trial_png = tmp_path / "trial.png"
        trial_page.screenshot(path=trial_png)

        page = open_study(browser, base, sid)
        forecast = page.locator(f'[id="user-defined-plot:{FORECAST_PLOT_ID}"]')
        expect(forecast.locator(".gtitle")).to_have_text(
            "Swift: forecast vs value reached, per key", timeout=RENDER_MS
        )
        legend = set(forecast.locator(".legendtext").all_text_contents())
        assert legend == {*report["forecasts"], "x = y"}
        # One drawn marker per kept trial's forecast, each against the value it then reached.
        markers = forecast.locator(".scatterlayer .trace .points path.point")
        assert markers.count() == n_checked

        epochs = page.locator(f'[id="user-defined-plot:{EPOCHS_PLOT_ID}"]')
        expect(epochs.locator(".gtitle")).to_have_text("Swift: best value against epochs spent")
        assert epochs.locator(".legendtext").all_text_contents() == [
            "Swift-Hyperband (spent)",
            "plain Hyperband, same trials (at least)",
        ]
        forecast_png, epochs_png = tmp_path / "forecast.png", tmp_path / "epochs.png"
        forecast.screenshot(path=forecast_png)
        epochs.screenshot(path=epochs_png)

    with Image.open(trial_png) as image:
        assert image.size == (WIDTH, TRIAL_HEIGHT)
        assert len(image.convert("RGB").getcolors(WIDTH * TRIAL_HEIGHT)) > 100
    # The plots as painted: coloured markers and lines on their white cards.
    assert _saturated_pixels(forecast_png) > 200
    assert _saturated_pixels(epochs_png) > 200
