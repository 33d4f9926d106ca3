"""What `submit --stream` says while the environment is prepared: the venv
build's log lines marked as amlrun's off a terminal, a one-line status
redrawn in place on one (a real pseudo-terminal), one line on a cache hit,
nothing of it with --quiet. The venv is built by real pip from the offline
wheel test_environments makes."""
import os
import unittest

from amlrun_e2e import PYTHON, ProjectTest
from test_environments import tiny_wheel_dir
from test_stream_progress import run_on_terminal, screen


class PreparingProgressTest(ProjectTest):
    def setUp(self):
        super().setUp()
        with open(os.path.join(self.project.workspace, "config.yml"), "a") as f:
            f.write("environments:\n  python: %s\n" % PYTHON)
        self.pip_env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": tiny_wheel_dir()}
        self.project.write("src/use.py", "import tinypkg\nprint(tinypkg.VALUE)\n")
        self.project.write("job.yml", """
            source_directory: src
            entry_script: use.py
            pip_packages: [tinypkg==0.1]
        """)

    def submit(self, *args):
        return self.project.amlrun("submit", "job.yml", *args, env=self.pip_env, timeout=300)

    def venv(self, run_id):
        return self.project.show(run_id)["target"]["environment"]["venv"]

    def test_off_a_terminal_the_build_log_then_one_line_on_a_cache_hit(self):
        first = self.submit("--stream")
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertEqual(first.stdout, "tiny 0.1\n")
        run_id = self.last_run()
        lines = first.stderr.splitlines()
        marked = [l[len("amlrun: environment: "):] for l in lines
                  if l.startswith("amlrun: environment: ")]
        with open(os.path.join(self.project.logs(run_id), "system", "env_build.txt")) as f:
            self.assertEqual(marked, f.read().splitlines())
        self.assertTrue(any("-m venv" in l for l in marked), marked)
        self.assertTrue(any("Successfully installed tinypkg-0.1" in l for l in marked), marked)
        built = [l for l in lines if l.startswith("amlrun: %s environment built in " % run_id)]
        self.assertEqual(len(built), 1, lines)
        self.assertTrue(built[0].endswith(": " + self.venv(run_id)), built)
        # The log lines come while Preparing, before the job runs.
        self.assertLess(lines.index("amlrun: %s Preparing" % run_id),
                        lines.index("amlrun: environment: " + marked[0]))
        self.assertLess(lines.index(built[0]), lines.index("amlrun: %s Running" % run_id))

        second = self.submit()
        self.assertEqual(second.returncode, 0, second.stderr)
        second_id = self.last_run()
        lines = second.stderr.splitlines()
        self.assertIn("amlrun: %s environment cached: %s" % (second_id, self.venv(second_id)), lines)
        self.assertFalse([l for l in lines if l.startswith("amlrun: environment: ")], lines)
        self.assertFalse([l for l in lines if "environment built" in l], lines)

        quiet = self.submit("--quiet")
        self.assertEqual(quiet.returncode, 0, quiet.stderr)
        self.assertNotIn("environment", quiet.stderr)
        self.assertNotIn("Preparing", quiet.stderr)

    def test_on_a_terminal_a_status_line_redrawn_in_place(self):
        code, raw = run_on_terminal(self.project.root, "submit", "job.yml", "--stream",
                                    timeout=300, env=self.pip_env)
        self.assertEqual(code, 0, raw)
        run_id = self.last_run()
        self.assertIn("\r\x1b[Kamlrun: %s building the environment (" % run_id, raw)
        shown = screen(raw)
        # The status is gone once prepared; the build's lines are not printed.
        self.assertFalse([l for l in shown if "building the environment" in l], shown)
        self.assertFalse([l for l in shown if l.startswith("amlrun: environment: ")], shown)
        self.assertTrue([l for l in shown if l.startswith("amlrun: %s environment built in " % run_id)],
                        shown)
        self.assertIn("tiny 0.1", shown)


if __name__ == "__main__":
    unittest.main()
