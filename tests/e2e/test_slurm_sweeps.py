"""Sweeps on the real two-node Slurm test cluster: the controller runs on
this machine and each trial is a Slurm job, with the sweep's concurrency
and cancel."""
import time

from slurm_e2e import SlurmTest, final_job_state, slurm
from test_sweeps import TRIAL, last_sweep, max_overlap

PYTHON = "/usr/bin/python3"


class SlurmSweepTest(SlurmTest):
    def setUp(self):
        super().setUp()
        self.project.write("src/trial.py", TRIAL)

    def sweep(self):
        return last_sweep(self.project)

    def test_each_trial_is_a_slurm_job_within_the_concurrency(self):
        result = self.submit("""
            type: sweep
            compute: cluster
            trial:
              code: src
              command: %s trial.py --x ${{search_space.x}} --epochs 2 --sleep 0.5
            sampling_algorithm: grid
            search_space:
              x: {type: choice, values: [0.1, 0.3, 0.5, 0.9]}
            objective: {goal: minimize, primary_metric: loss}
            limits: {max_concurrent_trials: 2}
        """ % PYTHON, "--stream", timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        sweep = self.sweep()
        self.assertEqual(sweep["state"], "Completed")
        self.assertEqual(sweep["compute"], "cluster")
        trials = sweep["sweep"]["trials"]
        self.assertEqual(sweep["sweep"]["counts"], {"Completed": 4})
        self.assertEqual(trials[0]["params"], {"x": 0.3})
        self.assertEqual(sweep["sweep"]["best_trial"], trials[0]["id"])
        self.assertLessEqual(max_overlap(trials), 2)
        job_ids = set()
        for trial in trials:
            record = self.project.record(trial["id"])
            self.assertEqual(record["compute_type"], "slurm")
            job_ids.add(record["target"]["job_id"])
            self.assertEqual(final_job_state(record["target"]["job_id"]), "COMPLETED")
        self.assertEqual(len(job_ids), 4)
        self.assertIn("epoch 1 loss", self.project.rank_log(trials[0]["id"]))

    def test_cancel_ends_every_trial_job(self):
        self.project.write("job.yml", """
            type: sweep
            compute: cluster
            trial:
              code: src
              command: %s trial.py --x ${{search_space.x}} --epochs 200 --sleep 0.5
            sampling_algorithm: random
            search_space:
              x: {type: uniform, min_value: 0, max_value: 1}
            objective: {goal: minimize, primary_metric: loss}
            limits: {max_total_trials: 4, max_concurrent_trials: 2}
        """ % PYTHON)
        result = self.project.amlrun("submit", "job.yml", "--no-wait")
        self.assertEqual(result.returncode, 0, result.stderr)
        sweep_id = self.sweep()["id"]
        deadline = time.time() + 120
        while time.time() < deadline:
            trials = self.project.show(sweep_id)["sweep"]["trials"]
            if len(trials) == 2 and all(t["state"] == "Running" for t in trials):
                break
            time.sleep(0.5)
        else:
            self.fail("two trials did not start: %s" % trials)
        result = self.project.amlrun("cancel", sweep_id, timeout=180)
        self.assertEqual(result.returncode, 0, result.stderr)
        sweep = self.project.show(sweep_id)
        self.assertEqual(sweep["state"], "Canceled")
        self.assertEqual(sweep["sweep"]["counts"], {"Canceled": 2})
        for trial in sweep["sweep"]["trials"]:
            job_id = self.project.record(trial["id"])["target"]["job_id"]
            self.assertIn(final_job_state(job_id), ("CANCELLED", "COMPLETED"))
        queue = slurm("squeue", "-h", "-o", "%i").stdout.split()
        self.assertEqual(queue, [])
