"""Container mode end to end, with the machine's real Docker Engine: the
environment's image is built from amlrun's build context (FROM the local base
image of scripts/base-image.sh: nothing can be pulled here), cached by hash,
built once under concurrency; the job runs inside it as the submitting user
with the run's paths mounted where they are on the host; cancel and timeout
end the container, and no test leaves one behind.

Skipped, saying so, only where `docker info` fails. Every environment here
carries a random TEST_NONCE, so each test process builds its own
images (a first run is really a first build) and removes them at the end."""
import json
import os
import signal
import subprocess
import textwrap
import time
import unittest
import uuid

from amlrun_e2e import ProjectTest, kill_and_wait

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NONCE = uuid.uuid4().hex[:12]
BASE_IMAGE = None
IMAGES_BEFORE = set()


def docker(*args, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120,
                          check=check)


def docker_works():
    try:
        return docker("info", check=False).returncode == 0
    except OSError:
        return False


def amlrun_images():
    out = docker("images", "--filter", "reference=amlrun-env", "--format",
                 "{{.Repository}}:{{.Tag}}").stdout
    return set(out.split())


def setUpModule():
    global BASE_IMAGE, IMAGES_BEFORE
    if not docker_works():
        raise unittest.SkipTest("docker does not answer ('docker info' failed): the container "
                                "tests need a running Docker Engine")
    # Built once per machine (about 2 minutes), then found by its tag.
    result = subprocess.run([os.path.join(ROOT, "scripts", "base-image.sh")],
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise AssertionError("scripts/base-image.sh failed:\n" + result.stderr)
    BASE_IMAGE = result.stdout.strip().splitlines()[-1]
    IMAGES_BEFORE = amlrun_images()


def tearDownModule():
    if BASE_IMAGE is None:
        return
    made = sorted(amlrun_images() - IMAGES_BEFORE)
    if made:
        docker("rmi", "--force", *made, check=False)


class ContainerTest(ProjectTest):
    def setUp(self):
        super().setUp()
        with open(os.path.join(self.project.workspace, "config.yml"), "a") as f:
            f.write("environments:\n  runtime: docker\n  cpu_image: %s\n" % BASE_IMAGE)

    def tearDown(self):
        # No test leaves a container behind, finished or not.
        left = docker("ps", "--all", "--quiet", "--filter",
                      "label=org.amlrun.workspace=%s" % self.project.workspace).stdout.split()
        if left:
            docker("rm", "--force", *left, check=False)
        super().tearDown()
        self.assertEqual(left, [], "containers left behind")

    def containers(self):
        return docker("ps", "--all", "--format", "{{.Names}}", "--filter",
                      "label=org.amlrun.workspace=%s" % self.project.workspace).stdout.split()

    def facts(self, run_id):
        return self.project.show(run_id)["target"]["environment"]

    def build_log(self, run_id):
        with open(os.path.join(self.project.logs(run_id), "system", "env_build.txt")) as f:
            return f.read()

    def has_build_log(self, run_id):
        return os.path.exists(os.path.join(self.project.logs(run_id), "system", "env_build.txt"))

    def preparing_seconds(self, run_id):
        from datetime import datetime
        history = {h["state"]: h["at"] for h in self.project.show(run_id)["history"]}
        parse = lambda t: datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ")
        return (parse(history["Starting"]) - parse(history["Preparing"])).total_seconds()


class ImageTest(ContainerTest):
    def test_an_image_with_a_pip_package_from_pypi_is_built_once_then_a_cache_hit(self):
        self.project.write("src/use.py", """
            import os, six
            print("six", six.__version__, os.path.exists("/.dockerenv"), os.getcwd().endswith("/wd"))
            with open("outputs/result.txt", "w") as f:
                f.write("written in the container\\n")
        """)
        job = """
            source_directory: src
            entry_script: use.py
            custom_docker_image: %s
            pip_packages: [six==1.16.0]
            environment_variables: {TEST_NONCE: %s}
        """ % (BASE_IMAGE, NONCE)
        first = self.submit(job, timeout=600)
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertEqual(first.stdout, "six 1.16.0 True True\n")
        first_id = self.last_run()
        facts = self.facts(first_id)
        self.assertEqual(facts["mode"], "container")
        self.assertFalse(facts["cache_hit"])
        log = self.build_log(first_id)
        self.assertIn("$ docker build --network host --force-rm --tag amlrun-env:", log)
        self.assertIn("Successfully installed six-1.16.0", log)
        result = os.path.join(self.project.outputs(first_id), "result.txt")
        with open(result) as f:
            self.assertEqual(f.read(), "written in the container\n")
        self.assertEqual(os.stat(result).st_uid, os.getuid())

        second = self.submit(job, timeout=600)
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertEqual(second.stdout, "six 1.16.0 True True\n")
        second_id = self.last_run()
        self.assertTrue(self.facts(second_id)["cache_hit"])
        self.assertFalse(self.has_build_log(second_id))
        # A cache hit is one `docker image inspect`, not a build.
        self.assertLess(self.preparing_seconds(second_id), 1.0)
        self.assertEqual(self.containers(), [])

    def test_a_dockerfile_context_runs_as_the_submitting_user_with_read_only_inputs(self):
        # USER 4321 in the image: without --user the outputs would be 4321's.
        self.project.write("docker/Dockerfile", """
            FROM %s
            RUN echo "from the Dockerfile" > /built.txt
            ENV TEST_NONCE=%s
            USER 4321
        """ % (BASE_IMAGE, NONCE))
        self.project.write("data/numbers.txt", "1 2 3\n")
        self.project.write("src/job.py", """
            import os, sys
            print(open("/built.txt").read().strip(), os.getuid())
            path = sys.argv[1]
            print(open(os.path.join(path, "numbers.txt")).read().strip())
            try:
                open(os.path.join(path, "new.txt"), "w")
                print("input writable")
            except OSError as error:
                print("input read-only:", error.strerror)
            open("outputs/mine.txt", "w").write("x")
        """)
        result = self.submit("""
            code: ../src
            command: python job.py ${{inputs.data}}
            inputs:
              data: {type: uri_folder, path: ../data}
            environment:
              build: {path: ../docker}
        """, name="jobs/job.yml", timeout=600)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "from the Dockerfile %d\n1 2 3\n"
                                        "input read-only: Read-only file system\n" % os.getuid())
        run_id = self.last_run()
        mine = os.path.join(self.project.outputs(run_id), "mine.txt")
        self.assertEqual((os.stat(mine).st_uid, os.stat(mine).st_gid), (os.getuid(), os.getgid()))
        self.assertFalse(os.path.exists(os.path.join(self.project.root, "data", "new.txt")))

    def test_a_failing_build_fails_the_run_in_preparing_with_the_build_log(self):
        self.project.write("docker/Dockerfile", """
            FROM %s
            RUN echo "the build step of %s fails" && exit 3
        """ % (BASE_IMAGE, NONCE))
        result = self.submit("command: 'true'\nenvironment: {build: {path: docker}}\n", timeout=600)
        self.assertEqual(result.returncode, 1)
        record = self.project.show(self.last_run())
        self.assertEqual(record["state"], "Failed")
        self.assertEqual(record["failure_reason"], "preparing: docker build failed with exit code "
                                                   "3; see logs/system/env_build.txt")
        self.assertEqual([h["state"] for h in record["history"]],
                         ["Queued", "Preparing", "Finalizing", "Failed"])
        self.assertIn("the build step of %s fails" % NONCE, self.build_log(self.last_run()))

    def test_a_base_image_that_cannot_be_pulled_fails_clearly(self):
        image = "amlrun-no-such-image-%s:1" % NONCE
        result = self.submit("command: 'true'\nenvironment: {image: %s}\n" % image, timeout=600)
        self.assertEqual(result.returncode, 1)
        reason = self.project.show(self.last_run())["failure_reason"]
        # Between the parentheses: docker's own words (they name this machine's resolver).
        self.assertTrue(reason.startswith(
            "preparing: docker build failed: the base image %s is not on this machine and could "
            "not be pulled (" % image), reason)
        self.assertTrue(reason.endswith(
            "); build or load it here (scripts/base-image.sh makes a local one) and set "
            "environments.cpu_image or the job's image to its tag; see "
            "logs/system/env_build.txt"), reason)

    def test_a_conda_file_on_an_image_without_conda_fails_clearly(self):
        self.project.write("conda.yml", """
            channels: [conda-forge]
            dependencies: [python=3.11]
        """)
        result = self.submit("""
            command: 'true'
            environment:
              image: %s
              conda_file: conda.yml
            environment_variables: {TEST_NONCE: %s}
        """ % (BASE_IMAGE, NONCE), timeout=600)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(
            self.project.show(self.last_run())["failure_reason"],
            "preparing: docker build failed: the image %s has no conda, which conda_file and "
            "conda_packages need; name an image with conda (environment.image) or list the "
            "packages in pip_packages; see logs/system/env_build.txt" % BASE_IMAGE)

    def test_two_concurrent_runs_of_a_new_environment_build_it_once(self):
        job = """
            command: echo ran
            environment_variables: {TEST_NONCE: %s, WHICH: concurrent}
        """ % NONCE
        self.project.write("job.yml", job)
        runs = [self.project.amlrun("submit", "job.yml", "--no-wait") for _ in range(2)]
        ids = [r.stdout.strip() for r in runs]
        for run_id in ids:
            record = self.project.wait_for_state(run_id, ["Completed", "Failed", "Canceled"],
                                                 timeout=600)
            self.assertEqual(record["state"], "Completed", record.get("failure_reason"))
        self.assertEqual(sorted(self.facts(r)["cache_hit"] for r in ids), [False, True])
        self.assertEqual(sorted(self.has_build_log(r) for r in ids), [False, True])

    def test_variables_reach_the_container_verbatim(self):
        self.project.write("src/show.py", """
            import os
            print(repr(os.environ["TRICKY"]))
            print(os.environ["AMLRUN_RUN_ID"] == os.path.basename(os.path.dirname(os.getcwd())))
            print(os.environ["MLFLOW_TRACKING_URI"].startswith("http://127.0.0.1:"),
                  os.environ["MLFLOW_RUN_ID"] == os.environ["AMLRUN_RUN_ID"])
        """)
        result = self.submit("""
            code: src
            command: python show.py
            environment_variables:
              TEST_NONCE: %s
              TRICKY: "line one\\nline \\"two\\" $HOME 'x' \\t end"
        """ % NONCE, timeout=600)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "%r\nTrue\nTrue True\n"
                         % "line one\nline \"two\" $HOME 'x' \t end")

    def test_an_azureml_script_in_the_container_logs_into_the_run(self):
        # amlrun's azureml shim (mounted read-only, first on PYTHONPATH) and
        # the run's MLflow endpoint on the host's loopback (--network host).
        self.project.write("src/train.py", """
            from azureml.core import Run
            run = Run.get_context()
            for epoch in range(3):
                run.log("loss", 1.0 / (epoch + 1))
            run.tag("where", "container")
            with open("model.txt", "w") as f:
                f.write("weights")
            run.upload_file("outputs/model.txt", "model.txt")
            run.complete()
            print("logged")
        """)
        result = self.submit("""
            code: src
            command: python train.py
            environment_variables: {TEST_NONCE: %s}
        """ % NONCE, timeout=600)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "logged\n")
        run_id = self.last_run()
        shown = self.project.amlrun("metrics", run_id, "--output", "json")
        self.assertEqual(shown.returncode, 0, shown.stderr)
        points = json.loads(shown.stdout)["runs"][0]["metrics"]["loss"]
        self.assertEqual([(p["step"], p["value"]) for p in points],
                         [(0, 1.0), (1, 0.5), (2, 1.0 / 3)])
        self.assertEqual(self.project.show(run_id)["tags"], {"where": "container"})
        with open(os.path.join(self.project.outputs(run_id), "model.txt")) as f:
            self.assertEqual(f.read(), "weights")

    def test_env_build_then_env_show_says_built(self):
        self.project.write("job.yml", """
            command: 'true'
            environment_variables: {TEST_NONCE: %s, WHICH: env-build}
        """ % NONCE)
        before = self.project.amlrun("env", "show", "job.yml", "--output", "json")
        self.assertEqual(before.returncode, 0, before.stderr)
        info = json.loads(before.stdout)
        tag = "amlrun-env:" + info["hash"][:16]
        self.assertEqual(info["mode"], "container")
        self.assertEqual(info["image"], {"name": tag, "built": False})
        built = self.project.amlrun("env", "build", "job.yml", timeout=600)
        self.assertEqual(built.returncode, 0, built.stderr)
        self.assertEqual(built.stdout, tag + "\n")
        shown = self.project.amlrun("env", "show", "job.yml")
        self.assertIn("image      %s (built)\n" % tag, shown.stdout)
        again = self.project.amlrun("env", "build", "job.yml")
        self.assertEqual(again.stderr.splitlines()[-1], "amlrun: %s already exists" % tag)


