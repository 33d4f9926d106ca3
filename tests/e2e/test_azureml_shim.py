"""amlrun's azureml shim: scripts written for Azure ML SDK v1
(`from azureml.core.run import Run; run = Run.get_context(); run.log(...)`)
run unchanged with Debian's python3 (no azureml-core, no mlflow) and log into
the run through its tracking endpoint; what the shim lacks fails clearly; a
real azureml-core in the job's environment is used instead, and the run's
system log says so."""
import json
import os
import subprocess
import textwrap

from amlrun_e2e import BIN, PYTHON, ProjectTest, clean_environment

SHIM = os.path.join(BIN, "..", "share", "amlrun", "python")

# In the style of pytorch_train.py of Azure ML's PyTorch estimator tutorial.
TUTORIAL = """
import os
from azureml.core.run import Run
from azureml.core import Run as CoreRun

run = Run.get_context()
assert CoreRun is Run
print("context", run.id == os.environ["AMLRUN_RUN_ID"], run.experiment.name, run.parent)
run.tag("framework", "pytorch")
run.set_tags({"dataset": "fowl", "stage": "train"})
best_acc = 0.0
for epoch in range(3):
    run.log("loss", 1.0 / (epoch + 1))
    best_acc = max(best_acc, 0.5 + 0.1 * epoch)
run.log("best_val_acc", best_acc)
run.log("optimizer", "sgd")
run.log_list("lrs", [0.1, 0.01])
run.log_row("confusion", tp=5, fp=1)
run.log_table("curve", {"x": [1, 2], "y": [3, 4]})
os.makedirs("plots", exist_ok=True)
for name in ("model.pt", "plots/a.txt", "plots/b.txt", "sample.png"):
    with open(name, "w") as f:
        f.write(name)
run.upload_file("outputs/model.pt", "model.pt")
run.upload_folder("charts", "plots")
run.log_image("sample", path="sample.png")
print("tags", sorted(run.get_tags().items()))
run.flush()
run.complete()
"""


