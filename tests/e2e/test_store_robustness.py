"""The store survives what happens to files: corrupt records, kill -9 in the
middle of writes, a lost index, a newer schema; amlrun doctor reports and
repairs."""
import json
import os
import random
import re
import signal
import subprocess
import time

from amlrun_e2e import AMLRUN, PYTHON, ProjectTest, clean_environment, kill_and_wait


class CorruptRecordTest(ProjectTest):
    def test_a_corrupt_run_json_marks_that_run_only(self):
        for _ in range(3):
            self.submit("command: 'true'\nexperiment_name: c\n")
        ids = self.project.run_ids()
        broken = ids[1]
        path = os.path.join(self.project.workspace, "runs", broken, "run.json")
        with open(path, "w") as f:
            f.write('{"format_version": 1, "id": "')
        listed = self.project.amlrun("runs", "list")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        rows = {line.split()[0]: line.split()[1] for line in listed.stdout.splitlines()[1:]}
        self.assertEqual(rows, {ids[0]: "Completed", broken: "Corrupt", ids[2]: "Completed"})
        self.assertRegex(listed.stderr, r"^amlrun: warning: run %s: %s is corrupt: .+ \(amlrun doctor "
                                        r"checks the workspace\)\n$" % (broken, path))
        as_json = json.loads(self.project.amlrun("runs", "list", "--output", "json").stdout)
        self.assertEqual([r["status"] for r in as_json], ["Completed", "Corrupt", "Completed"])
        self.assertTrue(as_json[1]["problem"].startswith(path + " is corrupt: "))
        show = self.project.amlrun("show", broken)
        self.assertEqual(show.returncode, 3)
        self.assertTrue(show.stderr.startswith("amlrun: error: %s is corrupt: " % path), show.stderr)
        self.assertEqual(self.project.amlrun("show", ids[0]).returncode, 0)
        doctor = self.project.amlrun("doctor", "--repair")
        self.assertEqual(doctor.returncode, 3)
        self.assertRegex(doctor.stdout, r"^problem: %s is corrupt: .+; restore %s from a backup, or "
                                        r"remove %s\n$" % (path, path, os.path.dirname(path)))
        self.assertEqual(doctor.stderr, "amlrun: doctor: checked 3 runs and 0 model versions in %s: 1 "
                                        "problem\n" % self.project.workspace)

    def test_a_newer_index_schema_is_refused_by_every_command(self):
        self.submit("command: 'true'\n")
        index = os.path.join(self.project.workspace, "index.db")
        subprocess.run(["sqlite3", index, "PRAGMA user_version = 9;"], check=True)
        for args in [("runs", "list"), ("show", self.last_run()), ("doctor",), ("model", "list")]:
            result = self.project.amlrun(*args)
            self.assertEqual(result.returncode, 3, args)
            self.assertEqual(result.stderr, "amlrun: error: the run index %s has schema version 9, newer "
                                            "than this amlrun understands (5); it was written by a newer "
                                            "amlrun: upgrade amlrun (the index was left untouched)\n" % index)


