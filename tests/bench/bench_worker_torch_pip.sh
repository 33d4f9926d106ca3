#!/usr/bin/env bash
# The race against current PyTorch (issue 15): amlrun-worker built against
# the LibTorch inside PyPI's current torch wheel (build-torch-pip/, made by
# scripts/torch-pip-env.sh --build) against the same training in Python with
# that same torch, eager and torch.compile, the same data, image size, batch
# and threads as bench_worker_throughput.sh and bench_worker_ddp.sh. Runs
# alternate; medians. Target: ≥ 1.3× Python's images/s on one process and on
# two (2 MPI ranks vs DDP over gloo with 2 processes), and equal accuracy
# with the same recipe (a reduced Fashion-MNIST run, both sides: the full
# 60k benchmark takes 35+ minutes for one side alone on two cores).
# Usage: tests/bench/bench_worker_torch_pip.sh [throughput|ddp|accuracy|all] [worker_bench.py options]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
what="${1:-all}"
[ $# -gt 0 ] && shift
python="$("$AMLRUN_ROOT/scripts/torch-pip-env.sh" --build | awk '$1 == "python" {print $2}')"
script=tests/bench/bench_worker_torch_pip.sh
# The Debian-LibTorch build (build/) is measured in the same runs when it
# exists, so the rows show how today's machine compares with the Debian rows.
also=()
[ -x "$AMLRUN_ROOT/build/bin/amlrun-worker" ] && also=(--also-worker "$AMLRUN_ROOT/build/bin/amlrun-worker")
bench() {
  # Measured with the build lock held, so no compile runs beside it.
  with_build_lock /usr/bin/python3 "$AMLRUN_ROOT/tests/bench/python/worker_bench.py" "$@" \
    --worker "$AMLRUN_ROOT/build-torch-pip/bin/amlrun-worker" --python "$python" --script "$script"
}
if [ "$what" = all ] || [ "$what" = throughput ]; then
  bench throughput "${also[@]}" --baselines eager,compile --target-ratio "≥ 1.3×" \
    --image-size 32 --batch-size 16 --threads 2 --workers 2 --epochs 3 --train-per-class 300 "$@"
fi
if [ "$what" = all ] || [ "$what" = ddp ]; then
  bench ddp "${also[@]}" --baselines eager,compile --target-ratio "≥ 1.3×" \
    --image-size 32 --batch-size 16 --threads 1 --workers 1 --epochs 3 --train-per-class 300 "$@"
fi
if [ "$what" = all ] || [ "$what" = accuracy ]; then
  # bench_worker_accuracy.sh's recipe on 600 training and 100 validation
  # images per class, 5 epochs.
  bench accuracy-race --baselines eager --image-size 64 --batch-size 64 --learning-rate 0.05 \
    --lr-schedule cosine --weight-decay 0.0005 --min-crop-scale 0.6 --epochs 5 --threads 2 --workers 2 \
    --train-per-class 600 --test-per-class 100 "$@"
fi
