"""amlrun-worker's command line: every mistake a user can make before
training starts ends with exit 2 and a message that names the problem."""
import os
import shutil
import unittest

import worker_support as ws


def tearDownModule():
    ws.remove_data_root()


class WorkerCommandLineTest(ws.WorkerTest):
    dir_prefix = "amlrun-worker-cli-"

    def assertUsageError(self, result, message):
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(result.stderr.splitlines()[0], "amlrun-worker: error: " + message)
        self.assertEqual(result.stdout, "")

    def test_no_arguments_is_a_usage_error(self):
        result = ws.run_worker([])
        self.assertUsageError(result, "no command given")
        self.assertIn("usage:", result.stderr)

    def test_unknown_command_suggests_the_closest(self):
        self.assertUsageError(ws.run_worker(["trian"]), "unknown command 'trian' (did you mean 'train'?)")

    def test_unknown_option_suggests_the_closest(self):
        result = ws.run_worker(ws.train_args("tiny", "--epoch", "3"))
        self.assertUsageError(result, "unknown option '--epoch' (did you mean '--epochs'?)")
        self.assertIn("Run 'amlrun-worker train --help' for its options.", result.stderr)

    def test_help_lists_the_commands_and_exits_0(self):
        result = ws.run_worker(["--help"])
        self.assertEqual(result.returncode, 0)
        for command in ("train", "continue", "evaluate", "export", "loader-benchmark"):
            self.assertIn(command, result.stdout)
        train_help = ws.run_worker(["train", "--help"])
        self.assertEqual(train_help.returncode, 0)
        self.assertIn("--freeze-backbone", train_help.stdout)
        self.assertIn("[0.001]", train_help.stdout)

    def test_bad_values_are_named(self):
        cases = [
            (["--epochs", "five"], "--epochs 'five': not a whole number"),
            (["--batch-size", "0"], "--batch-size 0: must be at least 1"),
            (["--learning-rate", "-0.1"], "--learning-rate -0.1: must be greater than 0"),
            (["--model", "resnet101"],
             "--model 'resnet101': not a known model (did you mean 'resnet18'?); choose one of "
             "resnet18, resnet34, resnet50, densenet121"),
            (["--device", "tpu"], "--device 'tpu': not a known device (did you mean 'cpu'?); choose one of auto, cpu, cuda"),
            (["--image-size", "8"], "--image-size 8: must be at least 32"),
        ]
        for extra, message in cases:
            with self.subTest(extra=extra):
                self.assertUsageError(ws.run_worker(ws.train_args("tiny", *extra)), message)

    def test_a_value_is_required_after_an_option(self):
        result = ws.run_worker(["train", "--epochs"])
        self.assertEqual(result.returncode, 2)
        self.assertIn("--epochs", result.stderr.splitlines()[0])

    def test_data_folders_are_required(self):
        self.assertUsageError(ws.run_worker(["train", "--validation-data", self.dir]),
                              "--train-data is required (a labelled image folder)")

    def test_a_missing_folder_is_named(self):
        missing = os.path.join(self.dir, "nope")
        self.assertUsageError(
            ws.run_worker(["train", "--train-data", missing, "--validation-data", ws.data("tiny", "test")]),
            f"--train-data {missing}: no such folder")

    def test_a_folder_without_class_folders_is_not_labelled(self):
        flat = os.path.join(self.dir, "flat")
        os.makedirs(flat)
        shutil.copy(os.path.join(ws.data("tiny", "train"), "1_trouser", sorted(os.listdir(
            os.path.join(ws.data("tiny", "train"), "1_trouser")))[0]), flat)
        self.assertUsageError(
            ws.run_worker(["train", "--train-data", ws.data("tiny", "train"), "--validation-data", flat]),
            f"--validation-data {flat}: not a labelled image folder (no class sub-folders)")

    def test_validation_classes_that_differ_name_both_sets(self):
        other = os.path.join(self.dir, "val")
        shutil.copytree(ws.data("tiny", "test"), other)
        shutil.rmtree(os.path.join(other, "9_ankle_boot"))
        os.rename(os.path.join(other, "0_t-shirt_top"), os.path.join(other, "shirts"))
        train = ws.data("tiny", "train")
        result = ws.run_worker(["train", "--train-data", train, "--validation-data", other])
        self.assertUsageError(
            result,
            f"--train-data {train} and --validation-data {other} have different classes: --train-data "
            "has 10 (0_t-shirt_top, 1_trouser, 2_pullover, 3_dress, 4_coat, 5_sandal, 6_shirt, 7_sneaker, "
            "8_bag, 9_ankle_boot), --validation-data has 9 (1_trouser, 2_pullover, 3_dress, 4_coat, "
            "5_sandal, 6_shirt, 7_sneaker, 8_bag, shirts)")

    def test_init_weights_must_be_a_model_folder_or_a_state_dict(self):
        not_model = os.path.join(self.dir, "empty")
        os.makedirs(not_model)
        self.assertUsageError(ws.run_worker(ws.train_args("tiny", "--init-weights", not_model)),
                              f"--init-weights {not_model}: not a model folder (no state_dict.pt)")
        missing = os.path.join(self.dir, "missing.pt")
        self.assertUsageError(ws.run_worker(ws.train_args("tiny", "--init-weights", missing)),
                              f"--init-weights {missing}: no such file")
        legacy = os.path.join(ws.SOURCE, "tests", "data", "train", "state_dict_legacy.pt")
        self.assertUsageError(
            ws.run_worker(ws.train_args("tiny", "--init-weights", legacy)),
            f"--init-weights {legacy}: saved in PyTorch's legacy format (before 1.6); load it in Python "
            "and save it again with torch.save(state_dict, path)")
        wrong = os.path.join(ws.SOURCE, "tests", "data", "train", "state_dict_plain.pt")
        result = ws.run_worker(ws.train_args("tiny", "--init-weights", wrong, "--output-dir",
                                             os.path.join(self.dir, "out")))
        self.assertEqual(result.returncode, 2)
        self.assertTrue(result.stderr.startswith(
            f"amlrun-worker: error: --init-weights {wrong}: does not fit resnet18 (missing conv1.weight, "),
            result.stderr)

    def test_fp16_needs_a_gpu(self):
        result = ws.run_worker(ws.train_args("tiny", "--precision", "fp16", "--device", "cpu",
                                             "--output-dir", os.path.join(self.dir, "out")))
        self.assertUsageError(result, "--precision fp16: needs a CUDA device (on CPU, autocast supports bf16 only)")

    def test_cuda_without_a_gpu_is_refused(self):
        result = ws.run_worker(ws.train_args("tiny", "--device", "cuda", "--output-dir",
                                             os.path.join(self.dir, "out")))
        self.assertUsageError(result, "--device cuda: no CUDA device (this LibTorch is built without CUDA, "
                                      "or no GPU is visible)")

    def test_an_output_folder_holding_a_run_is_not_overwritten(self):
        out = os.path.join(self.dir, "out")
        os.makedirs(os.path.join(out, "checkpoints"))
        with open(os.path.join(out, "checkpoints", "last.pt"), "w") as f:
            f.write("x")
        self.assertUsageError(
            ws.run_worker(ws.train_args("tiny", "--output-dir", out)),
            f"--output-dir {out}: already holds a run (checkpoints/last.pt); resume it with "
            f"'amlrun-worker continue {out}' or choose another --output-dir")

    def test_a_symbolic_link_in_the_output_folder_is_refused(self):
        out = os.path.join(self.dir, "out")
        elsewhere = os.path.join(self.dir, "elsewhere")
        os.makedirs(out)
        os.makedirs(elsewhere)
        os.symlink(elsewhere, os.path.join(out, "model"))
        self.assertUsageError(
            ws.run_worker(ws.train_args("tiny", "--output-dir", out)),
            f"--output-dir {out}: model is a symbolic link; amlrun-worker only writes inside the output folder")
        self.assertEqual(os.listdir(elsewhere), [])

    def test_training_images_that_are_all_unreadable_are_an_error(self):
        train = os.path.join(self.dir, "train")
        for name in ("a/0.png", "a/1.png", "b/0.jpg"):
            os.makedirs(os.path.dirname(os.path.join(train, name)), exist_ok=True)
            open(os.path.join(train, name), "w").close()
        out = os.path.join(self.dir, "out")
        result = ws.run_worker(["train", "--train-data", train, "--validation-data", train,
                                "--image-size", ws.IMAGE_SIZE, "--output-dir", out])
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(result.stderr.splitlines()[-1],
                         f"amlrun-worker: error: no readable training images in {train} "
                         f"(3 skipped: {train}/a/0.png: empty file, and 2 more)")
        self.assertEqual(result.stdout, "")
        self.assertFalse(os.path.exists(os.path.join(out, "model", "model.pt")))

    def test_a_single_class_trains_with_a_warning(self):
        train = os.path.join(self.dir, "train")
        shutil.copytree(os.path.join(ws.data("tiny", "train"), "1_trouser"),
                        os.path.join(train, "1_trouser"))
        out = os.path.join(self.dir, "out")
        result = ws.run_worker(["train", "--train-data", train, "--validation-data", train,
                                "--image-size", ws.IMAGE_SIZE, "--epochs", "1", "--output-dir", out],
                               cwd=self.dir)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(f"amlrun-worker: warning: --train-data {train} has a single class ('1_trouser'): "
                      "the model learns to predict it for every image\n", result.stderr)
        self.assertTrue(os.path.exists(os.path.join(out, "model", "model.pt")))

    def test_continue_needs_a_checkpoint(self):
        self.assertUsageError(ws.run_worker(["continue", self.dir]),
                              f"continue {self.dir}: no checkpoint to continue from (checkpoints/last.pt is missing)")
        self.assertUsageError(ws.run_worker(["continue"]),
                              "continue needs the output folder of the run to continue")

    def test_evaluate_needs_a_model_folder(self):
        self.assertUsageError(ws.run_worker(["evaluate", "--model-dir", self.dir, "--data", ws.data("tiny", "test")]),
                              f"--model-dir {self.dir}: not a model folder (model.pt is missing)")
        self.assertUsageError(ws.run_worker(["evaluate", "--data", ws.data("tiny", "test")]),
                              "--model-dir is required (the model/ folder of a training run)")


if __name__ == "__main__":
    unittest.main()
