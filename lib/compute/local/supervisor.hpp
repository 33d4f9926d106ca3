#pragma once
// The local supervisor: a detached process (`amlrun _supervise`) that owns one
// run from Preparing to its terminal state, so that losing the submitting
// amlrun never loses the run. It records every transition, the exit code and
// a failure reason; it ends every process of the run on timeout and cancel.
// Its stderr is the run's logs/system/supervisor.txt (LocalTarget::submit).
#include <filesystem>
#include <string>

namespace amlrun::compute {

struct SupervisorOptions {
  std::filesystem::path workspace_root;  // the .amlrun directory
  std::string run_id;
  int lock_fd = -1;  // runs/<id>/supervisor.lock, locked by the submitter and inherited
};

// Returns 0 once a terminal state is recorded; non-zero only when even that
// failed (the next `amlrun show` then records the loss).
int supervise_run(const SupervisorOptions& options);

}  // namespace amlrun::compute