class LostIndexTest(ProjectTest):
    def test_doctor_rebuilds_a_lost_index(self):
        self.project.write("src/train.py", """
            import json, os
            os.makedirs("outputs/model", exist_ok=True)
            open("outputs/model/w.bin", "w").write("w")
            with open(os.environ["AMLRUN_METRICS_FILE"], "a") as f:
                for step in range(5):
                    f.write(json.dumps({"name": "loss", "value": 1.0 / (step + 1), "step": step}) + "\\n")
        """)
        result = self.submit("code: src\ncommand: %s train.py\ntags: {k: v}\n" % PYTHON)
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        self.assertEqual(self.project.amlrun("model", "register", "--name", "m", "--run", run_id,
                                             "--path", "outputs/model").returncode, 0)
        self.assertEqual(self.project.amlrun("model", "register", "--name", "m", "--run", run_id,
                                             "--path", "outputs/model").returncode, 0)
        before = self.project.show(run_id)
        for name in os.listdir(self.project.workspace):
            if name.startswith("index.db"):
                os.remove(os.path.join(self.project.workspace, name))
        self.assertEqual(self.project.amlrun("runs", "list").stdout, "")
        report = self.project.amlrun("doctor")
        self.assertEqual(report.returncode, 3)
        self.assertEqual(report.stdout,
                         "problem: run {0} is not in the index; amlrun doctor --repair will index it "
                         "from its run.json\n"
                         "problem: metrics of run {0} are not all in the index; amlrun doctor --repair "
                         "will ingest its sealed metrics files\n"
                         "problem: model m:1 is not in the index; amlrun doctor --repair will index it "
                         "from its manifest\n"
                         "problem: model m:2 is not in the index; amlrun doctor --repair will index it "
                         "from its manifest\n".format(run_id))
        self.assertEqual(report.stderr, "amlrun: doctor: checked 1 run and 0 model versions in %s: 4 "
                                        "problems; amlrun doctor --repair fixes 4 of them\n"
                         % self.project.workspace)
        repair = self.project.amlrun("doctor", "--repair")
        self.assertEqual(repair.returncode, 0, repair.stdout)
        self.assertEqual(repair.stdout.count("repaired: "), 4)
        self.assertEqual(repair.stderr, "amlrun: doctor: checked 1 run and 0 model versions in %s: "
                                        "repaired 4 problems\n" % self.project.workspace)
        clean = self.project.amlrun("doctor")
        self.assertEqual((clean.returncode, clean.stdout), (0, ""))
        self.assertEqual(clean.stderr, "amlrun: doctor: checked 1 run and 2 model versions in %s: no "
                                       "problems\n" % self.project.workspace)
        after = self.project.show(run_id)
        self.assertEqual(after["metrics"], before["metrics"])
        listed = json.loads(self.project.amlrun("runs", "list", "--tag", "k=v", "--output", "json").stdout)
        self.assertEqual([r["id"] for r in listed], [run_id])
        self.assertEqual(json.loads(self.project.amlrun("model", "show", "m", "--output", "json").stdout)
                         ["version"], "2")

    def test_a_run_folder_without_its_record(self):
        self.submit("command: 'true'\n")
        run_id = self.last_run()
        os.remove(os.path.join(self.project.workspace, "runs", run_id, "run.json"))
        report = self.project.amlrun("doctor")
        self.assertEqual(report.stdout, "problem: run %s is in the index but %s is missing; amlrun doctor "
                                        "--repair will drop it (and its metrics) from the index\n"
                         % (run_id, os.path.join(self.project.workspace, "runs", run_id, "run.json")))
        listed = self.project.amlrun("runs", "list")
        self.assertEqual(listed.stdout.splitlines()[1].split()[:2], [run_id, "Missing"])
        self.assertEqual(self.project.amlrun("doctor", "--repair").returncode, 0)
        self.assertEqual(self.project.amlrun("runs", "list", "--output", "json").stdout, "[]\n")


