"""Optuna TPESampler (defaults) on the same problems as bench_sampler.cpp; one JSON line per function.

Run with Debian's Python (python3-optuna): /usr/bin/python3 optuna_bench.py [--trials 100] [--seeds 20]
"""
import argparse
import json
import math
import statistics
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)


def branin(t):
    x1 = t.suggest_float("x1", -5, 10)
    x2 = t.suggest_float("x2", 0, 15)
    b, c, r, s, tt = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 6, 10, 1 / (8 * math.pi)
    return (x2 - b * x1 * x1 + c * x1 - r) ** 2 + s * (1 - tt) * math.cos(x1) + s


A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
     [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
ALPHA = [1.0, 1.2, 3.0, 3.2]


def hartmann6(t):
    x = [t.suggest_float("x%d" % j, 0, 1) for j in range(6)]
    s = 0.0
    for i in range(4):
        s += ALPHA[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j] * 1e-4) ** 2 for j in range(6)))
    return -s


def quadratic(t):
    x1 = t.suggest_float("x1", -10, 10)
    x2 = t.suggest_float("x2", -10, 10)
    return (x1 - 1) ** 2 + (x2 - 2) ** 2


PROBLEMS = [("branin", branin, 0.397887), ("hartmann6", hartmann6, -3.32237), ("quadratic", quadratic, 0.0)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=20)
    a = ap.parse_args()
    for name, f, opt in PROBLEMS:
        t0 = time.time()
        regrets = []
        for seed in range(a.seeds):
            study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
            study.optimize(f, n_trials=a.trials)
            regrets.append(study.best_value - opt)
        print(json.dumps({"function": name, "sampler": "optuna_tpe", "optuna": optuna.__version__,
                          "median_regret": statistics.median(regrets), "seconds": round(time.time() - t0, 3),
                          "regrets": [round(r, 6) for r in regrets]}), flush=True)


if __name__ == "__main__":
    main()
