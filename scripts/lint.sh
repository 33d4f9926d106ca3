#!/usr/bin/env bash
# clang-tidy over lib/ (but lib/train, see below) with the checks .clang-tidy names, on the compile
# commands of a configured build folder (default: build). Any warning fails.
#   scripts/lint.sh [BUILD_DIR] [FILE...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$AMLRUN_ROOT"
build_dir="${1:-build}"
shift || true
if [ ! -f "$build_dir/compile_commands.json" ]; then
  log "lint: $build_dir/compile_commands.json is missing (configure $build_dir first)"
  exit 2
fi
if [ $# -gt 0 ]; then
  files=("$@")
else
  # Not lib/train: clang 14 (Debian's clang-tidy) cannot parse LibTorch
  # 1.13's headers against GCC 12's libstdc++ ("incomplete type
  # c10::IValue"), so it would report compiler errors there, not findings.
  mapfile -t files < <(git ls-files 'lib/*.cpp' ':!:lib/train/*')
fi
# Each file separately, two at a time: clang-tidy prints nothing for a clean
# file, and --warnings-as-errors makes any finding a failure.
printf '%s\0' "${files[@]}" |
  xargs -0 -n 1 -P "$(nproc)" clang-tidy -p "$build_dir" --quiet --warnings-as-errors='*' 2>/dev/null
