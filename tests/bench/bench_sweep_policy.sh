#!/usr/bin/env bash
# Early termination (issue 13, benchmark 3): the intervals of training that
# bandit (POLICY bandit:SLACK_FACTOR:DELAY) and median stopping
# (median:DELAY) save against no policy on a synthetic family of
# learning curves (tests/bench/sweep_policy_driver.cpp: 40 trials of up to 20
# intervals, 4 at a time, 40% plateau high), and whether the best trial is
# still the one found, over SEEDS seeds. Target: >= 30% saved with the same
# best trial in >= 9 of 10 seeds.
# Usage: tests/bench/bench_sweep_policy.sh [SEEDS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
seeds="${1:-10}"
[ -f "$AMLRUN_ROOT/build/build.ninja" ] || build "$AMLRUN_ROOT/build"
cmake --build "$AMLRUN_ROOT/build" --target sweep_policy_driver >/dev/null
driver="$AMLRUN_ROOT/build/bin/sweep_policy_driver"
base="$("$driver" none "$seeds")"
printf '%-14s %-14s %-8s %s\n' "policy" "intervals run" saved "same best trial"
printf '%-14s %-14s %-8s %s\n' none "$(awk '{s += $2} END {print s}' <<<"$base")" "-" "-"
# Azure ML's documented examples first (bandit slack_factor 0.1 and median
# stopping, each from interval 5), then other settings a user might pick.
for policy in bandit:0.1:5 median:5 bandit:0.3:5 bandit:0.5:5 bandit:0.2:10 median:3; do
  out="$("$driver" "$policy" "$seeds")"
  paste <(echo "$base") <(echo "$out") | awk -v policy="$policy" -v seeds="$seeds" '
    { base += $2; run += $6; same += ($3 == $7) }
    END { printf "%-14s %-14d %-8s %d of %d\n", policy, run, sprintf("%.1f%%", 100 * (base - run) / base), same, seeds }'
done
