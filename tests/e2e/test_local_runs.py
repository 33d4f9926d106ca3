"""Local runs end to end: the real amlrun binary, real processes, real mpirun."""
import json
import os
import signal
import subprocess
import time
import unittest

from amlrun_e2e import PYTHON, ProjectTest, kill_and_wait

ENV_SCRIPT = """
import json, os
keys = ["RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "NODE_RANK", "MASTER_ADDR",
        "MASTER_PORT", "AMLRUN_RUN_ID", "AMLRUN_EXPERIMENT", "AMLRUN_WORKSPACE",
        "AMLRUN_OUTPUTS_DIR", "AMLRUN_LOGS_DIR", "AMLRUN_METRICS_FILE",
        "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"]
env = {k: os.environ.get(k) for k in keys}
env["cwd"] = os.getcwd()
rank = env["RANK"] or "0"
with open(os.path.join("outputs", "env_rank_%s.json" % rank), "w") as f:
    json.dump(env, f)
print("rank", rank, "of", env["WORLD_SIZE"])
"""


class HelloTest(ProjectTest):
    def test_hello_job_streams_stdout_and_keeps_outputs(self):
        self.project.write("src/hello.py", """
            import os
            print("hello from amlrun")
            with open("outputs/greeting.txt", "w") as f:
                f.write("hi")
            with open("logs/extra.txt", "w") as f:
                f.write("a log")
        """)
        result = self.submit("""
            code: src
            command: %s hello.py
            experiment_name: hello
        """ % PYTHON, "--stream")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "hello from amlrun\n")
        run_id = self.last_run()
        self.assertTrue(run_id.startswith("hello_"))
        self.assertIn("amlrun: %s Completed in " % run_id, result.stderr)
        with open(os.path.join(self.project.outputs(run_id), "greeting.txt")) as f:
            self.assertEqual(f.read(), "hi")
        with open(os.path.join(self.project.logs(run_id), "extra.txt")) as f:
            self.assertEqual(f.read(), "a log")
        with open(os.path.join(self.project.logs(run_id), "user_logs", "std_log_rank_0.txt")) as f:
            self.assertEqual(f.read(), "hello from amlrun\n")
        record = self.project.show(run_id)
        self.assertEqual(record["state"], "Completed")
        self.assertEqual(record["exit_code"], 0)
        self.assertEqual([h["state"] for h in record["history"]],
                         ["Queued", "Preparing", "Starting", "Running", "Finalizing", "Completed"])
        # The working directory (copies of the snapshot) is gone; artifacts stay.
        self.assertFalse(os.path.exists(os.path.join(self.project.workspace, "runs", run_id, "wd")))

    def test_output_json_for_ci(self):
        result = self.submit("command: echo to-stderr\n", "--output", "json")
        self.assertEqual(result.returncode, 0, result.stderr)
        record = json.loads(result.stdout)
        self.assertEqual(record["state"], "Completed")
        self.assertEqual(record["exit_code"], 0)
        self.assertIn("to-stderr\n", result.stderr)
        self.assertTrue(os.path.isdir(record["paths"]["outputs"]))

    def test_no_wait_prints_the_run_id(self):
        result = self.submit("command: echo later\n", "--no-wait")
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = result.stdout.strip()
        self.assertEqual(run_id, self.last_run())
        self.project.wait_for_state(run_id, ["Completed"])
        follow = self.project.amlrun("stream", run_id)
        self.assertEqual(follow.returncode, 0)
        self.assertEqual(follow.stdout, "later\n")


