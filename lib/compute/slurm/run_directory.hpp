#pragma once
// The contract between the two halves of a Slurm run: the submitting amlrun
// (target.cpp) writes a run directory under the target's shared_dir
// (store::SlurmRunLayout names every file in it), and `amlrun _slurm-run`
// (driver.cpp) runs the job from it on the first node of the allocation.
// Nodes may not see the workspace, so everything they need is there: the
// spec, the launch plan, the environment file, the environment record.
// The driver reports back through the status file.
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lib/store/run_record.hpp"

namespace amlrun::compute {

namespace fs = std::filesystem;

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
// Throws util::InfraError naming the file when it is not a plan.
SlurmLaunchPlan slurm_launch_plan_from_json(const std::string& text);

// The environment file: "KEY=value" entries separated by NUL bytes, so a
// value may hold anything but NUL (quotes, $(), newlines, commas), and it is
// never read by a shell. Keys must be shell identifiers.
std::string encode_environment_file(
    const std::vector<std::pair<std::string, std::string>>& variables);
// Throws util::InfraError naming the file when an entry is malformed.
std::vector<std::pair<std::string, std::string>> decode_environment_file(const std::string& data,
                                                                         const std::string& name);

// What the driver is doing, as it reports it in the status file:
//   running      the ranks of `attempt` were started
//   finalizing   they ended; outputs and logs are being sealed
//   ended        sealed; `result`, `exit_code` and `failure_reason` are final
//   interrupted  Slurm ended this attempt (time limit, preemption, node
//                failure, requeue, scancel by someone else): nothing was
//                sealed, the job may be requeued; Slurm's own state says why
enum class DriverState { running, finalizing, ended, interrupted };
std::string to_string(DriverState state);
std::optional<DriverState> driver_state_from_string(const std::string& text);

struct SlurmJobStatus {
  DriverState state = DriverState::running;
  int attempt = 1;
  std::string job_id;
  std::vector<std::string> nodes;
  bool started = false;  // the ranks of some attempt were started
  // ended only: Completed, Failed or Canceled.
  std::optional<store::RunState> result;
  std::optional<int> exit_code;
  std::string failure_reason;
  // When the ranks first started and when the driver ended the run, as the
  // node saw them (ISO 8601 UTC): the record's times come from here, not
  // from when the submitting side happened to look.
  std::string started_at;
  std::string ended_at;
  // How the environment was made ready on the node (venv mode).
  std::optional<store::PreparedEnvironment> environment;
  // What the ./outputs and ./logs sealing reported (deleted, replaced).
  std::vector<std::string> warnings;
  std::string updated_at;
};

// nullopt when the driver has not written one yet; util::InfraError when it
// is not a status file (someone else wrote it).
std::optional<SlurmJobStatus> read_slurm_status(const fs::path& run_dir);
void write_slurm_status(const fs::path& run_dir, const SlurmJobStatus& status);

// The port for MASTER_PORT of a Slurm job: derived from the job id, so every
// node computes the same one without talking to the others, and a requeued
// job keeps it.
int slurm_master_port(const std::string& job_id);

}  // namespace amlrun::compute
