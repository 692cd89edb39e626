# A tiny linear model scored with numpy: the model file holds {"weights": [...], "bias": b}.
import json
import os

import numpy as np

model = None


def init():
    global model
    path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.json")
    with open(path) as f:
        spec = json.load(f)
    model = (np.asarray(spec["weights"], dtype=float), float(spec["bias"]))


def run(raw_data):
    data = np.asarray(json.loads(raw_data)["data"], dtype=float)
    weights, bias = model
    return {"predictions": (data @ weights + bias).tolist()}
