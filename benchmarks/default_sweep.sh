#!/usr/bin/env bash
# A sweep of the forecast mode's options around the default, on the recorded tables only
# (150 trials, eta 3, 1 and 8 workers, 20 seeds); the held-out tables are never used here.
#   bash benchmarks/default_sweep.sh    # docs/benchmark/sweep2-<table>-w<W>.json, printed tables
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/recorded_tables.sh
seeds=${SEEDS:-20}
for workers in 1 8; do
  bench_recorded "docs/benchmark/sweep2-%s-w$workers.json" \
    --seeds "$seeds" --workers "$workers" --processes 2 \
    --methods hyperband,median,swift-svr,swift:a15,swift:a05,swift:c13,swift:c2,swift:m6,swift:m10,swift:r3,swift:r7,swift:k2,swift:b-one,swift:b-whole,swift:b-half,swift:b-three,swift:g12,swift:g2,swift:p4,swift:p10 \
    --swift-set 'a15={"alpha": 0.15}' \
    --swift-set 'a05={"alpha": 0.05}' \
    --swift-set 'c13={"checkpoint_ratio": 1.3}' \
    --swift-set 'c2={"checkpoint_ratio": 2.0}' \
    --swift-set 'm6={"min_train_curves": 6}' \
    --swift-set 'm10={"min_train_curves": 10}' \
    --swift-set 'r3={"rescue_alpha": 0.3}' \
    --swift-set 'r7={"rescue_alpha": 0.7}' \
    --swift-set 'k2={"top_k": 2}' \
    --swift-set 'b-one={"bracket_weights": [1, 0]}' \
    --swift-set 'b-whole={"bracket_weights": [1, 1, 0]}' \
    --swift-set 'b-half={"bracket_weights": [1, 0.5, 0]}' \
    --swift-set 'b-three={"bracket_weights": [1, 0.25, 0.25]}' \
    --swift-set 'g12={"refit_growth": 1.2}' \
    --swift-set 'g2={"refit_growth": 2.0}' \
    --swift-set 'p4={"min_persistence_pairs": 4}' \
    --swift-set 'p10={"min_persistence_pairs": 10}'
done
