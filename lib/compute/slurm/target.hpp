#pragma once
// Runs on an existing Slurm cluster. The workspace keeps run.json as the
// record; the run itself lives in a directory under the target's shared_dir
// (store::SlurmRunLayout; the contract in run_directory.hpp), which sbatch's
// batch script hands to `amlrun _slurm-run` on the first node (driver.cpp).
// refresh() brings the record up to date from squeue and the driver's status
// file, and collects the outputs and logs into the workspace when the job
// is over (collection.hpp).
//
// Submitting twice is impossible by construction: the record carries a
// random token, saved before sbatch runs and passed as the job's --comment,
// so when amlrun dies between the two the next command finds the job by its
// token instead of submitting it again. The token is also compared in every
// query and before every scancel: after slurmctld loses its state, job ids
// start again, and a job with this run's id but not its token is someone
// else's.
#include <chrono>
#include <filesystem>
#include <optional>

#include "lib/compute/compute_target.hpp"
#include "lib/compute/slurm/client.hpp"
#include "lib/compute/slurm/settings.hpp"
#include "lib/compute/slurm/slurm_state.hpp"
#include "lib/compute/slurm/status.hpp"
#include "lib/spec/job_spec.hpp"
#include "lib/store/run_layout.hpp"

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
  std::string partition_problem;   // "" when the configured partition exists (or none is set)
};

class SlurmTarget : public ComputeTarget {
 public:
  SlurmTarget(const workspace::Workspace& workspace, SlurmSettings settings,
              CommandRunner runner = system_command_runner());
  std::string name() const override { return m_settings.name; }
  std::string type() const override { return "slurm"; }
  void submit(store::RunStore& store, store::RunRecord& record, util::FileLock lock) override;
  void request_cancel(store::RunStore& store, const store::RunRecord& record) override;
  store::RunRecord refresh(store::RunStore& store, store::RunRecord record) override;
  std::vector<store::RunRecord> refresh_all(store::RunStore& store,
                                            std::vector<store::RunRecord> records) override;
  std::vector<std::filesystem::path> log_roots(const store::RunStore& store,
                                               const store::RunRecord& record) const override;
  // The shared run directory, where the driver's status file appears.
  std::vector<std::filesystem::path> state_directories(
      const store::RunStore& store, const store::RunRecord& record) const override;
  std::vector<std::pair<std::string, std::string>> describe(
      const store::RunRecord& record) const override;
  std::string progress_note(const store::RunRecord& record) const override;

  const SlurmSettings& settings() const { return m_settings; }
  const workspace::Workspace& workspace() const { return m_workspace; }
  const SlurmClient& client() const { return m_client; }
  // <shared_dir>/runs/<run id>
  std::filesystem::path shared_run_dir(const std::string& run_id) const;
  // Reachability (sinfo), partitions with their idle nodes, and shared_dir.
  virtual SlurmTargetReport report() const;

 private:
  store::SlurmRunLayout shared_layout(const store::RunRecord& record,
                                      const SlurmState& state) const;
  void ingest_metrics(store::RunStore& store, const store::RunRecord& record, SlurmState& state,
                      const std::filesystem::path& metrics_dir, bool final);
  void check_shared_dir() const;
  void prepare_run_directory(store::RunStore& store, store::RunRecord& record,
                             const spec::JobSpec& spec, const store::SlurmRunLayout& layout);
  std::vector<std::pair<std::string, std::string>> prepare_inputs(
      const spec::JobSpec& spec, const store::SlurmRunLayout& layout);
  int gpus_per_node(const spec::JobSpec& spec) const;
  // scancel, but only the job that carries this run's token.
  void cancel_job(const SlurmState& state) const;
  // squeue's view of the job, or nullopt when Slurm does not know it or the
  // job with that id is not this run's (another token).
  std::optional<SlurmJobInfo> own_job(const SlurmState& state,
                                      std::optional<SlurmJobInfo> job) const;

  // refresh() steps, with the run's refresh lock held. `asked` is what a
  // query for several runs already learned (refresh_all).
  store::RunRecord refresh_locked(store::RunStore& store, store::RunRecord record,
                                  std::optional<std::optional<SlurmJobInfo>> asked);
  void recover_submission(store::RunStore& store, store::RunRecord& record, SlurmState& state);
  void apply(store::RunStore& store, store::RunRecord& record, SlurmState& state,
             const SlurmVerdict& verdict, const SlurmObservation& seen);
  void finish(store::RunStore& store, store::RunRecord& record, SlurmState& state);
  void fail_before_submission(store::RunStore& store, store::RunRecord& record, SlurmState& state,
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
