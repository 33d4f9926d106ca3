#!/usr/bin/env bash
# Benchmark 6 of the worker: predict images/s, both engines (LibTorch on
# model.pt, OpenCV's DNN on model.onnx), against torchvision inference in
# Python (python3-torch 1.13: PIL decoding, Resize + CenterCrop + Normalize
# in a DataLoader, softmax + top-k, CSV rows) on the same images, model,
# batch, threads and loader workers. Two image sets: small PNGs (decoding is
# cheap, the network dominates) and 256px colour JPEGs at 224px.
# Usage: tests/bench/bench_worker_predict.sh [inference_bench.py options]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
[ -x "$AMLRUN_ROOT/build/bin/amlrun-worker" ] || build "$AMLRUN_ROOT/build" -DAMLRUN_WORKER=ON
bench() {
  with_build_lock /usr/bin/python3 "$AMLRUN_ROOT/tests/bench/python/inference_bench.py" predict "$@"
}
bench --dataset png --image-size 32 --per-class 200 "$@"
bench --dataset jpeg --image-size 224 --per-class 30 "$@"
