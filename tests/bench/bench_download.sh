#!/usr/bin/env bash
# Benchmark: `amlrun download` of a run's outputs against `cp -r` of the same
# tree, both from the page cache into a fresh directory on the same disk,
# timed with hyperfine. The tree is what training leaves: a few large
# checkpoints and many small files (3 x 100 MiB + 2,000 x 8 KiB by default).
# Target: amlrun within 1.2x of cp -r.
# Usage: tests/bench/bench_download.sh [LARGE_MIB] [SMALL_FILES]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
large_mib="${1:-100}"
small="${2:-2000}"
[ -x "$AMLRUN_ROOT/build/bin/amlrun" ] || build "$AMLRUN_ROOT/build"
amlrun="$AMLRUN_ROOT/build/bin/amlrun"
project="$(mktemp -d /tmp/amlrun-bench-download-XXXXXX)"
trap 'rm -rf "$project"' EXIT
mkdir -p "$project/src"
cat > "$project/src/make.py" <<PY
import os
os.makedirs("outputs/checkpoints", exist_ok=True)
os.makedirs("outputs/samples", exist_ok=True)
block = os.urandom(1 << 20)
for i in range(3):
    with open("outputs/checkpoints/epoch_%d.pt" % i, "wb") as f:
        for _ in range($large_mib):
            f.write(block)
for i in range($small):
    with open("outputs/samples/%05d.txt" % i, "wb") as f:
        f.write(os.urandom(8192))
PY
printf 'code: src\ncommand: /usr/bin/python3 make.py\nexperiment_name: download\n' > "$project/job.yml"
"$amlrun" init "$project" 2>/dev/null
(cd "$project" && "$amlrun" submit job.yml >/dev/null 2>&1)
run_id="$(cd "$project" && "$amlrun" runs list --output json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')"
outputs="$project/.amlrun/runs/$run_id/artifacts/outputs"
with_build_lock hyperfine --style none --warmup 2 --runs 10 --export-json "$project/download.json" \
  --prepare "rm -rf $project/ours $project/cp; sync" \
  -n "amlrun download" "$amlrun --workspace $project/.amlrun download $run_id -o $project/ours" \
  -n "cp -r" "cp -r $outputs $project/cp" >/dev/null
/usr/bin/python3 - "$project/download.json" "$(du -sb "$outputs" | cut -f1)" "$large_mib" "$small" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
size, large_mib, small = int(sys.argv[2]), sys.argv[3], sys.argv[4]
ours, cp = results["amlrun download"], results["cp -r"]
mib = size / (1 << 20)
print("| benchmark | amlrun | baseline | ratio | target |")
print("|---|---|---|---|---|")
print("| download %.0f MiB (3 x %s MiB + %s x 8 KiB), median of %d | %.0f ms (%.0f MiB/s) | `cp -r`: %.0f ms "
      "(%.0f MiB/s) | %.2fx | within 1.2x |"
      % (mib, large_mib, small, len(ours["times"]), ours["median"] * 1000, mib / ours["median"],
         cp["median"] * 1000, mib / cp["median"], ours["median"] / cp["median"]))
PY
