#!/usr/bin/env bash
# Swift-Hyperband against Optuna's pruners on every recorded table, with 1 and 8 workers:
# 20 seeds, 150 trials per seed. Writes docs/benchmark/<table>-w<W>.{json,png} and prints the
# tables; benchmarks/summarize_compute.py turns the JSON into the README's table.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/benchmark
mkdir -p "$out"
methods=none,median,sha,hyperband,swift-svr,swift-qsvr,oracle
for spec in cnn_digits:maximize lstm_babi17:maximize mlpf_delphes_sim:minimize; do
  table=${spec%%:*}; direction=${spec##*:}
  for workers in 1 8; do
    .venv/bin/optuna-qsvr benchmark --curves "optuna_qsvr/benchmark/curves/$table.csv.gz" \
      --direction "$direction" --seeds 20 --workers "$workers" --methods "$methods" \
      --no-progress --json "$out/$table-w$workers.json" --plot "$out/$table-w$workers.png"
  done
done
.venv/bin/python benchmarks/summarize_compute.py "$out"
