"""Training with one process: what a run writes, what it prints, corrupt
images, evaluation, and that `continue` after a kill ends with exactly the
weights of an uninterrupted run."""
import json
import math
import os
import pty
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import worker_support as ws


def tearDownModule():
    ws.remove_data_root()


class TrainedRunTest(unittest.TestCase):
    """One two-epoch run, inspected by several tests."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="amlrun-worker-train-")
        cls.out = os.path.join(cls.dir, "outputs")
        # A line every 20% of an epoch's 25 steps: after steps 5, 10, 15, 20.
        cls.result = ws.run_worker(ws.train_args("small", "--epochs", "2", "--output-dir", cls.out,
                                                 "--learning-rate", "0.01", "--threads", "2",
                                                 "--progress-interval", "20%"),
                                   cwd=cls.dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.assertEqual(self.result.returncode, 0, self.result.stderr)

    def metrics(self):
        with open(os.path.join(self.dir, "logs", "metrics.jsonl")) as f:
            return [json.loads(line) for line in f]

    def test_the_model_folder_has_archive_state_dict_labels_and_config(self):
        model = os.path.join(self.out, "model")
        self.assertEqual(sorted(os.listdir(model)), ["config.json", "labels.json", "model.onnx", "model.pt", "state_dict.pt"])
        with open(os.path.join(model, "labels.json")) as f:
            self.assertEqual(json.load(f)["classes"], sorted(os.listdir(ws.data("small", "train"))))
        with open(os.path.join(model, "config.json")) as f:
            config = json.load(f)
        self.assertEqual(config["config"]["model"], "resnet18")
        self.assertEqual(config["config"]["epochs"], 2)
        self.assertEqual(config["config"]["batch_size"], 16)
        self.assertEqual(config["config"]["seed"], 1)
        self.assertEqual(config["config"]["learning_rate"], 0.01)
        self.assertEqual(config["config"]["train_data"], ws.data("small", "train"))
        self.assertEqual(config["model"]["image_size"], 32)
        self.assertEqual(config["resolved"]["threads"], 2)
        self.assertRegex(config["versions"]["libtorch"], r"^\d+\.\d+")
        self.assertTrue(config["versions"]["jpeg"].startswith("libjpeg-turbo "))
        self.assertEqual(config["training"]["epochs_done"], 2)
        self.assertEqual(sorted(os.listdir(os.path.join(self.out, "checkpoints"))), ["best.pt", "last.pt"])

    def test_metrics_are_json_lines_per_epoch(self):
        metrics = self.metrics()
        names = ["train_loss", "train_acc", "val_loss", "val_acc", "images_per_sec", "epoch_seconds"]
        self.assertEqual([m["name"] for m in metrics], names * 2)
        self.assertEqual([m["step"] for m in metrics], [1] * 6 + [2] * 6)
        for metric in metrics:
            self.assertIsInstance(metric["value"], (int, float))
            self.assertTrue(math.isfinite(metric["value"]))
        accuracy = [m["value"] for m in metrics if m["name"] == "val_acc"]
        self.assertTrue(all(0 <= a <= 1 for a in accuracy))

    def test_progress_lines_at_the_cadence_one_summary_per_epoch_and_no_live_line(self):
        lines = self.result.stdout.splitlines()
        self.assertTrue(lines[0].startswith("resnet18 on cpu: 1 process × 2 threads"), lines[0])
        self.assertIn("400 training images (cached", lines[0])
        epoch_lines = [line for line in lines if re.match(r"epoch \d+/\d+:", line)]
        self.assertEqual(len(epoch_lines), 2)
        self.assertRegex(epoch_lines[0], r"^epoch 1/2: train loss \d+\.\d{4}, acc \d+\.\d\d% \| val loss "
                                         r"\d+\.\d{4}, acc \d+\.\d\d% \| \d+ img/s \| \d+\.\d s")
        progress = [line for line in lines if re.match(r"epoch \d+/\d+  step", line)]
        pattern = (r"epoch (\d)/2  step (\d+)/25 \((\d+)%\)  loss \d+\.\d{4}  acc \d+\.\d\d%  \d+ img/s  "
                   r"eta (\d+(\.\d)?s|\d+ms|\d+m \d\ds)")
        found = [re.fullmatch(pattern, line) for line in progress]
        self.assertTrue(all(found), progress)
        self.assertEqual([(m.group(1), m.group(2), m.group(3)) for m in found],
                         [(e, s, p) for e in "12" for s, p in (("5", "20"), ("10", "40"), ("15", "60"),
                                                                ("20", "80"))])
        # Each epoch's progress lines come before its summary.
        self.assertLess(lines.index(progress[3]), lines.index(epoch_lines[0]))
        self.assertLess(lines.index(epoch_lines[0]), lines.index(progress[4]))
        self.assertNotIn("\r", self.result.stdout)
        self.assertTrue(lines[-1].startswith("model written to outputs/model (epoch "), lines[-1])

    def test_evaluate_reproduces_the_best_validation_accuracy(self):
        with open(os.path.join(self.out, "model", "config.json")) as f:
            best = json.load(f)["training"]["best_val_acc"]
        result = ws.run_worker(["evaluate", "--model-dir", os.path.join(self.out, "model"),
                                "--data", ws.data("small", "test")])
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        match = re.match(r"accuracy (\d+\.\d\d)% \((\d+)/100\)", lines[0])
        self.assertIsNotNone(match, lines[0])
        # Same model, same evaluation transform, same images: the same count.
        self.assertEqual(int(match.group(2)), round(best * 100))
        self.assertEqual(lines[1], "confusion matrix (rows: true class, columns: predicted class)")
        rows = lines[3:]
        self.assertEqual(len(rows), 10)
        self.assertEqual(rows[0].split()[:2], ["0", "0_t-shirt_top"])
        counts = [[int(v) for v in row.split()[2:]] for row in rows]
        self.assertEqual([sum(row) for row in counts], [10] * 10)
        self.assertEqual(sum(counts[i][i] for i in range(10)), int(match.group(2)))

    def test_state_dict_and_checkpoints_are_readable_by_python(self):
        state = ws.load(os.path.join(self.out, "model", "state_dict.pt"))
        self.assertEqual(tuple(state["fc.weight"].shape), (10, 512))
        checkpoint = ws.load(os.path.join(self.out, "checkpoints", "last.pt"))
        self.assertEqual(checkpoint["format_version"], 1)
        self.assertEqual(checkpoint["epochs_done"], 2)
        self.assertEqual(json.loads(checkpoint["config"])["epochs"], 2)
        self.assertIn("layer1.0.conv1.weight", checkpoint["momentum"])


class TrainingBehaviourTest(ws.WorkerTest):
    dir_prefix = "amlrun-worker-train-"

    def corrupted_copy(self):
        data = os.path.join(self.dir, "data")
        shutil.copytree(ws.data("tiny", "train"), os.path.join(data, "train"))
        shutil.copytree(ws.data("tiny", "test"), os.path.join(data, "test"))
        png = os.path.join(data, "train", "3_dress", "zz-truncated.png")
        source = os.path.join(data, "train", "3_dress", sorted(os.listdir(os.path.join(data, "train", "3_dress")))[0])
        with open(source, "rb") as f:
            content = f.read()
        with open(png, "wb") as f:
            f.write(content[: len(content) // 2])
        with open(os.path.join(data, "train", "4_coat", "notes.jpg"), "w") as f:
            f.write("this is text")
        return data, png

    def test_corrupt_images_are_skipped_and_counted(self):
        data, png = self.corrupted_copy()
        result = ws.run_worker(["train", "--train-data", os.path.join(data, "train"), "--validation-data",
                                os.path.join(data, "test"), "--image-size", "32", "--epochs", "1",
                                "--output-dir", os.path.join(self.dir, "out")], cwd=self.dir)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("40 training images", result.stdout)
        self.assertIn("skipped 2 corrupt images (2 training, 0 validation)", result.stdout)
        self.assertIn(f"amlrun-worker: warning: skipping corrupt image {png}: corrupt PNG (", result.stderr)

    def test_strict_makes_a_corrupt_image_fatal(self):
        data, png = self.corrupted_copy()
        result = ws.run_worker(["train", "--train-data", os.path.join(data, "train"), "--validation-data",
                                os.path.join(data, "test"), "--image-size", "32", "--strict",
                                "--output-dir", os.path.join(self.dir, "out")], cwd=self.dir)
        self.assertEqual(result.returncode, 2)
        self.assertTrue(result.stderr.startswith("amlrun-worker: error: corrupt image (--strict): "), result.stderr)

    def test_metrics_go_to_AMLRUN_METRICS_FILE(self):
        metrics = os.path.join(self.dir, "run-metrics.jsonl")
        result = subprocess.run([ws.WORKER, *ws.train_args("tiny", "--epochs", "1", "--output-dir",
                                                          os.path.join(self.dir, "out"))],
                                cwd=self.dir, capture_output=True, text=True, env=ws.worker_env(AMLRUN_METRICS_FILE=metrics))
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(metrics) as f:
            self.assertEqual(len(f.read().splitlines()), 6)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "logs")))

    def test_a_diverging_run_stops_early_and_writes_nan_as_a_string(self):
        # A learning rate of 1000 makes the loss explode: the validation loss
        # never improves after the first epoch, so patience 1 stops after epoch 2.
        result = ws.run_worker(ws.train_args("tiny", "--epochs", "5", "--patience", "1", "--learning-rate", "1000",
                                             "--output-dir", os.path.join(self.dir, "out")), cwd=self.dir)
        self.assertEqual(result.returncode, 0, result.stderr)
        epoch_lines = [line for line in result.stdout.splitlines() if re.match(r"epoch \d+/\d+:", line)]
        self.assertLess(len(epoch_lines), 5)
        self.assertIn("stopping early: the validation loss has not improved for 1 epoch", result.stdout)
        with open(os.path.join(self.dir, "logs", "metrics.jsonl")) as f:
            values = [json.loads(line)["value"] for line in f]
        for value in values:
            self.assertTrue(isinstance(value, (int, float)) or value in ("NaN", "Infinity", "-Infinity"), value)

    def test_a_live_progress_line_on_a_terminal(self):
        out = os.path.join(self.dir, "out")
        pid, fd = pty.fork()
        if pid == 0:
            os.chdir(self.dir)
            os.execv(ws.WORKER, [ws.WORKER, *ws.train_args("small", "--epochs", "1", "--output-dir", out)])
        chunks = []
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        text = b"".join(chunks).decode()
        self.assertRegex(text, r"\r\x1b\[Kepoch 1/1  step \d+/25  loss \d+\.\d{4}  \d+ img/s")

    def test_continue_after_a_kill_gives_the_weights_of_an_uninterrupted_run(self):
        args = ws.train_args("small", "--epochs", "2", "--checkpoint-every", "10", "--threads", "2")
        whole = os.path.join(self.dir, "whole")
        result = ws.run_worker(args + ["--output-dir", whole], cwd=self.dir)
        self.assertEqual(result.returncode, 0, result.stderr)

        # Kill the second run with SIGKILL soon after its first checkpoint
        # (step 10 of epoch 1's 25), so it resumes in the middle of an epoch.
        killed = os.path.join(self.dir, "killed")
        process = subprocess.Popen([ws.WORKER, *args, "--output-dir", killed], cwd=self.dir,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        last = os.path.join(killed, "checkpoints", "last.pt")
        deadline = time.monotonic() + 300
        while not os.path.exists(last) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.assertEqual(process.returncode, -signal.SIGKILL)
        checkpoint = ws.load(last)
        self.assertEqual((checkpoint["epochs_done"], checkpoint["step_in_epoch"]), (0, 10))
        self.assertFalse(os.path.exists(os.path.join(killed, "model", "state_dict.pt")))

        resumed = ws.run_worker(["continue", killed], cwd=self.dir)
        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        self.assertIn("continuing after epoch 0, step 10 of epoch 1", resumed.stdout)
        import torch
        expected = ws.load(os.path.join(whole, "checkpoints", "last.pt"))
        actual = ws.load(os.path.join(killed, "checkpoints", "last.pt"))
        for part in ("model", "momentum"):
            self.assertEqual(expected[part].keys(), actual[part].keys())
            for name in expected[part]:
                # Same seed, same thread count, same data order: bit for bit.
                self.assertTrue(torch.equal(expected[part][name], actual[part][name]), f"{part} {name}")
        self.assertEqual(expected["global_step"], actual["global_step"])
        self.assertEqual(expected["best_val_loss"], actual["best_val_loss"])
        # The epoch metrics of the interrupted epoch match too.
        whole_lines = [l for l in result.stdout.splitlines() if re.match(r"epoch \d+/\d+:", l)]
        resumed_lines = [l for l in resumed.stdout.splitlines() if re.match(r"epoch \d+/\d+:", l)]
        strip = lambda line: line.split(" | ")[:2]
        self.assertEqual([strip(l) for l in whole_lines], [strip(l) for l in resumed_lines])

    def test_continue_with_more_epochs_extends_a_finished_run(self):
        out = os.path.join(self.dir, "out")
        first = ws.run_worker(ws.train_args("tiny", "--epochs", "1", "--output-dir", out), cwd=self.dir)
        self.assertEqual(first.returncode, 0, first.stderr)
        more = ws.run_worker(["continue", out, "--epochs", "2"], cwd=self.dir)
        self.assertEqual(more.returncode, 0, more.stderr)
        self.assertIn("continuing after epoch 1", more.stdout)
        self.assertIn("epoch 2/2:", more.stdout)
        self.assertEqual(ws.load(os.path.join(out, "checkpoints", "last.pt"))["epochs_done"], 2)


if __name__ == "__main__":
    unittest.main()
