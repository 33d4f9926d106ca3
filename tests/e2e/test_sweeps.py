"""Sweeps end to end on this machine: the real amlrun, its detached sweep
controller, trials as real runs with real processes."""
import json
import os
import signal
import time
import unittest

from amlrun_e2e import PYTHON, ProjectTest, kill_and_wait

# A trial: "loss" per epoch, lowest for x near 0.3; optional sleep, failure,
# and a marker file per run (to count how often each trial really ran).
TRIAL = """
import argparse, json, os, sys, time
p = argparse.ArgumentParser()
p.add_argument("--x", type=float, required=True)
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--sleep", type=float, default=0.0)
p.add_argument("--fail-above", type=float, default=None)
p.add_argument("--plateau-above", type=float, default=None)
a = p.parse_args()
marks = os.environ.get("MARK_DIR")
if marks:
    with open(os.path.join(marks, os.environ["AMLRUN_RUN_ID"]), "a") as f:
        f.write("ran\\n")
if a.fail_above is not None and a.x > a.fail_above:
    print("x too large", file=sys.stderr)
    sys.exit(3)
with open(os.environ["AMLRUN_METRICS_FILE"], "a") as sink:
    for epoch in range(a.epochs):
        if a.plateau_above is not None and a.x > a.plateau_above:
            loss = 5.0 + (a.x - 0.3) ** 2
        else:
            loss = (a.x - 0.3) ** 2 + 1.0 / (epoch + 1)
        sink.write(json.dumps({"name": "loss", "value": loss, "step": epoch}) + "\\n")
        sink.flush()
        print("epoch", epoch, "loss", round(loss, 4), flush=True)
        time.sleep(a.sleep)
"""

SHARED = os.path.join(os.environ.get("AMLRUN_SOURCE_DIR", os.path.join(os.path.dirname(__file__),
                                                                     "..", "..")),
                      "..", "shared", "compat", "azureml-sweep-jobs")


def processes_under(root):
    """Pids of the processes whose working directory is below root."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cwd = os.readlink("/proc/%s/cwd" % pid)
        except OSError:
            continue
        if cwd == root or cwd.startswith(root + "/"):
            found.append(int(pid))
    return found


def last_sweep(project):
    """The newest sweep of the project's workspace, as show prints it."""
    for run_id in reversed(project.run_ids()):
        record = project.show(run_id)
        if record.get("kind") == "sweep":
            return record
    raise AssertionError("no sweep run in the workspace")


