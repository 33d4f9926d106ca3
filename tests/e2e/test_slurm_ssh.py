"""Slurm over SSH end to end (issue 14): every amlrun command runs on the
"laptop" (ssh_e2e.laptop_command: no Slurm commands, no munge, the shared
directory hidden), so only the login node's sshd reaches the cluster. The
jobs run on the real two-node test cluster; what the tests read on the
cluster side they read from this machine's file system, which the login node
and the nodes share."""
import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from amlrun_e2e import AMLRUN, Project, clean_environment
from slurm_e2e import read_json, read_text, require_cluster, slurm
from ssh_e2e import (TCSH_HOST, TCSH_USER, cluster, require_ssh_login, ssh_config, ssh_environment,
                     ssh_host, laptop_command, wait_for_login)

# Where amlrun keeps its ControlMaster sockets when XDG_RUNTIME_DIR is unset
# (ssh_connection.cpp): the tests end the master to force a reconnection.
CONTROL_DIR = "/tmp/amlrun-ssh-%d" % os.geteuid()


def yaml_string(value):
    # A JSON string is a YAML double-quoted scalar (non-ASCII written as is).
    return json.dumps(value, ensure_ascii=False)


def end_masters():
    """Ends every amlrun ControlMaster (ssh -O exit on each socket), so that
    the next command must open a new connection."""
    for socket in glob.glob(os.path.join(CONTROL_DIR, "*.sock")):
        subprocess.run(["ssh", "-o", "ControlPath=" + socket, "-O", "exit", "x"],
                       capture_output=True, timeout=30)


class SshProject(Project):
    """A project whose workspace has one Slurm target, `cluster`, reached
    over ssh: `ssh_yaml` is the value of its ssh: key (a flow map)."""

    def __init__(self, ssh_yaml=None):
        super().__init__()
        self.shared = os.path.join(self.root, "shared")
        os.makedirs(self.shared)
        if ssh_yaml is None:
            ssh_yaml = "{host: %s, config_file: %s}" % (ssh_host(), ssh_config())
        with open(os.path.join(self.workspace, "config.yml"), "a") as f:
            f.write("compute:\n"
                    "  cluster:\n"
                    "    type: slurm\n"
                    "    shared_dir: %s\n"
                    "    ssh: %s\n" % (self.shared, ssh_yaml))

    def environment(self, env=None):
        full = clean_environment()
        full.update(ssh_environment())
        full.pop("AMLRUN_WORKSPACE", None)
        full.update(env or {})
        return full

    def argv(self, *args):
        return laptop_command([AMLRUN, *args], hide=[self.shared])

    def amlrun(self, *args, timeout=120, env=None, input=None):
        return subprocess.run(self.argv(*args), cwd=self.root, capture_output=True, text=True,
                              timeout=timeout, env=self.environment(env), input=input)

    def start(self, *args):
        # A session of its own, as a terminal's foreground job: a test's
        # Ctrl-C (SIGINT to the group) reaches amlrun and its ssh processes.
        return subprocess.Popen(self.argv(*args), cwd=self.root, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.environment(),
                                stdin=subprocess.DEVNULL, start_new_session=True)

    def record(self, run_id):
        return read_json(os.path.join(self.workspace, "runs", run_id, "run.json"))

    def job_id(self, run_id):
        return self.record(run_id)["target"]["job_id"]

    def rank_log(self, run_id, rank=0):
        return read_text(os.path.join(self.logs(run_id), "user_logs",
                                      "std_log_rank_%d.txt" % rank))

    def cluster_rank_log(self, run_id, rank=0):
        """Rank `rank`'s log on the cluster: in the shared run directory while
        the run goes on, in the agent's workspace under shared_dir after."""
        relative = os.path.join("artifacts", "logs", "user_logs", "std_log_rank_%d.txt" % rank)
        candidates = [os.path.join(self.shared, "runs", run_id, relative)]
        candidates += glob.glob(os.path.join(self.shared, "workspaces", "*", ".amlrun", "runs",
                                             run_id, relative))
        for path in candidates:
            if os.path.exists(path):
                return read_text(path)
        return None


class SshTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require_cluster()
        require_ssh_login()

    def setUp(self):
        self.project = SshProject()

    def tearDown(self):
        # An outage test that failed midway must not leave the login node down.
        cluster("link-up")
        cluster("sshd-start")
        # A test that failed midway must not leave jobs holding the nodes.
        for run_id in self.project.run_ids():
            try:
                job_id = self.project.job_id(run_id)
            except (KeyError, OSError, ValueError):
                continue
            slurm("scancel", job_id, check=False)
        self.project.cleanup()

    def use_tcsh_login(self):
        """A new project whose target logs in as the tcsh user: its shared
        directory is that user's, the parents traversable (mkdtemp makes the
        project root 0700), and the root writable for it so that an injection
        test's markers would show."""
        self.project.cleanup()
        self.project = SshProject("{host: %s, config_file: %s}" % (TCSH_HOST, ssh_config()))
        os.chmod(self.project.root, 0o777)
        shutil.chown(self.project.shared, TCSH_USER)

    def submit(self, job_text, *args, name="job.yml", timeout=120, env=None):
        self.project.write(name, job_text)
        return self.project.amlrun("submit", name, *args, timeout=timeout, env=env)

    def last_run(self):
        return self.project.run_ids()[-1]

    def wait_for_cluster_log(self, run_id, text, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in (self.project.cluster_rank_log(run_id) or ""):
                return
            time.sleep(0.1)
        raise AssertionError("rank 0 of %s did not write %r within %ss" % (run_id, text, timeout))


TWO_NODES = """
import json, os, socket
rank = int(os.environ["RANK"])
host = socket.gethostname()
for i in range(3):
    print("rank %d line %d on %s" % (rank, i, host), flush=True)
with open("outputs/rank_%d.txt" % rank, "w") as f:
    f.write(host + "\\n")
with open("logs/notes_%d.txt" % rank, "w") as f:
    f.write("notes %d\\n" % rank)
with open(os.environ["AMLRUN_METRICS_FILE"], "a") as f:
    for step in range(3):
        point = {"name": "loss", "value": 1.0 / (step + 1 + rank), "step": step}
        f.write(json.dumps(point) + "\\n")
"""


class TwoNodeTest(SshTest):
    def test_a_two_node_job_streams_rank_0_and_brings_everything_home(self):
        self.project.write("src/job.py", TWO_NODES)
        result = self.submit("""
            code: src
            command: python3 job.py
            compute: cluster
            resources:
              instance_count: 2
            distribution:
              type: pytorch
              process_count_per_instance: 1
        """)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "".join("rank 0 line %d on n1\n" % i for i in range(3)))
        run_id = self.last_run()
        outputs = self.project.outputs(run_id)
        self.assertEqual(read_text(os.path.join(outputs, "rank_0.txt")), "n1\n")
        self.assertEqual(read_text(os.path.join(outputs, "rank_1.txt")), "n2\n")
        logs = self.project.logs(run_id)
        self.assertEqual(read_text(os.path.join(logs, "notes_0.txt")), "notes 0\n")
        self.assertEqual(read_text(os.path.join(logs, "notes_1.txt")), "notes 1\n")
        self.assertEqual(self.project.rank_log(run_id, 1),
                         "".join("rank 1 line %d on n2\n" % i for i in range(3)))
        self.assertIn("amlrun: outputs: " + outputs, result.stderr)
        # The master's socket sits in a directory only this user can enter.
        info = os.stat(CONTROL_DIR)
        self.assertEqual((info.st_uid, info.st_mode & 0o777), (os.geteuid(), 0o700))
        self.assertTrue(glob.glob(os.path.join(CONTROL_DIR, "*.sock")))
        # Offline: the login node refuses connections and no master is left.
        cluster("sshd-stop")
        end_masters()
        started = time.time()
        show = self.project.amlrun("show", run_id, "--output", "json", timeout=60)
        self.assertEqual(show.returncode, 0, show.stderr)
        record = json.loads(show.stdout)
        self.assertEqual(record["state"], "Completed")
        self.assertEqual(record["exit_code"], 0)
        self.assertEqual(record["target"]["nodes"], ["n1", "n2"])
        metrics = self.project.amlrun("metrics", run_id, "--output", "json", timeout=60)
        self.assertEqual(metrics.returncode, 0, metrics.stderr)
        points = sorted((p["rank"], p["step"], p["value"])
                        for p in json.loads(metrics.stdout)["runs"][0]["metrics"]["loss"])
        self.assertEqual(points, [(0, 0, 1.0), (0, 1, 0.5), (0, 2, 1.0 / 3),
                                  (1, 0, 0.5), (1, 1, 1.0 / 3), (1, 2, 0.25)])
        download = os.path.join(self.project.root, "download")
        downloaded = self.project.amlrun("download", run_id, "--output", download, "--all",
                                         timeout=60)
        self.assertEqual(downloaded.returncode, 0, downloaded.stderr)
        self.assertEqual(read_text(os.path.join(download, "artifacts", "outputs", "rank_1.txt")),
                         "n2\n")
        self.assertEqual(read_text(os.path.join(download, "artifacts", "logs", "notes_0.txt")),
                         "notes 0\n")
        self.assertLess(time.time() - started, 10)  # no waiting on the dead login node

    def test_an_mpi_job_on_two_nodes(self):
        result = self.submit("""
            code: src
            command: echo "rank $PMIX_RANK on $(hostname)"; hostname > outputs/host_$PMIX_RANK.txt
            compute: cluster
            resources:
              instance_count: 2
            distribution:
              type: mpi
              process_count_per_instance: 1
        """, "--all-ranks")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(sorted(result.stdout.splitlines()),
                         ["[rank 0] rank 0 on n1", "[rank 1] rank 1 on n2"])
        outputs = self.project.outputs(self.last_run())
        self.assertEqual([read_text(os.path.join(outputs, "host_%d.txt" % r)) for r in (0, 1)],
                         ["n1\n", "n2\n"])


