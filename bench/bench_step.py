"""Per-step cost of training: ``MLPClassifier`` against ``LEGCPrunedClassifier``, in one run.

Three workloads, each fitted for a fixed number of epochs (no stopping rule) by
``MLPClassifier``, by ``LEGCPrunedClassifier(pruning="none")`` (untraced) and by
``LEGCPrunedClassifier()`` (traced: the dense phase that records every weight and computes
the Lyapunov exponents of each window as it completes):

- ``iris``: the 4-8-3 sigmoid network on iris (150 rows, standardised), batch 1, the
  paper's protocol (``PAPER_PARAMS``: SGD, squared error) against
  ``MLPClassifier(solver="sgd", batch_size=1)``;
- ``mnist``: the 784-50-30-10 sigmoid network at batch 128 on a synthetic 784-feature,
  10-class problem (12,800 rows: 100 steps per epoch), ``PAPER_PARAMS`` against
  ``MLPClassifier(solver="sgd", batch_size=128)``;
- ``default``: the drop-in defaults on digits (1,797 rows, 64 features, 10 classes): 100
  ReLU units, Adam, cross-entropy, L2 ``alpha=1e-4``; ``LEGCPrunedClassifier()`` with its
  auto batch (56 rows) against ``MLPClassifier()`` (batch 200). The batches differ, so this
  workload is also compared per epoch.

The cost of a step is the CPU time of the training phase divided by its optimizer steps:
for ``MLPClassifier`` the whole ``fit``, for ``LEGCPrunedClassifier`` its dense phase (timed
by a callback; ``fine_tune=None``, so there is no other training phase). CPU time, because
the development machine is shared and its wall clock drifts; wall time is printed beside
it. Each workload is fitted ``--rounds`` times, the three estimators alternating, and the
fastest round of each is kept. All libraries are held to ``--threads`` threads (numpy's
BLAS through threadpoolctl, torch through ``torch.set_num_threads``).

Targets (issue "Training as fast per step as MLPClassifier"): traced at most 1.2x and
untraced at most 1.0x ``MLPClassifier``'s per-step cost, on ``iris`` and ``mnist``.

Usage::

    python bench/bench_step.py                    # all three workloads, 3 rounds
    python bench/bench_step.py --only iris --rounds 5
    python bench/bench_step.py --json results/step.json
    python bench/bench_step.py --table docs/data/step.json   # print a finished run

``torch`` is the floor for a torch-based estimator: a plain loop over the same module,
loss, optimizer and batches (forward, loss, backward, ``optimizer.step``, the loss read
back), without skorch and without tracing.
"""

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from skorch.callbacks import Callback

# This checkout's sklegc, not another one installed or in the working directory.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _iris():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32), y


def _mnist_like(rows=12_800, seed=0):
    rng = np.random.RandomState(seed)
    centres = rng.normal(size=(10, 784)).astype(np.float32)
    y = rng.randint(0, 10, size=rows)
    X = centres[y] + 3.0 * rng.normal(size=(rows, 784)).astype(np.float32)
    return X, y


def _digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return ((X - X.mean(0)) / (X.std(0) + 1e-9)).astype(np.float32), y


def workloads():
    """name -> (data, epochs, MLPClassifier parameters, LEGCPrunedClassifier parameters)."""
    from sklegc.estimator import PAPER_PARAMS

    return {
        "iris": (_iris, 20,
                 dict(hidden_layer_sizes=(8,), activation="logistic", solver="sgd",
                      batch_size=1, learning_rate_init=0.05),
                 dict(PAPER_PARAMS, hidden_layer_sizes=(8,), lr=0.05, window_size=160,
                      maxlag=3)),
        "mnist": (_mnist_like, 5,
                  dict(hidden_layer_sizes=(50, 30), activation="logistic", solver="sgd",
                       batch_size=128, learning_rate_init=0.5),
                  # 500 steps: windows of 50 steps give 11 windows. The Lyapunov cost per
                  # step hardly depends on the window (a window's cost grows with its
                  # length, as does the stride between windows).
                  dict(PAPER_PARAMS, hidden_layer_sizes=(50, 30), lr=0.5, batch_size=128,
                       window_size=50, maxlag=2)),
        "default": (_digits, 10, {}, {}),
    }


class PhaseClock(Callback):
    """Times the training phase it is called in (CPU and wall) and counts its steps."""

    def __init__(self, record):
        self.record = record

    def on_train_begin(self, net, **kwargs):
        self._start = (time.process_time(), time.perf_counter(), len(net.history))

    def on_train_end(self, net, **kwargs):
        cpu, wall, first = self._start
        steps = sum(row.get("train_batch_count", 0) for row in net.history[first:])
        self.record.append((time.process_time() - cpu, time.perf_counter() - wall, steps))


