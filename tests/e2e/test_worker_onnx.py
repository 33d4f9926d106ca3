"""ONNX export of amlrun-worker models, verified outside amlrun: Debian's
python3-onnx checks every file, OpenCV's DNN module (python3-opencv 4.6, an
ONNX runtime nobody here wrote) runs it, and its logits are compared with
torchvision (python3-torch 1.13) running the same model from state_dict.pt.

Each architecture is trained for one epoch on a tiny Fashion-MNIST folder,
so its BatchNorm statistics are real rather than the initial (0, 1)."""
import json
import os
import shutil
import sys
import tempfile
import time
import unittest

import cv2
import numpy
import onnx
import torch
import torchvision

import worker_support as ws

ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "densenet121")
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
# 64 rather than the other worker tests' 32: at 32 the last stages are 1×1,
# where a 3×3 convolution sees mostly padding and a wrong pad or stride
# could go unnoticed.
SIZE = 64
# Per architecture: the training output folder, made once for the module.
_TRAINED = {}
_ROOT = None


def setUpModule():
    global _ROOT
    _ROOT = os.path.realpath(tempfile.mkdtemp(prefix="amlrun-worker-onnx-"))


def tearDownModule():
    ws.remove_data_root()
    if _ROOT is not None:
        shutil.rmtree(_ROOT, ignore_errors=True)


def trained(architecture):
    """The output folder of a one-epoch run of `architecture` (trained once)."""
    if architecture not in _TRAINED:
        out = os.path.join(_ROOT, architecture)
        result = ws.run_worker(ws.train_args("tiny", "--model", architecture, "--epochs", "1",
                                             "--batch-size", "8", "--image-size", str(SIZE), "--output-dir", out),
                               cwd=_ROOT)
        if result.returncode != 0:
            raise AssertionError(f"training {architecture} failed:\n{result.stdout}\n{result.stderr}")
        _TRAINED[architecture] = out
    return _TRAINED[architecture]


def torchvision_model(model_dir):
    """torchvision's model of the folder's architecture with its state_dict.pt."""
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)["model"]
    model = getattr(torchvision.models, config["name"])(num_classes=config["classes"])
    model.load_state_dict(torch.load(os.path.join(model_dir, "state_dict.pt")))
    return model.eval()


def inputs(batch, size):
    """A normalised-image-like batch: fixed per batch size."""
    generator = torch.Generator().manual_seed(100 + batch)
    return torch.randn(batch, 3, size, size, generator=generator)


def opencv_logits(path, images):
    net = cv2.dnn.readNetFromONNX(path)
    net.setInput(images.numpy())
    return torch.from_numpy(numpy.array(net.forward(), copy=True))


