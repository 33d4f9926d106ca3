#!/usr/bin/env bash
# What it costs a run to get its working directory as copies (reflink, else
# copy_file_range) instead of hard links into the snapshot store. Not run by
# CI.
#
#   OLD_DRIVER=/tmp/old_snapshot_driver tests/bench/bench_materialize.sh
#   RUNS=9 BIG=0 OLD_DRIVER=... tests/bench/bench_materialize.sh   # small trees only
#
# OLD_DRIVER is a snapshot_driver built before materialize() stopped linking
# (its `materialize STORE ID TARGET` makes hard links); without it only the
# copies and `cp -a` are timed. Trees: 1 file (100 B), 100 files (1-8 KiB,
# 10 directories) and, unless BIG=0, 10,000 files / 1 GiB (the tree of
# bench_snapshot.sh). Each is snapshotted once; then every run materializes
# it into a new directory with each tool in turn (the order alternates), one
# process per run, wall time from outside (process start-up, about 1 ms, is
# in every figure). Before each timed run `sync` flushes the previous run's
# writes so no run pays for another's writeback; the store stays in the page
# cache, as it is right after a submit's snapshot. Outputs are removed only
# at the end (see bench_snapshot.sh on ext4's recently-deleted inodes).
# Measurements hold the build lock, so no compile runs meanwhile.
set -euo pipefail

source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/common.sh"

BUILD_DIR=${BUILD_DIR:-$AMLRUN_ROOT/build}
BENCH_DIR=${BENCH_DIR:-/tmp/amlrun-bench-materialize}
RUNS=${RUNS:-5}
BIG=${BIG:-1}
DRIVER=${DRIVER:-$BUILD_DIR/bin/snapshot_driver}
OLD_DRIVER=${OLD_DRIVER:-}

ensure_packages python3
if [ ! -x "$DRIVER" ]; then
  build "$BUILD_DIR" -DAMLRUN_WORKER=OFF
fi

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
trap 'rm -rf "$BENCH_DIR"' EXIT

measure() {
  python3 - "$BENCH_DIR" "$RUNS" "$BIG" "$DRIVER" "$OLD_DRIVER" <<'PYTHON'
import os, random, statistics, subprocess, sys, time

bench, runs, big, driver, old_driver = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], sys.argv[5]

def make_tree(root, kind):
    rng = random.Random(2024)
    if kind == "1 file":
        os.makedirs(root)
        with open(os.path.join(root, "train.py"), "w") as out:
            out.write("import torch\nprint('training', torch.__version__)\n" + "#" * 48 + "\n")
        return
    if kind == "100 files":
        sizes = [rng.randint(1024, 8192) for _ in range(100)]
    else:  # as bench_snapshot.sh: 10,000 files, exactly 1 GiB
        sizes = [rng.randint(1024, 8192) for _ in range(8000)]
        sizes += [rng.randint(20 * 1024, 400 * 1024) for _ in range(1900)]
        large = [rng.randint(2, 10) for _ in range(100)]
        remaining = (1 << 30) - sum(sizes)
        scaled = [remaining * w // sum(large) for w in large]
        scaled[-1] += remaining - sum(scaled)
        sizes += scaled
    for index, size in enumerate(sizes):
        directory = os.path.join(root, f"pkg{index % 10}", f"mod{(index // 10) % 10}")
        if index % 3 == 0:
            directory = os.path.join(directory, f"sub{(index // 100) % 4}")
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, f"file{index:05d}.bin"), "wb") as out:
            out.write(os.urandom(size))

tools = {}  # name -> argv(source, store, snapshot id, target)
if old_driver:
    tools["hard links (before)"] = lambda src, store, ident, out: [old_driver, "materialize", store, ident, out]
tools["copies (now)"] = lambda src, store, ident, out: [driver, "materialize", store, ident, out]
tools["cp -a"] = lambda src, store, ident, out: ["cp", "-a", src, out]

trees = ["1 file", "100 files"] + (["10,000 files, 1 GiB"] if big else [])
results = {}
for t, tree in enumerate(trees):
    source = os.path.join(bench, f"src{t}")
    store = os.path.join(bench, f"store{t}")
    make_tree(source, tree)
    ident = subprocess.run([driver, "take", source, store], check=True, capture_output=True,
                           text=True).stdout.split()[0]
    for run in range(runs):
        names = list(tools) if run % 2 == 0 else list(reversed(tools))
        for n, name in enumerate(names):
            target = os.path.join(bench, f"out{t}-{run}-{n}")
            subprocess.run(["sync"], check=True)
            start = time.perf_counter()
            subprocess.run(tools[name](source, store, ident, target), check=True)
            results.setdefault((tree, name), []).append((time.perf_counter() - start) * 1000)
        print(f"  {tree}, run {run + 1} of {runs}", file=sys.stderr)

print(f"\nmaterialize(): median (min-max) of {runs} runs, ms, one process per run")
print("\n| tree |" + "".join(f" {name} |" for name in tools) +
      (" copies / hard links |" if old_driver else ""))
print("| --- |" + " ---: |" * (len(tools) + (1 if old_driver else 0)))
for tree in trees:
    cells = []
    for name in tools:
        times = results[(tree, name)]
        cells.append(f" {statistics.median(times):.1f} ({min(times):.1f}-{max(times):.1f}) |")
    ratio = ""
    if old_driver:
        ratio = " %.2fx |" % (statistics.median(results[(tree, "copies (now)")]) /
                              statistics.median(results[(tree, "hard links (before)")]))
    print(f"| {tree} |" + "".join(cells) + ratio)
PYTHON
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
with_build_lock measure
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "$(nproc) cores; $(stat -f -c %T "$BENCH_DIR") filesystem; load average before: $load_before, after: $load_after"
