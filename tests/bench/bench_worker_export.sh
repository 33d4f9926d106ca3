#!/usr/bin/env bash
# Benchmark 5 of the worker: ONNX export time per architecture
# (amlrun-worker export: load model.pt, fold BatchNorm, build, check and
# write the graph) against torch.onnx.export of the same torchvision model in
# Python (python3-torch 1.13, the export call alone). Medians over repeats.
# Usage: tests/bench/bench_worker_export.sh [inference_bench.py options]
#   e.g. --repeats 5 --image-size 224
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
[ -x "$AMLRUN_ROOT/build/bin/amlrun-worker" ] || build "$AMLRUN_ROOT/build" -DAMLRUN_WORKER=ON
# Measured with the build lock held, so no compile runs beside it.
with_build_lock /usr/bin/python3 "$AMLRUN_ROOT/tests/bench/python/inference_bench.py" export \
  --image-size 224 "$@"
