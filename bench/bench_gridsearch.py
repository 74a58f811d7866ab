"""Wall time of a grid search over LEGCPrunedClassifier with one joblib worker and with two.

The workload: the breast-cancer data (569 rows, 30 standardised features), a 30-h-1
sigmoid network trained with batch size 1 for ``--epochs`` epochs, windows of 160 steps,
maxlag 4, and a grid of 2 x 2 candidates under 3-fold cross-validation (12 fits, plus the
refit). Both searches run in this one invocation on the same data and grid, the one-worker
search first, so that the numba kernels are compiled and cached on disk before the workers
load them; the two-worker search's time includes starting its worker processes. The
script also checks that both searches found the same scores, and reports the torch
threads the fits used.

Usage::

    python bench/bench_gridsearch.py               # the workload above
    python bench/bench_gridsearch.py --epochs 4    # a quick look
"""

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

# This checkout's sklegc, not another one installed or in the working directory.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklegc import LEGCPrunedClassifier  # noqa: E402
from sklegc.estimator import PAPER_PARAMS, PruningWarning  # noqa: E402


class RecordThreads(Callback):
    """Record torch's thread count in the history, to see what each worker used."""

    def on_epoch_end(self, net, **kwargs):
        net.history.record("torch_threads", torch.get_num_threads())


def most_threads(estimator, X, y):
    return max(row["torch_threads"] for row in estimator.net_.history)


def search(n_jobs, X, y, epochs):
    clf = LEGCPrunedClassifier(**{**PAPER_PARAMS, "window_size": 160, "maxlag": 4},
                               hidden_layer_sizes=(6,), lr=0.05, max_epochs=epochs, random_state=0,
                               callbacks=[RecordThreads()])
    grid = {"significance": [0.01, 0.05], "hidden_layer_sizes": [(4,), (6,)]}
    gs = GridSearchCV(clf, grid, cv=StratifiedKFold(3, shuffle=True, random_state=0),
                      scoring={"accuracy": "accuracy", "threads": most_threads},
                      refit="accuracy", n_jobs=n_jobs)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PruningWarning)
        gs.fit(X, y)
    return time.perf_counter() - start, gs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical "
          f"CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads, "
          f"load average before {os.getloadavg()[0]:.2f}")
    one_time, one = search(1, X, y, args.epochs)
    two_time, two = search(2, X, y, args.epochs)
    same = np.array_equal(one.cv_results_["mean_test_accuracy"],
                          two.cv_results_["mean_test_accuracy"])
    print(f"12 fits + refit, {args.epochs} epochs of batch-1 SGD each")
    print(f"n_jobs=1: {one_time:7.2f} s   (torch threads per fit: "
          f"{int(one.cv_results_['mean_test_threads'].max())})")
    print(f"n_jobs=2: {two_time:7.2f} s   (torch threads per fit in the workers: "
          f"{int(two.cv_results_['mean_test_threads'].max())})")
    print(f"speedup: {one_time / two_time:.2f}x   identical scores: {same}   "
          f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
