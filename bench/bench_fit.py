"""Fit time and peak memory of LEGC-FT and LEGC-PT against a plain skorch fit.

The workload is the paper's MNIST setting: a synthetic 784-feature, 10-class problem with
49,000 training rows, the 784-50-30-10 sigmoid network, batch 128, 50 epochs, windows of
200 steps (106 windows over the run). Each fit runs in its own process so that its peak
resident memory is its own; the three run one after another in one invocation of this
script, so the ratios compare like with like.

Targets (docs/performance.md): LEGC-FT at most 3x the dense fit time (it trains twice by
design), LEGC-PT at most 1.5x, and peak memory at most 300 MB above the dense fit's.

Usage::

    python bench/bench_fit.py                 # the full workload
    python bench/bench_fit.py --epochs 10 --rows 20000   # a quick look
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# This checkout's sklegc, not another one installed or in the working directory.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_data(rows, seed=0):
    rng = np.random.RandomState(seed)
    centres = rng.normal(size=(10, 784)).astype(np.float32)
    y = rng.randint(0, 10, size=rows)
    X = centres[y] + 3.0 * rng.normal(size=(rows, 784)).astype(np.float32)
    return X, y


def run_one(kind, rows, epochs, threads):
    import torch

    torch.set_num_threads(threads)
    X, y = make_data(rows)
    start = time.perf_counter()
    extra = {}
    if kind == "dense":
        from skorch import NeuralNet

        from sklegc.network import MLP, ClassificationLoss

        torch.manual_seed(0)
        NeuralNet(MLP, criterion=ClassificationLoss, module__n_features=784,
                  module__n_outputs=10, module__hidden_layer_sizes=(50, 30),
                  lr=0.5, max_epochs=epochs, batch_size=128, train_split=None,
                  iterator_train__shuffle=True, verbose=0).fit(X, y)
    else:
        from sklegc import LEGCPrunedClassifier
        from sklegc.estimator import PAPER_PARAMS

        clf = LEGCPrunedClassifier(**{**PAPER_PARAMS, "batch_size": 128, "maxlag": "auto",
                                      "mode": kind, "trace_fraction": 0.1},
                                   hidden_layer_sizes=(50, 30), lr=0.5, max_epochs=epochs,
                                   random_state=0).fit(X, y)
        extra = dict(phases={k: round(v, 2) for k, v in clf.phase_times_.items()},
                     windows=len(clf.misclassification_), pruned=clf.n_weights_pruned_,
                     weights=clf.n_weights_)
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(kind=kind, seconds=elapsed, peak_mb=peak_mb, **extra)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=49_000)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--run", choices=["dense", "ft", "pt"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_one(args.run, args.rows, args.epochs, args.threads)))
        return
    results = {}
    for kind in ("dense", "ft", "pt"):
        out = subprocess.run(
            [sys.executable, __file__, "--run", kind, "--rows", str(args.rows),
             "--epochs", str(args.epochs), "--threads", str(args.threads)],
            capture_output=True, text=True,
        )
        if out.returncode:
            sys.exit(f"the {kind} fit failed:\n{out.stderr}")
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(results[kind]), flush=True)
    dense = results["dense"]
    print(f"\n{args.rows} rows, 784-50-30-10, batch 128, {args.epochs} epochs, "
          f"{args.threads} torch threads")
    print(f"{'fit':<8}{'seconds':>10}{'x dense':>10}{'peak MB':>10}{'+MB vs dense':>14}")
    for kind, label in (("dense", "skorch"), ("ft", "LEGC-FT"), ("pt", "LEGC-PT")):
        r = results[kind]
        print(f"{label:<8}{r['seconds']:>10.1f}{r['seconds'] / dense['seconds']:>10.2f}"
              f"{r['peak_mb']:>10.0f}{r['peak_mb'] - dense['peak_mb']:>14.0f}")


if __name__ == "__main__":
    main()
