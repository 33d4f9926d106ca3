"""`amlrun-worker predict` and `type: score_image_model` jobs: images labelled
with a trained model folder by LibTorch (model.pt) or by OpenCV's DNN module
(model.onnx, a runtime amlrun did not write), checked against each other,
against `evaluate`, and against torchvision running state_dict.pt in Python
with torchvision's own preprocessing.

One model is trained for the module (resnet18, one epoch on a tiny
Fashion-MNIST folder, 32px), so its BatchNorm statistics are real."""
import csv
import io
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import numpy
import torch
import torchvision
from PIL import Image

import worker_support as ws
from amlrun_e2e import ProjectTest

_ROOT = None
_MODEL = None


def setUpModule():
    global _ROOT, _MODEL
    _ROOT = os.path.realpath(tempfile.mkdtemp(prefix="amlrun-worker-predict-"))
    out = os.path.join(_ROOT, "trained")
    result = ws.run_worker(ws.train_args("tiny", "--model", "resnet18", "--epochs", "1", "--batch-size", "8",
                                         "--output-dir", out), cwd=_ROOT)
    if result.returncode != 0:
        raise AssertionError(f"training failed:\n{result.stdout}\n{result.stderr}")
    _MODEL = os.path.join(out, "model")


def tearDownModule():
    ws.remove_data_root()
    if _ROOT is not None:
        shutil.rmtree(_ROOT, ignore_errors=True)


def classes():
    with open(os.path.join(_MODEL, "labels.json")) as f:
        return json.load(f)["classes"]


def mixed_images(folder):
    """Every kind of file predict meets, made from Fashion-MNIST images:
    RGB PNG, JPEG, grey PNG, palette PNG, an upper-case extension in a
    sub-folder, a truncated PNG, an empty JPEG, a hidden image and a text
    file (neither of the last two is an image row)."""
    source = os.path.join(ws.data("tiny", "test"), classes()[0])
    first, second = sorted(os.listdir(source))[:2]
    grey = Image.open(os.path.join(source, first)).convert("L")
    other = Image.open(os.path.join(source, second)).convert("L")
    os.makedirs(os.path.join(folder, "sub"))
    grey.convert("RGB").save(os.path.join(folder, "a_rgb.png"))
    other.convert("RGB").resize((50, 40)).save(os.path.join(folder, "b_photo.jpg"), quality=95)
    grey.save(os.path.join(folder, "c_grey.png"))
    other.convert("P").save(os.path.join(folder, "d_palette.png"))
    grey.save(os.path.join(folder, "sub", "e_upper.PNG"))
    with open(os.path.join(folder, "a_rgb.png"), "rb") as f:
        png = f.read()
    with open(os.path.join(folder, "f_truncated.png"), "wb") as f:
        f.write(png[:len(png) // 2])
    open(os.path.join(folder, "g_empty.jpg"), "wb").close()
    grey.save(os.path.join(folder, ".hidden.png"))
    with open(os.path.join(folder, "notes.txt"), "w") as f:
        f.write("not an image\n")
    return ["a_rgb.png", "b_photo.jpg", "c_grey.png", "d_palette.png", "f_truncated.png", "g_empty.jpg",
            "sub/e_upper.PNG"]


def torchvision_probabilities(paths):
    """What a user's Python would compute: torchvision's model with
    state_dict.pt and torchvision's evaluation preprocessing on PIL images."""
    with open(os.path.join(_MODEL, "config.json")) as f:
        config = json.load(f)["model"]
    model = torchvision.models.resnet18(num_classes=config["classes"])
    model.load_state_dict(torch.load(os.path.join(_MODEL, "state_dict.pt")))
    model.eval()
    size = config["image_size"]
    transform = torchvision.transforms.Compose([
        torchvision.transforms.Resize(round(size * 256 / 224)),
        torchvision.transforms.CenterCrop(size),
        torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize(config["normalization"]["mean"], config["normalization"]["std"]),
    ])
    batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths])
    with torch.no_grad():
        return torch.softmax(model(batch), dim=1).numpy()


