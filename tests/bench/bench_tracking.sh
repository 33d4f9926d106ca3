#!/usr/bin/env bash
# Benchmarks of the MLflow tracking endpoint, with the real MLflow client
# (the venv of scripts/common.sh: mlflow-skinny):
# 1. 10,000 mlflow.log_metric calls from a job to amlrun's endpoint, against
#    the same script logging to a real `mlflow server` (PyPI mlflow, SQLite
#    backend) on this machine. p50 per call; target: amlrun <= half of
#    mlflow server's.
# 2. One log_batch of 100,000 points (the client sends 100 requests of
#    1,000): time from the call's return until `amlrun metrics` returns all
#    of them. Target: < 1 s.
# Usage: tests/bench/bench_tracking.sh [CALLS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
calls="${1:-10000}"
[ -x "$AMLRUN_ROOT/build/bin/amlrun" ] || build "$AMLRUN_ROOT/build"
ensure_tracking_venv
ensure_mlflow_server_venv
work="$(mktemp -d /tmp/amlrun-bench-tracking-XXXXXX)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
client="$AMLRUN_TRACKING_VENV/bin/python"
amlrun="$AMLRUN_ROOT/build/bin/amlrun"

mkdir -p "$work/project/src"
cat >"$work/project/src/log_metrics.py" <<'PY'
import json, os, sys, time, mlflow
calls = int(sys.argv[1])
times = []
with mlflow.start_run():
    mlflow.log_metric("warmup", 0.0, step=0)
    for step in range(calls):
        start = time.perf_counter()
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        times.append(time.perf_counter() - start)
times.sort()
print("P50 %.6f P99 %.6f" % (times[len(times) // 2], times[len(times) * 99 // 100]))
PY
cat >"$work/project/src/log_batch.py" <<'PY'
import time, mlflow
from mlflow.entities import Metric
now = int(time.time() * 1000)
with mlflow.start_run() as run:
    metrics = [Metric("x", float(i), now, i) for i in range(100000)]
    start = time.time()
    mlflow.MlflowClient().log_batch(run.info.run_id, metrics=metrics)
    print("BATCH_DONE %.6f (log_batch took %.3f s)" % (time.time(), time.time() - start), flush=True)
    time.sleep(60)
PY
(cd "$work/project" && "$amlrun" init . >/dev/null)

# 1a. amlrun's endpoint, from a job.
cat >"$work/project/metrics.yml" <<EOF2
code: src
command: $client log_metrics.py $calls
experiment_name: bench
EOF2
(cd "$work/project" && "$amlrun" submit metrics.yml >/dev/null 2>&1)
run_id="$(ls -t "$work/project/.amlrun/runs" | head -1)"
ours="$(grep -h '^P50' "$work/project/.amlrun/runs/$run_id/artifacts/logs/user_logs/std_log_rank_0.txt")"
stored="$(cd "$work/project" && "$amlrun" show "$run_id" --output json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["metrics"]["loss"]["count"])')"
[ "$stored" = "$calls" ] || { echo "amlrun stored $stored of $calls points" >&2; exit 1; }

# 1b. mlflow server (SQLite backend), the same script outside amlrun.
port="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$AMLRUN_MLFLOW_SERVER_VENV/bin/mlflow" server --backend-store-uri "sqlite:///$work/mlflow.db" \
  --default-artifact-root "$work/mlartifacts" --host 127.0.0.1 --port "$port" --workers 1 \
  >"$work/mlflow-server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
theirs="$(cd "$work" && env -u MLFLOW_RUN_ID MLFLOW_TRACKING_URI="http://127.0.0.1:$port" \
  "$client" "$work/project/src/log_metrics.py" "$calls" | grep '^P50')"

# 2. log_batch of 100,000 points until `amlrun metrics` has them all.
cat >"$work/project/batch.yml" <<EOF2
code: src
command: $client log_batch.py
experiment_name: bench
EOF2
batch_run="$(cd "$work/project" && "$amlrun" submit batch.yml --no-wait 2>/dev/null | tail -1)"
queryable="$(/usr/bin/python3 - "$amlrun" "$work/project" "$batch_run" <<'PY'
import re, subprocess, sys, time
amlrun, project, run_id = sys.argv[1:]
log = "%s/.amlrun/runs/%s/artifacts/logs/user_logs/std_log_rank_0.txt" % (project, run_id)
deadline = time.time() + 300
done = None
while done is None and time.time() < deadline:
    try:
        match = re.search(r"BATCH_DONE ([0-9.]+)", open(log).read())
        done = float(match.group(1)) if match else None
    except OSError:
        pass
    time.sleep(0.001)
while time.time() < deadline:
    out = subprocess.run([amlrun, "metrics", run_id, "--name", "x", "--output", "csv"], cwd=project,
                         capture_output=True, text=True).stdout
    if out.count("\n") == 100001:
        print("%.3f" % (time.time() - done))
        break
PY
)"
(cd "$work/project" && "$amlrun" cancel "$batch_run" >/dev/null 2>&1 || true)

p50() { echo "$1" | awk '{printf "%.2f", $2 * 1000}'; }
p99() { echo "$1" | awk '{printf "%.2f", $4 * 1000}'; }
ratio="$(awk -v a="$(p50 "$ours")" -v b="$(p50 "$theirs")" 'BEGIN {printf "%.2f", a / b}')"
echo "| benchmark | amlrun | baseline | ratio | target | command |"
echo "| --- | --- | --- | --- | --- | --- |"
echo "| $calls \`mlflow.log_metric\` calls (real client), p50 / p99 per call | $(p50 "$ours") / $(p99 "$ours") ms | \`mlflow server\` (SQLite backend): $(p50 "$theirs") / $(p99 "$theirs") ms | ${ratio}x | <= 0.5x | \`tests/bench/bench_tracking.sh\` |"
echo "| \`log_batch\` of 100,000 points until \`amlrun metrics\` returns them all | ${queryable} s | | | < 1 s | \`tests/bench/bench_tracking.sh\` |"
