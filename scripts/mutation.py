"""The whole mutation run, target by target, each against its own tests.

mutmut 3 takes one test selection for every mutated file, so a mutant in the predictors would
run the pruner's replays too, and one run of every target costs over an hour on two cores. This
runs mutmut once per group below, each in its own copy of the working tree (``.mutation/<group>``,
git-ignored) with ``[tool.mutmut]`` narrowed to the group's files and tests, then prints the
score per module and writes the counts and the survivors to a JSON file.

    .venv/bin/python scripts/mutation.py                  # every group, fresh copies
    .venv/bin/python scripts/mutation.py --groups predictors --keep   # resume one group
    .venv/bin/python scripts/mutation.py --report-only    # re-read the verdicts on disk

Needs Python 3.11+ (``tomllib``). ``[tool.mutmut]`` in ``pyproject.toml`` stays the single-run
configuration (``mutmut run`` over the union of the groups); its options other than
``only_mutate`` and the test selection apply here too. docs/mutation-survivors.md explains
each survivor.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import tomllib
from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parent.parent

# Tests that start processes or replay whole studies on SQLite are out of every group: the
# process ones cannot see a forked mutant cheaply, and what they check of these files the
# in-memory and thread variants check too.
_NO_PROCESSES = (
    "not processes and not killed and not fresh_process and not n_jobs and not real_storage"
    " and not in_chunks and not sqlite_studies"
)

GROUPS: dict[str, dict[str, list[str]]] = {
    "records": {
        "mutate": [
            "optuna_qsvr/_records.py",
            "optuna_qsvr/pruners/_curves.py",
            "optuna_qsvr/pruners/_schedule.py",
        ],
        "tests": [
            "tests/test_records.py",
            "tests/predictors_tests/test_model_records.py",
            "tests/pruners_tests/test_schedule.py",
            "tests/pruners_tests/test_schedule_properties.py",
            "tests/pruners_tests/test_decisions.py",
            "tests/pruners_tests/test_against_optuna.py",
            "tests/pruners_tests/test_forecast_mode.py",
            "tests/pruners_tests/test_model_store_concurrency.py",
            "-m",
            "not postgresql",
            "-k",
            _NO_PROCESSES + " and not sqlite and not journal",
        ],
    },
    "decisions": {
        "mutate": [
            "optuna_qsvr/pruners/_rules.py",
            "optuna_qsvr/pruners/_options.py",
            "optuna_qsvr/pruners/_decisions.py",
        ],
        "tests": [
            "tests/pruners_tests/test_rules.py",
            "tests/pruners_tests/test_rule_properties.py",
            "tests/pruners_tests/test_option_effects.py",
            "tests/pruners_tests/test_decisions.py",
            "tests/pruners_tests/test_forecast_mode.py",
            "tests/pruners_tests/test_swift_hyperband.py::test_invalid_arguments_name_the_value",
            # min_rank_persistence: its checks, and False read as no regimes.
            "tests/pruners_tests/test_regimes.py",
            # The decisions read the trial index when the pruner passes one.
            "tests/pruners_tests/test_trial_index.py",
            # The second look's record and its option.
            "tests/pruners_tests/test_second_look.py",
            "-k",
            "not replays and not sqlite_studies",
        ],
    },
    "crowd": {
        "mutate": ["optuna_qsvr/pruners/_crowd.py"],
        "tests": [
            "tests/pruners_tests/test_second_look.py",
            "tests/pruners_tests/test_trial_index.py",
            "-k",
            "not replays and not sqlite_studies",
        ],
    },
    "trial_index": {
        "mutate": ["optuna_qsvr/pruners/_trial_index.py"],
        "tests": [
            "tests/pruners_tests/test_trial_index.py",
            "tests/pruners_tests/test_second_look.py",
            "tests/pruners_tests/test_decisions.py",
            "-k",
            "not replays and not sqlite_studies",
        ],
    },
    "pruner": {
        "mutate": [
            "optuna_qsvr/pruners/_swift_hyperband.py",
            "optuna_qsvr/pruners/_persistence.py",
            "optuna_qsvr/pruners/__init__.py",
        ],
        "tests": [
            "tests/pruners_tests/test_swift_hyperband.py",
            "tests/pruners_tests/test_regimes.py",
            "tests/pruners_tests/test_forecast_mode.py",
            "tests/pruners_tests/test_option_effects.py",
            "tests/pruners_tests/test_pruner_properties.py",
            "tests/pruners_tests/test_trial_index.py",
            "tests/pruners_tests/test_against_optuna.py",
            "tests/pruners_tests/test_pruner_contract.py",
            "tests/pruners_tests/test_second_look.py",
            "-m",
            "not postgresql",
            "-k",
            _NO_PROCESSES + " and not sqlite and not journal",
        ],
    },
    "model_store": {
        "mutate": ["optuna_qsvr/pruners/_model_store.py", "optuna_qsvr/_lease.py"],
        "tests": [
            "tests/pruners_tests/test_model_store.py",
            "tests/pruners_tests/test_model_store_concurrency.py",
            "tests/pruners_tests/test_pruner_contract.py",
            "tests/pruners_tests/test_swift_hyperband.py",
            # The RDB storage claims what a worker behind the gRPC proxy requests.
            "tests/test_rdb.py::test_a_claim_request_is_claimed_not_overwritten",
            "-m",
            "not postgresql",
            "-k",
            # The lease's SQLite variants stay: they run the atomic claim of RDB storages.
            _NO_PROCESSES + " and not (swift_hyperband and (sqlite or journal))",
        ],
    },
    "predictors": {
        "mutate": ["optuna_qsvr/predictors/*"],
        "tests": ["tests/predictors_tests"],
    },
}

# Verdicts that count as a kill: a test failed, or the change made a test loop past its limit.
_KILLED = {"killed", "timeout"}


def _tree_files() -> list[str]:
    """The working tree as git sees it (tracked, and untracked but not ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    return [p for p in out.decode().split("\0") if p and (ROOT / p).is_file()]


def _toml_list(values: list[str]) -> str:
    # A JSON string is a valid TOML basic string.
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def _config_for(group: dict[str, list[str]], pyproject: str) -> str:
    """``pyproject.toml`` with ``[tool.mutmut]`` narrowed to one group."""
    base = tomllib.loads(pyproject)["tool"]["mutmut"]
    lines = ["[tool.mutmut]"]
    for key, value in base.items():
        if key == "only_mutate":
            value = group["mutate"]
        elif key == "pytest_add_cli_args_test_selection":
            value = group["tests"]
        text = _toml_list(value) if isinstance(value, list) else json.dumps(value)
        lines.append(f"{key} = {text}")
    section = re.compile(r"^\[tool\.mutmut\]\n(?:(?!^\[).*\n?)*", re.MULTILINE)
    if not section.search(pyproject):
        raise SystemExit("pyproject.toml has no [tool.mutmut] section")
    # A function, so that the backslashes of the patterns are not read as group references.
    text = "\n".join(lines) + "\n\n"
    return section.sub(lambda _: text, pyproject, count=1)


def _prepare(name: str, workdir: Path, keep: bool) -> Path:
    dest = workdir / name
    if dest.exists() and not keep:
        shutil.rmtree(dest)
    for rel in _tree_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        # Keeping mtimes lets a resumed run see unchanged sources as unchanged.
        shutil.copy2(ROOT / rel, target)
    pyproject = (ROOT / "pyproject.toml").read_text()
    (dest / "pyproject.toml").write_text(_config_for(GROUPS[name], pyproject))
    return dest


def _run(dest: Path, max_children: int) -> dict[str, float]:
    mutmut = Path(sys.executable).with_name("mutmut")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(dest / "mutmut.log", "w") as log:
        proc = subprocess.run(
            ["nice", "-n", "19", str(mutmut), "run", "--max-children", str(max_children)],
            cwd=dest,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(
            f"mutmut run failed in {dest} (exit code {proc.returncode}); see {dest / 'mutmut.log'}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}


def _verdicts(dest: Path) -> dict[str, dict[str, str]]:
    """Per mutated module, each mutant's verdict as mutmut names it."""
    out: dict[str, dict[str, str]] = {}
    for meta in sorted((dest / "mutants").rglob("*.py.meta")):
        module = meta.relative_to(dest / "mutants").as_posix().removesuffix(".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if codes:
            out[module] = {key: status_by_exit_code[code] for key, code in codes.items()}
    return out


def _row(label: str, verdicts: dict[str, str]) -> str:
    counts = Counter(verdicts.values())
    total = len(verdicts)
    run = total - counts["not checked"]
    killed = sum(counts[s] for s in _KILLED)
    score = f"{100 * killed / run:.1f} %" if run else "-"
    return (
        f"| {label} | {total} | {run} | {counts['killed']} | {counts['timeout']} "
        f"| {run - killed} | {score} |"
    )


def _package(module: str) -> str:
    parts = module.split("/")
    return parts[1] + "/" if len(parts) > 2 else parts[-1]


def report(results: dict[str, dict]) -> str:
    by_module: dict[str, dict[str, str]] = {}
    for group in results.values():
        by_module.update(group["verdicts"])
    lines = [
        "| mutated code | mutants | run | killed | timed out | not killed | killed of run |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    packages: dict[str, dict[str, str]] = {}
    for module in sorted(by_module):
        lines.append(_row(f"`{module}`", by_module[module]))
        packages.setdefault(_package(module), {}).update(by_module[module])
    for package in sorted(packages):
        lines.append(_row(f"**{package}**", packages[package]))
    lines.append(_row("**all**", {k: v for p in packages.values() for k, v in p.items()}))
    timing = [
        f"- {name}: {g['time']['wall_s']:.0f} s wall, {g['time']['cpu_s']:.0f} CPU-s"
        for name, g in results.items()
        if g.get("time")
    ]
    if timing:
        wall = sum(g["time"]["wall_s"] for g in results.values() if g.get("time"))
        timing.append(f"- total: {wall / 60:.1f} min wall")
    return "\n".join([*lines, "", *timing])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", nargs="+", choices=list(GROUPS), default=list(GROUPS))
    parser.add_argument("--workdir", type=Path, default=ROOT / ".mutation")
    parser.add_argument("--json", type=Path, default=None, help="write verdicts and times here")
    parser.add_argument("--keep", action="store_true", help="resume from the verdicts on disk")
    parser.add_argument("--report-only", action="store_true", help="run nothing, report")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--min-score",
        type=float,
        default=90.0,
        help="exit 1 when a module's killed share of its run mutants is below this (percent)",
    )
    args = parser.parse_args(argv)

    results: dict[str, dict] = {}
    for name in args.groups:
        dest = args.workdir / name
        entry: dict = {"mutate": GROUPS[name]["mutate"], "tests": GROUPS[name]["tests"]}
        if not args.report_only:
            dest = _prepare(name, args.workdir, args.keep)
            print(f"== {name}: mutmut run in {dest}", flush=True)
            entry["time"] = _run(dest, args.max_children)
            print(f"   {entry['time']['wall_s']:.0f} s", flush=True)
        entry["verdicts"] = _verdicts(dest) if dest.exists() else {}
        entry["survivors"] = sorted(
            key
            for verdicts in entry["verdicts"].values()
            for key, status in verdicts.items()
            if status not in _KILLED | {"not checked"}
        )
        results[name] = entry
    print(report(results))
    if args.json:
        # Counts per module and the survivors' names: the verdicts of the killed stay on disk.
        summary = {
            name: {
                **{k: v for k, v in group.items() if k != "verdicts"},
                "counts": {m: dict(Counter(v.values())) for m, v in group["verdicts"].items()},
            }
            for name, group in results.items()
        }
        args.json.write_text(json.dumps(summary, indent=1) + "\n")

    low = []
    for name, group in results.items():
        for module, verdicts in group["verdicts"].items():
            run = [s for s in verdicts.values() if s != "not checked"]
            if run and 100 * sum(s in _KILLED for s in run) / len(run) < args.min_score:
                low.append(f"{module} ({name})")
    if low:
        print("below --min-score:", ", ".join(low), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
