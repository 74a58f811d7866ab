"""The demo: MLPClassifier() and LEGCPrunedClassifier() as drop-ins, then the paper's protocol
(dense network vs LEGCNet-FT vs LEGCNet-PT) on a dataset bundled with scikit-learn.

The first two rows are what a scikit-learn user gets by swapping one class for the other,
defaults on both sides. The other rows follow the paper's protocol (per-sample SGD, sigmoid
units, squared-error loss; ``PAPER_PARAMS``). Besides the paper's decision rule (p >= 0.05
pruned), they show LEGCNet-FT with a Bonferroni correction over the weights: with the
minimum p-value over 14 lags, the paper's rule finds almost every weight causal on small,
easy tabular problems.
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .estimator import PAPER_PARAMS, LEGCPrunedClassifier, PruningWarning

# Settings in the spirit of the paper's tabular experiments (per-sample SGD, sigmoid units,
# squared-error loss, windows of about 200 steps), sized to run in about a minute on a laptop.
DEMOS = {
    "breast_cancer": dict(
        loader=load_breast_cancer,
        params=dict(hidden_layer_sizes=(6,), lr=0.01, max_epochs=30, batch_size=1,
                    window_size=200, trace_fraction=0.25, target_accuracy=0.95),
    ),
    "iris": dict(
        loader=load_iris,
        params=dict(hidden_layer_sizes=(6,), lr=0.05, max_epochs=200, batch_size=1,
                    window_size=160, trace_fraction=0.25, target_accuracy=0.95),
    ),
    "digits": dict(
        loader=load_digits,
        params=dict(hidden_layer_sizes=(50, 30), lr=0.5, max_epochs=30, batch_size=16,
                    window_size=50, loss="cross_entropy", trace_fraction=0.3,
                    target_accuracy=0.95),
    ),
}


def run_demo(dataset="breast_cancer", random_state=0, verbose=0):
    """Fit MLPClassifier(), LEGCPrunedClassifier() and the paper's protocol; compare on held-out data.

    The rows: ``MLPClassifier()`` and ``LEGCPrunedClassifier()`` with their defaults (only
    ``random_state`` set), then, with ``PAPER_PARAMS`` and the dataset's sizes, the dense
    network, LEGCNet-FT, LEGCNet-FT with a Bonferroni correction, and LEGCNet-PT.

    Parameters
    ----------
    dataset : {"breast_cancer", "iris", "digits"}, default="breast_cancer"
        A dataset bundled with scikit-learn.
    random_state : int, default=0
        Seed of the split and of the networks (all three start from the same weights).
    verbose : int, default=0
        Passed to the estimators.

    Returns
    -------
    rows : list of dict
        One row per model: accuracy, macro F1, weights kept (non-zero weights of the
        final network), % pruned, epochs trained (``n_iter_``, all phases), epochs to the
        training-accuracy target (of the sparse phase; the dense one for "dense"), fit
        time in seconds.
    notes : list of str
        The pruning warnings each fit raised (for example a Granger lag lowered to fit the
        number of windows).
    """
    if dataset not in DEMOS:
        raise ValueError(f"unknown demo dataset {dataset!r}; choose one of {sorted(DEMOS)}.")
    spec = DEMOS[dataset]
    X, y = spec["loader"](return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=random_state
    )
    models = {
        "dense": dict(pruning="none"),
        "LEGCNet-FT": dict(pruning="legc", mode="ft"),
        "LEGCNet-FT+Bonf": dict(pruning="legc", mode="ft", correction="bonferroni"),
        "LEGCNet-PT": dict(pruning="legc", mode="pt"),
    }
    rows, notes = [], []
    for name, make in (("MLPClassifier()", lambda: MLPClassifier(random_state=random_state)),
                       ("LEGCPrunedClassifier()",
                        lambda: LEGCPrunedClassifier(random_state=random_state))):
        clf = make()
        model = make_pipeline(StandardScaler(), clf)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(X_train, y_train)
        elapsed = time.perf_counter() - start
        notes += [f"{name}: {w.message}" for w in caught if issubclass(w.category, PruningWarning)]
        pred = model.predict(X_test)
        pruned = getattr(clf, "sparsity_", 0.0)
        rows.append({
            "model": name,
            "accuracy": accuracy_score(y_test, pred),
            "F1 (macro)": f1_score(y_test, pred, average="macro"),
            "weights kept": sum(int(np.count_nonzero(c)) for c in clf.coefs_),
            "% pruned": 100 * pruned,
            "epochs": clf.n_iter_,
            "epochs to target": "-",
            "fit time (s)": elapsed,
        })
    for name, extra in models.items():
        clf = LEGCPrunedClassifier(**{**PAPER_PARAMS, **spec["params"], **extra, "maxlag": "auto"},
                                   random_state=random_state, verbose=verbose)
        model = make_pipeline(StandardScaler(), clf)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PruningWarning)
            model.fit(X_train, y_train)
        elapsed = time.perf_counter() - start
        notes += [f"{name}: {w.message}" for w in caught if issubclass(w.category, PruningWarning)]
        pred = model.predict(X_test)
        rows.append({
            "model": name,
            "accuracy": accuracy_score(y_test, pred),
            "F1 (macro)": f1_score(y_test, pred, average="macro"),
            "weights kept": clf.flops_,
            "% pruned": 100 * clf.sparsity_,
            "epochs": clf.n_iter_,
            "epochs to target": _epochs(clf),
            "fit time (s)": elapsed,
        })
    return rows, notes


def _epochs(clf):
    # Nothing pruned: the dense network is the answer, and so is its epoch count.
    phase = "dense" if clf.pruning == "none" or not clf.n_weights_pruned_ else "sparse"
    epochs = clf.epochs_to_target_[phase]
    return "-" if epochs is None else str(epochs)


def format_table(rows):
    """Render the demo's rows as an aligned text table."""
    headers = list(rows[0])
    cells = [[_fmt(row[h]) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) for h, w in zip(headers, widths))
    body = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join([line, "-" * len(line), *body])


def _fmt(value):
    if isinstance(value, (float, np.floating)):
        return f"{value:.4f}" if value < 10 else f"{value:.1f}"
    return str(value)
