"""Run history: runs list, runs tag, show and id prefixes, against the real binary."""
import json
import os
import subprocess
import time

from amlrun_e2e import AMLRUN, PYTHON, ProjectTest, clean_environment

WAIT_FOR_FLAG = """
import os, time
while not os.path.exists(os.path.join(os.environ["AMLRUN_WORKSPACE"], "..", "go")):
    time.sleep(0.02)
"""


class RunsListTest(ProjectTest):
    def setUp(self):
        super().setUp()
        self.ids = []
        for experiment, command, tags in [("alpha", "'true'", "{seed: '1'}"),
                                          ("beta", "exit 3", "{seed: '2'}"),
                                          ("alpha", "'true'", "{seed: '2', team: vision}")]:
            self.submit("command: %s\nexperiment_name: %s\ntags: %s\n" % (command, experiment, tags))
            self.ids.append(self.last_run())

    def test_newest_first_in_80_columns(self):
        result = self.project.amlrun("runs", "list")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "")
        lines = result.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["RUN", "STATUS", "DURATION", "EXIT", "TAGS"])
        self.assertEqual([line.split()[0] for line in lines[1:]], list(reversed(self.ids)))
        self.assertEqual([line.split()[1] for line in lines[1:]], ["Completed", "Failed", "Completed"])
        self.assertTrue(lines[1].endswith("  0  seed=2, team=vision"), lines[1])
        self.assertTrue(lines[2].endswith("  3  seed=2"), lines[2])
        for line in lines:
            self.assertLessEqual(len(line), 80, line)

    def test_a_narrow_terminal_cuts_tags_first(self):
        result = self.project.amlrun("runs", "list", env={"COLUMNS": "60"})
        for line in result.stdout.splitlines():
            self.assertLessEqual(len(line), 60, line)
        self.assertIn(self.ids[2], result.stdout)  # ids stay whole

    def test_filters_and_limit(self):
        def listed(*args):
            result = self.project.amlrun("runs", "list", "--output", "json", *args)
            self.assertEqual(result.returncode, 0, result.stderr)
            return [run["id"] for run in json.loads(result.stdout)]

        self.assertEqual(listed("--experiment", "alpha"), [self.ids[2], self.ids[0]])
        self.assertEqual(listed("--status", "failed"), [self.ids[1]])
        self.assertEqual(listed("--tag", "seed=2"), [self.ids[2], self.ids[1]])
        self.assertEqual(listed("--tag", "seed=2", "--tag", "team=vision"), [self.ids[2]])
        self.assertEqual(listed("--experiment", "alpha", "--status", "Failed"), [])
        self.assertEqual(listed("--limit", "1"), [self.ids[2]])
        self.assertEqual(listed("--limit", "0"), list(reversed(self.ids)))
        limited = self.project.amlrun("runs", "list", "--limit", "2")
        self.assertEqual(limited.stderr, "amlrun: showing the newest 2 runs; --limit N shows more\n")
        none = self.project.amlrun("runs", "list", "--experiment", "gamma")
        self.assertEqual((none.returncode, none.stdout, none.stderr), (0, "", "amlrun: no runs match\n"))

    def test_json_rows(self):
        result = self.project.amlrun("runs", "list", "--output", "json", "--limit", "1")
        row = json.loads(result.stdout)[0]
        self.assertEqual(list(row), ["id", "experiment", "display_name", "status", "created_at",
                                     "ended_at", "duration_seconds", "exit_code", "compute", "tags"])
        self.assertEqual(row["experiment"], "alpha")
        self.assertEqual(row["tags"], {"seed": "2", "team": "vision"})
        self.assertEqual(row["exit_code"], 0)
        self.assertGreater(row["duration_seconds"], 0)

    def test_bad_filters_are_usage_errors(self):
        status = self.project.amlrun("runs", "list", "--status", "Compleeted")
        self.assertEqual(status.returncode, 2)
        self.assertEqual(status.stderr,
                         "amlrun: error: unknown status 'Compleeted' (did you mean 'Completed'?); use "
                         "one of Queued, Preparing, Starting, Running, Finalizing, Completed, Failed, "
                         "Canceled\n")
        tag = self.project.amlrun("runs", "list", "--tag", "seed")
        self.assertEqual(tag.returncode, 2)
        self.assertEqual(tag.stderr, "amlrun: error: invalid tag 'seed': write key=value\n")
        limit = self.project.amlrun("runs", "list", "--limit", "-1")
        self.assertEqual(limit.stderr, "amlrun: error: --limit -1: give a number of runs, or 0 for all\n")
        sub = self.project.amlrun("runs", "lst")
        self.assertEqual(sub.returncode, 2)
        self.assertEqual(sub.stderr, "amlrun: error: unknown command 'amlrun runs lst' (did you mean "
                                     "'list'?); the runs commands are list, tag\n")
        bare = self.project.amlrun("runs")
        self.assertEqual(bare.stderr, "amlrun: error: amlrun runs needs a command: list, tag (see "
                                      "'amlrun runs --help')\n")


