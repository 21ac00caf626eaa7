"""Regenerate the README's benchmark tables and plots: one command for all of them.

    python benchmarks/readme.py                      # every table, 1 and 8 workers, 20 seeds
    python benchmarks/readme.py --methods swift-svr,swift:p33 --merge    # add or redo rows
    python benchmarks/readme.py --render-only        # tables and plots from the saved JSON

For every table (the three recorded ones, then every other bundled table, which is held out)
and every worker count, it runs the ``optuna-qsvr benchmark`` replay (same seeds, trials,
reduction factor and epoch times as the command's defaults: 150 trials, eta 3, per-
configuration epoch times) and writes into ``docs/benchmark/``:

* ``<table>-w<W>.json``: the command's ``--json`` output (per-seed lists and figures);
* ``<table>-w<W>-anytime.png``: median best final value against epochs;
* ``pareto-recorded.png``, ``pareto-held-out.png``: the Pareto plots, one panel per table and
  worker count;
* ``tables.md``: the markdown the README shows, which is also spliced into ``README.md``
  between the ``<!-- benchmark:... -->`` markers.

``--merge`` keeps the methods of the existing JSON that this run does not redo (the settings
must match), so rows can be regenerated method by method; figures and the "dominated by"
column are always recomputed over all rows together.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from fewer_trials import fewer_trials_regrets

from optuna_qsvr.benchmark import (
    METHODS,
    CurveTable,
    bootstrap,
    bundled_tables,
    dominated_by,
    from_json,
    infer_direction,
    method_figures,
    pareto_axes,
    plot_anytime,
    run_benchmark,
    to_json,
    worst_regret,
)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmark"
README = ROOT / "README.md"
# The tables defaults and options were measured on; every other bundled table is held out.
RECORDED = {"cnn_digits": "maximize", "lstm_babi17": "maximize", "mlpf_delphes_sim": "minimize"}
# Directions of held-out tables whose files do not name their metric.
HELD_OUT_DIRECTIONS = {"transformer_sort": "maximize", "resnet_mnist": "minimize"}
# swift-qsvr is measured apart with fewer seeds (README, "Q-SVR in the same rule"): its annealed
# fits would make this command take most of a day on two cores.
DEFAULT_METHODS = [*(m for m in METHODS if m != "swift-qsvr"), "swift:reference", "swift:p33"]
SWIFT = re.compile(r"swift[-:]")
CAPTION = (
    "Mean regret against mean epochs, with 95% intervals on both; hollow markers are dominated "
    "methods, the dotted line the front of the means. Anytime plots (median best value against "
    "epochs): `docs/benchmark/<table>-w<W>-anytime.png`."
)
SETTINGS = ("trials_per_study", "n_workers", "reduction_factor", "sampler", "epoch_time", "budget")


def _tables() -> dict[str, tuple[Path, str, bool]]:
    """Name -> (path, direction, held out), recorded tables first."""
    out: dict[str, tuple[Path, str, bool]] = {}
    bundled = bundled_tables()
    for name, direction in RECORDED.items():
        out[name] = (bundled[name], direction, False)
    for name, path in bundled.items():
        if name in RECORDED:
            continue
        direction = HELD_OUT_DIRECTIONS.get(name) or infer_direction(CurveTable.load(path).metric)
        if direction is None:
            raise SystemExit(f"{name}: add its direction to HELD_OUT_DIRECTIONS in {__file__}")
        out[name] = (path, direction, True)
    return out


def _run(args: argparse.Namespace, name: str, path: Path, direction: str, workers: int) -> None:
    table = CurveTable.load(path)
    target = OUT / f"{name}-w{workers}.json"
    began = time.perf_counter()
    results = run_benchmark(
        table,
        args.methods,
        range(args.seeds),
        direction=direction,
        n_workers=workers,
        processes=args.processes,
        progress=sys.stderr.isatty(),
    )
    options = {
        "direction": direction,
        "n_workers": workers,
        "reduction_factor": 3,
        "swift_options": None,
        "trials_per_study": min(150, len(table)),
        "sampler": "random",
        "epoch_time": "auto",
        "time_unit": "s" if table.has_times else "epoch units",
        "budget": None,
    }
    report = to_json(results, table, options)
    if args.merge and target.exists():
        old = json.loads(target.read_text())
        for method, entry in old.items():
            if method in report:
                continue
            mismatch = [k for k in SETTINGS if entry.get(k) != options[k]]
            if mismatch or entry.get("seeds") != list(range(args.seeds)):
                raise SystemExit(f"{target}: {method} ran with other settings {mismatch}")
            report[method] = entry
        # Recompute figures and dominance over all rows, in the usual method order.
        merged = from_json(report)
        report = to_json({m: merged[m] for m in sorted(merged, key=_order)}, table, options)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, target)
    print(f"{name}, {workers} worker(s): {time.perf_counter() - began:.0f} s -> {target}")


def _order(method: str) -> tuple[int, str]:
    names = [*DEFAULT_METHODS]
    return (names.index(method) if method in names else len(names), method)


def _load(name: str, workers: int) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    report = json.loads((OUT / f"{name}-w{workers}.json").read_text())
    results = from_json(report)
    return report, {m: results[m] for m in sorted(results, key=_order)}


# A figure that does not exist: fewer trials with 8 workers.
_NONE = {"value": None, "low": None, "high": None}


def _vs_fewer(entry: dict[str, Any], table: CurveTable) -> dict[str, Any]:
    """The regret minus that of fewer trials with the same epochs, as the command computes it
    (``vs_fewer``), also for runs saved before the command did: recomputed from their seeds,
    epochs and regrets (1 worker and the seeded permutation only)."""
    figure = entry["figures"].get("vs_fewer") or _NONE
    if figure["value"] is not None or entry["n_workers"] != 1 or entry["sampler"] != "random":
        return figure
    worst = entry["table_worst_regret"]
    rival = fewer_trials_regrets(
        table, entry["direction"], entry["seeds"], entry["epochs"], entry["trials_per_study"]
    )
    differences = [
        (worst if regret is None else regret) - other
        for regret, other in zip(entry["regret"], rival, strict=True)
    ]
    estimate = bootstrap(differences)
    return {"value": estimate.value, "low": estimate.low, "high": estimate.high}


def _cell(f: dict[str, Any], kind: str = "num") -> str:
    value, low, high = f["value"], f["low"], f["high"]
    if value is None:
        return "–"
    if kind == "pct":
        text, interval = f"{100 * value:.0f}%", f"{100 * low:.0f}–{100 * high:.0f}"
    elif kind == "ratio":
        text, interval = f"{value:.2f}", f"{low:.2f}–{high:.2f}"
    else:
        fmt = "{:.0f}" if abs(value) >= 100 else "{:.3g}"
        text, interval = fmt.format(value), f"{fmt.format(low)}–{fmt.format(high)}"
    return text if low == high else f"{text} [{interval}]"


def _markdown(names: list[str], tables: dict[str, tuple[Path, str, bool]]) -> str:
    lines = [
        "| table | W | method | epochs | × Hyperband | makespan | regret, mean | regret, "
        "median | minus fewer trials' | P(best) | P(top 1%) | dominated by |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for name in names:
        for workers in (1, 8):
            if not (OUT / f"{name}-w{workers}.json").exists():
                continue
            report, _ = _load(name, workers)
            table = CurveTable.load(tables[name][0])
            for method in sorted(report, key=_order):
                entry = report[method]
                f = entry["figures"]
                dominators = ", ".join(entry["dominated_by"]) or "–"
                unit = " s" if entry.get("time_unit") == "s" else ""
                lines.append(
                    f"| {name} | {workers} | {method} | {_cell(f['epochs'])} | "
                    f"{_cell(f['ratio'], 'ratio')} | {_cell(f['makespan'])}{unit} | "
                    f"{_cell(f['regret_mean'])} | {_cell(f['regret_median'])} | "
                    f"{_cell(_vs_fewer(entry, table))} | "
                    f"{_cell(f['p_best'], 'pct')} | {_cell(f['p_top1'], 'pct')} | {dominators} |"
                )
                if SWIFT.match(method):
                    verdict = (
                        f"dominated by {dominators}" if entry["dominated_by"] else "not dominated"
                    )
                    verdicts.append(f"- {name}, {workers} worker(s), `{method}`: {verdict}.")
    if verdicts:
        lines += ["", "Where Swift-Hyperband stands (generated from the rows above):", ""]
        lines += verdicts
    else:
        lines += ["", "No Swift-Hyperband rows in this run yet."]
    return "\n".join(lines)


def _default_summary(names: list[str], held_out: set[str]) -> str:
    """The default (``swift-svr``) against Optuna's pruners, one line per table and worker
    count: the README's "The default rule, measured" table."""
    lines = [
        "| table | W | forecast mode: × Hyperband | its mean regret | Hyperband's | "
        "MedianPruner's (× Hyperband) | PercentilePruner's (× Hyperband) | P(best): forecast "
        "mode / Hyperband | dominated by |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        for workers in (1, 8):
            if not (OUT / f"{name}-w{workers}.json").exists():
                continue
            report, _ = _load(name, workers)
            if "swift-svr" not in report or "hyperband" not in report:
                continue
            f = {m: e["figures"] for m, e in report.items()}
            swift, hb = f["swift-svr"], f["hyperband"]

            def other(method: str, f: dict[str, Any] = f) -> str:
                if method not in f:
                    return "–"
                g = f[method]
                return f"{_cell(g['regret_mean'])} ({g['ratio']['value']:.2f}×)"

            label = f"{name} (held out)" if name in held_out else name
            dominators = ", ".join(report["swift-svr"]["dominated_by"]) or "–"
            lines.append(
                f"| {label} | {workers} | {_cell(swift['ratio'], 'ratio')} | "
                f"{_cell(swift['regret_mean'])} | {_cell(hb['regret_mean'])} | "
                f"{other('median')} | {other('percentile')} | "
                f"{_cell(swift['p_best'], 'pct')} / {_cell(hb['p_best'], 'pct')} | {dominators} |"
            )
    return "\n".join(lines)


def _pareto(names: list[str], tables: dict[str, tuple[Path, str, bool]], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(n, w) for n in names for w in (1, 8) if (OUT / f"{n}-w{w}.json").exists()]
    if not panels:
        return False
    rows = (len(panels) + 1) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(13, 4.6 * rows), squeeze=False)
    for ax, (name, workers) in zip(axes.flat, panels, strict=False):
        _, results = _load(name, workers)
        table_path, direction, _ = tables[name]
        figures = method_figures(results, worst_regret(CurveTable.load(table_path), direction))
        title = f"{name}, {workers} worker(s), {len(next(iter(results.values())))} seeds"
        pareto_axes(ax, figures, dominated_by(figures), title, legend=False)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _render(tables: dict[str, tuple[Path, str, bool]]) -> str:
    recorded = [n for n, (_, _, held) in tables.items() if not held]
    held_out = [n for n, (_, _, held) in tables.items() if held]
    for name, (path, direction, _) in tables.items():
        for workers in (1, 8):
            if (OUT / f"{name}-w{workers}.json").exists():
                _, results = _load(name, workers)
                table = CurveTable.load(path)
                plot_anytime(
                    results, table, direction, str(OUT / f"{name}-w{workers}-anytime.png")
                )
    blocks = {"recorded": _markdown(recorded, tables)}
    if _pareto(recorded, tables, OUT / "pareto-recorded.png"):
        blocks["recorded"] += f"\n\n{CAPTION}\n\n![Pareto plots, recorded tables]"
        blocks["recorded"] += "(docs/benchmark/pareto-recorded.png)"
    if held_out:
        blocks["held-out"] = _markdown(held_out, tables)
        if _pareto(held_out, tables, OUT / "pareto-held-out.png"):
            blocks["held-out"] += f"\n\n{CAPTION}\n\n![Pareto plots, held-out tables]"
            blocks["held-out"] += "(docs/benchmark/pareto-held-out.png)"
    else:
        blocks["held-out"] = "No held-out table ships yet."
    blocks["default"] = _default_summary([*recorded, *held_out], set(held_out))
    text = "\n\n".join(f"<!-- {k} -->\n{v}" for k, v in blocks.items())
    (OUT / "tables.md").write_text(text + "\n")
    _splice(blocks)
    return text


