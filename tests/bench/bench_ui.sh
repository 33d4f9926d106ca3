#!/usr/bin/env bash
# Benchmarks of `amlrun ui`, each beside its baseline in the same run:
# 1. The runs page's server time over a workspace of 10,000 runs (made by
#    store_driver): GET / (the newest 50), a filtered page and a deep page,
#    against `amlrun runs list` on the same workspace (the terminal's answer
#    to the same question, process start included). Target: < 150 ms.
# 2. A log line from the job's write to the browser's DOM (headless Chromium
#    with the run's page open; a MutationObserver stamps each line), p50 and
#    p99, against `amlrun stream` following the same run at the same time.
#    Target: p99 < 500 ms.
# Usage: tests/bench/bench_ui.sh [RUNS] [LINES]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
runs="${1:-10000}"
lines="${2:-400}"
[ -x "$AMLRUN_ROOT/build/bin/store_driver" ] || build "$AMLRUN_ROOT/build"
project="$(mktemp -d /tmp/amlrun-bench-ui-XXXXXX)"
trap 'rm -rf "$project"' EXIT
"$AMLRUN_ROOT/build/bin/store_driver" populate "$project/big" "$runs" >/dev/null
mkdir -p "$project/live/src"
"$AMLRUN_ROOT/build/bin/amlrun" init "$project/live" 2>/dev/null
cat > "$project/live/src/ticks.py" <<PY
import os, sys, time
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
for _ in range($lines):
    sys.stdout.write("%d\n" % time.time_ns())
    sys.stdout.flush()
    time.sleep(0.01)
PY
printf 'code: src\ncommand: /usr/bin/python3 ticks.py %s/go\nexperiment_name: latency\n' "$project" > "$project/live/job.yml"
with_build_lock env AMLRUN_BIN="$AMLRUN_ROOT/build/bin" /usr/bin/python3 - "$project" "$runs" <<'PY'
import json, os, statistics, subprocess, sys, threading, time
sys.path.insert(0, os.path.join(os.environ["AMLRUN_BIN"], "..", "..", "tests", "e2e"))
from ui_support import Browser, UiServer
from amlrun_e2e import AMLRUN
project, runs = sys.argv[1], int(sys.argv[2])

class Place:
    def __init__(self, root):
        self.root = root

def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

# 1. The runs page against `amlrun runs list`.
ui = UiServer(Place(os.path.join(project, "big")))
def page_ms(path, repeats=40):
    for _ in range(3):
        ui.get(path)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        status, _, body = ui.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert status == 200, (path, status, body[:300])
    return statistics.median(times), percentile(times, 95)
def cli_ms(args, repeats=20):
    argv = [AMLRUN, "--workspace", os.path.join(project, "big", ".amlrun"), "runs", "list", *args]
    subprocess.run(argv, check=True, capture_output=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), percentile(times, 95)
rows = []
for label, path, args in [
        ("newest 50", "/", []),
        ("status Failed, tag seed=3", "/?status=Failed&tag=seed%3D3", ["--status", "Failed", "--tag", "seed=3"]),
        ("page 100 (offset 4950)", "/?offset=4950", None)]:
    ours = page_ms(path)
    base = cli_ms(args) if args is not None else None
    rows.append((label, ours, base))
ui.stop()
print("| runs page, %d runs | `amlrun ui` median (p95) | `amlrun runs list` median (p95) | ratio | target |" % runs)
print("|---|---|---|---|---|")
for label, ours, base in rows:
    print("| %s | %.1f ms (%.1f) | %s | %s | < 150 ms |" % (
        label, ours[0], ours[1], "%.1f ms (%.1f)" % base if base else "no paging in the CLI",
        "%.2fx" % (ours[0] / base[0]) if base else "-"))

# 2. Log line to DOM, beside `amlrun stream` on the same run.
live = os.path.join(project, "live")
submitted = subprocess.run([AMLRUN, "submit", "job.yml", "--no-wait"], cwd=live, capture_output=True, text=True)
run_id = submitted.stderr.split("submitted ")[1].split()[0]
ui = UiServer(Place(live))
browser = Browser()
try:
    while json.load(open(os.path.join(live, ".amlrun", "runs", run_id, "run.json")))["state"] != "Running":
        time.sleep(0.02)
    browser.navigate(ui.base + "/runs/" + run_id)
    browser.evaluate("""window.arrivals = [];
      new MutationObserver(() => {
        const now = Date.now();
        const text = document.getElementById('log').textContent;
        const seen = window.arrivals.length;
        const lines = text.split('\\n').filter(l => l.length);
        for (let i = seen; i < lines.length; i++) window.arrivals.push([lines[i], now]);
      }).observe(document.getElementById('log'), {childList: true, characterData: true, subtree: true}); 1""")
    stream_times = []
    stream = subprocess.Popen([AMLRUN, "stream", run_id], cwd=live, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    def follow():
        for line in stream.stdout:
            stream_times.append((line.decode().strip(), time.time_ns()))
    reader = threading.Thread(target=follow)
    reader.start()
    time.sleep(0.5)
    open(os.path.join(project, "go"), "w").close()
    reader.join(timeout=120)
    browser.wait_for("window.arrivals.length >= 1")
    time.sleep(1)
    arrivals = browser.evaluate("window.arrivals")
finally:
    browser.close()
    ui.stop()
dom = [now_ms - int(text) / 1e6 for text, now_ms in arrivals if text.isdigit()]
term = [(arrived - int(text)) / 1e6 for text, arrived in stream_times if text.isdigit()]
print()
print("| log line to view (%d lines, 10 ms apart) | `amlrun ui` in Chromium | `amlrun stream` | ratio (p99) | target |" % len(dom))
print("|---|---|---|---|---|")
print("| p50 | %.1f ms | %.1f ms | | |" % (percentile(dom, 50), percentile(term, 50)))
print("| p99 | %.1f ms | %.1f ms | %.2fx | p99 < 500 ms |" % (percentile(dom, 99), percentile(term, 99),
                                                        percentile(dom, 99) / percentile(term, 99)))
assert len(dom) >= 0.95 * len(term), "the page saw %d lines, the stream %d" % (len(dom), len(term))
PY
