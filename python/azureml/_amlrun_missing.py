"""Clear errors for the parts of Azure ML SDK v1 that amlrun's shim lacks."""

_HINT = ("amlrun's azureml shim provides only azureml.core.Run (Run.get_context() and its "
         "logging methods) for scripts run by amlrun; install azureml-core in the job's "
         "environment to use the real Azure ML SDK")

_WHAT_INSTEAD = {
    "Workspace": "a run under amlrun belongs to the amlrun workspace of `amlrun submit`, "
                 "not to an Azure ML workspace; use Run.get_context() for the current run",
    "Experiment": "submit jobs with `amlrun submit JOB.yml`; Run.get_context().experiment.name "
                  "names the run's experiment",
    "ScriptRunConfig": "describe the job in a job file and run `amlrun submit JOB.yml`",
    "Environment": "give the job's environment in its job file (environment: ...)",
    "Dataset": "give inputs in the job file (inputs: ...); the job reads them from "
               "AZURE_ML_INPUT_<name>",
    "Datastore": "give inputs in the job file (inputs: ...)",
    "Model": "register models with `amlrun model register`",
    "ComputeTarget": "name compute targets in .amlrun/config.yml",
}


def message(name):
    """The error for `name` (a dotted module or an attribute of azureml.core)."""
    short = name.rsplit(".", 1)[-1]
    instead = _WHAT_INSTEAD.get(short)
    text = "%s: %s" % (name, _HINT)
    if instead:
        text += "; %s" % instead
    return text


class MissingFinder:
    """Last on sys.meta_path: asked only for azureml.* modules that nothing
    else provides, and answers with an ImportError that says why."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith("azureml.") and not fullname.startswith("azureml._"):
            raise ImportError(message(fullname), name=fullname)
        return None
