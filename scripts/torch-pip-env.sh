#!/usr/bin/env bash
# The current PyPI torch + torchvision in a venv (made once, reused), for the
# race of amlrun-worker against the PyTorch users install today
# (tests/bench/bench_worker_torch_pip.sh). PyPI's default Linux wheel is
# CUDA-enabled and pulls the nvidia-* wheels (about 5 GB); it runs on a
# CPU-only machine all the same. Prints two lines:
#   python <the venv's python>
#   torch  <the wheel's torch/ package folder, for -DAMLRUN_TORCH_WHEEL=...>
# Usage: scripts/torch-pip-env.sh [--build]
#   --build  also builds amlrun-worker against that wheel in build-torch-pip/
#            (with the build lock; ONNX export and the OpenCV engine included)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
AMLRUN_TORCH_PIP_VENV="${AMLRUN_TORCH_PIP_VENV:-$HOME/.cache/amlrun/venv-torch-pip}"
ensure_python_venv "$AMLRUN_TORCH_PIP_VENV" torch torchvision
python="$AMLRUN_TORCH_PIP_VENV/bin/python"
torch_dir="$("$python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
# The rest of amlrun links Debian libraries built with the C++11 ABI.
if [ "$("$python" -c 'import torch; print(torch._C._GLIBCXX_USE_CXX11_ABI)')" != True ]; then
  log "the torch wheel in $torch_dir uses the pre-C++11 ABI; amlrun-worker needs a C++11-ABI LibTorch (torch >= 2.7)"
  exit 1
fi
if [ "${1:-}" = --build ]; then
  build "$AMLRUN_ROOT/build-torch-pip" -DAMLRUN_WORKER=ON -DAMLRUN_TESTS=OFF -DAMLRUN_TORCH_WHEEL="$torch_dir" >&2
fi
echo "python $python"
echo "torch $torch_dir"
