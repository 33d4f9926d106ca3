#!/usr/bin/env bash
# Benchmark 3 of the worker issue: ResNet-18 from scratch on all of
# Fashion-MNIST (60000 training, 10000 validation images) with amlrun-worker
# (images scaled from 28 to 64 pixels: at 32 the stride-2 stem and max-pool
# of the ImageNet architecture leave too little resolution, and a 12-epoch
# run at 32px ended below the target; lib/train/README.md has its figure);
# reports the validation accuracy reached and the wall time to the end of the
# first epoch at or above 92%. Long (tens of minutes on two cores), so it is
# run on its own and without the build lock.
# Usage: tests/bench/bench_worker_accuracy.sh [worker_bench.py options]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
[ -x "$AMLRUN_ROOT/build/bin/amlrun-worker" ] || build "$AMLRUN_ROOT/build" -DAMLRUN_WORKER=ON
/usr/bin/python3 "$AMLRUN_ROOT/tests/bench/python/worker_bench.py" accuracy \
  --image-size 64 --batch-size 64 --learning-rate 0.05 --lr-schedule cosine --weight-decay 0.0005 \
  --min-crop-scale 0.6 --epochs 10 --patience 0 --threads 2 --stop-at-target "$@"
