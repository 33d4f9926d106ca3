#pragma once
// Talking to Slurm through its client commands (sbatch, squeue, scancel,
// sinfo), always as argv and never through a shell. The commands run through
// a CommandRunner so tests can check the exact argv and feed canned answers.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lib/util/error.hpp"
#include "lib/util/process.hpp"

namespace amlrun::compute {

// A Slurm command that did not answer within its timeout: unlike a refusal,
// what it did is unknown (sbatch may have queued the job).
class SlurmNoAnswer : public util::InfraError {
 public:
  using InfraError::InfraError;
};

using CommandRunner = std::function<util::CaptureResult(const std::vector<std::string>& argv)>;

// Runs the real commands (PATH lookup, a timeout, no stdin).
CommandRunner system_command_runner(std::chrono::milliseconds timeout = std::chrono::seconds(60));

// One job as squeue reports it while slurmctld still holds it (MinJobAge
// after its end, 300 s by default).
struct SlurmJobInfo {
  std::string job_id;
  std::string state;   // PENDING, RUNNING, COMPLETING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
  std::string reason;  // "Resources", "Priority", "None", ...
  int restarts = 0;
  std::optional<int> exit_status;  // the wait status Slurm recorded (code << 8 | signal)
  std::string nodes;
  std::string comment;
};

// True for states in which no process of the job runs any more.
bool is_finished_slurm_state(const std::string& state);

struct SlurmPartition {
  std::string name;
  bool is_default = false;
  std::string availability;  // up, down, drain, inact
  std::string time_limit;    // "infinite", "1-00:00:00"
  int allocated = 0;
  int idle = 0;
  int other = 0;
  int total = 0;
  std::string nodes;  // n[1-2]
};

// Slurm's client commands failed: what they said, as a user should read it
// ("Slurm's authentication service (munge) is not answering ..." for the
// munge plugin's retry message). `command` is squeue, sinfo, ...
std::string explain_slurm_failure(const std::string& command, const std::string& stderr_text);

// Parsers of the commands' output (tested on their own).
std::vector<SlurmJobInfo> parse_squeue_jobs(const std::string& output);
std::vector<SlurmPartition> parse_sinfo_partitions(const std::string& output);
// "1234" or "1234;cluster" → "1234"; "" when not a job id.
std::string parse_sbatch_job_id(const std::string& output);

class SlurmClient {
 public:
  explicit SlurmClient(CommandRunner runner) : m_run(std::move(runner)) {}

  // `sbatch --parsable ...`: the job id. Throws util::InfraError quoting
  // sbatch's own message when it refuses the job or cannot be run.
  std::string submit(const std::vector<std::string>& sbatch_argv) const;
  // nullopt when Slurm does not know the job (never did, or forgot it);
  // util::InfraError when Slurm cannot be asked.
  std::optional<SlurmJobInfo> job(const std::string& job_id) const;
  // Every job of `job_ids` that Slurm knows, in one squeue call.
  std::vector<SlurmJobInfo> jobs(const std::vector<std::string>& job_ids) const;
  // This user's jobs whose comment is exactly `comment`.
  std::vector<SlurmJobInfo> jobs_with_comment(const std::string& comment) const;
  // scancel; a job that already ended is not an error.
  void cancel(const std::string& job_id) const;
  std::vector<SlurmPartition> partitions() const;

 private:
  util::CaptureResult run(const std::vector<std::string>& argv) const;
  CommandRunner m_run;
};

}  // namespace amlrun::compute
