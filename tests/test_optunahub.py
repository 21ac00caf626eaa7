"""The OptunaHub packages under optunahub/: the registry's layout and front matter, loaded with
optunahub.load_local_module as the registry loads them, a real study on SQLite, and each
package's example.py run as a script."""

from __future__ import annotations

import ast
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import frontmatter
import optuna
import optunahub
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import optuna_qsvr
from optuna_qsvr.report import trial_records

ROOT = Path(__file__).resolve().parents[1]
REGISTRY_ROOT = ROOT / "optunahub"
# package (as optunahub names it), the class it exports, the tag its category requires
PACKAGES = [
    ("pruners/swift_hyperband", "SwiftHyperbandPruner", "pruner"),
    ("samplers/swift_sampler", "SwiftSampler", "sampler"),
]
FILES = {"__init__.py", "README.md", "LICENSE", "example.py", "requirements.txt"}


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_registry_holds_exactly_these_packages() -> None:
    found = {str(p.parent.relative_to(REGISTRY_ROOT)) for p in REGISTRY_ROOT.glob("*/*/README.md")}
    assert found == {package for package, _, _ in PACKAGES}


@pytest.mark.parametrize(("package", "name", "tag"), PACKAGES)
def test_package_has_the_registry_layout(package: str, name: str, tag: str) -> None:
    folder = REGISTRY_ROOT / package
    files = {p.name for p in folder.iterdir() if p.name != "__pycache__"}
    assert files == FILES
    assert re.fullmatch(r"[a-z][a-z0-9_]*", folder.name)


@pytest.mark.parametrize(("package", "name", "tag"), PACKAGES)
def test_front_matter_passes_the_registry_check(package: str, name: str, tag: str) -> None:
    # The registry's check (optunahub-registry/header_confirm.py) reads the front matter with
    # python-frontmatter and wants these six fields, none empty.
    post = frontmatter.load(REGISTRY_ROOT / package / "README.md")
    fields = ("author", "title", "description", "tags", "optuna_versions", "license")
    assert {f: post.get(f) not in (None, "", []) for f in fields} == dict.fromkeys(fields, True)
    assert all(isinstance(post[f], str) for f in ("author", "title", "description", "license"))
    assert isinstance(post["tags"], list) and tag in post["tags"]
    assert len(post["description"]) <= 300
    # Versions of Optuna the package was confirmed with, within what the project supports.
    [optuna_req] = [
        Requirement(d) for d in _pyproject()["project"]["dependencies"] if d.startswith("optuna")
    ]
    versions = [Version(str(v)) for v in post["optuna_versions"]]
    assert versions and all(v in optuna_req.specifier for v in versions)
    # The registry strips HTML tags from READMEs: none may be needed to read this one.
    assert "<" not in post.content and ">" not in post.content.replace("->", "")
    assert name in post.content


@pytest.mark.parametrize(("package", "name", "tag"), PACKAGES)
def test_license_is_the_projects(package: str, name: str, tag: str) -> None:
    post = frontmatter.load(REGISTRY_ROOT / package / "README.md")
    text = (REGISTRY_ROOT / package / "LICENSE").read_text(encoding="utf-8")
    assert _pyproject()["project"]["license"] == "MIT"
    assert post["license"] == "MIT License"
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text


