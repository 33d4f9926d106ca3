"""Shared helpers for the Slurm end-to-end tests: a project whose workspace
has Slurm targets on the real test cluster (scripts/slurm-test-cluster.sh).

Without a cluster the tests are skipped, unless AMLRUN_SLURM_TESTS=required
(scripts/test.sh sets it when it started one), where they fail instead."""
import json
import os
import subprocess
import time
import unittest

from amlrun_e2e import AMLRUN, Project

DEFAULT_SLURM_CONF = "/var/lib/amlrun-slurm-test/etc/slurm.conf"


def read_text(path):
    with open(path) as f:
        return f.read()


def read_json(path):
    return json.loads(read_text(path))


def slurm_environment():
    env = dict(os.environ)
    if not env.get("SLURM_CONF") and os.path.exists(DEFAULT_SLURM_CONF):
        env["SLURM_CONF"] = DEFAULT_SLURM_CONF
    return env


def slurm(*argv, check=True, timeout=60):
    result = subprocess.run(list(argv), capture_output=True, text=True, env=slurm_environment(),
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError("%s failed: %s" % (" ".join(argv), result.stderr))
    return result


def require_cluster():
    message = "no Slurm test cluster answers (start one with: scripts/slurm-test-cluster.sh up, as root)"
    try:
        result = slurm("sinfo", "--noheader", "--responding", "--format=%n", check=False, timeout=30)
        ready = result.returncode == 0 and len(result.stdout.split()) >= 2
        detail = result.stderr
    except (OSError, subprocess.TimeoutExpired) as error:
        ready, detail = False, str(error)
    if not ready:
        if os.environ.get("AMLRUN_SLURM_TESTS") == "required":
            raise AssertionError(message + ": " + detail)
        raise unittest.SkipTest(message)


def wait_for_idle_nodes(count=2, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        result = slurm("sinfo", "--noheader", "--responding", "--states=idle", "--format=%n",
                       check=False)
        if len(result.stdout.split()) >= count:
            return
        time.sleep(0.5)
    raise AssertionError("the test cluster's nodes did not come back: " +
                         slurm("sinfo", check=False).stdout)


def job_state(job_id):
    return slurm("squeue", "--noheader", "--states=all", "--jobs=" + job_id,
                 "--format=%T").stdout.strip()


def final_job_state(job_id, timeout=30):
    """The job's state once Slurm has finished cleaning up: a canceled job
    is COMPLETING while its nodes kill what is left of it, which can outlast
    amlrun's own ending of the run (the batch step has already reported)."""
    deadline = time.time() + timeout
    state = job_state(job_id)
    while state == "COMPLETING" and time.time() < deadline:
        time.sleep(0.2)
        state = job_state(job_id)
    return state


class SlurmProject(Project):
    """A project with targets `cluster` (plain) and any extra ones given,
    all running their jobs under <project>/shared."""

    def __init__(self, extra_targets=""):
        super().__init__()
        self.shared = os.path.join(self.root, "shared")
        os.makedirs(self.shared)
        with open(os.path.join(self.workspace, "config.yml"), "a") as f:
            f.write("compute:\n"
                    "  cluster:\n"
                    "    type: slurm\n"
                    "    shared_dir: %s\n" % self.shared)
            f.write(extra_targets.replace("SHARED", self.shared))

    def amlrun(self, *args, timeout=120, env=None, input=None):
        full = {"SLURM_CONF": slurm_environment().get("SLURM_CONF", "")}
        full.update(env or {})
        return super().amlrun(*args, timeout=timeout, env=full, input=input)

    def start(self, *args):
        env = slurm_environment()
        env.pop("AMLRUN_WORKSPACE", None)
        return subprocess.Popen([AMLRUN, *args], cwd=self.root, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)

    def record(self, run_id):
        with open(os.path.join(self.workspace, "runs", run_id, "run.json")) as f:
            return json.load(f)

    def job_id(self, run_id):
        return self.record(run_id)["target"]["job_id"]

    def live_rank_log(self, run_id, rank=0):
        """What rank `rank` has written so far in the shared run directory
        ("" before it has started)."""
        path = os.path.join(self.shared, "runs", run_id, "artifacts", "logs", "user_logs",
                            "std_log_rank_%d.txt" % rank)
        try:
            return read_text(path)
        except OSError:
            return ""

    def rank_log(self, run_id, rank=0):
        with open(os.path.join(self.logs(run_id), "user_logs", "std_log_rank_%d.txt" % rank)) as f:
            return f.read()


class SlurmTest(unittest.TestCase):
    extra_targets = ""

    @classmethod
    def setUpClass(cls):
        require_cluster()

    def setUp(self):
        self.project = SlurmProject(self.extra_targets)

    def tearDown(self):
        # A test that failed midway must not leave jobs holding the nodes.
        for run_id in self.project.run_ids():
            try:
                job_id = self.project.job_id(run_id)
            except (KeyError, OSError, ValueError):
                continue
            slurm("scancel", job_id, check=False)
        self.project.cleanup()

    def submit(self, job_text, *args, name="job.yml", timeout=120, env=None):
        self.project.write(name, job_text)
        return self.project.amlrun("submit", name, *args, timeout=timeout, env=env)

    def last_run(self):
        return self.project.run_ids()[-1]