def fit_mlp(X, y, epochs, params):
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1,
                        random_state=0, **params)
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    clf.fit(X, y)
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    batch = min(clf.batch_size if clf.batch_size != "auto" else 200, len(y))
    steps = clf.n_iter_ * math.ceil(len(y) / batch)
    return cpu, wall, steps


def fit_sklegc(X, y, epochs, params, pruning):
    from sklegc import LEGCPrunedClassifier

    record = []
    LEGCPrunedClassifier(**{**params, "max_epochs": epochs, "tol": None, "pruning": pruning,
                            "mode": "ft", "fine_tune": None, "random_state": 0,
                            "callbacks": [PhaseClock(record)]}).fit(X, y)
    return record[0]


def fit_torch(X, y, epochs, params):
    """The floor: a plain torch loop with the same module, loss, optimizer and batches
    (forward, loss, backward, ``optimizer.step``; no skorch, no tracing)."""
    import torch

    from sklegc.batching import TensorBatches
    from sklegc.network import MLP, ClassificationLoss
    from skorch.dataset import Dataset

    torch.manual_seed(0)
    n_classes = len(np.unique(y))
    module = MLP(X.shape[1], 1 if n_classes == 2 else n_classes,
                 hidden_layer_sizes=params.get("hidden_layer_sizes", (100,)),
                 activation=params.get("activation", "relu"))
    criterion = ClassificationLoss(params.get("loss", "cross_entropy"))
    optimizer = params.get("optimizer", torch.optim.Adam)(
        module.parameters(), lr=params.get("lr", 1e-3))
    batch = params.get("batch_size", "auto")
    batch = min(200, len(y)) if batch == "auto" else batch
    batches = TensorBatches(Dataset(torch.as_tensor(X), torch.as_tensor(y)), batch,
                            shuffle=True, seed=0)
    steps = 0
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    for _ in range(epochs):
        for Xb, yb in batches:
            optimizer.zero_grad()
            loss = criterion(module(Xb), yb)
            loss.backward()
            optimizer.step()
            loss.item()  # as every framework reads the batch loss
            steps += 1
    return time.process_time() - start_cpu, time.perf_counter() - start_wall, steps


KINDS = ("mlp", "torch", "untraced", "traced")


def run(names, rounds):
    results = {}
    for name in names:
        load, epochs, mlp_params, legc_params = workloads()[name]
        X, y = load()
        best = {}
        for _ in range(rounds):
            for kind in KINDS:
                if kind == "mlp":
                    cpu, wall, steps = fit_mlp(X, y, epochs, mlp_params)
                elif kind == "torch":
                    cpu, wall, steps = fit_torch(X, y, epochs, legc_params)
                else:
                    cpu, wall, steps = fit_sklegc(X, y, epochs, legc_params,
                                                  "none" if kind == "untraced" else "legc")
                row = {"cpu_us": 1e6 * cpu / steps, "wall_us": 1e6 * wall / steps,
                       "steps": steps, "steps_per_epoch": steps / epochs}
                if kind not in best or row["cpu_us"] < best[kind]["cpu_us"]:
                    best[kind] = row
        results[name] = best
        print(_lines(name, best), flush=True)
    return results


def _lines(name, best):
    mlp = best["mlp"]
    out = [f"{name}: CPU per optimizer step (wall), fastest of the rounds"]
    for kind in KINDS:
        r = best[kind]
        ratio = r["cpu_us"] / mlp["cpu_us"]
        per_epoch = (r["cpu_us"] * r["steps_per_epoch"]) / (mlp["cpu_us"] * mlp["steps_per_epoch"])
        out.append(f"  {kind:9s} {r['cpu_us']:9.1f} us ({r['wall_us']:9.1f} us wall)  "
                   f"{ratio:5.2f}x per step, {per_epoch:5.2f}x per epoch  "
                   f"[{r['steps']} steps]")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=["iris", "mnist", "default"],
                        help="workloads to run (default: all three)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="fits of each estimator per workload, alternating (default 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for torch and numpy's BLAS (default 1)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--table", metavar="JSON", help="only print the results of a run")
    args = parser.parse_args(argv)
    if args.table:
        run_ = json.loads(Path(args.table).read_text())
        print(run_["machine"])
        for name, best in run_["results"].items():
            print(_lines(name, best))
        return 0

    import sklearn
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")  # ConvergenceWarning, PruningWarning: fixed epochs
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip() or "unknown"
    machine = (f"commit {commit}, {platform.machine()}, {os.cpu_count()} cores, load average "
               f"{os.getloadavg()[0]:.1f}, Python {platform.python_version()}, torch "
               f"{torch.__version__}, scikit-learn {sklearn.__version__}, "
               f"{args.threads} thread(s)")
    print(machine, flush=True)
    with threadpool_limits(args.threads):
        results = run(args.only or ["iris", "mnist", "default"], args.rounds)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"machine": machine, "results": results},
                                              indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
