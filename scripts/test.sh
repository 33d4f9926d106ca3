#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test through ctest:
#   1. the normal build (amlrun, amlrun-worker): unit and end-to-end tests;
#   2. lib/ without LibTorch and the unit tests under AddressSanitizer + UBSan.
# Extra arguments go to the first ctest (e.g. scripts/test.sh -R e2e.local).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$AMLRUN_ROOT"

ensure_packages "${AMLRUN_PACKAGES[@]}"

build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
log "running tests (build)"
ctest --test-dir build --output-on-failure "$@"

if [ $# -eq 0 ]; then
  build build-asan -DCMAKE_BUILD_TYPE=Debug -DAMLRUN_SANITIZE=ON -DAMLRUN_WORKER=OFF
  log "running unit tests under ASan+UBSan (build-asan)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -L unit
fi
log "all tests passed"