@pytest.mark.parametrize(("package", "name", "tag"), PACKAGES)
def test_package_imports_optuna_qsvr_instead_of_copying_it(
    package: str, name: str, tag: str
) -> None:
    folder = REGISTRY_ROOT / package
    tree = ast.parse((folder / "__init__.py").read_text(encoding="utf-8"))
    imports = [n for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert [(n.module, [a.name for a in n.names]) for n in imports] == [("optuna_qsvr", [name])]
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    assert sorted(p.name for p in folder.glob("*.py")) == ["__init__.py", "example.py"]
    # Its one dependency is this project, by the name it is published under.
    requirements = (folder / "requirements.txt").read_text(encoding="utf-8").split()
    assert [Requirement(r).name for r in requirements] == [_pyproject()["project"]["name"]]


@pytest.mark.parametrize(("package", "name", "tag"), PACKAGES)
def test_load_local_module_gives_the_projects_class(package: str, name: str, tag: str) -> None:
    module = optunahub.load_local_module(package=package, registry_root=str(REGISTRY_ROOT))
    assert module.__name__ == "optunahub_registry.package." + package.replace("/", ".")
    assert module.__all__ == [name]
    assert getattr(module, name) is getattr(optuna_qsvr, name)


def test_loaded_packages_run_a_study_on_sqlite(tmp_path: Path) -> None:
    pruners = optunahub.load_local_module(
        package="pruners/swift_hyperband", registry_root=str(REGISTRY_ROOT)
    )
    samplers = optunahub.load_local_module(
        package="samplers/swift_sampler", registry_root=str(REGISTRY_ROOT)
    )

    def objective(trial: optuna.Trial) -> float:
        rate = trial.suggest_float("rate", 1e-3, 1.0, log=True)
        loss = 1.0
        for epoch in range(1, 28):
            loss = 0.1 + math.exp(-rate * epoch)
            trial.report(loss, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return loss

    storage = f"sqlite:///{tmp_path / 'hub.db'}"
    study = optuna.create_study(
        storage=storage,
        study_name="hub",
        sampler=samplers.SwiftSampler(optuna.samplers.TPESampler(seed=0)),
        pruner=pruners.SwiftHyperbandPruner(min_resource=1, max_resource=27),
    )
    study.optimize(objective, n_trials=24)

    study = optuna.load_study(storage=storage, study_name="hub")
    records = trial_records(study)
    states = [r["state"] for r in records]
    assert len(records) == 24 and "COMPLETE" in states and "PRUNED" in states
    # Every trial carries its bracket, and every pruned one the record of why, at its last step.
    assert all(r["bracket"] is not None for r in records)
    for r in records:
        if r["state"] == "PRUNED":
            assert _pruned_by_record(r), r
    # The sampler showed TPE one bracket's trials at a time: it sampled every trial.
    assert all("rate" in t.params for t in study.trials)


def _pruned_by_record(record: dict) -> bool:
    """Whether a pruned trial's records say the pruner stopped it at its last step."""
    stops = [d for d in record["decisions"].values() if d["decision"] == "pruned"]
    stops += [p for p in record["promotions"].values() if p["decision"] == "stopped"]
    return [s["step"] for s in stops] == [record["epochs"]]


@pytest.mark.parametrize(("package", "name", "tag"), PACKAGES)
def test_example_runs_as_a_script(package: str, name: str, tag: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REGISTRY_ROOT / package / "example.py")],
        cwd=tmp_path,  # it finds the registry from its own path, not from the working directory
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    pruned, total = map(int, re.search(r"pruned (\d+) of (\d+) trials", done.stdout).groups())
    assert total == 60 and 0 < pruned < total
    best = float(re.search(r"best accuracy ([\d.]+)", done.stdout).group(1))
    assert best > 0.8  # a linear classifier of the digits, far above chance (0.1)
    if package.startswith("pruners/"):
        # It prints the records of every pruned trial: the forecasts it was kept on, then the
        # decision that stopped it.
        stops = re.findall(
            r"^trial \d+: (?:kept at [^;\n]*; )*(?:pruned|stopped) at \d+[^;\n]*$",
            done.stdout,
            re.M,
        )
        assert len(stops) == pruned
    assert list(tmp_path.iterdir()) == []  # in-memory: nothing written where it ran


def test_readme_local_line_loads_the_package() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", readme, flags=re.S | re.M)
    [line] = [b for b in blocks if "load_local_module" in b]
    check = (
        "import optuna_qsvr\n"
        "assert module.SwiftHyperbandPruner is optuna_qsvr.SwiftHyperbandPruner\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", f"import optunahub\n{line}{check}"],
        cwd=ROOT,  # the README's registry_root is relative to a clone's root
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
