"""azureml.core.run.Run of amlrun's shim: the current amlrun run, written
through the run's MLflow tracking endpoint. How each method maps onto
amlrun's run history is in amlrun's README ("azureml's Run")."""
import numbers
import os
import sys
import tempfile
import uuid

from azureml import _amlrun_client as _client
from azureml import _amlrun_missing

_OUTPUTS_PREFIX = "outputs/"

_WHAT_INSTEAD = {
    "submit_child": "start a nested run with mlflow.start_run(nested=True), or a sweep",
    "child_run": "start a nested run with mlflow.start_run(nested=True)",
    "create_children": "start nested runs with mlflow.start_run(nested=True)",
    "register_model": "register the model after the run with `amlrun model register --name "
                      "NAME --run RUN_ID --path outputs/...`",
    "download_file": "use `amlrun download RUN_ID --prefix outputs/...` after the run",
    "download_files": "use `amlrun download RUN_ID --prefix outputs/...` after the run",
    "cancel": "use `amlrun cancel RUN_ID`",
    "get": "use `amlrun show RUN_ID`",
    "list": "use `amlrun runs list`",
    "wait_for_completion": "use `amlrun stream RUN_ID`",
}


def _unsupported(name):
    instead = _WHAT_INSTEAD.get(name, "log with the methods the shim has, or with mlflow")
    return ("Run.%s: amlrun's azureml shim cannot do this (a run under amlrun talks to no "
            "Azure ML service); %s" % (name, instead))


def _outputs_name(name):
    """Azure ML scripts name uploads "outputs/x"; under amlrun every upload
    lands in the run's outputs, so the prefix is not doubled."""
    name = name.replace(os.sep, "/")
    return name[len(_OUTPUTS_PREFIX):] if name.startswith(_OUTPUTS_PREFIX) else name


class _Experiment:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return "Experiment(name=%r)" % self.name


