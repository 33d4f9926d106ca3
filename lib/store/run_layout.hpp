#pragma once
// Every name inside a run's directories, in one place. Two directories hold a
// run: its folder in the workspace (RunLayout) and, for a Slurm run, its
// folder under the target's shared_dir (SlurmRunLayout). Both share the part
// the run itself uses (RunTree):
//
//   <root>/
//     job.json          the normalised job spec
//     environment.json  the environment (hash, mode, canonical form)
//     cancel.request    present when `amlrun cancel` asked for the end
//     inputs/           copied or downloaded inputs
//     wd/               the working directory: the materialised snapshot,
//                       where the job writes ./outputs and ./logs
//     artifacts/
//       outputs/        ./outputs, once sealed
//       logs/           what amlrun captured, written here from the start,
//                       out of the job's working directory so that a job
//                       deleting ./logs loses nothing of it, and ./logs
//                       merged in when sealed:
//         user_logs/std_log_rank_<r>.txt   each rank's stdout and stderr
//         metrics/rank_<r>.jsonl           each rank's $AMLRUN_METRICS_FILE
//         system/                          amlrun's own logs
//
// The workspace folder (runs/<id>/) adds run.json, the supervisor's lock and
// log, the environment's build context and the Slurm refresh lock. The
// shared folder adds the launch plan, the environment file, the batch script,
// Slurm's batch output, the driver's status file and mpirun's hostfile.
//
// Relative names (k_*) are for util::SafeDir, which reaches them without
// following links; the methods give absolute paths.
#include <filesystem>
#include <string>

namespace amlrun::store {

namespace fs = std::filesystem;

inline constexpr const char* k_job_spec_file = "job.json";
inline constexpr const char* k_environment_record_file = "environment.json";
inline constexpr const char* k_cancel_request_file = "cancel.request";
inline constexpr const char* k_inputs_dir = "inputs";
inline constexpr const char* k_working_dir = "wd";
inline constexpr const char* k_artifacts_dir = "artifacts";
// Below the working directory: what the job writes.
inline constexpr const char* k_job_outputs_dir = "outputs";
inline constexpr const char* k_job_logs_dir = "logs";
// Below artifacts/logs: what amlrun captures.
inline constexpr const char* k_user_logs_dir = "user_logs";
inline constexpr const char* k_metrics_dir = "metrics";
inline constexpr const char* k_system_logs_dir = "system";

class RunTree {
 public:
  explicit RunTree(fs::path root) : m_root(std::move(root)) {}
  const fs::path& root() const { return m_root; }

  fs::path job_spec() const { return m_root / k_job_spec_file; }
  fs::path environment_record() const { return m_root / k_environment_record_file; }
  fs::path cancel_request() const { return m_root / k_cancel_request_file; }
  fs::path inputs() const { return m_root / k_inputs_dir; }
  fs::path working_dir() const { return m_root / k_working_dir; }
  // ./outputs and ./logs as the job sees them.
  fs::path job_outputs() const { return working_dir() / k_job_outputs_dir; }
  fs::path job_logs() const { return working_dir() / k_job_logs_dir; }
  fs::path artifacts() const { return m_root / k_artifacts_dir; }
  fs::path outputs() const { return artifacts() / k_job_outputs_dir; }
  fs::path logs() const { return artifacts() / k_job_logs_dir; }
  fs::path user_logs() const { return logs() / k_user_logs_dir; }
  fs::path metrics() const { return logs() / k_metrics_dir; }
  fs::path system_logs() const { return logs() / k_system_logs_dir; }
  fs::path rank_log(int rank) const { return user_logs() / rank_log_name(rank); }
  fs::path rank_metrics(int rank) const { return metrics() / rank_metrics_name(rank); }
  // What the tracking endpoint writes for a rank (beside the rank's own file,
  // which only the rank writes).
  fs::path tracking_metrics(int rank) const { return metrics() / tracking_metrics_name(rank); }

  // Relative to root(), for SafeDir.
  static std::string relative_logs();         // "artifacts/logs"
  static std::string relative_user_logs();    // "artifacts/logs/user_logs"
  static std::string relative_metrics();      // "artifacts/logs/metrics"
  static std::string relative_system_logs();  // "artifacts/logs/system"
  static std::string relative_outputs();      // "artifacts/outputs"

  static std::string rank_log_name(int rank);          // std_log_rank_<r>.txt
  static std::string rank_metrics_name(int rank);      // rank_<r>.jsonl
  static std::string tracking_metrics_name(int rank);  // mlflow_rank_<r>.jsonl

 private:
  fs::path m_root;
};

// runs/<id>/ in the workspace.
class RunLayout : public RunTree {
 public:
  using RunTree::RunTree;
  fs::path record() const { return root() / "run.json"; }
  // Held by the run's owner (the supervisor) for as long as it lives.
  fs::path owner_lock() const { return root() / "supervisor.lock"; }
  fs::path owner_log() const { return root() / "supervisor.log"; }
  // A sweep's decisions (compute/sweep/sweep_journal.hpp).
  fs::path sweep_journal() const { return root() / "sweep_journal.jsonl"; }
  fs::path environment_context() const { return root() / "environment-context"; }
  // Held while one amlrun brings a Slurm run's record up to date.
  fs::path slurm_refresh_lock() const { return root() / "slurm.lock"; }
  // Where a Slurm run's artifacts are gathered before they take their place.
  fs::path collecting() const { return root() / "artifacts.collecting"; }
  // A run on a Slurm target reached over SSH: the logs as they arrive from
  // the login node, a RunTree of its own until the artifacts come home.
  fs::path ssh_mirror() const { return root() / "mirror"; }
};

// <shared_dir>/runs/<id>/ for a Slurm run.
class SlurmRunLayout : public RunTree {
 public:
  using RunTree::RunTree;
  fs::path launch_plan() const { return root() / "launch.json"; }
  // The job's environment_variables, NUL-separated KEY=value.
  fs::path environment_file() const { return root() / "job.env"; }
  fs::path batch_script() const { return root() / k_batch_script_file; }
  // What the driver last did (SlurmJobStatus), written atomically.
  fs::path status() const { return root() / "status.json"; }
  fs::path hostfile() const { return root() / "hostfile"; }
  // Slurm's own output of the batch step (the driver's log): sbatch is
  // given the pattern, Slurm fills in the job id.
  fs::path batch_output_pattern() const { return root() / "slurm-%j.out"; }
  static std::string batch_output_name(const std::string& job_id);
  static bool is_batch_output_name(const std::string& name);

  static constexpr const char* k_batch_script_file = "job.sbatch";
};

}  // namespace amlrun::store
