#!/usr/bin/env bash
# Snapshot benchmark (issue 2, benchmark 2). Not run by CI.
#
#   tests/bench/bench_snapshot.sh            # RUNS=5 by default
#   RUNS=9 SOURCE_CACHE=dropped tests/bench/bench_snapshot.sh
#
# Builds a 10,000-file, 1 GiB tree (mixed sizes, nested directories) under
# $BENCH_DIR (default /tmp/amlrun-bench-snapshot; kept between runs), then
# times, with hyperfine, side by side:
#   cold: amlrun's take() into an empty store with no stat cache
#         vs `cp -a` of the same tree to a new directory;
#   warm: take() after one file changed (store and stat cache in place)
#         vs `rsync -a` onto an existing copy after the same change.
# Prints a markdown table of medians and ratios.
#
# Equal footing for the cold case: before every timed run (of either tool)
# the previous copy is deleted, `sync` flushes all dirty data (so neither
# run pays for the other's writeback), the page cache is dropped
# (/proc/sys/vm/drop_caches, when writable) and then, with the default
# SOURCE_CACHE=hot, the source tree is read once so both tools start with
# the source in the page cache and nothing else. SOURCE_CACHE=dropped skips
# that read, so both also read the source from disk. Neither timed command
# syncs its output: both leave it in the page cache for writeback.
# Measurements hold the build lock, so no compile runs meanwhile.
set -euo pipefail

source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/common.sh"

BUILD_DIR=${BUILD_DIR:-$AMLRUN_ROOT/build}
BENCH_DIR=${BENCH_DIR:-/tmp/amlrun-bench-snapshot}
RUNS=${RUNS:-5}
SOURCE_CACHE=${SOURCE_CACHE:-hot}
DRIVER=$BUILD_DIR/bin/snapshot_driver

ensure_packages rsync hyperfine python3
if [ ! -x "$DRIVER" ]; then
  build "$BUILD_DIR" -DAMLRUN_WORKER=OFF
fi

SRC=$BENCH_DIR/src
STORE=$BENCH_DIR/store
COPY=$BENCH_DIR/copy
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

median() {  # median <json> <command name>
  python3 - "$1" "$2" <<'PYTHON'
import json, statistics, sys
for result in json.load(open(sys.argv[1]))["results"]:
    if result["command"] == sys.argv[2]:
        print(f'{statistics.median(result["times"]):.3f}')
PYTHON
}

measure() {
  log "cold: take() into an empty store vs cp -a ($RUNS runs each)"
  hyperfine --style basic --runs "$RUNS" --export-json "$BENCH_DIR/cold.json" \
    --prepare "rm -rf '$STORE' '$COPY'; $settle" \
    -n amlrun "'$DRIVER' take '$SRC' '$STORE'" \
    -n "cp -a" "cp -a '$SRC' '$COPY'"

  log "warm: one file changed, take() vs rsync -a onto an existing copy ($((RUNS * 2)) runs each)"
  rm -rf "$STORE" "$COPY"
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
}
with_build_lock measure

cold_ours=$(median "$BENCH_DIR/cold.json" amlrun)
cold_cp=$(median "$BENCH_DIR/cold.json" "cp -a")
warm_ours=$(median "$BENCH_DIR/warm.json" amlrun)
warm_rsync=$(median "$BENCH_DIR/warm.json" "rsync -a")
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

cat <<EOF

Snapshot of a $(python3 -c "print(f'{$files:,}')")-file, $(numfmt --to=iec-i --suffix=B "$bytes") tree; medians of $RUNS (cold) and $((RUNS * 2)) (warm) runs; $(nproc) cores; source cache: $SOURCE_CACHE

| case | amlrun | baseline | baseline time | ratio | target |
| --- | ---: | --- | ---: | ---: | --- |
| cold (empty store) | ${cold_ours} s | \`cp -a\` | ${cold_cp} s | $(ratio "$cold_ours" "$cold_cp") | ≤ 1.2 |
| warm (one file changed) | ${warm_ours} s | \`rsync -a\` onto a copy | ${warm_rsync} s | $(ratio "$warm_ours" "$warm_rsync") | < 0.2 s and < 1 |
EOF
