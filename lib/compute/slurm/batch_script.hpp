#pragma once
// What amlrun hands to sbatch. Scheduler options travel as sbatch's argv and
// never as #SBATCH lines, so no value can end a directive early or add one;
// the batch script holds a single exec of `amlrun _slurm-run` whose words
// pass through util::shell_quote; the job's environment variables travel in
// a NUL-separated file that amlrun reads on the node (no --export=A=x,B=y,
// whose commas would split values).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "lib/compute/slurm/settings.hpp"

namespace amlrun::compute {

struct SbatchRequest {
  std::string job_name;  // as the user wrote it; sanitised here
  std::string comment;   // the submission token
  int nodes = 1;
  int tasks_per_node = 1;
  std::optional<std::int64_t> timeout_seconds;
  int kill_grace_seconds = 10;
  int gpus_per_node = 0;
  std::filesystem::path run_dir;  // under shared_dir
  std::filesystem::path script;   // run_dir/job.sbatch
};

std::vector<std::string> sbatch_command(const SbatchRequest& request,
                                        const SlurmSettings& settings);

// The batch script: `exec AMLRUN _slurm-run --run-dir RUN_DIR`, quoted.
std::string batch_script(const std::filesystem::path& amlrun, const std::filesystem::path& run_dir);

// A job name squeue shows safely: [A-Za-z0-9._-], at most 64 characters;
// anything else becomes '_' (runs of them collapse). "amlrun" if nothing is left.
std::string slurm_job_name(const std::string& wanted);

// The Slurm time limit (whole minutes) backing up amlrun's own timeout: the
// timeout, the kill grace period and a minute for starting and sealing.
std::int64_t slurm_time_limit_minutes(std::int64_t timeout_seconds, int kill_grace_seconds);

// The text of --comment that marks a run's job: "amlrun:<run id>:<token>".
std::string slurm_submission_comment(const std::string& run_id, const std::string& token);

}  // namespace amlrun::compute
