"""The amlrun command line: exit codes, validation output, messages."""
import json
import os
import subprocess
import threading
import time
import unittest

from amlrun_e2e import AMLRUN, ProjectTest


class ExitCodeTest(ProjectTest):
    def test_0_completed(self):
        self.assertEqual(self.submit("command: 'true'\n").returncode, 0)
        record = self.project.show(self.last_run())
        self.assertEqual(record["state"], "Completed")
        self.assertEqual(record["exit_code"], 0)

    def test_1_failed_with_the_program_exit_code_recorded(self):
        result = self.submit("command: exit 7\n")
        self.assertEqual(result.returncode, 1)
        self.assertIn("Failed in", result.stderr)
        self.assertIn("exit code 7 (rank 0 exited with code 7)", result.stderr)
        record = self.project.show(self.last_run())
        self.assertEqual(record["state"], "Failed")
        self.assertEqual(record["exit_code"], 7)

    def test_2_spec_errors_are_all_reported_with_positions(self):
        result = self.submit("command: x\nresources:\n  instance_cont: 2\ndistribution:\n  type: mpy\n")
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr,
                         "amlrun: error: job.yml:3:3: resources.instance_cont: unknown key "
                         "'instance_cont' (did you mean 'instance_count'?)\n"
                         "    3 |   instance_cont: 2\n"
                         "      |   ^\n"
                         "job.yml:5:9: distribution.type: 'mpy' is not one of mpi, pytorch, tensorflow (did you "
                         "mean 'mpi'?)\n"
                         "    5 |   type: mpy\n"
                         "      |         ^\n"
                         "2 errors in job.yml\n")
        self.assertEqual(self.project.run_ids(), [])  # nothing was created

    def test_2_usage_errors(self):
        unknown = self.project.amlrun("sumbit", "job.yml")
        self.assertEqual(unknown.returncode, 2)
        self.assertEqual(unknown.stderr, "amlrun: error: unknown command 'sumbit' (did you mean "
                                         "'submit'?); run 'amlrun --help' for the list\n")
        missing = self.project.amlrun("submit")
        self.assertEqual(missing.returncode, 2)
        self.assertEqual(missing.stderr, "amlrun: error: FILE is required (see 'amlrun submit --help')\n")
        self.project.write("job.yml", "command: 'true'\n")
        bad_name = self.project.amlrun("submit", "job.yml", "--experiment", "../escape")
        self.assertEqual(bad_name.returncode, 2)
        self.assertEqual(bad_name.stderr,
                         "amlrun: error: invalid experiment name '../escape': use 1-128 characters "
                         "from [A-Za-z0-9._-], starting with a letter or digit\n")
        no_file = self.project.amlrun("submit", "nope.yml")
        self.assertEqual(no_file.returncode, 2)
        self.assertEqual(no_file.stderr,
                         "amlrun: error: cannot open nope.yml: No such file or directory\n")
        no_target = self.project.amlrun("submit", "job.yml", "--compute", "gpu-clustr")
        self.assertEqual(no_target.returncode, 2)
        self.assertEqual(no_target.stderr,
                         "amlrun: error: no compute target 'gpu-clustr' in %s/config.yml (known: "
                         "local)\n" % self.project.workspace)

    def test_2_a_fifo_as_job_file_does_not_hang(self):
        fifo = os.path.join(self.project.root, "job.yml")
        os.mkfifo(fifo)
        result = self.project.amlrun("submit", "job.yml", timeout=10)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr, "amlrun: error: job.yml is a FIFO; give a regular file\n")

    def test_2_unknown_run_and_ambiguous_prefix(self):
        self.submit("command: 'true'\nexperiment_name: same\n")
        self.submit("command: 'true'\nexperiment_name: same\n")
        missing = self.project.amlrun("show", "nope_1")
        self.assertEqual(missing.returncode, 2)
        self.assertEqual(missing.stderr, "amlrun: error: no run 'nope_1' in workspace %s (amlrun "
                                         "runs list shows them)\n" % self.project.workspace)
        ambiguous = self.project.amlrun("show", "same_")
        self.assertEqual(ambiguous.returncode, 2)
        ids = sorted(self.project.run_ids())
        self.assertEqual(ambiguous.stderr,
                         "amlrun: error: run id prefix 'same_' is ambiguous; it matches:\n  %s\n  %s\n"
                         % (ids[0], ids[1]))
        traversal = self.project.amlrun("show", "../../etc")
        self.assertEqual(traversal.returncode, 2)
        self.assertEqual(traversal.stderr, "amlrun: error: invalid run id '../../etc'\n")

    def test_3_a_newer_index_schema_is_refused_and_left_alone(self):
        self.submit("command: 'true'\n")
        index = os.path.join(self.project.workspace, "index.db")
        subprocess.run(["sqlite3", index, "PRAGMA user_version = 99;"], check=True)
        result = self.submit("command: 'true'\n")
        self.assertEqual(result.returncode, 3)
        self.assertEqual(result.stderr,
                         "amlrun: error: the run index %s has schema version 99, newer than this "
                         "amlrun understands (5); it was written by a newer amlrun: upgrade amlrun "
                         "(the index was left untouched)\n" % index)
        version = subprocess.run(["sqlite3", index, "PRAGMA user_version;"], capture_output=True,
                                 text=True)
        self.assertEqual(version.stdout, "99\n")

    def test_4_canceled_while_streaming(self):
        self.project.write("job.yml", "command: sleep 60\n")
        client = self.project.start("submit", "job.yml")
        self.addCleanup(client.stdout.close)
        self.addCleanup(client.stderr.close)
        deadline = time.time() + 10
        while not self.project.run_ids() and time.time() < deadline:
            time.sleep(0.05)
        run_id = self.last_run()
        self.project.wait_for_state(run_id, ["Running"])
        self.assertEqual(self.project.amlrun("cancel", run_id).returncode, 0)
        client.wait(timeout=20)
        self.assertEqual(client.returncode, 4)
        record = self.project.show(run_id)
        self.assertEqual(record["state"], "Canceled")
        self.assertTrue(record["cancel_requested"])


