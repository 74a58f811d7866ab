"""The drop-in suite: ``MLPClassifier()`` against ``LEGCPrunedClassifier()``, defaults on both.

Each dataset is fitted with both estimators in a ``StandardScaler`` pipeline, on the same
splits (5-fold stratified cross-validation; one 80/20 split for the two largest), with
nothing but ``random_state`` set. Reported per dataset: accuracy (balanced accuracy for the
1%-positive set, which both sides fit with balanced weights), the share of weights pruned,
the fit time summed over the folds, and the ratios. Targets (issue "a true drop-in"): no
failure; mean accuracy over the suite at least MLPClassifier's minus 0.5 points and no
dataset more than 2 points below; weights pruned on most datasets; total fit time at most
3x MLPClassifier's.

Results are appended to a JSON file as each dataset finishes, so an interrupted run resumes.
Before the suite, both estimators fit a small problem once, untimed: the first fit of a
process loads torch's and numba's code, and the first after installing also compiles the
kernels (docs/performance.md, "The first fit"), a one-time cost that would otherwise be
charged to whichever dataset comes first.

Usage::

    python bench/bench_dropin.py                         # the whole suite (about an hour)
    python bench/bench_dropin.py --only iris wine        # some datasets
    python bench/bench_dropin.py --table results/dropin.json   # print a finished run
    python bench/bench_dropin.py --legc '{"amount": 1.0, "max_accuracy_drop": 0.01}' \
        --out results/dropin_bounded.json                # LEGC with parameters beyond the defaults
"""

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.datasets import make_classification
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

# This checkout's sklegc, not another one installed or in the working directory.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _paper(name):
    def load(data_dir):
        from sklegc.datasets import load_dataset

        data = load_dataset(name, data_dir, scale=False)
        return (np.vstack([data.X_train, data.X_test]),
                np.concatenate([data.y_train, data.y_test]))
    return load


def _synthetic(n, **kwargs):
    return lambda data_dir: make_classification(n, random_state=0, **kwargs)


# name -> (loader, evaluation: "cv" (5 folds) or "split" (one 80/20 split), balanced?)
SUITE = {
    "iris": (lambda d: load_iris(return_X_y=True), "cv", False),
    "wine": (lambda d: load_wine(return_X_y=True), "cv", False),
    "breast_cancer": (lambda d: load_breast_cancer(return_X_y=True), "cv", False),
    "digits": (lambda d: load_digits(return_X_y=True), "cv", False),
    "banknote": (_paper("banknote"), "cv", False),
    "titanic": (_paper("titanic"), "cv", False),
    "vowel": (_paper("vowel"), "cv", False),
    "synthetic_1k": (_synthetic(1_000), "cv", False),
    "imbalanced_2k": (_synthetic(2_000, n_features=10, weights=[0.99]), "cv", True),
    "synthetic_100k": (_synthetic(100_000), "split", False),
    "synthetic_1m": (_synthetic(1_000_000), "split", False),
}


def _splits(y, how):
    if how == "split":
        index = np.arange(len(y))
        train, test = train_test_split(index, test_size=0.2, stratify=y, random_state=0)
        return [(train, test)]
    return list(StratifiedKFold(5, shuffle=True, random_state=0).split(np.zeros(len(y)), y))


def _fit_one(kind, X_train, y_train, balanced, legc_params=None):
    from sklegc import LEGCPrunedClassifier

    if kind == "mlp":
        model = make_pipeline(StandardScaler(), MLPClassifier(random_state=0))
        weights = compute_sample_weight("balanced", y_train) if balanced else None
        fit_params = {} if weights is None else {"mlpclassifier__sample_weight": weights}
    else:
        extra = dict(legc_params or {}, **({"class_weight": "balanced"} if balanced else {}))
        model = make_pipeline(StandardScaler(), LEGCPrunedClassifier(random_state=0, **extra))
        fit_params = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        model.fit(X_train, y_train, **fit_params)
        elapsed = time.perf_counter() - start
    messages = sorted({f"{w.category.__name__}: {str(w.message)[:90]}" for w in caught
                       if w.category.__name__ in ("PruningWarning", "ConvergenceWarning",
                                                  "UserWarning")})
    return model, elapsed, messages


def warm_up():
    """Fit both estimators once on a small problem (see the module docstring)."""
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    for kind in ("mlp", "legc"):
        _fit_one(kind, X, y, False)


