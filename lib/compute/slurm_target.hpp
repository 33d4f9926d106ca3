#pragma once
// Runs on an existing Slurm cluster. The workspace keeps run.json as the
// record; the run itself lives in a directory under the target's shared_dir
// (see lib/launch/slurm_job.hpp), which sbatch's batch script hands to
// `amlrun _slurm-run` on the first node. refresh() brings the record up to
// date from that directory's status file and from squeue, and collects the
// sealed outputs and logs into the workspace when the job is over.
//
// Submitting twice is impossible by construction: the record carries a
// random token, saved before sbatch runs and passed as the job's --comment,
// so when amlrun dies between the two the next command finds the job by its
// token instead of submitting it again.
#include <chrono>
#include <filesystem>
#include <optional>

#include "lib/compute/compute_target.hpp"
#include "lib/compute/slurm_client.hpp"
#include "lib/compute/slurm_settings.hpp"
#include "lib/compute/slurm_status.hpp"
#include "lib/spec/job_spec.hpp"

namespace amlrun::compute {

// Test-only: with AMLRUN_TEST_SLURM_SUBMIT_EXIT=after-token submit exits
// (status 75, no clean-up) right after saving the token, before sbatch; with
// =after-sbatch right after sbatch accepted the job, before its id is saved.
// The end-to-end tests use it to stand in for an amlrun killed at that point.
inline constexpr const char* k_test_submit_exit_variable = "AMLRUN_TEST_SLURM_SUBMIT_EXIT";

// What `amlrun compute show` reports about a Slurm target.
struct SlurmTargetReport {
  bool reachable = false;
  std::string error;  // why Slurm could not be asked
  std::vector<SlurmPartition> partitions;
  std::string shared_dir_problem;  // "" when shared_dir exists and is writable
};

class SlurmTarget : public ComputeTarget {
 public:
  SlurmTarget(const workspace::Workspace& workspace, SlurmSettings settings,
              CommandRunner runner = system_command_runner());
  std::string name() const override { return m_settings.name; }
  std::string type() const override { return "slurm"; }
  void submit(store::RunStore& store, store::RunRecord& record, store::FileLock lock) override;
  void request_cancel(store::RunStore& store, const store::RunRecord& record) override;
  store::RunRecord refresh(store::RunStore& store, store::RunRecord record) override;
  std::vector<std::filesystem::path> log_directories(const store::RunStore& store,
                                                     const store::RunRecord& record) const override;
  // The shared run directory, where the driver's status.json appears.
  std::vector<std::filesystem::path> state_directories(
      const store::RunStore& store, const store::RunRecord& record) const override;

  const SlurmSettings& settings() const { return m_settings; }
  const SlurmClient& client() const { return m_client; }
  // <shared_dir>/runs/<run id>
  std::filesystem::path shared_run_dir(const std::string& run_id) const;
  // Reachability (sinfo), partitions with their idle nodes, and shared_dir.
  SlurmTargetReport report() const;

 private:
  void ingest_metrics(store::RunStore& store, store::RunRecord& record,
                      const std::filesystem::path& metrics_dir, bool final);
  void check_shared_dir() const;
  void prepare_run_directory(store::RunStore& store, store::RunRecord& record,
                             const spec::JobSpec& spec, const std::filesystem::path& run_dir);
  std::vector<std::pair<std::string, std::string>> prepare_inputs(
      const spec::JobSpec& spec, const std::filesystem::path& run_dir);
  std::filesystem::path stage_amlrun() const;
  int gpus_per_node(const spec::JobSpec& spec) const;

  // refresh() steps, with the run's refresh lock held.
  void recover_submission(store::RunStore& store, store::RunRecord& record);
  void apply(store::RunStore& store, store::RunRecord& record, const SlurmVerdict& verdict,
             const SlurmObservation& seen);
  void finish(store::RunStore& store, store::RunRecord& record);
  void collect(store::RunStore& store, const store::RunRecord& record);
  void fail_before_submission(store::RunStore& store, store::RunRecord& record,
                              const std::string& reason);

  workspace::Workspace m_workspace;
  SlurmSettings m_settings;
  SlurmClient m_client;
  // squeue is asked at most this often while a run goes on (streaming
  // refreshes once a second); every fresh target asks at once.
  std::chrono::milliseconds m_query_interval{2000};
  std::int64_t m_next_query_ms = 0;
};

}  // namespace amlrun::compute
