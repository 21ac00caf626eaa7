"""Every ``.. code-block:: python`` example in a public docstring runs, as Optuna's do."""

from __future__ import annotations

import importlib
import inspect
import textwrap

import pytest

MODULES = (
    "optuna_qsvr",
    "optuna_qsvr.pruners",
    "optuna_qsvr.predictors",
    "optuna_qsvr.samplers",
    "optuna_qsvr.report",
    "optuna_qsvr.benchmark",
)


def _blocks(doc: str) -> list[str]:
    """The code blocks of a docstring: the indented lines after ``.. code-block:: python``."""
    lines = inspect.cleandoc(doc).splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.strip() != ".. code-block:: python":
            continue
        indent = len(line) - len(line.lstrip())
        body = []
        for following in lines[i + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        out.append(textwrap.dedent("\n".join(body)))
    return out


def _examples() -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for i, code in enumerate(_blocks(module.__doc__ or "")):
            found[f"{module_name}[{i}]"] = code
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            targets = [obj]
            if inspect.isclass(obj):
                targets += [m for _, m in inspect.getmembers(obj) if inspect.isfunction(m)]
            for target in targets:
                doc = getattr(target, "__doc__", None) or ""
                qualname = getattr(target, "__qualname__", name)
                for i, code in enumerate(_blocks(doc)):
                    found.setdefault(f"{target.__module__}.{qualname}[{i}]", code)
    return sorted(found.items())


EXAMPLES = _examples()


def test_public_classes_have_examples() -> None:
    names = " ".join(name for name, _ in EXAMPLES)
    for public in ("SwiftHyperbandPruner", "SwiftSampler", "SVRPredictor", "QSVR"):
        assert f".{public}[" in names, f"{public} has no runnable example"


@pytest.mark.parametrize(("name", "code"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_docstring_example_runs(name, code, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples may write a SQLite file
    exec(compile(code, name, "exec"), {"__name__": "__example__"})
