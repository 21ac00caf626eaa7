"""``scripts/mutation.py``: its groups cover every file the mutation score is claimed for,
once, and the configuration it writes for a group is ``pyproject.toml``'s, narrowed."""

from __future__ import annotations

import fnmatch
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib")  # Python 3.11+, as the script


def _script():
    spec = importlib.util.spec_from_file_location("mutation", ROOT / "scripts" / "mutation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_target_file_is_in_exactly_one_group() -> None:
    groups = _script().GROUPS
    targets = [
        p.relative_to(ROOT).as_posix()
        for p in [
            ROOT / "optuna_qsvr" / "_records.py",
            ROOT / "optuna_qsvr" / "_lease.py",
            *(ROOT / "optuna_qsvr" / "pruners").glob("*.py"),
            *(ROOT / "optuna_qsvr" / "predictors").glob("*.py"),
        ]
    ]
    for path in targets:
        owners = [
            name
            for name, group in groups.items()
            if any(fnmatch.fnmatch(path, pattern) for pattern in group["mutate"])
        ]
        assert len(owners) == 1, (path, owners)


def test_every_selected_test_file_exists() -> None:
    for name, group in _script().GROUPS.items():
        for arg in group["tests"]:
            if arg.startswith("tests/"):
                assert (ROOT / arg.split("::")[0]).exists(), (name, arg)


def test_a_groups_configuration_is_the_projects_narrowed_to_it() -> None:
    script = _script()
    pyproject = (ROOT / "pyproject.toml").read_text()
    base = tomllib.loads(pyproject)
    group = script.GROUPS["predictors"]
    narrowed = tomllib.loads(script._config_for(group, pyproject))
    mutmut = narrowed["tool"]["mutmut"]
    assert mutmut["only_mutate"] == group["mutate"]
    assert mutmut["pytest_add_cli_args_test_selection"] == group["tests"]
    # The other options as they are, backslashes of the patterns included.
    for key, value in base["tool"]["mutmut"].items():
        if key not in ("only_mutate", "pytest_add_cli_args_test_selection"):
            assert mutmut[key] == value, key
    assert {k: v for k, v in narrowed.items() if k != "tool"} == {
        k: v for k, v in base.items() if k != "tool"
    }
    assert set(narrowed["tool"]) == set(base["tool"])
