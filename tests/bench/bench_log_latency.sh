#!/usr/bin/env bash
# Benchmark 3 of the core issue: log latency. A job prints a wall-clock
# timestamp every 10 ms; the time from the write to the line arriving on
# amlrun's stdout is measured (p50/p99), side by side with the same program
# writing into a pipe directly (the floor).
# Targets: p50 under 20 ms, p99 under 100 ms.
# Usage: tests/bench/bench_log_latency.sh [LINES]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
lines="${1:-500}"
[ -x "$AMLRUN_ROOT/build/bin/amlrun" ] || build "$AMLRUN_ROOT/build"
project="$(mktemp -d /tmp/amlrun-bench-latency-XXXXXX)"
trap 'rm -rf "$project"' EXIT
mkdir -p "$project/src"
cat > "$project/src/ticks.py" <<PY
import sys, time
for _ in range($lines):
    sys.stdout.write("%d\n" % time.time_ns())
    sys.stdout.flush()
    time.sleep(0.01)
PY
printf 'code: src\ncommand: /usr/bin/python3 ticks.py\nexperiment_name: latency\n' > "$project/job.yml"
"$AMLRUN_ROOT/build/bin/amlrun" init "$project" 2>/dev/null
with_build_lock /usr/bin/python3 - "$AMLRUN_ROOT/build/bin/amlrun" "$project" <<'PY'
import statistics, subprocess, sys, time
amlrun, project = sys.argv[1], sys.argv[2]
def latencies(argv):
    process = subprocess.Popen(argv, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    seen = []
    for line in process.stdout:
        now = time.time_ns()
        seen.append((now - int(line)) / 1e6)
    assert process.wait() == 0
    return sorted(seen)
def percentile(values, p):
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]
ours = latencies([amlrun, "submit", "--stream", "job.yml"])
floor = latencies(["/usr/bin/python3", "src/ticks.py"])
print("| benchmark | amlrun | baseline (direct pipe) | target |")
print("|---|---|---|---|")
print("| log latency p50 (%d lines) | %.2f ms | %.2f ms | < 20 ms |" % (len(ours), percentile(ours, 50), percentile(floor, 50)))
print("| log latency p99 | %.2f ms | %.2f ms | < 100 ms |" % (percentile(ours, 99), percentile(floor, 99)))
PY
