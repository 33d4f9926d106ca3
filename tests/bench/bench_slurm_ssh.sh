#!/usr/bin/env bash
# Benchmarks of a Slurm target reached over SSH (issue 14), on the test
# cluster's login node (scripts/slurm-test-cluster.sh; started here when it
# is not up, as root). amlrun runs as a "laptop": the target's ssh: settings
# point at the login node, and its master connection is warm (one submit
# before the measurements).
#   1. submit to first line: `amlrun submit --stream` of `echo first` until
#      the line is on amlrun's stdout, against sbatch run on the login node
#      by hand (here: sbatch of the equivalent script, its output file polled
#      every 5 ms). Medians of RUNS, interleaved. Target: overhead <= 0.5 s.
#   2. re-submit with one changed file in a 10,000-file source: bytes on the
#      wire (both directions, counted on the login node's link) and time,
#      against `rsync -a` of the same tree over ssh (its own warm master).
#      amlrun's figure is the whole `submit --no-wait`; its upload phase
#      (AMLRUN_TIMING marks) is shown beside it. Target: fewer bytes and less
#      time than rsync.
#   3. cold upload of a 10,000-file, ~1 GB tree (a workspace the cluster
#      has never seen; rsync into an empty folder): amlrun's upload phase
#      against rsync. Target: within 1.2x.
#   4. log latency over ssh: a job prints a wall-clock timestamp every 10 ms;
#      p50/p99 of the time until each line is on amlrun's stdout. Target:
#      p99 < 250 ms.
# Usage: tests/bench/bench_slurm_ssh.sh [RUNS] [LINES]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
runs="${1:-10}"
lines="${2:-300}"
[ -x "$AMLRUN_ROOT/build/bin/amlrun" ] || build "$AMLRUN_ROOT/build"
command -v rsync >/dev/null || { log "rsync is not installed (apt-get install rsync)"; exit 1; }

cluster="$AMLRUN_ROOT/scripts/slurm-test-cluster.sh"
if ! "$cluster" status >/dev/null 2>&1; then
  "$cluster" up
  trap '"$cluster" down; rm -rf "$project"' EXIT
else
  trap 'rm -rf "$project"' EXIT
fi
while IFS= read -r line; do export "$line"; done < <("$cluster" env)

project="$(mktemp -d /tmp/amlrun-bench-ssh-XXXXXX)"
chmod 755 "$project"
with_build_lock /usr/bin/python3 - "$AMLRUN_ROOT/build/bin/amlrun" "$project" "$runs" "$lines" \
  "$AMLRUN_ROOT/tests/bench/python" <<'PY'
import os, re, shutil, statistics, subprocess, sys, time
sys.path.insert(0, sys.argv[5])
from slurm_bench import amlrun_first_line, percentile, sbatch_first_line, wait_for_idle
amlrun, project, runs, lines = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
config, host = os.environ["AMLRUN_TEST_SSH_CONFIG"], os.environ["AMLRUN_TEST_SSH_HOST"]
LINK = "/sys/class/net/amlrun-loginh/statistics/"

def wire_bytes():
    return sum(int(open(LINK + name).read()) for name in ("rx_bytes", "tx_bytes"))

def make_workspace(root, shared):
    os.makedirs(root, exist_ok=True)
    os.makedirs(shared, exist_ok=True)
    subprocess.run([amlrun, "init", root], check=True, capture_output=True)
    with open(os.path.join(root, ".amlrun", "config.yml"), "w") as f:
        f.write("snapshot:\n  max_bytes: 2000000000\ncompute:\n  cluster:\n    type: slurm\n"
                "    shared_dir: %s\n    ssh: {host: %s, config_file: %s}\n" % (shared, host, config))

def write_tree(root, files, size):
    os.makedirs(root, exist_ok=True)
    block = os.urandom(size)
    for i in range(files):
        folder = os.path.join(root, "d%03d" % (i // 100))
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "f%05d.bin" % i), "wb") as f:
            f.write(b"%08d" % i + block[8:])  # each file its own content

def timed_submit(root, job):
    env = dict(os.environ, AMLRUN_TIMING="1")
    before, start = wire_bytes(), time.perf_counter()
    result = subprocess.run([amlrun, "submit", "--no-wait", job], cwd=root, env=env,
                            capture_output=True, text=True)
    elapsed, sent = time.perf_counter() - start, wire_bytes() - before
    assert result.returncode == 0, result.stderr
    marks = dict((m.group(1), float(m.group(2))) for m in
                 re.finditer(r"timing: (.+?) \+[0-9.]+ ms \(total ([0-9.]+) ms\)", result.stderr))
    upload = (marks["ssh: snapshot uploaded"] - marks["ssh: agent ready"]) / 1000
    return elapsed, sent, upload, result.stdout.strip()

def wait_done(root, run):
    subprocess.run([amlrun, "stream", run], cwd=root, capture_output=True, timeout=600)

rsync_master = os.path.join(project, "rsync.sock")
rsync_ssh = "ssh -F %s -o ControlMaster=auto -o ControlPersist=120 -o ControlPath=%s" % (
    config, rsync_master)
def rsync(source, target):
    before, start = wire_bytes(), time.perf_counter()
    subprocess.run(["rsync", "-a", "-e", rsync_ssh, source + "/", "%s:%s/" % (host, target)],
                   check=True)
    return time.perf_counter() - start, wire_bytes() - before

