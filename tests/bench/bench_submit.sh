#!/usr/bin/env bash
# Benchmark 1 of the core issue: submit overhead. `amlrun submit --stream` of
# a job whose command is `true` (with a one-file source directory), against
# running `true` directly; 20 runs each, interleaved, median reported.
# Target: amlrun's median under 50 ms on a 2-core machine.
# Usage: tests/bench/bench_submit.sh [RUNS]   (builds first if needed)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
runs="${1:-20}"
[ -x "$AMLRUN_ROOT/build/bin/amlrun" ] || build "$AMLRUN_ROOT/build"
project="$(mktemp -d /tmp/amlrun-bench-submit-XXXXXX)"
trap 'rm -rf "$project"' EXIT
mkdir -p "$project/src"
echo 'print("unused")' > "$project/src/train.py"
printf 'code: src\ncommand: "true"\nexperiment_name: bench\n' > "$project/job.yml"
"$AMLRUN_ROOT/build/bin/amlrun" init "$project" 2>/dev/null
# Measured with the build lock held, so no compile runs beside it.
with_build_lock /usr/bin/python3 - "$AMLRUN_ROOT/build/bin/amlrun" "$project" "$runs" <<'PY'
import statistics, subprocess, sys, time
amlrun, project, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def timed(argv):
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, argv
    return elapsed * 1000
for _ in range(3):  # warm the page cache and the snapshot store
    timed([amlrun, "submit", "--stream", "job.yml"])
ours, baseline = [], []
for _ in range(runs):
    ours.append(timed([amlrun, "submit", "--stream", "job.yml"]))
    baseline.append(timed(["true"]))
m_ours, m_base = statistics.median(ours), statistics.median(baseline)
print("| benchmark | amlrun | baseline | ratio | target |")
print("|---|---|---|---|---|")
print("| submit --stream of `true`, median of %d | %.1f ms | `true`: %.1f ms | %.1fx (overhead %.1f ms) | < 50 ms |"
      % (runs, m_ours, m_base, m_ours / m_base, m_ours - m_base))
print("(amlrun min %.1f / max %.1f ms)" % (min(ours), max(ours)))
PY
