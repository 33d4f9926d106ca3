#!/usr/bin/env bash
# Snapshot latency on small trees: what take() adds to `amlrun submit` of a
# job whose source directory holds a file or a hundred. Not run by CI.
#
#   tests/bench/bench_snapshot_small.sh               # RUNS=21 by default
#   DRIVERS="/tmp/old_driver build/bin/snapshot_driver" tests/bench/bench_snapshot_small.sh
#
# Times take() inside tests/bench/snapshot_driver (its own clock around the
# call: no process start-up, no output), one fresh process per run, as a
# submit pays it. Trees: 1 file (a 100-byte train.py) and 100 files (1-8 KiB,
# 10 directories, some nested). Cases, each the median of RUNS:
#   cold:      an empty store (a new directory every run; no stat cache);
#   warm:      the same tree again, nothing changed (store and cache in place);
#   1 changed: one file rewritten with new content before every run.
# With several DRIVERS (binaries of snapshot_driver, e.g. before and after a
# change) their runs are interleaved, so both see the same machine.
# Stores are created in new directories and removed only at the end: on a
# filesystem without a journal (ext4 here), inodes freed in the last minute
# are skipped one by one when new ones are allocated, which would make every
# cold run pay for the previous run's deletion.
# Measurements hold the build lock, so no compile runs meanwhile; the load
# average before and after is printed with the table.
set -euo pipefail

source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/common.sh"

BUILD_DIR=${BUILD_DIR:-$AMLRUN_ROOT/build}
BENCH_DIR=${BENCH_DIR:-/tmp/amlrun-bench-snapshot-small}
RUNS=${RUNS:-21}
DRIVERS=${DRIVERS:-$BUILD_DIR/bin/snapshot_driver}

ensure_packages python3
if [ ! -x "$BUILD_DIR/bin/snapshot_driver" ]; then
  build "$BUILD_DIR" -DAMLRUN_WORKER=OFF
fi

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
trap 'rm -rf "$BENCH_DIR"' EXIT

measure() {
  python3 - "$BENCH_DIR" "$RUNS" $DRIVERS <<'PYTHON'
import os, random, statistics, subprocess, sys, time

bench, runs, drivers = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def make_tree(root, files):
    rng = random.Random(files)  # the same sizes for every driver
    if files == 1:
        os.makedirs(root)
        with open(os.path.join(root, "train.py"), "w") as out:
            out.write("import torch\nprint('training', torch.__version__)\n" + "#" * 48 + "\n")
        return
    for index in range(files):
        directory = os.path.join(root, f"pkg{index % 10}")
        if index % 4 == 0:
            directory = os.path.join(directory, "sub")
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, f"module{index:03d}.py"), "wb") as out:
            out.write(os.urandom(rng.randint(1024, 8192)))

def settle():
    time.sleep(0.05)  # past the coarse clock tick: the files are not racy

def take(driver, source, store):
    output = subprocess.run([driver, "take", source, store], check=True,
                            capture_output=True, text=True).stdout.split()
    return float(output[5]) * 1000, int(output[3])  # ms, files hashed

results = {}  # (tree, case, driver) -> [ms]
hashed = {}   # (tree, case, driver) -> files hashed in the last run
for files in (1, 100):
    tree = f"{files} file" + ("s" if files > 1 else "")
    for d, driver in enumerate(drivers):
        make_tree(os.path.join(bench, f"src{files}-{d}"), files)
    settle()
    for case in ("cold", "warm", "1 changed"):
        for d, driver in enumerate(drivers):
            if case != "cold":  # the store and cache of one cold run stay in place
                take(driver, os.path.join(bench, f"src{files}-{d}"), os.path.join(bench, f"store{files}-{d}"))
                settle()
        for run in range(runs):
            for d, driver in enumerate(drivers):
                source = os.path.join(bench, f"src{files}-{d}")
                store = os.path.join(bench, f"store{files}-{d}")
                if case == "cold":
                    store = os.path.join(bench, f"cold{files}-{d}-{run}")
                if case == "1 changed":
                    changed = os.path.join(source, "train.py") if files == 1 else \
                        os.path.join(source, "pkg3", "module003.py")
                    with open(changed, "wb") as out:
                        out.write(os.urandom(2048))
                    settle()
                ms, count = take(driver, source, store)
                results.setdefault((tree, case, driver), []).append(ms)
                hashed[(tree, case, driver)] = count

print(f"\ntake() on small trees: median (min-max) of {runs} runs, ms, one process per run")
header = "| tree | case | files read |" + "".join(f" {os.path.relpath(d)} |" for d in drivers)
print("\n" + header)
print("| --- | --- | ---: |" + " ---: |" * len(drivers))
for (tree, case) in dict.fromkeys((t, c) for (t, c, _) in results):
    cells = []
    for driver in drivers:
        times = results[(tree, case, driver)]
        cells.append(f" {statistics.median(times):.3f} ({min(times):.3f}-{max(times):.3f}) |")
    print(f"| {tree} | {case} | {hashed[(tree, case, drivers[-1])]} |" + "".join(cells))
PYTHON
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
with_build_lock measure
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "$(nproc) cores; load average before: $load_before, after: $load_after"
