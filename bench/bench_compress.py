"""Size, predict time and accuracy of pruned models: dense vs masked vs compressed vs ONNX Runtime.

Two networks, as in issue 13: scikit-learn's digits with 64-50-30-10, and a synthetic
MNIST-sized problem with 784-50-30-10 (the data of bench_fit.py). For each, one dense
sigmoid network is trained; every pruned model starts from it: the masks are attached to the
trained weights (magnitude pruning: global L1 over weights for ``granularity="weight"``, the
rows of smallest L1 norm per hidden layer for ``"neuron"``), and the sparse network is
fine-tuned from there (``fine_tune="continue"``). Each pruned model is then compressed
(``sklegc.compress.compress_module``, as ``LEGCPrunedClassifier.compress()`` will do) and
converted to ONNX (``skl2onnx.to_onnx`` with sklegc's converter).

Measured per model: stored weight entries and non-zero weights; bytes of the pickled
estimator, of the estimator without its dense rewind point ``initial_state_``, of the
network alone, and of the ONNX model; predict_proba time for 1 row (median of many calls)
and for 100,000 rows (best of a few), interleaved across all models so that they share
the machine's load alike; test accuracy; the largest difference in predict_proba between
the masked model and the compressed one, and between the compressed one and ONNX Runtime.
The synthetic data are bench_fit.py's with ten times more noise (so that accuracy can
move), scaled to unit noise. The float32 rounding floor is shown beside the differences:
each model's largest difference from the same network computed in float64.

Targets: identical predictions (<= 1e-6 compressed, <= 1e-5 ONNX); at 90% weight sparsity
the compressed model at least 5x smaller on disk than the dense one and no slower on 100,000
rows. Timings are wall-clock: on a shared machine compare the ratios within one run only.

Usage::

    python bench/bench_compress.py            # the full workload
    python bench/bench_compress.py --quick    # fewer epochs, rows and repeats
"""

import argparse
import copy
import json
import pickle
import statistics
import time
import warnings

import numpy as np


def mnist_like(rows, seed=0):
    rng = np.random.RandomState(seed)
    centres = rng.normal(size=(10, 784)).astype(np.float32)
    y = rng.randint(0, 10, size=rows)
    # Scaled to unit noise, as one would standardise real data before training.
    X = 0.1 * centres[y] + rng.normal(size=(rows, 784)).astype(np.float32)
    return X, y


