#pragma once
// The contract between the two halves of a Slurm run: the submitting amlrun
// (lib/compute/slurm_target) writes a run directory under the target's
// shared_dir, and `amlrun _slurm-run` (slurm_driver.cpp) runs the job from it
// on the first node of the allocation. Nodes may not see the workspace, so
// everything they need is in this directory:
//
//   <shared_dir>/runs/<run id>/
//     job.json       the normalised job spec
//     launch.json    how to launch it (SlurmLaunchPlan)
//     job.env        the job's environment_variables, NUL-separated KEY=value
//     environment.json  the job's environment (hash, mode, canonical form)
//     job.sbatch     the batch script (one exec of the driver, words quoted)
//     slurm-<id>.out the batch step's own output (the driver's log)
//     status.json    what the driver last did (SlurmJobStatus), atomically
//     cancel.request present when `amlrun cancel` asked for the end
//     wd/            the materialised snapshot with ./outputs and ./logs
//     inputs/        copied or downloaded inputs
//     artifacts/     outputs/ and logs/ once sealed
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lib/spec/job_spec.hpp"

namespace amlrun::launch {

namespace fs = std::filesystem;

inline constexpr const char* k_slurm_launch_file = "launch.json";
inline constexpr const char* k_slurm_environment_file = "job.env";
inline constexpr const char* k_slurm_script_file = "job.sbatch";
inline constexpr const char* k_slurm_status_file = "status.json";
inline constexpr const char* k_slurm_job_spec_file = "job.json";
inline constexpr const char* k_slurm_environment_record_file = "environment.json";

struct ContainerLaunch {
  std::string runtime;  // pyxis | apptainer
  std::string image;
};

// Everything the driver needs besides the spec; written once at submission.
struct SlurmLaunchPlan {
  std::string run_id;
  std::string experiment;
  fs::path workspace_root;  // informational on the nodes (AMLRUN_WORKSPACE)
  fs::path amlrun;          // the staged amlrun binary every node can run
  std::vector<std::pair<std::string, std::string>> inputs;   // name → path or literal value
  std::vector<std::pair<std::string, std::string>> outputs;  // name → path
  std::optional<std::int64_t> timeout_seconds;
  int kill_grace_seconds = 10;
  int gpus_per_node = 0;
  std::optional<ContainerLaunch> container;
  fs::path shared_dir;  // bound into containers
  // venv mode (packages listed, no container): built on the first node under
  // <shared_dir>/environments from environment.json, once per environment.
  bool venv = false;
  std::string venv_python = "python3";
  bool venv_system_site_packages = false;
};

std::string to_json_text(const SlurmLaunchPlan& plan);
SlurmLaunchPlan slurm_launch_plan_from_json(const std::string& text);

// The environment file: "KEY=value" entries separated by NUL bytes, so a
// value may hold anything but NUL (quotes, $(), newlines, commas), and it is
// never read by a shell. Keys must be shell identifiers.
std::string encode_environment_file(
    const std::vector<std::pair<std::string, std::string>>& variables);
// Throws util::InfraError naming the file when an entry is malformed.
std::vector<std::pair<std::string, std::string>> decode_environment_file(const std::string& data,
                                                                         const std::string& name);

// What the driver reports through status.json. `state`:
//   running      the ranks of `attempt` were started
//   finalizing   they ended; outputs and logs are being sealed
//   ended        sealed; `result`, `exit_code` and `failure_reason` are final
//   interrupted  Slurm ended this attempt (time limit, preemption, node
//                failure, scancel by someone else): nothing was sealed, the
//                job may be requeued; Slurm's own state says what happened
struct SlurmJobStatus {
  std::string state;
  int attempt = 1;
  std::string job_id;
  std::vector<std::string> nodes;
  bool started = false;  // the ranks of some attempt were started
  std::string result;    // Completed | Failed | Canceled (ended only)
  std::optional<int> exit_code;
  std::string failure_reason;
  std::string updated_at;
};

std::optional<SlurmJobStatus> read_slurm_status(const fs::path& run_dir);
void write_slurm_status(const fs::path& run_dir, const SlurmJobStatus& status);

// The port for MASTER_PORT of a Slurm job: derived from the job id, so every
// node computes the same one without talking to the others, and a requeued
// job keeps it.
int slurm_master_port(const std::string& job_id);

// `amlrun _slurm-run`: runs the job whose directory is `run_dir` inside its
// Slurm allocation and returns the exit code for the batch step.
int run_slurm_job(const fs::path& run_dir);

}  // namespace amlrun::launch
