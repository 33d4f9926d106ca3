#!/usr/bin/env bash
# Runs the four amlrun-worker benchmarks and prints one markdown table.
# Each benchmark prints its own rows; progress goes to stderr.
#   tests/bench/run-worker-benches.sh [--skip-accuracy]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
skip_accuracy=0
[ "${1:-}" = "--skip-accuracy" ] && skip_accuracy=1
rows="$(mktemp)"
trap 'rm -f "$rows"' EXIT
"$here/bench_worker_throughput.sh" | tee -a "$rows" >&2
"$here/bench_worker_ddp.sh" | tee -a "$rows" >&2
"$here/bench_worker_loader.sh" | tee -a "$rows" >&2
if [ "$skip_accuracy" -eq 0 ]; then
  "$here/bench_worker_accuracy.sh" | tee -a "$rows" >&2
fi
echo "| benchmark | amlrun-worker | baseline | ratio | target | command |"
echo "|---|---|---|---|---|---|"
grep '^| ' "$rows"
