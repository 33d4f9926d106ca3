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
# Files whose exact inputs passed before are skipped (scripts/lint-keys.py;
# the cache is ~/.cache/amlrun/clang-tidy, one empty file per passing key):
# clang-tidy takes ~14 s of CPU per file, and most runs change few files.
# AMLRUN_LINT_CACHE=0 checks every file.
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/amlrun/clang-tidy"
mkdir -p "$cache_dir"
to_check=()
keys=()
# The keys first, so a failure of lint-keys.py fails the lint instead of
# leaving nothing to check.
key_lines="$(python3 scripts/lint-keys.py "$build_dir" "$(clang-tidy --version)" "${files[@]}")"
while read -r key file; do
  if [ "$key" != "-" ] && [ "${AMLRUN_LINT_CACHE:-1}" != 0 ] && [ -e "$cache_dir/$key" ]; then
    continue
  fi
  to_check+=("$file")
  keys+=("$key")
done <<<"$key_lines"
if [ "$(wc -l <<<"$key_lines")" -ne ${#files[@]} ]; then
  log "lint: scripts/lint-keys.py gave $(wc -l <<<"$key_lines") keys for ${#files[@]} files"
  exit 2
fi
log "lint: ${#to_check[@]} of ${#files[@]} files to check (the rest passed with the same inputs before)"
[ ${#to_check[@]} -gt 0 ] || exit 0
# Each file separately, two at a time: clang-tidy prints nothing for a clean
# file, and --warnings-as-errors makes any finding a failure; a clean file's
# key is remembered.
for i in "${!to_check[@]}"; do
  printf '%s\0%s\0' "${to_check[$i]}" "${keys[$i]}"
done |
  xargs -0 -n 2 -P "$(nproc)" sh -c '
    clang-tidy -p "$0" --quiet --warnings-as-errors="*" "$2" 2>/dev/null || exit 1
    [ "$3" = "-" ] || : > "$1/$3"' "$build_dir" "$cache_dir"
