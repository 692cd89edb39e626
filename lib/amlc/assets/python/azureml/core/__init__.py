"""azureml.core shim (amlc): Run (metrics/tags for amlc runs), Model.get_model_path (scoring), and
placeholders for classes that need the cloud."""

from azureml.core.model import Model  # noqa: F401
from azureml.core.run import Run  # noqa: F401


class _CloudOnly:
    """Placeholder for an Azure ML SDK class that talks to the cloud."""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError(
            "%s needs the Azure ML cloud, which amlc does not use; amlc's azureml shim provides "
            "Run.get_context() and Model.get_model_path() only" % type(self).__name__)

    @classmethod
    def from_config(cls, *args, **kwargs):
        cls()

    @classmethod
    def get(cls, *args, **kwargs):
        cls()


class Workspace(_CloudOnly):
    pass


class Experiment(_CloudOnly):
    pass


class Environment(_CloudOnly):
    pass
