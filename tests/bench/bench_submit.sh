#!/usr/bin/env bash
# Benchmark 1 of the core issue: submit overhead. `amlrun submit --stream` of
# a job whose command is `true` (with a one-file source directory), against
# running `true` directly; 20 runs each, interleaved, median reported.
# Target: amlrun's median under 50 ms on a 2-core machine.
# Beside it, in the same loop, the run's own cost of its MLflow endpoint
# (issue 12, benchmark 3): the same job in a workspace with
# `local.tracking: false` (no endpoint); the two should agree within noise.
# Usage: tests/bench/bench_submit.sh [RUNS]   (builds first if needed)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
runs="${1:-20}"
[ -x "$AMLRUN_ROOT/build/bin/amlrun" ] || build "$AMLRUN_ROOT/build"
project="$(mktemp -d /tmp/amlrun-bench-submit-XXXXXX)"
untracked="$(mktemp -d /tmp/amlrun-bench-submit-off-XXXXXX)"
trap 'rm -rf "$project" "$untracked"' EXIT
mkdir -p "$project/src"
echo 'print("unused")' > "$project/src/train.py"
printf 'code: src\ncommand: "true"\nexperiment_name: bench\n' > "$project/job.yml"
"$AMLRUN_ROOT/build/bin/amlrun" init "$project" 2>/dev/null
cp -r "$project/src" "$project/job.yml" "$untracked/"
"$AMLRUN_ROOT/build/bin/amlrun" init "$untracked" 2>/dev/null
printf 'local:\n  tracking: false\n' > "$untracked/.amlrun/config.yml"
# Measured with the build lock held, so no compile runs beside it.
with_build_lock /usr/bin/python3 - "$AMLRUN_ROOT/build/bin/amlrun" "$project" "$runs" "$untracked" <<'PY'
import statistics, subprocess, sys, time
amlrun, project, runs, untracked = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def timed(argv, cwd=project):
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, argv
    return elapsed * 1000
for _ in range(3):  # warm the page cache and the snapshot store
    timed([amlrun, "submit", "--stream", "job.yml"])
    timed([amlrun, "submit", "--stream", "job.yml"], cwd=untracked)
ours, baseline, off = [], [], []
for _ in range(runs):
    ours.append(timed([amlrun, "submit", "--stream", "job.yml"]))
    off.append(timed([amlrun, "submit", "--stream", "job.yml"], cwd=untracked))
    baseline.append(timed(["true"]))
m_ours, m_base = statistics.median(ours), statistics.median(baseline)
print("| benchmark | amlrun | baseline | ratio | target |")
print("|---|---|---|---|---|")
print("| submit --stream of `true`, median of %d | %.1f ms | `true`: %.1f ms | %.1fx (overhead %.1f ms) | < 50 ms |"
      % (runs, m_ours, m_base, m_ours / m_base, m_ours - m_base))
print("(amlrun min %.1f / max %.1f ms)" % (min(ours), max(ours)))
m_off = statistics.median(off)
print("| the same with the MLflow endpoint (default) vs `local.tracking: false`, median of %d | %.1f ms | %.1f ms (min %.1f, max %.1f) | %.2fx (%+.1f ms) | within noise |"
      % (runs, m_ours, m_off, min(off), max(off), m_ours / m_off, m_ours - m_off))
PY
