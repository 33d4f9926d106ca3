"""What a run receives of its source: its own copy, which nothing an earlier
run did can have changed, with the source files' owner-only restriction kept
in the snapshot store and in the working directory."""
import os
import stat

from amlrun_e2e import ProjectTest

# Rewrites data.txt in place (same inode, same size) and puts its mtime back:
# the write that once reached the snapshot store through a hard link.
TAMPER = """\
import os
st = os.stat("data.txt")
with open("data.txt", "r+b") as f:
    f.write(b"CHANGED!\\n")
os.utime("data.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
print("tampered:", open("data.txt").read().strip())
"""


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


class SnapshotSafetyTest(ProjectTest):
    def rank_log(self, run_id):
        with open(os.path.join(self.project.logs(run_id), "user_logs",
                               "std_log_rank_0.txt")) as f:
            return f.read()

    def test_a_run_rewriting_a_source_file_in_place_does_not_change_the_next_run(self):
        self.project.write("src/data.txt", "original\n")
        self.project.write("src/tamper.py", TAMPER)
        result = self.submit("code: src\ncommand: python3 tamper.py\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        first = self.last_run()
        self.assertEqual(self.rank_log(first), "tampered: CHANGED!\n")

        result = self.submit("code: src\ncommand: cat data.txt\n", name="job2.yml")
        self.assertEqual(result.returncode, 0, result.stderr)
        second = self.last_run()
        self.assertEqual(self.rank_log(second), "original\n")
        # The same source, so the same snapshot, and it still holds the original.
        self.assertEqual(self.project.show(first)["snapshot"]["id"],
                         self.project.show(second)["snapshot"]["id"])

    def test_working_files_are_the_jobs_own_and_owner_only_files_stay_so(self):
        self.project.write("src/public.txt", "everyone\n", mode=0o644)
        self.project.write("src/secret.env", "TOKEN=s3cr3t-value\n", mode=0o600)
        self.project.write("src/run.sh", "#!/bin/sh\necho ran\n", mode=0o700)
        result = self.submit(
            "code: src\n"
            "command: stat -c '%n %a' public.txt secret.env run.sh && ./run.sh && "
            "echo appended >> public.txt && cat public.txt\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.rank_log(self.last_run()),
                         "public.txt 644\nsecret.env 600\nrun.sh 700\nran\neveryone\nappended\n")
        # In the store the secret is readable by its owner alone.
        objects = os.path.join(self.project.workspace, "snapshots", "objects")
        found = {}
        for directory, _, files in os.walk(objects):
            for name in files:
                path = os.path.join(directory, name)
                with open(path, "rb") as f:
                    found[f.read()] = mode_of(path)
        self.assertEqual(found[b"TOKEN=s3cr3t-value\n"], 0o400)
        self.assertEqual(found[b"#!/bin/sh\necho ran\n"], 0o500)
        self.assertEqual(found[b"everyone\n"], 0o444)


class WholeMachineSourceTest(ProjectTest):
    def test_code_slash_skips_the_kernels_trees_and_stops_at_the_limit(self):
        with open(os.path.join(self.project.workspace, "config.yml"), "a") as f:
            # Files only: how many bytes the first files of / hold differs by machine.
            f.write("snapshot:\n  max_files: 1000\n  max_bytes: 1125899906842624\n")
        result = self.submit("code: /\ncommand: echo never\n")
        self.assertEqual(result.returncode, 2, result.stderr)
        for tree in ("/proc: it is a proc mount", "/sys: it is a sysfs mount"):
            self.assertIn("amlrun: warning: skipping %s, a view of the kernel's state with no "
                          "files to snapshot (add it to .amlignore to silence this warning)\n"
                          % tree, result.stderr)
        self.assertRegex(result.stderr,
                         r"amlrun: error: snapshot of /: [0-9,]+ files, more than the limit of "
                         r"1,000 \(the walk stopped there, past twice the limit\)")
        self.assertNotIn("/proc/", result.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
