"""Diagnostics of pruned networks: SHAP consistency, WeightWatcher alphas, accuracy vs sparsity.

Fits, on scikit-learn's breast cancer and digits data, the dense network, LEGCNet-FT and -PT
and the paper's random and magnitude baselines at LEGCNet's sparsity and more, then

1. compares each pruned network's SHAP feature importance with the dense network's
   (breast cancer), as the paper does;
2. reports WeightWatcher's power-law alpha of every layer (digits, a 64-50-30-10 network,
   the shape of the paper's MNIST network in Table 4);
3. plots test accuracy against the share of weights pruned.

Prints its tables under ``== title ==`` headings (docs/diagnostics.md shows them) and writes
three figures to the current folder, or to the folder given by ``--out`` (about ten minutes
on two cores)::

    python examples/diagnostics.py [--out FOLDER]
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklegc import PAPER_PARAMS, LEGCPrunedClassifier
from sklegc.diagnostics import (
    compare_importances,
    feature_importance,
    layer_quality,
    plot_accuracy_vs_sparsity,
    plot_esd,
    plot_importance_comparison,
)

# The paper's protocol (PAPER_PARAMS) with the demo's settings (sklegc/demo.py): per-sample
# SGD on breast cancer, mini-batches on digits; untraced phases stop at 95% training accuracy.
SETTINGS = {
    "breast_cancer": dict(hidden_layer_sizes=(6,), lr=0.01, max_epochs=30, batch_size=1,
                          window_size=200, trace_fraction=0.25, target_accuracy=0.95),
    "digits": dict(hidden_layer_sizes=(50, 30), lr=0.5, max_epochs=30, batch_size=16,
                   window_size=50, loss="cross_entropy", trace_fraction=0.3,
                   target_accuracy=0.95),
}
LOADERS = {"breast_cancer": load_breast_cancer, "digits": load_digits}
EXTRA_SPARSITIES = (0.3, 0.5)


def fit_models(dataset, random_state):
    """Dense, LEGCNet-FT and -PT, random and magnitude pruning at LEGCNet's sparsity and more.

    All networks start from the same initial weights (same ``random_state``). The baselines
    prune as many weights as the LEGCNet variant that pruned more.
    """
    data = LOADERS[dataset](as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.2, stratify=data.target, random_state=random_state)
    params = dict(PAPER_PARAMS, **SETTINGS[dataset], maxlag="auto", random_state=random_state)
    models, rows = {}, []

    def fit(name, method, **kw):
        model = make_pipeline(StandardScaler(), LEGCPrunedClassifier(**{**params, **kw}))
        model.fit(X_train, y_train)
        models[name] = model
        rows.append(dict(dataset=dataset, model=name, method=method,
                         sparsity=model[-1].sparsity_, accuracy=model.score(X_test, y_test)))

    fit("dense", "dense", pruning="none")
    fit("LEGC-FT", "LEGC-FT", pruning="legc", mode="ft")
    fit("LEGC-PT", "LEGC-PT", pruning="legc", mode="pt")
    n_pruned = max(models[m][-1].n_weights_pruned_ for m in ("LEGC-FT", "LEGC-PT"))
    for method in ("random", "magnitude"):
        fit(method, method, pruning=method, amount=int(n_pruned))
        for sparsity in EXTRA_SPARSITIES:
            fit(f"{method} {sparsity:.0%}", method, pruning=method, amount=sparsity)
    return models, pd.DataFrame(rows), X_test


def heading(title):
    print(f"\n== {title} ==")


def print_accuracies(runs, n_test):
    table = runs.assign(**{"% pruned": 100 * runs["sparsity"]})[["model", "% pruned", "accuracy"]]
    print(f"test accuracy on {n_test} held-out rows")
    print(table.to_string(index=False, formatters={"% pruned": "{:.1f}".format,
                                                   "accuracy": "{:.3f}".format}))


def print_decisions(models):
    """What LEGCNet's Granger step saw: windows, lag and the range of the p-values."""
    for name in ("LEGC-FT", "LEGC-PT"):
        clf = models[name][-1]
        p = clf.granger_pvalues_
        print(f"{name}: {len(clf.misclassification_)} windows, Granger lags 1 to {clf.maxlag_}, "
              f"p-values from {np.nanmin(p):.2g} to {np.nanmax(p):.2g}; "
              f"{clf.n_weights_pruned_} of {clf.n_weights_} weights pruned")


