"""Inputs and arguments end to end: values reach the program verbatim, local
inputs are read-only, http(s) inputs come from a real server on loopback."""
import json
import os
import unittest

from amlrun_e2e import PYTHON, ProjectTest
from http_test_server import TestServer

HOSTILE = [
    "two words",
    "it's",
    '"double"',
    "$(touch /tmp/amlrun-e2e-pwned)",
    "`touch /tmp/amlrun-e2e-pwned`",
    "line1\nline2",
    "émoji 🚀",
    "--flag=$HOME",
    "*",
    "a'b\"c$d`e\\f",
]

ARGV_SCRIPT = """
import json, sys
with open("outputs/argv.json", "w") as f:
    json.dump(sys.argv[1:], f)
"""


class ArgumentTest(ProjectTest):
    def setUp(self):
        super().setUp()
        if os.path.exists("/tmp/amlrun-e2e-pwned"):
            os.remove("/tmp/amlrun-e2e-pwned")
        self.project.write("src/argv.py", ARGV_SCRIPT)

    def argv_of_last_run(self):
        with open(os.path.join(self.project.outputs(self.last_run()), "argv.json")) as f:
            return json.load(f)

    def test_command_job_inputs_arrive_verbatim(self):
        inputs = "".join("  v%d: %s\n" % (i, json.dumps(v, ensure_ascii=False)) for i, v in enumerate(HOSTILE))
        refs = " ".join("${{inputs.v%d}}" % i for i in range(len(HOSTILE)))
        quoted_refs = " ".join('"[${{inputs.v%d}}]"' % i for i in range(len(HOSTILE)))
        job = "code: src\ncommand: %s argv.py %s %s\ninputs:\n%s" % (PYTHON, refs, quoted_refs, inputs)
        result = self.submit(job)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.argv_of_last_run(), HOSTILE + ["[%s]" % v for v in HOSTILE])
        self.assertFalse(os.path.exists("/tmp/amlrun-e2e-pwned"))

    def test_set_overrides_arrive_verbatim(self):
        job = "code: src\ncommand: %s argv.py ${{inputs.v}}\ninputs:\n  v: plain\n" % PYTHON
        for value in HOSTILE:
            if "\n" in value:
                continue  # a YAML value on the command line cannot hold a raw newline
            result = self.submit(job, "--set", "inputs.v=%s" % json.dumps(value, ensure_ascii=False))
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(self.argv_of_last_run(), [value])
        self.assertFalse(os.path.exists("/tmp/amlrun-e2e-pwned"))

    def test_estimator_script_params_arrive_verbatim_in_order(self):
        params = "".join("  --p%d: %s\n" % (i, json.dumps(v, ensure_ascii=False)) for i, v in enumerate(HOSTILE))
        job = "source_directory: src\nentry_script: argv.py\nscript_params:\n%s  --flag:\n" % params
        result = self.submit(job)
        self.assertEqual(result.returncode, 0, result.stderr)
        expected = []
        for i, v in enumerate(HOSTILE):
            expected += ["--p%d" % i, v]
        self.assertEqual(self.argv_of_last_run(), expected + ["--flag"])
        self.assertFalse(os.path.exists("/tmp/amlrun-e2e-pwned"))


class LocalInputTest(ProjectTest):
    def test_local_file_and_folder_inputs_are_read_only(self):
        self.project.write("data/train/a.txt", "A")
        self.project.write("data/iris.csv", "x,y\n")
        self.project.write("src/check.py", """
            import json, os, sys
            folder, csv = sys.argv[1], sys.argv[2]
            result = {"files": sorted(os.listdir(folder)), "csv": open(csv).read(),
                      "csv_name": os.path.basename(csv)}
            try:
                open(os.path.join(folder, "new.txt"), "w").write("x")
                result["write"] = "allowed"
            except OSError as e:
                result["write"] = e.strerror
            with open("outputs/result.json", "w") as f:
                json.dump(result, f)
        """)
        result = self.submit("""
            code: src
            command: %s check.py ${{inputs.folder}} ${{inputs.csv}}
            inputs:
              folder: {type: uri_folder, path: data/train}
              csv: {type: uri_file, path: data/iris.csv}
        """ % PYTHON)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(os.path.join(self.project.outputs(self.last_run()), "result.json")) as f:
            seen = json.load(f)
        self.assertEqual(seen["files"], ["a.txt"])
        self.assertEqual(seen["csv"], "x,y\n")
        self.assertEqual(seen["csv_name"], "iris.csv")
        self.assertEqual(seen["write"], "Read-only file system")
        self.assertFalse(os.path.exists(os.path.join(self.project.root, "data/train/new.txt")))


class HttpInputTest(ProjectTest):
    def setUp(self):
        super().setUp()
        self.server = TestServer()
        self.server.files["iris.csv"] = b"sepal,petal\n" * 50000  # 600 kB
        self.project.write("src/read.py", """
            import hashlib, sys
            data = open(sys.argv[1], "rb").read()
            print(len(data), hashlib.sha256(data).hexdigest()[:16], sys.argv[1].rsplit("/", 1)[-1])
        """)

    def tearDown(self):
        self.server.stop()
        super().tearDown()

    def job(self, path):
        return """
            code: src
            command: %s read.py ${{inputs.data}}
            inputs:
              data:
                type: uri_file
                path: %s%s
        """ % (PYTHON, self.server.base, path)

    def expected_line(self):
        import hashlib
        body = self.server.files["iris.csv"]
        return "%d %s iris.csv\n" % (len(body), hashlib.sha256(body).hexdigest()[:16])

    def test_http_input_is_downloaded(self):
        result = self.submit(self.job("/files/iris.csv"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, self.expected_line())

    def test_a_failing_server_is_retried(self):
        result = self.submit(self.job("/flaky/2/iris.csv"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, self.expected_line())
        self.assertEqual(self.server.counts["/flaky/2/iris.csv"], 3)
        with open(os.path.join(self.project.workspace, "runs", self.last_run(), "artifacts", "logs",
                               "system", "supervisor.txt")) as f:
            log = f.read()
        self.assertIn("input 'data': attempt 1 of 4 failed (HTTP 503); retrying in 500 ms", log)

    def test_a_broken_transfer_is_resumed_with_a_range_request(self):
        result = self.submit(self.job("/truncate/iris.csv"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, self.expected_line())
        ranges = [r for p, r in self.server.requests if p == "/truncate/iris.csv"]
        self.assertEqual(ranges[0], None)
        self.assertEqual(ranges[1], "bytes=%d-" % (len(self.server.files["iris.csv"]) // 2))

    def test_a_missing_file_fails_the_run_in_preparing(self):
        result = self.submit(self.job("/files/nope.csv"))
        self.assertEqual(result.returncode, 1)
        record = self.project.show(self.last_run())
        self.assertEqual(record["state"], "Failed")
        self.assertEqual(record["failure_reason"],
                         "preparing: input 'data': download of %s/files/nope.csv failed: HTTP 404"
                         % self.server.base)
        self.assertIsNone(record["exit_code"])
        self.assertEqual([h["state"] for h in record["history"]],
                         ["Queued", "Preparing", "Finalizing", "Failed"])


if __name__ == "__main__":
    unittest.main()
