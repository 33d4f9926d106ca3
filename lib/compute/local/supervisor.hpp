#pragma once
// The local supervisor: a detached process (`amlrun _supervise`) that owns one
// run from Preparing to its terminal state, so that losing the submitting
// amlrun never loses the run. It records every transition, the exit code and
// a failure reason; it ends every process of the run on timeout and cancel.
// Its stderr is the run's logs/system/supervisor.txt (LocalTarget::submit).
#include "lib/compute/detached_owner.hpp"

namespace amlrun::compute {

// Returns 0 once a terminal state is recorded; non-zero only when even that
// failed (the next `amlrun show` then records the loss).
int supervise_run(const OwnerOptions& options);

}  // namespace amlrun::compute
