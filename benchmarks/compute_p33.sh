#!/usr/bin/env bash
# Swift-Hyperband (SVR) with the recommended options ("P33": forecast the final value, rank
# forecasts among forecasts, residual target, decide at a quarter of each rung, refit after
# every new curve) against Optuna's HyperbandPruner; same tables, seeds and trials as
# benchmarks/compute.sh. Writes docs/benchmark/<table>-w<W>-p33.{json,png}.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/benchmark
mkdir -p "$out"
p33='{"forecast_final": true, "rank_quantile": 0.3334, "residual_target": true,
      "known_curve": 0.25, "min_train_curves": 5, "full_fraction": 0.0, "refit_every": 1}'
for spec in cnn_digits:maximize lstm_babi17:maximize mlpf_delphes_sim:minimize; do
  table=${spec%%:*}; direction=${spec##*:}
  for workers in 1 8; do
    .venv/bin/optuna-qsvr benchmark --curves "optuna_qsvr/benchmark/curves/$table.csv.gz" \
      --direction "$direction" --seeds 20 --workers "$workers" --methods hyperband,swift-svr \
      --swift-options "$p33" --no-progress \
      --json "$out/$table-w$workers-p33.json" --plot "$out/$table-w$workers-p33.png"
  done
done
.venv/bin/python benchmarks/summarize_compute.py "$out"
