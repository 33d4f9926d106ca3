#!/usr/bin/env bash
# Benchmark 1 of the worker issue: training throughput of amlrun-worker
# against the same training in Python (tests/bench/python/train_reference.py:
# torchvision ImageFolder + DataLoader, resnet18, SGD), one process each, the
# same data, image size, batch, compute threads and loader workers.
# Target: ≥ 1.25× the Python images/s. Runs alternate; medians are reported.
# Three configurations: the small images of the demo with 2 and with 1
# loader worker, and 64px images, where the convolutions weigh more.
# Usage: tests/bench/bench_worker_throughput.sh [worker_bench.py options]
#   e.g. --repeats 5 (options apply to every configuration)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
[ -x "$AMLRUN_ROOT/build/bin/amlrun-worker" ] || build "$AMLRUN_ROOT/build" -DAMLRUN_WORKER=ON
bench() {
  # Measured with the build lock held, so no compile runs beside it.
  with_build_lock /usr/bin/python3 "$AMLRUN_ROOT/tests/bench/python/worker_bench.py" throughput \
    --batch-size 16 --threads 2 --epochs 3 "$@"
}
bench --image-size 32 --workers 2 --train-per-class 300 "$@"
bench --image-size 32 --workers 1 --train-per-class 300 "$@"
bench --image-size 64 --workers 2 --train-per-class 100 "$@"
