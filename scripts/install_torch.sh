#!/usr/bin/env bash
# Install torch into the active Python environment, unless it already has one: the CPU build
# unless OPTUNA_QSVR_CUDA=1. scripts/setup.sh runs this before the package, whose studies extra
# would otherwise pull an unpinned torch: on Linux, PyPI's torch is the CUDA build (GBs of GPU
# libraries). The CPU build, version 2.13.0+cpu, is not on PyPI: it comes from a wheel folder pip
# already knows (find-links), else from PyTorch's CPU index. TORCH_INDEX_URL names another index:
# a mirror, or with OPTUNA_QSVR_CUDA=1 a CUDA index such as https://download.pytorch.org/whl/cu126.
set -euo pipefail
torch_version=2.13.0
python -c "import torch" 2>/dev/null && exit 0
if [ "${OPTUNA_QSVR_CUDA:-0}" = 1 ] || [ "$(uname -s)" != Linux ]; then
  # PyPI's build: CUDA on Linux, the only build elsewhere (CPU, or MPS on macOS).
  exec python -m pip install --quiet "torch==$torch_version" \
    ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
fi
python -m pip install --quiet "torch==$torch_version+cpu" 2>/dev/null ||
  python -m pip install --quiet "torch==$torch_version+cpu" \
    --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
