// Reading a Slurm run's state from its status file and squeue, and parsing
// what Slurm's commands print.
#include <catch2/catch.hpp>

#include "lib/compute/slurm/client.hpp"
#include "lib/compute/slurm/status.hpp"

using namespace amlrun;
using compute::judge_slurm_run;
using compute::SlurmObservation;
using store::RunState;

namespace {

compute::SlurmJobStatus status(const std::string& state, int attempt = 1) {
  compute::SlurmJobStatus s;
  s.state = *compute::driver_state_from_string(state);
  s.attempt = attempt;
  s.job_id = "42";
  s.started = state != "none";
  return s;
}

compute::SlurmJobInfo job(const std::string& state, int restarts = 0) {
  compute::SlurmJobInfo j;
  j.job_id = "42";
  j.state = state;
  j.restarts = restarts;
  return j;
}

SlurmObservation seen(std::optional<compute::SlurmJobStatus> s,
                      std::optional<compute::SlurmJobInfo> j, bool asked = true) {
  SlurmObservation o;
  o.job_id = "42";
  o.status = std::move(s);
  o.slurm_asked = asked;
  o.job = std::move(j);
  return o;
}

}  // namespace

TEST_CASE("the driver's result is final") {
  auto ended = status("ended");
  ended.result = RunState::failed;
  ended.exit_code = 3;
  ended.failure_reason = "rank 1 exited with code 3";
  auto verdict = judge_slurm_run(seen(ended, job("COMPLETING")));
  CHECK(verdict.finished);
  CHECK(verdict.final_state == RunState::failed);
  CHECK(verdict.exit_code == 3);
  CHECK(verdict.failure_reason == "rank 1 exited with code 3");
  CHECK_FALSE(verdict.infrastructure);
  // Accounting may be absent and slurmctld may have forgotten the job.
  ended.result = RunState::completed;
  ended.exit_code = 0;
  ended.failure_reason = "";
  verdict = judge_slurm_run(seen(ended, std::nullopt));
  CHECK(verdict.finished);
  CHECK(verdict.final_state == RunState::completed);
}

TEST_CASE("progress comes from the status file of the current attempt") {
  CHECK_FALSE(judge_slurm_run(seen(std::nullopt, job("PENDING"))).progress);
  CHECK(judge_slurm_run(seen(status("running"), job("RUNNING"))).progress == RunState::running);
  CHECK(judge_slurm_run(seen(status("finalizing"), job("COMPLETING"))).progress ==
        RunState::finalizing);
  // Unreachable Slurm: the status file still tells.
  CHECK(judge_slurm_run(seen(status("running"), std::nullopt, false)).progress ==
        RunState::running);
  CHECK_FALSE(judge_slurm_run(seen(std::nullopt, std::nullopt, false)).finished);
}

TEST_CASE("a requeued job counts attempts and waits without claiming to run") {
  auto verdict = judge_slurm_run(seen(status("interrupted", 1), job("PENDING", 1)));
  CHECK(verdict.attempt == 2);
  CHECK_FALSE(verdict.finished);
  // It waits to start again: Starting, not Running.
  CHECK(verdict.progress == RunState::starting);
  // A stale "running" of attempt 1 says nothing about attempt 2.
  CHECK(judge_slurm_run(seen(status("running", 1), job("PENDING", 1))).progress ==
        RunState::starting);
  CHECK(judge_slurm_run(seen(status("running", 2), job("RUNNING", 1))).progress ==
        RunState::running);
}

TEST_CASE("Slurm's own endings are reported as such") {
  auto preempted = judge_slurm_run(seen(status("interrupted"), job("PREEMPTED")));
  CHECK(preempted.finished);
  CHECK(preempted.final_state == RunState::failed);
  CHECK(preempted.infrastructure);
  CHECK(preempted.failure_reason ==
        "preempted: Slurm preempted job 42 for other work (not a failure of the code)");

  auto node_fail = judge_slurm_run(seen(status("running"), job("NODE_FAIL")));
  CHECK(node_fail.infrastructure);
  CHECK(node_fail.failure_reason ==
        "node failure: a node of Slurm job 42 failed (not a failure of the code)");

  auto timeout = judge_slurm_run(seen(status("interrupted"), job("TIMEOUT")));
  CHECK(timeout.failure_reason == "timeout");
  CHECK_FALSE(timeout.infrastructure);

  auto oom = judge_slurm_run(seen(status("running"), job("OUT_OF_MEMORY")));
  CHECK(oom.failure_reason ==
        "out of memory: Slurm ended job 42 for using more memory than it asked for");

  auto lost = job("FAILED");
  lost.exit_status = 127 << 8;
  auto no_driver = judge_slurm_run(seen(std::nullopt, lost));
  CHECK(no_driver.infrastructure);
  CHECK(no_driver.exit_code == 127);
  CHECK(no_driver.failure_reason ==
        "the Slurm batch job 42 ended (FAILED) without a result from amlrun on the node; its "
        "output is in logs/system/slurm-42.out");
}

TEST_CASE("a canceled job is Canceled, and says who canceled it") {
  auto by_user = seen(std::nullopt, job("CANCELLED"));
  by_user.cancel_requested = true;
  auto verdict = judge_slurm_run(by_user);
  CHECK(verdict.final_state == RunState::canceled);
  CHECK(verdict.failure_reason == "canceled by user (amlrun cancel) before it started");
  by_user.status = status("running");
  CHECK(judge_slurm_run(by_user).failure_reason == "canceled by user (amlrun cancel)");
  CHECK(judge_slurm_run(seen(status("interrupted"), job("CANCELLED"))).failure_reason ==
        "canceled in Slurm: job 42 was canceled outside amlrun (scancel, or an administrator)");
}

