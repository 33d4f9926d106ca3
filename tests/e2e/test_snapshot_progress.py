"""A cold snapshot on a terminal (a real pseudo-terminal) shows one progress
line redrawn in place; off a terminal nothing. The one-second threshold is
moved to 0 (AMLRUN_SNAPSHOT_PROGRESS_AFTER_MS), so the test does not depend
on how fast this machine copies."""
import os
import subprocess
import time
import unittest

from amlrun_e2e import AMLRUN, PYTHON, ProjectTest, clean_environment
from test_stream_progress import run_on_terminal, screen

FILES = 200
SIZE = 64 * 1024  # 12.5 MiB in all
NOW = {"AMLRUN_SNAPSHOT_PROGRESS_AFTER_MS": "0"}


class SnapshotProgressTest(ProjectTest):
    def setUp(self):
        super().setUp()
        block = os.urandom(SIZE)
        for i in range(FILES):
            # Distinct contents, so each is an object of its own.
            self.project.write("src/data/%02d/f%05d.bin" % (i % 10, i), "")
            with open(os.path.join(self.project.root, "src/data/%02d/f%05d.bin" % (i % 10, i)),
                      "wb") as f:
                f.write(i.to_bytes(4, "little") + block[4:])
        self.project.write("src/job.py", "print('done')\n")
        self.project.write("job.yml", "code: src\ncommand: %s job.py\n" % PYTHON)

    def test_on_a_terminal_a_line_of_files_and_bytes(self):
        started = time.time()
        code, raw = run_on_terminal(self.project.root, "submit", "job.yml", timeout=300, env=NOW)
        self.assertEqual(code, 0, raw)
        self.assertIn("\r\x1b[Kamlrun: snapshot: ", raw)
        shown = screen(raw)
        total = "amlrun: snapshot: %d of %d files, 12.5 MiB of 12.5 MiB" % (FILES + 1, FILES + 1)
        self.assertIn(total, shown, (shown, time.time() - started))
        self.assertIn("done", shown)

    def test_off_a_terminal_nothing(self):
        result = subprocess.run([AMLRUN, "submit", "job.yml"], cwd=self.project.root,
                                capture_output=True, text=True, timeout=300,
                                env=dict(clean_environment(), **NOW))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn("snapshot:", result.stderr)
        self.assertEqual(result.stdout, "done\n")


if __name__ == "__main__":
    unittest.main()
