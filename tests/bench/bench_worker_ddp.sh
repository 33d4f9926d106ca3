#!/usr/bin/env bash
# Benchmark 2 of the worker issue: two processes on this machine, each with
# one compute thread: amlrun-worker under mpirun (allreduce in buckets on a
# communication thread) against Python DistributedDataParallel over gloo,
# the same per-process batch, data and settings. Also reports the share of
# amlrun-worker's step time spent waiting for the allreduce after backward.
# Target: ≥ 1.2× the Python images/s.
# Usage: tests/bench/bench_worker_ddp.sh [worker_bench.py options]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
[ -x "$AMLRUN_ROOT/build/bin/amlrun-worker" ] || build "$AMLRUN_ROOT/build" -DAMLRUN_WORKER=ON
with_build_lock /usr/bin/python3 "$AMLRUN_ROOT/tests/bench/python/worker_bench.py" ddp \
  --image-size 32 --batch-size 16 --threads 1 --workers 1 --epochs 3 --train-per-class 300 "$@"
