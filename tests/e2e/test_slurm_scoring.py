"""`type: score_image_model` on the Slurm test cluster: the same job file as
on this machine, a registered model's files copied into the shared run
directory (the nodes may not see the workspace), the rows home in
outputs/."""
import json
import os
import shutil
import tempfile

import worker_support as ws
from slurm_e2e import SlurmTest

_ROOT = None
_MODEL = None


def setUpModule():
    global _ROOT, _MODEL
    _ROOT = os.path.realpath(tempfile.mkdtemp(prefix="amlrun-slurm-scoring-"))
    out = os.path.join(_ROOT, "trained")
    result = ws.run_worker(ws.train_args("tiny", "--epochs", "1", "--batch-size", "8", "--output-dir", out),
                           cwd=_ROOT)
    if result.returncode != 0:
        raise AssertionError(f"training failed:\n{result.stdout}\n{result.stderr}")
    _MODEL = os.path.join(out, "model")


def tearDownModule():
    ws.remove_data_root()
    if _ROOT is not None:
        shutil.rmtree(_ROOT, ignore_errors=True)


class SlurmScoringTest(SlurmTest):
    def test_a_registered_model_scores_images_on_the_cluster_as_it_does_here(self):
        registered = self.project.amlrun("model", "register", "--name", "fashion", "--from", _MODEL)
        self.assertEqual(registered.returncode, 0, registered.stderr)
        job = """
            type: score_image_model
            model: fashion:1
            data: %s
            output: predictions.csv
            top_k: 2
            threads: 1
        """ % ws.data("small", "test")
        self.project.write("job.yml", job)
        outputs = {}
        for compute in ("local", "cluster"):
            result = self.project.amlrun("submit", "job.yml", "--compute", compute, "--stream", timeout=300)
            self.assertEqual(result.returncode, 0, result.stderr)
            run_id = self.project.run_ids()[-1]
            self.assertRegex(result.stdout, r"predicted 100 images in [0-9.]+ s")
            with open(os.path.join(self.project.outputs(run_id), "predictions.csv")) as f:
                outputs[compute] = f.read()
            with open(os.path.join(self.project.workspace, "runs", run_id, "job.json")) as f:
                self.assertEqual(json.load(f)["score"]["model_resolved"], "fashion:1")
        self.assertIn("input 'model': copied", result.stderr)
        # The same model, images and code: the same rows, byte for byte.
        self.assertEqual(outputs["cluster"], outputs["local"])
        self.assertEqual(len(outputs["cluster"].splitlines()), 101)
