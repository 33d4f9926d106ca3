#!/usr/bin/env bash
# Sweep overhead (issue 13, benchmark 1): a sweep of TRIALS trials of `true`
# at concurrency 2, against TRIALS sequential `amlrun submit --stream` of the
# same command, in one run. Each trial occupies one of the two slots for
# (sweep wall time × 2 / TRIALS); a sequential submit takes (its wall time /
# TRIALS) per run. The sweep's per-trial overhead is the difference: what a
# trial costs beyond submitting the job yourself. Target: < 30 ms.
# Usage: tests/bench/bench_sweep_overhead.sh [TRIALS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
trials="${1:-100}"
[ -x "$AMLRUN_ROOT/build/bin/amlrun" ] || build "$AMLRUN_ROOT/build"
project="$(mktemp -d /tmp/amlrun-bench-sweep-XXXXXX)"
trap 'rm -rf "$project"' EXIT
mkdir -p "$project/src"
echo 'print("unused")' > "$project/src/train.py"
printf 'code: src\ncommand: "true"\nexperiment_name: bench\n' > "$project/job.yml"
cat > "$project/sweep.yml" <<YAML
type: sweep
experiment_name: bench
trial:
  code: src
  command: "true \${{search_space.k}}"
sampling_algorithm: grid
search_space:
  k: {type: choice, values: [$(seq -s, 1 "$trials")]}
objective: {goal: minimize, primary_metric: loss}
limits: {max_total_trials: $trials, max_concurrent_trials: 2}
YAML
"$AMLRUN_ROOT/build/bin/amlrun" init "$project" 2>/dev/null
# Measured with the build lock held, so no compile runs beside it.
with_build_lock /usr/bin/python3 - "$AMLRUN_ROOT/build/bin/amlrun" "$project" "$trials" <<'PY'
import subprocess, sys, time
amlrun, project, trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
def timed(argv, ok=(0,)):
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert result.returncode in ok, (argv, result.returncode)
    return time.perf_counter() - start
timed([amlrun, "submit", "--stream", "job.yml"])  # warm the snapshot store and page cache
sequential = sum(timed([amlrun, "submit", "--stream", "job.yml"]) for _ in range(trials))
# `true` logs no metric: the sweep ends Failed (exit 1), having run every trial.
sweep = timed([amlrun, "submit", "--stream", "sweep.yml"], ok=(1,))
import json, os
runs = os.path.join(project, ".amlrun", "runs")
sweep_id = [r for r in os.listdir(runs) if json.load(open(os.path.join(runs, r, "run.json"))).get("kind") == "sweep"][0]
shown = json.loads(subprocess.run([amlrun, "show", sweep_id, "--output", "json"], cwd=project,
                                  capture_output=True, text=True).stdout)
assert shown["sweep"]["counts"] == {"Completed": trials}, shown["sweep"]["counts"]
per_submit = sequential / trials * 1000
per_trial = sweep * 2 / trials * 1000
print("| benchmark | amlrun sweep | baseline | ratio | target |")
print("|---|---|---|---|---|")
print("| %d trials of `true` at concurrency 2: slot time per trial vs one `submit --stream` each | %.1f ms (sweep %.2f s) | %.1f ms (%d submits %.2f s) | %.2fx (overhead %+.1f ms per trial) | < 30 ms |"
      % (trials, per_trial, sweep, per_submit, trials, sequential, per_trial / per_submit,
         per_trial - per_submit))
PY
