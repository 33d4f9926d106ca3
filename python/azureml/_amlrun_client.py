"""The run's MLflow tracking endpoint over the standard library (no mlflow):
what amlrun gave the process in MLFLOW_TRACKING_URI, MLFLOW_RUN_ID and
MLFLOW_TRACKING_TOKEN."""
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


class TrackingError(Exception):
    pass


class Endpoint:
    def __init__(self, uri, token, run_id):
        self.uri = uri.rstrip("/")
        self.token = token
        self.run_id = run_id

    @staticmethod
    def from_environment():
        uri = os.environ.get("MLFLOW_TRACKING_URI", "")
        run_id = os.environ.get("MLFLOW_RUN_ID", "")
        if not uri.startswith(("http://", "https://")) or not run_id:
            return None
        return Endpoint(uri, os.environ.get("MLFLOW_TRACKING_TOKEN", ""), run_id)

    def _request(self, method, path, data=None, content_type="application/json", length=None):
        request = urllib.request.Request(self.uri + path, data=data, method=method)
        request.add_header("Content-Type", content_type)
        if length is not None:
            request.add_header("Content-Length", str(length))
        if self.token:
            request.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                body = answer.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")
            try:
                detail = json.loads(detail).get("message", detail)
            except ValueError:
                pass
            raise TrackingError("amlrun's tracking endpoint answered %d to %s %s: %s"
                                % (error.code, method, path, detail)) from None
        except urllib.error.URLError as error:
            raise TrackingError("cannot reach amlrun's tracking endpoint %s: %s"
                                % (self.uri, error.reason)) from None
        return json.loads(body.decode("utf-8")) if body else {}

    def call(self, path, body):
        return self._request("POST", "/api/2.0/mlflow/" + path,
                             json.dumps(body, allow_nan=True).encode("utf-8"))

    def get(self, path, query):
        return self._request("GET", "/api/2.0/mlflow/%s?%s" % (path, urllib.parse.urlencode(query)))

    def log_batch(self, metrics=(), params=(), tags=()):
        metrics = list(metrics)
        # MLflow's limit per log-batch request is 1000 metrics.
        for start in range(0, max(len(metrics), 1), 1000):
            chunk = metrics[start:start + 1000]
            if not chunk and start > 0:
                break
            body = {"run_id": self.run_id, "metrics": chunk}
            if start == 0:
                body["params"] = list(params)
                body["tags"] = list(tags)
            self.call("runs/log-batch", body)

    def run(self):
        return self.get("runs/get", {"run_id": self.run_id})["run"]

    def upload(self, name, local_path):
        """Puts the file local_path at outputs/<name> of the run."""
        quoted = urllib.parse.quote(name.replace(os.sep, "/"))
        # Streamed from the file, so a large checkpoint is not held in memory.
        with open(local_path, "rb") as source:
            self._request("PUT", "/api/2.0/mlflow-artifacts/artifacts/%s/outputs/%s"
                          % (self.run_id, quoted), source, "application/octet-stream",
                          length=os.fstat(source.fileno()).st_size)

    def notice(self, body):
        self._request("POST", "/api/amlrun/python-shim", json.dumps(body).encode("utf-8"))


def now_ms():
    return int(time.time() * 1000)


def tell_amlrun_real_core_is_used(core_folder):
    """The real azureml-core is used instead of the shim: amlrun's run owner
    writes it in the run's system log. Outside amlrun there is nobody to tell."""
    endpoint = Endpoint.from_environment()
    if endpoint is None:
        return
    try:
        endpoint.notice({"real_azureml_core": os.path.abspath(core_folder)})
    except TrackingError as error:
        print("amlrun: warning: %s" % error, file=sys.stderr)
