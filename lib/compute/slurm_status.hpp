#pragma once
// Reading a Slurm run's state from what can be seen of it: the status file
// the node-side driver writes in the run directory, and squeue while
// slurmctld still holds the job. Accounting (sacct) is not needed: once
// Slurm forgets a job, the status file has the result. A pure function, so
// every combination is tested without a cluster.
#include <optional>
#include <string>

#include "lib/compute/slurm_client.hpp"
#include "lib/launch/slurm_job.hpp"
#include "lib/store/run_record.hpp"

namespace amlrun::compute {

struct SlurmObservation {
  std::string job_id;
  std::optional<launch::SlurmJobStatus> status;  // status.json, when written
  bool slurm_asked = false;                      // false: Slurm was not (or could not be) asked
  std::optional<SlurmJobInfo> job;  // when asked: nullopt = Slurm does not know the job
  bool cancel_requested = false;    // amlrun cancel asked for this run
};

struct SlurmVerdict {
  // Running or Finalizing, when the run has got that far; nullopt: no news.
  std::optional<store::RunState> progress;
  int attempt = 1;
  bool finished = false;  // the job is over: collect it and record the result
  store::RunState final_state = store::RunState::failed;
  std::optional<int> exit_code;
  std::string failure_reason;
  // Failed for a reason outside the user's code (preemption, node failure,
  // a job Slurm lost): `amlrun submit/stream` exit with 3, not 1.
  bool infrastructure = false;
};

SlurmVerdict judge_slurm_run(const SlurmObservation& observation);

}  // namespace amlrun::compute
