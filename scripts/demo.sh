#!/usr/bin/env bash
# Runs the main example job on this machine: installs missing Debian
# packages, builds amlrun, submits the job to the local compute target with
# streaming, and says where the outputs are. A second call skips what is done.
#   scripts/demo.sh [JOB_FILE]   (default: configs/jobs/train-fashion-mnist.yml)
# The default job trains a ResNet-18 with amlrun-worker on two MPI processes
# on a 10,000-image subset of Fashion-MNIST, made once into data/ from
# Debian's dataset-fashion-mnist package (a few minutes on two cores).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$AMLRUN_ROOT"

job="${1:-configs/jobs/train-fashion-mnist.yml}"
ensure_packages "${AMLRUN_PACKAGES[@]}"
build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAMLRUN_WORKER=ON
if [ "$job" = configs/jobs/train-fashion-mnist.yml ]; then
  scripts/fashion-mnist-to-folders.sh data/fashion-mnist --per-class 1000 --test-per-class 200
fi

log "submitting $job (workspace: $AMLRUN_ROOT/.amlrun)"
set +e
AMLRUN_WORKSPACE="$AMLRUN_ROOT/.amlrun" build/bin/amlrun submit "$job" --stream
status=$?
set -e
run_id="$(ls -t "$AMLRUN_ROOT/.amlrun/runs" | head -n 1)"
log "run $run_id ended with exit code $status"
log "outputs: $AMLRUN_ROOT/.amlrun/runs/$run_id/artifacts/outputs"
log "details: build/bin/amlrun show $run_id"
if [ "$job" = configs/jobs/train-fashion-mnist.yml ] && [ "$status" = 0 ]; then
  log "score the test images with it: build/bin/amlrun model register --name fashion-mnist --run $run_id --path outputs/model && build/bin/amlrun submit configs/jobs/score-fashion-mnist.yml --stream"
fi
exit "$status"
