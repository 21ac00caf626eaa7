"""The ``optuna-qsvr`` command as a user runs it, in a subprocess with its output piped: the
version, ``report`` on storages that are wrong, unusual or foreign to the pruner, and optional
dependencies that are missing."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import optuna
import pytest

import optuna_qsvr
from tests.report_tests.conftest import make_swift_study

CURVES = Path(optuna_qsvr.__file__).parent / "benchmark" / "curves"


def _cli(*argv: str, blocked: tuple[str, ...] = (), cwd=None) -> subprocess.CompletedProcess:
    """Run ``python -m optuna_qsvr ARGV``; modules in ``blocked`` fail to import, as when their
    package is not installed."""
    code = (
        "import sys\n"
        f"sys.modules.update(dict.fromkeys({list(blocked)!r}))\n"
        "from optuna_qsvr._cli import main\n"
        f"raise SystemExit(main({list(argv)!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def _one_line_error(done: subprocess.CompletedProcess, *expected: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for text in expected:
        assert text in lines[0]


def test_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "optuna_qsvr", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"optuna-qsvr {optuna_qsvr.__version__}"
    assert optuna_qsvr.__version__ == metadata.version("optuna-qsvr")


@pytest.fixture(scope="module")
def sqlite_study(tmp_path_factory) -> tuple[str, str]:
    path = tmp_path_factory.mktemp("report") / "study.db"
    make_swift_study(f"sqlite:///{path}", "swift", n_trials=30)
    return f"sqlite:///{path}", "swift"


def test_report_on_a_mistyped_sqlite_path_creates_nothing(tmp_path) -> None:
    done = _cli("report", "--storage", "sqlite:///stduy.db", cwd=tmp_path)
    _one_line_error(done, "no SQLite database at", "stduy.db", "nothing was created")
    assert list(tmp_path.iterdir()) == []
    done = _cli("report", "--storage", "journal:///journal.log", cwd=tmp_path)
    _one_line_error(done, "no journal file at")
    assert list(tmp_path.iterdir()) == []


def test_report_reads_journal_storage(tmp_path) -> None:
    from optuna.storages.journal import JournalFileBackend

    path = tmp_path / "journal.log"
    study = make_swift_study(
        optuna.storages.JournalStorage(JournalFileBackend(str(path))), "journaled", n_trials=30
    )
    done = _cli("report", "--storage", f"journal:///{path}")
    assert done.returncode == 0, done.stderr
    assert "Study journaled (minimize)" in done.stdout
    spent = sum(t.last_step or 0 for t in study.trials)
    assert any(
        line.split()[-1:] == [str(spent)]
        for line in done.stdout.splitlines()
        if "epochs spent" in line
    )
    assert "Predictor fits" in done.stdout


def test_report_table_headers_stay_on_one_line_when_piped(sqlite_study) -> None:
    url, name = sqlite_study
    done = _cli("report", "--storage", url, "--study-name", name)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # Each table's header is one line, however many columns it has.
    assert any(all(c in line for c in ("bracket", "no-forecast", "stopped")) for line in lines)
    assert any(all(c in line for c in ("key", "annealer", "CV rmse")) for line in lines)
    assert any(all(c in line for c in ("bracket", "saved, at least")) for line in lines)


def test_report_says_why_a_study_has_nothing_to_report(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'other.db'}"
    multi = optuna.create_study(storage=url, study_name="multi", directions=["minimize"] * 2)
    multi.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=3)
    plain = optuna.create_study(
        storage=url, study_name="plain", pruner=optuna.pruners.HyperbandPruner()
    )

    def objective(trial: optuna.Trial) -> float:
        for step in range(1, 4):
            trial.report(trial.suggest_float("x", 0, 1) / step, step)
        return 0.0

    plain.optimize(objective, n_trials=3)
    before = (tmp_path / "other.db").stat().st_mtime_ns

    done = _cli("report", "--storage", url, "--study-name", "multi")
    _one_line_error(done, "'multi' has 2 objectives", "single-objective")
    done = _cli("report", "--storage", url, "--study-name", "plain")
    _one_line_error(done, "'plain' (3 trials) has no Swift-Hyperband records")
    done = _cli("report", "--storage", url)
    _one_line_error(done, "--study-name is needed", "multi", "plain")
    assert (tmp_path / "other.db").stat().st_mtime_ns == before


def test_report_skips_a_non_numeric_forecast_and_counts_it(sqlite_study, tmp_path) -> None:
    url, name = sqlite_study
    study = optuna.load_study(storage=url, study_name=name)
    record = next(
        v for t in study.trials for k, v in t.system_attrs.items() if k == "swift:decision:0"
    )
    study.add_trial(
        optuna.trial.create_trial(
            value=0.5,
            intermediate_values={1: 0.9, 2: 0.7},
            user_attrs={"swift:bracket": 0},
            system_attrs={"swift:decision:0": {**record, "forecast": "0.4"}},
        )
    )
    done = _cli("report", "--storage", url, "--study-name", name)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    malformed = [line for line in done.stdout.splitlines() if "malformed records" in line]
    assert malformed and malformed[0].split()[-1] == "1"


@pytest.mark.parametrize(
    ("argv", "blocked", "extra"),
    [
        (["--html", "out.html"], ("plotly",), "dashboard"),
        (["--dashboard"], ("optuna_dashboard",), "dashboard"),
    ],
)
def test_missing_optional_dependency_names_the_extra(
    sqlite_study, tmp_path, argv, blocked, extra
) -> None:
    url, name = sqlite_study
    done = _cli(
        "report", "--storage", url, "--study-name", name, *argv, blocked=blocked, cwd=tmp_path
    )
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
    assert f'pip install "optuna-qsvr[{extra}]"' in last and blocked[0] in last
    assert not (tmp_path / "out.html").exists()


def test_missing_database_driver_names_the_extra(tmp_path) -> None:
    url = "postgresql+psycopg://optuna:not-a-real-password@127.0.0.1/none"
    curves = CURVES / "mlpf_delphes_sim.csv.gz"  # minimize
    worker = ["worker", "--curves", str(curves), "--storage", url, "--study-name", "s"]
    for command in (
        ["report", "--storage", url],
        [*worker, "--direction", "minimize", "--budget", "1"],
    ):
        done = _cli(*command, blocked=("psycopg",), cwd=tmp_path)
        _one_line_error(done, 'pip install "optuna-qsvr[postgresql]"')
        assert "not-a-real-password" not in done.stderr


@pytest.mark.parametrize(
    ("scheme", "blocked", "hint"),
    [
        ("mysql", "MySQLdb", "pip install PyMySQL and write the URL as mysql+pymysql://"),
        ("mysql+pymysql", "pymysql", "pip install PyMySQL"),
    ],
)
def test_a_missing_mysql_driver_is_one_line_without_the_password(
    tmp_path, scheme, blocked, hint
) -> None:
    url = f"{scheme}://bob:S3CRETpw@127.0.0.1/none"
    curves = CURVES / "mlpf_delphes_sim.csv.gz"  # minimize
    worker = ["worker", "--curves", str(curves), "--storage", url, "--study-name", "s"]
    for command in (
        [*worker, "--direction", "minimize", "--budget", "1"],
        ["report", "--storage", url],
    ):
        done = _cli(*command, blocked=(blocked,), cwd=tmp_path)
        _one_line_error(done, f"{blocked} is not installed", hint)
        assert "S3CRETpw" not in done.stderr + done.stdout


def test_the_worker_masks_credentials_in_every_librarys_debug_log(tmp_path) -> None:
    # At --log-level DEBUG the D-Wave client logs its request parameters, token included;
    # the worker's log handler masks it (and the storage URL's password) from any logger.
    token = "DEV-0123456789abcdef0123456789abcdef01234567"
    url = f"sqlite:///{tmp_path / 'w.db'}"
    curves = CURVES / "cnn_digits.csv.gz"
    code = (
        "import logging, optuna_qsvr.benchmark as b\n"
        "made = b.make_pruner\n"
        "def make_pruner(*args, **kwargs):\n"
        "    log = logging.getLogger('dwave.cloud.client.base')\n"
        f"    log.debug('request params %s', {{'token': {token!r}}})\n"
        f"    log.debug('as text: %s', {token!r})\n"
        "    try:\n"
        f"        raise RuntimeError({token!r})\n"
        "    except RuntimeError:\n"
        "        log.exception('solver failed')\n"
        "    return made(*args, **kwargs)\n"
        "b.make_pruner = make_pruner\n"
        "from optuna_qsvr._cli import main\n"
        f"raise SystemExit(main(['worker', '--curves', {str(curves)!r}, '--storage', {url!r},"
        " '--study-name', 's', '--direction', 'maximize', '--budget', '1',"
        " '--log-level', 'DEBUG']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DWAVE_API_TOKEN": token},
    )
    assert done.returncode == 0, done.stderr
    assert "request params" in done.stderr and "solver failed" in done.stderr
    assert "Traceback" in done.stderr  # the exception's text is masked, not dropped
    assert token not in done.stderr + done.stdout
    assert done.stderr.count("***") >= 3


def test_report_creates_no_table_in_a_database_that_has_none(tmp_path) -> None:
    import sqlite3

    path = tmp_path / "mine.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    done = _cli("report", "--storage", f"sqlite:///{path}", "--study-name", "x", cwd=tmp_path)
    _one_line_error(done, f"sqlite:///{path}")
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert tables == {"notes"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--budget", "0"], "argument --budget: must be at least 1, got 0"),
        (["--budget", "-3"], "argument --budget: must be at least 1, got -3"),
        (["--budget", "5", "--max-outage", "-5"], "argument --max-outage: must be at least 0"),
        (
            ["--budget", "5", "--epoch-seconds", "nan"],
            "argument --epoch-seconds: must be at least",
        ),
        (["--budget", "5", "--reduction-factor", "1"], "argument --reduction-factor: must be at"),
        (["--budget", "5", "--log-level", "LOUD"], "argument --log-level: invalid choice: 'LOUD'"),
        (
            ["--budget", "5", "--heartbeat-interval", "5", "--grace-period", "1"],
            "--grace-period 1 must exceed --heartbeat-interval 5",
        ),
        (["--budget", "5", "--direction", "maximize"], "pass --direction minimize"),
        (["--budget", "5", "--curves", "no-such-table.csv"], "no-such-table.csv"),
    ],
)
def test_the_worker_refuses_bad_arguments_in_one_line(tmp_path, argv, message) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    curves = CURVES / "resnet_mnist.csv.gz"  # val_loss: minimize
    base = ["worker", "--curves", str(curves), "--storage", url, "--study-name", "s"]
    done = _cli(*base, "--direction", "minimize", *argv, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and message in done.stderr
    assert not (tmp_path / "w.db").exists()  # refused before the storage is opened
