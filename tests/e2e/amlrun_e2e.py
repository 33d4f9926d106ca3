"""Shared helpers for the end-to-end tests: they drive the real amlrun binary
in a fresh project directory with its own workspace."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
import unittest

BIN = os.environ.get("AMLRUN_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build", "bin"))
AMLRUN = os.path.join(BIN, "amlrun")
PYTHON = "/usr/bin/python3"


def clean_environment():
    """The test's environment without a workspace chosen from outside."""
    env = dict(os.environ)
    env.pop("AMLRUN_WORKSPACE", None)
    return env


class Project:
    """A temporary project: job files, a src/ folder and a workspace."""

    def __init__(self, kill_grace_seconds=1):
        self.root = tempfile.mkdtemp(prefix="amlrun-e2e-")
        os.makedirs(os.path.join(self.root, "src"))
        self.workspace = os.path.join(self.root, ".amlrun")
        subprocess.run([AMLRUN, "init", self.root], check=True, capture_output=True)
        with open(os.path.join(self.workspace, "config.yml"), "w") as f:
            f.write("local:\n  kill_grace_seconds: %d\n" % kill_grace_seconds)

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def write(self, relative, text, mode=None):
        path = os.path.join(self.root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        if mode is not None:
            os.chmod(path, mode)
        return path

    def amlrun(self, *args, timeout=120, env=None, input=None):
        full_env = clean_environment()
        full_env.update(env or {})
        return subprocess.run([AMLRUN, *args], cwd=self.root, capture_output=True, text=True,
                              timeout=timeout, env=full_env, input=input)

    def start(self, *args):
        return subprocess.Popen([AMLRUN, *args], cwd=self.root, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=clean_environment())

    def show(self, run_id):
        result = self.amlrun("show", run_id, "--output", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def run_ids(self):
        runs = os.path.join(self.workspace, "runs")
        return sorted(os.listdir(runs), key=lambda r: os.stat(os.path.join(runs, r)).st_mtime)

    def outputs(self, run_id):
        return os.path.join(self.workspace, "runs", run_id, "artifacts", "outputs")

    def logs(self, run_id):
        return os.path.join(self.workspace, "runs", run_id, "artifacts", "logs")

    def wait_for_state(self, run_id, states, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            path = os.path.join(self.workspace, "runs", run_id, "run.json")
            try:
                with open(path) as f:
                    record = json.load(f)
                if record["state"] in states:
                    return record
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise AssertionError("run %s did not reach %s in %ss" % (run_id, states, timeout))


def kill_and_wait(pid, timeout=10):
    """SIGKILL to pid, returning once it is gone (a zombie counts as gone:
    the supervisor is detached, so init reaps it)."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except OSError:
            return
        time.sleep(0.02)
    raise AssertionError("process %d did not end within %ss of SIGKILL" % (pid, timeout))


class ProjectTest(unittest.TestCase):
    def setUp(self):
        self.project = Project()

    def tearDown(self):
        self.project.cleanup()

    def submit(self, job_text, *args, name="job.yml", timeout=120):
        self.project.write(name, job_text)
        return self.project.amlrun("submit", name, *args, timeout=timeout)

    def last_run(self):
        return self.project.run_ids()[-1]
