#!/usr/bin/env bash
# Benchmark 4 of the worker issue: the input pipeline alone, decoded and
# augmented images per second. amlrun-worker loader-benchmark --no-cache
# (decoding every image every epoch, as torchvision does) against
# torchvision's ImageFolder + DataLoader with the same number of workers,
# on Fashion-MNIST PNGs and on colour 256×256 JPEGs.
# Usage: tests/bench/bench_worker_loader.sh [worker_bench.py options]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
[ -x "$AMLRUN_ROOT/build/bin/amlrun-worker" ] || build "$AMLRUN_ROOT/build" -DAMLRUN_WORKER=ON
with_build_lock /usr/bin/python3 "$AMLRUN_ROOT/tests/bench/python/worker_bench.py" loader \
  --dataset png --image-size 32 --batch-size 16 --workers 2 --epochs 10 --train-per-class 500 "$@"
with_build_lock /usr/bin/python3 "$AMLRUN_ROOT/tests/bench/python/worker_bench.py" loader \
  --dataset jpeg --image-size 224 --batch-size 16 --workers 2 --epochs 2 --train-per-class 100 "$@"