class ValidateTest(ProjectTest):
    def test_validate_prints_the_normalised_spec(self):
        self.project.write("job.yml", """
            source_directory: src
            entry_script: train.py
            script_params: {--epochs: 3}
            node_count: 2
            distributed_backend: gloo
        """)
        self.project.write("src/train.py", "")
        result = self.project.amlrun("validate", "job.yml", "--output", "json")
        self.assertEqual(result.returncode, 0, result.stderr)
        spec = json.loads(result.stdout)
        self.assertEqual(spec["dialect"], "estimator")
        self.assertEqual(spec["argv"], ["python", "train.py", "--epochs", "3"])
        self.assertEqual(spec["instance_count"], 2)
        self.assertEqual(spec["distribution"], {"type": "pytorch", "process_count_per_instance": 1,
                                                "backend": "gloo"})
        self.assertEqual(spec["code"], os.path.join(self.project.root, "src"))
        as_yaml = self.project.amlrun("validate", "job.yml", "--set", "node_count=3")
        self.assertEqual(as_yaml.returncode, 0)
        self.assertIn('dialect: "estimator"\n', as_yaml.stdout)
        self.assertIn("instance_count: 3\n", as_yaml.stdout)

    def test_validate_of_an_azure_file_explains_what_to_change(self):
        self.project.write("job.yml", """
            command: python main.py
            environment: azureml://registries/azureml/environments/sklearn-1.5/labels/latest
            compute: azureml:cpu-cluster
        """)
        result = self.project.amlrun("validate", "job.yml")
        self.assertEqual(result.returncode, 2)
        self.assertIn("job.yml:3:14: environment: 'azureml://registries/azureml/environments/"
                      "sklearn-1.5/labels/latest' is an Azure ML environment asset", result.stderr)
        fixed = self.project.amlrun("validate", "job.yml", "--set", "environment=", "--set",
                                    "compute=local")
        self.assertEqual(fixed.returncode, 0, fixed.stderr)