class AzuremlShimTest(ProjectTest):
    def run_script(self, script, extra_job=""):
        self.project.write("src/train.py", script)
        job = "code: src\ncommand: %s train.py\nexperiment_name: fowl\n%s" % (
            PYTHON, textwrap.dedent(extra_job))
        result = self.submit(job)
        return result, self.last_run()

    def user_log(self, run_id):
        with open(os.path.join(self.project.logs(run_id), "user_logs", "std_log_rank_0.txt")) as f:
            return f.read()

    def system_log(self, run_id):
        with open(os.path.join(self.project.logs(run_id), "system", "supervisor.txt")) as f:
            return f.read()

    def test_a_tutorial_script_logs_metrics_tags_and_files_into_the_run(self):
        result, run_id = self.run_script(TUTORIAL)
        log = self.user_log(run_id)
        self.assertEqual(result.returncode, 0, result.stderr + log)
        self.assertIn("context True fowl None\n", log)
        tags = {"framework": "pytorch", "dataset": "fowl", "stage": "train", "optimizer": "sgd"}
        self.assertIn("tags %s\n" % sorted(tags.items()), log)
        self.assertEqual(self.project.show(run_id)["tags"], tags)
        shown = self.project.amlrun("metrics", run_id, "--output", "json")
        self.assertEqual(shown.returncode, 0, shown.stderr)
        metrics = {name: [(p["step"], p["value"]) for p in points]
                   for name, points in json.loads(shown.stdout)["runs"][0]["metrics"].items()}
        self.assertEqual(metrics, {
            "loss": [(0, 1.0), (1, 0.5), (2, 1.0 / 3)],
            "best_val_acc": [(0, 0.7)],
            "lrs": [(0, 0.1), (1, 0.01)],
            "confusion/tp": [(0, 5.0)], "confusion/fp": [(0, 1.0)],
            "curve/x": [(0, 1.0), (1, 2.0)], "curve/y": [(0, 3.0), (1, 4.0)],
        })
        outputs = self.project.outputs(run_id)
        for name, content in (("model.pt", "model.pt"), ("charts/a.txt", "plots/a.txt"),
                              ("charts/b.txt", "plots/b.txt"), ("images/sample.png", "sample.png")):
            with open(os.path.join(outputs, name)) as f:
                self.assertEqual(f.read(), content, name)

    def test_a_part_of_the_sdk_the_shim_lacks_fails_with_what_to_do(self):
        result, run_id = self.run_script("from azureml.core import Workspace\n")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(
            "ImportError: azureml.core.Workspace: amlrun's azureml shim provides only "
            "azureml.core.Run (Run.get_context() and its logging methods) for scripts run by "
            "amlrun; install azureml-core in the job's environment to use the real Azure ML SDK; "
            "a run under amlrun belongs to the amlrun workspace of `amlrun submit`, not to an "
            "Azure ML workspace; use Run.get_context() for the current run\n",
            self.user_log(run_id))

    def test_a_module_the_shim_lacks_fails_with_what_to_do(self):
        result, run_id = self.run_script("import azureml.train.estimator\n")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(
            "ImportError: azureml.train: amlrun's azureml shim provides only azureml.core.Run "
            "(Run.get_context() and its logging methods) for scripts run by amlrun; install "
            "azureml-core in the job's environment to use the real Azure ML SDK\n",
            self.user_log(run_id))

    def test_a_run_method_that_needs_azure_ml_names_what_to_use_instead(self):
        result, run_id = self.run_script(
            "from azureml.core.run import Run\nRun.get_context().submit_child(None)\n")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(
            "AttributeError: Run.submit_child: amlrun's azureml shim cannot do this (a run under "
            "amlrun talks to no Azure ML service); start a nested run with "
            "mlflow.start_run(nested=True), or a sweep\n", self.user_log(run_id))

    def test_outside_amlrun_the_run_is_offline_and_stores_nothing(self):
        self.project.write("src/train.py", """
            from azureml.core.run import Run
            run = Run.get_context()
            print(run.id.startswith("OfflineRun_"), run.experiment.name)
            run.log("loss", 0.5)
            run.tag("a", "b")
            print(run.get_tags())
            try:
                Run.get_context(allow_offline=False)
            except RuntimeError as error:
                print(error)
            """)
        env = clean_environment()
        for name in list(env):
            if name.startswith(("MLFLOW_", "AMLRUN_")):
                del env[name]
        env["PYTHONPATH"] = SHIM
        result = subprocess.run([PYTHON, "train.py"], cwd=os.path.join(self.project.root, "src"),
                                capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout,
                         "True offline\n"
                         "Attempted to log scalar metric loss:\n0.5\n"
                         "{'a': 'b'}\n"
                         "Run.get_context(allow_offline=False): this script is not running under "
                         "amlrun (MLFLOW_TRACKING_URI and MLFLOW_RUN_ID are not set); submit it "
                         "with `amlrun submit JOB.yml`\n")
        self.assertEqual(result.stderr, "")
        runs = os.path.join(self.project.workspace, "runs")
        self.assertEqual(os.listdir(runs) if os.path.isdir(runs) else [], [])

    def test_a_real_azureml_core_in_the_environment_is_used_and_the_system_log_says_so(self):
        # A stand-in for azureml-core as pip installs it (a namespace
        # package azureml with core/ in it), on the job's own PYTHONPATH.
        self.project.write("src/fake/azureml/__init__.py",
                           "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n")
        self.project.write("src/fake/azureml/core/__init__.py", "class Run:\n    REAL = True\n")
        result, run_id = self.run_script(
            "from azureml.core import Run\nprint('real', Run.REAL)\n",
            "environment_variables:\n  PYTHONPATH: fake\n")
        log = self.user_log(run_id)
        self.assertEqual(result.returncode, 0, result.stderr + log)
        self.assertEqual(log, "real True\n")
        core = os.path.join(self.project.workspace, "runs", run_id, "wd", "fake", "azureml", "core")
        self.assertIn("azureml: rank 0 uses the azureml-core installed in its environment "
                      "('%s'), not amlrun's azureml shim\n" % core, self.system_log(run_id))