class PredictTest(unittest.TestCase):
    def setUp(self):
        self.dir = os.path.realpath(tempfile.mkdtemp(prefix="predict-", dir=_ROOT))

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def predict(self, *args, model=None):
        return ws.run_worker(["predict", "--model-dir", model or _MODEL, "--threads", "1", *args], cwd=self.dir)

    def assertUsage(self, result, message):
        self.assertEqual(result.returncode, 2, result.stderr)
        errors = [line for line in result.stderr.splitlines() if line.startswith("amlrun-worker: error: ")]
        self.assertEqual(errors, ["amlrun-worker: error: " + message], result.stderr)

    def test_csv_has_a_row_per_image_in_order_with_the_reasons_of_unreadable_ones(self):
        images = os.path.join(self.dir, "images")
        expected = mixed_images(images)
        out = os.path.join(self.dir, "out.csv")
        result = self.predict("--data", images, "--top-k", "3", "--output", out)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r"^predicted 5 images, 2 unreadable in [0-9.]+ s \([0-9.]+ images/s, "
                                        r"engine torch\); wrote " + out + "\n$")
        self.assertIn("amlrun-worker: warning: skipping corrupt image " + os.path.join(images, "g_empty.jpg")
                      + ": empty file", result.stderr)
        with open(out, newline="") as f:
            text = f.read()
        lines = text.splitlines()
        self.assertEqual(lines[0], "path,label_1,probability_1,label_2,probability_2,label_3,probability_3,error")
        rows = list(csv.reader(io.StringIO(text)))[1:]
        self.assertEqual([row[0] for row in rows], expected)
        names = classes()
        for row in rows:
            if row[0] in ("f_truncated.png", "g_empty.jpg"):
                self.assertEqual(row[1:7], [""] * 6, row)
                self.assertNotEqual(row[7], "")
                continue
            self.assertEqual(row[7], "", row)
            labels, probabilities = row[1:7:2], [float(p) for p in row[2:7:2]]
            self.assertTrue(set(labels) <= set(names), labels)
            self.assertEqual(len(set(labels)), 3)
            self.assertEqual(probabilities, sorted(probabilities, reverse=True))
            self.assertTrue(all(len(p.split(".")[1]) == 6 for p in row[2:7:2]), row)
        self.assertEqual(dict((row[0], row[7]) for row in rows)["g_empty.jpg"], "empty file")

    def test_jsonl_rows_and_the_probabilities_torchvision_computes(self):
        images = os.path.join(self.dir, "images")
        expected = mixed_images(images)
        out = os.path.join(self.dir, "out.jsonl")
        result = self.predict("--data", images, "--top-k", "10", "--output", out)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(out) as f:
            rows = [json.loads(line) for line in f]
        self.assertEqual([row["path"] for row in rows], expected)
        self.assertEqual(sorted(rows[4]), ["error", "path"])
        readable = [row for row in rows if "error" not in row]
        self.assertEqual(sorted(readable[0]), ["path", "predictions"])
        reference = torchvision_probabilities([os.path.join(images, row["path"]) for row in readable])
        names = classes()
        for row, expected_row in zip(readable, reference):
            self.assertEqual(len(row["predictions"]), 10)
            ours = numpy.zeros(len(names))
            for item in row["predictions"]:
                ours[names.index(item["label"])] = item["probability"]
            self.assertAlmostEqual(ours.sum(), 1.0, delta=1e-5)
            # The same model on the same image; preprocessing differs only in
            # resampling: amlrun resamples the crop box once, torchvision
            # resizes the whole image and then crops (measured: at most 7e-4
            # on the 100 images of the small test folder).
            self.assertLess(numpy.abs(ours - expected_row).max(), 0.005, row["path"])
            self.assertEqual(names[int(expected_row.argmax())], row["predictions"][0]["label"], row["path"])

    def test_the_onnx_engine_gives_the_torch_engines_probabilities(self):
        data = ws.data("small", "test")
        torch_out, onnx_out = os.path.join(self.dir, "t.csv"), os.path.join(self.dir, "o.csv")
        for engine, out in (("torch", torch_out), ("onnx", onnx_out)):
            result = self.predict("--data", data, "--engine", engine, "--top-k", "10", "--batch-size", "7",
                                  "--output", out)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn(f"engine {engine}); wrote", result.stdout)

        def table(path):
            with open(path, newline="") as f:
                return {row[0]: {row[i]: float(row[i + 1]) for i in range(1, 21, 2)} for row in
                        list(csv.reader(f))[1:]}
        ours, theirs = table(torch_out), table(onnx_out)
        self.assertEqual(len(ours), 100)
        self.assertEqual(sorted(ours), sorted(theirs))
        worst = max(abs(ours[p][label] - theirs[p][label]) for p in ours for label in ours[p])
        self.assertLess(worst, 1e-4)

    def test_predict_and_evaluate_agree_on_a_labelled_folder(self):
        data = ws.data("small", "test")
        evaluated = ws.run_worker(["evaluate", "--model-dir", _MODEL, "--data", data, "--threads", "1"])
        self.assertEqual(evaluated.returncode, 0, evaluated.stderr)
        accuracy_line = evaluated.stdout.splitlines()[0]
        self.assertRegex(accuracy_line, r"^accuracy [0-9.]+% \(\d+/100\)$")
        out = os.path.join(self.dir, "p.csv")
        result = self.predict("--data", data, "--top-k", "1", "--output", out)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines()[1], accuracy_line + " by the folder names")
        with open(out, newline="") as f:
            rows = list(csv.reader(f))[1:]
        right = sum(1 for row in rows if row[0].split("/")[0] == row[1])
        self.assertEqual(accuracy_line.split("(")[1], f"{right}/100)")

    def test_files_named_directly_keep_their_names_and_the_format_is_sniffed(self):
        images = os.path.join(self.dir, "images")
        mixed_images(images)
        disguised = os.path.join(self.dir, "a png named.jpg")
        shutil.copy(os.path.join(images, "a_rgb.png"), disguised)
        out = os.path.join(self.dir, "out.csv")
        result = self.predict("--data", disguised, os.path.join(images, "sub"), "--top-k", "1", "--output", out)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(out, newline="") as f:
            rows = list(csv.reader(f))
        self.assertEqual(rows[0], ["path", "label_1", "probability_1", "error"])
        self.assertEqual([row[0] for row in rows[1:]], [disguised, os.path.join(images, "sub", "e_upper.PNG")])

    def test_strict_makes_an_unreadable_image_fatal_and_writes_nothing(self):
        images = os.path.join(self.dir, "images")
        mixed_images(images)
        out = os.path.join(self.dir, "out.csv")
        result = self.predict("--data", images, "--strict", "--output", out)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertRegex(result.stderr, "amlrun-worker: error: corrupt image \\(--strict\\): "
                         + os.path.join(images, "f_truncated.png") + ": .+\n")
        self.assertFalse(os.path.exists(out))
        self.assertEqual([n for n in os.listdir(self.dir) if n != "images"], [])

    def test_a_folder_of_only_unreadable_images_is_an_error(self):
        images = os.path.join(self.dir, "bad")
        os.makedirs(images)
        open(os.path.join(images, "x.png"), "wb").close()
        result = self.predict("--data", images, "--output", os.path.join(self.dir, "o.csv"))
        self.assertUsage(result, "no readable image among the 1 of --data (1 skipped)")

    def test_bad_options_and_model_folders_are_refused_with_a_message(self):
        data = ws.data("tiny", "test")
        out = os.path.join(self.dir, "o.csv")
        self.assertUsage(self.predict("--data", data, "--output", out, "--engine", "tensorrt"),
                         "--engine 'tensorrt': not a known engine; choose one of torch, onnx")
        self.assertUsage(self.predict("--data", data, "--output", out, "--top-k", "0"),
                         "--top-k 0: must be at least 1")
        self.assertUsage(self.predict("--data", data, "--output", os.path.join(self.dir, "o.txt")),
                         f"--output {self.dir}/o.txt: the name must end in .csv or .jsonl (the format is "
                         "chosen by it)")
        self.assertUsage(self.predict("--output", out), "--data is required (image files or folders of images)")
        self.assertUsage(self.predict("--data", os.path.join(self.dir, "nope"), "--output", out),
                         f"--data {self.dir}/nope: no such file or folder")
        empty = os.path.join(self.dir, "empty")
        os.makedirs(empty)
        self.assertUsage(self.predict("--data", empty, "--output", out),
                         f"--data {empty}: no .jpg, .jpeg or .png file in the folder or below it")
        self.assertUsage(self.predict("--data", data, "--output", out, "--engine", "onnx", "--device", "cuda"),
                         "--engine onnx runs on the CPU (OpenCV's DNN module); use --engine torch for --device cuda")
        partial = os.path.join(self.dir, "partial")
        shutil.copytree(_MODEL, partial)
        os.remove(os.path.join(partial, "model.onnx"))
        self.assertUsage(self.predict("--data", data, "--output", out, "--engine", "onnx", model=partial),
                         f"--model-dir {partial}: not a model folder (model.onnx is missing; "
                         f"'amlrun-worker export --model-dir {partial}' writes it)")
        os.remove(os.path.join(partial, "labels.json"))
        self.assertUsage(self.predict("--data", data, "--output", out, model=partial),
                         f"--model-dir {partial}: not a model folder (labels.json is missing)")
        self.assertFalse(os.path.exists(out))