class DistributedTest(ContainerTest):
    """Two processes in one container: `mpi` (mpirun of the image, inside
    it) and `pytorch` (each rank enters the container). The ranks meet over
    MASTER_ADDR:MASTER_PORT as torch.distributed would (no torch in the
    image: a socket)."""

    SCRIPT = """
        import os, signal, socket, sys, time
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        def on_term(*_):
            open("outputs/terminated_%d" % rank, "w").close()
            sys.exit(143)
        signal.signal(signal.SIGTERM, on_term)
        with open("outputs/mnt_ns_%d" % rank, "w") as f:
            f.write(os.readlink("/proc/self/ns/mnt"))
        address = (os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]))
        if rank == 0:
            server = socket.create_server(address)
            peer, _ = server.accept()
            heard = peer.recv(100).decode()
        else:
            for _ in range(200):
                try:
                    socket.create_connection(address).sendall(b"hello from rank 1")
                    break
                except OSError:
                    time.sleep(0.05)
            heard = "-"
        print("rank %d of %d" % (rank, world), os.environ["AMLRUN_METRICS_FILE"].rsplit("/", 1)[1],
              os.environ["MLFLOW_TRACKING_URI"].rsplit("/", 2)[1:], heard)
        if os.environ.get("FAIL_RANK") == str(rank):
            sys.exit(3)
        if os.environ.get("FAIL_RANK"):
            time.sleep(60)
    """

    def run_two(self, kind, extra=""):
        self.project.write("src/dist.py", self.SCRIPT)
        result = self.submit("""
            code: src
            command: python dist.py
            distribution: {type: %s, process_count_per_instance: 2}
            environment_variables: {TEST_NONCE: %s%s}
        """ % (kind, NONCE, extra), timeout=600)
        return result, self.last_run()

    def rank_log(self, run_id, rank):
        path = os.path.join(self.project.logs(run_id), "user_logs", "std_log_rank_%d.txt" % rank)
        with open(path) as f:
            return f.read()

    def assert_one_container(self, run_id):
        namespaces = set()
        for rank in (0, 1):
            with open(os.path.join(self.project.outputs(run_id), "mnt_ns_%d" % rank)) as f:
                namespaces.add(f.read())
        self.assertEqual(len(namespaces), 1, namespaces)
        self.assertNotIn(os.readlink("/proc/self/ns/mnt"), namespaces)

    def test_mpi_and_pytorch_run_two_processes_in_one_container(self):
        for kind in ("mpi", "pytorch"):
            with self.subTest(kind=kind):
                result, run_id = self.run_two(kind)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(self.rank_log(run_id, 0),
                                 "rank 0 of 2 rank_0.jsonl ['rank', '0'] hello from rank 1\n")
                self.assertEqual(self.rank_log(run_id, 1), "rank 1 of 2 rank_1.jsonl ['rank', '1'] -\n")
                self.assert_one_container(run_id)
                self.assertEqual(self.containers(), [])

    def test_a_failing_rank_ends_the_shared_container(self):
        start = time.time()
        result, run_id = self.run_two("pytorch", ", FAIL_RANK: '1'")
        self.assertEqual(result.returncode, 1, result.stderr)
        record = self.project.show(run_id)
        self.assertEqual(record["failure_reason"], "rank 1 exited with code 3; stopping the other ranks")
        # The other rank was asked first (SIGTERM inside the container), not killed outright.
        self.assertTrue(os.path.exists(os.path.join(self.project.outputs(run_id), "terminated_0")))
        self.assertLess(time.time() - start, 60)
        self.assertEqual(self.containers(), [])


