# The baseline for bench/deploy/run.sh: the same score.py behind Flask + gunicorn, the stack Azure ML's
# inference server uses (without nginx). Stdlib + Debian's python3-flask only; bench use only.
import importlib.util
import json
import os

from flask import Flask, Response, request

_spec = importlib.util.spec_from_file_location("score", os.environ["AZUREML_ENTRY_SCRIPT"])
score = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(score)
score.init()

app = Flask(__name__)


@app.route("/", methods=["GET"])
def health():
    return "Healthy"


@app.route("/score", methods=["GET", "POST"])
def run():
    result = score.run(request.get_data(as_text=True))
    return Response(json.dumps(result), status=200, mimetype="application/json")