class WorkspaceTest(ProjectTest):
    def test_first_submit_creates_a_workspace_with_a_notice(self):
        bare = os.path.join(self.project.root, "elsewhere")
        os.makedirs(bare)
        with open(os.path.join(bare, "job.yml"), "w") as f:
            f.write("command: 'true'\n")
        result = subprocess.run([AMLRUN, "submit", "job.yml"], cwd=bare, capture_output=True,
                                text=True, env=dict(os.environ, AMLRUN_WORKSPACE=""))
        # The project's own workspace is found by walking up, so no new one.
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn("created workspace", result.stderr)
        alone = os.path.join("/tmp", "amlrun-e2e-alone-%d" % os.getpid())
        os.makedirs(alone, exist_ok=True)
        self.addCleanup(subprocess.run, ["rm", "-rf", alone])
        with open(os.path.join(alone, "job.yml"), "w") as f:
            f.write("command: 'true'\n")
        created = subprocess.run([AMLRUN, "submit", "job.yml"], cwd=alone, capture_output=True,
                                 text=True)
        self.assertEqual(created.returncode, 0, created.stderr)
        self.assertIn("amlrun: created workspace %s/.amlrun ('amlrun init' does this explicitly)\n"
                      % alone, created.stderr)
        self.assertTrue(os.path.exists(os.path.join(alone, ".amlrun", "index.db")))

    def test_show_without_a_workspace(self):
        alone = os.path.join("/tmp", "amlrun-e2e-none-%d" % os.getpid())
        os.makedirs(alone, exist_ok=True)
        self.addCleanup(subprocess.run, ["rm", "-rf", alone])
        result = subprocess.run([AMLRUN, "show", "x"], cwd=alone, capture_output=True, text=True)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr,
                         "amlrun: error: no amlrun workspace in %s or any directory above it; run "
                         "'amlrun init' there (or pass --workspace DIR)\n" % alone)

    def test_version(self):
        result = self.project.amlrun("--version")
        self.assertEqual(result.returncode, 0)
        self.assertRegex(result.stdout, r"^amlrun \d+\.\d+\.\d+\n$")


