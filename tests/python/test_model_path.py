"""azureml.core.model.Model.get_model_path shim: az semantics for one and several deployed models."""

import sys
sys.dont_write_bytecode = True  # never leave __pycache__ in the asset tree

import os
import shutil
import tempfile
import unittest
from unittest import mock

from azureml.core import Model as CoreModel
from azureml.core.model import Model
from azureml.exceptions import ModelNotFoundException


def _write(root, rel, content="x"):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(content)
    return p


class ModelPathTest(unittest.TestCase):
    def setUp(self):
        self.root = os.path.realpath(tempfile.mkdtemp(prefix="amlc-model-path-"))
        self.addCleanup(shutil.rmtree, self.root, True)
        self.cwd = tempfile.mkdtemp(prefix="amlc-model-cwd-")
        self.addCleanup(shutil.rmtree, self.cwd, True)
        old = os.getcwd()
        os.chdir(self.cwd)
        self.addCleanup(os.chdir, old)

    def env(self, model_dir):
        e = {"AML_APP_ROOT": self.root}
        if model_dir is not None:
            e["AZUREML_MODEL_DIR"] = model_dir
        patcher = mock.patch.dict(os.environ, e)
        patcher.start()
        self.addCleanup(patcher.stop)
        if model_dir is None:
            os.environ.pop("AZUREML_MODEL_DIR", None)

    def test_same_class_from_core(self):
        self.assertIs(CoreModel, Model)

    def test_single_model_single_file(self):
        f = _write(self.root, "azureml-models/sk/2/model.pkl")
        self.env(os.path.join(self.root, "azureml-models/sk/2"))
        self.assertEqual(Model.get_model_path("sk"), f)
        self.assertEqual(Model.get_model_path("sk", version=2), f)
        with self.assertRaises(ModelNotFoundException):
            Model.get_model_path("sk", version=1)
        with self.assertRaises(ModelNotFoundException) as cm:
            Model.get_model_path("other")
        self.assertIn("other", str(cm.exception))

    def test_single_model_folder_and_relative_model_dir(self):
        _write(self.root, "azureml-models/net/5/weights.bin")
        _write(self.root, "azureml-models/net/5/config.json")
        self.env("azureml-models/net/5")  # relative to AML_APP_ROOT
        self.assertEqual(Model.get_model_path("net"), os.path.join(self.root, "azureml-models/net/5"))

    def test_single_model_registered_folder(self):
        _write(self.root, "azureml-models/net/5/outputs/a.bin")
        _write(self.root, "azureml-models/net/5/outputs/b.bin")
        self.env(os.path.join(self.root, "azureml-models/net/5"))
        self.assertEqual(Model.get_model_path("net"), os.path.join(self.root, "azureml-models/net/5/outputs"))

    def test_several_models(self):
        a = _write(self.root, "azureml-models/a/1/a.pkl")
        _write(self.root, "azureml-models/b/1/b.onnx")
        b3 = _write(self.root, "azureml-models/b/3/b.onnx")
        _write(self.root, "azureml-models/b/10/x.onnx")
        _write(self.root, "azureml-models/b/10/y.onnx")
        self.env(os.path.join(self.root, "azureml-models"))
        self.assertEqual(Model.get_model_path("a"), a)
        self.assertEqual(Model.get_model_path("b", 3), b3)
        self.assertEqual(Model.get_model_path("b"), os.path.join(self.root, "azureml-models/b/10"))  # latest
        with self.assertRaises(ModelNotFoundException):
            Model.get_model_path("b", 4)

    def test_fallback_to_app_root_azureml_models(self):
        f = _write(self.root, "azureml-models/m/1/m.txt")
        self.env(None)
        self.assertEqual(Model.get_model_path("m"), f)

    def test_fallback_relative_to_cwd(self):
        _write(self.cwd, "azureml-models/local/4/w.txt")
        self.env(None)
        self.assertEqual(os.path.realpath(Model.get_model_path("local")),
                         os.path.realpath(os.path.join(self.cwd, "azureml-models/local/4/w.txt")))

    def test_bad_name_and_model_constructor(self):
        self.env(None)
        with self.assertRaises(ModelNotFoundException):
            Model.get_model_path("")
        with self.assertRaises(NotImplementedError):
            Model(None, name="x")


if __name__ == "__main__":
    unittest.main()