class DistributedTest(ProjectTest):
    def read_envs(self, run_id, count):
        envs = []
        for rank in range(count):
            with open(os.path.join(self.project.outputs(run_id), "env_rank_%d.json" % rank)) as f:
                envs.append(json.load(f))
        return envs

    def test_pytorch_distribution_sets_the_torch_contract(self):
        self.project.write("src/env.py", ENV_SCRIPT)
        result = self.submit("""
            code: src
            command: %s env.py
            distribution:
              type: pytorch
              process_count_per_instance: 2
        """ % PYTHON, "--all-ranks")
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        self.assertIn("[rank 0] rank 0 of 2\n", result.stdout)
        self.assertIn("[rank 1] rank 1 of 2\n", result.stdout)
        envs = self.read_envs(run_id, 2)
        for rank, env in enumerate(envs):
            self.assertEqual(env["RANK"], str(rank))
            self.assertEqual(env["WORLD_SIZE"], "2")
            self.assertEqual(env["LOCAL_RANK"], str(rank))
            self.assertEqual(env["LOCAL_WORLD_SIZE"], "2")
            self.assertEqual(env["NODE_RANK"], "0")
            self.assertEqual(env["MASTER_ADDR"], "127.0.0.1")
            self.assertTrue(20000 <= int(env["MASTER_PORT"]) < 60000)
            self.assertEqual(env["AMLRUN_RUN_ID"], run_id)
            self.assertEqual(env["AMLRUN_EXPERIMENT"], "src")
            self.assertEqual(env["AMLRUN_WORKSPACE"], self.project.workspace)
            self.assertTrue(env["AMLRUN_METRICS_FILE"].endswith("/logs/metrics/rank_%d.jsonl" % rank))
            self.assertTrue(env["AMLRUN_OUTPUTS_DIR"].endswith("/wd/outputs"))
            self.assertEqual(env["cwd"], os.path.dirname(env["AMLRUN_OUTPUTS_DIR"]))
        self.assertEqual(envs[0]["MASTER_PORT"], envs[1]["MASTER_PORT"])
        for rank in range(2):
            log = os.path.join(self.project.logs(run_id), "user_logs", "std_log_rank_%d.txt" % rank)
            with open(log) as f:
                self.assertEqual(f.read(), "rank %d of 2\n" % rank)

    def test_two_instances_are_simulated_on_one_machine(self):
        self.project.write("src/env.py", ENV_SCRIPT)
        result = self.submit("""
            code: src
            command: %s env.py
            resources: {instance_count: 2}
            distribution: {type: pytorch, process_count_per_instance: 1}
        """ % PYTHON)
        self.assertEqual(result.returncode, 0, result.stderr)
        envs = self.read_envs(self.last_run(), 2)
        self.assertEqual([e["NODE_RANK"] for e in envs], ["0", "1"])
        self.assertEqual([e["LOCAL_RANK"] for e in envs], ["0", "0"])
        self.assertEqual([e["WORLD_SIZE"] for e in envs], ["2", "2"])

    def test_mpi_distribution_runs_ranks_under_mpirun(self):
        self.project.write("src/env.py", ENV_SCRIPT)
        result = self.submit("""
            code: src
            command: %s env.py
            distribution:
              type: mpi
              process_count_per_instance: 2
        """ % PYTHON, "--all-ranks")
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        envs = self.read_envs(run_id, 2)
        for rank, env in enumerate(envs):
            self.assertEqual(env["OMPI_COMM_WORLD_RANK"], str(rank))
            self.assertEqual(env["OMPI_COMM_WORLD_SIZE"], "2")
            self.assertEqual(env["RANK"], str(rank))
            self.assertEqual(env["WORLD_SIZE"], "2")
            self.assertEqual(env["LOCAL_RANK"], str(rank))
        self.assertEqual(sorted(l for l in result.stdout.splitlines()),
                         ["[rank 0] rank 0 of 2", "[rank 1] rank 1 of 2"])
        self.assertTrue(os.path.exists(os.path.join(self.project.logs(run_id), "system", "mpirun.txt")))

    def test_a_failing_rank_fails_the_run_and_stops_the_others(self):
        self.project.write("src/fail.py", """
            import os, sys, time
            if os.environ["RANK"] == "1":
                sys.exit(3)
            time.sleep(60)
        """)
        start = time.time()
        result = self.submit("""
            code: src
            command: %s fail.py
            distribution: {type: pytorch, process_count_per_instance: 2}
        """ % PYTHON)
        self.assertLess(time.time() - start, 30)
        self.assertEqual(result.returncode, 1, result.stderr)
        record = self.project.show(self.last_run())
        self.assertEqual(record["state"], "Failed")
        self.assertEqual(record["exit_code"], 3)
        self.assertEqual(record["failure_reason"], "rank 1 exited with code 3; stopping the other ranks")


