"""Shared helpers for the SSH end-to-end tests (issue 14): amlrun on a
"laptop" that reaches the test cluster only through its login node.

The login node is part of the Slurm test cluster (scripts/slurm-test-cluster.sh
up): Debian's sshd at 10.213.77.20 in a network namespace of its own, with a
client config naming two hosts, amlrun-login (root) and amlrun-login-tcsh (a
test user whose login shell is tcsh). `scripts/slurm-test-cluster.sh env`
prints AMLRUN_TEST_SSH_CONFIG and AMLRUN_TEST_SSH_HOST; without them the
defaults under /var/lib/amlrun-slurm-test are used, as slurm_e2e does for
SLURM_CONF.

The laptop is laptop_command(): the command runs in a mount namespace of its
own where the test's shared directory, munge's socket directory and the
cluster's Slurm config are covered by empty read-only file systems, with a
PATH on which no Slurm or munge command is found and no SLURM_* variable set.
The login node itself runs on this machine's file system (it is the cluster
side: its sessions and the jobs they submit see the shared directory).

Without a login node the tests are skipped, unless AMLRUN_SLURM_TESTS=required,
where they fail instead."""
import os
import subprocess
import time
import unittest

from amlrun_e2e import BIN
from slurm_e2e import slurm_environment

DEFAULT_SSH_CONFIG = "/var/lib/amlrun-slurm-test/ssh/config"
DEFAULT_SSH_HOST = "amlrun-login"
# The same login node as the test user amlruntcsh, whose login shell is tcsh.
TCSH_HOST = "amlrun-login-tcsh"
TCSH_USER = "amlruntcsh"
CLUSTER_SCRIPT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "scripts",
                                              "slurm-test-cluster.sh"))

# Runs as `sh -c LAPTOP_SCRIPT laptop PATH HIDDEN... -- ARGV...` inside
# `unshare --mount --propagation private` (so the mounts stay in there).
LAPTOP_SCRIPT = r'''
path="$1"
shift
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
  if [ ! -d "$1" ]; then
    echo "laptop: cannot hide $1: not a directory" >&2
    exit 125
  fi
  mount -t tmpfs -o ro,mode=0755,size=4k amlrun-laptop-hidden "$1" || exit 125
  shift
done
shift
for name in $(env | sed -n 's/^\(SLURM_[A-Za-z0-9_]*\)=.*/\1/p'); do
  unset "$name"
done
PATH="$path"
export PATH
exec "$@"
'''


def ssh_environment():
    """The test's environment with SLURM_CONF, AMLRUN_TEST_SSH_CONFIG and
    AMLRUN_TEST_SSH_HOST set (to the defaults when not given)."""
    env = slurm_environment()
    if not env.get("AMLRUN_TEST_SSH_CONFIG"):
        env["AMLRUN_TEST_SSH_CONFIG"] = DEFAULT_SSH_CONFIG
    if not env.get("AMLRUN_TEST_SSH_HOST"):
        env["AMLRUN_TEST_SSH_HOST"] = DEFAULT_SSH_HOST
    return env


def ssh_config():
    return ssh_environment()["AMLRUN_TEST_SSH_CONFIG"]


def ssh_host():
    return ssh_environment()["AMLRUN_TEST_SSH_HOST"]


def state_dir():
    """The cluster's state directory ($AMLRUN_SLURM_STATE): the Slurm config
    is its etc/slurm.conf."""
    conf = slurm_environment().get("SLURM_CONF")
    if conf:
        return os.path.dirname(os.path.dirname(conf))
    return os.environ.get("AMLRUN_SLURM_STATE", "/var/lib/amlrun-slurm-test")


def laptop_bin():
    """Links to every command but Slurm's and munge's (made by the cluster
    script's `up`)."""
    return os.path.join(state_dir(), "laptop-bin")


def laptop_path():
    """The laptop's PATH: the amlrun build's bin directory, then laptop_bin()."""
    return os.path.abspath(BIN) + ":" + laptop_bin()


def default_hidden():
    """What the laptop never sees: munge's socket directory and the test
    cluster's Slurm config (which /etc/slurm/slurm.conf links to)."""
    return ["/run/munge", os.path.join(state_dir(), "etc")]


def laptop_command(argv, hide=()):
    """An argv that runs `argv` on the "laptop": in a private mount namespace
    where default_hidden() and every directory in `hide` (the test's shared
    directory) are empty and read-only, PATH is laptop_path() and no SLURM_*
    variable is set. The rest of the caller's environment (HOME included)
    passes through. Exit status: argv's, or 125 when a directory cannot be
    hidden. Needs root (unshare --mount). Example:

        subprocess.run(laptop_command([AMLRUN, "submit", "job.yml"], hide=[shared]),
                       cwd=project_root, env=env, capture_output=True, text=True)
    """
    hidden = default_hidden() + [os.path.abspath(path) for path in hide]
    return ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", LAPTOP_SCRIPT,
            "laptop", laptop_path(), *hidden, "--", *argv]


def ssh_command(*remote, host=None, options=()):
    """ssh to the login node through the test config (no ~/.ssh/config, no
    /etc/ssh/ssh_config): `remote` is the command line its login shell runs."""
    return ["ssh", "-F", ssh_config(), *options, host or ssh_host(), *remote]


def ssh(*remote, host=None, options=(), timeout=60):
    return subprocess.run(ssh_command(*remote, host=host, options=options), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def cluster(subcommand, timeout=60):
    """scripts/slurm-test-cluster.sh SUBCOMMAND (sshd-stop, sshd-start,
    link-down, link-up), which must succeed."""
    env = dict(os.environ)
    env.setdefault("AMLRUN_SLURM_STATE", state_dir())
    result = subprocess.run([CLUSTER_SCRIPT, subcommand], capture_output=True, text=True,
                            timeout=timeout, env=env)
    if result.returncode != 0:
        raise AssertionError("slurm-test-cluster.sh %s failed: %s" % (subcommand, result.stderr))
    return result


def require_ssh_login():
    """Skips (fails with AMLRUN_SLURM_TESTS=required) unless both test users
    can log in to the login node and the laptop's PATH exists."""
    message = ("no SSH login node answers (start the test cluster with: "
               "scripts/slurm-test-cluster.sh up, as root)")
    detail = ""
    try:
        ready = os.path.isdir(laptop_bin()) and os.path.exists(ssh_config())
        if not ready:
            detail = "no %s or %s" % (laptop_bin(), ssh_config())
        for host in (ssh_host(), TCSH_HOST):
            if not ready:
                break
            result = ssh("true", host=host, options=("-o", "ConnectTimeout=5"), timeout=30)
            ready = result.returncode == 0
            detail = result.stderr
    except (OSError, KeyError, subprocess.TimeoutExpired) as error:
        ready, detail = False, str(error)
    if not ready:
        if os.environ.get("AMLRUN_SLURM_TESTS") == "required":
            raise AssertionError(message + ": " + detail)
        raise unittest.SkipTest(message)


def wait_for_login(host=None, timeout=20):
    """Waits until a new connection to the login node succeeds."""
    deadline = time.time() + timeout
    while True:
        result = ssh("true", host=host, options=("-o", "ConnectTimeout=2"), timeout=30)
        if result.returncode == 0:
            return
        if time.time() >= deadline:
            raise AssertionError("the login node does not answer: " + result.stderr)
        time.sleep(0.2)
