#!/usr/bin/env bash
# Benchmark of the containers issue: a submit of a container job whose image
# is already built, from the start of `amlrun submit --stream` to its first
# output line, side by side with `docker run` of the same image and program
# by hand (to its first output line). Interleaved, median of RUNS.
# Target: overhead under 150 ms. Needs a working docker (and root the first
# time, for scripts/base-image.sh).
# Usage: tests/bench/bench_container.sh [RUNS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
runs="${1:-10}"
[ -x "$AMLRUN_ROOT/build/bin/amlrun" ] || build "$AMLRUN_ROOT/build"
base="$("$AMLRUN_ROOT/scripts/base-image.sh" | tail -n 1)"
project="$(mktemp -d /tmp/amlrun-bench-container-XXXXXX)"
trap 'rm -rf "$project"' EXIT
mkdir -p "$project/src"
printf 'print("first line", flush=True)\n' > "$project/src/hello.py"
printf 'code: src\ncommand: python hello.py\nenvironment_variables: {BENCH: container}\n' > "$project/job.yml"
"$AMLRUN_ROOT/build/bin/amlrun" init "$project" 2>/dev/null
printf 'environments:\n  runtime: docker\n  cpu_image: %s\n' "$base" > "$project/.amlrun/config.yml"
image="$(cd "$project" && "$AMLRUN_ROOT/build/bin/amlrun" env build job.yml 2>/dev/null)"
/usr/bin/python3 - "$AMLRUN_ROOT/build/bin/amlrun" "$project" "$runs" "$image" <<'PY'
import statistics, subprocess, sys, time
amlrun, project, runs, image = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def first_line_ms(argv):
    start = time.monotonic()
    process = subprocess.Popen(argv, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    elapsed = (time.monotonic() - start) * 1000
    process.communicate()
    assert line == "first line\n", line
    return elapsed
amlrun_ms, docker_ms = [], []
for _ in range(runs):
    amlrun_ms.append(first_line_ms([amlrun, "submit", "--stream", "job.yml"]))
    docker_ms.append(first_line_ms(["docker", "run", "--rm", "--init", "--network", "host", image,
                                    "python", "-c", "print('first line', flush=True)"]))
a, d = statistics.median(amlrun_ms), statistics.median(docker_ms)
print("| second submit of a container job (image cached) to its first output line, median of %d "
      "| %.0f ms (min %.0f, max %.0f) | `docker run` of the same image and program: %.0f ms "
      "(min %.0f, max %.0f) | overhead %.0f ms | < 150 ms | `tests/bench/bench_container.sh` |"
      % (runs, a, min(amlrun_ms), max(amlrun_ms), d, min(docker_ms), max(docker_ms), a - d))
PY
