"""MLflow tracking: unchanged scripts that log with the real MLflow client
(mlflow-skinny, from a venv the set-up makes once) land their params,
metrics, tags and artifacts in the run; the endpoint answers bad input with
MLflow's errors and stores nothing of it."""
import json
import os
import subprocess
import textwrap
import threading
import urllib.error
import urllib.request

from amlrun_e2e import ProjectTest

SOURCE = os.environ.get("AMLRUN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
VENV = os.environ.get("AMLRUN_TRACKING_VENV",
                      os.path.expanduser("~/.cache/amlrun/venv-mlflow-skinny"))
PYTHON = os.path.join(VENV, "bin", "python")


def setUpModule():
    # The real client, made once and reused (scripts/common.sh).
    subprocess.run(["bash", "-c", "source scripts/common.sh && ensure_tracking_venv"],
                   cwd=SOURCE, check=True, env=dict(os.environ, AMLRUN_TRACKING_VENV=VENV))


# A script that asks the endpoint over plain HTTP (what a misbehaving or
# hostile client would send), printing one JSON line per request:
# {"status": ..., "body": ...}.
RAW_CLIENT = r'''
import json, os, sys, urllib.request, urllib.error
base = os.environ["MLFLOW_TRACKING_URI"]
token = os.environ["MLFLOW_TRACKING_TOKEN"]
def call(method, path, body=None, raw=None, auth=True, headers=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if auth is True:
        request.add_header("Authorization", "Bearer " + token)
    elif auth:
        request.add_header("Authorization", "Bearer " + auth)
    for k, v in (headers or {}).items():
        request.add_header(k, v)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
'''


class TrackingTest(ProjectTest):
    def run_script(self, script, extra_job="", timeout=300):
        self.project.write("src/train.py", script)
        job = "code: src\ncommand: %s train.py\nexperiment_name: track\n%s" % (
            PYTHON, textwrap.dedent(extra_job))
        result = self.submit(job, timeout=timeout)
        # The newest run without a parent: a nested run's folder may be newer.
        tops = [r for r in self.project.run_ids() if self.project.show(r).get("parent_id") is None]
        return result, tops[-1]

    def log_of(self, run_id, rank=0):
        with open(os.path.join(self.project.logs(run_id), "user_logs",
                               "std_log_rank_%d.txt" % rank)) as f:
            return f.read()

    def metrics(self, run_id, *args):
        result = self.project.amlrun("metrics", run_id, "--output", "json", *args)
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)["runs"][0]["metrics"]

    def test_params_metrics_tags_and_artifacts_from_one_process(self):
        result, run_id = self.run_script("""
            import os, mlflow
            with mlflow.start_run() as run:
                assert run.info.run_id == os.environ["AMLRUN_RUN_ID"], run.info.run_id
                mlflow.log_param("lr", 0.01)
                mlflow.log_params({"epochs": 3, "model": "resnet18"})
                for step in range(3):
                    mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
                mlflow.log_metric("acc", float("nan"), step=0)
                mlflow.set_tag("team", "vision")
                with open("notes.txt", "w") as f:
                    f.write("hello")
                mlflow.log_artifact("notes.txt")
                mlflow.log_artifact("notes.txt", artifact_path="sub/dir")
                mlflow.log_dict({"a": 1}, "config/settings.json")
                print("artifact uri", mlflow.get_artifact_uri())
                print("listed", sorted(f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id)))
            """)
        self.assertEqual(result.returncode, 0, result.stderr + self.log_of(run_id))
        shown = self.project.show(run_id)
        self.assertEqual(shown["params"], {"epochs": "3", "lr": "0.01", "model": "resnet18"})
        self.assertEqual(shown["tags"], {"team": "vision"})
        self.assertEqual(self.metrics(run_id)["loss"],
                         [{"step": 0, "value": 1.0, "rank": 0}, {"step": 1, "value": 0.5, "rank": 0},
                          {"step": 2, "value": 1.0 / 3, "rank": 0}])
        self.assertEqual(self.metrics(run_id)["acc"], [{"step": 0, "value": "NaN", "rank": 0}])
        outputs = self.project.outputs(run_id)
        with open(os.path.join(outputs, "notes.txt")) as f:
            self.assertEqual(f.read(), "hello")
        with open(os.path.join(outputs, "sub", "dir", "notes.txt")) as f:
            self.assertEqual(f.read(), "hello")
        with open(os.path.join(outputs, "config", "settings.json")) as f:
            self.assertEqual(json.load(f), {"a": 1})
        log = self.log_of(run_id)
        self.assertIn("artifact uri mlflow-artifacts:/%s/outputs" % run_id, log)
        self.assertIn("listed ['config', 'notes.txt', 'sub']", log)
        listed = self.project.amlrun("runs", "list", "--tag", "team=vision", "--output", "json")
        self.assertEqual([r["id"] for r in json.loads(listed.stdout)], [run_id])
        text = self.project.amlrun("show", run_id)
        self.assertIn("params           epochs=3, lr=0.01, model=resnet18\n", text.stdout)

    def test_an_experiment_name_with_a_dot_gives_a_run_id_the_client_takes(self):
        # MLflow's client refuses a run id with '.' (its _validate_run_id):
        # amlrun writes the experiment's '.' as '-' in the id it makes.
        self.project.write("src/train.py", textwrap.dedent("""
            import os, mlflow
            with mlflow.start_run() as run:
                assert run.info.run_id == os.environ["AMLRUN_RUN_ID"], run.info.run_id
                mlflow.log_param("lr", 0.1)
                print("experiment", mlflow.get_experiment(run.info.experiment_id).name)
            """))
        result = self.submit("code: src\ncommand: %s train.py\nexperiment_name: cifar.v2\n" % PYTHON)
        run_id = self.last_run()
        self.assertEqual(result.returncode, 0, result.stderr + self.log_of(run_id))
        self.assertTrue(run_id.startswith("cifar-v2_"), run_id)
        shown = self.project.show(run_id)
        self.assertEqual(shown["experiment"], "cifar.v2")
        self.assertEqual(shown["params"], {"lr": "0.1"})
        self.assertIn("experiment cifar.v2\n", self.log_of(run_id))

    def test_runs_list_filters_by_param_value_or_presence(self):
        ids = []
        for lr in ("0.1", "0.01"):
            result, run_id = self.run_script("""
                import mlflow
                mlflow.log_param("lr", %r)
                """ % lr)
            self.assertEqual(result.returncode, 0, result.stderr + self.log_of(run_id))
            ids.append(run_id)
        result, plain = self.run_script("print('no params')\n")
        self.assertEqual(result.returncode, 0, result.stderr)

        def listed(*args):
            result = self.project.amlrun("runs", "list", "--output", "json", *args)
            self.assertEqual(result.returncode, 0, result.stderr)
            return [row["id"] for row in json.loads(result.stdout)]
        self.assertEqual(listed("--param", "lr=0.1"), [ids[0]])
        self.assertEqual(listed("--param", "lr"), [ids[1], ids[0]])
        self.assertEqual(listed("--param", "lr", "--experiment", "track", "--param", "lr=0.01"),
                         [ids[1]])
        self.assertEqual(listed("--param", "lr=1"), [])
        none = self.project.amlrun("runs", "list", "--param", "epochs")
        self.assertEqual((none.returncode, none.stdout, none.stderr), (0, "", "amlrun: no runs match\n"))
        bad = self.project.amlrun("runs", "list", "--param", "=0.1")
        self.assertEqual(bad.returncode, 2)
        self.assertEqual(bad.stderr, "amlrun: error: invalid param filter '=0.1': write name=value, "
                         "or name for any value (a name of 1-250 characters, without control "
                         "characters)\n")

    def test_two_processes_log_with_their_ranks(self):
        result, run_id = self.run_script("""
            import os, mlflow
            rank = int(os.environ["RANK"])
            with mlflow.start_run():
                mlflow.log_param("world", os.environ["WORLD_SIZE"])
                mlflow.log_metric("loss", 10 + rank, step=0)
                mlflow.log_metric("rank_%d_only" % rank, 1, step=0)
            """, extra_job="""
            distribution:
              type: pytorch
              process_count_per_instance: 2
            """)
        self.assertEqual(result.returncode, 0, result.stderr + self.log_of(run_id))
        metrics = self.metrics(run_id)
        self.assertEqual(sorted((p["rank"], p["value"]) for p in metrics["loss"]), [(0, 10), (1, 11)])
        self.assertEqual(metrics["rank_1_only"], [{"step": 0, "value": 1, "rank": 1}])
        self.assertEqual(self.project.show(run_id)["params"], {"world": "2"})

    def test_log_batch_of_ten_thousand_points(self):
        result, run_id = self.run_script("""
            import time, mlflow
            from mlflow.entities import Metric
            now = int(time.time() * 1000)
            with mlflow.start_run() as run:
                mlflow.MlflowClient().log_batch(run.info.run_id, metrics=[
                    Metric("x", float(i), now, i) for i in range(10000)])
            """)
        self.assertEqual(result.returncode, 0, result.stderr + self.log_of(run_id))
        points = self.metrics(run_id, "--name", "x")["x"]
        self.assertEqual(len(points), 10000)
        self.assertEqual(points[-1], {"step": 9999, "value": 9999, "rank": 0})
        self.assertEqual(self.project.show(run_id)["metrics"]["x"]["count"], 10000)

    def test_nested_runs_become_child_runs(self):
        result, run_id = self.run_script("""
            import mlflow
            with mlflow.start_run():
                mlflow.log_param("outer", 1)
                for fold in range(2):
                    with mlflow.start_run(run_name="fold-%d" % fold, nested=True):
                        mlflow.log_param("fold", fold)
                        mlflow.log_metric("acc", 0.5 + fold / 10, step=0)
                        mlflow.log_text("fold %d" % fold, "fold.txt")
            """)
        self.assertEqual(result.returncode, 0, result.stderr + self.log_of(run_id))
        listed = self.project.amlrun("runs", "list", "--parent", run_id, "--output", "json")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        children = sorted(json.loads(listed.stdout), key=lambda r: r["display_name"])
        self.assertEqual([c["display_name"] for c in children], ["fold-0", "fold-1"])
        self.assertEqual({c["status"] for c in children}, {"Completed"})
        self.assertEqual({c["parent_id"] for c in children}, {run_id})
        second = self.project.show(children[1]["id"])
        self.assertEqual(second["params"], {"fold": "1"})
        self.assertEqual(second["parent_id"], run_id)
        self.assertEqual(second["metrics"]["acc"]["last"], 0.6)
        with open(os.path.join(self.project.outputs(children[1]["id"]), "fold.txt")) as f:
            self.assertEqual(f.read(), "fold 1")
        parent = self.project.show(run_id)
        self.assertEqual(sorted(c["display_name"] for c in parent["child_runs"]), ["fold-0", "fold-1"])
        self.assertEqual(parent["params"], {"outer": "1"})
        text = self.project.amlrun("show", run_id).stdout
        self.assertIn("child run        %s (Completed, fold-0)" % children[0]["id"], text)

    def model_files(self, run_id, model_id):
        folder = os.path.join(self.project.outputs(run_id), "models", model_id)
        return sorted(os.listdir(folder)) if os.path.isdir(folder) else []

    def test_autolog_with_scikit_learn(self):
        result, run_id = self.run_script("""
            import mlflow
            from sklearn.linear_model import LogisticRegression
            mlflow.sklearn.autolog(log_models=True, log_datasets=False)
            X = [[0.0], [1.0], [2.0], [3.0]]
            y = [0, 0, 1, 1]
            with mlflow.start_run():
                LogisticRegression(C=0.5).fit(X, y)
            print("last model", mlflow.last_logged_model().model_id)
            """)
        self.assertEqual(result.returncode, 0, result.stderr + self.log_of(run_id))
        shown = self.project.show(run_id)
        self.assertEqual(shown["params"]["C"], "0.5")
        self.assertIn("training_accuracy_score", shown["metrics"])
        self.assertEqual(shown["metrics"]["training_accuracy_score"]["last"], 1.0)
        # The autologged model: recorded with the run, its files in its outputs.
        self.assertEqual(list(shown["models"].values()), ["model"])
        model_id = list(shown["models"])[0]
        self.assertIn("last model %s" % model_id, self.log_of(run_id))
        self.assertIn("MLmodel", self.model_files(run_id, model_id))
        self.assertIn("model.pkl", self.model_files(run_id, model_id))

    def test_log_model_from_a_job_lands_in_its_outputs_and_loads_back(self):
        result, run_id = self.run_script("""
            import mlflow, mlflow.sklearn
            from sklearn.linear_model import LogisticRegression
            X = [[0.0], [1.0], [2.0], [3.0]]
            y = [0, 0, 1, 1]
            with mlflow.start_run() as run:
                model = LogisticRegression().fit(X, y)
                info = mlflow.sklearn.log_model(model, name="clf", params={"kind": "logreg"},
                                                serialization_format="cloudpickle")
                assert mlflow.last_logged_model().model_id == info.model_id
                got = mlflow.get_logged_model(info.model_id)
                print("status", got.status, got.name, got.source_run_id == run.info.run_id)
                found = mlflow.search_logged_models(filter_string="name = 'clf'", output_format="list")
                print("found", [m.model_id for m in found] == [info.model_id])
                by_id = mlflow.sklearn.load_model("models:/" + info.model_id)
                by_run = mlflow.sklearn.load_model("runs:/%s/clf" % run.info.run_id)
                print("predicts", [int(v) for v in by_id.predict([[3.0]])], [int(v) for v in by_run.predict([[0.0]])])
                print("model id", info.model_id)
            """)
        self.assertEqual(result.returncode, 0, result.stderr + self.log_of(run_id))
        log = self.log_of(run_id)
        model_id = log.split("model id ")[1].split()[0]
        self.assertIn("status READY clf True", log)
        self.assertIn("found True", log)
        self.assertIn("predicts [1] [0]", log)
        self.assertEqual(self.project.show(run_id)["models"], {model_id: "clf"})
        self.assertEqual(self.model_files(run_id, model_id)[:1], ["MLmodel"])
        self.assertIn("model.pkl", self.model_files(run_id, model_id))
        text = self.project.amlrun("show", run_id).stdout
        self.assertIn("model            %s (clf) in outputs/models/%s/\n" % (model_id, model_id), text)

    def test_a_script_that_sets_its_own_tracking_uri_logs_there(self):
        # Documented: a script that points MLflow elsewhere logs there; the
        # run keeps only what came through its own endpoint.
        result, run_id = self.run_script("""
            import os, mlflow
            mlflow.log_param("before", 1)
            mlflow.end_run()
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
            mlflow.set_tracking_uri("file://" + os.path.abspath("outputs/mlruns"))
            mlflow.set_experiment("mine")
            with mlflow.start_run():
                mlflow.log_param("after", 2)
            """)
        self.assertEqual(result.returncode, 0, result.stderr + self.log_of(run_id))
        self.assertEqual(self.project.show(run_id)["params"], {"before": "1"})
        self.assertTrue(os.path.isdir(os.path.join(self.project.outputs(run_id), "mlruns")))

    def test_local_tracking_false_serves_no_endpoint(self):
        # A workspace that turns it off: the job's own MLflow settings apply.
        with open(os.path.join(self.project.workspace, "config.yml"), "w") as f:
            f.write("local:\n  tracking: false\n")
        result, run_id = self.run_script("""
            import os
            print("uri", os.environ.get("MLFLOW_TRACKING_URI"), os.environ.get("MLFLOW_RUN_ID"))
            """)
        self.assertEqual(result.returncode, 0, result.stderr + self.log_of(run_id))
        self.assertIn("uri None None", self.log_of(run_id))

    def test_no_token_or_a_wrong_one_is_401_and_stores_nothing(self):
        result, run_id = self.run_script(RAW_CLIENT + """
run = os.environ["MLFLOW_RUN_ID"]
body = {"run_id": run, "key": "stolen", "value": "1"}
print(json.dumps([call("POST", "/api/2.0/mlflow/runs/log-parameter", body, auth=False),
                  call("POST", "/api/2.0/mlflow/runs/log-parameter", body, auth="wrong"),
                  call("PUT", "/api/2.0/mlflow-artifacts/artifacts/%s/outputs/x.txt" % run, raw=b"x", auth=False)]))
""")
        self.assertEqual(result.returncode, 0, result.stderr + self.log_of(run_id))
        answers = json.loads(self.log_of(run_id).strip().splitlines()[-1])
        for status, body in answers:
            self.assertEqual(status, 401)
            self.assertEqual(json.loads(body)["error_code"], "UNAUTHENTICATED")
        shown = self.project.show(run_id)
        self.assertNotIn("params", shown)
        self.assertFalse(os.path.exists(os.path.join(self.project.outputs(run_id), "x.txt")))

    def test_bad_input_is_answered_with_mlflows_errors_and_nothing_is_stored(self):
        result, run_id = self.run_script(RAW_CLIENT + """
run = os.environ["MLFLOW_RUN_ID"]
api = "/api/2.0/mlflow/"
art = "/api/2.0/mlflow-artifacts/artifacts/%s/outputs/" % run
answers = {}
answers["malformed"] = call("POST", api + "runs/log-metric", raw=b'{"run_id": ')
# Declared over the limit: answered from the headers, before any body is read.
import http.client, urllib.parse
where = urllib.parse.urlsplit(base)
connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
connection.putrequest("POST", where.path + api + "runs/log-batch")
connection.putheader("Authorization", "Bearer " + token)
connection.putheader("Content-Type", "application/json")
connection.putheader("Content-Length", str(5 << 20))
connection.endheaders()
answer = connection.getresponse()
answers["too_large"] = (answer.status, answer.read().decode())
answers["unknown_run"] = call("POST", api + "runs/log-metric", {"run_id": "nosuchrun", "key": "m", "value": 1})
answers["unknown_experiment"] = call("GET", api + "experiments/get?experiment_id=404404")
answers["dotdot_metric"] = call("POST", api + "runs/log-metric", {"run_id": run, "key": "a/../b", "value": 1})
answers["dotdot_inside"] = call("POST", api + "runs/log-metric", {"run_id": run, "key": "a..b", "value": 1})
answers["control_metric"] = call("POST", api + "runs/log-metric", {"run_id": run, "key": "a\\nb", "value": 1})
answers["escape_dotdot"] = call("PUT", art + "../escaped.txt", raw=b"x")
answers["escape_encoded"] = call("PUT", art + "%2e%2e/escaped2.txt", raw=b"x")
answers["escape_absolute"] = call("PUT", art + "/etc/escaped3.txt", raw=b"x")
answers["param_first"] = call("POST", api + "runs/log-parameter", {"run_id": run, "key": "p", "value": "1"})
answers["param_again"] = call("POST", api + "runs/log-parameter", {"run_id": run, "key": "p", "value": "2"})
answers["unknown_model"] = call("GET", api + "logged-models/m-0123")
status, made = call("POST", api + "logged-models", {"name": "m", "source_run_id": run})
model = json.loads(made)["model"]["info"]["model_id"]
answers["model_escape"] = call("PUT", art + "models/%s/../../../escaped4.txt" % model, raw=b"x")
answers["model_escape_encoded"] = call("PUT", art + "models/%s/%%2e%%2e/%%2e%%2e/%%2e%%2e/escaped5.txt" % model, raw=b"x")
print(json.dumps(answers))
""")
        self.assertEqual(result.returncode, 0, result.stderr + self.log_of(run_id))
        answers = json.loads(self.log_of(run_id).strip().splitlines()[-1])
        expected = {"malformed": (400, "MALFORMED_REQUEST"),
                    "too_large": (413, "REQUEST_TOO_LARGE"),
                    "unknown_run": (404, "RESOURCE_DOES_NOT_EXIST"),
                    "unknown_experiment": (404, "RESOURCE_DOES_NOT_EXIST"),
                    "dotdot_metric": (400, "INVALID_PARAMETER_VALUE"),
                    "dotdot_inside": (400, "INVALID_PARAMETER_VALUE"),
                    "control_metric": (400, "INVALID_PARAMETER_VALUE"),
                    "escape_dotdot": (400, "INVALID_PARAMETER_VALUE"),
                    "escape_encoded": (400, "INVALID_PARAMETER_VALUE"),
                    "escape_absolute": (400, "INVALID_PARAMETER_VALUE"),
                    "param_again": (400, "INVALID_PARAMETER_VALUE"),
                    "unknown_model": (404, "RESOURCE_DOES_NOT_EXIST"),
                    "model_escape": (400, "INVALID_PARAMETER_VALUE"),
                    "model_escape_encoded": (400, "INVALID_PARAMETER_VALUE")}
        for name, (status, code) in expected.items():
            got_status, body = answers[name]
            self.assertEqual((got_status, json.loads(body)["error_code"]), (status, code), name)
        self.assertEqual(answers["param_first"][0], 200)
        self.assertEqual(json.loads(answers["param_again"][1])["message"],
                         "parameter 'p' of run %s is already '1'; a parameter is logged once and "
                         "cannot be changed to '2' (log it under another name)" % run_id)
        self.assertEqual(json.loads(answers["unknown_model"][1])["message"],
                         "Logged model with ID 'm-0123' not found.")
        shown = self.project.show(run_id)
        self.assertEqual(shown["params"], {"p": "1"})
        self.assertEqual(shown["metrics"], {})
        run_dir = os.path.join(self.project.workspace, "runs", run_id)
        for name in ("escaped.txt", "escaped2.txt", "escaped3.txt", "escaped4.txt", "escaped5.txt"):
            for root, _, files in os.walk(self.project.root):
                self.assertNotIn(name, files, root)
        self.assertFalse(os.path.exists("/etc/escaped3.txt"))
        self.assertTrue(os.path.isdir(run_dir))

    def test_sixty_four_concurrent_clients(self):
        result, run_id = self.run_script(RAW_CLIENT + """
import threading
run = os.environ["MLFLOW_RUN_ID"]
statuses = []
def client(i):
    for step in range(5):
        status, _ = call("POST", "/api/2.0/mlflow/runs/log-metric",
                         {"run_id": run, "key": "c%d" % i, "value": step, "step": step})
        statuses.append(status)
threads = [threading.Thread(target=client, args=(i,)) for i in range(64)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(sorted(set(statuses))), len(statuses))
""")
        self.assertEqual(result.returncode, 0, result.stderr + self.log_of(run_id))
        self.assertEqual(self.log_of(run_id).strip().splitlines()[-1], "[200] 320")
        metrics = self.metrics(run_id)
        self.assertEqual(len(metrics), 64)
        for i in range(64):
            self.assertEqual([p["step"] for p in metrics["c%d" % i]], [0, 1, 2, 3, 4])
