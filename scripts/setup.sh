#!/usr/bin/env bash
# Create .venv and install optuna-qsvr with the studies, the dashboard, PostgreSQL, the gRPC
# proxy, PyTorch Lightning for the examples and the test tools.
# Idempotent: a second run only checks what is there. torch is the CPU build unless
# OPTUNA_QSVR_CUDA=1 (see scripts/install_torch.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
bash scripts/install_torch.sh
python -m pip install --quiet -e ".[dev,studies,postgresql,dashboard,lightning,grpc]"