class ExitCodeTest(SshTest):
    def test_the_job_s_exit_code_comes_back(self):
        result = self.submit("""
            code: src
            command: echo before; exit 3
            compute: cluster
        """)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stdout, "before\n")
        record = self.project.show(self.last_run())
        self.assertEqual(record["state"], "Failed")
        self.assertEqual(record["exit_code"], 3)
        self.assertEqual(record["failure_reason"], "rank 0 exited with code 3")


# Everything hostile in one value: quotes, $(...), backticks, !, a newline,
# ;, *, a percent, a backslash, tcsh's history and variable syntax, non-ASCII.
def hostile_value(marker_dir):
    markers = [os.path.join(marker_dir, "pwned%d" % i) for i in range(3)]
    value = ("it's \"q\" $(touch %s) `touch %s`; touch %s !! !$ * ? [a] {x,y} ~ %%j $HOME "
             "${PATH} \\ end\nsecond line\t\u00e9\u00e8 \u4e2d\u6587 \U0001F600 $user"
             % tuple(markers))
    return value, markers


class HostileValuesTest(SshTest):
    """The same job through the root login (bash) and the tcsh one."""

    def run_hostile_job(self, project, user):
        value, markers = hostile_value(project.root)
        project.write("src/show.py", """
            import json, os, pwd, sys
            with open("outputs/seen.json", "w") as f:
                json.dump({"argv": sys.argv[1:], "env": os.environ.get("HOSTILE"),
                           "user": pwd.getpwuid(os.getuid()).pw_name}, f)
            print(json.dumps(sys.argv[1:]))
        """)
        project.write("job.yml", """
            code: src
            command: python3 show.py ${{inputs.text}} --flag
            display_name: %s
            inputs:
              text: %s
            environment_variables:
              HOSTILE: %s
            compute: cluster
        """ % (yaml_string(value), yaml_string(value), yaml_string(value)))
        result = project.amlrun("submit", "job.yml", timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout), [value, "--flag"])
        run_id = project.run_ids()[-1]
        seen = read_json(os.path.join(project.outputs(run_id), "seen.json"))
        self.assertEqual(seen, {"argv": [value, "--flag"], "env": value, "user": user})
        record = project.show(run_id)
        self.assertEqual(record["display_name"], value)
        for marker in markers:
            self.assertFalse(os.path.exists(marker), marker + " was created")

    def test_hostile_values_arrive_verbatim_through_bash(self):
        self.run_hostile_job(self.project, "root")

    def test_hostile_values_arrive_verbatim_through_tcsh(self):
        self.use_tcsh_login()
        self.run_hostile_job(self.project, TCSH_USER)


PATIENT = """
code: src
command: echo started; trap 'echo got SIGTERM; exit 9' TERM; sleep 120 & wait
compute: cluster
"""

TICKS = """
import sys, time
for i in range(%d):
    print("tick", i, flush=True)
    time.sleep(%s)
"""


