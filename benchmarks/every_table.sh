# Every bundled table, with its direction (table:direction): the recorded ones, which defaults
# may be tuned on, then the held-out ones, which are measured and reported only. Sourced by the
# scripts that report on every table (more_seeds.sh, second_look.sh); the sweeps that tune
# read recorded_tables.sh alone.
. benchmarks/recorded_tables.sh
HELD_OUT_TABLES=(resnet_mnist:minimize transformer_sort:maximize mlp_mnist1d:maximize
  gru_mnist1d:maximize cnn1d_mnist1d:maximize)

# bench_tables (recorded_tables.sh) on every table.
bench_every() {
  local out=$1
  shift
  bench_tables "$out" "${RECORDED_TABLES[@]}" "${HELD_OUT_TABLES[@]}" -- "$@"
}