def datasets(quick):
    """Name -> (train/test split, training parameters of the dense network)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    digits = train_test_split((X / 16.0).astype(np.float32), y, test_size=0.3, random_state=0,
                              stratify=y)
    X, y = mnist_like(14_000 if quick else 70_000)
    mnist = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    return {
        "digits 64-50-30-10": (digits, dict(lr=0.2, batch_size=16,
                                            max_epochs=8 if quick else 30)),
        "synthetic 784-50-30-10": (mnist, dict(lr=0.5, batch_size=128,
                                               max_epochs=3 if quick else 20)),
    }


def compress_estimator(clf):
    """What ``LEGCPrunedClassifier.compress()`` is to do."""
    import torch

    from sklegc.compress import compress_module

    result = compress_module(clf.net_.module_, example_inputs=torch.zeros(1, clf.n_features_in_))
    clf.net_.module_ = result.module
    clf.net_.initialize_optimizer()  # the old optimizer holds the old, dense parameters
    clf.n_units_removed_ = result.n_units_removed
    return clf, result


def pruned_copy(dense, granularity, amount, X, y, epochs):
    """Magnitude pruning of the trained weights, then fine-tuning: fine_tune="continue"."""
    from sklegc.masks import apply_baseline, apply_unit_baseline
    from sklegc.network import prunable_layers

    clf = copy.deepcopy(dense)
    layers = prunable_layers(clf.net_.module_)
    prune = apply_baseline if granularity == "weight" else apply_unit_baseline
    clf.mask_ = prune(layers, "magnitude", amount, generator_seed=0)
    clf.pruned_ = ~np.concatenate([m.reshape(-1) for m in clf.mask_.values()])
    net = clf.net_
    net.set_params(max_epochs=epochs, callbacks=[])
    net.initialize_callbacks()
    net.initialize_optimizer()
    net.partial_fit(X, np.searchsorted(clf.classes_, y).astype(np.int64))
    return clf


def onnx_session(clf, X, threads):
    import onnxruntime as ort
    from skl2onnx import to_onnx

    onx = to_onnx(clf, X[:1], options={"zipmap": False}).SerializeToString()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(onx, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return len(onx), lambda rows: session.run(None, {name: rows})[1]


def timings(predictors, X, X_big, calls, repeats):
    """Median time of one-row calls and best time on ``X_big``, interleaved across predictors."""
    one = {name: [] for name in predictors}
    many = {name: [] for name in predictors}
    for _ in range(repeats):
        for name, predict in predictors.items():
            for _ in range(calls // repeats):
                start = time.perf_counter()
                predict(X[:1])
                one[name].append(time.perf_counter() - start)
            start = time.perf_counter()
            predict(X_big)
            many[name].append(time.perf_counter() - start)
    return ({name: statistics.median(t) for name, t in one.items()},
            {name: min(t) for name, t in many.items()})


def float64_proba(clf, X):
    import torch

    from sklegc.compress import copy_module
    from sklegc.network import scores_to_proba

    module = copy_module(clf.net_.module_).cpu().double().eval()
    with torch.no_grad():
        return scores_to_proba(module(torch.as_tensor(X, dtype=torch.float64))).numpy()


def sizes_and_accuracy(clf, X_test, y_test):
    from sklegc.compress import effective_weight
    from sklegc.network import prunable_layers

    layers = prunable_layers(clf.net_.module_)
    proba = clf.predict_proba(X_test)
    return {
        "max |d proba| vs float64": float(np.abs(proba - float64_proba(clf, X_test)).max()),
        "stored weights+biases": sum(layer.weight.numel() + layer.bias.numel()
                                     for _, layer in layers),
        "non-zero weights": sum(int(effective_weight(layer).count_nonzero())
                                for _, layer in layers),
        "pickle bytes": len(pickle.dumps(clf)),
        "pickle bytes, no initial_state_": len(pickle.dumps(
            {k: v for k, v in vars(clf).items() if k != "initial_state_"})),
        "network bytes": len(pickle.dumps(clf.net_.module_)),
        "accuracy": float((clf.classes_[proba.argmax(axis=1)] == y_test).mean()),
    }, proba


def run_dataset(data_name, split, params, args):
    from sklegc import LEGCPrunedClassifier

    X_train, X_test, y_train, y_test = split
    X_big = X_test[np.random.RandomState(1).randint(0, len(X_test), size=args.big_rows)]
    dense = LEGCPrunedClassifier(hidden_layer_sizes=(50, 30), loss="cross_entropy",
                                 optimizer__momentum=0.9, pruning="none", random_state=0,
                                 **params).fit(X_train, y_train)
    print(f"# {data_name}: dense trained", flush=True)
    row, _ = sizes_and_accuracy(dense, X_test, y_test)
    nbytes, run = onnx_session(dense, X_test, args.threads)
    rows = [{"model": "dense", **row, "onnx bytes": nbytes}]
    predictors = {"dense": dense.predict_proba, "onnx dense": run}
    for granularity in ("weight", "neuron"):
        for amount in (0.5, 0.8, 0.9):
            label = f"{granularity} {amount:.0%}"
            masked = pruned_copy(dense, granularity, amount, X_train, y_train, args.tune_epochs)
            row, reference = sizes_and_accuracy(masked, X_test, y_test)
            rows.append({"model": f"masked {label}", **row})
            compressed, result = compress_estimator(copy.deepcopy(masked))
            row, proba = sizes_and_accuracy(compressed, X_test, y_test)
            nbytes, run = onnx_session(compressed, X_test, args.threads)
            rows.append({"model": f"compressed {label}", **row,
                         "units removed": result.n_units_removed, "onnx bytes": nbytes,
                         "max |d proba| vs masked": float(np.abs(proba - reference).max()),
                         "onnx max |d proba|": float(np.abs(run(X_test) - proba).max())})
            predictors.update({f"masked {label}": masked.predict_proba,
                               f"compressed {label}": compressed.predict_proba,
                               f"onnx {label}": run})
            print(f"# {data_name}: {label} pruned and compressed", flush=True)
    one, many = timings(predictors, X_test, X_big, args.calls, args.repeats)
    for row in rows:
        row["1 row s"], row["100k rows s"] = one[row["model"]], many[row["model"]]
        onnx_name = "onnx " + row["model"].split(" ", 1)[-1]
        if row["model"] != "dense" and not row["model"].startswith("compressed"):
            continue
        row["onnx 1 row s"], row["onnx 100k rows s"] = one[onnx_name], many[onnx_name]
    return [{"data": data_name, **row} for row in rows]


def report(rows):
    import pandas as pd

    frame = pd.DataFrame(rows)
    for data, part in frame.groupby("data", sort=False):
        dense = part[part.model == "dense"].iloc[0]
        part = part.assign(**{
            "x smaller (pickle)": dense["pickle bytes"] / part["pickle bytes"],
            "x smaller (no initial_state_)": (dense["pickle bytes, no initial_state_"]
                                              / part["pickle bytes, no initial_state_"]),
            "x smaller (network)": dense["network bytes"] / part["network bytes"],
            "100k time / dense": part["100k rows s"] / dense["100k rows s"],
            "onnx 100k / dense torch": part["onnx 100k rows s"] / dense["100k rows s"],
        })
        print(f"\n## {data}\n")
        print(part.drop(columns="data").set_index("model").T.to_markdown(floatfmt=".3g"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quick look, not final figures")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    args.tune_epochs = 2 if args.quick else 10
    args.calls = 100 if args.quick else 1000
    args.repeats = 5
    args.big_rows = 100_000

    import torch

    torch.set_num_threads(args.threads)
    from sklegc.export import install_onnx_registration

    install_onnx_registration()
    warnings.filterwarnings("ignore", category=UserWarning, module="skl2onnx")
    rows = []
    for data_name, (split, params) in datasets(args.quick).items():
        rows += run_dataset(data_name, split, params, args)
    report(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
