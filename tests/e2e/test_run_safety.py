"""What a job can do to its working directory, and what amlrun does about it:
links it plants are never followed, what it deletes does not take amlrun's
captured logs with it, a supervisor that dies still leaves a sealed run, a
full disk is named as the reason, and a cancel while Preparing takes effect."""
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from amlrun_e2e import AMLRUN, PYTHON, ProjectTest, clean_environment, kill_and_wait


def read(path):
    with open(path) as f:
        return f.read()


class PlantedLinksTest(ProjectTest):
    """Links the job plants where amlrun writes are never written through."""

    def setUp(self):
        super().setUp()
        self.outside = tempfile.mkdtemp(prefix="amlrun-e2e-outside-")
        self.precious = os.path.join(self.outside, "precious.txt")
        with open(self.precious, "w") as f:
            f.write("keep me\n")

    def tearDown(self):
        subprocess.run(["rm", "-rf", self.outside])
        super().tearDown()

    def assert_outside_untouched(self):
        self.assertEqual(read(self.precious), "keep me\n")
        self.assertEqual(sorted(os.listdir(self.outside)), ["precious.txt"])

    def test_a_link_planted_at_the_supervisor_log_name_is_not_written_through(self):
        result = self.submit("command: mkdir -p logs/system && ln -sf %s logs/system/supervisor.txt"
                             "\n" % self.precious)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assert_outside_untouched()
        system = os.path.join(self.project.logs(self.last_run()), "system")
        # amlrun's own log is where it belongs; the job's link is kept as a link.
        self.assertIn("state Running", read(os.path.join(system, "supervisor.txt")))
        self.assertEqual(os.readlink(os.path.join(system, "supervisor.txt.job")), self.precious)

    def test_logs_and_outputs_replaced_by_links_are_reported_not_followed(self):
        result = self.submit("command: rm -rf logs outputs && ln -s %s logs && ln -s %s outputs"
                             "\n" % (self.outside, self.outside))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assert_outside_untouched()
        run_id = self.last_run()
        warnings = self.project.show(run_id)["warnings"]
        self.assertEqual(warnings, [
            "./outputs was replaced by a symbolic link in the job; it was not followed and "
            "nothing of it is kept",
            "./logs was replaced by a symbolic link in the job; it was not followed and nothing "
            "of it is kept"])
        for warning in warnings:
            self.assertIn("amlrun: warning: " + warning, result.stderr)
        self.assertFalse(os.path.islink(self.project.outputs(run_id)))
        self.assertEqual(os.listdir(self.project.outputs(run_id)), [])
        show = self.project.amlrun("show", run_id)
        self.assertIn("warning          ./outputs was replaced by a symbolic link", show.stdout)

    def test_a_source_tree_whose_outputs_is_a_link_fails_in_preparing(self):
        os.symlink(self.outside, os.path.join(self.project.root, "src", "outputs"))
        result = self.submit("code: src\ncommand: echo never\noutputs:\n  model:\n"
                             "    type: uri_folder\n")
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assert_outside_untouched()
        record = self.project.show(self.last_run())
        wd = os.path.join(self.project.workspace, "runs", record["id"], "wd")
        self.assertEqual(record["failure_reason"],
                         "preparing: %s/outputs is a symbolic link; amlrun does not follow it "
                         "(move it away and try again)" % wd)


class DeletedLogsTest(ProjectTest):
    def test_a_job_that_deletes_its_logs_keeps_what_amlrun_captured(self):
        result = self.submit("""
            command: |
              echo important
              echo '{"name": "m", "value": 1}' >> "$AMLRUN_METRICS_FILE"
              rm -rf logs
        """)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "important\n")
        run_id = self.last_run()
        logs = self.project.logs(run_id)
        self.assertEqual(read(os.path.join(logs, "user_logs", "std_log_rank_0.txt")),
                         "important\n")
        self.assertTrue(os.path.exists(os.path.join(logs, "system", "supervisor.txt")))
        record = self.project.show(run_id)
        self.assertEqual(record["metrics"]["m"]["last"], 1)
        expected = ("./logs was deleted by the job; what it held is lost, but amlrun's own copies "
                    "(stdout, stderr, metrics, system logs) are kept")
        self.assertEqual(record["warnings"], [expected])
        self.assertIn("amlrun: warning: " + expected + "\n", result.stderr)
        streamed = self.project.amlrun("stream", run_id)
        self.assertEqual(streamed.stdout, "important\n")

    def test_a_job_that_deletes_its_outputs_is_warned_about(self):
        result = self.submit("command: rm -rf outputs\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.project.show(self.last_run())["warnings"],
                         ["./outputs was deleted by the job, so nothing it held is kept"])


