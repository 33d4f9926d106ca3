"""amlrun download: a run's artifacts copied out, safely, with progress."""
import os
import pty
import re
import select
import shutil
import subprocess
import time

from amlrun_e2e import AMLRUN, PYTHON, ProjectTest, clean_environment

MAKE_OUTPUTS = """
import os
os.makedirs("outputs/model", exist_ok=True)
open("outputs/model/weights.bin", "wb").write(bytes(range(256)) * 40)
open("outputs/model/config.json", "w").write("{}")
open("outputs/result.txt", "w").write("accuracy 0.9\\n")
os.makedirs("outputs/empty")
os.symlink("result.txt", "outputs/inside_link")
os.symlink("/etc/passwd", "outputs/outside_link")
print("done")
"""


def tree(root):
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)
            if os.path.islink(path):
                found[relative] = "link"
            elif os.path.isdir(path):
                found[relative] = "dir"
            else:
                with open(path, "rb") as f:
                    found[relative] = f.read()
    return found


class DownloadTest(ProjectTest):
    def setUp(self):
        super().setUp()
        self.project.write("src/make.py", MAKE_OUTPUTS)
        result = self.submit("code: src\ncommand: %s make.py\n" % PYTHON)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.run_id = self.last_run()
        self.dest = os.path.join(self.project.root, "dl")

    def download(self, *args, **kwargs):
        return self.project.amlrun("download", self.run_id, "-o", self.dest, *args, **kwargs)

    def test_outputs_by_default(self):
        result = self.download()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "")
        lines = result.stderr.splitlines()
        self.assertEqual(lines[0], "amlrun: warning: skipped artifacts/outputs/outside_link: a symbolic "
                                   "link to /etc/passwd, outside run %s" % self.run_id)
        self.assertRegex(lines[1], r"^amlrun: downloaded 4 files \(10\.0 KiB\) from %s to %s in \S+ "
                                   r"\(\S+ \S+/s\)$" % (self.run_id, re.escape(self.dest + "/artifacts")))
        self.assertEqual(len(lines), 2)  # no progress lines off a terminal for a quick copy
        got = tree(self.dest)
        self.assertEqual(got, {
            "artifacts": "dir",
            "artifacts/outputs": "dir",
            "artifacts/outputs/empty": "dir",
            "artifacts/outputs/model": "dir",
            "artifacts/outputs/model/weights.bin": bytes(range(256)) * 40,
            "artifacts/outputs/model/config.json": b"{}",
            "artifacts/outputs/result.txt": b"accuracy 0.9\n",
            # A link inside the run is copied as the file it names.
            "artifacts/outputs/inside_link": b"accuracy 0.9\n",
        })

    def test_all_adds_logs_and_prefix_narrows(self):
        self.assertEqual(self.download("--all").returncode, 0)
        with open(os.path.join(self.dest, "artifacts/logs/user_logs/std_log_rank_0.txt")) as f:
            self.assertEqual(f.read(), "done\n")
        narrow = os.path.join(self.project.root, "narrow")
        result = self.project.amlrun("download", self.run_id[:10], "-o", narrow, "--prefix",
                                     "outputs/model")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(sorted(tree(narrow)), ["artifacts", "artifacts/outputs",
                                                "artifacts/outputs/model",
                                                "artifacts/outputs/model/config.json",
                                                "artifacts/outputs/model/weights.bin"])
        one = os.path.join(self.project.root, "one")
        result = self.project.amlrun("download", self.run_id, "-o", one, "--prefix", "outputs/result.txt")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(tree(one)["artifacts/outputs/result.txt"], b"accuracy 0.9\n")

    def test_default_destination_is_the_current_directory(self):
        result = self.project.amlrun("download", self.run_id)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(os.path.isfile(os.path.join(self.project.root, "artifacts/outputs/result.txt")))

    def test_prefix_errors(self):
        for prefix, message in [
                ("outputs/modle", "--prefix outputs/modle: run %s has no such file or folder (did you "
                                  "mean 'outputs/model'?)" % self.run_id),
                ("../run.json", "--prefix: '../run.json' leaves %s; give a path inside it"
                 % os.path.join(self.project.workspace, "runs", self.run_id, "artifacts")),
                ("/etc", "--prefix: '/etc' is an absolute path; give a path relative to %s"
                 % os.path.join(self.project.workspace, "runs", self.run_id, "artifacts")),
                ("model", "--prefix model: start with outputs/ or logs/ (a run's artifacts are its "
                          "outputs and logs)"),
                ("outputs/outside_link/../..", "--prefix outputs/outside_link/../..: its '..' leads "
                                               "to the top of the run, outside outputs/ and logs/ "
                                               "('..' goes up in the path as written, never "
                                               "through a link)")]:
            result = self.download("--prefix", prefix)
            self.assertEqual(result.returncode, 2, prefix)
            self.assertEqual(result.stderr, "amlrun: error: %s\n" % message)
        # A link out of the run is named as such, never followed (the same
        # resolver serves amlrun model register --path).
        for prefix in ["outputs/outside_link", "outputs/outside_link/x"]:
            result = self.download("--prefix", prefix)
            self.assertEqual(result.returncode, 2, prefix)
            self.assertEqual(result.stderr, "amlrun: error: --prefix %s: the path goes through "
                                            "outputs/outside_link, a symbolic link to /etc/passwd, out of "
                                            "run %s (amlrun never follows links out of a run)\n"
                             % (prefix, self.run_id))
        register = self.project.amlrun("model", "register", "--name", "m", "--run", self.run_id,
                                       "--path", "outputs/outside_link")
        self.assertEqual(register.returncode, 2)
        self.assertEqual(register.stderr, "amlrun: error: --path outputs/outside_link: the path goes "
                                          "through outputs/outside_link, a symbolic link to /etc/passwd, "
                                          "out of run %s (amlrun never follows links out of a run)\n"
                         % self.run_id)
        inside = self.download("--prefix", "outputs/inside_link")
        self.assertEqual(inside.returncode, 0, inside.stderr)
        self.assertEqual(tree(self.dest)["artifacts/outputs/inside_link"], b"accuracy 0.9\n")
        shutil.rmtree(self.dest)
        both = self.download("--prefix", "outputs", "--all")
        self.assertEqual(both.stderr, "amlrun: error: --prefix and --all: give one of them\n")
        self.assertFalse(os.path.exists(self.dest))

    def test_a_link_in_the_destination_is_never_written_through(self):
        elsewhere = os.path.join(self.project.root, "elsewhere")
        os.makedirs(elsewhere)
        os.makedirs(self.dest)
        os.symlink(elsewhere, os.path.join(self.dest, "artifacts"))
        result = self.download()
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr.splitlines()[-1],
                         "amlrun: error: cannot write into %s/artifacts: it is a file or a symbolic link, "
                         "not a directory; move it away or choose another destination" % self.dest)
        self.assertEqual(os.listdir(elsewhere), [])

    def test_progress_bar_on_a_terminal(self):
        big = os.path.join(self.project.outputs(self.run_id), "big.bin")
        with open(big, "wb") as f:
            f.write(os.urandom(1 << 20) * 32)
        leader, follower = pty.openpty()
        process = subprocess.Popen([AMLRUN, "download", self.run_id, "-o", self.dest],
                                   cwd=self.project.root, stdout=subprocess.DEVNULL, stderr=follower,
                                   env=dict(clean_environment(), COLUMNS="100"))
        os.close(follower)
        output = b""
        while True:
            ready, _, _ = select.select([leader], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        self.assertEqual(process.wait(timeout=30), 0)
        text = output.decode()
        self.assertIn("\r\033[K100% [########################################] 32.0 MiB / 32.0 MiB  ", text)
        self.assertRegex(text, r" 32.0 MiB  \S+ \S+/s  ETA 0s\r?\n")
        self.assertIn("amlrun: downloaded 5 files (32.0 MiB) from %s" % self.run_id, text)


class DownloadRunningTest(ProjectTest):
    def test_a_running_run_is_refused_unless_partial(self):
        self.project.write("src/slow.py", """
            import os, time
            os.makedirs("outputs", exist_ok=True)
            open("outputs/early.txt", "w").write("early")
            while not os.path.exists(os.path.join(os.environ["AMLRUN_WORKSPACE"], "..", "go")):
                time.sleep(0.02)
        """)
        self.project.write("job.yml", "code: src\ncommand: %s slow.py\n" % PYTHON)
        run_id = self.project.amlrun("submit", "job.yml", "--no-wait").stdout.strip()
        self.project.wait_for_state(run_id, ["Running"])
        deadline = time.time() + 10
        early = os.path.join(self.project.workspace, "runs", run_id, "wd", "outputs", "early.txt")
        while not os.path.exists(early) and time.time() < deadline:
            time.sleep(0.02)
        dest = os.path.join(self.project.root, "dl")
        refused = self.project.amlrun("download", run_id, "-o", dest)
        self.assertEqual(refused.returncode, 2)
        self.assertEqual(refused.stderr,
                         "amlrun: error: run %s is Running: its outputs and logs are sealed when it "
                         "ends; wait for it (amlrun stream %s), or add --partial to download what is "
                         "there now\n" % (run_id, run_id))
        partial = self.project.amlrun("download", run_id, "-o", dest, "--partial")
        self.assertEqual(partial.returncode, 0, partial.stderr)
        with open(os.path.join(dest, "artifacts/outputs/early.txt")) as f:
            self.assertEqual(f.read(), "early")
        open(os.path.join(self.project.root, "go"), "w").close()
        self.project.wait_for_state(run_id, ["Completed"])

    def test_a_run_without_outputs(self):
        self.submit("command: 'true'\n")
        result = self.project.amlrun("download", self.last_run(), "-o", "dl")
        self.assertEqual(result.returncode, 0)
        self.assertEqual(result.stderr, "amlrun: run %s has no outputs to download\n" % self.last_run())


class DownloadDestinationTest(ProjectTest):
    def test_the_destination_must_be_outside_the_workspace(self):
        self.submit("command: mkdir -p outputs && echo x > outputs/a\n")
        run_id = self.last_run()
        inside = os.path.join(self.project.workspace, "runs", run_id, "artifacts", "outputs", "copy")
        result = self.project.amlrun("download", run_id, "-o", inside)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr, "amlrun: error: %s is inside the workspace %s; choose a directory "
                                        "outside it\n" % (inside, self.project.workspace))
        self.assertFalse(os.path.exists(inside))
