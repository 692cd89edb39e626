"""amlc.run metrics helper and the azureml.core.run.Run shim: the metrics-file contract."""

import sys
sys.dont_write_bytecode = True  # never leave __pycache__ in the asset tree

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
from contextlib import redirect_stdout
from unittest import mock

from _support import python_env

from amlc import run


def _lines(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data.endswith(b"\n") or not data, data[-100:]
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


class _Base(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="amlc-run-helper-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.metrics = os.path.join(self.dir, "metrics.jsonl")
        run._reset_offline()
        self.addCleanup(run._reset_offline)

    def online(self):
        patcher = mock.patch.dict(os.environ, {"AMLC_METRICS_FILE": self.metrics, "AMLC_RUN_ID": "run-42",
                                               "AMLC_EXPERIMENT": "exp-a",
                                               "AMLC_OUTPUTS_DIR": os.path.join(self.dir, "outputs")})
        patcher.start()
        self.addCleanup(patcher.stop)

    def offline(self):
        patcher = mock.patch.dict(os.environ, {})
        patcher.start()
        self.addCleanup(patcher.stop)
        for k in ("AMLC_METRICS_FILE", "AMLC_RUN_ID", "AMLC_EXPERIMENT", "AMLC_OUTPUTS_DIR"):
            os.environ.pop(k, None)

    def script(self, code, extra_env=None, online=True):
        env = {"AMLC_METRICS_FILE": self.metrics, "AMLC_RUN_ID": "run-7", "AMLC_EXPERIMENT": "exp-s",
               "AMLC_OUTPUTS_DIR": os.path.join(self.dir, "out")} if online else {}
        env.update(extra_env or {})
        path = os.path.join(self.dir, "train_%d.py" % time.monotonic_ns())
        with open(path, "w") as f:
            f.write(textwrap.dedent(code))
        p = subprocess.run([sys.executable, path], env=python_env(env), capture_output=True, text=True,
                           timeout=30, cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p


class MetricsFileTest(_Base):
    def test_line_format(self):
        self.online()
        t0 = time.time()
        run.log("accuracy", 0.91)
        run.log("epochs", 3)
        run.log("optimizer", "adam")
        run.log_list("losses", [0.5, 0.25])
        run.log_row("roc", fpr=0.1, tpr=0.8)
        run.tag("framework", "sklearn")
        run.tag("count", 3)
        recs = _lines(self.metrics)
        self.assertEqual(len(recs), 7)
        for r in recs:
            self.assertGreaterEqual(r["time"], t0 - 1)
            self.assertLessEqual(r["time"], time.time() + 1)
            del r["time"]
        self.assertEqual(recs[0], {"name": "accuracy", "value": 0.91, "kind": "scalar"})
        self.assertEqual(recs[1], {"name": "epochs", "value": 3, "kind": "scalar"})
        self.assertEqual(recs[2], {"name": "optimizer", "value": "adam", "kind": "scalar"})
        self.assertEqual(recs[3], {"name": "losses", "value": [0.5, 0.25], "kind": "list"})
        self.assertEqual(recs[4], {"name": "roc", "value": {"fpr": 0.1, "tpr": 0.8}, "kind": "row"})
        self.assertEqual(recs[5], {"kind": "tag", "name": "framework", "value": "sklearn"})
        self.assertEqual(recs[6], {"kind": "tag", "name": "count", "value": "3"})

    def test_ids_and_dirs_from_env(self):
        self.online()
        self.assertEqual(run.id, "run-42")
        self.assertEqual(run.experiment, "exp-a")
        self.assertEqual(run.outputs_dir, os.path.join(self.dir, "outputs"))

    def test_get_metrics_aggregates(self):
        self.online()
        run.log("acc", 0.5)
        run.log("loss", 1.0)
        run.log("loss", 0.5)
        run.log("loss", 0.25)
        run.log_list("l", [1, 2])
        run.log_list("l", [3])
        run.log_row("one", a=1)
        run.log_row("t", x=1, y=2)
        run.log_row("t", x=2, y=4)
        run.tag("k", "v")
        self.assertEqual(run.get_metrics(), {"acc": 0.5, "loss": [1.0, 0.5, 0.25], "l": [1, 2, 3],
                                             "one": {"a": 1}, "t": {"x": [1, 2], "y": [2, 4]}})
        self.assertEqual(run.get_metrics("loss"), {"loss": [1.0, 0.5, 0.25]})
        self.assertEqual(run.get_tags(), {"k": "v"})

    def test_nan_and_numpy_like_values_stay_strict_json(self):
        self.online()

        class FakeNumpyFloat:
            def item(self):
                return 2.5

        run.log("nan", float("nan"))
        run.log("inf", float("-inf"))
        run.log("np", FakeNumpyFloat())
        recs = _lines(self.metrics)  # json.loads would accept NaN; check the raw text too
        with open(self.metrics) as f:
            self.assertNotIn("NaN,", f.read())
        self.assertEqual([r["value"] for r in recs], ["NaN", "-Infinity", 2.5])

    def test_torn_last_line_is_ignored_by_get_metrics(self):
        self.online()
        run.log("a", 1)
        with open(self.metrics, "a") as f:
            f.write('{"name": "b", "val')
        self.assertEqual(run.get_metrics(), {"a": 1})

    def test_bad_arguments(self):
        self.online()
        with self.assertRaises(ValueError):
            run.log("", 1)
        with self.assertRaises(ValueError):
            run.log_list("x", 5)
        with self.assertRaises(ValueError):
            run.log_list("x", "abc")
        self.assertFalse(os.path.exists(self.metrics))

    def test_concurrent_writers(self):
        n_proc, n_each = 6, 300
        code = """
            import sys
            from amlc import run
            for i in range(%d):
                run.log("m" + sys.argv[1], i)
                run.log_row("r", worker=int(sys.argv[1]), i=i, pad="x" * 300)
        """ % n_each
        path = os.path.join(self.dir, "writer.py")
        with open(path, "w") as f:
            f.write(textwrap.dedent(code))
        env = python_env({"AMLC_METRICS_FILE": self.metrics, "AMLC_RUN_ID": "r"})
        procs = [subprocess.Popen([sys.executable, path, str(w)], env=env) for w in range(n_proc)]
        for p in procs:
            self.assertEqual(p.wait(30), 0)
        recs = _lines(self.metrics)
        self.assertEqual(len(recs), n_proc * n_each * 2)
        for w in range(n_proc):
            self.assertEqual([r["value"] for r in recs if r["name"] == "m%d" % w], list(range(n_each)))
        self.online()
        self.assertEqual(len(run.get_metrics("r")["r"]["i"]), n_proc * n_each)


class OfflineTest(_Base):
    def test_offline_prints_and_keeps_values(self):
        self.offline()
        buf = io.StringIO()
        with redirect_stdout(buf):
            run.log("accuracy", 0.91)
            run.log("accuracy", 0.93)
            run.log_list("l", [1, 2])
            run.log_row("r", a=1)
            run.tag("t", "v")
        out = buf.getvalue().splitlines()
        self.assertEqual(out, ["accuracy=0.91", "accuracy=0.93", "l=[1, 2]", 'r={"a": 1}', "tag:t=v"])
        self.assertEqual(run.get_metrics(), {"accuracy": [0.91, 0.93], "l": [1, 2], "r": {"a": 1}})
        self.assertEqual(run.get_tags(), {"t": "v"})
        self.assertTrue(run.id.startswith("OfflineRun_"))
        self.assertEqual(run.id, run.id)
        self.assertEqual(run.outputs_dir, "outputs")
        self.assertFalse(os.path.exists(self.metrics))

    def test_offline_azureml_script(self):
        p = self.script("""
            from azureml.core import Run
            r = Run.get_context()
            r.log("x", 1)
            print("metrics", r.get_metrics(), r.id.startswith("OfflineRun_"))
        """, online=False)
        self.assertIn("x=1", p.stdout)
        self.assertIn("metrics {'x': 1} True", p.stdout)


class AzuremlRunShimTest(_Base):
    def test_run_get_context(self):
        p = self.script("""
            import json
            from azureml.core.run import Run
            from azureml.core import Run as Run2
            assert Run is Run2
            r = Run.get_context()
            assert r is Run.get_context()
            r.log("alpha", 0.1)
            r.log("alpha", 0.2)
            r.log_list("losses", [3, 2, 1])
            r.log_row("curve", x=1, y=2)
            r.tag("stage", "dev")
            r.set_tags({"team": "ml"})
            r.upload_file("outputs/note.txt", __file__)
            print(json.dumps({"id": r.id, "exp": r.experiment.name, "metrics": r.get_metrics(),
                              "tags": r.get_tags()}))
            r.complete()
        """)
        out = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertEqual(out["id"], "run-7")
        self.assertEqual(out["exp"], "exp-s")
        self.assertEqual(out["metrics"], {"alpha": [0.1, 0.2], "losses": [3, 2, 1], "curve": {"x": 1, "y": 2}})
        self.assertEqual(out["tags"], {"stage": "dev", "team": "ml"})
        recs = _lines(self.metrics)
        self.assertEqual([(r["kind"], r["name"]) for r in recs],
                         [("scalar", "alpha"), ("scalar", "alpha"), ("list", "losses"), ("row", "curve"),
                          ("tag", "stage"), ("tag", "team")])
        self.assertTrue(os.path.isfile(os.path.join(self.dir, "out", "note.txt")))
        self.assertEqual(p.stdout.count("alpha="), 0)  # online: nothing printed per metric

    def test_cloud_classes_fail_clearly(self):
        p = self.script("""
            from azureml.core import Workspace
            try:
                Workspace.from_config()
            except NotImplementedError as e:
                print("ERR", e)
        """)
        self.assertIn("ERR Workspace needs the Azure ML cloud", p.stdout)


if __name__ == "__main__":
    unittest.main()