class SnapshotTest(SshTest):
    def remote_objects(self):
        """The cluster-side snapshot store's objects: name -> (inode, mtime)."""
        objects = {}
        pattern = os.path.join(self.project.shared, "workspaces", "*", ".amlrun", "snapshots",
                               "objects", "*", "*")
        for path in glob.glob(pattern):
            info = os.stat(path)
            objects[os.path.basename(path)] = (info.st_ino, info.st_mtime_ns)
        return objects

    def test_a_second_submit_stores_only_the_changed_file_on_the_cluster(self):
        # What arrives is seen in the cluster's store (the bytes on the wire
        # are tests/bench's business): the unchanged objects stay untouched.
        for i in range(30):
            self.project.write("src/file_%02d.txt" % i, "content %d\n" % i)
        self.project.write("src/big.bin", "x" * (1 << 20))
        job = "code: src\ncommand: cat file_07.txt; wc -c < big.bin\ncompute: cluster\n"
        first = self.submit(job)
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertEqual(first.stdout, "content 7\n1048576\n")
        before = self.remote_objects()
        self.assertEqual(len(before), 31)
        self.project.write("src/file_07.txt", "changed\n")
        second = self.submit(job)
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertEqual(second.stdout, "changed\n1048576\n")
        after = self.remote_objects()
        changed = hashlib.sha256(b"changed\n").hexdigest()
        self.assertEqual(sorted(set(after) - set(before)), [changed])
        self.assertEqual({name: after[name] for name in before}, before)

    def test_hostile_file_names_go_up_and_come_home_verbatim(self):
        names = ["a file with spaces.txt", "it's \"quoted\".txt", "$(touch pwned).txt",
                 "`touch pwned2`;*.txt", "new\nline.txt", "\u00e9t\u00e9 \u4e2d\u6587.txt",
                 "-dash.txt", "back\\slash!.txt"]
        for i, name in enumerate(names):
            self.project.write(os.path.join("src", "in", name), "content %d\n" % i)
        self.project.write("src/copy.py", """
            import json, os, shutil
            names = sorted(os.listdir("in"))
            for name in names:
                shutil.copy(os.path.join("in", name), os.path.join("outputs", name))
            print(json.dumps(names))
        """)
        result = self.submit("code: src\ncommand: python3 copy.py\ncompute: cluster\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout), sorted(names))
        outputs = self.project.outputs(self.last_run())
        self.assertEqual(sorted(os.listdir(outputs)), sorted(names))
        for i, name in enumerate(names):
            self.assertEqual(read_text(os.path.join(outputs, name)), "content %d\n" % i)
        for marker in ("pwned", "pwned2"):
            self.assertEqual(glob.glob(os.path.join(self.project.root, "**", marker),
                                       recursive=True), [])
            self.assertFalse(os.path.exists(os.path.join("/root", marker)))

    def test_an_input_on_this_machine_is_refused_before_anything_runs(self):
        data = self.project.write("data/table.csv", "a,b\n")
        result = self.submit("""
            command: cat ${{inputs.table}}
            inputs:
              table:
                type: uri_file
                path: %s
            compute: cluster
        """ % data)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("input 'table': %s is a path on this machine, which the cluster cannot see; "
                      "compute target 'cluster' is reached over ssh: give a path under "
                      "shared_dir %s (a path on the cluster) or a URL"
                      % (data, self.project.shared), result.stderr)
        self.assertEqual(glob.glob(os.path.join(self.project.shared, "runs", "*")), [])


class ControlTest(SshTest):
    def test_no_wait_then_stream_collects_everything(self):
        self.project.write("src/ticks.py", TICKS % (20, 0.1))
        submitted = self.submit("code: src\ncommand: python3 ticks.py; mkdir -p outputs; "
                                "echo done > outputs/done.txt\ncompute: cluster\n", "--no-wait")
        self.assertEqual(submitted.returncode, 0, submitted.stderr)
        run_id = submitted.stdout.strip()
        self.assertEqual(run_id, self.last_run())
        streamed = self.project.amlrun("stream", run_id, timeout=90)
        self.assertEqual(streamed.returncode, 0, streamed.stderr)
        expected = "".join("tick %d\n" % i for i in range(20))
        self.assertEqual(streamed.stdout, expected)
        self.assertEqual(self.project.rank_log(run_id), expected)
        self.assertEqual(read_text(os.path.join(self.project.outputs(run_id), "done.txt")),
                         "done\n")
        self.assertEqual(self.project.show(run_id)["state"], "Completed")

    def test_a_moved_workspace_reattaches_to_its_run(self):
        self.project.write("src/ticks.py", TICKS % (12, 0.25))
        submitted = self.submit("code: src\ncommand: python3 ticks.py\ncompute: cluster\n",
                                "--no-wait")
        self.assertEqual(submitted.returncode, 0, submitted.stderr)
        run_id = submitted.stdout.strip()
        # The project moves (the shared directory stays where it is: it is
        # the cluster's); the workspace's run still knows where to ask.
        moved = tempfile.mkdtemp(prefix="amlrun-e2e-moved-")
        self.addCleanup(shutil.rmtree, moved, True)
        os.rmdir(moved)
        os.rename(self.project.root, moved)
        old_root = self.project.root
        self.project.root = moved
        self.project.workspace = os.path.join(moved, ".amlrun")
        self.project.shared = os.path.join(moved, "shared")
        os.makedirs(old_root)
        os.rename(self.project.shared, os.path.join(old_root, "shared"))
        self.project.shared = os.path.join(old_root, "shared")
        self.addCleanup(shutil.rmtree, old_root, True)
        streamed = self.project.amlrun("stream", run_id, timeout=90)
        self.assertEqual(streamed.returncode, 0, streamed.stderr)
        expected = "".join("tick %d\n" % i for i in range(12))
        self.assertEqual(streamed.stdout, expected)
        self.assertEqual(self.project.rank_log(run_id), expected)
        self.assertEqual(self.project.show(run_id)["state"], "Completed")

    def test_cancel_a_running_job(self):
        self.cancel_a_running_job()

    def test_cancel_a_running_job_through_tcsh(self):
        self.use_tcsh_login()
        self.cancel_a_running_job()

    def cancel_a_running_job(self):
        submitted = self.submit(PATIENT, "--no-wait")
        self.assertEqual(submitted.returncode, 0, submitted.stderr)
        run_id = submitted.stdout.strip()
        self.wait_for_cluster_log(run_id, "started")
        canceled = self.project.amlrun("cancel", run_id, timeout=60)
        self.assertEqual(canceled.returncode, 0, canceled.stderr)
        self.assertEqual(canceled.stderr, "amlrun: %s Canceled\n" % run_id)
        streamed = self.project.amlrun("stream", run_id, timeout=60)
        self.assertEqual(streamed.returncode, 4, streamed.stderr)
        record = self.project.show(run_id)
        self.assertEqual(record["state"], "Canceled")
        self.assertEqual(record["failure_reason"], "canceled by user (amlrun cancel)")
        self.assertEqual(self.project.rank_log(run_id), "started\ngot SIGTERM\n")

    def test_timeout_fails_the_run_with_a_timeout_reason(self):
        started = time.time()
        result = self.submit("""
            code: src
            command: echo started; trap 'echo got SIGTERM; exit 9' TERM; sleep 120 & wait
            compute: cluster
            limits:
              timeout: 2
        """, timeout=90)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertLess(time.time() - started, 40)
        self.assertEqual(result.stdout, "started\ngot SIGTERM\n")
        self.assertIn("(timeout)", result.stderr)
        record = self.project.show(self.last_run())
        self.assertEqual(record["state"], "Failed")
        self.assertEqual(record["failure_reason"], "timeout")


class Streamer:
    """amlrun running in the background, its output read as it comes."""

    def __init__(self, process):
        self.process = process
        self.lines = []
        self.errors = []
        self.ended = False  # stdout reached its end
        self.condition = threading.Condition()
        self.threads = [threading.Thread(target=self._read, args=(process.stdout, self.lines)),
                        threading.Thread(target=self._read, args=(process.stderr, self.errors))]
        for thread in self.threads:
            thread.start()

    def _read(self, stream, into):
        for line in stream:
            with self.condition:
                into.append(line)
                self.condition.notify_all()
        stream.close()
        with self.condition:
            self.ended = self.ended or into is self.lines
            self.condition.notify_all()

    def wait_for_line(self, line, timeout=60):
        with self.condition:
            self.condition.wait_for(lambda: line in self.lines or self.ended, timeout=timeout)
            if line not in self.lines:
                self.process.wait(timeout=10)
                raise AssertionError("no line %r (waited %ss; amlrun's exit status: %s): %s" % (
                    line, timeout, self.process.returncode, "".join(self.errors)))

    def finish(self, timeout=120):
        """(exit status, stdout, stderr) once amlrun has ended."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("amlrun did not end within %ss: %s" % (timeout,
                                                                       "".join(self.errors)))
        for thread in self.threads:
            thread.join()
        return self.process.returncode, "".join(self.lines), "".join(self.errors)


def master_pids():
    """The pids of amlrun's ControlMasters (from ssh -O check)."""
    pids = []
    for socket in glob.glob(os.path.join(CONTROL_DIR, "*.sock")):
        check = subprocess.run(["ssh", "-o", "ControlPath=" + socket, "-O", "check", "x"],
                               capture_output=True, text=True, timeout=30)
        if "pid=" in check.stderr:
            pids.append(int(check.stderr.split("pid=", 1)[1].split(")")[0]))
    return pids


class OutageTest(SshTest):
    """Outages while `amlrun submit` streams: the login node's sshd
    restarting, amlrun's master connection ending, the link going down."""

    def submit_ticks(self, count, pause):
        self.project.write("src/ticks.py", TICKS % (count, pause))
        self.project.write("job.yml", "code: src\ncommand: python3 ticks.py\ncompute: cluster\n")
        process = self.project.start("submit", "job.yml")
        self.addCleanup(process.wait)
        self.addCleanup(process.kill)
        return Streamer(process)

    def test_sshd_restarted_and_the_master_ended_mid_stream_loses_nothing(self):
        expected = "".join("tick %d\n" % i for i in range(40))
        streamer = self.submit_ticks(40, 0.25)
        streamer.wait_for_line("tick 3\n")
        # The listener goes away and the master connection with it: amlrun
        # must open a new one once sshd is back.
        cluster("sshd-stop")
        end_masters()
        time.sleep(3)
        cluster("sshd-start")
        code, out, err = streamer.finish()
        self.assertEqual(code, 0, err)
        self.assertEqual(out, expected)
        run_id = self.last_run()
        self.assertEqual(self.project.rank_log(run_id), expected)
        self.assertEqual(self.project.show(run_id)["state"], "Completed")

    def test_the_master_killed_right_after_submission_and_again_mid_stream_loses_nothing(self):
        expected = "".join("tick %d\n" % i for i in range(40))
        streamer = self.submit_ticks(40, 0.25)
        # Between the submission and the first line: amlrun's first status
        # and log requests meet a dead master.
        deadline = time.time() + 60
        while not any(line.startswith("amlrun: submitted ") for line in streamer.errors):
            self.assertLess(time.time(), deadline, "".join(streamer.errors))
            time.sleep(0.05)
        for pid in master_pids():
            os.kill(pid, signal.SIGKILL)
        streamer.wait_for_line("tick 12\n")
        for pid in master_pids():
            os.kill(pid, signal.SIGKILL)
        code, out, err = streamer.finish()
        self.assertEqual(code, 0, err)
        self.assertEqual(out, expected)
        self.assertEqual(self.project.rank_log(self.last_run()), expected)

    def test_ctrl_c_detaches_with_130_and_a_later_stream_collects_everything(self):
        expected = "".join("tick %d\n" % i for i in range(30))
        streamer = self.submit_ticks(30, 0.25)
        streamer.wait_for_line("tick 3\n")
        run_id = self.last_run()
        # What a terminal's Ctrl-C does: SIGINT to the whole foreground group.
        os.killpg(streamer.process.pid, signal.SIGINT)
        code, out, err = streamer.finish(timeout=30)
        self.assertEqual(code, 130, err)
        self.assertIn("amlrun: detached from %s; the run goes on (amlrun stream %s reattaches, "
                      "amlrun cancel %s stops it)\n" % (run_id, run_id, run_id), err)
        self.assertTrue(expected.startswith(out), out)
        streamed = self.project.amlrun("stream", run_id, timeout=90)
        self.assertEqual(streamed.returncode, 0, streamed.stderr)
        self.assertEqual(streamed.stdout, expected)
        self.assertEqual(self.project.rank_log(run_id), expected)
        self.assertEqual(self.project.show(run_id)["state"], "Completed")

    def test_a_link_down_past_the_keepalive_ends_the_stream_with_3_and_a_later_stream_collects(
            self):
        self.project.cleanup()
        self.project = SshProject("{host: %s, config_file: %s, options: [ServerAliveInterval=1, "
                                  "ServerAliveCountMax=2, ConnectTimeout=2]}"
                                  % (ssh_host(), ssh_config()))
        expected = "".join("tick %d\n" % i for i in range(60))
        streamer = self.submit_ticks(60, 0.5)
        streamer.wait_for_line("tick 2\n")
        cluster("link-down")
        down = time.time()
        try:
            # Keep-alive (about 3 s) + the 30 s reconnection window + a
            # connection attempt (2 s): well under 60 s.
            code, out, err = streamer.finish(timeout=90)
            elapsed = time.time() - down
            run_id = self.last_run()
            self.assertEqual(code, 3, err)
            self.assertIn("amlrun: error: compute target 'cluster' (ssh %s): " % ssh_host(), err)
            self.assertIn("; the job itself goes on: 'amlrun stream %s' collects everything once "
                          "the link is back\n" % run_id, err)
            self.assertLess(elapsed, 60, err)
            self.assertGreater(elapsed, 25, err)
            self.assertTrue(expected.startswith(out), out)
            # The job went on meanwhile.
            self.assertIn("tick 40\n", self.project.cluster_rank_log(run_id) or "")
            # show of a run that has not ended asks the cluster: an error
            # naming the target, within the connect timeout, not a hang.
            started = time.time()
            show = self.project.amlrun("show", run_id, timeout=60)
            self.assertLess(time.time() - started, 15)
            self.assertEqual(show.returncode, 3, show.stderr)
            self.assertIn("amlrun: error: compute target 'cluster' (ssh %s): the login node cannot "
                          "be reached (" % ssh_host(), show.stderr)
        finally:
            cluster("link-up")
        wait_for_login(timeout=20)
        streamed = self.project.amlrun("stream", run_id, timeout=90)
        self.assertEqual(streamed.returncode, 0, streamed.stderr)
        self.assertEqual(streamed.stdout, expected)
        self.assertEqual(self.project.rank_log(run_id), expected)
        self.assertEqual(self.project.show(run_id)["state"], "Completed")


class ErrorTest(SshTest):
    def submit_with(self, ssh_yaml, timeout_bound):
        """Submits with the target's ssh: key set to `ssh_yaml`: exit 3 within
        timeout_bound seconds."""
        self.project.cleanup()
        self.project = SshProject(ssh_yaml)
        started = time.time()
        result = self.submit("command: echo hi\ncompute: cluster\n", timeout=120)
        elapsed = time.time() - started
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertLess(elapsed, timeout_bound, result.stderr)
        return result

    def ssh_config_with(self, old, new):
        """A copy of the test ssh config with `old` replaced by `new`, in a
        directory of the test's own."""
        directory = tempfile.mkdtemp(prefix="amlrun-ssh-config-")
        self.addCleanup(shutil.rmtree, directory, True)
        text = read_text(ssh_config())
        self.assertIn(old, text)
        path = os.path.join(directory, "config")
        with open(path, "w") as f:
            f.write(text.replace(old, new(directory)))
        return path

    def test_an_unknown_host_key_is_refused(self):
        def empty_known_hosts(directory):
            path = os.path.join(directory, "known_hosts")
            open(path, "w").close()
            return path
        config = self.ssh_config_with("/var/lib/amlrun-slurm-test/ssh/known_hosts",
                                      empty_known_hosts)
        result = self.submit_with("{host: %s, config_file: %s}" % (ssh_host(), config), 30)
        self.assertIn("amlrun: error: compute target 'cluster' (ssh %s): the login node's host key "
                      "is not known to ssh, and amlrun never accepts one by itself; connect once "
                      "with ssh to check the key and add it to known_hosts\n" % ssh_host(),
                      result.stderr)
        # Nothing was accepted on the user's behalf.
        self.assertEqual(read_text(os.path.join(os.path.dirname(config), "known_hosts")), "")

    def test_a_refused_authentication_is_an_error(self):
        def new_key(directory):
            key = os.path.join(directory, "id_ed25519")
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
            return key
        config = self.ssh_config_with("/var/lib/amlrun-slurm-test/ssh/id_ed25519", new_key)
        result = self.submit_with("{host: %s, config_file: %s}" % (ssh_host(), config), 30)
        self.assertIn("amlrun: error: compute target 'cluster' (ssh %s): authentication was "
                      "refused (" % ssh_host(), result.stderr)
        self.assertIn("); amlrun never asks for a password: load your key into ssh-agent, or "
                      "set identity_file (and user) under ssh: in the target\n", result.stderr)

    def test_an_unreachable_host_is_an_error_within_the_connect_timeout(self):
        # ConnectTimeout=2 overrides amlrun's default of 10 s: the bound shows it.
        result = self.submit_with("{host: 10.213.77.99, options: [ConnectTimeout=2]}", 8)
        self.assertIn("compute target 'cluster' (ssh 10.213.77.99)", result.stderr)
        self.assertIn("the login node cannot be reached (", result.stderr)
        self.assertIn("check the host and port under ssh:, and that you can reach it (VPN, "
                      "bastion: proxy_jump)", result.stderr)

    def test_a_missing_shared_dir_is_an_error(self):
        missing = os.path.join(tempfile.gettempdir(), "amlrun-ssh-no-such-dir-%d" % os.getpid())
        # shared_dir: a path that exists on neither side.
        config = os.path.join(self.project.workspace, "config.yml")
        text = read_text(config).replace("shared_dir: %s\n" % self.project.shared,
                                         "shared_dir: %s\n" % missing)
        with open(config, "w") as f:
            f.write(text)
        started = time.time()
        result = self.submit("command: echo hi\ncompute: cluster\n", timeout=60)
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertLess(time.time() - started, 30)
        self.assertIn("compute target 'cluster' (ssh %s): shared_dir %s does not exist on the "
                      "cluster; create it there on a filesystem every node mounts (or fix "
                      "shared_dir in %s)" % (ssh_host(), missing, config), result.stderr)

    def test_a_shared_dir_the_user_cannot_write_is_an_error(self):
        self.project.cleanup()
        self.project = SshProject("{host: %s, config_file: %s}" % (TCSH_HOST, ssh_config()))
        # root's directory, which the tcsh user can enter but not write.
        os.chmod(self.project.root, 0o755)
        os.chmod(self.project.shared, 0o755)
        started = time.time()
        result = self.submit("command: echo hi\ncompute: cluster\n", timeout=60)
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertLess(time.time() - started, 30)
        self.assertIn("amlrun: error: compute target 'cluster' (ssh %s): shared_dir %s on the "
                      "cluster is not writable by you\n" % (TCSH_HOST, self.project.shared),
                      result.stderr)
        self.assertEqual(os.listdir(self.project.shared), [])

    def test_ssh_values_that_would_change_ssh_s_behaviour_are_config_errors(self):
        marker = os.path.join(tempfile.gettempdir(), "amlrun-ssh-pwned-%d" % os.getpid())
        cases = [
            ("{host: %s, options: [ProxyCommand=touch]}" % ssh_host(), "ProxyCommand=touch",
             "'ProxyCommand' cannot be given here: it runs a command on this machine: put it in "
             "your ssh config file"),
            ("{host: %s, options: [ControlPath=/tmp/x]}" % ssh_host(), "ControlPath=/tmp/x",
             "'ControlPath' cannot be given here: amlrun keeps its own multiplexed connection"),
            ("{host: \"-oProxyCommand=touch %s\"}" % marker, "\"-oProxyCommand",
             "is not a host name or ssh config alias: it must be one word without spaces or "
             "control characters, not starting with '-'"),
        ]
        for ssh_yaml, where, message in cases:
            with self.subTest(ssh=ssh_yaml):
                self.project.cleanup()
                self.project = SshProject(ssh_yaml)
                result = self.submit("command: echo hi\ncompute: cluster\n", timeout=60)
                self.assertEqual(result.returncode, 2, result.stderr)
                config = os.path.join(self.project.workspace, "config.yml")
                lines = read_text(config).splitlines()
                line = [i for i, text in enumerate(lines, 1) if where in text][0]
                self.assertIn("%s:%d:" % (config, line), result.stderr)
                self.assertIn(message, result.stderr)
                self.assertFalse(os.path.exists(marker))

    def test_a_misspelled_ssh_key_is_a_config_error(self):
        self.project.cleanup()
        self.project = SshProject("{hots: %s}" % ssh_host())
        result = self.submit("command: echo hi\ncompute: cluster\n", timeout=60)
        self.assertEqual(result.returncode, 2, result.stderr)
        config = os.path.join(self.project.workspace, "config.yml")
        lines = read_text(config).splitlines()
        line = [i for i, text in enumerate(lines, 1) if "hots" in text][0]
        column = lines[line - 1].index("hots") + 1
        self.assertIn("%s:%d:%d" % (config, line, column), result.stderr)
        self.assertIn("did you mean 'host'", result.stderr)


class ComputeShowTest(SshTest):
    def test_compute_show_reports_partitions_and_idle_nodes_over_ssh(self):
        result = self.project.amlrun("compute", "show", "cluster", "--output", "json", timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        report = json.loads(result.stdout)
        self.assertTrue(report["reachable"])
        self.assertEqual(report["error"], "")
        self.assertEqual(report["shared_dir_problem"], "")
        self.assertEqual(report["settings"]["ssh"]["host"], ssh_host())
        self.assertEqual(report["settings"]["ssh"]["config_file"], ssh_config())
        debug = [p for p in report["partitions"] if p["name"] == "debug"][0]
        self.assertTrue(debug["default"])
        self.assertEqual(debug["nodes"], 2)
        self.assertEqual(debug["node_list"], "n[1-2]")
        self.assertEqual(debug["idle"], 2)
        text = self.project.amlrun("compute", "show", "cluster", timeout=60)
        self.assertEqual(text.returncode, 0, text.stderr)
        lines = text.stdout.splitlines()
        self.assertIn("ssh                %s (config %s)" % (ssh_host(), ssh_config()), lines)
        self.assertIn("shared_dir         %s (exists, writable)" % self.project.shared, lines)
        self.assertIn("slurm              reachable", lines)
        self.assertTrue([line for line in lines if line.startswith("debug* ")], text.stdout)

    def test_compute_show_of_an_unreachable_login_node_is_3(self):
        self.project.cleanup()
        self.project = SshProject("{host: 10.213.77.99, options: [ConnectTimeout=2]}")
        started = time.time()
        result = self.project.amlrun("compute", "show", "cluster", "--output", "json", timeout=60)
        self.assertLess(time.time() - started, 8)
        self.assertEqual(result.returncode, 3, result.stderr)
        report = json.loads(result.stdout)
        self.assertFalse(report["reachable"])
        self.assertEqual(report["partitions"], [])
        self.assertTrue(report["error"].startswith(
            "compute target 'cluster' (ssh 10.213.77.99): the login node cannot be reached ("),
            report["error"])
        self.assertEqual(report["shared_dir_problem"], "shared_dir %s was not checked: the login "
                         "node was not reached" % self.project.shared)


if __name__ == "__main__":
    unittest.main()
