"""MLflow tracking on Slurm, on the real two-node test cluster: the driver on
the first node serves the run's endpoint to the ranks of every node (the real
MLflow client, from the venv scripts/common.sh makes), and what they log
lands in the run when it is collected: metrics with their ranks, params,
tags, a nested run as a child run, artifacts under outputs."""
import json
import os
import subprocess

from slurm_e2e import SlurmTest, read_text

SOURCE = os.environ.get("AMLRUN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
VENV = os.environ.get("AMLRUN_TRACKING_VENV",
                      os.path.expanduser("~/.cache/amlrun/venv-mlflow-skinny"))
PYTHON = os.path.join(VENV, "bin", "python")


def setUpModule():
    subprocess.run(["bash", "-c", "source scripts/common.sh && ensure_tracking_venv"],
                   cwd=SOURCE, check=True, env=dict(os.environ, AMLRUN_TRACKING_VENV=VENV))


TRAIN = """
import os, socket, mlflow
rank = int(os.environ["RANK"])
print("uri", os.environ["MLFLOW_TRACKING_URI"], flush=True)
with mlflow.start_run() as run:
    assert run.info.run_id == os.environ["AMLRUN_RUN_ID"], run.info.run_id
    mlflow.log_metric("loss", 10 + rank, step=0)
    mlflow.log_metric("host_" + socket.gethostname(), rank, step=0)
    if rank == 0:
        mlflow.log_params({"lr": 0.01, "epochs": 3})
        mlflow.set_tag("team", "vision")
        with open("notes.txt", "w") as f:
            f.write("hello")
        mlflow.log_artifact("notes.txt")
        with mlflow.start_run(run_name="fold-0", nested=True):
            mlflow.log_param("fold", 0)
            mlflow.log_metric("acc", 0.5, step=0)
            mlflow.log_text("fold 0", "fold.txt")
"""


class SlurmTrackingTest(SlurmTest):
    def top_run(self):
        # The newest run folder may be the nested run the collection just
        # made (it is created after the run it belongs to): take the newest
        # run without a parent.
        tops = [r for r in self.project.run_ids() if self.project.show(r).get("parent_id") is None]
        self.assertTrue(tops, self.project.run_ids())
        return tops[-1]

    def metrics(self, run_id):
        result = self.project.amlrun("metrics", run_id, "--output", "json")
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)["runs"][0]["metrics"]

    def test_an_mlflow_job_on_two_nodes_lands_everything_it_logs(self):
        self.project.write("src/train.py", TRAIN)
        # A '.' in the experiment: the run id (MLFLOW_RUN_ID) must still be
        # one MLflow's client accepts.
        result = self.submit("""
            code: src
            command: %s train.py
            compute: cluster
            experiment_name: cifar.v2
            resources:
              instance_count: 2
            distribution:
              type: pytorch
              process_count_per_instance: 1
        """ % PYTHON, timeout=300)
        run_id = self.top_run()
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        logs = "".join(self.project.rank_log(run_id, r) for r in (0, 1))
        self.assertNotIn(".", run_id)
        self.assertIn("uri http://n1:", self.project.rank_log(run_id, 1))
        self.assertIn("/rank/1\n", self.project.rank_log(run_id, 1))

        metrics = self.metrics(run_id)
        self.assertEqual(sorted((p["rank"], p["value"]) for p in metrics["loss"]), [(0, 10), (1, 11)])
        # One point from each node, each with the rank that logged it.
        self.assertEqual(metrics["host_n1"], [{"step": 0, "value": 0, "rank": 0}])
        self.assertEqual(metrics["host_n2"], [{"step": 0, "value": 1, "rank": 1}])

        shown = self.project.show(run_id)
        self.assertEqual(shown["params"], {"epochs": "3", "lr": "0.01"})
        self.assertEqual(shown["tags"], {"team": "vision"})
        self.assertEqual(shown.get("warnings", []), [])
        self.assertEqual([c["display_name"] for c in shown["child_runs"]], ["fold-0"])
        with open(os.path.join(self.project.outputs(run_id), "notes.txt")) as f:
            self.assertEqual(f.read(), "hello")

        listed = self.project.amlrun("runs", "list", "--parent", run_id, "--output", "json")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        children = json.loads(listed.stdout)
        self.assertEqual([(c["display_name"], c["status"]) for c in children],
                         [("fold-0", "Completed")])
        child = self.project.show(children[0]["id"])
        self.assertEqual(child["parent_id"], run_id)
        self.assertEqual(child["params"], {"fold": "0"})
        self.assertEqual(child["metrics"]["acc"]["last"], 0.5)
        with open(os.path.join(self.project.outputs(children[0]["id"]), "fold.txt")) as f:
            self.assertEqual(f.read(), "fold 0")
        # The nested run's files moved into it; the journal stays as a system log.
        system = os.path.join(self.project.logs(run_id), "system")
        self.assertFalse(os.path.exists(os.path.join(self.project.logs(run_id), "nested_runs")))
        self.assertIn('"op":"create"', read_text(os.path.join(system, "tracking_journal.jsonl")))
        batch_output = [f for f in os.listdir(system) if f.startswith("slurm-")]
        self.assertEqual(len(batch_output), 1, os.listdir(system))
        self.assertIn("tracking: MLflow endpoint at http://n1:",
                      read_text(os.path.join(system, batch_output[0])))

    def test_an_azureml_sdk_v1_script_logs_from_both_nodes(self):
        # amlrun's azureml shim is staged beside the binaries and first on
        # every rank's PYTHONPATH; it logs through the same endpoint. Plain
        # /usr/bin/python3: the shim needs nothing but the standard library.
        self.project.write("src/train.py", """
import os
from azureml.core.run import Run
run = Run.get_context()
rank = int(os.environ["RANK"])
run.log("acc", 0.5 + rank)
run.log_list("lrs", [0.1, 0.01])
if rank == 0:
    run.tag("sdk", "v1")
print("run", run.id, flush=True)
""")
        result = self.submit("""
            code: src
            command: /usr/bin/python3 train.py
            compute: cluster
            resources:
              instance_count: 2
            distribution:
              type: pytorch
              process_count_per_instance: 1
        """, timeout=300)
        run_id = self.last_run()
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        logs = "".join(self.project.rank_log(run_id, r) for r in (0, 1))
        self.assertIn("run %s\n" % run_id, self.project.rank_log(run_id, 1))
        metrics = self.metrics(run_id)
        self.assertEqual(sorted((p["rank"], p["value"]) for p in metrics["acc"]), [(0, 0.5), (1, 1.5)])
        self.assertEqual(sorted((p["rank"], p["step"], p["value"]) for p in metrics["lrs"]),
                         [(0, 0, 0.1), (0, 1, 0.01), (1, 0, 0.1), (1, 1, 0.01)])
        self.assertEqual(self.project.show(run_id)["tags"], {"sdk": "v1"})