class EmptyWorkspaceTest(ProjectTest):
    def test_nothing_to_list(self):
        result = self.project.amlrun("runs", "list")
        self.assertEqual(result.returncode, 0)
        self.assertEqual(result.stderr, "amlrun: no runs in %s\n" % self.project.workspace)
        self.assertEqual(self.project.amlrun("runs", "list", "--output", "json").stdout, "[]\n")


class RunsTagTest(ProjectTest):
    def test_set_and_remove_tags_by_prefix(self):
        self.submit("command: 'true'\nexperiment_name: tagged\ntags: {a: '1'}\n")
        run_id = self.last_run()
        result = self.project.amlrun("runs", "tag", "tagged_", "lr=0.1", "note=two words", "a=")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "a=, lr=0.1, note=two words\n")
        self.assertEqual(self.project.show(run_id)["tags"], {"a": "", "lr": "0.1", "note": "two words"})
        listed = self.project.amlrun("runs", "list", "--tag", "lr=0.1", "--output", "json")
        self.assertEqual([r["id"] for r in json.loads(listed.stdout)], [run_id])
        removed = self.project.amlrun("runs", "tag", run_id, "--remove", "lr")
        self.assertEqual(removed.stdout, "a=, note=two words\n")
        listed = self.project.amlrun("runs", "list", "--tag", "lr=0.1", "--output", "json")
        self.assertEqual(json.loads(listed.stdout), [])

    def test_tag_errors(self):
        self.submit("command: 'true'\n")
        run_id = self.last_run()
        for args, message in [
                ((run_id,), "runs tag: give key=value pairs to set, or --remove KEY"),
                ((run_id, "novalue"), "invalid tag 'novalue': write key=value"),
                ((run_id, "=v"), "invalid tag key '': use 1-128 characters of UTF-8 text, without '=' "
                                 "or control characters"),
                ((run_id, "k=a\nb"), "invalid value for tag 'k': use at most 1024 characters of UTF-8 "
                                     "text, without control characters (the value is 'a\\nb')"),
                ((run_id, b"k=\xff"), "invalid value for tag 'k': use at most 1024 characters of UTF-8 "
                                      "text, without control characters (the value is '\\xff')"),
                ((run_id, "--remove", "a\tb"), "invalid tag key 'a\\tb': use 1-128 characters of UTF-8 "
                                               "text, without '=' or control characters"),
                (("nope_", "k=v"), "no run 'nope_' in workspace %s (amlrun runs list shows them)"
                 % self.project.workspace)]:
            result = self.project.amlrun("runs", "tag", *args)
            self.assertEqual(result.returncode, 2, args)
            self.assertEqual(result.stderr, "amlrun: error: %s\n" % message)

    def test_tags_set_while_the_run_goes_survive_its_end(self):
        self.project.write("src/wait.py", WAIT_FOR_FLAG)
        self.project.write("job.yml", "code: src\ncommand: %s wait.py\n" % PYTHON)
        submitted = self.project.amlrun("submit", "job.yml", "--no-wait")
        run_id = submitted.stdout.strip()
        self.project.wait_for_state(run_id, ["Running"])
        self.assertEqual(self.project.amlrun("runs", "tag", run_id, "during=run").returncode, 0)
        open(os.path.join(self.project.root, "go"), "w").close()
        self.project.wait_for_state(run_id, ["Completed"])
        record = self.project.show(run_id)
        self.assertEqual(record["state"], "Completed")
        self.assertEqual(record["tags"], {"during": "run"})