def run_dataset(name, data_dir, legc_params=None):
    loader, how, balanced = SUITE[name]
    X, y = loader(data_dir)
    score = balanced_accuracy_score if balanced else accuracy_score
    result = {"rows": len(y), "features": X.shape[1], "classes": len(np.unique(y)),
              "evaluation": "5-fold CV" if how == "cv" else "80/20 split",
              "metric": "balanced accuracy" if balanced else "accuracy"}
    for kind in ("mlp", "legc"):
        scores, times, pruned, notes = [], [], [], set()
        for train, test in _splits(y, how):
            model, elapsed, messages = _fit_one(kind, X[train], y[train], balanced, legc_params)
            scores.append(score(y[test], model.predict(X[test])))
            times.append(elapsed)
            notes.update(messages)
            if kind == "legc":
                clf = model[-1]
                pruned.append(100 * clf.sparsity_)
        result[kind] = {"score": float(np.mean(scores)), "scores": [float(s) for s in scores],
                        "fit_s": float(np.sum(times)), "notes": sorted(notes)}
        if kind == "legc":
            result[kind]["pct_pruned"] = float(np.mean(pruned))
            result[kind]["batch_size"] = int(clf.batch_size_)
            result[kind]["window_size"] = clf.window_size_
            result[kind]["epochs"] = int(clf.n_iter_)
        print(f"  {name} {kind}: {np.mean(scores):.4f} in {np.sum(times):.1f} s", flush=True)
    return result


def table(results):
    """The suite as a markdown table, with the summary lines."""
    lines = ["| dataset | rows | metric | MLPClassifier | LEGCPrunedClassifier | difference "
             "(points) | % pruned | MLP fit (s) | LEGC fit (s) | time ratio |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    names = [n for n in SUITE if n in results]
    for name in names:
        r = results[name]
        diff = 100 * (r["legc"]["score"] - r["mlp"]["score"])
        lines.append(
            f"| {name} | {r['rows']:,} | {r['metric']} ({r['evaluation']}) | "
            f"{r['mlp']['score']:.4f} | {r['legc']['score']:.4f} | {diff:+.2f} | "
            f"{r['legc']['pct_pruned']:.1f} | {r['mlp']['fit_s']:.1f} | {r['legc']['fit_s']:.1f} | "
            f"{r['legc']['fit_s'] / r['mlp']['fit_s']:.1f}x |")
    diffs = [100 * (results[n]["legc"]["score"] - results[n]["mlp"]["score"]) for n in names]
    mlp_time = sum(results[n]["mlp"]["fit_s"] for n in names)
    legc_time = sum(results[n]["legc"]["fit_s"] for n in names)
    pruned = sum(results[n]["legc"]["pct_pruned"] > 0 for n in names)
    lines += [
        "",
        f"- mean score: MLPClassifier {np.mean([results[n]['mlp']['score'] for n in names]):.4f}, "
        f"LEGCPrunedClassifier {np.mean([results[n]['legc']['score'] for n in names]):.4f} "
        f"(difference {np.mean(diffs):+.2f} points; target >= -0.5)",
        f"- largest drop: {min(diffs):+.2f} points ({names[int(np.argmin(diffs))]}; "
        "target >= -2)",
        f"- weights pruned on {pruned} of {len(names)} datasets",
        f"- total fit time: MLPClassifier {mlp_time:.1f} s, LEGCPrunedClassifier "
        f"{legc_time:.1f} s, ratio {legc_time / mlp_time:.2f}x (target <= 3x)",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(SUITE), help="datasets to run")
    parser.add_argument("--data-dir", default=os.environ.get("SKLEGC_DATA_DIR"),
                        help="folder of the paper's datasets (default: SKLEGC_DATA_DIR)")
    parser.add_argument("--out", default="results/dropin.json",
                        help="JSON file the results are appended to (resumed if present)")
    parser.add_argument("--table", metavar="JSON", help="only print the table of a run")
    parser.add_argument("--legc", metavar="JSON", type=json.loads, default={},
                        help="parameters given to LEGCPrunedClassifier beside random_state, as "
                             "a JSON object (default: none, the defaults)")
    args = parser.parse_args(argv)
    if args.table:
        print(table(json.loads(Path(args.table).read_text())["datasets"]))
        return 0
    out = Path(args.out)
    saved = (json.loads(out.read_text()) if out.is_file()
             else {"datasets": {}, "legc_params": args.legc})
    if saved.setdefault("legc_params", {}) != args.legc:
        parser.error(f"{out} holds a run with --legc '{json.dumps(saved['legc_params'])}'; "
                     "use another --out for other parameters")
    import sklearn
    import torch

    saved["machine"] = (f"{platform.machine()}, {os.cpu_count()} cores, Python "
                        f"{platform.python_version()}, torch {torch.__version__}, "
                        f"scikit-learn {sklearn.__version__}")
    todo = [name for name in args.only or list(SUITE) if name not in saved["datasets"]]
    if todo:
        warm_up()
    for name in todo:
        try:
            saved["datasets"][name] = run_dataset(name, args.data_dir, args.legc)
        except FileNotFoundError as exc:
            print(f"  {name}: skipped ({str(exc).splitlines()[0]})")
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(saved, indent=1))
    print(table(saved["datasets"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