class LostSupervisorTest(ProjectTest):
    def test_what_a_killed_supervisor_left_is_sealed_and_usable(self):
        self.project.write("job.yml", "command: echo weights > outputs/w.bin; echo started; "
                                      "sleep 300\n")
        run_id = self.project.amlrun("submit", "job.yml", "--no-wait").stdout.strip()
        record = self.project.wait_for_state(run_id, ["Running"])
        deadline = time.time() + 30
        wd_outputs = os.path.join(self.project.workspace, "runs", run_id, "wd", "outputs", "w.bin")
        while not os.path.exists(wd_outputs):
            self.assertLess(time.time(), deadline)
            time.sleep(0.05)
        doctor = self.project.amlrun("doctor")
        self.assertEqual(doctor.returncode, 0, doctor.stderr)  # alive: nothing to report
        kill_and_wait(record["target"]["supervisor_pid"])
        shown = self.project.show(run_id)
        self.assertEqual(shown["state"], "Failed")
        self.assertEqual(read(os.path.join(self.project.outputs(run_id), "w.bin")), "weights\n")
        self.assertFalse(os.path.exists(os.path.join(self.project.workspace, "runs", run_id, "wd")))
        # It ended when the reconciling command ended its processes: now.
        download = self.project.amlrun("download", run_id, "-o", "got")
        self.assertEqual(download.returncode, 0, download.stderr)
        self.assertEqual(read(os.path.join(self.project.root, "got", "artifacts", "outputs", "w.bin")),
                         "weights\n")
        register = self.project.amlrun("model", "register", "--name", "m", "--run", run_id,
                                       "--path", "outputs/w.bin")
        self.assertEqual(register.returncode, 0, register.stderr)

    def test_doctor_reports_a_run_its_killed_supervisor_left_unsealed_and_repairs_it(self):
        self.project.write("job.yml", "command: echo weights > outputs/w.bin; sleep 300\n")
        run_id = self.project.amlrun("submit", "job.yml", "--no-wait").stdout.strip()
        record = self.project.wait_for_state(run_id, ["Running"])
        wd = os.path.join(self.project.workspace, "runs", run_id, "wd")
        deadline = time.time() + 30
        while not os.path.exists(os.path.join(wd, "outputs", "w.bin")):
            self.assertLess(time.time(), deadline)
            time.sleep(0.05)
        kill_and_wait(record["target"]["supervisor_pid"])
        # Left an hour ago: doctor leaves young working directories alone,
        # since a run being created has one before its supervisor holds the lock.
        an_hour_ago = time.time() - 3600
        os.utime(wd, (an_hour_ago, an_hour_ago))
        doctor = self.project.amlrun("doctor")
        self.assertEqual(doctor.returncode, 3, doctor.stderr)
        self.assertIn(f"problem: run {run_id} was not sealed: its outputs and logs are still in "
                      f"{os.path.realpath(wd)}; amlrun doctor --repair will seal them into its "
                      "artifacts and record how the run ended\n", doctor.stdout)
        repair = self.project.amlrun("doctor", "--repair")
        self.assertEqual(repair.returncode, 0, repair.stderr)
        self.assertIn(f"repaired: run {run_id} was not sealed", repair.stdout)
        self.assertFalse(os.path.exists(wd))
        self.assertEqual(read(os.path.join(self.project.outputs(run_id), "w.bin")), "weights\n")
        shown = self.project.show(run_id)
        self.assertEqual(shown["state"], "Failed")
        self.assertEqual(self.project.amlrun("doctor").returncode, 0)

    def test_the_end_of_a_run_found_after_its_supervisor_died_is_when_it_was_last_seen(self):
        self.project.write("job.yml", "command: echo hi; sleep 1\n")
        run_id = self.project.amlrun("submit", "job.yml", "--no-wait").stdout.strip()
        record = self.project.wait_for_state(run_id, ["Running"])
        kill_and_wait(record["target"]["supervisor_pid"])
        time.sleep(4)  # the rank ends on its own after 1 s; `show` comes much later
        shown = self.project.show(run_id)
        self.assertEqual(shown["state"], "Failed")
        self.assertLess(shown["duration_seconds"], 3.5)


