#!/usr/bin/env bash
# Benchmark: ingesting 1,000,000 metric points (4 names, one rank file of
# protocol lines) into the index, as the supervisor's final pass does; timed
# inside store_driver. Baseline: the sqlite3 shell bulk-loading the same
# points (as CSV, with .import) into a table of the same shape, which is
# what storing them costs with no parsing or checking at all.
# Target: under 2 s.
# Usage: tests/bench/bench_metrics_ingest.sh [POINTS] [REPEATS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
points="${1:-1000000}"
repeats="${2:-3}"
[ -x "$AMLRUN_ROOT/build/bin/store_driver" ] || build "$AMLRUN_ROOT/build"
work="$(mktemp -d /tmp/amlrun-bench-ingest-XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/metrics"
/usr/bin/python3 - "$work" "$points" <<'PY'
import random, sys
work, points = sys.argv[1], int(sys.argv[2])
random.seed(1)
names = ["loss", "val_acc", "lr", "grad_norm"]
with open(work + "/metrics/rank_0.jsonl", "w") as lines, open(work + "/points.csv", "w") as csv:
    for i in range(points):
        name, step, value = names[i % 4], i // 4, random.random()
        lines.write('{"name": "%s", "value": %r, "step": %d}\n' % (name, value, step))
        csv.write("%d,%d,0,%d,%r\n" % (i % 4 + 1, i // 4, step, value))
PY
with_build_lock /usr/bin/python3 - "$AMLRUN_ROOT/build/bin/store_driver" "$work" "$points" "$repeats" <<'PY'
import os, shutil, statistics, subprocess, sys, time
driver, work, points, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ours, baseline = [], []
for i in range(repeats):
    shutil.rmtree(work + "/ws", ignore_errors=True)
    out = subprocess.run([driver, "ingest", work + "/ws", work + "/metrics"], check=True,
                         capture_output=True, text=True).stdout.split()
    assert int(out[0]) == points and int(out[1]) == 0, out
    ours.append(float(out[2]))
    db = work + "/baseline.db"
    for suffix in ["", "-wal", "-shm"]:
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    script = ("PRAGMA journal_mode=WAL;\nPRAGMA synchronous=NORMAL;\n"
              "CREATE TABLE metric_points (series_id INTEGER NOT NULL, seq INTEGER NOT NULL, "
              "rank INTEGER NOT NULL, step INTEGER NOT NULL, value REAL, "
              "PRIMARY KEY (series_id, seq)) WITHOUT ROWID;\n"
              ".mode csv\n.import %s/points.csv metric_points\n" % work)
    start = time.perf_counter()
    subprocess.run(["sqlite3", db], input=script, check=True, capture_output=True, text=True)
    baseline.append(time.perf_counter() - start)
o, b = statistics.median(ours), statistics.median(baseline)
print("| benchmark | amlrun | baseline | ratio | target |")
print("|---|---|---|---|---|")
print("| ingest %d metric points (median of %d) | %.2f s (%.0f k points/s) | sqlite3 `.import` of the "
      "same points as CSV: %.2f s | %.2fx | < 2 s |" % (points, repeats, o, points / o / 1000, b, o / b))
PY
