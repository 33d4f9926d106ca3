#include "lib/compute/slurm_status.hpp"

#include <fmt/format.h>

namespace amlrun::compute {

namespace {

using store::RunState;

// The end of a job whose driver wrote no result: Slurm's state says why.
void judge_by_slurm_state(const SlurmObservation& seen, const SlurmJobInfo& job,
                          SlurmVerdict& verdict) {
  verdict.finished = true;
  bool started = seen.status.has_value();
  const std::string& id = seen.job_id;
  if (seen.status && seen.status->exit_code) verdict.exit_code = seen.status->exit_code;
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

SlurmVerdict judge_slurm_run(const SlurmObservation& seen) {
  SlurmVerdict verdict;
  if (seen.status) verdict.attempt = seen.status->attempt;
  if (seen.job) verdict.attempt = std::max(verdict.attempt, seen.job->restarts + 1);

  // The driver's own result is final: it saw the ranks end.
  if (seen.status && seen.status->state == "ended") {
    verdict.finished = true;
    verdict.exit_code = seen.status->exit_code;
    verdict.failure_reason = seen.status->failure_reason;
    verdict.final_state = seen.status->result == "Completed"  ? RunState::completed
                          : seen.status->result == "Canceled" ? RunState::canceled
                                                              : RunState::failed;
    return verdict;
  }
  if (seen.slurm_asked && seen.job && is_finished_slurm_state(seen.job->state)) {
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
  // Still going. A status file from an earlier attempt says nothing about a
  // requeued job that waits to start again.
  if (seen.status && (!seen.job || seen.status->attempt >= seen.job->restarts + 1)) {
    if (seen.status->state == "running") verdict.progress = RunState::running;
    if (seen.status->state == "finalizing") verdict.progress = RunState::finalizing;
  }
  return verdict;
}

}  // namespace amlrun::compute
