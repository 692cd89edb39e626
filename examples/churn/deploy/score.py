"""Scoring script for the churn model (stdlib only): az ml's init()/run() contract."""
import json
import math
import os

from azureml.core.model import Model

model = None


def init():
    global model
    with open(Model.get_model_path("churn")) as f:
        model = json.load(f)


def run(raw_data):
    rows = json.loads(raw_data)["data"]
    out = []
    for x in rows:
        z = sum(w * v for w, v in zip(model["weights"], x)) + model["bias"]
        p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
        out.append({"churn_probability": round(p, 4), "churn": p > 0.5})
    return {"predictions": out}
