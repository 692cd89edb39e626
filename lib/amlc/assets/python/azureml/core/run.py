"""azureml.core.run shim: Run.get_context() records metrics and tags for amlc (see amlc.run)."""

import os
import shutil

from amlc import run as _run

__all__ = ["Run"]


class _Experiment:
    def __init__(self, name):
        self.name = name
        self.workspace = None

    def __repr__(self):
        return "Experiment(Name: %s)" % self.name


class Run:
    """The current run (amlc run, or an offline run outside amlc)."""

    _context = None

    @classmethod
    def get_context(cls, allow_offline=True, used_for_context_manager=False, **kwargs):
        if cls._context is None:
            cls._context = cls()
        return cls._context

    @property
    def id(self):
        return _run.id

    @property
    def experiment(self):
        return _Experiment(_run.experiment)

    @property
    def name(self):
        return _run.id

    @property
    def display_name(self):
        return _run.id

    @property
    def parent(self):
        return None

    @property
    def outputs_dir(self):
        return _run.outputs_dir

    def log(self, name, value, description="", step=None):
        _run.log(name, value, description)

    def log_list(self, name, value, description=""):
        _run.log_list(name, value, description)

    def log_row(self, name, description=None, **kwargs):
        _run.log_row(name, description, **kwargs)

    def log_table(self, name, value, description=""):
        _run.log_table(name, value, description)

    def log_image(self, name, path=None, plot=None, description=""):
        """Saves the image under outputs/ (plot: a matplotlib figure or pyplot)."""
        os.makedirs(_run.outputs_dir, exist_ok=True)
        dest = os.path.join(_run.outputs_dir, name if name.endswith(".png") else name + ".png")
        if path is not None:
            shutil.copyfile(path, dest)
        elif plot is not None:
            plot.savefig(dest)

    def tag(self, key, value=None):
        _run.tag(key, value)

    def set_tags(self, tags):
        _run.set_tags(tags)

    def get_tags(self):
        return _run.get_tags()

    def get_metrics(self, name=None, recursive=False, run_type=None, populate=False):
        return _run.get_metrics(name)

    def upload_file(self, name, path_or_stream):
        """Copies a file into the run's outputs (name is the path under outputs/)."""
        dest = os.path.join(_run.outputs_dir, name[len("outputs/"):] if name.startswith("outputs/") else name)
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
        if isinstance(path_or_stream, (str, os.PathLike)):
            shutil.copyfile(path_or_stream, dest)
        else:
            with open(dest, "wb") as f:
                shutil.copyfileobj(path_or_stream, f)

    def upload_folder(self, name, path):
        dest = os.path.join(_run.outputs_dir, name[len("outputs/"):] if name.startswith("outputs/") else name)
        shutil.copytree(path, dest, dirs_exist_ok=True)

    def flush(self, timeout_seconds=300):
        pass

    def complete(self, _set_status=True):
        pass

    def fail(self, error_details=None, error_code=None, _set_status=True):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __repr__(self):
        return "Run(Experiment: %s, Id: %s)" % (_run.experiment, _run.id)
