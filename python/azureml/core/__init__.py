"""azureml.core of amlrun's shim: Run only (see azureml/__init__.py)."""
from azureml.core.run import Run  # noqa: F401


def __getattr__(name):
    # An ImportError (not AttributeError) so `from azureml.core import
    # Workspace` keeps this message instead of Python's generic one.
    if name.startswith("__"):
        raise AttributeError(name)
    from azureml import _amlrun_missing

    raise ImportError(_amlrun_missing.message("azureml.core." + name), name="azureml.core")
