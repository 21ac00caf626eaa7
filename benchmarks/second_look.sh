#!/usr/bin/env bash
# The forecast mode with and without the second look (`second_look=True`, off by default), on
# every bundled table: 150 trials, eta 3, 1 and 8 workers, 20 seeds. The default was chosen on
# the recorded tables before the held-out ones were run; those are measured and reported only.
#   bash benchmarks/second_look.sh    # docs/benchmark/look-<table>-w<W>.json, then the table:
#   python benchmarks/second_look_table.py
#   SEEDS=60 WORKERS=1 OUT=look60 bash benchmarks/second_look.sh    # 60 seeds, 1 worker:
#   python benchmarks/second_look_table.py --prefix look60
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${SEEDS:-20}
out=${OUT:-look}
. benchmarks/every_table.sh
for workers in ${WORKERS:-1 8}; do
  bench_every "docs/benchmark/$out-%s-w$workers.json" --seeds "$seeds" --workers "$workers" \
    --processes 2 --methods hyperband,median,sha,swift-svr,swift:look \
    --swift-set 'look={"second_look": true}'
done