class MessageTest(ProjectTest):
    """Mistakes in job files and arguments: exit 2 and a message that names them."""

    def test_2_an_unterminated_string_does_not_swallow_the_file(self):
        for quote in "\"'":
            result = self.submit("command: %secho hi\nlimits:\n  timeout: 5\n" % quote)
            self.assertEqual(result.returncode, 2)
            self.assertEqual(result.stderr,
                             "amlrun: error: job.yml:1:10: unterminated string starting at 1:10: "
                             "the closing %s is missing, so the rest of the file would be read as "
                             "part of it\n"
                             "    1 | command: %secho hi\n"
                             "      |          ^\n"
                             "1 error in job.yml\n" % (quote, quote))
        self.assertEqual(self.project.run_ids(), [])

    def test_2_a_command_with_no_value_runs_nothing(self):
        result = self.submit("command:\n")
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr,
                         "amlrun: error: job.yml:1:1: command: the command is empty; give what to "
                         "run, e.g. python train.py\n"
                         "    1 | command:\n"
                         "      | ^\n"
                         "1 error in job.yml\n")
        result = self.submit("command: 'true'\n", "--set", "command=")
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr,
                         "amlrun: error: --set command=: command: the command is empty; give what "
                         "to run, e.g. python train.py\n1 error in job.yml\n")
        self.assertEqual(self.project.run_ids(), [])

    def test_set_values_arrive_as_written(self):
        self.project.write("src/env.py", "import os, sys\nprint(repr(os.environ['B']))\n")
        result = self.submit("code: src\ncommand: python3 env.py\n", "--set",
                             "environment_variables.B=a #b\n#SBATCH --mem=1G")
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(os.path.join(self.project.logs(self.last_run()), "user_logs",
                               "std_log_rank_0.txt")) as f:
            self.assertEqual(f.read(), "'a #b\\n#SBATCH --mem=1G'\n")

    def test_2_a_word_outside_an_options_set_names_the_option_and_its_words(self):
        self.project.write("job.yml", "command: 'true'\n")
        cases = [
            (["validate", "job.yml", "--output", "xml"],
             "--output: 'xml' is not one of json, yaml (see 'amlrun validate --help')"),
            (["submit", "job.yml", "--output", "jsn"],
             "--output: 'jsn' is not one of json, text (did you mean 'json'?) (see 'amlrun "
             "submit --help')"),
            (["runs", "list", "--output", "xml"],
             "--output: 'xml' is not one of json, table (see 'amlrun runs list --help')"),
            (["env", "build", "job.yml", "--runtime", "dockr"],
             "--runtime: 'dockr' is not one of apptainer, docker, podman (did you mean "
             "'docker'?) (see 'amlrun env build --help')"),
        ]
        for args, message in cases:
            result = self.project.amlrun(*args)
            self.assertEqual(result.returncode, 2, args)
            self.assertEqual(result.stderr, "amlrun: error: %s\n" % message)
        self.assertEqual(self.project.amlrun("validate", "job.yml", "--output", "JSON").returncode, 0)

    def test_2_an_empty_option_value_is_refused_not_ignored(self):
        self.assertEqual(self.submit("command: 'true'\n").returncode, 0)
        run = self.last_run()
        plot = self.project.amlrun("metrics", run, "--plot", "")
        self.assertEqual(plot.returncode, 2)
        self.assertEqual(plot.stderr,
                         "amlrun: error: --plot: names no metric; give NAME[,NAME] (e.g. --plot "
                         "loss,accuracy), or leave --plot out to print the table (see 'amlrun "
                         "metrics --help')\n")
        self.assertEqual(self.project.amlrun("metrics", run, "--plot", " , ").returncode, 2)
        prefix = self.project.amlrun("download", run, "--prefix", "")
        self.assertEqual(prefix.returncode, 2)
        self.assertEqual(prefix.stderr,
                         "amlrun: error: --prefix: the value is empty; give one or leave the "
                         "option out (see 'amlrun download --help')\n")

    def test_2_a_file_where_a_directory_is_needed(self):
        self.project.write("src/model.txt", "weights")
        self.assertEqual(self.submit("command: 'true'\n").returncode, 0)
        run = self.last_run()
        registered = self.project.amlrun("model", "register", "--name", "m", "--from", "src")
        self.assertEqual(registered.returncode, 0, registered.stderr)
        file = self.project.write("taken", "mine")
        for args in (["download", run, "-o", file], ["model", "download", "m", "-o", file]):
            result = self.project.amlrun(*args)
            self.assertEqual(result.returncode, 2, args)
            self.assertEqual(result.stderr,
                             "amlrun: error: the destination %s is a file, not a directory; give "
                             "a directory\n" % file)
        below = self.project.amlrun("download", run, "-o", os.path.join(file, "sub"))
        self.assertEqual(below.returncode, 2)
        self.assertEqual(below.stderr,
                         "amlrun: error: the destination %s/sub cannot be created: %s is a file, "
                         "not a directory\n" % (file, file))
        init = self.project.amlrun("init", file)
        self.assertEqual(init.returncode, 2)
        self.assertEqual(init.stderr,
                         "amlrun: error: the workspace %s/.amlrun cannot be created: %s is a "
                         "file, not a directory\n" % (file, file))
        with open(file) as f:
            self.assertEqual(f.read(), "mine")


if __name__ == "__main__":
    unittest.main()