class OnnxExportTest(ws.WorkerTest):
    dir_prefix = "amlrun-worker-onnx-test-"

    def check_against_torchvision(self, architecture, onnx_path):
        """OpenCV's logits for batches of 1, 3 and 8 against torchvision's."""
        model_dir = os.path.join(trained(architecture), "model")
        model = torchvision_model(model_dir)
        for batch in (1, 3, 8):
            with self.subTest(architecture=architecture, batch=batch):
                images = inputs(batch, SIZE)
                with torch.no_grad():
                    expected = model(images)
                actual = opencv_logits(onnx_path, images)
                self.assertEqual(tuple(actual.shape), (batch, 10))
                difference = (actual - expected).abs().max().item()
                self.assertLess(difference, 1e-4, f"{architecture} batch {batch}: max |diff| {difference}")

    def check_model_file(self, path, opset):
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        self.assertEqual([o.version for o in model.opset_import if o.domain in ("", "ai.onnx")], [opset])
        graph = model.graph
        self.assertEqual([i.name for i in graph.input], ["input"])
        self.assertEqual([o.name for o in graph.output], ["logits"])
        dims = graph.input[0].type.tensor_type.shape.dim
        self.assertEqual(dims[0].dim_param, "batch")
        self.assertEqual([d.dim_value for d in dims[1:]], [3, SIZE, SIZE])
        self.assertEqual(graph.input[0].type.tensor_type.elem_type, onnx.TensorProto.FLOAT)
        return model

    def test_training_writes_a_checked_model_onnx_that_opencv_runs_like_torchvision(self):
        for architecture in ARCHITECTURES:
            with self.subTest(architecture=architecture):
                model_dir = os.path.join(trained(architecture), "model")
                path = os.path.join(model_dir, "model.onnx")
                model = self.check_model_file(path, 17)
                ops = {node.op_type for node in model.graph.node}
                if architecture.startswith("resnet"):
                    # Every BatchNorm of a ResNet follows a convolution: all folded.
                    self.assertNotIn("BatchNormalization", ops)
                else:
                    self.assertIn("BatchNormalization", ops)
                self.check_against_torchvision(architecture, path)

    def test_metadata_and_config_describe_the_preprocessing(self):
        model_dir = os.path.join(trained("resnet18"), "model")
        model = onnx.load(os.path.join(model_dir, "model.onnx"))
        metadata = {p.key: p.value for p in model.metadata_props}
        with open(os.path.join(model_dir, "labels.json")) as f:
            labels = json.load(f)["classes"]
        with open(os.path.join(model_dir, "config.json")) as f:
            config = json.load(f)["model"]
        self.assertEqual(json.loads(metadata["labels"]), labels)
        self.assertEqual(metadata["architecture"], "resnet18")
        self.assertEqual(metadata["image_size"], str(SIZE))
        numpy.testing.assert_allclose(json.loads(metadata["mean"]), MEAN, rtol=1e-6)
        numpy.testing.assert_allclose(json.loads(metadata["std"]), STD, rtol=1e-6)
        self.assertIn("(x - mean) / std", metadata["preprocessing"])
        self.assertEqual(config["labels"], labels)
        self.assertEqual(config["normalization"], {"mean": MEAN, "std": STD})
        self.assertEqual(config["onnx"], {"file": "model.onnx", "opset": 17})

    def test_export_command_writes_each_opset_and_times_it(self):
        for architecture in ARCHITECTURES:
            model_dir = os.path.join(trained(architecture), "model")
            for opset in (13, 17):
                with self.subTest(architecture=architecture, opset=opset):
                    output = os.path.join(self.dir, f"{architecture}-{opset}.onnx")
                    start = time.monotonic()
                    result = ws.run_worker(["export", "--model-dir", model_dir, "--format", "onnx",
                                            "--opset", str(opset), "--output", output])
                    elapsed = time.monotonic() - start
                    self.assertEqual(result.returncode, 0, result.stderr)
                    self.assertIn(f"wrote {output} ({architecture}, opset {opset}", result.stdout)
                    # Export time per architecture, for the benchmark table.
                    print(f"\nexport {architecture} opset {opset}: {elapsed:.2f} s wall "
                          f"({result.stdout.strip()})", file=sys.stderr)
                    self.check_model_file(output, opset)
                    if opset == 13:
                        self.check_against_torchvision(architecture, output)
                    # The same weights: byte-identical initializers to training's file.
                    trained_file = onnx.load(os.path.join(model_dir, "model.onnx"))
                    exported = onnx.load(output)
                    self.assertEqual({t.name: t.raw_data for t in trained_file.graph.initializer},
                                     {t.name: t.raw_data for t in exported.graph.initializer})
        # Without --output the file goes into the model folder.
        copy = os.path.join(self.dir, "copy")
        shutil.copytree(os.path.join(trained("resnet18"), "model"), copy)
        os.remove(os.path.join(copy, "model.onnx"))
        result = ws.run_worker(["export", "--model-dir", copy, "--format", "onnx"])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.check_model_file(os.path.join(copy, "model.onnx"), 17)

    def test_no_onnx_leaves_it_out(self):
        out = os.path.join(self.dir, "no-onnx")
        result = ws.run_worker(ws.train_args("tiny", "--epochs", "0", "--no-onnx", "--output-dir", out),
                               cwd=self.dir)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(sorted(os.listdir(os.path.join(out, "model"))),
                         ["config.json", "labels.json", "model.pt", "state_dict.pt"])
        with open(os.path.join(out, "model", "config.json")) as f:
            self.assertIsNone(json.load(f)["model"]["onnx"])

    def test_bad_options_exit_2_with_a_message(self):
        model_dir = os.path.join(trained("resnet18"), "model")
        cases = [
            (["--model-dir", model_dir, "--opset", "12"], "--opset 12: must be at least 13"),
            (["--model-dir", model_dir, "--opset", "18"], "--opset 18: must be at most 17"),
            (["--model-dir", model_dir, "--format", "tflite"], "--format 'tflite'"),
            (["--format", "onnx"], "--model-dir is required"),
            (["--model-dir", os.path.join(self.dir, "nowhere")], "no such folder"),
            (["--model-dir", model_dir, "--opsett", "13"], "unknown option '--opsett' (did you mean '--opset'?)"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                result = ws.run_worker(["export", *args])
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn(message, result.stderr)

    def test_a_model_folder_that_does_not_match_is_refused_and_nothing_is_written(self):
        # config.json says ResNet-34 but model.pt holds ResNet-18's weights.
        folder = os.path.join(self.dir, "mismatch")
        shutil.copytree(os.path.join(trained("resnet18"), "model"), folder)
        os.remove(os.path.join(folder, "model.onnx"))
        config_path = os.path.join(folder, "config.json")
        with open(config_path) as f:
            config = json.load(f)
        config["model"]["name"] = "resnet34"
        with open(config_path, "w") as f:
            json.dump(config, f)
        result = ws.run_worker(["export", "--model-dir", folder, "--format", "onnx"])
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("cannot read model.pt as a resnet34 with 10 classes", result.stderr)
        self.assertEqual(sorted(os.listdir(folder)), ["config.json", "labels.json", "model.pt", "state_dict.pt"])
        # An architecture the exporter does not know is named.
        config["model"]["name"] = "vgg11"
        with open(config_path, "w") as f:
            json.dump(config, f)
        result = ws.run_worker(["export", "--model-dir", folder, "--format", "onnx"])
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("'vgg11'", result.stderr)
        self.assertNotIn("model.onnx", os.listdir(folder))


if __name__ == "__main__":
    unittest.main()