def _splice(blocks: dict[str, str]) -> None:
    readme = README.read_text()
    for key, block in blocks.items():
        start, end = f"<!-- benchmark:{key}:start -->", f"<!-- benchmark:{key}:end -->"
        if start not in readme or end not in readme:
            print(f"README.md has no {start} marker; {OUT / 'tables.md'} holds the block")
            continue
        head, rest = readme.split(start, 1)
        _, tail = rest.split(end, 1)
        readme = f"{head}{start}\n{block}\n{end}{tail}"
    README.write_text(readme)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--tables", default=None, help="comma-separated; default every table")
    parser.add_argument("--workers", default="1,8")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--processes", type=int, default=None)
    parser.add_argument("--merge", action="store_true", help="keep rows this run does not redo")
    parser.add_argument("--render-only", action="store_true", help="no replay: JSON to README")
    args = parser.parse_args()
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    tables = _tables()
    chosen = args.tables.split(",") if args.tables else list(tables)
    OUT.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    if not args.render_only:
        for name in chosen:
            path, direction, _ = tables[name]
            for workers in (int(w) for w in args.workers.split(",")):
                _run(args, name, path, direction, workers)
    _render(tables)
    print(f"done in {time.perf_counter() - began:.0f} s; wrote {OUT / 'tables.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
