#include "lib/compute/slurm/status.hpp"

#include <fmt/format.h>

namespace amlrun::compute {

namespace {

using store::RunState;

// The end of a job whose driver wrote no result: Slurm's state says why.
void judge_by_slurm_state(const SlurmObservation& seen, const SlurmJobInfo& job,
                          SlurmVerdict& verdict) {
  verdict.finished = true;
  bool started = seen.status.has_value();
  bool interrupted = seen.status && seen.status->state == DriverState::interrupted;
  const std::string& id = seen.job_id;
  // The exit code of an attempt Slurm interrupted is Slurm's doing
  // (SIGTERM's 143), not the program's: it is not the run's.
  if (seen.status && seen.status->exit_code && !interrupted) {
    verdict.exit_code = seen.status->exit_code;
  }
  if (job.state == "CANCELLED") {
    verdict.final_state = RunState::canceled;
    verdict.failure_reason =
        seen.cancel_requested
            ? (started ? "canceled by user (amlrun cancel)"
                       : "canceled by user (amlrun cancel) before it started")
            : fmt::format(
                  "canceled in Slurm: job {} was canceled outside amlrun (scancel, or an "
                  "administrator)",
                  id);
    return;
  }
  verdict.final_state = RunState::failed;
  if (job.state == "TIMEOUT") {
    // Slurm's time limit backs up amlrun's own; both read "timeout".
    verdict.failure_reason = "timeout";
  } else if (job.state == "PREEMPTED") {
    verdict.infrastructure = true;
    verdict.failure_reason = fmt::format(
        "preempted: Slurm preempted job {} for other work (not a failure of the code)", id);
  } else if (job.state == "NODE_FAIL" || job.state == "BOOT_FAIL") {
    verdict.infrastructure = true;
    verdict.failure_reason =
        fmt::format("node failure: a node of Slurm job {} {} (not a failure of the code)", id,
                    job.state == "NODE_FAIL" ? "failed" : "failed to boot");
  } else if (job.state == "OUT_OF_MEMORY") {
    verdict.failure_reason = fmt::format(
        "out of memory: Slurm ended job {} for using more memory than it asked for", id);
  } else if (job.state == "DEADLINE") {
    verdict.failure_reason = fmt::format("Slurm ended job {} at its deadline", id);
  } else if (interrupted) {
    verdict.infrastructure = true;
    verdict.failure_reason = fmt::format(
        "Slurm ended attempt {} of job {} ({}) and did not run it again; the batch output is "
        "logs/system/slurm-{}.out",
        seen.status->attempt, id, job.state, id);
  } else {
    verdict.infrastructure = true;
    if (!verdict.exit_code && job.exit_status) verdict.exit_code = *job.exit_status >> 8;
    verdict.failure_reason = fmt::format(
        "the Slurm batch job {} ended ({}) without a result from amlrun on the node; "
        "its output is in logs/system/slurm-{}.out",
        id, job.state, id);
  }
}

}  // namespace

bool is_hopeless_pending_reason(const std::string& reason) {
  // The job asks for more than its partition allows or the cluster has, or
  // names an account, QOS or constraint that cannot be met: an
  // administrator's change could clear it, waiting cannot.
  for (const char* never :
       {"PartitionConfig", "PartitionNodeLimit", "PartitionTimeLimit", "BadConstraints",
        "InvalidAccount", "InvalidQOS", "AccountNotAllowed", "QOSNotAllowed", "PartitionDown"}) {
    if (reason == never) return true;
  }
  // A per-job limit of a QOS or an association that this one job exceeds
  // (QOSMaxCpuPerJobLimit, AssocMaxNodesPerJobLimit, ...).
  bool per_job = reason.find("PerJob") != std::string::npos;
  bool limit = reason.starts_with("QOSMax") || reason.starts_with("AssocMax");
  return per_job && limit;
}

std::string describe_pending(const std::string& job_id, const std::string& reason) {
  std::string why;
  if (reason == "Resources") {
    why = ": waiting for free nodes";
  } else if (reason == "Priority") {
    why = ": other jobs come first";
  } else if (reason == "BeginTime") {
    why = ": held until its start time (a requeued job waits a little before it runs again)";
  } else if (reason.starts_with("ReqNodeNotAvail")) {
    why = ": nodes it needs are down, drained or reserved";
  } else if (reason == "PartitionConfig" || reason == "PartitionNodeLimit") {
    why = ": it asks for more nodes, CPUs or GPUs per node than its partition has";
  } else if (reason == "PartitionTimeLimit") {
    why = ": its time limit is longer than its partition allows";
  }
  if (reason.empty() || reason == "None") return fmt::format("Slurm job {} is PENDING", job_id);
  return fmt::format("Slurm job {} is PENDING ({}{})", job_id, reason, why);
}

SlurmVerdict judge_slurm_run(const SlurmObservation& seen) {
  SlurmVerdict verdict;
  if (seen.status) verdict.attempt = seen.status->attempt;
  if (seen.job) verdict.attempt = std::max(verdict.attempt, seen.job->restarts + 1);

  // The driver's own result is final: it saw the ranks end.
  if (seen.status && seen.status->state == DriverState::ended) {
    verdict.finished = true;
    verdict.exit_code = seen.status->exit_code;
    verdict.failure_reason = seen.status->failure_reason;
    verdict.final_state = seen.status->result.value_or(RunState::failed);
    return verdict;
  }
  if (seen.slurm_asked && seen.job && is_finished_slurm_state(seen.job->state)) {
    // An attempt Slurm interrupted may be requeued a moment after squeue
    // shows its end (FAILED, COMPLETED): give the requeue its chance.
    bool interrupted = seen.status && seen.status->state == DriverState::interrupted;
    bool user_or_slurm_ending = seen.job->state == "CANCELLED" || seen.job->state == "TIMEOUT" ||
                                seen.job->state == "NODE_FAIL" || seen.job->state == "PREEMPTED";
    if (interrupted && !user_or_slurm_ending && !seen.cancel_requested &&
        seen.interrupted_end_seconds.value_or(0) < k_requeue_grace_seconds) {
      verdict.waiting_for_requeue = true;
      return verdict;
    }
    judge_by_slurm_state(seen, *seen.job, verdict);
    return verdict;
  }
  if (seen.slurm_asked && !seen.job) {
    verdict.finished = true;
    verdict.infrastructure = true;
    verdict.final_state = seen.cancel_requested ? RunState::canceled : RunState::failed;
    verdict.failure_reason =
        seen.cancel_requested
            ? "canceled by user (amlrun cancel)"
            : fmt::format(
                  "Slurm no longer knows job {} and it left no result (it was purged, or "
                  "slurmctld lost its state)",
                  seen.job_id);
    return verdict;
  }
  if (seen.slurm_asked && seen.job && seen.job->state == "PENDING" &&
      is_hopeless_pending_reason(seen.job->reason)) {
    verdict.finished = true;
    verdict.infrastructure = true;
    verdict.cancel_job = true;
    verdict.final_state = RunState::failed;
    verdict.failure_reason =
        describe_pending(seen.job_id, seen.job->reason) +
        "; it can never start, so amlrun canceled it: change the job's resources (or the "
        "target's partition) and submit it again";
    return verdict;
  }
  // Still going. A requeued job that waits to start again is Starting.
  bool requeued_and_waiting = seen.job && seen.job->state == "PENDING" && seen.job->restarts > 0;
  if (requeued_and_waiting) {
    verdict.progress = RunState::starting;
    return verdict;
  }
  // A status file from an earlier attempt says nothing about a requeued job
  // that waits to start again.
  if (seen.status && (!seen.job || seen.status->attempt >= seen.job->restarts + 1)) {
    if (seen.status->state == DriverState::running) verdict.progress = RunState::running;
    if (seen.status->state == DriverState::finalizing) verdict.progress = RunState::finalizing;
  }
  return verdict;
}

}  // namespace amlrun::compute