class ScoreJobTest(ProjectTest):
    def score_job(self, model, extra=""):
        return """
            type: score_image_model
            experiment_name: scoring
            model: %s
            data: %s
            output: scores/predictions.jsonl
            top_k: 2
            threads: 1
            %s
        """ % (model, ws.data("small", "test"), extra)

    def rows(self, run_id):
        with open(os.path.join(self.project.outputs(run_id), "scores", "predictions.jsonl")) as f:
            return [json.loads(line) for line in f]

    def test_a_scoring_job_with_a_model_folder_writes_its_outputs_and_metrics(self):
        result = self.submit(self.score_job(_MODEL), "--stream", timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        self.assertRegex(result.stdout, r"predicted 100 images in [0-9.]+ s")
        rows = self.rows(run_id)
        self.assertEqual(len(rows), 100)
        self.assertEqual(rows[0]["path"].split("/")[0], classes()[0])
        self.assertEqual(len(rows[0]["predictions"]), 2)
        metrics = json.loads(self.project.amlrun("metrics", run_id, "--output", "json").stdout)
        series = metrics["runs"][0]["metrics"]
        self.assertEqual([p["value"] for p in series["predicted_images"]], [100])
        self.assertEqual([p["value"] for p in series["unreadable_images"]], [0])
        job = json.loads(self.project.amlrun("show", run_id, "--output", "json").stdout)
        self.assertEqual(job["state"], "Completed")

    def test_a_registered_model_is_used_by_name_and_refused_when_tampered_with(self):
        registered = self.project.amlrun("model", "register", "--name", "fashion", "--from", _MODEL)
        self.assertEqual(registered.returncode, 0, registered.stderr)
        result = self.submit(self.score_job("fashion@latest"), "--stream", timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        self.assertEqual(len(self.rows(run_id)), 100)
        with open(os.path.join(self.project.workspace, "runs", run_id, "job.json")) as f:
            self.assertEqual(json.load(f)["score"]["model_resolved"], "fashion:1")
        validated = self.project.amlrun("validate", "job.yml", "--output", "json")
        self.assertEqual(validated.returncode, 0, validated.stderr)
        # One byte of the registered weights changed: refused before any run.
        weights = subprocess.run(["find", os.path.join(self.project.workspace, "models"), "-name", "model.pt"],
                                 capture_output=True, text=True).stdout.split()
        self.assertEqual(len(weights), 1)
        with open(weights[0], "r+b") as f:
            f.seek(100)
            byte = f.read(1)
            f.seek(100)
            f.write(bytes([byte[0] ^ 1]))
        runs_before = self.project.run_ids()
        result = self.submit(self.score_job("fashion:1"))
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertRegex(result.stderr, r"model fashion:1: model.pt is damaged: its sha256 is [0-9a-f]{64}, the "
                                        r"manifest says [0-9a-f]{64}; the registry copy was changed after "
                                        r"registration: register the model again")
        self.assertEqual(self.project.run_ids(), runs_before)
        missing = self.submit(self.score_job("fashion:7"))
        self.assertEqual(missing.returncode, 2)
        self.assertIn("job.yml:4:8: model: model fashion has no version 7; its versions are 1", missing.stderr)

    def test_a_runs_output_is_used_by_its_run_id(self):
        self.project.write("src/copy.sh", "")
        made = self.submit("command: cp -r %s outputs/model\n" % _MODEL, name="make.yml")
        self.assertEqual(made.returncode, 0, made.stderr)
        producer = self.last_run()
        result = self.submit(self.score_job("runs:/%s/outputs/model" % producer), "--stream", timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(os.path.join(self.project.workspace, "runs", self.last_run(), "job.json")) as f:
            self.assertEqual(json.load(f)["score"]["model_resolved"], f"run {producer}'s outputs/model")
        escape = self.submit(self.score_job("runs:/%s/../../.." % producer))
        self.assertEqual(escape.returncode, 2)
        self.assertIn(f"job.yml:4:8: model: runs:/{producer}: '../../..' leaves ", escape.stderr)

    def test_job_file_mistakes_are_reported_at_their_line(self):
        result = self.submit("""type: score_image_model
model: %s
data: %s
output: ../escape.csv
top_k: 0
engine: tensorrt
distribution: {type: mpi, process_count_per_instance: 2}
""" % (ws.data("tiny", "train"), ws.data("tiny", "test")))
        self.assertEqual(result.returncode, 2)
        lines = result.stderr
        self.assertIn("job.yml:2:8: model: '%s' is not a model folder (model.pt is missing); give the model/ folder "
                      "of a training run" % ws.data("tiny", "train"), lines)
        self.assertIn("job.yml:4:9: output: '../escape.csv' must be a file name below outputs/, such as "
                      "predictions.csv or scores/run.jsonl", lines)
        self.assertIn("job.yml:5:8: top_k: must be", lines)
        self.assertIn("job.yml:6:9: engine: 'tensorrt' is not one of torch, onnx", lines)
        self.assertIn("job.yml:7:1: distribution: a score_image_model job runs one process", lines)
        self.assertEqual(self.project.run_ids(), [])


if __name__ == "__main__":
    unittest.main()