def max_overlap(trials):
    """The most trials running at one moment, from their start and end times."""
    events = []
    for t in trials:
        if t["started"]:
            events.append((t["started"], 1))
            events.append((t["ended"], -1))
    events.sort(key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


class SweepTest(ProjectTest):
    def setUp(self):
        super().setUp()
        self.project.write("src/trial.py", TRIAL)

    def last_sweep(self):
        return last_sweep(self.project)

    def test_grid_sweep_runs_every_combination_and_names_the_best(self):
        result = self.submit("""
            type: sweep
            experiment_name: tune
            trial:
              code: src
              command: %s trial.py --x ${{search_space.x}} --epochs ${{search_space.epochs}}
            sampling_algorithm: grid
            search_space:
              x: {type: choice, values: [0.1, 0.3, 0.9]}
              epochs: {type: choice, values: [1, 2]}
            objective: {goal: minimize, primary_metric: loss}
            limits: {max_total_trials: 10, max_concurrent_trials: 2}
        """ % PYTHON, "--stream")
        self.assertEqual(result.returncode, 0, result.stderr)
        sweep = self.last_sweep()
        self.assertEqual(sweep["state"], "Completed")
        self.assertEqual(sweep["exit_code"], 0)
        trials = sweep["sweep"]["trials"]
        # The grid is exhausted after 6, below max_total_trials.
        self.assertEqual(len(trials), 6)
        self.assertEqual(sweep["sweep"]["counts"], {"Completed": 6})
        # Sorted by the objective; the best is x=0.3 with 2 epochs (loss 0.5).
        self.assertEqual(trials[0]["params"], {"x": 0.3, "epochs": 2})
        self.assertAlmostEqual(trials[0]["objective"], 0.5)
        self.assertEqual(sweep["sweep"]["best_trial"], trials[0]["id"])
        objectives = [t["objective"] for t in trials]
        self.assertEqual(objectives, sorted(objectives))
        # Grid order: the last parameter changes fastest; trial ids follow k.
        by_k = sorted(trials, key=lambda t: t["trial"])
        self.assertEqual([t["params"] for t in by_k],
                         [{"x": x, "epochs": e} for x in (0.1, 0.3, 0.9) for e in (1, 2)])
        self.assertEqual([t["id"] for t in by_k],
                         ["%s_%d" % (sweep["id"], k) for k in range(6)])
        self.assertLessEqual(max_overlap(trials), 2)
        # Trials are child runs of the sweep, with their own logs.
        child = self.project.show(trials[0]["id"])
        self.assertEqual(child["parent_id"], sweep["id"])
        self.assertEqual(child["display_name"], "trial %d" % trials[0]["trial"])
        with open(os.path.join(self.project.logs(trials[0]["id"]), "user_logs",
                               "std_log_rank_0.txt")) as f:
            self.assertEqual(f.read(), "epoch 0 loss 1.0\nepoch 1 loss 0.5\n")
        # What --stream printed: a line per start and end, then the winner.
        lines = result.stdout.splitlines()
        self.assertEqual(lines[0], "trial 0 started: x=0.1 epochs=1")
        self.assertIn("trial 3 Completed: loss 0.5 (best so far)", lines)
        self.assertEqual(lines[-2], "best trial 3 (%s_3): loss 0.5 with x=0.3 epochs=2"
                         % sweep["id"])
        self.assertEqual(lines[-1], "sweep Completed: 6 trials (6 Completed)")
        # show's text names the search and the trials, best first.
        text = self.project.amlrun("show", sweep["id"]).stdout
        self.assertIn("sampling         grid (6 combinations)\n", text)
        self.assertIn("objective        minimize loss\n", text)
        self.assertIn("limits           10 trials, 2 at once\n", text)
        self.assertIn("trials           6 (6 Completed)\n", text)
        self.assertIn("best trial       %s_3 (loss 0.5)\n" % sweep["id"], text)

    def test_bayesian_sweep_streams_every_trial_and_draws_its_parameters(self):
        result = self.submit("""
            type: sweep
            trial:
              code: src
              command: %s trial.py --x ${{search_space.x}} --epochs 2
            sampling_algorithm: bayesian
            search_space:
              x: {type: uniform, min_value: 0, max_value: 1}
            objective: {goal: minimize, primary_metric: loss}
            limits: {max_total_trials: 20, max_concurrent_trials: 2}
        """ % PYTHON, "--stream", "--all-trials", timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        sweep = self.last_sweep()
        trials = sweep["sweep"]["trials"]
        self.assertEqual(len(trials), 20)
        for trial in trials:
            self.assertTrue(0 <= trial["params"]["x"] <= 1)
        # The loss is (x - 0.3)^2 + 0.5. The first 3 trials are Sobol points,
        # spread over x; from trial 4 on (3 trials done at concurrency 2) the
        # Gaussian process proposes, mostly near x = 0.3 (expected
        # improvement also looks where it knows little). (How well it finds optima
        # is measured in tests/bench/bench_sweep_search.sh and the unit tests.)
        by_k = {t["trial"]: t["params"]["x"] for t in trials}
        distances = sorted(abs(by_k[k] - 0.3) for k in range(8, 20))
        # The median of 12 (of random points: below 0.1 0.4% of the time).
        self.assertLess((distances[5] + distances[6]) / 2, 0.1, by_k)
        # --all-trials: the sweep's lines and every trial's log, prefixed.
        lines = result.stdout.splitlines()
        self.assertTrue(any(line.startswith("[sweep] trial 0 started: x=") for line in lines))
        for k in range(20):
            self.assertIn("[trial %d] epoch 0 loss " % k, result.stdout)
        self.assertEqual(lines[-1], "[sweep] sweep Completed: 20 trials (20 Completed)")
        text = self.project.amlrun("show", sweep["id"]).stdout
        self.assertIn("sampling         bayesian (Gaussian process, seed ", text)
        # The trials' curves, and the parameters against the objective.
        chart = os.path.join(self.project.root, "sweep.svg")
        result = self.project.amlrun("metrics", sweep["id"], "--plot", "loss", "--plot-file", chart)
        self.assertEqual(result.returncode, 0, result.stderr)
        parallel = os.path.join(self.project.root, "sweep-parallel.svg")
        self.assertIn("amlrun: wrote %s (parallel coordinates of 20 trials)" % parallel,
                      result.stderr)
        with open(chart) as f:
            self.assertEqual(f.read().count('class="series"'), 20)
        with open(parallel) as f:
            svg = f.read()
        self.assertEqual(svg.count('class="trial"'), 20)
        for axis in ("x", "loss"):
            self.assertIn('data-axis="%s"' % axis, svg)

    def test_azure_sweep_files_run_unchanged(self):
        for name, trials in (("sweep-grid.yml", 6), ("sweep-random-sobol.yml", 8)):
            with self.subTest(name):
                result = self.project.amlrun("submit", os.path.join(SHARED, name), "--stream",
                                             timeout=300)
                self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
                sweep = self.last_sweep()
                self.assertEqual(sweep["state"], "Completed")
                self.assertEqual(len(sweep["sweep"]["trials"]), trials)
                self.assertEqual(sweep["experiment"], "sweep-examples")
                best = sweep["sweep"]["trials"][0]
                self.assertEqual(sweep["sweep"]["best_trial"], best["id"])
                self.assertIsNotNone(best["objective"])

    def test_random_sweep_is_repeatable_with_its_seed(self):
        job = """
            type: sweep
            trial:
              code: src
              command: %s trial.py --x ${{search_space.x}} --epochs 1
            sampling_algorithm: {type: random, seed: 5}
            search_space:
              x: {type: uniform, min_value: 0, max_value: 1}
            objective: {goal: minimize, primary_metric: loss}
            limits: {max_total_trials: 3, max_concurrent_trials: 3}
        """ % PYTHON
        params = []
        for _ in range(2):
            self.assertEqual(self.submit(job, "--stream").returncode, 0)
            trials = sorted(self.last_sweep()["sweep"]["trials"], key=lambda t: t["trial"])
            params.append([t["params"]["x"] for t in trials])
        self.assertEqual(params[0], params[1])
        self.assertEqual(len(set(params[0])), 3)

    def test_early_termination_is_recorded_with_the_policy(self):
        result = self.submit("""
            type: sweep
            trial:
              code: src
              command: >-
                %s trial.py --x ${{search_space.x}} --epochs 6 --sleep 0.4 --plateau-above 0.5
            sampling_algorithm: grid
            search_space:
              x: {type: choice, values: [0.3, 0.8]}
            objective: {goal: minimize, primary_metric: loss}
            early_termination: {type: bandit, slack_amount: 0.5, evaluation_interval: 1,
                                delay_evaluation: 1}
            limits: {max_total_trials: 2, max_concurrent_trials: 2}
        """ % PYTHON, "--stream", timeout=180)
        self.assertEqual(result.returncode, 0, result.stderr)
        sweep = self.last_sweep()
        by_x = {t["params"]["x"]: t for t in sweep["sweep"]["trials"]}
        self.assertEqual(by_x[0.3]["state"], "Completed")
        stopped = by_x[0.8]
        self.assertEqual(stopped["state"], "Canceled")
        self.assertTrue(stopped["reason"].startswith("early termination: bandit: "),
                        stopped["reason"])
        self.assertLess(stopped["reports"], 6)
        # The trial's own record says why, not "canceled by user".
        self.assertEqual(self.project.show(stopped["id"])["failure_reason"], stopped["reason"])
        self.assertIn("trial 1 ended by early termination: bandit: ", result.stdout)

    def test_failed_trials_do_not_end_the_sweep(self):
        job = """
            type: sweep
            trial:
              code: src
              command: %s trial.py --x ${{search_space.x}} --epochs 1 --fail-above %s
            sampling_algorithm: grid
            search_space:
              x: {type: choice, values: [0.2, 0.7]}
            objective: {goal: minimize, primary_metric: loss}
        """
        result = self.submit(job % (PYTHON, "0.5"), "--stream")
        self.assertEqual(result.returncode, 0, result.stderr)
        sweep = self.last_sweep()
        self.assertEqual(sweep["sweep"]["counts"], {"Completed": 1, "Failed": 1})
        failed = [t for t in sweep["sweep"]["trials"] if t["state"] == "Failed"][0]
        self.assertEqual(failed["params"], {"x": 0.7})
        self.assertIsNone(failed["objective"])
        self.assertEqual(failed["reason"], "rank 0 exited with code 3")

        # No trial logged the metric: the sweep fails and says why.
        result = self.submit(job % (PYTHON, "0.1"), "--stream")
        self.assertEqual(result.returncode, 1, result.stderr)
        sweep = self.last_sweep()
        self.assertEqual(sweep["state"], "Failed")
        self.assertEqual(sweep["failure_reason"],
                         "no trial logged the primary metric 'loss' (2 trials: 2 Failed)")
        self.assertIsNone(sweep["sweep"]["best_trial"])

    def test_cancel_ends_every_trial(self):
        self.project.write("job.yml", """
            type: sweep
            trial:
              code: src
              command: %s trial.py --x ${{search_space.x}} --epochs 100 --sleep 0.5
            sampling_algorithm: random
            search_space:
              x: {type: uniform, min_value: 0, max_value: 1}
            objective: {goal: minimize, primary_metric: loss}
            limits: {max_total_trials: 5, max_concurrent_trials: 2}
        """ % PYTHON)
        result = self.project.amlrun("submit", "job.yml", "--no-wait")
        self.assertEqual(result.returncode, 0, result.stderr)
        sweep_id = self.last_sweep()["id"]
        # Two trials running (each has logged a loss).
        deadline = time.time() + 60
        while time.time() < deadline:
            trials = self.project.show(sweep_id)["sweep"]["trials"]
            if len(trials) == 2 and all(t["reports"] > 0 for t in trials):
                break
            time.sleep(0.2)
        else:
            self.fail("two trials did not start")
        result = self.project.amlrun("cancel", sweep_id)
        self.assertEqual(result.returncode, 0, result.stderr)
        sweep = self.project.show(sweep_id)
        self.assertEqual(sweep["state"], "Canceled")
        self.assertEqual(sweep["failure_reason"], "canceled by user (amlrun cancel)")
        self.assertEqual(sweep["sweep"]["counts"], {"Canceled": 2})
        # No trial process is left.
        self.assertEqual(processes_under(self.project.root), [])
        # Stream of an ended sweep: its lines and the canceled ending.
        result = self.project.amlrun("stream", sweep_id)
        self.assertEqual(result.returncode, 4)
        self.assertIn("sweep ending: canceled by user (amlrun cancel)", result.stdout)

    def test_ctrl_c_leaves_the_sweep_running_and_stream_reattaches(self):
        self.project.write("job.yml", """
            type: sweep
            trial:
              code: src
              command: %s trial.py --x ${{search_space.x}} --epochs 3 --sleep 0.3
            sampling_algorithm: grid
            search_space:
              x: {type: choice, values: [0.1, 0.2, 0.3, 0.4]}
            objective: {goal: minimize, primary_metric: loss}
            limits: {max_concurrent_trials: 2}
        """ % PYTHON)
        client = self.project.start("submit", "job.yml", "--stream")
        first = client.stdout.readline()
        self.assertEqual(first, "trial 0 started: x=0.1\n")
        client.send_signal(signal.SIGINT)
        _, err = client.communicate(timeout=30)
        self.assertEqual(client.returncode, 130, err)
        sweep_id = self.last_sweep()["id"]
        self.assertIn("amlrun stream %s" % sweep_id, err)
        result = self.project.amlrun("stream", sweep_id, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(result.stdout.startswith("trial 0 started: x=0.1\n"), result.stdout)
        self.assertIn("sweep Completed: 4 trials (4 Completed)", result.stdout)

    def test_trial_and_sweep_timeouts(self):
        result = self.submit("""
            type: sweep
            trial:
              code: src
              command: %s trial.py --x ${{search_space.x}} --epochs 60 --sleep ${{search_space.s}}
            sampling_algorithm: grid
            search_space:
              x: {type: choice, values: [0.3]}
              s: {type: choice, values: [0.01, 1]}
            objective: {goal: minimize, primary_metric: loss}
            limits: {trial_timeout: 3, max_concurrent_trials: 2}
        """ % PYTHON, "--stream", timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        sweep = self.last_sweep()
        by_s = {t["params"]["s"]: t for t in sweep["sweep"]["trials"]}
        self.assertEqual(by_s[0.01]["state"], "Completed")
        self.assertEqual(by_s[1]["state"], "Failed")
        self.assertIn("timeout", by_s[1]["reason"])

        result = self.submit("""
            type: sweep
            trial:
              code: src
              command: %s trial.py --x ${{search_space.x}} --epochs 60 --sleep 0.5
            sampling_algorithm: random
            search_space:
              x: {type: uniform, min_value: 0, max_value: 1}
            objective: {goal: minimize, primary_metric: loss}
            limits: {timeout: 4, max_total_trials: 10, max_concurrent_trials: 1}
        """ % PYTHON, "--stream", timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        sweep = self.last_sweep()
        self.assertEqual(sweep["state"], "Completed")
        self.assertEqual(sweep["warnings"], ["timeout: the sweep's limit of 4 s was reached"])
        self.assertEqual(len(sweep["sweep"]["trials"]), 1)
        trial = sweep["sweep"]["trials"][0]
        self.assertEqual(trial["state"], "Canceled")
        self.assertEqual(trial["reason"], "timeout: the sweep's limit of 4 s was reached")
        duration = sweep["duration_seconds"]
        self.assertGreater(duration, 4)
        self.assertLess(duration, 20)

    def test_controller_killed_at_any_moment_resumes_without_repeats(self):
        marks = os.path.join(self.project.root, "marks")
        os.makedirs(marks)
        self.project.write("job.yml", """
            type: sweep
            trial:
              code: src
              command: %s trial.py --x ${{search_space.x}} --epochs 2 --sleep 0.2
              environment_variables: {MARK_DIR: %s}
            sampling_algorithm: random
            search_space:
              x: {type: uniform, min_value: 0, max_value: 1}
            objective: {goal: minimize, primary_metric: loss}
            limits: {max_total_trials: 8, max_concurrent_trials: 2}
        """ % (PYTHON, marks))
        result = self.project.amlrun("submit", "job.yml", "--no-wait")
        self.assertEqual(result.returncode, 0, result.stderr)
        sweep_id = self.last_sweep()["id"]
        record_path = os.path.join(self.project.workspace, "runs", sweep_id, "run.json")
        kills = 0
        deadline = time.time() + 120
        delays = [0.05, 0.3, 0.6, 0.15, 0.9, 0.4, 0.0, 0.7]
        while time.time() < deadline:
            with open(record_path) as f:
                record = json.load(f)
            if record["state"] in ("Completed", "Failed", "Canceled"):
                break
            pid = record.get("target", {}).get("controller_pid")
            time.sleep(delays[kills % len(delays)])
            if pid:
                try:
                    kill_and_wait(pid)
                    kills += 1
                except ProcessLookupError:
                    pass
            # The next amlrun command that looks at the sweep resumes it.
            self.project.amlrun("show", sweep_id, "--output", "json")
        sweep = self.project.show(sweep_id)
        self.assertEqual(sweep["state"], "Completed", sweep)
        self.assertGreaterEqual(kills, 3)
        trials = sweep["sweep"]["trials"]
        self.assertEqual(len(trials), 8)
        self.assertEqual(sorted(t["trial"] for t in trials), list(range(8)))
        # Every trial ran exactly once.
        ran = {}
        for name in os.listdir(marks):
            with open(os.path.join(marks, name)) as f:
                ran[name] = f.read().count("ran")
        self.assertEqual(ran, {t["id"]: 1 for t in trials})
        # A controller killed before its first write never recorded its
        # start, so there are at most kills + 1 starts, and resumes happened.
        self.assertGreaterEqual(sweep["target"]["controller_starts"], 2)
        self.assertLessEqual(sweep["target"]["controller_starts"], kills + 1)


if __name__ == "__main__":
    unittest.main()
