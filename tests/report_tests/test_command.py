from __future__ import annotations

import argparse
import json
import re

from optuna_qsvr.report import build_report
from optuna_qsvr.report._command import add_report_arguments, run_report
from optuna_qsvr.report._plots import EPOCHS_PLOT_ID, FORECAST_PLOT_ID
from tests.report_tests.conftest import load


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    return parser.parse_args(list(argv))


def test_report_command_prints_tables_and_writes_html(swift_study, tmp_path, capsys) -> None:
    url, name = swift_study
    report = build_report(load(swift_study))
    out_file = tmp_path / "report.html"

    assert run_report(_parse("--storage", url, "--study-name", name, "--html", str(out_file))) == 0
    printed = capsys.readouterr().out
    for heading in ("Brackets", "Rungs", "Predictor fits", "epochs spent"):
        assert heading in printed
    assert str(report["epochs"]["spent"]) in printed
    for f in report["fits"]:
        assert f["key"] in printed

    page = out_file.read_text()
    assert page.startswith("<!DOCTYPE html>")
    # Offline: plotly.js is inside the file, not fetched from a CDN.
    assert not re.search(r"<script[^>]*\ssrc=", page) and len(page) > 1_000_000
    for figure_id in (FORECAST_PLOT_ID, EPOCHS_PLOT_ID):
        assert f'id="{figure_id}"' in page
    assert page.count("Plotly.newPlot(") == 2
    for f in report["fits"]:
        assert f"<td>{f['key']}</td>" in page
    # The figure data are the report's: every checked forecast appears in its key's trace.
    figure_json = page[page.index(f'"{FORECAST_PLOT_ID}"') :]
    first = next(iter(report["forecasts"].values()))[0]
    assert json.dumps(first["forecast"]) in figure_json


def test_report_command_finds_the_only_study_and_rejects_unknown(swift_study, capsys) -> None:
    url, name = swift_study
    assert run_report(_parse("--storage", url)) == 0
    assert name in capsys.readouterr().out
    assert run_report(_parse("--storage", url, "--study-name", "nope")) == 2
    assert "no study named 'nope'" in capsys.readouterr().err


def test_cli_report_subcommand_runs_this_module(swift_study, capsys) -> None:
    from optuna_qsvr._cli import SUBCOMMANDS

    # Only the report entry: the other subcommands' modules are not this package's concern.
    _, add_arguments, run = SUBCOMMANDS["report"]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    url, name = swift_study
    assert run(parser.parse_args(["--storage", url, "--study-name", name])) == 0
    assert "Predictor fits" in capsys.readouterr().out
