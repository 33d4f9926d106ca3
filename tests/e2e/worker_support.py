"""Shared by the test_worker*.py end-to-end tests: the worker binary, small
Fashion-MNIST image folders made with scripts/fashion-mnist-to-folders.sh,
and runs of amlrun-worker directly or under mpirun.

Everything is real: the real binary, real PNG files, real Open MPI, and
Debian's python3-torch for reading what the worker writes."""
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

BIN = os.environ.get("AMLRUN_BIN", "")
SOURCE = os.environ.get("AMLRUN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
WORKER = os.path.join(BIN, "amlrun-worker")

# Images are 28×28 Fashion-MNIST scaled to 32×32: the smallest size the
# models accept, so a ResNet-18 epoch over a few hundred images takes seconds.
IMAGE_SIZE = "32"

_DATA_ROOT = None
_DATA_LOCK = threading.Lock()


def data_root():
    """A folder with fashion-mnist subsets, made once per test process:
    small/{train,test} (40 and 10 per class) and tiny/{train,test} (4 and 2)."""
    global _DATA_ROOT
    with _DATA_LOCK:
        if _DATA_ROOT is None:
            root = tempfile.mkdtemp(prefix="amlrun-worker-e2e-data-")
            script = os.path.join(SOURCE, "scripts", "fashion-mnist-to-folders.sh")
            for name, train, test in (("small", 40, 10), ("tiny", 4, 2)):
                subprocess.run([script, os.path.join(root, name), "--per-class", str(train),
                                "--test-per-class", str(test)], check=True, stdout=subprocess.DEVNULL)
            _DATA_ROOT = root
        return _DATA_ROOT


def remove_data_root():
    global _DATA_ROOT
    with _DATA_LOCK:
        if _DATA_ROOT is not None:
            shutil.rmtree(_DATA_ROOT, ignore_errors=True)
            _DATA_ROOT = None


def data(name, split):
    return os.path.join(data_root(), name, split)


def train_args(dataset="small", *extra):
    return ["train", "--train-data", data(dataset, "train"), "--validation-data", data(dataset, "test"),
            "--image-size", IMAGE_SIZE, *extra]


def worker_env(**extra):
    env = dict(os.environ)
    env.pop("AMLRUN_METRICS_FILE", None)
    env.update(extra)
    return env


def run_worker(args, cwd=None, timeout=600, env=None):
    return subprocess.run([WORKER, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env or worker_env())


def mpirun_command(ranks, args):
    command = ["mpirun", "-np", str(ranks), "--oversubscribe"]
    if os.geteuid() == 0:
        command.append("--allow-run-as-root")
    return command + [WORKER, *args]


def run_mpi(ranks, args, cwd=None, timeout=600):
    return subprocess.run(mpirun_command(ranks, args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=worker_env())


def load(path):
    """torch.load of a file the worker wrote (imports torch only when needed)."""
    import torch
    return torch.load(path)


def children_ranks(mpirun_pid):
    """{rank: pid} of the worker processes mpirun started."""
    ranks = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != mpirun_pid:
                continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                environment = f.read().split(b"\0")
        except OSError:
            continue
        for item in environment:
            if item.startswith(b"OMPI_COMM_WORLD_RANK="):
                ranks[int(item.split(b"=", 1)[1])] = int(entry)
    return ranks


class Background:
    """A process whose stdout and stderr are collected by threads, so a test
    can wait for a line and still read everything afterwards."""

    def __init__(self, command, cwd=None):
        self.process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env=worker_env())
        self.stdout = []
        self.stderr = []
        self._threads = [threading.Thread(target=self._drain, args=(self.process.stdout, self.stdout)),
                         threading.Thread(target=self._drain, args=(self.process.stderr, self.stderr))]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _drain(stream, lines):
        for line in stream:
            lines.append(line)

    def wait_for_output(self, text, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.stdout):
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def wait(self, timeout):
        code = self.process.wait(timeout=timeout)
        self._finish()
        return code

    def _finish(self):
        for thread in self._threads:
            thread.join()
        self.process.stdout.close()
        self.process.stderr.close()

    def kill_everything(self):
        """Cleanup: the launcher and anything it started."""
        for pid in children_ranks(self.process.pid).values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._finish()

    def output(self):
        return "".join(self.stdout) + "".join(self.stderr)


class WorkerTest(unittest.TestCase):
    """A test with its own temporary folder self.dir, removed afterwards."""
    dir_prefix = "amlrun-worker-"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix=self.dir_prefix)
        self.addCleanup(shutil.rmtree, self.dir, True)
