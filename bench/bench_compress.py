"""Size, predict time and accuracy of pruned models: dense vs masked vs compressed vs ONNX Runtime.

Two parts.

``--part deploy`` (issue 13's measurements): scikit-learn's digits (features / 16) with a
64-50-30-10 network, and a synthetic MNIST-sized problem (784 features, 10 classes, 70,000
rows: bench_fit.py's data with ten times more noise, so that accuracy can move, scaled to
unit noise) with 784-50-30-10. On each, ``LEGCPrunedClassifier`` with the defaults
(ReLU, Adam, log loss, convergence stop, rewind), ``random_state=0`` and at most 200 epochs
per phase on digits, 10 on the synthetic data, is fitted:

- dense: ``pruning="none"``;
- legc: the method with its own choice of sparsity (``significance=0.05``);
- magnitude 50%, 80%, 90%: the baseline at ``amount`` 0.5, 0.8, 0.9;

each with ``granularity="weight"`` and ``"neuron"``. Every model is measured as fitted
("masked": torch's pruning masks) and after ``compress()`` ("compressed"), and the
compressed one is also converted to ONNX (``skl2onnx.to_onnx``, run by ONNX Runtime) and to
scikit-learn (``to_mlpclassifier()``). Measured per model: weight and bias entries stored,
non-zero weights, hidden units; bytes of the pickled estimator, of the network alone and of
the ONNX file (as written by skl2onnx, and with ``sklegc.export.sparse_initializers``);
``predict_proba`` time for 1 row (median of many calls) and for 100,000 rows (best of a few),
interleaved over all models so that they share the machine's load alike; test accuracy; the
largest difference in ``predict_proba`` between masked and compressed, compressed and
ONNX Runtime, compressed and ``MLPClassifier``, and each model's float32 rounding floor
(its largest difference from the same network computed in float64).

``--part dropin``: ``granularity="neuron"`` with the default ``LEGCPrunedClassifier`` on the
drop-in suite's small datasets (bench_dropin.py's loaders and splits: 5-fold stratified CV,
``StandardScaler`` pipeline, ``random_state=0``), against the weight-granularity default and
``MLPClassifier()``: accuracy, weights pruned, hidden units removed by ``compress()``.
Results are appended to a JSON file as each dataset finishes, so an interrupted run resumes.

Targets: identical predictions (<= 1e-6 compressed, <= 1e-5 ONNX); at 90% weight sparsity
the compressed model at least 5x smaller on disk than the dense one and no slower on 100,000
rows; with ``granularity="neuron"``, hidden units removed at no more than 1 point of accuracy
on every dataset. Timings are wall-clock: on a shared machine compare ratios within one run.

Usage::

    python bench/bench_compress.py                  # --part deploy, the full workload
    python bench/bench_compress.py --quick          # fewer rows, epochs and repeats
    python bench/bench_compress.py --json out.json  # also write the rows to a file
    python bench/bench_compress.py --table out.json # print the tables of a finished run
    python bench/bench_compress.py --summary out.json  # one compact table per workload
    python bench/bench_compress.py --part dropin    # needs SKLEGC_DATA_DIR for 3 datasets
"""

import argparse
import copy
import importlib.util
import json
import os
import pickle
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

# This checkout's sklegc, not another one installed or in the working directory.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HERE = Path(__file__).resolve().parent
DROPIN_DATASETS = ("iris", "wine", "breast_cancer", "digits", "banknote", "titanic", "vowel")


def mnist_like(rows, seed=0):
    rng = np.random.RandomState(seed)
    centres = rng.normal(size=(10, 784)).astype(np.float32)
    y = rng.randint(0, 10, size=rows)
    # Scaled to unit noise, as one would standardise real data before training.
    X = 0.1 * centres[y] + rng.normal(size=(rows, 784)).astype(np.float32)
    return X, y


