"""The Slurm target against hostile and unlucky cases on the test cluster:
links a job plants are never followed on either side, the driver's result
always wins, collection is resumable, staged binaries are verified, and a
job that can never run fails at once with the reason."""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

from slurm_e2e import SlurmTest, read_text, slurm, wait_for_idle_nodes


class PlantedLinksTest(SlurmTest):
    def setUp(self):
        super().setUp()
        self.outside = tempfile.mkdtemp(prefix="amlrun-e2e-victim-")
        self.victim = os.path.join(self.outside, "victim.txt")
        with open(self.victim, "w") as f:
            f.write("keep me\n")

    def tearDown(self):
        shutil.rmtree(self.outside, ignore_errors=True)
        super().tearDown()

    def assert_victim_untouched(self):
        self.assertEqual(read_text(self.victim), "keep me\n")
        self.assertEqual(os.listdir(self.outside), ["victim.txt"])

    def test_links_planted_where_collection_writes_are_not_written_through(self):
        # In ./logs/system (the job's own), in amlrun's captured system logs,
        # and in place of Slurm's batch output in the shared run directory.
        result = self.submit("""
            code: src
            command: >-
              mkdir -p logs/system &&
              ln -sf %(victim)s logs/system/job.sbatch &&
              ln -sf %(victim)s ../artifacts/logs/system/job.sbatch &&
              ln -sf %(victim)s ../artifacts/logs/system/slurm-$SLURM_JOB_ID.out &&
              echo written-by-the-job >> ../slurm-$SLURM_JOB_ID.out
            compute: cluster
        """ % {"victim": self.victim})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assert_victim_untouched()
        system = os.path.join(self.project.logs(self.last_run()), "system")
        job_id = self.project.job_id(self.last_run())
        self.assertFalse(os.path.islink(os.path.join(system, "job.sbatch")))
        self.assertIn("_slurm-run", read_text(os.path.join(system, "job.sbatch")))
        self.assertIn("written-by-the-job",
                      read_text(os.path.join(system, "slurm-%s.out" % job_id)))

    def test_logs_and_outputs_replaced_by_links_before_slurm_ends_the_job(self):
        # scancel from inside: the driver is interrupted and seals nothing,
        # so the submitting side seals what is there, by the same rules.
        result = self.submit("""
            code: src
            command: >-
              rm -rf logs outputs && ln -s %(outside)s logs && ln -s %(outside)s outputs &&
              scancel $SLURM_JOB_ID && sleep 60
            compute: cluster
        """ % {"outside": self.outside})
        self.assertEqual(result.returncode, 4, result.stderr)
        self.assert_victim_untouched()
        run_id = self.last_run()
        self.assertFalse(os.path.islink(self.project.outputs(run_id)))
        self.assertEqual(os.listdir(self.project.outputs(run_id)), [])
        self.assertEqual(self.project.show(run_id)["paths"]["outputs"],
                         self.project.outputs(run_id))
        warnings = self.project.show(run_id)["warnings"]
        self.assertEqual(warnings, [
            "./outputs was replaced by a symbolic link in the job; it was not followed and "
            "nothing of it is kept",
            "./logs was replaced by a symbolic link in the job; it was not followed and nothing "
            "of it is kept"])

    def test_stream_does_not_follow_a_link_that_replaced_a_rank_log(self):
        result = self.submit("""
            code: src
            command: >-
              echo visible; sleep 1;
              rm ../artifacts/logs/user_logs/std_log_rank_0.txt;
              ln -s %(victim)s ../artifacts/logs/user_logs/std_log_rank_0.txt
            compute: cluster
        """ % {"victim": self.victim})
        self.assertEqual(result.returncode, 0, result.stderr)
        streamed = self.project.amlrun("stream", self.last_run())
        self.assertNotIn("keep me", streamed.stdout)
        self.assertIn("is a symbolic link, not the log amlrun captured; it is not followed",
                      streamed.stderr)


