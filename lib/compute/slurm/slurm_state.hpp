#pragma once
// The Slurm target's part of a run record (RunRecord::target), typed: how
// the job was submitted (its token), what Slurm last said of it, and a
// verdict reached but not yet collected.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/store/run_record.hpp"

namespace amlrun::compute {

// How far submission got: the token is saved before sbatch runs, the job id
// after it answers (or after a later amlrun found the job by its token).
enum class Submission { none, submitting, submitted, recovered };

// The end of the run, decided but not yet recorded: collection (copying the
// artifacts home) comes first, and may be interrupted.
struct SlurmResult {
  store::RunState state = store::RunState::failed;
  std::optional<int> exit_code;
  std::string failure_reason;
  bool infrastructure = false;
};

struct SlurmState {
  std::string shared_run_dir;
  std::string job_name;
  std::string comment;  // "amlrun:<run id>:<token>", the job's --comment
  std::vector<std::string> sbatch;
  Submission submission = Submission::none;
  std::string job_id;
  int attempt = 1;
  std::vector<std::string> nodes;
  // What squeue last said of the job while it lived.
  std::string slurm_state;
  std::string slurm_reason;
  // Why the status file or Slurm could not be read at the last look.
  std::string status_error;
  std::string slurm_error;
  std::string metrics_error;
  // The first time Slurm reported the job over while the driver had
  // reported an interrupted attempt (a requeue may still be on its way).
  std::string interrupted_end_seen_at;
  std::optional<SlurmResult> result;
};

SlurmState slurm_state_from_json(const nlohmann::json& json);
nlohmann::json to_json(const SlurmState& state);

}  // namespace amlrun::compute
