"""Controlling Slurm runs end to end: cancel, timeout, requeue, node failure,
and the submission token that keeps an interrupted submit from running a
job twice."""
import os
import time
import unittest

from slurm_e2e import (SlurmTest, final_job_state, job_state, read_text, slurm,
                       wait_for_idle_nodes)

# Prints when it is asked to end, so the tests can tell SIGTERM came first.
PATIENT = """
            code: src
            command: echo started; echo partial > outputs/partial.txt; trap 'echo got SIGTERM; exit 9' TERM; sleep 120 & wait
            compute: %s
"""


class CancelTest(SlurmTest):
    extra_targets = ("  later:\n"
                     "    type: slurm\n"
                     "    shared_dir: SHARED\n"
                     "    extra_sbatch_args: [--begin=now+3600]\n")

    def test_cancel_a_running_job(self):
        submitted = self.submit(PATIENT % "cluster", "--no-wait")
        self.assertEqual(submitted.returncode, 0, submitted.stderr)
        run_id = submitted.stdout.strip()
        self.project.wait_for_state(run_id, ["Starting"])
        deadline = time.time() + 30
        while "started" not in self.project.live_rank_log(run_id) and time.time() < deadline:
            time.sleep(0.1)
        canceled = self.project.amlrun("cancel", run_id, timeout=60)
        self.assertEqual(canceled.returncode, 0, canceled.stderr)
        self.assertEqual(canceled.stderr, "amlrun: %s Canceled\n" % run_id)
        record = self.project.show(run_id)
        self.assertEqual(record["state"], "Canceled")
        self.assertEqual(record["failure_reason"], "canceled by user (amlrun cancel)")
        self.assertEqual(final_job_state(record["target"]["job_id"]), "CANCELLED")
        self.assertEqual(self.project.rank_log(run_id), "started\ngot SIGTERM\n")
        self.assertEqual(read_text(os.path.join(self.project.outputs(run_id), "partial.txt")),
                         "partial\n")
        # Following a canceled run ends with exit code 4.
        self.assertEqual(self.project.amlrun("stream", run_id).returncode, 4)

    def test_cancel_a_job_that_waits_in_the_queue(self):
        submitted = self.submit(PATIENT % "later", "--no-wait")
        self.assertEqual(submitted.returncode, 0, submitted.stderr)
        run_id = submitted.stdout.strip()
        job_id = self.project.job_id(run_id)
        self.assertEqual(job_state(job_id), "PENDING")
        show = self.project.show(run_id)
        self.assertEqual(show["state"], "Starting")
        self.assertEqual(show["target"]["slurm_reason"], "BeginTime")
        canceled = self.project.amlrun("cancel", run_id, timeout=60)
        self.assertEqual(canceled.returncode, 0, canceled.stderr)
        record = self.project.show(run_id)
        self.assertEqual(record["state"], "Canceled")
        self.assertEqual(record["failure_reason"],
                         "canceled by user (amlrun cancel) before it started")

class TimeoutTest(SlurmTest):
    def test_timeout_ends_the_job_with_sigterm_and_says_timeout(self):
        start = time.time()
        result = self.submit("""
            code: src
            command: echo started; trap 'echo got SIGTERM; exit 9' TERM; sleep 120 & wait
            compute: cluster
            limits:
              timeout: 2
        """, timeout=90)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertLess(time.time() - start, 30)
        self.assertEqual(result.stdout, "started\ngot SIGTERM\n")
        record = self.project.show(self.last_run())
        self.assertEqual(record["state"], "Failed")
        self.assertEqual(record["failure_reason"], "timeout")
        self.assertIn("(timeout)", result.stderr)
        # Slurm's own time limit backs it up: 2 s + 1 s grace + 60 s, in minutes.
        limit = slurm("squeue", "--noheader", "--states=all",
                      "--jobs=" + record["target"]["job_id"], "--format=%l").stdout.strip()
        self.assertEqual(limit, "2:00")


class RequeueTest(SlurmTest):
    def test_a_requeued_job_counts_attempts_and_appends_its_logs(self):
        submitted = self.submit("""
            code: src
            command: echo "attempt ${SLURM_RESTART_COUNT:-0}"; if [ "${SLURM_RESTART_COUNT:-0}" = 0 ]; then sleep 120; fi; echo done
            compute: cluster
        """, "--no-wait")
        self.assertEqual(submitted.returncode, 0, submitted.stderr)
        run_id = submitted.stdout.strip()
        job_id = self.project.job_id(run_id)
        # Running is recorded when the batch step starts, which can be before
        # the rank has printed anything: requeue only once it has.
        self._wait_for(lambda: "attempt 0\n" in self.project.live_rank_log(run_id))
        slurm("scontrol", "requeue", job_id)
        # Slurm holds a requeued job back for cred_expire seconds (10 on the
        # test cluster) and then starts it again; forcing an earlier start
        # makes Slurm fail it ("Job credential revoked").
        result = self.project.amlrun("stream", run_id, timeout=90)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout,
                         "attempt 0\n"
                         "--- amlrun: attempt 2 of Slurm job %s (the job was requeued) ---\n"
                         "attempt 1\n"
                         "done\n" % job_id)
        record = self.project.show(run_id)
        self.assertEqual(record["state"], "Completed")
        self.assertEqual(record["target"]["attempt"], 2)

    def _wait_for(self, condition, timeout=30):
        deadline = time.time() + timeout
        while not condition():
            if time.time() > deadline:
                raise AssertionError("timed out waiting")
            time.sleep(0.2)


