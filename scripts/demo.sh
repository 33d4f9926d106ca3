#!/usr/bin/env bash
# Runs the main example job on this machine: installs missing Debian
# packages, builds amlrun, submits the job to the local compute target with
# streaming, and says where the outputs are. A second call skips what is done.
#   scripts/demo.sh [JOB_FILE]   (default: configs/jobs/ddp-mlp.yml)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$AMLRUN_ROOT"

job="${1:-configs/jobs/ddp-mlp.yml}"
ensure_packages "${AMLRUN_PACKAGES[@]}"
build build -DCMAKE_BUILD_TYPE=RelWithDebInfo

log "submitting $job (workspace: $AMLRUN_ROOT/.amlrun)"
set +e
AMLRUN_WORKSPACE="$AMLRUN_ROOT/.amlrun" build/bin/amlrun submit "$job" --stream
status=$?
set -e
run_id="$(ls -t "$AMLRUN_ROOT/.amlrun/runs" | head -n 1)"
log "run $run_id ended with exit code $status"
log "outputs: $AMLRUN_ROOT/.amlrun/runs/$run_id/artifacts/outputs"
log "details: build/bin/amlrun show $run_id"
exit "$status"
