"""The model registry: register, list, show, download (verified), delete, and
concurrent registrations from real processes."""
import hashlib
import json
import os
import subprocess

from amlrun_e2e import AMLRUN, PYTHON, ProjectTest, clean_environment

TRAIN = """
import os
os.makedirs("outputs/model/sub", exist_ok=True)
open("outputs/model/weights.bin", "wb").write(b"w" * 5000)
open("outputs/model/sub/config.json", "w").write('{"layers": 3}')
open("outputs/metrics.txt", "w").write("acc 0.9")
"""


class ModelFixture(ProjectTest):
    """A run whose outputs hold a model folder."""

    def setUp(self):
        super().setUp()
        self.project.write("src/train.py", TRAIN)
        result = self.submit("code: src\ncommand: %s train.py\n" % PYTHON)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.run_id = self.last_run()

    def model(self, *args, **kwargs):
        return self.project.amlrun("model", *args, **kwargs)

    def register(self, *args):
        result = self.model("register", "--name", "mlp", "--run", self.run_id, "--path",
                            "outputs/model", *args)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result


class ModelTest(ModelFixture):
    def test_register_from_a_run_show_list_download(self):
        result = self.register("--tag", "acc=0.9", "--tag", "stage=dev", "--description", "first try")
        self.assertEqual(result.stdout, "mlp:1\n")
        self.assertEqual(result.stderr, "amlrun: registered model mlp version 1 (2 files, 4.9 KiB) from "
                                        "outputs/model of run %s\n" % self.run_id)
        self.assertEqual(self.register().stdout, "mlp:2\n")
        shown = json.loads(self.model("show", "mlp:1", "--output", "json").stdout)
        self.assertEqual(shown["tags"], {"acc": "0.9", "stage": "dev"})
        self.assertEqual(shown["description"], "first try")
        self.assertEqual(shown["source"], {"run": self.run_id, "path": "outputs/model"})
        self.assertEqual(shown["manifest"], [
            {"path": "sub/config.json", "size": 13,
             "sha256": hashlib.sha256(b'{"layers": 3}').hexdigest()},
            {"path": "weights.bin", "size": 5000, "sha256": hashlib.sha256(b"w" * 5000).hexdigest()}])
        self.assertEqual(json.loads(self.model("show", "mlp@latest", "--output", "json").stdout)["version"], "2")
        self.assertEqual(json.loads(self.model("show", "mlp", "--output", "json").stdout)["version"], "2")
        text = self.model("show", "mlp:1").stdout
        self.assertIn("model        mlp\nversion      1\n", text)
        self.assertIn("tags         acc=0.9, stage=dev\n", text)
        self.assertIn("  weights.bin      4.9 KiB  %s\n" % hashlib.sha256(b"w" * 5000).hexdigest()[:16], text)
        listed = self.model("list").stdout.splitlines()
        self.assertEqual(listed[0].split(), ["NAME", "LATEST", "VERSIONS", "UPDATED"])
        self.assertEqual(listed[1].split()[:3], ["mlp", "2", "2"])
        versions = json.loads(self.model("list", "--name", "mlp", "--output", "json").stdout)
        self.assertEqual([v["version"] for v in versions], ["2", "1"])
        dest = os.path.join(self.project.root, "got")
        downloaded = self.model("download", "mlp:1", "-o", dest)
        self.assertEqual(downloaded.returncode, 0, downloaded.stderr)
        self.assertEqual(downloaded.stderr, "amlrun: downloaded model mlp version 1 (2 files, 4.9 KiB, "
                                            "checksums verified) to %s\n" % dest)
        with open(os.path.join(dest, "sub/config.json")) as f:
            self.assertEqual(f.read(), '{"layers": 3}')

    def test_register_a_folder_with_an_explicit_version(self):
        folder = os.path.join(self.project.root, "exported")
        os.makedirs(folder)
        with open(os.path.join(folder, "model.onnx"), "w") as f:
            f.write("onnx")
        os.symlink("/etc/hostname", os.path.join(folder, "stray"))
        result = self.model("register", "--name", "onnx-model", "--from", folder, "--version", "2024.1")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "onnx-model:2024.1\n")
        self.assertEqual(result.stderr.splitlines()[0], "amlrun: warning: not registered: stray: a symbolic "
                                                        "link to /etc/hostname, outside %s" % folder)
        duplicate = self.model("register", "--name", "onnx-model", "--from", folder, "--version", "2024.1")
        self.assertEqual(duplicate.returncode, 2)
        self.assertEqual(duplicate.stderr, "amlrun: error: model onnx-model already has a version "
                                           "2024.1; give another --version, or leave it out for the "
                                           "next number\n")
        self.assertEqual(self.model("register", "--name", "onnx-model", "--from", folder).stdout,
                         "onnx-model:1\n")

    def test_a_tampered_file_fails_the_download_naming_it(self):
        self.register()
        stored = os.path.join(self.project.workspace, "models", "mlp", "1", "files", "weights.bin")
        with open(stored, "r+b") as f:
            f.write(b"X")
        dest = os.path.join(self.project.root, "got")
        result = self.model("download", "mlp:1", "-o", dest)
        self.assertEqual(result.returncode, 3)
        self.assertEqual(result.stderr,
                         "amlrun: error: model mlp:1: weights.bin is damaged: its sha256 is %s, the "
                         "manifest says %s; the registry copy was changed after registration: register "
                         "the model again\n" % (hashlib.sha256(b"X" + b"w" * 4999).hexdigest(),
                                                hashlib.sha256(b"w" * 5000).hexdigest()))
        self.assertFalse(os.path.exists(os.path.join(dest, "weights.bin")))

    def test_delete(self):
        self.register()
        self.register()
        result = self.model("delete", "mlp:1")
        self.assertEqual((result.returncode, result.stderr), (0, "amlrun: deleted model mlp version 1\n"))
        self.assertFalse(os.path.exists(os.path.join(self.project.workspace, "models", "mlp", "1")))
        self.assertEqual([v["version"] for v in json.loads(
            self.model("list", "--name", "mlp", "--output", "json").stdout)], ["2"])
        self.assertEqual(self.register().stdout, "mlp:3\n")
        for ref, message in [
                ("mlp", "model delete mlp: name the version to delete, as NAME:VERSION (amlrun model "
                        "list --name mlp shows them)"),
                ("mlp:1", "model mlp has no version 1; its versions are 2, 3"),
                ("mpl:2", "no model 'mpl' in the registry (did you mean 'mlp'?); amlrun model list "
                          "shows them")]:
            result = self.model("delete", ref)
            self.assertEqual(result.returncode, 2, ref)
            self.assertEqual(result.stderr, "amlrun: error: %s\n" % message)

    def test_usage_errors(self):
        folder = os.path.join(self.project.root, "empty")
        os.makedirs(folder)
        for args, message in [
                (("--name", "m"), "model register: give --run ID --path PATH, or --from DIR"),
                (("--name", "m", "--run", self.run_id), "model register: --run needs --path (e.g. "
                                                        "--path outputs/model)"),
                (("--name", "m", "--path", "outputs"), "model register: --path needs --run ID (the "
                                                       "run to take it from)"),
                (("--name", "m", "--from", folder, "--run", self.run_id, "--path", "outputs"),
                 "model register: give --run ID --path PATH, or --from DIR"),
                (("--name", "../m", "--from", folder), "invalid model name '../m': use 1-128 "
                                                       "characters from [A-Za-z0-9._-], starting with "
                                                       "a letter or digit"),
                (("--name", "m", "--from", folder, "--version", "a/b"),
                 "invalid model version 'a/b': use 1-128 characters from [A-Za-z0-9._-], starting "
                 "with a letter or digit"),
                (("--name", "m", "--from", folder), "nothing to register: %s holds no files" % folder),
                (("--name", "m", "--from", "nowhere"), "--from nowhere: no such file or folder"),
                (("--name", "m", "--from", ".amlrun"), "--from .amlrun is inside the workspace; "
                                                       "register a run's files with --run ID --path ..."),
                (("--name", "m", "--run", self.run_id, "--path", "outputs/nope"),
                 "--path outputs/nope: run %s has no such file or folder (did you mean "
                 "'outputs/model'?)" % self.run_id),
                (("--name", "m", "--run", self.run_id, "--path", "../run.json"),
                 "--path: '../run.json' leaves %s; give a path inside it"
                 % os.path.join(self.project.workspace, "runs", self.run_id, "artifacts"))]:
            result = self.model("register", *args)
            self.assertEqual(result.returncode, 2, args)
            self.assertEqual(result.stderr, "amlrun: error: %s\n" % message)
        for args, message in [
                (("show", "mlp@3"), "invalid model reference 'mlp@3': '@' can only be followed by "
                                    "'latest' (NAME:VERSION picks a version)"),
                (("show", "mlp"), "no model 'mlp' in the registry; amlrun model list shows them"),
                (("list", "--name", "mlp"), "no model 'mlp' in the registry; amlrun model list shows "
                                            "them"),
                (("lst",), "unknown command 'amlrun model lst' (did you mean 'list'?); the model "
                           "commands are register, list, show, download, delete")]:
            result = self.model(*args)
            self.assertEqual(result.returncode, 2, args)
            self.assertEqual(result.stderr, "amlrun: error: %s\n" % message)

    def test_a_running_run_cannot_be_registered_from(self):
        self.project.write("src/wait.py", """
            import os, time
            while not os.path.exists(os.path.join(os.environ["AMLRUN_WORKSPACE"], "..", "go")):
                time.sleep(0.02)
        """)
        self.project.write("job.yml", "code: src\ncommand: %s wait.py\n" % PYTHON)
        run_id = self.project.amlrun("submit", "job.yml", "--no-wait").stdout.strip()
        self.project.wait_for_state(run_id, ["Running"])
        result = self.model("register", "--name", "m", "--run", run_id, "--path", "outputs")
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr, "amlrun: error: run %s is Running: register a model once the "
                                        "run has ended (amlrun stream %s waits for it)\n" % (run_id, run_id))
        open(os.path.join(self.project.root, "go"), "w").close()
        self.project.wait_for_state(run_id, ["Completed"])

    def test_twenty_concurrent_registrations_get_twenty_consecutive_versions(self):
        processes = [subprocess.Popen([AMLRUN, "model", "register", "--name", "shared", "--run",
                                       self.run_id, "--path", "outputs/model", "--tag", "writer=%d" % i],
                                      cwd=self.project.root, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=clean_environment())
                     for i in range(20)]
        outputs = [p.communicate(timeout=120) for p in processes]
        for process, (out, err) in zip(processes, outputs):
            self.assertEqual(process.returncode, 0, err)
        versions = sorted(int(out.strip().split(":")[1]) for out, _ in outputs)
        self.assertEqual(versions, list(range(1, 21)))
        listed = json.loads(self.model("list", "--name", "shared", "--output", "json").stdout)
        self.assertEqual(sorted(int(v["version"]) for v in listed), list(range(1, 21)))
        # Each version has its own folder, its writer's tag, and downloads intact.
        writers = set()
        for version in range(1, 21):
            shown = json.loads(self.model("show", "shared:%d" % version, "--output", "json").stdout)
            writers.add(shown["tags"]["writer"])
            self.assertEqual(len(shown["manifest"]), 2)
        self.assertEqual(len(writers), 20)
        self.assertEqual(sorted(os.listdir(os.path.join(self.project.workspace, "models", "shared"))),
                         sorted(str(v) for v in range(1, 21)))
        self.assertEqual(os.listdir(os.path.join(self.project.workspace, "models", ".staging")), [])
        doctor = self.project.amlrun("doctor")
        self.assertEqual(doctor.returncode, 0, doctor.stdout + doctor.stderr)