class Run:
    """The run this process belongs to. Get it with Run.get_context()."""

    _context = None

    def __init__(self, endpoint, run_id=None, experiment_name=None):
        self._endpoint = endpoint
        self.id = run_id or endpoint.run_id
        self.experiment = _Experiment(experiment_name or
                                      os.environ.get("MLFLOW_EXPERIMENT_NAME", ""))
        self._steps = {}

    @classmethod
    def get_context(cls, allow_offline=True, **kwargs):
        if cls._context is None:
            endpoint = _client.Endpoint.from_environment()
            cls._context = _OfflineRun() if endpoint is None else Run(endpoint)
        if isinstance(cls._context, _OfflineRun) and not allow_offline:
            raise RuntimeError(
                "Run.get_context(allow_offline=False): this script is not running under amlrun "
                "(MLFLOW_TRACKING_URI and MLFLOW_RUN_ID are not set); submit it with "
                "`amlrun submit JOB.yml`")
        return cls._context

    def __repr__(self):
        return "Run(id=%r, experiment=%r)" % (self.id, self.experiment.name)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(_unsupported(name))

    # Metrics: numbers become metric points, one step per call and name.
    def _next_step(self, name):
        step = self._steps.get(name, 0)
        self._steps[name] = step + 1
        return step

    def _point(self, name, value):
        return {"key": name, "value": float(value), "timestamp": _client.now_ms(),
                "step": self._next_step(name)}

    @staticmethod
    def _is_number(value):
        return isinstance(value, numbers.Real)

    def log(self, name, value, description="", step=None):
        if not self._is_number(value):
            # Azure ML keeps a string "metric"; amlrun's metrics are numbers,
            # so it becomes a tag of the run.
            self.tag(name, str(value))
            return
        point = self._point(name, value)
        if step is not None:
            point["step"] = int(step)
        self._endpoint.log_batch(metrics=[point])

    def log_list(self, name, value, description=""):
        self._endpoint.log_batch(metrics=[self._point(name, v) for v in value])

    def log_row(self, name, description=None, **kwargs):
        self._endpoint.log_batch(
            metrics=[self._point("%s/%s" % (name, column), v) for column, v in kwargs.items()])

    def log_table(self, name, value, description=""):
        points = []
        for column, values in value.items():
            points += [self._point("%s/%s" % (name, column), v) for v in values]
        self._endpoint.log_batch(metrics=points)

    def log_accuracy_table(self, name, value, description=""):
        raise AttributeError(_unsupported("log_accuracy_table"))

    def log_image(self, name, path=None, plot=None, description=""):
        if (path is None) == (plot is None):
            raise ValueError("Run.log_image(%r): give exactly one of path= and plot=" % name)
        if path is not None:
            extension = os.path.splitext(path)[1] or ".png"
            self._endpoint.upload("images/%s%s" % (name, extension), path)
            return
        with tempfile.TemporaryDirectory() as folder:
            saved = os.path.join(folder, "image.png")
            plot.savefig(saved)
            self._endpoint.upload("images/%s.png" % name, saved)

    # Tags.
    def tag(self, key, value=None):
        self._endpoint.call("runs/set-tag", {"run_id": self.id, "key": key,
                                             "value": "" if value is None else str(value)})

    def set_tags(self, tags):
        if isinstance(tags, dict):
            pairs = [{"key": k, "value": "" if v is None else str(v)} for k, v in tags.items()]
        else:
            pairs = [{"key": k, "value": ""} for k in tags]
        self._endpoint.log_batch(tags=pairs)

    def _all_tags(self):
        tags = self._endpoint.run().get("data", {}).get("tags", [])
        return {t["key"]: t.get("value", "") for t in tags}

    def get_tags(self):
        # MLflow's own tags (mlflow.runName, ...) are the endpoint's, not the script's.
        return {k: v for k, v in self._all_tags().items() if not k.startswith("mlflow.")}

    def get_metrics(self, name=None):
        metrics = self._endpoint.run().get("data", {}).get("metrics", [])
        found = {m["key"]: m["value"] for m in metrics}
        return {name: found[name]} if name is not None and name in found else (
            {} if name is not None else found)

    @property
    def parent(self):
        parent_id = self._all_tags().get("mlflow.parentRunId")
        return Run(self._endpoint, parent_id) if parent_id else None

    # Files: into the run's outputs.
    def upload_file(self, name, path_or_stream):
        if hasattr(path_or_stream, "read"):
            with tempfile.TemporaryDirectory() as folder:
                saved = os.path.join(folder, "upload")
                data = path_or_stream.read()
                with open(saved, "wb") as target:
                    target.write(data.encode("utf-8") if isinstance(data, str) else data)
                self._endpoint.upload(_outputs_name(name), saved)
            return
        self._endpoint.upload(_outputs_name(name), path_or_stream)

    def upload_files(self, names, paths, **kwargs):
        for name, path in zip(names, paths):
            self.upload_file(name, path)

    def upload_folder(self, name, path, **kwargs):
        for folder, _, files in os.walk(path):
            for file in sorted(files):
                local = os.path.join(folder, file)
                relative = os.path.relpath(local, path)
                self.upload_file(os.path.join(name, relative), local)

    # The run's state is its processes': amlrun ends it when they exit.
    def flush(self, timeout_seconds=300):
        pass  # every call above was sent when it was made

    def complete(self, _set_status=True):
        self.flush()

    def fail(self, error_details=None, error_code=None, _set_status=True):
        self.flush()
        print("amlrun: Run.fail(%s): the run fails when the script exits with a non-zero "
              "status" % ("" if error_details is None else repr(str(error_details))),
              file=sys.stderr)


class _OfflineRun(Run):
    """Outside a submitted run (as Azure ML's offline run): logging prints
    what it would have logged and stores nothing."""

    def __init__(self):
        self._endpoint = None
        self.id = "OfflineRun_%s" % uuid.uuid4()
        self.experiment = _Experiment("offline")
        self._steps = {}
        self._tags = {}

    def _say(self, what, name, value):
        print("Attempted to log %s metric %s:\n%s" % (what, name, value))

    def log(self, name, value, description="", step=None):
        self._say("scalar", name, value)

    def log_list(self, name, value, description=""):
        self._say("list", name, value)

    def log_row(self, name, description=None, **kwargs):
        self._say("row", name, kwargs)

    def log_table(self, name, value, description=""):
        self._say("table", name, value)

    def log_image(self, name, path=None, plot=None, description=""):
        self._say("image", name, path if path is not None else plot)

    def tag(self, key, value=None):
        self._tags[key] = "" if value is None else str(value)

    def set_tags(self, tags):
        for key, value in (tags.items() if isinstance(tags, dict) else ((k, None) for k in tags)):
            self.tag(key, value)

    def get_tags(self):
        return dict(self._tags)

    def get_metrics(self, name=None):
        return {}

    @property
    def parent(self):
        return None

    def upload_file(self, name, path_or_stream):
        print("Offline run: %s is not uploaded" % name)

    def upload_folder(self, name, path, **kwargs):
        print("Offline run: %s is not uploaded" % name)

    def fail(self, error_details=None, error_code=None, _set_status=True):
        pass


# Keep the finder module referenced: `from azureml.core.run import X` for a
# name this module lacks gets Python's own error; X in azureml.core gets ours.
_ = _amlrun_missing
