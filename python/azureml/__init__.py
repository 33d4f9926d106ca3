"""amlrun's azureml shim: azureml.core.Run for scripts written for Azure ML
SDK v1, logging into the amlrun run (see amlrun's README, "azureml's Run").

amlrun puts this folder first on a job's PYTHONPATH. When the job's
environment has the real azureml-core (a later azureml/core on sys.path),
the real one is used: this package's own folder leaves __path__, so
`azureml.core` resolves to the real package, and amlrun's run owner is told
(it writes a line in the run's system log)."""
import os as _os
import pkgutil as _pkgutil
import sys as _sys

__path__ = _pkgutil.extend_path(__path__, __name__)

_SHIM_DIR = _os.path.dirname(_os.path.abspath(__file__))


def _real_azureml_core():
    """The folder of the real azureml/core on sys.path, or None."""
    for folder in __path__:
        if _os.path.abspath(folder) == _SHIM_DIR:
            continue
        core = _os.path.join(folder, "core")
        if _os.path.isfile(_os.path.join(core, "__init__.py")):
            return core
    return None


from azureml import _amlrun_client  # noqa: E402  (loaded while this folder is on __path__)

_REAL_CORE = _real_azureml_core()
if _REAL_CORE is not None:
    __path__[:] = [p for p in __path__ if _os.path.abspath(p) != _SHIM_DIR]
    _amlrun_client.tell_amlrun_real_core_is_used(_REAL_CORE)
else:
    from azureml import _amlrun_missing  # noqa: E402

    _sys.meta_path.append(_amlrun_missing.MissingFinder())