class TagRuleTest(ProjectTest):
    """One rule for tags in job files, --set, runs tag, runs list --tag."""

    def test_a_job_files_tags_can_be_filtered_on_and_changed(self):
        result = self.submit("command: 'true'\ntags: {a b: one, ключ: значение}\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        listed = self.project.amlrun("runs", "list", "--tag", "a b=one", "--tag", "ключ=значение",
                                     "--output", "json")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertEqual([r["id"] for r in json.loads(listed.stdout)], [run_id])
        changed = self.project.amlrun("runs", "tag", run_id, "a b=two", "--remove", "ключ")
        self.assertEqual((changed.returncode, changed.stdout), (0, "a b=two\n"), changed.stderr)
        self.assertEqual(self.project.show(run_id)["tags"], {"a b": "two"})
        with_set = self.submit("command: 'true'\n", "--set", "tags.c d=3")
        self.assertEqual(with_set.returncode, 0, with_set.stderr)
        self.assertEqual(self.project.show(self.last_run())["tags"], {"c d": "3"})

    def test_job_file_tags_follow_the_same_rule(self):
        before = set(os.listdir(os.path.join(self.project.workspace, "runs")))
        for job, message in [
                ('command: "true"\ntags: {"k": "a\\eb"}\n',
                 "job.yml:2:13: tags.k: invalid value for tag 'k': use at most 1024 characters of UTF-8 "
                 "text, without control characters (the value is 'a\\x1bb')"),
                ('command: "true"\ntags: {"a=b": "v"}\n',
                 "job.yml:2:8: tags.a=b: invalid tag key 'a=b': use 1-128 characters of UTF-8 text, "
                 "without '=' or control characters")]:
            result = self.submit(job)
            self.assertEqual(result.returncode, 2, job)
            self.assertEqual(result.stderr.splitlines()[0], "amlrun: error: " + message)
        result = self.submit('command: "true"\n', "--set", "tags.k=a\x07b")
        self.assertEqual(result.returncode, 2)
        self.assertIn("invalid value for tag 'k': use at most 1024 characters of UTF-8 text, without "
                      "control characters (the value is 'a\\x07b')", result.stderr)
        self.assertEqual(set(os.listdir(os.path.join(self.project.workspace, "runs"))), before)

    def test_stored_text_reaches_the_terminal_escaped(self):
        result = self.submit('command: "true"\ndisplay_name: "clear\\e[2Jme\\a\\r\\nnext"\n'
                             'description: "two\\nlines"\n')
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        shown = self.project.amlrun("show", run_id).stdout
        self.assertIn("\ndisplay name     clear\\x1b[2Jme\\x07\\r\\nnext\n", shown)
        for text in [shown, self.project.amlrun("runs", "list").stdout]:
            self.assertNotIn("\x1b", text)
            self.assertNotIn("\x07", text)
            self.assertNotIn("\r", text)
        record = self.project.show(run_id)  # JSON keeps the text as it is
        self.assertEqual(record["display_name"], "clear\x1b[2Jme\x07\r\nnext")

    def test_a_record_that_cannot_be_utf8_leaves_nothing(self):
        project = os.fsencode(self.project.root)
        folder = os.path.join(project, b"dir\xff")
        os.makedirs(folder)
        with open(os.path.join(folder, b"job.yml"), "w") as f:
            f.write("command: 'true'\n")
        result = subprocess.run([AMLRUN, "submit", "job.yml", "--workspace", self.project.workspace],
                                cwd=folder, capture_output=True, text=True, env=clean_environment())
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(result.stderr, "amlrun: error: cannot record the run: its spec_file '%s/dir\\xff/"
                                        "job.yml' is not valid UTF-8; amlrun stores text as UTF-8 (rename "
                                        "the file or folder, or write the text as UTF-8)\n" % self.project.root)
        self.assertEqual(os.listdir(os.path.join(self.project.workspace, "runs")), [])


class ShowTest(ProjectTest):
    def test_show_reports_everything_the_issue_lists(self):
        self.project.write("src/train.py", """
            import json, os
            with open(os.environ["AMLRUN_METRICS_FILE"], "a") as f:
                for step, loss in enumerate([0.9, 0.5, 0.7, 0.2]):
                    f.write(json.dumps({"name": "loss", "value": loss, "step": step}) + "\\n")
        """)
        result = self.submit("""
            code: src
            command: %s train.py
            tags: {team: vision}
            distribution: {type: pytorch, process_count_per_instance: 2}
        """ % PYTHON)
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        record = self.project.show(run_id)
        text = self.project.amlrun("show", run_id[:12]).stdout
        fields = dict((line[:16].strip(), line[17:]) for line in text.splitlines()
                      if line and not line.startswith(" ") and line != "metrics")
        self.assertEqual(fields["state"], "Completed")
        self.assertEqual(fields["exit code"], "0")
        for key in ["created", "started", "ended"]:
            self.assertEqual(fields[key], record[key + "_at"])
        self.assertRegex(fields["duration"], r"^[0-9.]+(ms|s)$")
        self.assertEqual(fields["compute"], "local (local)")
        self.assertEqual(fields["processes"], "2 on 1 node (pytorch)")
        self.assertEqual(fields["snapshot"], "%s (1 file, %d B)" % (record["snapshot"]["id"],
                                                                      record["snapshot"]["bytes"]))
        self.assertTrue(fields["environment"].startswith(record["environment"]["hash"] + " ("))
        self.assertEqual(fields["tags"], "team=vision")
        metric_lines = text.split("metrics\n", 1)[1].splitlines()
        self.assertEqual(metric_lines[0].split(), ["METRIC", "LAST", "STEP", "MIN", "MAX", "POINTS"])
        # Both ranks wrote the same four points.
        self.assertEqual(metric_lines[1].split(), ["loss", "0.2", "3", "0.2", "0.9", "8"])
        self.assertEqual(record["metrics"], {"loss": {"last": 0.2, "last_step": 3, "min": 0.2,
                                                      "max": 0.9, "count": 8, "non_finite": 0}})
        self.assertEqual(record["metrics_skipped"]["malformed"], 0)
        self.assertGreater(record["duration_seconds"], 0)
        yaml = self.project.amlrun("show", run_id, "--output", "yaml").stdout
        self.assertIn("metrics:\n  loss:\n    last: 0.2\n", yaml)