class KillDuringWritesTest(ProjectTest):
    """kill -9 at random moments of real writers; afterwards every command
    still reads the store, and doctor --repair leaves nothing to report."""

    def kill_at_random(self, argv_for, rounds):
        """Runs argv_for(0) to the end to time it, then rounds 1..rounds
        each killed at a random moment within 1.2 times that, so the kills
        land all through the write (and a few after it) on a fast machine
        and under a sanitizer alike. Returns how many ran to the end."""
        started = time.monotonic()
        first = subprocess.run(argv_for(0), cwd=self.project.root, capture_output=True,
                               env=clean_environment())
        self.assertEqual(first.returncode, 0, first.stderr)
        max_delay = 1.2 * (time.monotonic() - started)
        random.seed(4)
        finished = 1
        for i in range(1, rounds + 1):
            process = subprocess.Popen(argv_for(i), cwd=self.project.root, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, env=clean_environment())
            time.sleep(random.uniform(0, max_delay))
            process.send_signal(signal.SIGKILL)
            if process.wait() == 0:
                finished += 1
        return finished

    def test_runs_tag_killed_mid_write(self):
        self.submit("command: 'true'\n")
        run_id = self.last_run()
        self.kill_at_random(lambda i: [AMLRUN, "runs", "tag", run_id, "round=%d" % i], 40)
        with open(os.path.join(self.project.workspace, "runs", run_id, "run.json")) as f:
            record = json.load(f)  # whole, old or new
        self.assertEqual(record["state"], "Completed")
        listed = self.project.amlrun("runs", "list", "--output", "json")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertEqual(json.loads(listed.stdout)[0]["tags"], record["tags"])
        self.assertEqual(self.project.amlrun("show", run_id).returncode, 0)
        self.assertEqual(self.project.amlrun("runs", "tag", run_id, "final=yes").returncode, 0)
        repair = self.project.amlrun("doctor", "--repair")
        self.assertEqual(repair.returncode, 0, repair.stdout + repair.stderr)
        self.assertEqual(self.project.amlrun("doctor").returncode, 0)

    def test_model_register_killed_mid_write(self):
        folder = os.path.join(self.project.root, "big")
        os.makedirs(folder)
        for i in range(40):
            with open(os.path.join(folder, "part%02d.bin" % i), "wb") as f:
                f.write(os.urandom(256 * 1024))
        finished = self.kill_at_random(
            lambda i: [AMLRUN, "model", "register", "--name", "big", "--from", folder], 20)
        listed = self.project.amlrun("model", "list", "--name", "big", "--output", "json")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        versions = [v["version"] for v in json.loads(listed.stdout)]
        # Every registration that said so is recorded (and killed ones may be).
        self.assertGreaterEqual(len(versions), finished)
        for version in versions:  # every recorded version is whole
            dest = os.path.join(self.project.root, "check", version)
            result = self.project.amlrun("model", "download", "big:%s" % version, "-o", dest)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(len(os.listdir(dest)), 40)
        # What the killed registrations left in staging, aged past the hour
        # doctor gives a registration that may still be going.
        staging = os.path.join(self.project.workspace, "models", ".staging")
        an_hour_ago = time.time() - 7200
        for name in os.listdir(staging):
            os.utime(os.path.join(staging, name), (an_hour_ago, an_hour_ago))
        repair = self.project.amlrun("doctor", "--repair")
        self.assertEqual(repair.returncode, 0, repair.stdout + repair.stderr)
        self.assertNotIn("problem:", repair.stdout)
        self.assertEqual(os.listdir(staging), [])
        self.assertEqual(self.project.amlrun("doctor").returncode, 0)
        result = self.project.amlrun("model", "register", "--name", "big", "--from", folder)
        self.assertEqual(result.returncode, 0, result.stderr)
        numbers = sorted(int(v["version"]) for v in json.loads(
            self.project.amlrun("model", "list", "--name", "big", "--output", "json").stdout))
        self.assertEqual(len(numbers), len(set(numbers)))
        self.assertEqual(len(numbers), len(versions) + 1)
        self.assertEqual(numbers[-1], max([int(v) for v in versions], default=0) + 1)

    def test_a_killed_supervisor_leaves_metrics_readable(self):
        self.project.write("src/flood.py", """
            import json, os, time
            with open(os.environ["AMLRUN_METRICS_FILE"], "a") as f:
                for step in range(200000):
                    f.write('{"name": "loss", "value": %f, "step": %d}\\n' % (1.0 / (step + 1), step))
            time.sleep(60)
        """)
        self.project.write("job.yml", "code: src\ncommand: %s flood.py\n" % PYTHON)
        run_id = self.project.amlrun("submit", "job.yml", "--no-wait").stdout.strip()
        record = self.project.wait_for_state(run_id, ["Running"])
        deadline = time.time() + 20
        count = 0
        while time.time() < deadline and count == 0:
            out = json.loads(self.project.amlrun("show", run_id, "--output", "json").stdout)
            count = out["metrics"].get("loss", {}).get("count", 0)
            time.sleep(0.05)
        self.assertGreater(count, 0)
        kill_and_wait(record["target"]["supervisor_pid"])
        after = self.project.show(run_id)  # notices the lost supervisor
        self.assertEqual(after["state"], "Failed")
        points = json.loads(self.project.amlrun("metrics", run_id, "--output", "json").stdout)
        loss = points["runs"][0]["metrics"]["loss"]
        self.assertEqual(len(loss), after["metrics"]["loss"]["count"])
        self.assertEqual([p["step"] for p in loss], list(range(len(loss))))


