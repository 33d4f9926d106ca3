"""The baseline of tests/bench/bench_sweep_search.sh: Optuna's TPE sampler
(default settings, seeded) on the same functions and budget as
sweep_search_driver; prints the regret of each seed.
    optuna_search.py branin|hartmann6 TRIALS SEEDS"""
import math
import sys

import optuna

ALPHA = [1.0, 1.2, 3.0, 3.2]
A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
     [17, 8, 0.05, 10, 0.1, 14]]
P = [[0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886], [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
     [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650], [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381]]


def branin(trial):
    x1 = trial.suggest_float("x1", -5, 10)
    x2 = trial.suggest_float("x2", 0, 15)
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def hartmann6(trial):
    x = [trial.suggest_float("x%d" % (j + 1), 0, 1) for j in range(6)]
    return -sum(ALPHA[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j]) ** 2 for j in range(6)))
                for i in range(4))


def main():
    function, trials, seeds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    objective, optimum = (branin, 0.397887357729739) if function == "branin" else (hartmann6, -3.32236801141551)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for seed in range(1, seeds + 1):
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(objective, n_trials=trials)
        print("%.6g" % (study.best_value - optimum))


main()
