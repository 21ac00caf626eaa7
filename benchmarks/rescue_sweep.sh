#!/usr/bin/env bash
# The sweep that chose the forecast mode's rescue_alpha (README, "The default rule, measured"):
# the recorded tables only, 1 worker, 10 seeds; the held-out tables are never used here.
#   bash benchmarks/rescue_sweep.sh     # docs/benchmark/sweep-<table>.json and printed tables
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/recorded_tables.sh
seeds=${SEEDS:-10}
bench_recorded "docs/benchmark/sweep-%s.json" \
  --seeds "$seeds" --workers 1 \
  --methods hyperband,median,swift:rank,swift:r10,swift:r20,swift:r30,swift:r40,swift:r30a15,swift:r30a20,swift:sha-r20,swift:sha-r30,swift:sha-r40 \
  --swift-set 'rank={"rescue": "rank"}' \
  --swift-set 'r10={"rescue_alpha": 0.1}' \
  --swift-set 'r20={"rescue_alpha": 0.2}' \
  --swift-set 'r30={"rescue_alpha": 0.3}' \
  --swift-set 'r40={"rescue_alpha": 0.4}' \
  --swift-set 'r30a15={"rescue_alpha": 0.3, "alpha": 0.15}' \
  --swift-set 'r30a20={"rescue_alpha": 0.3, "alpha": 0.2}' \
  --swift-set 'sha-r20={"rescue_alpha": 0.2, "bracket_weights": [1, 0]}' \
  --swift-set 'sha-r30={"rescue_alpha": 0.3, "bracket_weights": [1, 0]}' \
  --swift-set 'sha-r40={"rescue_alpha": 0.4, "bracket_weights": [1, 0]}'
