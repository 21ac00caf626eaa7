#!/usr/bin/env bash
# The README's "Q-SVR in the same rule": swift-svr against swift-qsvr (simulated annealing) in
# the default forecast mode, on the three recorded tables (150 trials, eta 3, 1 worker).
# Output: docs/benchmark/qsvr-<table>.json; `python benchmarks/qsvr_table.py` makes the table.
#   bash benchmarks/qsvr_rule.sh           # 20 seeds: about 12 minutes on 2 cores
#   SEEDS=60 OUT=qsvr60 bash benchmarks/qsvr_rule.sh    # 60 seeds, about 30 minutes; then
#   python benchmarks/qsvr_table.py --prefix qsvr60
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/recorded_tables.sh
seeds=${SEEDS:-20}
out=${OUT:-qsvr}
bench_recorded "docs/benchmark/$out-%s.json" \
  --seeds "$seeds" --workers 1 --processes 2 --methods hyperband,swift-svr,swift-qsvr