class DamagedIndexTest(ProjectTest):
    """A damaged index.db: every command names it and says what to do;
    doctor --repair sets it aside and rebuilds the index from the files."""

    def make_history(self):
        self.project.write("src/train.py", """
            import json, os
            os.makedirs("outputs/model", exist_ok=True)
            open("outputs/model/w.bin", "w").write("w")
            with open(os.environ["AMLRUN_METRICS_FILE"], "a") as f:
                for step in range(3):
                    f.write(json.dumps({"name": "loss", "value": 1.0 / (step + 1), "step": step}) + "\\n")
        """)
        result = self.submit("code: src\ncommand: %s train.py\ntags: {team name: vision}\n" % PYTHON)
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        self.assertEqual(self.project.amlrun("runs", "tag", run_id, "later=yes").returncode, 0)
        for _ in range(2):
            registered = self.project.amlrun("model", "register", "--name", "m", "--run", run_id,
                                             "--path", "outputs/model", "--tag", "k=v")
            self.assertEqual(registered.returncode, 0, registered.stderr)
        return run_id

    def index(self):
        return os.path.join(self.project.workspace, "index.db")

    def checkpoint(self):
        # Whatever the write-ahead log holds goes into index.db first, so the
        # damage below is damage to the index.
        subprocess.run(["sqlite3", self.index(), "PRAGMA wal_checkpoint(TRUNCATE);"], check=True,
                       capture_output=True)

    def check_damaged_then_repaired(self, run_id, detail, doctor_detail):
        hint = ("run amlrun doctor --repair: it sets the file aside and rebuilds the index from "
                "the run and model folders")
        for args in [("runs", "list"), ("show", run_id), ("metrics", run_id),
                     ("runs", "tag", run_id, "later=yes"), ("model", "list"), ("model", "show", "m")]:
            result = self.project.amlrun(*args)
            self.assertEqual(result.returncode, 3, args)
            self.assertRegex(result.stderr, r"^amlrun: error: the run index %s is damaged \(%s\); %s\n$"
                             % (re.escape(self.index()), detail, re.escape(hint)))
        report = self.project.amlrun("doctor")
        self.assertEqual(report.returncode, 3)
        self.assertRegex(report.stdout, r"^problem: the index %s is damaged \(%s\); amlrun doctor --repair "
                                        r"will set it aside \(renamed, kept\) and rebuild the index from "
                                        r"the run folders and model manifests\n$"
                         % (re.escape(self.index()), doctor_detail))
        damaged = open(self.index(), "rb").read()
        repair = self.project.amlrun("doctor", "--repair")
        self.assertEqual(repair.returncode, 0, repair.stdout + repair.stderr)
        aside = [n for n in os.listdir(self.project.workspace)
                 if re.fullmatch(r"index\.db\.damaged-\d{8}T\d{6}", n)]
        self.assertEqual(len(aside), 1, os.listdir(self.project.workspace))
        self.assertEqual(open(os.path.join(self.project.workspace, aside[0]), "rb").read(), damaged)
        lines = repair.stdout.splitlines()
        self.assertRegex(lines[0], r"^repaired: the index %s is damaged \(%s\) \(set it aside as %s; the "
                                   r"index is rebuilt from the run folders and model manifests\)$"
                         % (re.escape(self.index()), doctor_detail,
                            re.escape(os.path.join(self.project.workspace, aside[0]))))
        self.assertEqual(lines[1:], [
            "repaired: run %s is not in the index (index it from its run.json)" % run_id,
            "repaired: metrics of run %s are not all in the index (ingest its sealed metrics files)"
            % run_id,
            "repaired: model m:1 is not in the index (index it from its manifest)",
            "repaired: model m:2 is not in the index (index it from its manifest)"])
        clean = self.project.amlrun("doctor")
        self.assertEqual((clean.returncode, clean.stdout), (0, ""), clean.stderr)
        record = self.project.show(run_id)
        self.assertEqual(record["tags"], {"later": "yes", "team name": "vision"})
        self.assertEqual(record["metrics"]["loss"]["count"], 3)
        listed = json.loads(self.project.amlrun("runs", "list", "--tag", "team name=vision",
                                                "--output", "json").stdout)
        self.assertEqual([r["id"] for r in listed], [run_id])
        model = json.loads(self.project.amlrun("model", "show", "m", "--output", "json").stdout)
        self.assertEqual((model["version"], model["tags"]), ("2", {"k": "v"}))
        self.assertEqual(self.project.amlrun("model", "download", "m:1", "-o", "got").returncode, 0)

    def test_garbage_in_place_of_the_index(self):
        run_id = self.make_history()
        self.checkpoint()
        for name in ("index.db-wal", "index.db-shm"):
            path = os.path.join(self.project.workspace, name)
            if os.path.exists(path):
                os.remove(path)
        with open(self.index(), "wb") as f:
            f.write(random.Random(3).randbytes(16384))
        self.check_damaged_then_repaired(run_id, "file is not a database", "file is not a database")

    def test_damaged_pages_after_a_valid_header(self):
        run_id = self.make_history()
        self.checkpoint()
        size = os.path.getsize(self.index())
        with open(self.index(), "r+b") as f:
            f.seek(4096)  # the first page (header and schema) stays whole
            f.write(b"\x5a" * (size - 4096))
        # Commands meet SQLite's own word; doctor's page check says which pages.
        self.check_damaged_then_repaired(run_id, "database disk image is malformed", r"Page \d+: .+")
