"""Train a logistic-regression churn classifier on synthetic data (stdlib only).

Written as an unchanged az ml v1 script: it logs through azureml.core.run.Run, which amlc provides.
Arguments are the sweep's hyperparameters: --learning_rate, --epochs, --l2.
"""
import argparse
import json
import math
import os
import random

from azureml.core.run import Run

parser = argparse.ArgumentParser()
parser.add_argument("--learning_rate", type=float, default=0.1)
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--l2", type=float, default=0.0)
args = parser.parse_args()

run = Run.get_context()
rng = random.Random(7)


def make_data(n):
    rows = []
    for _ in range(n):
        tenure = rng.uniform(0, 6)
        calls = rng.uniform(0, 10)
        spend = rng.uniform(0, 4)
        score = 1.2 * calls - 0.9 * tenure - 0.6 * spend + 0.5 + rng.gauss(0, 1.0)
        rows.append(([tenure, calls, spend], 1 if score > 0 else 0))
    return rows


train, valid = make_data(800), make_data(300)
w = [0.0, 0.0, 0.0]
b = 0.0


def predict(x):
    z = sum(wi * xi for wi, xi in zip(w, x)) + b
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


for epoch in range(1, args.epochs + 1):
    rng.shuffle(train)
    for x, y in train:
        err = predict(x) - y
        for i in range(3):
            w[i] -= args.learning_rate * (err * x[i] + args.l2 * w[i])
        b -= args.learning_rate * err
    accuracy = sum((predict(x) > 0.5) == (y == 1) for x, y in valid) / len(valid)
    run.log("accuracy", accuracy)

run.tag("features", "tenure,calls,spend")
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.json", "w") as f:
    json.dump({"weights": w, "bias": b, "features": ["tenure", "calls", "spend"]}, f)
print(f"final accuracy {accuracy:.4f}")
