# The curve tables defaults may be tuned on, with their directions (table:direction); the
# held-out tables (resnet_mnist, transformer_sort, mlp_mnist1d, gru_mnist1d, cnn1d_mnist1d)
# are never listed here. Sourced by the sweeps.
RECORDED_TABLES=(cnn_digits:maximize lstm_babi17:maximize mlpf_delphes_sim:minimize)

# `optuna-qsvr benchmark` on each table:direction given before `--`: the first argument is the
# JSON output path as a printf pattern whose %s is the table's name; the arguments after `--` go
# to the command as they are.
bench_tables() {
  local out=$1 td table tables=()
  shift
  while [[ $1 != -- ]]; do
    tables+=("$1")
    shift
  done
  shift
  for td in "${tables[@]}"; do
    table=${td%%:*}
    # shellcheck disable=SC2059  # the pattern is the caller's
    .venv/bin/optuna-qsvr benchmark --curves "optuna_qsvr/benchmark/curves/$table.csv.gz" \
      --direction "${td##*:}" --no-progress --json "$(printf "$out" "$table")" "$@"
  done
}

# bench_tables on every recorded table.
bench_recorded() {
  local out=$1
  shift
  bench_tables "$out" "${RECORDED_TABLES[@]}" -- "$@"
}
