#!/usr/bin/env bash
# Snapshot benchmark (issue 2, benchmark 2). Not run by CI.
#
#   tests/bench/bench_snapshot.sh            # RUNS=5 by default
#   RUNS=9 SOURCE_CACHE=dropped tests/bench/bench_snapshot.sh
#   DRIVER=/tmp/old/snapshot_driver tests/bench/bench_snapshot.sh
#
# Builds a 10,000-file, 1 GiB tree (mixed sizes, nested directories) under
# $BENCH_DIR (default /tmp/amlrun-bench-snapshot; kept between runs), then
# times side by side:
#   cold: amlrun's take() into an empty store with no stat cache
#         vs `cp -a` of the same tree to a new directory (runs interleaved,
#         wall and CPU time of each);
#   warm: take() after one file changed (store and stat cache in place)
#         vs `rsync -a` onto an existing copy after the same change
#         (hyperfine).
# Prints a markdown table of medians and ratios, and the machine's load.
#
# Equal footing for the cold case: before every timed run (of either tool)
# `sync` flushes all dirty data (so neither run pays for the other's
# writeback), the page cache is dropped (/proc/sys/vm/drop_caches, when
# writable) and then, with the default SOURCE_CACHE=hot, the source tree is
# read once so both tools start with the source in the page cache and
# nothing else. SOURCE_CACHE=dropped skips that read, so both also read the
# source from disk. Neither timed command syncs its output: both leave it in
# the page cache for writeback.
#
# Every cold run writes to a new directory (2 x RUNS GiB of disk) and nothing
# is deleted until all runs, cold and warm, are done. On ext4 without a journal (this machine's root filesystem) an
# inode freed in the last 60 s is skipped, with a buffer lookup each, by every
# inode allocation in its block group; deleting the previous run's 10,000
# files right before a timed run made both tools spend up to half their time
# there (perf: recently_deleted), more or less depending on where the inodes
# landed. Outputs of an earlier invocation are removed first, followed by a
# 65 s pause. Files other processes delete meanwhile still cost the same:
# check the load line and repeat on a quiet machine.
# Measurements hold the build lock, so no compile runs meanwhile.
set -euo pipefail

source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/common.sh"

BUILD_DIR=${BUILD_DIR:-$AMLRUN_ROOT/build}
BENCH_DIR=${BENCH_DIR:-/tmp/amlrun-bench-snapshot}
RUNS=${RUNS:-5}
SOURCE_CACHE=${SOURCE_CACHE:-hot}
DRIVER=${DRIVER:-$BUILD_DIR/bin/snapshot_driver}

ensure_packages rsync hyperfine python3
if [ ! -x "$DRIVER" ]; then
  build "$BUILD_DIR" -DAMLRUN_WORKER=OFF
fi

SRC=$BENCH_DIR/src
STORE=$BENCH_DIR/store
COPY=$BENCH_DIR/copy
OUT=$BENCH_DIR/cold  # one new directory per cold run
mkdir -p "$BENCH_DIR"

# The tree: sizes are fixed by a seeded generator, contents are random (so no
# two files share content). 8,000 small files (1-8 KiB), 1,900 medium
# (20-400 KiB), 100 large, scaled so the total is exactly 1 GiB; spread over
# 10 x 10 directories, a third of them one level deeper.
make_tree() {
  log "creating the 10,000-file, 1 GiB tree in $SRC"
  rm -rf "$SRC"
  python3 - "$SRC" <<'PYTHON'
import os, random, sys
root = sys.argv[1]
rng = random.Random(2024)
sizes = [rng.randint(1024, 8192) for _ in range(8000)]
sizes += [rng.randint(20 * 1024, 400 * 1024) for _ in range(1900)]
large = [rng.randint(2, 10) for _ in range(100)]
remaining = (1 << 30) - sum(sizes)
scaled = [remaining * w // sum(large) for w in large]
scaled[-1] += remaining - sum(scaled)
sizes += scaled
rng.shuffle(sizes)
for index, size in enumerate(sizes):
    a, b = index % 10, (index // 10) % 10
    directory = os.path.join(root, f"pkg{a}", f"mod{b}")
    if index % 3 == 0:
        directory = os.path.join(directory, f"sub{(index // 100) % 4}")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"file{index:05d}.bin"), "wb") as out:
        out.write(os.urandom(size))
PYTHON
  touch "$BENCH_DIR/tree.complete"
}
if [ ! -f "$BENCH_DIR/tree.complete" ]; then
  make_tree
fi
files=$(find "$SRC" -type f | wc -l)
bytes=$(find "$SRC" -type f -printf '%s\n' | awk '{ total += $1 } END { print total }')
log "tree: $files files, $bytes bytes"

if [ -w /proc/sys/vm/drop_caches ]; then
  drop='echo 3 > /proc/sys/vm/drop_caches'
else
  drop=':'
  log "cannot drop the page cache here (not root?): cold runs start from whatever is cached"
fi
if [ "$SOURCE_CACHE" = hot ]; then
  preload="find '$SRC' -type f -print0 | xargs -0 cat > /dev/null"
