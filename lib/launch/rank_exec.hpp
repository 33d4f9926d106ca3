#pragma once
// `amlrun _rank-exec`: the wrapper mpirun (or srun) starts for each rank.
#include <filesystem>
#include <string>
#include <vector>

namespace amlrun::launch {

// Sets the torch variables from the launcher's rank variables, sends stdout
// and stderr to the rank's log under the run directory `run_dir`
// (artifacts/logs/user_logs/std_log_rank_<r>.txt, opened without following
// links) and executes argv. Without `torch_contract` (single-process jobs)
// only the per-rank metrics file and log are set up. Returns only on
// failure, with the exit code to use.
int exec_rank(const std::filesystem::path& run_dir, int processes_per_node, bool torch_contract,
              const std::vector<std::string>& argv);

}  // namespace amlrun::launch