TEST_CASE("a job Slurm forgot without a result is a failure of the infrastructure") {
  auto verdict = judge_slurm_run(seen(status("running"), std::nullopt));
  CHECK(verdict.finished);
  CHECK(verdict.infrastructure);
  CHECK(verdict.failure_reason ==
        "Slurm no longer knows job 42 and it left no result (it was purged, or slurmctld lost its "
        "state)");
}

TEST_CASE("squeue, sinfo and sbatch output is parsed") {
  auto jobs = compute::parse_squeue_jobs(
      "7|FAILED|NonZeroExitCode|0|1280|n[1-2]|amlrun:exp_1:ab|c|d\n"
      "8|PENDING|Resources|2|0||(null)\n"
      "squeue: warning: something\n");
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].job_id == "7");
  CHECK(jobs[0].state == "FAILED");
  CHECK(jobs[0].reason == "NonZeroExitCode");
  CHECK(jobs[0].exit_status == 1280);
  CHECK(jobs[0].nodes == "n[1-2]");
  CHECK(jobs[0].comment == "amlrun:exp_1:ab|c|d");
  CHECK(jobs[1].restarts == 2);
  CHECK(jobs[1].comment.empty());

  auto partitions = compute::parse_sinfo_partitions(
      "debug*|up|infinite|0/2/0/2|n[1-2]\n"
      "gpu|up|1-00:00:00|3/1/4/8|g[01-08]\n");
  REQUIRE(partitions.size() == 2);
  CHECK(partitions[0].name == "debug");
  CHECK(partitions[0].is_default);
  CHECK(partitions[0].idle == 2);
  CHECK(partitions[1].allocated == 3);
  CHECK(partitions[1].other == 4);
  CHECK(partitions[1].total == 8);
  CHECK(partitions[1].time_limit == "1-00:00:00");

  CHECK(compute::parse_sbatch_job_id("1234\n") == "1234");
  CHECK(compute::parse_sbatch_job_id("1234;cluster\n") == "1234");
  CHECK(compute::parse_sbatch_job_id("sbatch: error: Batch job submission failed\n").empty());
}

TEST_CASE("an interrupted attempt that Slurm shows ended may still be requeued") {
  // slurmctld requeues a job after its batch step ended: squeue can show the
  // end (FAILED, exit 143 from SIGTERM) before the job is PENDING again.
  auto failed = job("FAILED");
  failed.exit_status = 143 << 8;
  auto first_look = seen(status("interrupted", 1), failed);
  first_look.interrupted_end_seconds = 0;
  auto verdict = judge_slurm_run(first_look);
  CHECK_FALSE(verdict.finished);
  CHECK(verdict.waiting_for_requeue);
  // Seen before the restart is counted, then requeued: attempt 2 waits.
  auto requeued = judge_slurm_run(seen(status("interrupted", 1), job("PENDING", 1)));
  CHECK_FALSE(requeued.finished);
  CHECK(requeued.attempt == 2);
  // Never requeued: after the grace period it is the end, Slurm's, without
  // the SIGTERM exit code of the interrupted attempt.
  auto later = first_look;
  later.interrupted_end_seconds = compute::k_requeue_grace_seconds;
  verdict = judge_slurm_run(later);
  CHECK(verdict.finished);
  CHECK(verdict.infrastructure);
  CHECK_FALSE(verdict.exit_code);
  CHECK(verdict.failure_reason ==
        "Slurm ended attempt 1 of job 42 (FAILED) and did not run it again; the batch output is "
        "logs/system/slurm-42.out");
  // A user's cancel needs no grace.
  auto canceled = first_look;
  canceled.cancel_requested = true;
  CHECK(judge_slurm_run(canceled).finished);
}

TEST_CASE("a job that can never start fails at once, and is canceled") {
  auto hopeless = job("PENDING");
  hopeless.reason = "PartitionConfig";
  auto verdict = judge_slurm_run(seen(std::nullopt, hopeless));
  CHECK(verdict.finished);
  CHECK(verdict.cancel_job);
  CHECK(verdict.infrastructure);
  CHECK(verdict.final_state == RunState::failed);
  CHECK(verdict.failure_reason ==
        "Slurm job 42 is PENDING (PartitionConfig: it asks for more nodes, CPUs or GPUs per node "
        "than its partition has); it can never start, so amlrun canceled it: change the job's "
        "resources (or the target's partition) and submit it again");
  // Waiting for resources, or a start time, is just waiting.
  for (const char* reason : {"Resources", "Priority", "BeginTime", "ReqNodeNotAvail"}) {
    auto waiting = job("PENDING");
    waiting.reason = reason;
    INFO(reason);
    CHECK_FALSE(judge_slurm_run(seen(std::nullopt, waiting)).finished);
  }
  CHECK(compute::is_hopeless_pending_reason("QOSMaxCpuPerJobLimit"));
  CHECK(compute::is_hopeless_pending_reason("PartitionNodeLimit"));
  CHECK_FALSE(compute::is_hopeless_pending_reason("QOSMaxJobsPerUserLimit"));
}

TEST_CASE("a pending job is described with what its reason means") {
  CHECK(compute::describe_pending("7", "Resources") ==
        "Slurm job 7 is PENDING (Resources: waiting for free nodes)");
  CHECK(compute::describe_pending("7", "None") == "Slurm job 7 is PENDING");
  CHECK(compute::describe_pending("7", "JobHeldUser") == "Slurm job 7 is PENDING (JobHeldUser)");
}
