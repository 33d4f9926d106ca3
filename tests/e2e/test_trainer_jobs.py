"""`type: train_pytorch_model` jobs through amlrun: the job becomes a run of
amlrun-worker with the job's resources and distribution, and its outputs,
logs and metrics land in the workspace like any run's."""
import json
import os
import shutil
import unittest

import worker_support as ws
from amlrun_e2e import ProjectTest


def tearDownModule():
    ws.remove_data_root()


class TrainerJobTest(ProjectTest):
    def trainer_job(self, dataset="small", extra=""):
        return """
            type: train_pytorch_model
            experiment_name: trainer-e2e
            model: resnet18
            train_data: %s
            validation_data: %s
            epochs: 2
            batch_size: 8
            learning_rate: 0.01
            image_size: 32
            threads: 1
            distribution:
              type: mpi
              process_count_per_instance: 2
            %s
        """ % (ws.data(dataset, "train"), ws.data(dataset, "test"), extra)

    def test_a_two_process_trainer_job_writes_the_model_and_its_metrics(self):
        result = self.submit(self.trainer_job(), "--stream", timeout=600)
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        self.assertIn("epoch 2/2: train loss", result.stdout)
        # The run's working directory is gone after sealing: the worker names
        # the model folder relative to it, amlrun names the sealed outputs.
        self.assertIn("\nmodel written to outputs/model (epoch ", result.stdout)
        record = self.project.show(run_id)
        self.assertEqual(record["state"], "Completed")
        self.assertEqual(record["exit_code"], 0)

        model = os.path.join(self.project.outputs(run_id), "model")
        self.assertEqual(sorted(os.listdir(model)),
                         ["config.json", "labels.json", "model.onnx", "model.pt", "state_dict.pt"])
        with open(os.path.join(model, "config.json")) as f:
            config = json.load(f)
        self.assertEqual(config["resolved"]["processes"], 2)
        self.assertEqual(config["resolved"]["global_batch_size"], 16)
        self.assertEqual(config["config"]["epochs"], 2)
        self.assertEqual(config["config"]["learning_rate"], 0.01)
        with open(os.path.join(model, "labels.json")) as f:
            self.assertEqual(len(json.load(f)["classes"]), 10)
        self.assertTrue(os.path.isfile(os.path.join(self.project.outputs(run_id), "checkpoints",
                                                    "last.pt")))

        # Only rank 0 writes metrics: one point per epoch and name.
        metrics = json.loads(self.project.amlrun("metrics", run_id, "--output", "json").stdout)
        series = metrics["runs"][0]["metrics"]
        for name in ("train_loss", "train_acc", "val_loss", "val_acc", "images_per_sec",
                     "epoch_seconds"):
            self.assertEqual([(p["step"], p["rank"]) for p in series[name]], [(1, 0), (2, 0)],
                             name)
        self.assertTrue(all(0 <= p["value"] <= 1 for p in series["val_acc"]), series["val_acc"])

    def test_a_folder_without_class_folders_is_refused_before_anything_runs(self):
        self.project.write("empty/readme.txt", "not a labelled image folder")
        job = "type: train_pytorch_model\ntrain_data: empty\nvalidation_data: %s\n" % (
            ws.data("tiny", "test"))
        result = self.submit(job, "--stream")
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(result.stderr.splitlines()[0],
                         "amlrun: error: job.yml:2:13: train_data: 'empty' is not a labelled image "
                         "folder: it has no class sub-folders (one sub-folder of images per class)")
        self.assertFalse(os.path.exists(os.path.join(self.project.workspace, "runs")) and
                         os.listdir(os.path.join(self.project.workspace, "runs")))

    def test_a_worker_input_error_fails_the_run_with_the_workers_message(self):
        # Validation classes that differ from the training classes are found
        # by amlrun-worker, which names both sets and exits 2.
        validation = os.path.join(self.project.root, "validation")
        shutil.copytree(os.path.join(ws.data("tiny", "test"), "0_t-shirt_top"),
                        os.path.join(validation, "0_t-shirt_top"))
        job = self.trainer_job(dataset="tiny").replace(ws.data("tiny", "test"), validation)
        result = self.submit(job, "--stream", timeout=300)
        self.assertEqual(result.returncode, 1, result.stderr)
        record = self.project.show(self.last_run())
        self.assertEqual(record["state"], "Failed")
        self.assertEqual(record["exit_code"], 2)
        run_inputs = os.path.join(self.project.workspace, "runs", self.last_run(), "inputs")
        self.assertIn("amlrun-worker: error: --train-data %s and --validation-data %s have "
                      "different classes: --train-data has 10 (0_t-shirt_top, " % (
                          os.path.join(run_inputs, "train_data"),
                          os.path.join(run_inputs, "validation_data")),
                      result.stdout + result.stderr)
        self.assertIn("--validation-data has 1 (0_t-shirt_top)", result.stdout + result.stderr)

    def test_the_workers_progress_lines_reach_the_stream_and_the_log(self):
        # Under amlrun the worker writes to a log file, not a terminal: it
        # prints plain progress lines (here every 50% of a 5-step epoch:
        # after step 3), which --stream shows and the log keeps as written.
        command = " ".join([ws.WORKER, *ws.train_args("tiny", "--epochs", "1", "--batch-size", "8",
                                                      "--threads", "1", "--progress-interval", "50%")])
        job = "command: %s\nexperiment_name: progress-e2e\n" % command
        result = self.submit(job, "--stream", timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        pattern = (r"epoch 1/1  step 3/5 \(60%\)  loss \d+\.\d{4}  acc \d+\.\d\d%  \d+ img/s  "
                   r"eta (\d+ms|\d+\.\ds)")
        streamed = [line for line in result.stdout.splitlines() if "  step " in line]
        self.assertEqual(len(streamed), 1, result.stdout)
        self.assertRegex(streamed[0], "^" + pattern + "$")
        with open(os.path.join(self.project.logs(self.last_run()), "user_logs",
                               "std_log_rank_0.txt")) as f:
            logged = [line for line in f.read().splitlines() if "  step " in line]
        self.assertEqual(logged, streamed)

    def test_a_sweep_of_trainer_trials_tunes_the_learning_rate(self):
        result = self.submit("""
            type: sweep
            experiment_name: trainer-sweep
            trial:
              type: train_pytorch_model
              model: resnet18
              train_data: %s
              validation_data: %s
              epochs: 1
              batch_size: 8
              learning_rate: ${{search_space.lr}}
              image_size: 32
              threads: 1
            sampling_algorithm: grid
            search_space:
              lr: {type: choice, values: [0.01, 0.05]}
            objective: {goal: maximize, primary_metric: val_acc}
            limits: {max_concurrent_trials: 1}
        """ % (ws.data("tiny", "train"), ws.data("tiny", "test")), "--stream", timeout=600)
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        sweeps = [r for r in self.project.run_ids() if self.project.show(r).get("kind") == "sweep"]
        sweep = self.project.show(sweeps[-1])
        trials = sweep["sweep"]["trials"]
        self.assertEqual(sweep["sweep"]["counts"], {"Completed": 2})
        self.assertEqual(sorted(t["params"]["lr"] for t in trials), [0.01, 0.05])
        for trial in trials:
            self.assertIsNotNone(trial["objective"])
            # Each trial ran the worker with its own value.
            with open(os.path.join(self.project.workspace, "runs", trial["id"], "job.json")) as f:
                argv = json.load(f)["argv"]
            self.assertEqual(argv[argv.index("--learning-rate") + 1], str(trial["params"]["lr"]))
        # A sweep's model is its best trial's.
        result = self.project.amlrun("model", "register", "--name", "tuned", "--run", sweep["id"],
                                     "--path", "outputs/model")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("amlrun: %s is a sweep; registering from its best trial %s\n"
                      % (sweep["id"], sweep["sweep"]["best_trial"]), result.stderr)
        result = self.project.amlrun("model", "register", "--name", "tuned", "--run", sweep["id"],
                                     "--path", "outputs/model", "--output", "json")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["source"]["run"], sweep["sweep"]["best_trial"])


if __name__ == "__main__":
    unittest.main()
