#pragma once
// Reading a Slurm run's state from what can be seen of it: the status file
// the node-side driver writes in the run directory, and squeue while
// slurmctld still holds the job. Accounting (sacct) is not needed: once
// Slurm forgets a job, the status file has the result. A pure function, so
// every combination is tested without a cluster.
//
// The caller asks squeue first and reads the status file after: a job that
// Slurm reports over has a driver that is over, so its final status is
// already written and the read sees it (the other order could see a
// "running" file, then a finished job, and judge by Slurm's state alone).
#include <optional>
#include <string>

#include "lib/compute/slurm/client.hpp"
#include "lib/compute/slurm/run_directory.hpp"
#include "lib/store/run_record.hpp"

namespace amlrun::compute {

struct SlurmObservation {
  std::string job_id;
  std::optional<SlurmJobStatus> status;  // the status file, when written
  bool slurm_asked = false;              // false: Slurm was not (or could not be) asked
  // When asked: nullopt = Slurm does not know the job (or it is another
  // job that reused the id: its comment is not this run's token).
  std::optional<SlurmJobInfo> job;
  bool cancel_requested = false;  // amlrun cancel asked for this run
  // Seconds since Slurm first reported the job over while the status file
  // said "interrupted" (a requeue may still come); nullopt before that.
  std::optional<double> interrupted_end_seconds;
};

// How long a job Slurm reports over may still turn out to be requeued,
// when its driver reported the attempt interrupted: slurmctld applies a
// requeue after the batch step's end, and squeue can show the end first.
inline constexpr double k_requeue_grace_seconds = 10;

struct SlurmVerdict {
  // Starting (a requeued job waits to run again), Running or Finalizing,
  // when that is news; nullopt: no news.
  std::optional<store::RunState> progress;
  int attempt = 1;
  bool finished = false;  // the job is over: collect it and record the result
  store::RunState final_state = store::RunState::failed;
  std::optional<int> exit_code;
  std::string failure_reason;
  // Failed for a reason outside the user's code (preemption, node failure,
  // a job Slurm lost or can never run): `amlrun submit/stream` exit with 3.
  bool infrastructure = false;
  // The job can never start (its pending reason cannot clear): cancel it.
  bool cancel_job = false;
  // Slurm reported the job over after an interrupted attempt: wait up to
  // k_requeue_grace_seconds before taking that as the end.
  bool waiting_for_requeue = false;
};

SlurmVerdict judge_slurm_run(const SlurmObservation& observation);

// True for pending reasons that no amount of waiting clears: the job asks
// for more than the partition or the cluster has.
bool is_hopeless_pending_reason(const std::string& reason);

// What a person following the run should read about a waiting job:
// "Slurm job 12 is PENDING (Resources: waiting for free nodes)".
std::string describe_pending(const std::string& job_id, const std::string& reason);

}  // namespace amlrun::compute