class EndingTest(ProjectTest):
    STUBBORN = """
        trap '' TERM
        # a grandchild in a session of its own that also ignores SIGTERM
        setsid bash -c "trap '' TERM; echo \\$\\$ > grandchild.pid; sleep 300" &
        echo started
        sleep 300
    """

    def assert_no_leftovers(self, run_id):
        # The grandchild wrote its pid before sleeping; it must be gone.
        deadline = time.time() + 5
        leftovers = []
        while time.time() < deadline:
            leftovers = [p for p in os.listdir("/proc") if p.isdigit()
                         and self.read_cmdline(p).endswith("sleep\x00300\x00")
                         and run_id in self.read_environ(p)]
            if not leftovers:
                return
            time.sleep(0.1)
        self.fail("processes of %s survived: %s" % (run_id, leftovers))

    @staticmethod
    def read_cmdline(pid):
        try:
            with open("/proc/%s/cmdline" % pid) as f:
                return f.read()
        except OSError:
            return ""

    @staticmethod
    def read_environ(pid):
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def test_timeout_ends_the_whole_tree_and_fails_with_reason_timeout(self):
        self.project.write("src/stubborn.sh", self.STUBBORN)
        start = time.time()
        result = self.submit("""
            code: src
            command: bash stubborn.sh
            limits: {timeout: 2}
        """)
        elapsed = time.time() - start
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stdout, "started\n")
        run_id = self.last_run()
        record = self.project.show(run_id)
        self.assertEqual(record["state"], "Failed")
        self.assertEqual(record["failure_reason"], "timeout")
        self.assertEqual(record["exit_code"], 137)  # ignored SIGTERM: SIGKILL after the grace
        self.assertGreater(elapsed, 2.0)
        self.assertLess(elapsed, 15)
        self.assert_no_leftovers(run_id)

    def test_estimator_max_run_duration_is_a_timeout_too(self):
        self.project.write("src/sleep.py", "import time\ntime.sleep(60)\n")
        result = self.submit("""
            source_directory: src
            entry_script: sleep.py
            max_run_duration_seconds: 1
        """)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(self.project.show(self.last_run())["failure_reason"], "timeout")

    def test_cancel_ends_the_run_as_canceled(self):
        self.project.write("src/stubborn.sh", self.STUBBORN)
        self.project.write("job.yml", "code: src\ncommand: bash stubborn.sh\n")
        submitted = self.project.amlrun("submit", "job.yml", "--no-wait")
        run_id = submitted.stdout.strip()
        self.project.wait_for_state(run_id, ["Running"])
        cancel = self.project.amlrun("cancel", run_id[:-2])  # a unique prefix works
        self.assertEqual(cancel.returncode, 0, cancel.stderr)
        self.assertEqual(cancel.stderr, "amlrun: %s Canceled\n" % run_id)
        record = self.project.show(run_id)
        self.assertEqual(record["state"], "Canceled")
        self.assertEqual(record["failure_reason"], "canceled by user (amlrun cancel)")
        self.assert_no_leftovers(run_id)
        # Streaming a canceled run gives exit code 4.
        self.assertEqual(self.project.amlrun("stream", run_id).returncode, 4)
        again = self.project.amlrun("cancel", run_id)
        self.assertEqual(again.returncode, 0)
        self.assertEqual(again.stderr, "amlrun: %s was already canceled\n" % run_id)

    def test_cancel_of_a_finished_run_is_refused(self):
        self.submit("command: 'true'\n")
        run_id = self.last_run()
        cancel = self.project.amlrun("cancel", run_id)
        self.assertEqual(cancel.returncode, 2)
        self.assertEqual(cancel.stderr,
                         "amlrun: error: %s already ended (Completed); there is nothing to cancel\n" % run_id)


class DetachTest(ProjectTest):
    def test_killing_the_client_does_not_kill_the_run(self):
        self.project.write("job.yml", """
            command: "echo begin; sleep 2; echo done > outputs/done.txt; echo end"
        """)
        client = self.project.start("submit", "job.yml", "--stream")
        self.addCleanup(client.stdout.close)
        self.addCleanup(client.stderr.close)
        run_id = None
        deadline = time.time() + 10
        while time.time() < deadline and run_id is None:
            ids = self.project.run_ids()
            if ids:
                run_id = ids[-1]
            time.sleep(0.05)
        self.project.wait_for_state(run_id, ["Running"])
        client.kill()  # SIGKILL: no chance to clean up
        client.wait()
        record = self.project.wait_for_state(run_id, ["Completed", "Failed", "Canceled"])
        self.assertEqual(record["state"], "Completed")
        self.assertEqual(self.project.show(run_id)["state"], "Completed")
        with open(os.path.join(self.project.outputs(run_id), "done.txt")) as f:
            self.assertEqual(f.read(), "done\n")

    def test_ctrl_c_detaches_with_130_and_stream_reattaches(self):
        self.project.write("job.yml", """
            command: "echo first; sleep 2; echo second; exit 5"
        """)
        client = self.project.start("submit", "job.yml")
        self.addCleanup(client.stdout.close)
        self.addCleanup(client.stderr.close)
        first = client.stdout.readline()
        self.assertEqual(first, "first\n")
        client.send_signal(signal.SIGINT)
        out, err = client.communicate(timeout=10)
        self.assertEqual(client.returncode, 130)
        run_id = self.last_run()
        self.assertIn("amlrun: detached from %s; the run goes on (amlrun stream %s reattaches, "
                      "amlrun cancel %s stops it)\n" % (run_id, run_id, run_id), err)
        again = self.project.amlrun("stream", run_id)
        self.assertEqual(again.stdout, "first\nsecond\n")
        self.assertEqual(again.returncode, 1)  # the run failed with exit code 5
        record = self.project.show(run_id)
        self.assertEqual(record["exit_code"], 5)
        self.assertEqual(record["failure_reason"], "rank 0 exited with code 5")

    def test_a_killed_supervisor_is_recorded_as_failed_and_its_processes_end(self):
        self.project.write("job.yml", "command: sleep 300\n")
        run_id = self.project.amlrun("submit", "job.yml", "--no-wait").stdout.strip()
        record = self.project.wait_for_state(run_id, ["Running"])
        kill_and_wait(record["target"]["supervisor_pid"])
        shown = self.project.show(run_id)
        self.assertEqual(shown["state"], "Failed")
        self.assertTrue(shown["failure_reason"].startswith(
            "the supervisor ended without recording a result (killed, or the machine restarted)"))
        # Its orphaned rank (sleep 300) was ended by the reconciliation.
        group = record["target"]["process_groups"][0]["pgid"]
        deadline = time.time() + 5
        while EndingTest.read_cmdline(str(group)).startswith("sleep") and time.time() < deadline:
            time.sleep(0.05)
        self.assertFalse(EndingTest.read_cmdline(str(group)).startswith("sleep"))


if __name__ == "__main__":
    unittest.main()
