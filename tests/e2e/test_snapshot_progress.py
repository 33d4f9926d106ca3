"""A cold snapshot of a large tree on a terminal (a real pseudo-terminal)
shows one progress line redrawn in place; off a terminal nothing."""
import os
import subprocess
import time
import unittest

from amlrun_e2e import AMLRUN, PYTHON, ProjectTest, clean_environment
from test_stream_progress import run_on_terminal, screen

FILES = 2000
SIZE = 256 * 1024  # 500 MiB in all: a cold snapshot well past a second here


class SnapshotProgressTest(ProjectTest):
    def setUp(self):
        super().setUp()
        block = os.urandom(SIZE)
        for i in range(FILES):
            # Distinct contents, so each is an object of its own.
            self.project.write("src/data/%02d/f%05d.bin" % (i % 50, i), "")
            with open(os.path.join(self.project.root, "src/data/%02d/f%05d.bin" % (i % 50, i)),
                      "wb") as f:
                f.write(i.to_bytes(4, "little") + block[4:])
        self.project.write("src/job.py", "print('done')\n")
        self.project.write("job.yml", "code: src\ncommand: %s job.py\n" % PYTHON)

    def test_on_a_terminal_a_line_of_files_and_bytes(self):
        started = time.time()
        code, raw = run_on_terminal(self.project.root, "submit", "job.yml", timeout=300)
        self.assertEqual(code, 0, raw)
        self.assertIn("\r\x1b[Kamlrun: snapshot: ", raw)
        shown = screen(raw)
        total = "amlrun: snapshot: %d of %d files, 500.0 MiB of 500.0 MiB" % (FILES + 1, FILES + 1)
        self.assertIn(total, shown, (shown, time.time() - started))
        self.assertIn("done", shown)

    def test_off_a_terminal_nothing(self):
        result = subprocess.run([AMLRUN, "submit", "job.yml"], cwd=self.project.root,
                                capture_output=True, text=True, timeout=300,
                                env=clean_environment())
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn("snapshot:", result.stderr)
        self.assertEqual(result.stdout, "done\n")


if __name__ == "__main__":
    unittest.main()