else
  preload=':'
fi
settle="sync; $drop; $preload"

# The file changed before every warm run: 4 KiB of new random bytes at its
# start, as an edit would (a medium-sized file).
changed_file=$(find "$SRC" -type f -size +100k -size -400k | sort | awk 'NR == 1')
change="dd if=/dev/urandom of='$changed_file' bs=4096 count=1 conv=notrunc status=none"

median() {  # median <json> <command name> <field: times or cpu>
  python3 - "$1" "$2" "$3" <<'PYTHON'
import json, statistics, sys
for result in json.load(open(sys.argv[1]))["results"]:
    if result["command"] == sys.argv[2]:
        print(f'{statistics.median(result[sys.argv[3]]):.3f}')
PYTHON
}

measure() {
  if [ -e "$OUT" ] || [ -e "$STORE" ] || [ -e "$COPY" ]; then
    log "removing the outputs of an earlier run, then waiting 65 s (see the top of this script)"
    rm -rf "$OUT" "$STORE" "$COPY"
    sync
    sleep 65
  fi
  mkdir -p "$OUT"
  log "cold: take() into an empty store vs cp -a, interleaved ($RUNS runs each)"
  python3 - "$RUNS" "$BENCH_DIR/cold.json" "$settle" \
    "'$DRIVER' take '$SRC' '$OUT/amlrun-{run}'" "cp -a '$SRC' '$OUT/cp-{run}'" <<'PYTHON'
import json, os, subprocess, sys, time
runs, output, settle, ours, baseline = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
commands = {"amlrun": ours, "cp -a": baseline}
results = {name: {"command": name, "times": [], "cpu": []} for name in commands}
for run in range(runs):
    names = list(commands) if run % 2 == 0 else list(reversed(commands))
    for name in names:
        subprocess.run(settle, shell=True, check=True)
        start = time.perf_counter()
        child = subprocess.Popen(["sh", "-c", commands[name].replace("{run}", str(run))],
                                 stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        results[name]["times"].append(time.perf_counter() - start)
        results[name]["cpu"].append(usage.ru_utime + usage.ru_stime)
        if status != 0:
            sys.exit(f"{name} failed")
    print(f"  run {run + 1}: " + ", ".join(
        f"{name} {r['times'][-1]:.3f} s (CPU {r['cpu'][-1]:.3f} s)" for name, r in results.items()),
        file=sys.stderr)
json.dump({"results": list(results.values())}, open(output, "w"))
PYTHON

  log "warm: one file changed, take() vs rsync -a onto an existing copy ($((RUNS * 2)) runs each)"
  "$DRIVER" take "$SRC" "$STORE" >/dev/null
  cp -a "$SRC" "$COPY"
  sync
  sleep 0.1  # let the clock move past the files, as between two real submits
  hyperfine --style basic --runs "$((RUNS * 2))" --warmup 1 --export-json "$BENCH_DIR/warm.json" \
    --prepare "$change" \
    -n amlrun "'$DRIVER' take '$SRC' '$STORE'" \
    -n "rsync -a" "rsync -a '$SRC/' '$COPY/'"

  # Proof that the warm run read only the changed file.
  eval "$change"
  read -r _ _ _ hashed_files hashed_bytes _ < <("$DRIVER" take "$SRC" "$STORE")
  log "warm take() read $hashed_files file(s), $hashed_bytes bytes"
  rm -rf "$OUT"  # only now: see the top of this script
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
with_build_lock measure

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

cold_ours=$(median "$BENCH_DIR/cold.json" amlrun times)
cold_cp=$(median "$BENCH_DIR/cold.json" "cp -a" times)
cold_ours_cpu=$(median "$BENCH_DIR/cold.json" amlrun cpu)
cold_cp_cpu=$(median "$BENCH_DIR/cold.json" "cp -a" cpu)
warm_ours=$(median "$BENCH_DIR/warm.json" amlrun times)
warm_rsync=$(median "$BENCH_DIR/warm.json" "rsync -a" times)
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

cat <<EOF

Snapshot of a $(python3 -c "print(f'{$files:,}')")-file, $(numfmt --to=iec-i --suffix=B "$bytes") tree; medians of $RUNS (cold) and $((RUNS * 2)) (warm) runs; $(nproc) cores; source cache: $SOURCE_CACHE

| case | amlrun | baseline | baseline time | ratio | target |
| --- | ---: | --- | ---: | ---: | --- |
| cold (empty store) | ${cold_ours} s (CPU ${cold_ours_cpu} s) | \`cp -a\` | ${cold_cp} s (CPU ${cold_cp_cpu} s) | $(ratio "$cold_ours" "$cold_cp") | ≤ 1.2 |
| warm (one file changed) | ${warm_ours} s | \`rsync -a\` onto a copy | ${warm_rsync} s | $(ratio "$warm_ours" "$warm_rsync") | < 0.2 s and < 1 |

Load average before: $load_before, after: $load_after. CPU is user + system
time of the command; with fewer free cores than amlrun's threads, wall time
approaches CPU time.
EOF
