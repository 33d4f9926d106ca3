"""The SSH test infrastructure itself (scripts/slurm-test-cluster.sh's login
node and ssh_e2e's laptop): what the SSH tests of issue 14 rely on."""
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import unittest

from amlrun_e2e import BIN
from ssh_e2e import (TCSH_HOST, TCSH_USER, cluster, laptop_bin, laptop_command, laptop_path,
                     require_ssh_login, ssh, ssh_command, ssh_host, wait_for_login)
from slurm_e2e import read_text, slurm, slurm_environment


def wait_for_job_state(job_id, states, timeout=60):
    deadline = time.time() + timeout
    state = ""
    while time.time() < deadline:
        state = slurm("scontrol", "show", "job", "--oneliner", job_id).stdout
        state = state.split("JobState=", 1)[1].split()[0]
        if state in states:
            return state
        time.sleep(0.2)
    raise AssertionError("job %s is %s, not %s, after %ss" % (job_id, state, states, timeout))


class LoginNodeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require_ssh_login()

    def setUp(self):
        # Writable by both test users: the jobs write their output here (the
        # cluster side shares this machine's file system).
        self.directory = tempfile.mkdtemp(prefix="amlrun-ssh-e2e-")
        os.chmod(self.directory, 0o777)

    def tearDown(self):
        shutil.rmtree(self.directory, ignore_errors=True)

    def test_a_remote_command_s_exit_status_comes_back_for_both_users(self):
        for host in (ssh_host(), TCSH_HOST):
            with self.subTest(host=host):
                result = ssh("echo hello; exit 7", host=host)
                self.assertEqual(result.returncode, 7, result.stderr)
                self.assertEqual(result.stdout, "hello\n")
                self.assertEqual(ssh("hostname", host=host).stdout, "amlrun-login\n")
        # ssh's own failure (here: nothing listens on port 2) is 255.
        refused = ssh("true", options=("-o", "Port=2", "-o", "ConnectTimeout=5"))
        self.assertEqual(refused.returncode, 255)
        self.assertIn("Connection refused", refused.stderr)

    def test_the_test_user_s_login_shell_is_tcsh(self):
        result = ssh("echo $version; echo $shell; id -un", host=TCSH_HOST)
        self.assertEqual(result.returncode, 0, result.stderr)
        version, shell, user = result.stdout.splitlines()
        self.assertTrue(version.startswith("tcsh "), version)
        self.assertEqual(shell, "/usr/bin/tcsh")
        self.assertEqual(user, TCSH_USER)
        # A POSIX-only construct fails there: what amlrun sends must not need one.
        self.assertNotEqual(ssh("x=1; echo $x", host=TCSH_HOST).returncode, 0)

    def test_sbatch_over_ssh_runs_a_job_for_both_users(self):
        for host, user in ((ssh_host(), "root"), (TCSH_HOST, TCSH_USER)):
            with self.subTest(host=host):
                output = os.path.join(self.directory, "%s-%%j.out" % user)
                result = ssh("sbatch --parsable --output=%s --wrap 'id -un; hostname'" % output,
                             host=host)
                self.assertEqual(result.returncode, 0, result.stderr)
                job_id = result.stdout.strip()
                self.assertTrue(job_id.isdigit(), result.stdout)
                self.assertEqual(wait_for_job_state(job_id, ("COMPLETED", "FAILED")), "COMPLETED")
                lines = read_text(output.replace("%j", job_id)).splitlines()
                self.assertEqual(lines[0], user)
                self.assertIn(lines[1], ("n1", "n2"))

    def test_the_tcsh_user_can_watch_and_cancel_its_job_over_ssh(self):
        submitted = ssh("sbatch --parsable --output=/dev/null --wrap 'sleep 300'", host=TCSH_HOST)
        self.assertEqual(submitted.returncode, 0, submitted.stderr)
        job_id = submitted.stdout.strip()
        try:
            listed = ssh("squeue --noheader --format=%%i:%%u --jobs=%s" % job_id, host=TCSH_HOST)
            self.assertEqual(listed.returncode, 0, listed.stderr)
            self.assertEqual(listed.stdout.strip(), "%s:%s" % (job_id, TCSH_USER))
            canceled = ssh("scancel " + job_id, host=TCSH_HOST)
            self.assertEqual(canceled.returncode, 0, canceled.stderr)
            self.assertEqual(wait_for_job_state(job_id, ("CANCELLED",)), "CANCELLED")
        finally:
            slurm("scancel", job_id, check=False)

    def run_on_laptop(self, script, *args, hide=(), env=None):
        return subprocess.run(laptop_command(["sh", "-c", script, "sh", *args], hide=hide),
                              capture_output=True, text=True, timeout=60,
                              env=env or slurm_environment(),
                              stdin=subprocess.DEVNULL)

    def test_the_laptop_has_no_slurm_and_no_shared_directory_but_reaches_the_login_node(self):
        shared = os.path.join(self.directory, "shared")
        os.makedirs(shared)
        with open(os.path.join(shared, "only-on-the-cluster"), "w") as f:
            f.write("x")
        env = slurm_environment()
        self.assertTrue(env.get("SLURM_CONF"))  # passed in, and unset in there
        result = self.run_on_laptop(
            'echo "path=$PATH"; echo "conf=${SLURM_CONF-unset}"; '
            'command -v sbatch || echo "no sbatch"; command -v srun || echo "no srun"; '
            'echo "ssh=$(command -v ssh)"; echo "shared=$(ls -A "$1")"; '
            'echo "munge=$(ls -A /run/munge)"; touch "$1/x" 2>/dev/null || echo "read-only"; '
            '/usr/bin/sinfo >/dev/null 2>&1 || echo "sinfo fails"', shared, hide=[shared], env=env)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(), [
            "path=" + laptop_path(), "conf=unset", "no sbatch", "no srun",
            "ssh=" + os.path.join(laptop_bin(), "ssh"), "shared=", "munge=", "read-only",
            "sinfo fails"])
        # amlrun comes from the build under test.
        self.assertEqual(laptop_path().split(":")[0], os.path.abspath(BIN))
        # Outside, nothing changed.
        self.assertEqual(os.listdir(shared), ["only-on-the-cluster"])
        self.assertTrue(os.path.exists("/run/munge/munge.socket.2"))
        # The laptop reaches the cluster through the login node only.
        remote = shlex.join(ssh_command("sbatch --version; ls " + shared))
        result = self.run_on_laptop(remote + "; echo status=$?", hide=[shared])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines()[1:], ["only-on-the-cluster", "status=0"])
        self.assertTrue(result.stdout.startswith("slurm"), result.stdout)

    def test_the_laptop_refuses_to_hide_what_is_not_a_directory(self):
        result = self.run_on_laptop("echo ran", hide=[os.path.join(self.directory, "missing")])
        self.assertEqual(result.returncode, 125)
        self.assertEqual(result.stdout, "")


