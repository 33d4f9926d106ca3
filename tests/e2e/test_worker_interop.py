"""State dicts move between amlrun-worker and Python's torchvision (Debian's
python3-torch 1.13 and python3-torchvision 0.14) in both directions."""
import collections
import os
import unittest

import torch
import torchvision

import worker_support as ws


def tearDownModule():
    ws.remove_data_root()


class InteropTest(ws.WorkerTest):
    dir_prefix = "amlrun-worker-interop-"

    def export(self, init_weights, name):
        """Runs the worker with --epochs 0 (no training: the model folder gets
        the initial weights) and returns its state_dict.pt as Python reads it."""
        out = os.path.join(self.dir, name)
        result = ws.run_worker(ws.train_args("tiny", "--epochs", "0", "--init-weights", init_weights,
                                             "--output-dir", out), cwd=self.dir)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result, torch.load(os.path.join(out, "model", "state_dict.pt"))

    def python_model(self, classes=10):
        torch.manual_seed(5)
        model = torchvision.models.resnet18(num_classes=classes)
        # Non-default BatchNorm statistics, so buffers are checked too.
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.num_batches_tracked.fill_(7)
        return model

    def assertSameTensors(self, expected, actual, skip=()):
        self.assertEqual(list(expected.keys()), list(actual.keys()))
        for name in expected:
            if name in skip:
                continue
            self.assertTrue(torch.equal(expected[name], actual[name]), name)

    def test_the_usual_torch_save_of_state_dict_is_read(self):
        model = self.python_model()
        path = os.path.join(self.dir, "ordered.pt")
        torch.save(model.state_dict(), path)  # an OrderedDict with _metadata
        self.assertIsInstance(torch.load(path), collections.OrderedDict)
        _, ours = self.export(path, "from-ordered")
        self.assertSameTensors(model.state_dict(), ours)

    def test_a_plain_dict_is_read(self):
        model = self.python_model()
        path = os.path.join(self.dir, "plain.pt")
        torch.save(dict(model.state_dict()), path)
        _, ours = self.export(path, "from-plain")
        self.assertSameTensors(model.state_dict(), ours)

    def test_the_final_layer_is_replaced_for_another_class_count(self):
        model = self.python_model(classes=1000)
        path = os.path.join(self.dir, "imagenet.pt")
        torch.save(model.state_dict(), path)
        result, ours = self.export(path, "transfer")
        self.assertIn("final layer 'fc' replaced: the initial weights are for another class count, "
                      "the data has 10 classes", result.stdout)
        self.assertEqual(tuple(ours["fc.weight"].shape), (10, 512))
        self.assertSameTensors(model.state_dict(), ours, skip=("fc.weight", "fc.bias"))

    def test_freeze_backbone_trains_only_the_final_layer(self):
        model = self.python_model(classes=1000)
        path = os.path.join(self.dir, "pretrained.pt")
        torch.save(model.state_dict(), path)
        out = os.path.join(self.dir, "frozen")
        result = ws.run_worker(ws.train_args("tiny", "--epochs", "1", "--init-weights", path, "--freeze-backbone",
                                             "--learning-rate", "0.1", "--output-dir", out), cwd=self.dir)
        self.assertEqual(result.returncode, 0, result.stderr)
        trained = torch.load(os.path.join(out, "model", "state_dict.pt"))
        # Weights and BatchNorm statistics of the backbone are untouched...
        self.assertSameTensors(model.state_dict(), trained, skip=("fc.weight", "fc.bias"))
        # ...and the new final layer learned.
        _, initial = self.export(path, "initial")
        self.assertFalse(torch.equal(initial["fc.weight"], trained["fc.weight"]))

    def test_our_trained_state_dict_loads_into_torchvision(self):
        out = os.path.join(self.dir, "trained")
        result = ws.run_worker(ws.train_args("tiny", "--epochs", "1", "--output-dir", out), cwd=self.dir)
        self.assertEqual(result.returncode, 0, result.stderr)
        state = torch.load(os.path.join(out, "model", "state_dict.pt"))
        self.assertIsInstance(state, dict)
        model = torchvision.models.resnet18(num_classes=10)
        model.load_state_dict(state, strict=True)
        # Training moved the weights and the BatchNorm statistics.
        self.assertGreater(int(model.bn1.num_batches_tracked), 0)
        model.eval()
        with torch.no_grad():
            logits = model(torch.zeros(1, 3, 32, 32))
        self.assertEqual(tuple(logits.shape), (1, 10))
        self.assertTrue(torch.isfinite(logits).all())
        # And the model folder itself can seed another run (fork a model).
        _, again = self.export(os.path.join(out, "model"), "forked")
        self.assertSameTensors(state, again)


if __name__ == "__main__":
    unittest.main()
