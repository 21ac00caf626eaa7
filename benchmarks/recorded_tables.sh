# The curve tables defaults may be tuned on, with their directions (table:direction); the
# held-out tables (resnet_mnist, transformer_sort) are never listed here. Sourced by the sweeps.
RECORDED_TABLES=(cnn_digits:maximize lstm_babi17:maximize mlpf_delphes_sim:minimize)