@unittest.skipUnless(os.geteuid() == 0, "mounting a small filesystem needs root")
class FullDiskTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="amlrun-e2e-disk-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", self.root], check=True)
        subprocess.run([AMLRUN, "init", self.root], check=True, capture_output=True)

    def tearDown(self):
        subprocess.run(["umount", "-l", self.root])
        os.rmdir(self.root)

    def test_a_job_that_fills_the_disk_is_failed_for_that_reason_with_its_exit_code(self):
        with open(os.path.join(self.root, "job.yml"), "w") as f:
            f.write("command: head -c 100000000 /dev/zero > outputs/big || exit 7\n")
        started = time.time()
        result = subprocess.run([AMLRUN, "submit", "job.yml", "--output", "json"], cwd=self.root,
                                capture_output=True, text=True, timeout=120,
                                env=clean_environment())
        self.assertEqual(result.returncode, 1, result.stderr)
        record = json.loads(result.stdout)
        self.assertEqual(record["state"], "Failed")
        self.assertEqual(record["exit_code"], 7)
        self.assertEqual(record["failure_reason"],
                         "rank 0 exited with code 7; no space left on device: the workspace's "
                         "filesystem filled up during the run")
        self.assertLess(record["duration_seconds"], time.time() - started + 1)


class StallingServer(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        self.wfile.write(b"x" * 10)
        self.wfile.flush()
        time.sleep(60)

    def log_message(self, *args):
        pass


class CancelWhilePreparingTest(ProjectTest):
    def test_cancel_stops_a_stalled_download_and_the_run_is_canceled(self):
        server = ThreadingHTTPServer(("127.0.0.1", 0), StallingServer)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            self.project.write("job.yml", """
                command: cat ${{inputs.data}}
                inputs:
                  data:
                    type: uri_file
                    path: http://127.0.0.1:%d/data.bin
            """ % server.server_address[1])
            run_id = self.project.amlrun("submit", "job.yml", "--no-wait").stdout.strip()
            self.project.wait_for_state(run_id, ["Preparing"])
            time.sleep(0.5)  # the download has begun and stalls
            started = time.time()
            cancel = self.project.amlrun("cancel", run_id)
            self.assertEqual(cancel.returncode, 0, cancel.stderr)
            self.assertLess(time.time() - started, 5)
            record = self.project.show(run_id)
            self.assertEqual(record["state"], "Canceled")
            self.assertTrue(record["cancel_requested"])
            self.assertEqual(record["failure_reason"],
                             "canceled by user (amlrun cancel) while Preparing")
        finally:
            server.shutdown()


class GracefulEndTest(ProjectTest):
    def test_a_canceled_program_gets_one_sigterm_and_its_grace_period(self):
        self.project.write("src/train.py", """
            import os, signal, sys, time
            received = []
            signal.signal(signal.SIGTERM, lambda *a: received.append(1))
            print("ready", flush=True)
            while not received:
                time.sleep(0.01)
            time.sleep(0.3)  # a second SIGTERM would land here
            with open("outputs/terms.txt", "w") as f:
                f.write(str(len(received)))
        """)
        with open(os.path.join(self.project.workspace, "config.yml"), "w") as f:
            f.write("local:\n  kill_grace_seconds: 10\n")
        self.project.write("job.yml", "code: src\ncommand: %s train.py\n" % PYTHON)
        run_id = self.project.amlrun("submit", "job.yml", "--no-wait").stdout.strip()
        self.project.wait_for_state(run_id, ["Running"])
        log = os.path.join(self.project.logs(run_id), "user_logs", "std_log_rank_0.txt")
        deadline = time.time() + 30
        while "ready" not in (read(log) if os.path.exists(log) else ""):
            self.assertLess(time.time(), deadline)
            time.sleep(0.05)
        self.assertEqual(self.project.amlrun("cancel", run_id).returncode, 0)
        self.assertEqual(read(os.path.join(self.project.outputs(run_id), "terms.txt")), "1")


if __name__ == "__main__":
    unittest.main()
