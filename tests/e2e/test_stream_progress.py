"""How `amlrun submit --stream` shows a job's progress lines: on a terminal
(a real pseudo-terminal here) a line rewritten with '\\r' updates in place,
off one the log's bytes pass through exactly; --quiet leaves out amlrun's
own progress lines."""
import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time
import unittest

from amlrun_e2e import AMLRUN, PYTHON, ProjectTest, clean_environment

# Each write is flushed and followed by a pause, so the stream sees them one
# by one as a person would.
PROGRESS_SCRIPT = """
import os, sys, time
def out(text):
    sys.stdout.write(text)
    sys.stdout.flush()
    time.sleep(0.4)
rank = os.environ.get("RANK", "0")
out("start %s\\n" % rank)
if rank == "0":
    out("\\rloading 50%")
    out("\\rloading 100%")
    out("\\rok")
    out("\\n")
out("end %s\\n" % rank)
"""

RAW_BYTES = b"a\r\x1b[Kb\rc\r\nhalf"


def screen(raw):
    """What a terminal shows after `raw`: '\\r', "\\x1b[K" and '\\n' applied."""
    lines, line, col = [], [], 0
    i = 0
    while i < len(raw):
        if raw.startswith("\x1b[K", i):
            del line[col:]
            i += 3
            continue
        c = raw[i]
        if c == "\r":
            col = 0
        elif c == "\n":
            lines.append("".join(line))
            line, col = [], 0
        else:
            if col < len(line):
                line[col] = c
            else:
                line.append(c)
            col += 1
        i += 1
    if line:
        lines.append("".join(line))
    return lines


def run_on_terminal(cwd, *args, timeout=60, env=None):
    """amlrun with stdout and stderr on one pseudo-terminal, 100 columns:
    (exit code, everything it wrote, with "\\r\\n" as the tty writes it
    turned back into "\\n")."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR  # keep '\n' as written
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    process = subprocess.Popen([AMLRUN, *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=slave,
                               stderr=slave, env=dict(clean_environment(), **(env or {})))
    os.close(slave)
    out = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer is gone
                break
            if not chunk:
                break
            out += chunk
        elif process.poll() is not None:
            break
    os.close(master)
    return process.wait(timeout=10), out.decode()


JOB = """
code: src
command: %s progress.py
distribution:
  type: pytorch
  process_count_per_instance: %d
"""


class StreamOnTerminalTest(ProjectTest):
    def test_a_rewritten_line_updates_in_place_with_rank_prefixes(self):
        self.project.write("src/progress.py", PROGRESS_SCRIPT)
        self.project.write("job.yml", JOB % (PYTHON, 2))
        code, raw = run_on_terminal(self.project.root, "submit", "job.yml", "--all-ranks")
        self.assertEqual(code, 0, raw)
        run_id = self.last_run()
        # Each version was drawn in place, prefixed, while the line was open.
        self.assertIn("\r\x1b[K[rank 0] loading 100%", raw)
        self.assertIn("[rank 0] loading 50%", raw)
        shown = screen(raw)
        # What stays on the screen: the line's last version, nothing left of
        # the longer ones it replaced, and amlrun's own lines whole.
        self.assertIn("[rank 0] ok", shown)
        self.assertNotIn("[rank 0] okding 100%", shown)
        for line in ("[rank 0] start 0", "[rank 1] start 1", "[rank 0] end 0", "[rank 1] end 1",
                     "amlrun: %s Running" % run_id):
            self.assertIn(line, shown)
        self.assertTrue(any(line.startswith("amlrun: %s Completed in " % run_id) for line in shown),
                        shown)
        self.assertEqual(shown.index("[rank 0] ok") < shown.index("[rank 0] end 0"), True)
        # The log keeps the bytes as the job wrote them.
        with open(os.path.join(self.project.logs(run_id), "user_logs", "std_log_rank_0.txt"), newline="") as f:
            self.assertEqual(f.read(), "start 0\n\rloading 50%\rloading 100%\rok\nend 0\n")

    def test_one_rank_is_drawn_in_place_without_prefix(self):
        self.project.write("src/progress.py", PROGRESS_SCRIPT)
        self.project.write("job.yml", "code: src\ncommand: %s progress.py\n" % PYTHON)
        code, raw = run_on_terminal(self.project.root, "submit", "job.yml", "--quiet")
        self.assertEqual(code, 0, raw)
        self.assertIn("\r\x1b[Kloading 100%", raw)
        shown = screen(raw)
        self.assertEqual(shown[:3], ["start 0", "ok", "end 0"])
        # --quiet: no "submitted", no states; the ending and outputs remain.
        self.assertEqual(len(shown), 5, shown)
        self.assertTrue(shown[3].startswith("amlrun: %s Completed in " % self.last_run()), shown)
        self.assertTrue(shown[4].startswith("amlrun: outputs: "), shown)


class StreamOffTerminalTest(ProjectTest):
    def write_raw_job(self, count):
        self.project.write("src/raw.py", """
            import sys
            sys.stdout.buffer.write(%r)
        """ % RAW_BYTES)
        self.project.write("job.yml", JOB.replace("progress.py", "raw.py") % (PYTHON, count))

    def run_piped(self, *args):
        return subprocess.run([AMLRUN, *args], cwd=self.project.root, capture_output=True,
                              timeout=120, env=clean_environment())

    def test_one_rank_passes_through_byte_exact(self):
        self.write_raw_job(1)
        result = self.run_piped("submit", "job.yml", "--stream")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, b"a\r\x1b[Kb\rc\r\nhalf")
        again = self.run_piped("stream", self.last_run(), "--quiet")
        self.assertEqual(again.stdout, b"a\r\x1b[Kb\rc\r\nhalf")
        self.assertNotIn(b"Running", again.stderr)
        self.assertIn(b"Completed in ", again.stderr)

    def test_several_ranks_are_prefixed_lines_as_written(self):
        self.write_raw_job(2)
        result = self.run_piped("submit", "job.yml", "--all-ranks")
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = sorted(result.stdout.split(b"\n"))
        self.assertEqual(lines, [b"", b"[rank 0] a\r\x1b[Kb\rc\r", b"[rank 0] half",
                                 b"[rank 1] a\r\x1b[Kb\rc\r", b"[rank 1] half"])

    def test_output_json_keeps_stdout_to_the_record(self):
        self.write_raw_job(1)
        result = self.run_piped("submit", "job.yml", "--output", "json", "--quiet")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(result.stdout.startswith(b"{"), result.stdout)
        self.assertIn(b"a\r\x1b[Kb\rc\r\nhalf", result.stderr)


if __name__ == "__main__":
    unittest.main()