class StagedBinaryTest(SlurmTest):
    def staged_dirs(self):
        bin_dir = os.path.join(self.project.shared, "bin")
        return [os.path.join(bin_dir, d) for d in os.listdir(bin_dir) if not d.startswith(".")]

    def test_a_tampered_staged_binary_of_ours_is_staged_again(self):
        self.assertEqual(self.submit("command: 'true'\ncompute: cluster\n").returncode, 0)
        [staged] = self.staged_dirs()
        with open(os.path.join(staged, "amlrun"), "wb") as f:
            f.write(b"#!/bin/sh\necho planted > %s/pwned\n" % self.project.root.encode())
        result = self.submit("command: echo fine\ncompute: cluster\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "fine\n")
        self.assertFalse(os.path.exists(os.path.join(self.project.root, "pwned")))
        self.assertNotIn(b"planted", open(os.path.join(staged, "amlrun"), "rb").read())

    def test_a_staged_binary_someone_else_owns_is_refused(self):
        self.assertEqual(self.submit("command: 'true'\ncompute: cluster\n").returncode, 0)
        [staged] = self.staged_dirs()
        subprocess.run(["chown", "-R", "nobody", staged], check=True)
        result = self.submit("command: echo never\ncompute: cluster\n")
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertIn("the staged amlrun in %s cannot be trusted (the staged folder %s belongs to "
                      "user 65534, not to you (user 0)); amlrun will not run it on the nodes"
                      % (self.project.shared, staged), result.stderr)


class DriverResultWinsTest(SlurmTest):
    def test_a_completed_run_stays_completed_while_the_index_is_busy(self):
        # A writer holds the index for 4 s while a 3 s job ends: the follower
        # is stuck in metric ingestion while Slurm forgets the job.
        self.project.write("job.yml", "code: src\ncommand: sleep 3; echo done\ncompute: cluster\n")
        follower = self.project.start("submit", "job.yml", "--stream")
        run_id = None
        deadline = time.time() + 30
        while run_id is None:
            self.assertLess(time.time(), deadline)
            ids = self.project.run_ids()
            # The run folder exists a moment before its run.json does.
            if ids and os.path.exists(os.path.join(self.project.workspace, "runs", ids[0], "run.json")) \
                    and self.project.record(ids[0]).get("target", {}).get("job_id"):
                run_id = ids[0]
            time.sleep(0.05)
        db = sqlite3.connect(os.path.join(self.project.workspace, "index.db"), isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        time.sleep(4)
        db.execute("COMMIT")
        db.close()
        out, err = follower.communicate(timeout=90)
        self.assertEqual(follower.returncode, 0, err)
        self.assertEqual(self.project.show(run_id)["state"], "Completed")


class InterruptedCollectionTest(SlurmTest):
    """Workspace and shared_dir on different filesystems: collection copies."""

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("mounting a separate filesystem needs root")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512m", "tmpfs", self.project.shared],
                       check=True)

    def tearDown(self):
        super().tearDown()
        subprocess.run(["umount", "-l", self.project.shared])

    def test_a_collection_killed_half_way_loses_nothing(self):
        result = self.submit("""
            code: src
            command: >-
              for i in $(seq 2000); do head -c 65536 /dev/urandom > outputs/f$i; done
            compute: cluster
        """, "--no-wait")
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = result.stdout.strip()
        status = os.path.join(self.project.shared, "runs", run_id, "status.json")
        deadline = time.time() + 120
        while not (os.path.exists(status) and json.loads(read_text(status))["state"] == "ended"):
            self.assertLess(time.time(), deadline)
            time.sleep(0.1)
        collecting = os.path.join(self.project.workspace, "runs", run_id, "artifacts.collecting")
        show = self.project.start("show", run_id)
        deadline = time.time() + 60
        while not os.path.exists(collecting):
            self.assertLess(time.time(), deadline)
            time.sleep(0.005)
        time.sleep(0.2)
        show.send_signal(signal.SIGKILL)
        show.wait()
        record = self.project.show(run_id)
        self.assertEqual(record["state"], "Completed")
        outputs = self.project.outputs(run_id)
        self.assertEqual(len(os.listdir(outputs)), 2000)
        self.assertEqual({os.path.getsize(os.path.join(outputs, f)) for f in os.listdir(outputs)},
                         {65536})
        self.assertFalse(os.path.exists(os.path.join(self.project.shared, "runs", run_id)))


class TimesAndListingTest(SlurmTest):
    def test_runs_list_refreshes_slurm_runs_and_keeps_the_drivers_times(self):
        result = self.submit("code: src\ncommand: sleep 1\ncompute: cluster\n", "--no-wait")
        run_id = result.stdout.strip()
        time.sleep(8)  # nobody looks while it runs and ends
        listed = self.project.amlrun("runs", "list", "--output", "json")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        [row] = [r for r in json.loads(listed.stdout) if r["id"] == run_id]
        self.assertEqual(row["status"], "Completed")
        record = self.project.show(run_id)
        started = time.strptime(record["started_at"][:19], "%Y-%m-%dT%H:%M:%S")
        ended = time.strptime(record["ended_at"][:19], "%Y-%m-%dT%H:%M:%S")
        self.assertLess(time.mktime(ended) - time.mktime(started), 4)


class HopelessJobTest(SlurmTest):
    def test_a_job_slurm_can_never_run_fails_at_once_with_the_reason(self):
        started = time.time()
        result = self.submit("""
            code: src
            command: echo never
            compute: cluster
            distribution:
              type: pytorch
              process_count_per_instance: 10
        """, timeout=60)
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertLess(time.time() - started, 15)
        run_id = self.last_run()
        record = self.project.show(run_id)
        job_id = record["target"]["job_id"]
        self.assertRegex(record["failure_reason"],
                         r"^Slurm job %s is PENDING \((PartitionConfig|PartitionNodeLimit|"
                         r"BadConstraints)[^)]*\); it can never start, so amlrun canceled it: "
                         r"change the job's resources \(or the target's partition\) and submit "
                         r"it again$" % job_id)
        deadline = time.time() + 10
        while slurm("squeue", "--noheader", "--states=all", "--jobs=" + job_id,
                    "--format=%T").stdout.strip() not in ("CANCELLED", ""):
            self.assertLess(time.time(), deadline)
            time.sleep(0.2)


class PendingReasonTest(SlurmTest):
    extra_targets = ("  later:\n"
                     "    type: slurm\n"
                     "    shared_dir: SHARED\n"
                     "    extra_sbatch_args: [--begin=now+4]\n")

    def test_why_a_job_waits_is_streamed(self):
        result = self.submit("code: src\ncommand: echo ran\ncompute: later\n", timeout=90)
        self.assertEqual(result.returncode, 0, result.stderr)
        job_id = self.project.job_id(self.last_run())
        self.assertIn("amlrun: %s Slurm job %s is PENDING (BeginTime: held until its start time "
                      "(a requeued job waits a little before it runs again))\n"
                      % (self.last_run(), job_id), result.stderr)
        self.assertEqual(result.stdout, "ran\n")


class RequeueLogTest(SlurmTest):
    def test_a_requeued_job_keeps_the_first_attempts_driver_log(self):
        submitted = self.submit("""
            code: src
            command: if [ "${SLURM_RESTART_COUNT:-0}" = 0 ]; then sleep 120; fi; echo done
            compute: cluster
        """, "--no-wait")
        run_id = submitted.stdout.strip()
        job_id = self.project.job_id(run_id)
        deadline = time.time() + 30
        while self.project.show(run_id)["state"] != "Running":
            self.assertLess(time.time(), deadline)
            time.sleep(0.2)
        slurm("scontrol", "requeue", job_id)
        result = self.project.amlrun("stream", run_id, timeout=90)
        self.assertEqual(result.returncode, 0, result.stderr)
        batch = read_text(os.path.join(self.project.logs(run_id), "system",
                                       "slurm-%s.out" % job_id))
        self.assertIn("attempt 1 of job %s" % job_id, batch)
        self.assertIn("attempt 2 of job %s" % job_id, batch)


class MessagesTest(SlurmTest):
    def test_a_shared_dir_that_is_a_file_is_called_a_file(self):
        os.rmdir(self.project.shared)
        with open(self.project.shared, "w") as f:
            f.write("not a directory\n")
        result = self.project.amlrun("compute", "show", "cluster")
        self.assertEqual(result.returncode, 3)
        self.assertIn("amlrun: error: shared_dir %s of compute target 'cluster' is a file, not a "
                      "directory" % self.project.shared, result.stderr)
        os.remove(self.project.shared)
        os.makedirs(self.project.shared)

    def test_a_partition_that_does_not_exist_is_an_error(self):
        with open(os.path.join(self.project.workspace, "config.yml"), "a") as f:
            f.write("  nopart:\n    type: slurm\n    shared_dir: %s\n    partition: degub\n"
                    % self.project.shared)
        result = self.project.amlrun("compute", "show", "nopart")
        self.assertEqual(result.returncode, 3)
        self.assertIn("amlrun: error: partition 'degub' of compute target 'nopart' does not exist "
                      "on this cluster (it has: debug); fix partition in %s"
                      % os.path.join(self.project.workspace, "config.yml"), result.stderr)

    def test_munge_down_is_named_as_slurms_authentication(self):
        pid = int(read_text("/run/munge/munged.pid").strip())
        os.kill(pid, signal.SIGTERM)
        try:
            deadline = time.time() + 10
            while os.path.exists("/proc/%d" % pid):
                self.assertLess(time.time(), deadline)
                time.sleep(0.05)
            result = self.project.amlrun("compute", "show", "cluster", timeout=90)
        finally:
            subprocess.run(["runuser", "-u", "munge", "--", "munged", "--force"], check=True)
            wait_for_idle_nodes()
        self.assertEqual(result.returncode, 3)
        self.assertIn("amlrun: error: sinfo failed: Slurm's authentication service (munge) is not "
                      "answering on this machine (sinfo: error: Munge encode failed: Failed to "
                      "access \"/run/munge/munge.socket.2\": No such file or directory (Did you "
                      "start munged?)); start munged (e.g. systemctl start munge) or ask the "
                      "cluster's administrators\n", result.stderr)


class SbatchTimeoutTest(SlurmTest):
    def test_an_sbatch_that_timed_out_is_not_taken_for_a_refusal(self):
        # slurmctld stopped: sbatch gives up ("Socket timed out") although the
        # controller may queue the job when it wakes. The run is kept for its
        # token to settle, never marked Failed and removed.
        pid = int(read_text("/var/lib/amlrun-slurm-test/slurmctld.pid").strip())
        self.project.write("job.yml", "code: src\ncommand: echo ran\ncompute: cluster\n")
        os.kill(pid, signal.SIGSTOP)
        try:
            result = self.project.amlrun("submit", "job.yml", "--no-wait", timeout=120)
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertIn("the job may still have been accepted", result.stderr)
        run_id = self.last_run()
        self.assertNotEqual(self.project.record(run_id)["state"], "Failed")
        self.assertTrue(os.path.isdir(os.path.join(self.project.shared, "runs", run_id)))


if __name__ == "__main__":
    unittest.main()
