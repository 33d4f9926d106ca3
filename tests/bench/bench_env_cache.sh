#!/usr/bin/env bash
# Benchmark of the environments issue: the Preparing time of a submit whose
# venv environment is already built (the cache hit), side by side with the
# same job in the host environment (no environment work at all). Preparing
# time = Starting - Preparing in the run record; median of 10.
# Target: under 0.1 s with the cached environment.
# Usage: tests/bench/bench_env_cache.sh [RUNS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
runs="${1:-10}"
[ -x "$AMLRUN_ROOT/build/bin/amlrun" ] || build "$AMLRUN_ROOT/build"
project="$(mktemp -d /tmp/amlrun-bench-env-XXXXXX)"
trap 'rm -rf "$project"' EXIT
mkdir -p "$project/src" "$project/pkg/tinypkg"
echo 'import tinypkg' > "$project/src/use.py"
echo 'VALUE = 1' > "$project/pkg/tinypkg/__init__.py"
printf 'from setuptools import setup\nsetup(name="tinypkg", version="0.1", packages=["tinypkg"])\n' > "$project/pkg/setup.py"
/usr/bin/python3 -m pip wheel --quiet --no-deps --no-build-isolation --no-index -w "$project/wheels" "$project/pkg"
printf 'source_directory: src\nentry_script: use.py\npip_packages: [tinypkg==0.1]\n' > "$project/venv.yml"
printf 'source_directory: src\nentry_script: use.py\nenvironment_variables: {PYTHONPATH: %s/pkg}\n' "$project" > "$project/host.yml"
"$AMLRUN_ROOT/build/bin/amlrun" init "$project" 2>/dev/null
printf 'environments:\n  python: /usr/bin/python3\n' > "$project/.amlrun/config.yml"
export PIP_NO_INDEX=1 PIP_FIND_LINKS="$project/wheels"
(cd "$project" && "$AMLRUN_ROOT/build/bin/amlrun" submit venv.yml >/dev/null)  # builds the venv
with_build_lock /usr/bin/python3 - "$AMLRUN_ROOT/build/bin/amlrun" "$project" "$runs" <<'PY'
import json, statistics, subprocess, sys
from datetime import datetime
amlrun, project, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def preparing_ms(job):
    out = subprocess.run([amlrun, "submit", "--output", "json", job], cwd=project,
                         capture_output=True, text=True, check=True).stdout
    record = json.loads(out)
    at = {h["state"]: datetime.strptime(h["at"], "%Y-%m-%dT%H:%M:%S.%fZ") for h in record["history"]}
    facts = record["target"].get("environment", {})
    assert facts.get("mode") != "venv" or facts.get("cache_hit"), facts
    return (at["Starting"] - at["Preparing"]).total_seconds() * 1000
venv = [preparing_ms("venv.yml") for _ in range(runs)]
host = [preparing_ms("host.yml") for _ in range(runs)]
print("| benchmark | amlrun | baseline | target |")
print("|---|---|---|---|")
print("| Preparing with a cached venv, median of %d | %.1f ms | host environment: %.1f ms | < 100 ms |"
      % (runs, statistics.median(venv), statistics.median(host)))
PY
