"""amlrun-worker under Open MPI's mpirun: two ranks compute what one rank
computes with the same global batch, and a rank that dies or hangs ends the
whole job with a non-zero exit instead of a hang."""
import os
import re
import signal
import time
import unittest

import worker_support as ws


def tearDownModule():
    ws.remove_data_root()


class TwoRanksTest(ws.WorkerTest):
    dir_prefix = "amlrun-worker-mpi-"

    def relative_differences(self, initial, first, second):
        """The largest ||first - second|| / ||first - initial|| over the
        trained tensors of two checkpoints: how far the two runs' weights are
        apart, measured against how far training moved them."""
        worst = 0.0
        for name, value in first["model"].items():
            if not value.dtype.is_floating_point or name.endswith(("running_mean", "running_var")):
                continue
            update = (value - initial[name]).norm().item()
            apart = (value - second["model"][name]).norm().item()
            worst = max(worst, apart / (update + 1e-12))
        return worst

    def test_two_ranks_match_one_rank_with_the_same_global_batch(self):
        """1 rank × batch 16 against 2 ranks × batch 8, one epoch of three steps.

        Why --freeze-batch-norm: in training mode BatchNorm normalises with
        the statistics of the batch a rank sees, and a rank sees half of the
        global batch, so the two runs compute different functions (PyTorch DDP
        has the same property). With the statistics frozen (eval-mode
        BatchNorm, affine parameters still trained) both runs compute the same
        loss and gradient on the same 16 images per step, so only float
        rounding differs: the sum of per-sample gradients is formed in another
        order. The weights start from a trained model (real BatchNorm
        statistics), as in fine-tuning, where frozen statistics are common.

        Why few steps: ReLU and max-pooling switch on the sign or the order of
        activations, so rounding differences of 1e-8 eventually flip a switch
        and grow; after a handful of steps they are still far below the size
        of the weight updates, which is what the test measures against. How
        fast they grow depends on the CPU's kernels: on an AMD EPYC the two
        runs were 1.4e-4 of the update apart after 3 steps and 1.5e-2 after
        6, so the comparison is made after 3 (a global batch of 32 instead
        is 0.9 apart, far from either)."""
        base = os.path.join(self.dir, "base")
        result = ws.run_worker(ws.train_args("tiny", "--epochs", "1", "--output-dir", base), cwd=self.dir)
        self.assertEqual(result.returncode, 0, result.stderr)
        common = ws.train_args("tiny", "--epochs", "1", "--freeze-batch-norm", "--init-weights",
                               os.path.join(base, "model"), "--learning-rate", "0.01", "--threads", "1",
                               "--patience", "0")
        one = os.path.join(self.dir, "one")
        single = ws.run_worker(common + ["--batch-size", "16", "--output-dir", one], cwd=self.dir)
        self.assertEqual(single.returncode, 0, single.stderr)
        two = os.path.join(self.dir, "two")
        double = ws.run_mpi(2, common + ["--batch-size", "8", "--output-dir", two], cwd=self.dir)
        self.assertEqual(double.returncode, 0, double.stderr)
        self.assertIn("2 processes × 1 thread", double.stdout)
        self.assertIn("global batch 16", double.stdout)

        initial = ws.load(os.path.join(base, "model", "state_dict.pt"))
        first = ws.load(os.path.join(one, "checkpoints", "last.pt"))
        second = ws.load(os.path.join(two, "checkpoints", "last.pt"))
        self.assertEqual(first["global_step"], 3)
        self.assertEqual(second["global_step"], 3)
        close = self.relative_differences(initial, first, second)
        print(f"two ranks vs one: weights apart by {close:.2e} of the update", flush=True)
        self.assertLess(close, 1e-3)
        # The validation metrics, reduced over both ranks, agree as well.
        val = lambda out: [l.split(" | ")[1] for l in out.splitlines() if re.match(r"epoch \d+/\d+:", l)]
        self.assertEqual(val(single.stdout), val(double.stdout))

        # The comparison can fail: a global batch of 32 (2 × 16) trains differently.
        other = os.path.join(self.dir, "other")
        wrong = ws.run_mpi(2, common + ["--batch-size", "16", "--output-dir", other], cwd=self.dir)
        self.assertEqual(wrong.returncode, 0, wrong.stderr)
        third = ws.load(os.path.join(other, "checkpoints", "last.pt"))
        apart = self.relative_differences(initial, first, third)
        print(f"global batch 32 vs 16: weights apart by {apart:.2e} of the update", flush=True)
        self.assertGreater(apart, 0.05)

    def test_a_killed_rank_ends_the_job(self):
        job = ws.Background(ws.mpirun_command(2, ws.train_args("small", "--epochs", "50", "--output-dir",
                                                               os.path.join(self.dir, "out"))), cwd=self.dir)
        self.addCleanup(job.kill_everything)
        self.assertTrue(job.wait_for_output("resnet18 on cpu", timeout=120), job.output())
        ranks = ws.children_ranks(job.process.pid)
        self.assertEqual(sorted(ranks), [0, 1])
        started = time.monotonic()
        os.kill(ranks[1], signal.SIGKILL)
        code = job.wait(timeout=120)
        self.assertNotEqual(code, 0)
        self.assertLess(time.monotonic() - started, 60)

    def test_a_hung_rank_ends_the_job_after_the_collective_timeout(self):
        job = ws.Background(ws.mpirun_command(2, ws.train_args("small", "--epochs", "50", "--collective-timeout", "5",
                                                               "--output-dir", os.path.join(self.dir, "out"))),
                            cwd=self.dir)
        self.addCleanup(job.kill_everything)
        self.assertTrue(job.wait_for_output("resnet18 on cpu", timeout=120), job.output())
        ranks = ws.children_ranks(job.process.pid)
        started = time.monotonic()
        # A stopped process neither exits nor answers: only the watchdog can end the job.
        os.kill(ranks[1], signal.SIGSTOP)
        self.addCleanup(lambda: os.path.exists(f"/proc/{ranks[1]}") and os.kill(ranks[1], signal.SIGKILL))
        code = job.wait(timeout=120)
        self.assertNotEqual(code, 0)
        # Ended by the watchdog (its message below), well within a minute.
        self.assertLess(time.monotonic() - started, 60)
        self.assertRegex("".join(job.stderr),
                         r"amlrun-worker: rank 0: error: gradient allreduce \(bucket \d+ of \d+\) has waited \d+ s "
                         r"for the other ranks \(--collective-timeout 5\): a rank has died or hangs; ending the job")

    def test_an_input_error_on_every_rank_exits_2(self):
        result = ws.run_mpi(2, ["train", "--train-data", os.path.join(self.dir, "missing"), "--validation-data",
                                ws.data("tiny", "test")])
        self.assertEqual(result.returncode, 2)
        self.assertIn(f"--train-data {os.path.join(self.dir, 'missing')}: no such folder", result.stderr)


if __name__ == "__main__":
    unittest.main()
