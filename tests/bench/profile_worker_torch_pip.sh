#!/usr/bin/env bash
# Where the time goes in the race against PyPI's torch (bench_worker_torch_pip.sh):
# the wheel-built amlrun-worker and the Python reference with the same torch
# (eager) train the 32px configuration of benchmark 1 (batch 16, 2 threads,
# 2 loader workers); once each is past its first epoch, `perf record -a`
# samples the whole machine for 20 s, and the report splits the samples by
# process and library (training threads vs. loaders vs. the rest) and lists
# the hottest symbols. The Python side also writes torch.profiler's operator
# table (30 steps). Output: a folder (default /tmp/amlrun-profile-torch-pip).
# Usage: tests/bench/profile_worker_torch_pip.sh [OUT]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
out="${1:-/tmp/amlrun-profile-torch-pip}"
mkdir -p "$out"
python="$("$AMLRUN_ROOT/scripts/torch-pip-env.sh" --build | awk '$1 == "python" {print $2}')"
data=/tmp/amlrun-bench-data/fashion-mnist-300-50
[ -d "$data/train" ] || "$AMLRUN_ROOT/scripts/fashion-mnist-to-folders.sh" "$data" --per-class 300 --test-per-class 50 >/dev/null
common=(--train-data "$data/train" --validation-data "$data/test" --model resnet18 --image-size 32
  --batch-size 16 --epochs 4 --threads 2 --learning-rate 0.01)
sample() { # NAME COMMAND...: runs COMMAND, samples 20 s after a 16 s start-up, stops it
  local name="$1"
  shift
  "$@" >"$out/$name.log" 2>&1 &
  local pid=$!
  sleep 16
  perf record -a -F 499 -o "$out/$name.perf.data" -- sleep 20 2>/dev/null
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # awk, not head: head would close the pipe early and pipefail end the script.
  perf report -i "$out/$name.perf.data" --sort comm,dso --stdio 2>/dev/null |
    awk '!/^#/ && NF && n++ < 15' >"$out/$name.by-library.txt"
  perf report -i "$out/$name.perf.data" --sort dso,symbol --stdio 2>/dev/null |
    awk '!/^#/ && NF && n++ < 40 {$1 = $1; print}' >"$out/$name.symbols.txt"
  log "$name: $out/$name.by-library.txt"
  cat "$out/$name.by-library.txt" >&2
}
profile() {
  rm -rf "$out/worker-run"
  sample worker "$AMLRUN_ROOT/build-torch-pip/bin/amlrun-worker" train "${common[@]}" --loader-threads 2 \
    --patience 0 --no-onnx --output-dir "$out/worker-run"
  sample python-eager "$python" "$AMLRUN_ROOT/tests/bench/python/train_reference.py" "${common[@]}" --workers 2
  "$python" "$AMLRUN_ROOT/tests/bench/python/train_reference.py" "${common[@]}" --epochs 2 --workers 2 \
    --profile "$out/python-eager.torch-profiler.txt" >/dev/null
  log "torch.profiler: $out/python-eager.torch-profiler.txt"
}
with_build_lock profile