# 1. submit to first line
small = os.path.join(project, "small")
make_workspace(small, os.path.join(project, "shared-small"))
os.makedirs(os.path.join(small, "src"))
open(os.path.join(small, "src", "x.txt"), "w").write("x\n")
open(os.path.join(small, "first.yml"), "w").write("code: src\ncommand: echo first\ncompute: cluster\n")
plain = os.path.join(project, "plain")
os.makedirs(plain)
open(os.path.join(plain, "first.sh"), "w").write("#!/bin/sh\nsrun --ntasks=1 --unbuffered echo first\n")

wait_for_idle()
amlrun_first_line(amlrun, small)  # stages amlrun, starts the master connection
ours, baseline = [], []
for _ in range(runs):
    wait_for_idle()
    ours.append(amlrun_first_line(amlrun, small))
    wait_for_idle()
    baseline.append(sbatch_first_line(plain))

# 2 and 3: the 10,000-file trees
def tree_rows(label, files, size):
    root = os.path.join(project, label)
    shared = os.path.join(project, "shared-" + label)
    make_workspace(root, shared)
    write_tree(os.path.join(root, "src"), files, size)
    open(os.path.join(root, "job.yml"), "w").write("code: src\ncommand: 'true'\ncompute: cluster\n")
    rsync_target = os.path.join(project, "rsync-" + label)
    os.makedirs(rsync_target)
    wait_for_idle()
    cold = timed_submit(root, "job.yml")
    wait_done(root, cold[3])
    cold_rsync = rsync(os.path.join(root, "src"), rsync_target)
    with open(os.path.join(root, "src", "d050", "f05000.bin"), "ab") as f:
        f.write(b"one more line\n")
    wait_for_idle()
    warm = timed_submit(root, "job.yml")
    wait_done(root, warm[3])
    warm_rsync = rsync(os.path.join(root, "src"), rsync_target)
    shutil.rmtree(root)
    shutil.rmtree(shared)
    shutil.rmtree(rsync_target)
    return cold, cold_rsync, warm, warm_rsync

small_cold, small_cold_rsync, resubmit, resubmit_rsync = tree_rows("tree-small", 10000, 2000)
big_cold, big_cold_rsync, _, _ = tree_rows("tree-big", 10000, 100000)

# 4. log latency
open(os.path.join(small, "src", "ticks.py"), "w").write(
    "import sys, time\nfor _ in range(%d):\n    sys.stdout.write('%%d\\n' %% time.time_ns())\n"
    "    sys.stdout.flush()\n    time.sleep(0.01)\n" % lines)
open(os.path.join(small, "latency.yml"), "w").write(
    "code: src\ncommand: /usr/bin/python3 ticks.py\ncompute: cluster\n")
wait_for_idle()
process = subprocess.Popen([amlrun, "submit", "--stream", "latency.yml"], cwd=small,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
latency = []
for line in process.stdout:
    latency.append((time.time_ns() - int(line)) / 1e6)
assert process.wait() == 0 and len(latency) == lines, len(latency)

mib = lambda n: n / 2**20
print("| benchmark | amlrun | baseline | ratio | target |")
print("|---|---|---|---|---|")
m_ours, m_base = statistics.median(ours), statistics.median(baseline)
print("| Slurm over ssh: submit to first line, median of %d (warm master) | %.2f s | sbatch on the login node by hand: %.2f s | %+.2f s | overhead <= 0.5 s |"
      % (runs, m_ours, m_base, m_ours - m_base))
print("| Slurm over ssh: re-submit, 1 of 10,000 files changed: bytes on the wire | %.1f KiB | rsync -a over ssh: %.1f KiB | %.2fx | fewer bytes |"
      % (resubmit[1] / 1024, resubmit_rsync[1] / 1024, resubmit[1] / resubmit_rsync[1]))
print("| Slurm over ssh: re-submit, 1 of 10,000 files changed: time | %.2f s (upload %.2f s) | rsync -a over ssh: %.2f s | %.2fx | less time |"
      % (resubmit[0], resubmit[2], resubmit_rsync[0], resubmit[0] / resubmit_rsync[0]))
print("| Slurm over ssh: cold upload, 10,000 files / %.0f MiB | %.2f s (whole submit %.2f s; %.0f MiB on the wire) | rsync -a over ssh: %.2f s (%.0f MiB) | %.2fx | within 1.2x |"
      % (mib(10000 * 100000), big_cold[2], big_cold[0], mib(big_cold[1]), big_cold_rsync[0],
         mib(big_cold_rsync[1]), big_cold[2] / big_cold_rsync[0]))
print("| Slurm over ssh: cold upload, 10,000 files / %.0f MiB | %.2f s (whole submit %.2f s) | rsync -a over ssh: %.2f s | %.2fx | |"
      % (mib(10000 * 2000), small_cold[2], small_cold[0], small_cold_rsync[0],
         small_cold[2] / small_cold_rsync[0]))
print("| Slurm over ssh: log latency, p50 / p99 (%d lines) | %.1f / %.1f ms | | | p99 < 250 ms |"
      % (len(latency), percentile(latency, 50), percentile(latency, 99)))
print("(submit to first line: amlrun min %.2f / max %.2f s, sbatch min %.2f / max %.2f s)"
      % (min(ours), max(ours), min(baseline), max(baseline)))
PY