def datasets(quick):
    """Name -> (train/test split, training parameters)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    digits = train_test_split((X / 16.0).astype(np.float32), y, test_size=0.3, random_state=0,
                              stratify=y)
    X, y = mnist_like(14_000 if quick else 70_000)
    mnist = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    return {
        "digits 64-50-30-10": (digits, dict(max_epochs=30 if quick else 200)),
        "synthetic 784-50-30-10": (mnist, dict(max_epochs=5 if quick else 10)),
    }


def configurations():
    """Label -> the pruning parameters of one model."""
    configs = {"dense": dict(pruning="none")}
    for granularity in ("weight", "neuron"):
        configs[f"legc {granularity}"] = dict(pruning="legc", granularity=granularity)
        for amount in (0.5, 0.8, 0.9):
            configs[f"magnitude {amount:.0%} {granularity}"] = dict(
                pruning="magnitude", amount=amount, granularity=granularity)
    return configs


def float64_proba(clf, X):
    import torch

    from sklegc.compress import copy_module
    from sklegc.network import scores_to_proba

    module = copy_module(clf.net_.module_).cpu().double().eval()
    with torch.no_grad():
        return scores_to_proba(module(torch.as_tensor(X, dtype=torch.float64))).numpy()


def describe(clf, X_test, y_test):
    from sklegc.compress import effective_weight
    from sklegc.network import prunable_layers

    layers = prunable_layers(clf.net_.module_)
    proba = clf.predict_proba(X_test)
    return {
        "hidden units": sum(layer.out_features for _, layer in layers[:-1]),
        "stored weights+biases": sum(layer.weight.numel() + layer.bias.numel()
                                     for _, layer in layers),
        "non-zero weights": sum(int(effective_weight(layer).count_nonzero())
                                for _, layer in layers),
        "pickle bytes": len(pickle.dumps(clf)),
        "network bytes": len(pickle.dumps(clf.net_.module_)),
        "accuracy": float((clf.classes_[proba.argmax(axis=1)] == y_test).mean()),
        "max |d proba| vs float64": float(np.abs(proba - float64_proba(clf, X_test)).max()),
    }, proba


def onnx_predictor(clf, X, threads):
    import onnxruntime as ort
    from skl2onnx import to_onnx

    from sklegc.export import sparse_initializers

    onx = to_onnx(clf, X[:1], options={"zipmap": False})
    nbytes = len(onx.SerializeToString())
    sparse = len(sparse_initializers(onx).SerializeToString())
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(onx.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return nbytes, sparse, lambda rows: session.run(None, {name: rows})[1]


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


def run_dataset(data_name, split, params, args):
    from sklegc import LEGCPrunedClassifier

    X_train, X_test, y_train, y_test = split
    X_big = X_test[np.random.RandomState(1).randint(0, len(X_test), size=args.big_rows)]
    rows, predictors = [], {}
    for label, config in configurations().items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            masked = LEGCPrunedClassifier(hidden_layer_sizes=(50, 30), random_state=0,
                                          **params, **config).fit(X_train, y_train)
        fit_s = time.perf_counter() - start
        row, reference = describe(masked, X_test, y_test)
        rows.append({"model": f"{label}, masked", "sparsity": masked.sparsity_,
                     "fit s": fit_s, **row})
        compressed = copy.deepcopy(masked).compress()
        row, proba = describe(compressed, X_test, y_test)
        onnx_bytes, onnx_sparse_bytes, run = onnx_predictor(compressed, X_test, args.threads)
        mlp = compressed.to_mlpclassifier()
        rows.append({"model": f"{label}, compressed", "sparsity": masked.sparsity_, **row,
                     "units removed": compressed.n_units_removed_,
                     "onnx bytes": onnx_bytes, "onnx bytes, sparse": onnx_sparse_bytes,
                     "max |d proba| vs masked": float(np.abs(proba - reference).max()),
                     "onnx max |d proba|": float(np.abs(run(X_test) - proba).max()),
                     "sklearn max |d proba|": float(np.abs(mlp.predict_proba(X_test)
                                                           - proba).max())})
        predictors.update({f"{label}, masked": masked.predict_proba,
                           f"{label}, compressed": compressed.predict_proba,
                           f"{label}, onnx": run, f"{label}, sklearn": mlp.predict_proba})
        print(f"# {data_name}: {label} fitted in {fit_s:.0f} s, sparsity "
              f"{masked.sparsity_:.3f}, {compressed.n_units_removed_} units removed",
              flush=True)
    one, many = timings(predictors, X_test, X_big, args.calls, args.repeats)
    for row in rows:
        label, kind = row["model"].rsplit(", ", 1)
        row["1 row s"], row["100k rows s"] = one[row["model"]], many[row["model"]]
        if kind == "compressed":
            for runtime in ("onnx", "sklearn"):
                row[f"{runtime} 1 row s"] = one[f"{label}, {runtime}"]
                row[f"{runtime} 100k rows s"] = many[f"{label}, {runtime}"]
    return [{"data": data_name, **row} for row in rows]


def deploy_report(rows):
    import pandas as pd

    frame = pd.DataFrame(rows)
    for data, part in frame.groupby("data", sort=False):
        dense = part[part.model == "dense, masked"].iloc[0]
        dense_compressed = part[part.model == "dense, compressed"].iloc[0]
        part = part.assign(**{
            "x smaller (pickle)": dense["pickle bytes"] / part["pickle bytes"],
            "x smaller (pickle) vs dense compressed": (dense_compressed["pickle bytes"]
                                                       / part["pickle bytes"]),
            "x smaller (network)": dense["network bytes"] / part["network bytes"],
            "x smaller (onnx)": dense_compressed["onnx bytes"] / part["onnx bytes"],
            "x smaller (onnx, sparse)": (dense_compressed["onnx bytes"]
                                         / part["onnx bytes, sparse"]),
            "100k time / dense": part["100k rows s"] / dense["100k rows s"],
            "onnx 100k / dense torch": part["onnx 100k rows s"] / dense["100k rows s"],
        })
        print(f"\n## {data}\n")
        print(part.drop(columns="data").set_index("model").T.to_markdown(floatfmt=".3g"))


def deploy_summary(rows):
    """One compact table per workload: each model as fitted ("masked") and compressed."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    for data, part in frame.groupby("data", sort=False):
        dense = part[part.model == "dense, masked"].iloc[0]
        print(f"\n== {data} ==\n")
        print("| model | sparsity | hidden units | accuracy | pickle (KB) | x smaller | "
              "network (KB) | ONNX (KB) | predict 100k rows (s) | x dense | ONNX Runtime "
              "100k rows (s) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for _, row in part.iterrows():
            onnx = row.get("onnx bytes")
            onnx_s = row.get("onnx 100k rows s")
            print(f"| {row.model} | {row.sparsity:.3f} | {row['hidden units']} | "
                  f"{row.accuracy:.3f} | {row['pickle bytes'] / 1e3:,.1f} | "
                  f"{dense['pickle bytes'] / row['pickle bytes']:.1f} | "
                  f"{row['network bytes'] / 1e3:,.1f} | "
                  f"{'' if pd.isna(onnx) else f'{onnx / 1e3:,.1f}'} | "
                  f"{row['100k rows s']:.3f} | {row['100k rows s'] / dense['100k rows s']:.2f} | "
                  f"{'' if pd.isna(onnx_s) else f'{onnx_s:.3f}'} |")


# -- the drop-in suite with granularity="neuron" ---------------------------------------------

def _dropin_module():
    spec = importlib.util.spec_from_file_location("bench_dropin", HERE / "bench_dropin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dropin_dataset(name, data_dir, dropin):
    from sklearn.metrics import accuracy_score
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklegc import LEGCPrunedClassifier

    loader, how, _ = dropin.SUITE[name]
    X, y = loader(data_dir)
    result = {"rows": len(y), "features": X.shape[1], "classes": len(np.unique(y))}
    models = {"mlp": lambda: MLPClassifier(random_state=0),
              "weight": lambda: LEGCPrunedClassifier(random_state=0),
              "neuron": lambda: LEGCPrunedClassifier(random_state=0, granularity="neuron")}
    for kind, make in models.items():
        scores, pruned, units, diffs, times = [], [], [], [], []
        for train, test in dropin._splits(y, how):
            model = make_pipeline(StandardScaler(), make())
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(X[train], y[train])
            times.append(time.perf_counter() - start)
            if kind != "mlp":
                before = model.predict_proba(X[test])
                model[-1].compress()
                diffs.append(float(np.abs(model.predict_proba(X[test]) - before).max()))
                pruned.append(100 * model[-1].sparsity_)
                units.append(model[-1].n_units_removed_)
            scores.append(accuracy_score(y[test], model.predict(X[test])))
        result[kind] = {"score": float(np.mean(scores)), "scores": [float(s) for s in scores],
                        "fit_s": float(np.sum(times))}
        if kind != "mlp":
            result[kind].update(pct_pruned=float(np.mean(pruned)), units_removed=units,
                                max_dproba=float(max(diffs)))
        print(f"  {name} {kind}: {np.mean(scores):.4f} in {np.sum(times):.1f} s"
              + (f", units removed {units}" if kind != "mlp" else ""), flush=True)
    return result


def dropin_table(results):
    lines = ["| dataset | rows | MLPClassifier | LEGC, weight | LEGC, neuron | neuron - weight "
             "(points) | neuron - MLP (points) | % weights pruned (weight / neuron) | hidden "
             "units removed per fold, of 100 (weight / neuron) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in [n for n in DROPIN_DATASETS if n in results]:
        r = results[name]
        mlp, weight, neuron = r["mlp"], r["weight"], r["neuron"]
        lines.append(
            f"| {name} | {r['rows']:,} | {mlp['score']:.4f} | {weight['score']:.4f} | "
            f"{neuron['score']:.4f} | {100 * (neuron['score'] - weight['score']):+.2f} | "
            f"{100 * (neuron['score'] - mlp['score']):+.2f} | {weight['pct_pruned']:.1f} / "
            f"{neuron['pct_pruned']:.1f} | {np.mean(weight['units_removed']):.1f} / "
            f"{np.mean(neuron['units_removed']):.1f} ({min(neuron['units_removed'])}-"
            f"{max(neuron['units_removed'])}) |")
    largest = max(max(r[k]["max_dproba"] for k in ("weight", "neuron")) for r in results.values())
    lines += ["", f"Largest |difference in predict_proba| made by compress(): {largest:.2g}"]
    return "\n".join(lines)


def run_dropin(args):
    dropin = _dropin_module()
    out = Path(args.out)
    saved = json.loads(out.read_text()) if out.is_file() else {"datasets": {}}
    import sklearn
    import torch

    saved["machine"] = (f"{platform.machine()}, {os.cpu_count()} cores, Python "
                        f"{platform.python_version()}, torch {torch.__version__}, "
                        f"scikit-learn {sklearn.__version__}")
    for name in args.only or DROPIN_DATASETS:
        if name in saved["datasets"]:
            continue
        try:
            saved["datasets"][name] = dropin_dataset(name, args.data_dir, dropin)
        except FileNotFoundError as exc:
            print(f"  {name}: skipped ({str(exc).splitlines()[0]})")
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(saved, indent=1))
    print(dropin_table(saved["datasets"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["deploy", "dropin"], default="deploy")
    parser.add_argument("--quick", action="store_true", help="a quick look, not final figures")
    parser.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime threads")
    parser.add_argument("--json", help="deploy: also write the rows to this file")
    parser.add_argument("--table", metavar="JSON", help="deploy: only print the tables of a run")
    parser.add_argument("--summary", metavar="JSON",
                        help="deploy: only print a compact table per workload of a run")
    parser.add_argument("--only", nargs="+", choices=DROPIN_DATASETS, help="dropin: datasets")
    parser.add_argument("--data-dir", default=os.environ.get("SKLEGC_DATA_DIR"),
                        help="dropin: folder of the paper's datasets (default: SKLEGC_DATA_DIR)")
    parser.add_argument("--out", default="results/compress_dropin.json",
                        help="dropin: JSON file the results are appended to (resumed)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if args.part == "dropin":
        run_dropin(args)
        return
    args.calls = 100 if args.quick else 1000
    args.repeats = 5
    args.big_rows = 10_000 if args.quick else 100_000
    warnings.filterwarnings("ignore", category=UserWarning, module="skl2onnx")
    if args.summary:
        deploy_summary(json.loads(Path(args.summary).read_text()))
        return 0
    if args.table:
        deploy_report(json.loads(Path(args.table).read_text()))
        return
    rows = []
    for data_name, (split, params) in datasets(args.quick).items():
        rows += run_dataset(data_name, split, params, args)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))
    deploy_report(rows)


if __name__ == "__main__":
    main()
