#!/usr/bin/env bash
# Sweep search quality (issue 13, benchmark 2): the median regret (best
# value found - the known optimum) after TRIALS trials over SEEDS seeds, on
# Branin (2-D) and Hartmann-6, for amlrun's random, sobol, tpe and bayesian
# sampling (bayesian: what a sweep uses, here the Gaussian process these
# continuous spaces get; tpe: the estimator spaces with a choice get), side
# by side with Optuna's TPE sampler (PyPI, default settings) on the same
# budget. Target: amlrun's bayesian at or below Optuna's median.
# Usage: tests/bench/bench_sweep_search.sh [TRIALS [SEEDS]]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
trials="${1:-50}"
seeds="${2:-10}"
[ -f "$AMLRUN_ROOT/build/build.ninja" ] || build "$AMLRUN_ROOT/build"
cmake --build "$AMLRUN_ROOT/build" --target sweep_search_driver >/dev/null
ensure_optuna_venv
driver="$AMLRUN_ROOT/build/bin/sweep_search_driver"
optuna_version="$("$AMLRUN_OPTUNA_VENV/bin/python" -c 'import optuna; print(optuna.__version__)')"

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

printf '%-10s %-10s %-16s %s\n' function sampler "median regret" "(trials $trials, seeds $seeds)"
for function in branin hartmann6; do
  for sampler in random sobol tpe bayesian; do
    start=$(date +%s.%N)
    regret=$("$driver" "$function" "$sampler" "$trials" "$seeds" | median)
    seconds=$(echo "$(date +%s.%N) - $start" | bc)
    printf '%-10s %-10s %-16s %.2f s\n' "$function" "amlrun $sampler" "$regret" "$seconds"
  done
  start=$(date +%s.%N)
  regret=$("$AMLRUN_OPTUNA_VENV/bin/python" "$AMLRUN_ROOT/tests/bench/python/optuna_search.py" \
    "$function" "$trials" "$seeds" | median)
  seconds=$(echo "$(date +%s.%N) - $start" | bc)
  printf '%-10s %-10s %-16s %.2f s\n' "$function" "optuna $optuna_version TPE" "$regret" "$seconds"
done