class LoginNodeOutageTest(unittest.TestCase):
    """Stops the login node's sshd or its network: the SSH tests' outages."""

    @classmethod
    def setUpClass(cls):
        require_ssh_login()

    def setUp(self):
        self.control = os.path.join(tempfile.mkdtemp(prefix="amlrun-ssh-mux-"), "control")

    def tearDown(self):
        cluster("link-up")
        cluster("sshd-start")
        subprocess.run(ssh_command(options=("-o", "ControlPath=" + self.control, "-O", "exit")),
                       capture_output=True, timeout=30)
        shutil.rmtree(os.path.dirname(self.control), ignore_errors=True)

    def start_master(self, *options):
        result = subprocess.run(
            ssh_command(options=("-o", "ControlMaster=yes", "-o", "ControlPath=" + self.control,
                                 "-o", "ControlPersist=120", "-f", "-N", *options)),
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(result.returncode, 0, result.stderr)

    def through_master(self, *remote, timeout=30):
        return ssh(*remote, options=("-o", "ControlPath=" + self.control, "-o", "ControlMaster=no",
                                     "-o", "ConnectTimeout=2"), timeout=timeout)

    def master_runs(self):
        check = ssh_command(options=("-o", "ControlPath=" + self.control, "-O", "check"))
        return subprocess.run(check, capture_output=True, timeout=30).returncode == 0

    def test_sshd_stop_refuses_new_connections_and_a_master_goes_on(self):
        self.start_master()
        cluster("sshd-stop")
        started = time.time()
        result = ssh("true", options=("-o", "ConnectTimeout=3"))
        self.assertEqual(result.returncode, 255)
        self.assertLess(time.time() - started, 5)
        self.assertIn("Connection refused", result.stderr)
        # Connections already made have their own sshd: a master still opens
        # sessions (sshd-stop is a listener restart, not a node failure).
        through = self.through_master("exit 3")
        self.assertEqual(through.returncode, 3, through.stderr)
        cluster("sshd-start")
        self.assertEqual(ssh("true").returncode, 0)

    def test_link_down_drops_new_connections_and_a_master_s_keepalive_ends_it(self):
        self.start_master("-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2")
        self.assertEqual(self.through_master("true").returncode, 0)
        cluster("link-down")
        started = time.time()
        result = ssh("true", options=("-o", "ConnectTimeout=2"))
        self.assertEqual(result.returncode, 255)
        self.assertLess(time.time() - started, 6)
        # No answer at all (no reset): a timeout, not a refusal.
        self.assertNotIn("refused", result.stderr)
        # The master's keep-alives go unanswered: it ends after about
        # interval x (count + 1) seconds.
        deadline = time.time() + 15
        while self.master_runs() and time.time() < deadline:
            time.sleep(0.5)
        self.assertFalse(self.master_runs())
        cluster("link-up")
        wait_for_login(timeout=10)
        self.assertEqual(ssh("true").returncode, 0)


if __name__ == "__main__":
    unittest.main()
