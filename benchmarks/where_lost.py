"""Where a method loses each seed's best configuration: the decision that stopped it.

    python benchmarks/where_lost.py                   # swift-svr, 1 worker, recorded tables
    python benchmarks/where_lost.py --method swift:p33 --workers 8
    python benchmarks/where_lost.py --swift-options '{"min_rank_persistence": false}'
    python benchmarks/where_lost.py --variant median-last-cut --tables mlpf_delphes_sim

``--variant`` applies one of ``rescue_experiments.py``'s rescue variants (the replay runs in
this process, so the patch applies).

For every recorded table and seed, the benchmark's replay (the seeded permutation, 150 trials,
eta 3, the table's epoch times) runs the method once; the seed's best configuration is the one
with the best final value among the 150 it replays. The script reads that trial's decision
records (``swift:decision:<i>``, ``swift:promotion:<i>``, see "Reading the decisions") and
counts where it stopped:

* ``finished``: trained to the end;
* ``pruned in a rung``: the forecast gave it too little chance at a decision point;
* ``rescue refused``: successive halving stopped it at a rung's end and the rescue's forecast
  did not keep it;
* ``no model to rescue``: successive halving stopped it and nothing asked a forecast (in the
  forecast mode: no predictor existed yet to rescue it, too few curves; the paper mode has no
  rescue), with how many trials had finished before it started;
* ``stopped as in Hyperband``: the trial ran in the forecast mode's Hyperband regime (the
  study's rank persistence was low, or not measured yet, when it started), where successive
  halving decides alone.

For a stop at a rung's end it also prints the trial's value there and its rank among the
rung-mates, and for any stop the record's reason (the rescue's chances), as recorded.
"""

from __future__ import annotations

import collections
import statistics

import optuna
from _replay_study import replay_parser, replay_study
from rescue_experiments import _ORIGINAL, _patches

from optuna_qsvr import _records
from optuna_qsvr.benchmark import CurveTable, bundled_table, infer_direction
from optuna_qsvr.pruners import _decisions

TABLES = {"cnn_digits": "maximize", "lstm_babi17": "maximize", "mlpf_delphes_sim": "minimize"}


def where(system_attrs: dict, finished: bool) -> tuple[str, dict | None]:
    """The cause of the stop and the record that made it (``None`` when finished)."""
    if finished:
        return "finished", None
    records = _records.read_trial(system_attrs)
    for record in records.decisions.values():
        if record["decision"] == "pruned":
            return "pruned in a rung", record
    hyperband = (_records.regime_of_trial(system_attrs) or {}).get("regime") == "hyperband"
    for record in records.promotions.values():
        if record["decision"] == "stopped":
            if hyperband:
                return "stopped as in Hyperband", record
            cause = "rescue refused" if "rescued" in record else "no model to rescue"
            return cause, record
    return "other", None


def main() -> None:
    parser = replay_parser(__doc__.split("\n\n")[0], ",".join(TABLES))
    parser.add_argument("--variant", default="default", help="a rescue_experiments.py variant")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in args.tables.split(","):
        table = CurveTable.load(bundled_table(name))
        # A held-out table names its metric; reading where a method loses there chooses nothing.
        direction = TABLES.get(name) or infer_direction(table.metric)
        for attr, function in {**_ORIGINAL, **_patches(args.variant, table.max_step)}.items():
            setattr(_decisions, attr, function)
        sign = 1.0 if direction == "minimize" else -1.0
        causes: collections.Counter[str] = collections.Counter()
        finished_before: list[int] = []
        lines = []
        for seed in range(args.seeds):
            study, runs, sequence = replay_study(
                table, direction, seed, args.method, args.workers, args.swift_options
            )
            best = min(sequence, key=lambda c: sign * table.finals[c])
            run = next(t for t in runs if t.config == best)
            trial = study.get_trials(deepcopy=False)[run.number]
            cause, record = where(trial.system_attrs, run.final is not None)
            causes[cause] += 1
            line = f"  seed {seed:2d}: {cause}"
            if record is not None:
                line += f" at epoch {run.epochs}"
                if "rank" in record:
                    value, rank, of = record["value"], record["rank"], record["of"]
                    line += f", value {value:.4g}, rank {rank} of {of}"
                if record.get("reason"):
                    line += f" ({record['reason']})"
            if cause == "no model to rescue":
                done = sum(t.final is not None and t.end <= run.start for t in runs)
                finished_before.append(done)
                line += f", {done} trials finished before it started"
            lines.append(line)
        variant = "" if args.variant == "default" else f", rescue {args.variant}"
        print(f"{name} ({args.method}{variant}, {args.workers} worker(s), {args.seeds} seeds):")
        print("\n".join(lines))
        summary = ", ".join(f"{cause} {n}" for cause, n in causes.most_common())
        if finished_before:
            summary += (
                f"; no model to rescue: median {statistics.median(finished_before):g}"
                " trials finished before it started"
            )
        print(f"  {summary}")


if __name__ == "__main__":
    main()
