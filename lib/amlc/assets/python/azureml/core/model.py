"""azureml.core.model shim: Model.get_model_path() resolved against the deployed model files.

Layout (as in Azure ML): with one model AZUREML_MODEL_DIR is that model's folder
(.../azureml-models/<name>/<version>); with several it is the root holding <name>/<version>/ for each.
Relative AZUREML_MODEL_DIR values are taken relative to AML_APP_ROOT (default /var/azureml-app).
"""

import os

from azureml.exceptions import ModelNotFoundException

__all__ = ["Model"]


def _app_root():
    return os.environ.get("AML_APP_ROOT") or "/var/azureml-app"


def _abs(path):
    if os.path.isabs(path):
        return path
    rooted = os.path.join(_app_root(), path)
    return rooted if os.path.exists(rooted) or not os.path.exists(path) else os.path.abspath(path)


def _latest(name_dir):
    versions = []
    try:
        for v in os.listdir(name_dir):
            if v.isdigit() and os.path.isdir(os.path.join(name_dir, v)):
                versions.append(int(v))
    except OSError:
        return None
    return str(max(versions)) if versions else None


def _single_child(version_dir):
    """A model registered as a single file (or folder) sits alone in its version folder: return it."""
    try:
        entries = [e for e in os.listdir(version_dir) if not e.startswith(".")]
    except OSError:
        return version_dir
    return os.path.join(version_dir, entries[0]) if len(entries) == 1 else version_dir


def _from_root(root, name, version):
    name_dir = os.path.join(root, name)
    if not os.path.isdir(name_dir):
        return None
    v = str(version) if version is not None else _latest(name_dir)
    if v is None:
        return None
    version_dir = os.path.join(name_dir, v)
    if not os.path.isdir(version_dir):
        return None
    return _single_child(version_dir)


class Model:
    """Only the static helpers are available offline (Model(...) itself needs the cloud)."""

    def __init__(self, workspace=None, name=None, id=None, tags=None, properties=None, version=None,
                 run_id=None, model_framework=None, expand=True, **kwargs):
        raise NotImplementedError("Model(workspace, ...) needs the Azure ML cloud; in a deployment use "
                                  "Model.get_model_path(name) or the AZUREML_MODEL_DIR variable")

    @staticmethod
    def get_model_path(model_name, version=None, _workspace=None):
        """Path of a deployed model's file (a model registered as one file) or folder."""
        if not isinstance(model_name, str) or not model_name:
            raise ModelNotFoundException("model_name must be a non-empty string")
        looked = []
        model_dir = os.environ.get("AZUREML_MODEL_DIR")
        if model_dir:
            md = os.path.normpath(_abs(model_dir))
            # several models: AZUREML_MODEL_DIR/<name>/<version>
            found = _from_root(md, model_name, version)
            if found:
                return found
            looked.append(os.path.join(md, model_name))
            # one model: AZUREML_MODEL_DIR is .../<name>/<version>
            if os.path.isdir(md) and os.path.basename(os.path.dirname(md)) == model_name:
                if version is None or str(version) == os.path.basename(md):
                    return _single_child(md)
            looked.append(md)
        for root in (os.path.join(_app_root(), "azureml-models"), os.path.abspath("azureml-models")):
            found = _from_root(root, model_name, version)
            if found:
                return found
            looked.append(os.path.join(root, model_name))
        raise ModelNotFoundException(
            "Model %s%s not found in the deployment; looked in: %s"
            % (model_name, "" if version is None else " version %s" % version, ", ".join(dict.fromkeys(looked))))
