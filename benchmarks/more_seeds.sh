#!/usr/bin/env bash
# The 20-seed comparison again with 60 seeds (0-59, the README's 20 among them), 1 worker, on
# every bundled table: does the picture hold when the seeds triple? The held-out tables are
# measured and reported, never used to choose anything.
#   bash benchmarks/more_seeds.sh    # docs/benchmark/seeds60-<table>.json, then the table:
#   python benchmarks/more_seeds_table.py
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${SEEDS:-60}
. benchmarks/every_table.sh
bench_every "docs/benchmark/seeds60-%s.json" --seeds "$seeds" --workers 1 --processes 2 \
  --methods hyperband,median,percentile,sha,i-epoch-1,swift-svr,swift:p33
