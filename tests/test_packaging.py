"""The wheel is the library alone: no studies, no benchmark scripts, and the curve tables."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Imports that would tie the library to the repository's non-installed folders.
FORBIDDEN = ("studies", "benchmarks")
# A module named in a string, as for importlib.import_module in the command line's table.
_MODULE_STRING = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


@pytest.fixture(scope="module")
def wheel_members(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    # Build from a copy holding what the wheel could wrongly pick up, so the shared checkout
    # gets no build/ or egg-info churn and the sources' own tests stay out of the copy.
    source = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("optuna_qsvr", "studies", "benchmarks"):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("optuna_qsvr-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_wheel_holds_only_the_package(wheel_members: list[str]) -> None:
    strays = [
        m
        for m in wheel_members
        if not m.startswith("optuna_qsvr/") and not m.split("/")[0].endswith(".dist-info")
    ]
    assert strays == []
    assert any(m.startswith("optuna_qsvr/benchmark/") for m in wheel_members)


def test_wheel_ships_the_curve_tables(wheel_members: list[str]) -> None:
    shipped = {m for m in wheel_members if m.startswith("optuna_qsvr/benchmark/curves/")}
    expected = {
        f"optuna_qsvr/benchmark/curves/{p.name}"
        for p in (ROOT / "optuna_qsvr" / "benchmark" / "curves").glob("*.csv.gz")
    }
    recorded = {"cnn_digits", "lstm_babi17", "mlpf_delphes_sim"}
    assert {f"optuna_qsvr/benchmark/curves/{name}.csv.gz" for name in recorded} <= expected
    assert shipped == expected


def _imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            # ``from package import module`` imports the module too.
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _MODULE_STRING.match(node.value):
                names.append(node.value)
    return names


def test_library_imports_neither_studies_nor_benchmarks() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "optuna_qsvr").rglob("*.py"))
        for name in _imported_modules(path)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert offenders == []


def test_the_storage_layer_imports_no_pruner_or_predictor() -> None:
    # docs/architecture.md: the RDB storage and the fit lease it serves sit under the pruners;
    # a worker or the proxy opens them without loading the decision code.
    needs = {"_rdb.py": "optuna_qsvr._lease", "_lease.py": "optuna_qsvr._records"}
    for module, dependency in needs.items():
        names = _imported_modules(ROOT / "optuna_qsvr" / module)
        assert dependency in names, module
        above = ("optuna_qsvr.pruners", "optuna_qsvr.predictors")
        assert [n for n in names if n.startswith(above)] == [], module