class NodeFailureTest(SlurmTest):
    extra_targets = ("  no-requeue:\n"
                     "    type: slurm\n"
                     "    shared_dir: SHARED\n"
                     "    extra_sbatch_args: [--no-requeue]\n")

    def tearDown(self):
        slurm("scontrol", "update", "NodeName=n2", "State=RESUME", check=False)
        wait_for_idle_nodes()
        super().tearDown()

    def test_a_failed_node_is_reported_as_such_not_as_a_code_failure(self):
        submitted = self.submit("""
            code: src
            command: echo "up on $(hostname)"; echo kept > outputs/rank_$RANK.txt; sleep 120
            compute: no-requeue
            resources:
              instance_count: 2
            distribution:
              type: pytorch
              process_count_per_instance: 1
        """, "--no-wait")
        self.assertEqual(submitted.returncode, 0, submitted.stderr)
        run_id = submitted.stdout.strip()
        deadline = time.time() + 30
        while not os.path.exists(os.path.join(self.project.shared, "runs", run_id, "wd",
                                              "outputs", "rank_1.txt")):
            self.assertLess(time.time(), deadline, "the job did not start")
            time.sleep(0.2)
        slurm("scontrol", "update", "NodeName=n2", "State=DOWN", "Reason=amlrun-e2e-node-failure")
        result = self.project.amlrun("stream", run_id, timeout=90)
        self.assertEqual(result.returncode, 3, result.stderr)
        record = self.project.show(run_id)
        job_id = record["target"]["job_id"]
        self.assertEqual(record["state"], "Failed")
        self.assertEqual(record["failure_reason"],
                         "node failure: a node of Slurm job %s failed (not a failure of the code)"
                         % job_id)
        self.assertEqual(record["target"]["failure_kind"], "infrastructure")
        self.assertEqual(record["target"]["slurm_state"], "NODE_FAIL")
        # What the ranks wrote before the failure is kept.
        self.assertEqual(read_text(os.path.join(self.project.outputs(run_id), "rank_0.txt")),
                         "kept\n")


class SubmissionTokenTest(SlurmTest):
    def jobs_with_comment(self, comment):
        lines = slurm("squeue", "--noheader", "--states=all", "--me",
                      "--Format=JobID:|,Comment:").stdout.splitlines()
        return [line.split("|")[0] for line in lines if line.split("|", 1)[1].strip() == comment]

    def test_death_after_sbatch_finds_the_job_by_its_token(self):
        # AMLRUN_TEST_SLURM_SUBMIT_EXIT is a test-only hook: amlrun exits
        # right after sbatch accepted the job, before it saves the job id.
        died = self.submit("code: src\ncommand: echo ran once\ncompute: cluster\n",
                           env={"AMLRUN_TEST_SLURM_SUBMIT_EXIT": "after-sbatch"})
        self.assertEqual(died.returncode, 75, died.stderr)
        run_id = self.last_run()
        record = self.project.record(run_id)
        self.assertEqual(record["target"]["submission"], "submitting")
        self.assertNotIn("job_id", record["target"])
        comment = record["target"]["comment"]
        self.assertEqual(len(self.jobs_with_comment(comment)), 1)

        followed = self.project.amlrun("stream", run_id)
        self.assertEqual(followed.returncode, 0, followed.stderr)
        self.assertEqual(followed.stdout, "ran once\n")
        record = self.project.show(run_id)
        self.assertEqual(record["state"], "Completed")
        self.assertEqual(record["target"]["submission"], "recovered by its token")
        self.assertEqual(self.jobs_with_comment(comment), [record["target"]["job_id"]])

    def test_death_before_sbatch_submits_nothing_and_says_so(self):
        died = self.submit("code: src\ncommand: echo never\ncompute: cluster\n",
                           env={"AMLRUN_TEST_SLURM_SUBMIT_EXIT": "after-token"})
        self.assertEqual(died.returncode, 75, died.stderr)
        run_id = self.last_run()
        comment = self.project.record(run_id)["target"]["comment"]
        record = self.project.show(run_id)
        self.assertEqual(record["state"], "Failed")
        self.assertEqual(record["failure_reason"],
                         "the submission was interrupted before Slurm accepted the job (no Slurm "
                         "job carries its token %s); nothing runs: submit the job again" % comment)
        self.assertEqual(self.jobs_with_comment(comment), [])
        self.assertFalse(os.path.exists(os.path.join(self.project.shared, "runs", run_id)))


if __name__ == "__main__":
    unittest.main()
