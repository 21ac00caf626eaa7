#!/usr/bin/env bash
# The README's ablation of the forecast mode: each part turned off alone, on the three recorded
# tables (150 trials, eta 3, 1 worker, 20 seeds). Output: docs/benchmark/ablation-<table>.json
# and the printed tables; `python benchmarks/ablation_table.py` makes the README table.
#   bash benchmarks/ablation.sh            # SEEDS=10 bash benchmarks/ablation.sh for a quick look
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/recorded_tables.sh
seeds=${SEEDS:-20}
bench_recorded "docs/benchmark/ablation-%s.json" \
  --seeds "$seeds" --workers 1 \
  --methods hyperband,swift-svr,swift:no-points,swift:no-final,swift:no-rescue,swift:rank-rescue,swift:uncalibrated,swift:params,swift:hyperband-brackets,swift:no-regimes,swift:pairs10,swift:bracket-cut,swift:two-brackets,swift:rescue3,swift:no-fallback,swift:m10,swift:previous \
  --swift-set 'no-points={"alpha": 1e-9}' \
  --swift-set 'no-final={"top_k": 1000000}' \
  --swift-set 'no-rescue={"rescue": false}' \
  --swift-set 'rank-rescue={"rescue": "rank"}' \
  --swift-set 'uncalibrated={"alpha": 0.49}' \
  --swift-set 'params={"features": ["curve", "params"]}' \
  --swift-set 'hyperband-brackets={"bracket_weights": [1]}' \
  --swift-set 'no-regimes={"min_rank_persistence": false}' \
  --swift-set 'pairs10={"min_persistence_pairs": 10}' \
  --swift-set 'bracket-cut={"promote_among": "bracket"}' \
  --swift-set 'two-brackets={"bracket_weights": [1, 1, 0]}' \
  --swift-set 'rescue3={"rescue_alpha": 0.3}' \
  --swift-set 'no-fallback={"rescue_fallback": "none"}' \
  --swift-set 'm10={"min_train_curves": 10}' \
  --swift-set 'previous={"promote_among": "bracket", "bracket_weights": [1, 1, 0], "rescue_alpha": 0.3, "rescue_fallback": "none", "min_train_curves": 10}'
