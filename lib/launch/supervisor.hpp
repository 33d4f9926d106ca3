#pragma once
// The local supervisor: a detached process (`amlrun _supervise`) that owns one
// run from Preparing to its terminal state, so that losing the submitting
// amlrun never loses the run. It records every transition, the exit code and
// a failure reason; it ends every process of the run on timeout and cancel.
#include <filesystem>
#include <string>
#include <vector>

namespace amlrun::launch {

struct SupervisorOptions {
  std::filesystem::path workspace_root;  // the .amlrun directory
  std::string run_id;
  int lock_fd = -1;  // runs/<id>/supervisor.lock, locked by the submitter and inherited
};

// Returns 0 once a terminal state is recorded; non-zero only when even that
// failed (the next `amlrun show` then records the loss).
int supervise_run(const SupervisorOptions& options);

// Name of the file whose presence asks the supervisor to cancel the run.
inline constexpr const char* k_cancel_request_file = "cancel.request";
inline constexpr const char* k_supervisor_log_file = "supervisor.log";

// `amlrun _rank-exec`: run under mpirun (or srun), sets the torch variables
// from the launcher's rank variables, sends stdout and stderr to
// logs/user_logs/std_log_rank_<r>.txt and executes argv. Returns only on
// failure, with the exit code to use.
int exec_rank(const std::filesystem::path& logs_dir, int processes_per_node,
              const std::vector<std::string>& argv);

}  // namespace amlrun::launch
