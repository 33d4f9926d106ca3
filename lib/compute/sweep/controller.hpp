#pragma once
// The sweep controller: a detached process (`amlrun _sweep`) that owns a
// sweep run from start to end, as the local supervisor owns a run. It
// proposes trials (random, sobol, grid or Bayesian), starts each as a child
// run on the sweep's compute target (never more than max_concurrent_trials
// at once, never more than max_total_trials in all), follows their primary
// metric, ends trials an early-termination policy condemns, enforces the
// sweep's timeout, and records the best trial. Its stderr is the run's
// logs/system/sweep_controller.txt; what a user following the sweep reads
// (one line per trial start and end, the best so far) is the sweep's
// std_log_rank_0.txt.
//
// Every decision goes to the sweep journal before it is acted on, so a
// controller killed at any moment and started again (SweepTarget::refresh)
// resumes without running a trial twice or losing one.
#include "lib/compute/detached_owner.hpp"

namespace amlrun::compute {

// Returns 0 once the sweep's terminal state is recorded.
int control_sweep(const OwnerOptions& options);

}  // namespace amlrun::compute
