#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test through ctest:
#   1. the normal build (amlrun, amlrun-worker): unit and end-to-end tests;
#   2. lib/ without LibTorch, its unit tests and the end-to-end tests that
#      need no worker and no cluster, under AddressSanitizer + UBSan.
# It fails first on sources that clang-format would change, and on any
# clang-tidy finding in lib/ (scripts/lint.sh).
# As root it starts the Slurm test cluster for the Slurm end-to-end tests.
# Extra arguments go to the first ctest (e.g. scripts/test.sh -R e2e.local).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$AMLRUN_ROOT"

ensure_packages "${AMLRUN_PACKAGES[@]}"

log "checking formatting (clang-format)"
git ls-files -z -- 'lib/*.cpp' 'lib/*.hpp' 'cli/*.cpp' 'cli/*.hpp' 'tests/*.cpp' 'tests/*.hpp' |
  xargs -0 clang-format --dry-run -Werror

build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAMLRUN_WORKER=ON

log "checking lib/ with clang-tidy (scripts/lint.sh)"
scripts/lint.sh build

# The Slurm end-to-end tests run on a real two-node cluster on this machine
# (scripts/slurm-test-cluster.sh, root only). It is taken down afterwards
# only if this run started it, so a cluster someone else is using stays up.
if [ "$(id -u)" -eq 0 ]; then
  if ! scripts/slurm-test-cluster.sh status 2>/dev/null; then
    scripts/slurm-test-cluster.sh up
    trap 'scripts/slurm-test-cluster.sh down' EXIT
  fi
  # One NAME=value a line (SLURM_CONF, and the login node's for the SSH tests).
  while IFS= read -r line; do export "$line"; done < <(scripts/slurm-test-cluster.sh env)
  export AMLRUN_SLURM_TESTS=required  # fail, not skip, when the cluster does not answer
else
  log "not root: the Slurm end-to-end tests are skipped (they need scripts/slurm-test-cluster.sh up)"
fi

log "running tests (build)"
ctest --test-dir build --output-on-failure "$@"

if [ $# -eq 0 ]; then
  build build-asan -DCMAKE_BUILD_TYPE=Debug -DAMLRUN_SANITIZE=ON -DAMLRUN_WORKER=OFF
  # The unit tests and the end-to-end tests that need neither the worker
  # (not built here) nor the Slurm cluster (its nodes run the normal build's
  # staged binaries either way). The container tests run once, above: their
  # time is Docker's image builds (2-4 min), and amlrun's container code is
  # under the sanitizers in unit.env.
  log "running unit and end-to-end tests under ASan+UBSan (build-asan)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -E '^e2e[.](slurm|containers)'
fi
log "all tests passed"
