"""What the README and pyproject.toml tell a new user holds: the example runs again, the shell
blocks continue their lines, the files they name exist, the extras the command line names exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def test_readme_example_runs_again(tmp_path) -> None:
    [example] = [b for b in _blocks("python") if "SwiftHyperbandPruner(min_resource=1" in b]
    # Fewer trials than the README's 100, to keep the test short; the study is the same.
    quick = example.replace("n_trials=100", "n_trials=8")
    assert quick != example
    for run in (1, 2):
        done = subprocess.run(
            [sys.executable, "-c", quick],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"run {run}: {done.stderr}"
    import optuna

    study = optuna.load_study(storage=f"sqlite:///{tmp_path / 'example.db'}", study_name="example")
    assert len(study.trials) == 16


def test_readme_shell_lines_continue_with_one_backslash() -> None:
    lines = [line for block in _blocks("bash") for line in block.splitlines()]
    assert any(line.endswith(" \\") for line in lines)
    assert [line for line in lines if line.endswith("\\\\")] == []


def test_pyproject_names_only_files_that_exist() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    named = set(re.findall(r"[\w./-]+\.(?:md|sh|py|txt|cfg|toml)\b", text))
    assert named, "pyproject.toml names no file"
    assert sorted(name for name in named if not (ROOT / name).exists()) == []


def test_extras_named_by_the_command_line_exist() -> None:
    from optuna_qsvr._cli import INSTALL_HINTS

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    named = {
        m for hint in INSTALL_HINTS.values() for m in re.findall(r"optuna-qsvr\[(\w+)\]", hint)
    }
    assert named >= {"plots", "dashboard", "qpu", "postgresql"}
    assert named <= set(extras)
    assert any(dep.startswith("matplotlib") for dep in extras["plots"])
