#!/usr/bin/env bash
# Benchmark: `amlrun runs list` over a workspace of 10,000 finished runs
# (made directly through the store by store_driver, not by 10,000 submits).
# Timed with hyperfine, side by side with two baselines: the same query
# through the sqlite3 shell (the floor of an index query, process start
# included) and `ls -t runs/ | head` (what finding the newest runs costs
# without an index: a directory scan).
# Target: amlrun runs list under 100 ms.
# Usage: tests/bench/bench_runs_list.sh [RUNS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
runs="${1:-10000}"
[ -x "$AMLRUN_ROOT/build/bin/store_driver" ] || build "$AMLRUN_ROOT/build"
amlrun="$AMLRUN_ROOT/build/bin/amlrun"
project="$(mktemp -d /tmp/amlrun-bench-list-XXXXXX)"
trap 'rm -rf "$project"' EXIT
"$AMLRUN_ROOT/build/bin/store_driver" populate "$project" "$runs"
ws="$project/.amlrun"
query="SELECT id, state, created_at, ended_at, exit_code, tags FROM runs ORDER BY created_at DESC, id DESC LIMIT 50"
with_build_lock hyperfine --style none --warmup 3 --runs 30 -N --export-json "$project/list.json" \
  -n "amlrun runs list" "$amlrun --workspace $ws runs list" \
  -n "amlrun runs list --limit 0 --output json" "$amlrun --workspace $ws runs list --limit 0 --output json" \
  -n "amlrun runs list --status Failed --tag seed=3" "$amlrun --workspace $ws runs list --status Failed --tag seed=3" \
  -n "sqlite3 (same query)" "sqlite3 $ws/index.db '$query'" \
  -n "ls -t runs | head -50" "sh -c 'ls -t $ws/runs | head -50'" >/dev/null
/usr/bin/python3 - "$project/list.json" "$runs" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
runs = int(sys.argv[2])
ours = results["amlrun runs list"]
floor = results["sqlite3 (same query)"]
scan = results["ls -t runs | head -50"]
print("| benchmark (%d runs) | amlrun | baseline | ratio | target |" % runs)
print("|---|---|---|---|---|")
def ms(r):
    return "%.1f ms" % (r["median"] * 1000)
for name in ["amlrun runs list", "amlrun runs list --status Failed --tag seed=3",
             "amlrun runs list --limit 0 --output json"]:
    r = results[name]
    print("| `%s` (median) | %s | sqlite3 shell %s; `ls -t` %s | %.2fx / %.2fx | < 100 ms |"
          % (name, ms(r), ms(floor), ms(scan), r["median"] / floor["median"], r["median"] / scan["median"]))
PY
