"""Where a method spends its epochs: by regime and by outcome, against Hyperband's.

    python benchmarks/where_spent.py                 # swift-svr, 1 worker, 20 seeds, every table
    python benchmarks/where_spent.py --workers 8 --tables cnn_digits,mlpf_delphes_sim

For every bundled table and seed, the benchmark's replay (the seeded permutation, 150 trials,
eta 3, the table's epoch times) runs Optuna's ``HyperbandPruner``, the method and the hindsight
oracle. The method's epochs are split four ways, by the regime its trials ran in (the forecast
mode's ``swift:regime``: "hyperband" while the study's rank persistence is unmeasured or low,
else "forecast") and by whether they trained to the end. Each part is a share of the same seed's
Hyperband epochs, averaged over the seeds, so the parts add up to the benchmark's "× Hyperband".
Of the forecast regime's stopped trials, the share stopped at or after the last rung end (27 for
these tables' 50 epochs) is shown again on its own: each of those trained at least 27 epochs.
Beside them: how many trials each part holds, how many trials Hyperband and the oracle finish,
and what the finished trials alone cost (their count times the last epoch). That last figure
is a floor no stopping rule goes under without finishing fewer trials. Of the forecast regime's
finished trials, the share that improved on the best final value of the trials numbered
before them: the oracle finishes only those.

After that table, a second one: the forecast regime's trials at the last cut (the last rung
end, 27), per study: how many reached it, how many successive halving promoted (its top
``1/eta`` among the study's values there), how many a rule kept that it would stop (the
rescue's forecast, MedianPruner's rule while no final-value model exists, the second look),
how many were stopped, and of the promoted and kept, how many then finished.

The last column is a bound for any rule that keeps the Hyperband regime: the same trials as in
the method's run are decided by Optuna's ``HyperbandPruner`` and every other trial by the
hindsight oracle (a trial trains past its first epoch only if its final value beats every
earlier trial's), as a perfect forecast would decide them.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
import optuna
from _replay_study import replay_parser, replay_study
from more_seeds_table import HELD_OUT, TABLES
from readme import RECORDED

from optuna_qsvr import _records
from optuna_qsvr.benchmark import CurveTable, bundled_table, infer_direction, make_pruner

PARTS = (
    ("hyperband", True),
    ("hyperband", False),
    ("forecast", True),
    ("forecast", False),
)
LATE = "late"
ETA = 3


def last_rung(max_step: int) -> int:
    """The last rung end below ``max_step`` for min_resource 1 and eta 3, as the benchmark runs."""
    rung = 1
    while rung * ETA < max_step:
        rung *= ETA
    return rung


def regimes(study: optuna.Study) -> list[str]:
    """Each trial's regime by number; a trial without a regime record (another method, or the
    option off) counts in the forecast regime."""
    records = (_records.regime_of_trial(t.system_attrs) for t in study.get_trials(deepcopy=False))
    return [record["regime"] if record else "forecast" for record in records]


def split(regime_of: list[str], runs: list, late: int) -> dict[Any, tuple[int, int]]:
    """Epochs and trials per (regime, finished), and ``LATE`` for the forecast regime's stopped
    trials that trained ``late`` epochs or more; ``regime_of`` as :func:`regimes` gives it."""
    parts: dict[Any, list[int]] = collections.defaultdict(lambda: [0, 0])
    for run in runs:
        regime = regime_of[run.number]
        finished = run.final is not None
        keys = [(regime, finished)]
        if regime == "forecast" and not finished and run.epochs >= late:
            keys.append(LATE)
        for key in keys:
            parts[key][0] += run.epochs
            parts[key][1] += 1
    return {key: (parts[key][0], parts[key][1]) for key in (*PARTS, LATE)}


CUT = ("reached", "promoted", "rescue", "median", "look", "stopped", "finished")


def last_cut(study: optuna.Study, runs: list, regime_of: list[str], late: int) -> dict[str, int]:
    """The forecast regime's promotion records at the last rung end ``late``, by outcome (see
    the module's docstring): successive halving's promotions, the rules' keeps by rule, the
    stops, and how many promoted or kept finished."""
    tally = dict.fromkeys(CUT, 0)
    finished = {run.number for run in runs if run.final is not None}
    for trial in study.get_trials(deepcopy=False):
        if regime_of[trial.number] != "forecast":
            continue
        promotions = _records.read_trial(trial.system_attrs).promotions.values()
        record = next((r for r in promotions if r["budget"] == late), None)
        if record is None:
            continue
        tally["reached"] += 1
        if record["decision"] == "stopped":
            tally["stopped"] += 1
            continue
        # The second look marks what it spares with the crowd's share; a rescue, with
        # ``rescued`` and a reason naming its rule.
        if "crowd" in record:
            tally["look"] += 1
        elif not record.get("rescued"):
            tally["promoted"] += 1
        elif (record.get("reason") or "").startswith("median"):
            tally["median"] += 1
        else:
            tally["rescue"] += 1
        tally["finished"] += trial.number in finished
    return tally


def improving(runs: list, regime_of: list[str], direction: str) -> tuple[int, int]:
    """Of the forecast regime's finished trials, how many beat the final value of every
    finished trial numbered before them, and how many finished."""
    sign = 1.0 if direction == "minimize" else -1.0
    best, better, finished = np.inf, 0, 0
    for run in sorted((r for r in runs if r.final is not None), key=lambda r: r.number):
        value = sign * run.final
        if regime_of[run.number] == "forecast":
            finished += 1
            better += int(value < best)
        best = min(best, value)
    return better, finished


class HyperbandThenOracle(optuna.pruners.BasePruner):
    """Optuna's ``HyperbandPruner`` for the trials numbered in ``hyperband``, the oracle for
    the others."""

    def __init__(self, table: CurveTable, hyperband: set[int]) -> None:
        self._hyperband = make_pruner("hyperband", max_resource=table.max_step, table=table)
        self._oracle = make_pruner("oracle", max_resource=table.max_step, table=table)
        self._numbers = hyperband

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if trial.number in self._numbers:
            return self._hyperband.prune(study, trial)
        return self._oracle.prune(study, trial)


def main() -> None:
    args = replay_parser(__doc__.split("\n\n")[0], ",".join(TABLES)).parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(
        f"{args.method}, {args.workers} worker(s), {args.seeds} seeds; × Hyperband's epochs"
        " (trials per study)\n"
    )
    print(
        "| table | total | Hyperband regime, finished | Hyperband regime, stopped"
        " | forecast regime, finished | forecast regime, stopped"
        " | of which at the last rung or later"
        " | finished trials alone | trials finished: method / Hyperband / oracle"
        " | forecast regime's finished that improved | same Hyperband regime, then the oracle |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    cuts = []
    for name in args.tables.split(","):
        table = CurveTable.load(bundled_table(name))
        # The recorded tables name no metric; the held-out ones do.
        direction = RECORDED.get(name) or infer_direction(table.metric)
        late = last_rung(table.max_step)
        shares: dict[Any, list[float]] = collections.defaultdict(list)
        counts: dict[Any, list[int]] = collections.defaultdict(list)
        finished = collections.defaultdict(list)
        floor, bound, better = [], [], [0, 0]
        cut = collections.defaultdict(list)
        for seed in range(args.seeds):
            _, reference, _ = replay_study(table, direction, seed, "hyperband", args.workers)
            _, oracle, _ = replay_study(table, direction, seed, "oracle", args.workers)
            study, runs, _ = replay_study(
                table, direction, seed, args.method, args.workers, args.swift_options
            )
            hyperband = sum(r.epochs for r in reference)
            regime_of = regimes(study)
            as_hyperband = {n for n, r in enumerate(regime_of) if r == "hyperband"}
            _, bounded, _ = replay_study(
                table,
                direction,
                seed,
                "oracle",
                args.workers,
                pruner=HyperbandThenOracle(table, as_hyperband),
            )
            bound.append(sum(r.epochs for r in bounded) / hyperband)
            for key, (epochs, n) in split(regime_of, runs, late).items():
                shares[key].append(epochs / hyperband)
                counts[key].append(n)
            for key, n in last_cut(study, runs, regime_of, late).items():
                cut[key].append(n)
            for i, n in enumerate(improving(runs, regime_of, direction)):
                better[i] += n
            done = sum(r.final is not None for r in runs)
            floor.append(done * table.max_step / hyperband)
            for label, replay in (("method", runs), ("hyperband", reference), ("oracle", oracle)):
                finished[label].append(sum(r.final is not None for r in replay))
        total = sum(np.mean(shares[key]) for key in PARTS)
        cells = [
            f"{np.mean(shares[key]):.2f}× ({np.mean(counts[key]):.1f})" for key in (*PARTS, LATE)
        ]
        kept = " / ".join(f"{np.mean(finished[k]):.1f}" for k in ("method", "hyperband", "oracle"))
        label = f"{name} (held out)" if name in HELD_OUT else name
        print(
            f"| {label} | {total:.2f}× | {' | '.join(cells)} | {np.mean(floor):.2f}× | {kept}"
            f" | {better[0] / max(better[1], 1):.0%} | {np.mean(bound):.2f}× |"
        )
        cuts.append(f"| {label} | " + " | ".join(f"{np.mean(cut[k]):.1f}" for k in CUT) + " |")
    print(
        "\nThe forecast regime's trials at the last cut, per study (kept: by a rule that"
        " overrode successive halving's stop)\n\n| table | reached | promoted by successive"
        " halving | kept by the rescue's forecast | kept by the median | kept by the second look"
        " | stopped | promoted or kept, then finished |\n|---|---|---|---|---|---|---|---|"
    )
    print("\n".join(cuts))


if __name__ == "__main__":
    main()
