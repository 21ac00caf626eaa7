"""Why the Q-SVR loses MLPF's best configuration more often than the SVR: their calibration.

    python benchmarks/qsvr_calibration.py --seeds 60      # mlpf_delphes_sim
    python benchmarks/qsvr_calibration.py --seeds 60 --curves 15
    python benchmarks/qsvr_calibration.py --tables cnn_digits --seeds 10

The forecast mode prunes a trial inside a rung when its calibrated chance to beat the best
final value is below ``alpha``; the chance is cross-conformal, ``(1 + #{r : forecast + r <=
bar}) / (n + 1)`` over the predictor's out-of-fold residuals ``r`` (see
``prob_below``), so with ``n`` finished curves it is never below ``1 / (n + 1)``, and it
reaches that floor when no residual would carry the forecast past the bar.

For each seed this script takes the finished curves the seed's ``swift-svr`` replay (1 worker,
the library's defaults) had when the seed's best configuration started: what any final-value
model deciding on that configuration was fitted on, at most. Seeds with fewer than
``--curves`` of them (10, the previous ``min_train_curves``; pass 15 for this version's) are
skipped. At each decision point it fits the pruner's SVR and Q-SVR (simulated annealing, the
pruner's settings) on that pool and asks both for the chance that the best configuration (its
curve from the table) beats the pool's best final value. Printed per point: how often the chance is
below ``alpha``, the median chance, the median forecast error on the best configuration, and
the median of the most negative out-of-fold residual (the largest improvement the predictor
failed to forecast in cross-validation: the tail the chance is read from).
"""

from __future__ import annotations

import statistics

import numpy as np
import optuna
from _replay_study import replay_parser, replay_study
from where_lost import TABLES

from optuna_qsvr.benchmark import CurveTable, bundled_table, infer_direction, make_pruner
from optuna_qsvr.pruners import _curves


def main() -> None:
    parser = replay_parser(__doc__.split("\n\n")[0], "mlpf_delphes_sim")
    parser.add_argument(
        "--curves", type=int, default=10, help="fewest finished curves a pool needs"
    )
    parser.add_argument("--points", default="12,26,39", help="decision points, comma-separated")
    parser.add_argument("--alpha", type=float, default=0.1)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    points = [int(p) for p in args.points.split(",")]
    for name in args.tables.split(","):
        table = CurveTable.load(bundled_table(name))
        direction = TABLES.get(name) or infer_direction(table.metric)
        sign = 1.0 if direction == "minimize" else -1.0
        final = table.max_step
        # The pruners' own predictor factories: the same settings as in the benchmark.
        factories = {
            method: make_pruner(method, max_resource=final, table=table).new_predictor
            for method in ("swift-svr", "swift-qsvr")
        }
        rows: dict[tuple[int, str], list[tuple[float, float, float]]] = {}
        skipped = 0
        sizes: list[int] = []
        for seed in range(args.seeds):
            study, runs, sequence = replay_study(
                table, direction, seed, args.method, args.workers, args.swift_options
            )
            best = min(sequence, key=lambda c: sign * table.finals[c])
            run_of = {run.number: run for run in runs}
            start = next(run.start for run in runs if run.config == best)
            # The finished curves the pruner had when the best configuration's trial started
            # (virtual time): what any final-value model deciding on it was fitted on at most.
            finished = [
                t
                for t in study.get_trials(deepcopy=False)
                if _curves.has_curve(t, max(points), final) and run_of[t.number].end <= start
            ]
            if len(finished) < args.curves:
                skipped += 1
                continue
            sizes.append(len(finished))
            targets = np.array([_curves.value_at(t, final, sign) for t in finished])
            bar = float(targets.min())
            own_values = sign * table.values(best)
            for point in points:
                curves = np.vstack([_curves.curve(t, point, sign) for t in finished])
                own = own_values[None, :point]
                for method, factory in factories.items():
                    model = factory().fit(curves, targets)
                    forecast = float(model.predict(own)[0][0])
                    chance = float(model.prob_below(own, np.array([bar]))[0])
                    tail = float(model.residuals_[0])
                    error = forecast - sign * table.finals[best]
                    rows.setdefault((point, method), []).append((chance, error, tail))
        used = args.seeds - skipped
        print(
            f"{name}: {used} seeds (of {args.seeds}; {skipped} with fewer than {args.curves}"
            " finished curves when the best configuration started), pools of"
            f" {min(sizes, default=0)}-{max(sizes, default=0)} curves (median"
            f" {statistics.median(sizes) if sizes else 0:g}) from the {args.method} replay, alpha"
            f" {args.alpha}; forecast errors (forecast minus the true final value)"
            " and residuals in the objective's units, signed as a minimisation: a positive"
            " error is a pessimistic forecast"
        )
        print(
            "| point | predictor | chance < alpha | median chance | median forecast error on"
            " the best | median most negative residual |"
        )
        print("|---|---|---|---|---|---|")
        for (point, method), values in sorted(rows.items()):
            chances, errors, tails = zip(*values, strict=True)
            below = sum(c < args.alpha for c in chances)
            print(
                f"| {point} | {method} | {below} of {len(values)} |"
                f" {statistics.median(chances):.3f} | {statistics.median(errors):+.4g} |"
                f" {statistics.median(tails):+.4g} |"
            )


if __name__ == "__main__":
    main()