class TextTest(ModelFixture):
    def nothing_left(self):
        self.assertFalse(os.path.exists(os.path.join(self.project.workspace, "models", "m")))
        staging = os.path.join(self.project.workspace, "models", ".staging")
        self.assertEqual(os.listdir(staging) if os.path.isdir(staging) else [], [])
        self.assertEqual(self.model("list", "--output", "json").stdout, "[]\n")

    def test_text_that_is_not_utf8_is_refused_naming_it(self):
        folder = os.path.join(self.project.root, "weights")
        os.makedirs(folder)
        with open(os.path.join(folder, "w.bin"), "w") as f:
            f.write("w")
        for args, message in [
                (("--description", b"\xff"), "--description: '\\xff' is not valid UTF-8 (byte 1 is "
                                             "0xff); amlrun stores text as UTF-8"),
                (("--tag", b"a=\xff"), "invalid value for tag 'a': use at most 1024 characters of "
                                       "UTF-8 text, without control characters (the value is '\\xff')"),
                (("--tag", b"\xfe=v"), "invalid tag key '\\xfe': use 1-128 characters of UTF-8 text, "
                                       "without '=' or control characters")]:
            result = self.model("register", "--name", "m", "--from", folder, *args)
            self.assertEqual(result.returncode, 2, args)
            self.assertEqual(result.stderr, "amlrun: error: %s\n" % message)
            self.nothing_left()
        with open(os.path.join(os.fsencode(folder), b"bad\xffname.bin"), "w") as f:
            f.write("x")
        result = self.model("register", "--name", "m", "--from", folder)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr, "amlrun: error: cannot register %s: the name 'bad\\xffname.bin' is "
                                        "not valid UTF-8; rename it (a model's manifest lists its files "
                                        "as UTF-8 text)\n" % folder)
        self.nothing_left()

    def test_control_characters_are_stored_and_shown_escaped(self):
        result = self.register("--description", "two\nlines\x1b[2J", "--tag", "a b=c")
        text = self.model("show", "mlp:1").stdout
        self.assertIn("\ndescription  two\\nlines\\x1b[2J\n", text)
        self.assertIn("\ntags         a b=c\n", text)
        self.assertNotIn("\x1b", text)
        shown = json.loads(self.model("show", "mlp:1", "--output", "json").stdout)
        self.assertEqual(shown["description"], "two\nlines\x1b[2J")  # kept as given

    def test_a_file_replaced_by_a_link_is_named_never_followed(self):
        self.register()
        stored = os.path.join(self.project.workspace, "models", "mlp", "1", "files", "weights.bin")
        secret = os.path.join(self.project.root, "secret.bin")
        with open(secret, "wb") as f:
            f.write(b"w" * 5000)  # the same bytes: only the link gives it away
        os.remove(stored)
        os.symlink(secret, stored)
        dest = os.path.join(self.project.root, "got")
        result = self.model("download", "mlp:1", "-o", dest)
        self.assertEqual(result.returncode, 3)
        self.assertEqual(result.stderr, "amlrun: error: model mlp:1: weights.bin was replaced by a symbolic "
                                        "link to %s (%s), which is never followed; the registry copy is "
                                        "damaged: register the model again\n" % (secret, stored))
        self.assertFalse(os.path.exists(os.path.join(dest, "weights.bin")))


class ProjectFolderTest(ProjectTest):
    def test_registering_the_project_folder_skips_the_workspace(self):
        self.project.write("model.txt", "weights")
        result = self.project.amlrun("model", "register", "--name", "proj", "--from", ".")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("amlrun: warning: not registered: .amlrun: the amlrun workspace (never copied into "
                      "itself)\n", result.stderr)
        shown = json.loads(self.project.amlrun("model", "show", "proj", "--output", "json").stdout)
        self.assertEqual([f["path"] for f in shown["manifest"]], ["model.txt"])
        inside = os.path.join(self.project.workspace, "x")
        download = self.project.amlrun("model", "download", "proj", "-o", inside)
        self.assertEqual(download.returncode, 2)
        self.assertEqual(download.stderr, "amlrun: error: %s is inside the workspace %s; choose a "
                                          "directory outside it\n" % (inside, self.project.workspace))
