"""Environments end to end: a venv built with real pip from a wheel the test
makes itself (no network), reused, built once under concurrency; a failing
build; the env commands."""
import atexit
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from amlrun_e2e import PYTHON, ProjectTest

WHEELS = None


def tiny_wheel_dir():
    """Builds tinypkg-0.1 once per test process with `pip wheel`, offline."""
    global WHEELS
    if WHEELS:
        return WHEELS
    source = tempfile.mkdtemp(prefix="amlrun-e2e-tinypkg-")
    atexit.register(shutil.rmtree, source, True)
    os.makedirs(os.path.join(source, "tinypkg"))
    with open(os.path.join(source, "tinypkg", "__init__.py"), "w") as f:
        f.write('VALUE = "tiny 0.1"\n')
    with open(os.path.join(source, "setup.py"), "w") as f:
        f.write('from setuptools import setup\nsetup(name="tinypkg", version="0.1", packages=["tinypkg"])\n')
    wheels = os.path.join(source, "wheels")
    subprocess.run([PYTHON, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", wheels, source], check=True, capture_output=True)
    WHEELS = wheels
    return wheels


class VenvTest(ProjectTest):
    def setUp(self):
        super().setUp()
        with open(os.path.join(self.project.workspace, "config.yml"), "a") as f:
            f.write("environments:\n  python: %s\n" % PYTHON)
        self.pip_env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": tiny_wheel_dir()}
        self.project.write("src/use.py", """
            import sys, tinypkg
            print(tinypkg.VALUE, sys.prefix.rsplit("/", 1)[-1].startswith("venv-"))
        """)
        self.project.write("job.yml", """
            source_directory: src
            entry_script: use.py
            pip_packages: [tinypkg==0.1]
        """)

    def facts(self, run_id):
        return self.project.show(run_id)["target"]["environment"]

    def preparing_seconds(self, run_id):
        from datetime import datetime
        history = {h["state"]: h["at"] for h in self.project.show(run_id)["history"]}
        parse = lambda t: datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ")
        return (parse(history["Starting"]) - parse(history["Preparing"])).total_seconds()

    def test_a_venv_is_built_once_with_pip_config_honoured_then_reused(self):
        first = self.project.amlrun("submit", "job.yml", env=self.pip_env, timeout=300)
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertEqual(first.stdout, "tiny 0.1 True\n")
        first_id = self.last_run()
        facts = self.facts(first_id)
        self.assertEqual(facts["mode"], "venv")
        self.assertFalse(facts["cache_hit"])
        self.assertGreater(facts["seconds"], 0)
        with open(os.path.join(self.project.logs(first_id), "system", "env_build.txt")) as f:
            log = f.read()
        self.assertIn("-m venv", log)
        self.assertIn("Successfully installed tinypkg-0.1", log)

        second = self.project.amlrun("submit", "job.yml", env=self.pip_env, timeout=300)
        self.assertEqual(second.returncode, 0, second.stderr)
        second_id = self.last_run()
        facts = self.facts(second_id)
        self.assertTrue(facts["cache_hit"])
        self.assertEqual(facts["venv"], self.facts(first_id)["venv"])
        self.assertFalse(os.path.exists(os.path.join(self.project.logs(second_id), "system",
                                                     "env_build.txt")))
        self.assertLess(self.preparing_seconds(second_id), 0.5)
        self.assertEqual(self.project.show(second_id)["environment"]["hash"],
                         self.project.show(first_id)["environment"]["hash"])

    def test_two_concurrent_runs_build_the_venv_once(self):
        self.project.write("job.yml", """
            source_directory: src
            entry_script: use.py
            pip_packages: [tinypkg==0.1]
            environment_variables: {WHICH: concurrent}
        """)
        runs = [self.project.amlrun("submit", "job.yml", "--no-wait", env=self.pip_env)
                for _ in range(2)]
        ids = [r.stdout.strip() for r in runs]
        for run_id in ids:
            record = self.project.wait_for_state(run_id, ["Completed", "Failed", "Canceled"], timeout=300)
            self.assertEqual(record["state"], "Completed", record.get("failure_reason"))
        hits = sorted(self.facts(run_id)["cache_hit"] for run_id in ids)
        self.assertEqual(hits, [False, True])
        builds = [os.path.exists(os.path.join(self.project.logs(r), "system", "env_build.txt")) for r in ids]
        self.assertEqual(sorted(builds), [False, True])

    def test_a_failing_build_fails_the_run_in_preparing_with_the_pip_log(self):
        self.project.write("job.yml", """
            source_directory: src
            entry_script: use.py
            pip_packages: [nosuchpackage-amlrun==9.9]
        """)
        result = self.project.amlrun("submit", "job.yml", env=self.pip_env, timeout=300)
        self.assertEqual(result.returncode, 1)
        run_id = self.last_run()
        record = self.project.show(run_id)
        self.assertEqual(record["state"], "Failed")
        self.assertEqual(record["failure_reason"],
                         "preparing: pip install failed with exit code 1; see logs/system/env_build.txt")
        self.assertEqual([h["state"] for h in record["history"]],
                         ["Queued", "Preparing", "Finalizing", "Failed"])
        with open(os.path.join(self.project.logs(run_id), "system", "env_build.txt")) as f:
            self.assertIn("nosuchpackage-amlrun==9.9", f.read())
        # No half-built venv is left to be mistaken for a good one.
        leftovers = [d for d in os.listdir(os.path.join(self.project.workspace, "environments"))
                     if d.startswith("venv-") and not d.endswith(".lock")]
        self.assertEqual(leftovers, [])

    def test_conda_packages_without_conda_fail_clearly(self):
        self.project.write("job.yml", """
            source_directory: src
            entry_script: use.py
            conda_packages: [numpy]
        """)
        result = self.project.amlrun("submit", "job.yml")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(self.project.show(self.last_run())["failure_reason"],
                         "preparing: the environment lists conda packages (numpy), but conda is "
                         "not installed here; install Miniforge, or list the packages under "
                         "pip_packages")


class EnvCommandTest(ProjectTest):
    def test_env_show_and_context(self):
        self.project.write("src/train.py", "")
        self.project.write("job.yml", """
            source_directory: src
            entry_script: train.py
            pip_packages: [torch==1.13.1]
            custom_docker_image: python:3.11-slim
        """)
        shown = self.project.amlrun("env", "show", "job.yml", "--output", "json")
        self.assertEqual(shown.returncode, 0, shown.stderr)
        info = json.loads(shown.stdout)
        self.assertEqual(info["mode"], "venv")
        self.assertEqual(info["canonical"]["pip"], ["torch==1.13.1"])
        self.assertEqual(len(info["hash"]), 64)
        out = os.path.join(self.project.root, "ctx")
        # (PIP_CERT empty: the host's cert, where it has one, would be copied in too)
        context = self.project.amlrun("env", "context", "job.yml", "-o", out, env={"PIP_CERT": ""})
        self.assertEqual(context.returncode, 0, context.stderr)
        self.assertEqual(context.stdout, "Dockerfile\namlrun.def\nrequirements.txt\npip/pip.conf\n")
        with open(os.path.join(out, "Dockerfile")) as f:
            self.assertIn("FROM python:3.11-slim\n", f.read())
        again = self.project.amlrun("env", "context", "job.yml", "-o", out)
        self.assertEqual(again.returncode, 2)
        self.assertEqual(again.stderr, "amlrun: error: %s is not an empty directory; give a new or "
                                       "empty one\n" % out)

    def test_a_newline_in_a_package_is_refused_with_exit_2(self):
        self.project.write("src/train.py", "")
        self.project.write("job.yml", 'source_directory: src\nentry_script: train.py\n'
                                      'pip_packages: ["torch\\n--index-url http://evil"]\n')
        result = self.project.amlrun("env", "context", "job.yml", "-o", os.path.join(self.project.root, "c"))
        self.assertEqual(result.returncode, 2)
        self.assertIn("job.yml:3:16: pip_packages[0]: 'torch\\n--index-url http://evil' contains a "
                      "control character (a newline)", result.stderr)

    def test_env_build_without_a_working_runtime_exits_3(self):
        self.project.write("job.yml", "command: x\nenvironment: {image: python:3.11}\n")
        result = self.project.amlrun("env", "build", "job.yml", "--runtime", "podman")
        self.assertEqual(result.returncode, 3)
        self.assertTrue(result.stderr.startswith(
            "amlrun: error: no container runtime can build or run images on this machine (podman: "))

    def test_submit_with_an_unusable_runtime_is_refused_before_creating_a_run(self):
        with open(os.path.join(self.project.workspace, "config.yml"), "a") as f:
            f.write("environments:\n  runtime: apptainer\n")
        self.project.write("job.yml", "command: 'true'\n")
        result = self.project.amlrun("submit", "job.yml")
        self.assertEqual(result.returncode, 3)
        self.assertEqual(result.stderr,
                         "amlrun: error: no container runtime can build or run images on this "
                         "machine (apptainer: not installed); write the build context with 'amlrun "
                         "env context' and build it where a runtime works\n")
        self.assertEqual(self.project.run_ids(), [])


if __name__ == "__main__":
    unittest.main()