class ContainerControlTest(ContainerTest):
    def setUp(self):
        super().setUp()
        # The image of these tests, built here once, so the timings below are the run's.
        self.job = textwrap.dedent("""
            command: python -c "import time; open('outputs/started', 'w').close(); time.sleep(60)"
            environment_variables: {TEST_NONCE: %s, WHICH: control}
        """ % NONCE)
        self.project.write("job.yml", self.job)
        built = self.project.amlrun("env", "build", "job.yml", timeout=600)
        self.assertEqual(built.returncode, 0, built.stderr)

    def wait_started(self, run_id):
        self.project.wait_for_state(run_id, ["Running"], timeout=60)
        started = os.path.join(self.project.workspace, "runs", run_id, "wd", "outputs", "started")
        deadline = time.time() + 60
        while not os.path.exists(started):
            self.assertLess(time.time(), deadline, "the job did not start in its container")
            time.sleep(0.05)
        self.assertEqual(self.containers(), ["amlrun-" + run_id])

    def test_cancel_ends_and_removes_the_container(self):
        run_id = self.project.amlrun("submit", "job.yml", "--no-wait").stdout.strip()
        self.wait_started(run_id)
        start = time.time()
        canceled = self.project.amlrun("cancel", run_id)
        self.assertEqual(canceled.returncode, 0, canceled.stderr)
        record = self.project.wait_for_state(run_id, ["Canceled", "Failed", "Completed"])
        self.assertEqual(record["state"], "Canceled")
        self.assertLess(time.time() - start, 15)
        self.assertEqual(self.containers(), [])

    def test_a_timeout_ends_and_removes_the_container(self):
        self.project.write("job.yml", self.job + "limits: {timeout: 3}\n")
        result = self.project.amlrun("submit", "job.yml", timeout=120)
        self.assertEqual(result.returncode, 1, result.stderr)
        record = self.project.show(self.last_run())
        self.assertEqual((record["state"], record["failure_reason"]), ("Failed", "timeout"))
        self.assertEqual(self.containers(), [])

    def test_a_killed_supervisor_leaves_no_container_once_seen(self):
        run_id = self.project.amlrun("submit", "job.yml", "--no-wait").stdout.strip()
        self.wait_started(run_id)
        with open(os.path.join(self.project.workspace, "runs", run_id, "run.json")) as f:
            supervisor = json.load(f)["target"]["supervisor_pid"]
        kill_and_wait(supervisor)
        record = self.project.show(run_id)
        self.assertEqual(record["state"], "Failed")
        self.assertEqual(self.containers(), [])

    def test_ctrl_c_detaches_and_stream_reattaches_to_the_container_run(self):
        self.project.write("job.yml", self.job.replace(
            "python -c \"import time; open('outputs/started', 'w').close(); time.sleep(60)\"",
            "bash -c 'echo first; sleep 2; echo second; exit 5'"))
        client = self.project.start("submit", "job.yml")
        self.addCleanup(client.stdout.close)
        self.addCleanup(client.stderr.close)
        self.assertEqual(client.stdout.readline(), "first\n")
        client.send_signal(signal.SIGINT)
        out, err = client.communicate(timeout=10)
        self.assertEqual(client.returncode, 130)
        run_id = self.last_run()
        self.assertIn("amlrun: detached from %s; the run goes on" % run_id, err)
        again = self.project.amlrun("stream", run_id)
        self.assertEqual(again.stdout, "first\nsecond\n")
        self.assertEqual(again.returncode, 1)
        record = self.project.show(run_id)
        self.assertEqual((record["exit_code"], record["failure_reason"]),
                         (5, "rank 0 exited with code 5"))
        self.assertEqual(self.containers(), [])

    def test_doctor_finds_and_removes_a_container_of_a_finished_run(self):
        self.project.write("job.yml", self.job.replace("time.sleep(60)", "None"))
        result = self.project.amlrun("submit", "job.yml", timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        # What a supervisor killed on a machine where nothing read the run
        # since would leave: a container of the run, still running.
        docker("run", "--detach", "--name", "amlrun-" + run_id, "--label",
               "org.amlrun.run=" + run_id, "--label",
               "org.amlrun.workspace=" + self.project.workspace, BASE_IMAGE, "sleep", "300")
        found = self.project.amlrun("doctor")
        self.assertEqual(found.returncode, 3, found.stderr)
        self.assertIn("problem: container amlrun-%s (running) belongs to run %s, which is no "
                      "longer running; amlrun doctor --repair will kill and remove it\n"
                      % (run_id, run_id), found.stdout)
        repaired = self.project.amlrun("doctor", "--repair")
        self.assertEqual(repaired.returncode, 0, repaired.stderr)
        self.assertIn("repaired: container amlrun-%s (running) belongs to run %s, which is no "
                      "longer running (kill and remove it)\n" % (run_id, run_id), repaired.stdout)
        self.assertEqual(self.containers(), [])


if __name__ == "__main__":
    unittest.main()