def main(out, random_state=0):
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    pd.set_option("display.width", 120)

    # 1. SHAP: does pruning keep the features the dense network relied on?
    models, cancer_runs, X_test = fit_models("breast_cancer", random_state)
    heading("breast cancer: accuracy")
    print_accuracies(cancer_runs, len(X_test))
    heading("breast cancer: LEGCNet")
    print_decisions(models)
    shap_kw = dict(background=30, max_samples=60, random_state=random_state)
    compared = ["LEGC-FT", "LEGC-PT", "random", "magnitude", "random 50%", "magnitude 50%"]
    # Same rows, background and seed for every model: the importances are comparable.
    importances = {name: feature_importance(models[name], X_test, **shap_kw)
                   for name in ["dense", *compared]}
    heading("breast cancer: dense top 5")
    print(importances["dense"]["mean"].nlargest(5).to_string(float_format="{:.3f}".format))
    rows = []
    for name in compared:
        c = compare_importances(importances["dense"], importances[name], top_k=5)
        rows.append({"model": name, "% pruned": 100 * models[name][-1].sparsity_,
                     "spearman": c.spearman, "kendall": c.kendall,
                     "top-5 overlap": c.top_k_overlap})
    heading("breast cancer: SHAP consistency")
    print(pd.DataFrame(rows).to_string(index=False, float_format="{:.3f}".format,
                                       formatters={"% pruned": "{:.1f}".format}))
    shown = {name: importances[name] for name in ("dense", "LEGC-PT", "random 50%",
                                                   "magnitude 50%")}
    figures = [out / "diagnostics_importance.png", out / "diagnostics_esd.png",
               out / "diagnostics_accuracy_vs_sparsity.png"]
    plot_importance_comparison(shown, top=15).savefig(figures[0], dpi=110)

    # 2. WeightWatcher: the paper's Table 4 on a 64-50-30-10 network.
    models, digits_runs, X_test = fit_models("digits", random_state)
    heading("digits: accuracy")
    print_accuracies(digits_runs, len(X_test))
    heading("digits: LEGCNet")
    print_decisions(models)
    rows = {}
    for name in ("dense", "LEGC-FT", "LEGC-PT", "random", "magnitude", "random 50%",
                 "magnitude 50%"):
        quality = layer_quality(models[name])
        rows[f"{name} ({100 * models[name][-1].sparsity_:.1f}%)"] = {
            f"{layer.shape[1]}->{layer.shape[0]}":
                f"{layer.alpha:.2f} / {layer.alpha_weighted:.2f}" if layer.status == "ok"
                else layer.status
            for layer in quality.itertuples()}
    heading("digits: alpha")
    print("alpha / alpha_weighted per layer (in->out), or why the fit was not made")
    print(pd.DataFrame.from_dict(rows, orient="index").to_string())
    plot_esd(models["LEGC-FT"]).savefig(figures[1], dpi=110)

    # 3. Accuracy against sparsity, for both datasets.
    runs = pd.concat([cancer_runs, digits_runs], ignore_index=True)
    plot_accuracy_vs_sparsity(runs).savefig(figures[2], dpi=110)
    heading("figures")
    print("\n".join(map(str, figures)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("."),
                        help="folder for the figures (default: the current folder)")
    parser.add_argument("--random-state", type=int, default=0,
                        help="seed of the split, the networks and SHAP (default: 0)")
    args = parser.parse_args()
    main(args.out, args.random_state)
