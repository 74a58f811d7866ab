"""Look inside a pruning decision: the mask, the Lyapunov exponents and the p-values.

Writes ``inspect_pruning.png`` to the current folder, or to the folder given by ``--out``::

    python examples/inspect_pruning.py [--out FOLDER]
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler

from sklegc import PAPER_PARAMS, LEGCPrunedClassifier

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path("."),
                    help="folder for inspect_pruning.png (default: the current folder)")
out = parser.parse_args().out

X, y = load_iris(return_X_y=True)
X = StandardScaler().fit_transform(X)
# The paper's protocol (per-sample SGD, sigmoid units, the whole run traced) with its iris
# settings: 6 hidden units, lr 0.05, 200 epochs, windows of 160 steps.
clf = LEGCPrunedClassifier(**{**PAPER_PARAMS, "window_size": 160}, hidden_layer_sizes=(6,),
                           lr=0.05, max_epochs=200, target_accuracy=0.95,
                           random_state=0).fit(X, y)
print(clf.pruning_report())

fig, axes = plt.subplots(2, 2, figsize=(11, 7))
ax = axes[0, 0]
ax.plot(clf.window_ends_, clf.misclassification_, color="black")
ax.set(title="misclassification rate at the end of each window", xlabel="optimizer step",
       ylabel="1 - accuracy")

ax = axes[0, 1]
order = np.argsort(np.nan_to_num(clf.granger_pvalues_, nan=1.0))
for index, style in ((order[0], "-"), (order[-1], "--")):
    label = f"weight {index}, p = {clf.granger_pvalues_[index]:.2g}"
    ax.plot(clf.window_ends_, clf.lyapunov_[:, index], style, label=label)
ax.set(title="Lyapunov exponents: most and least causal weight",
       xlabel="optimizer step", ylabel="largest Lyapunov exponent")
ax.legend()

ax = axes[1, 0]
ax.hist(clf.granger_pvalues_[~np.isnan(clf.granger_pvalues_)], bins=20, color="grey")
ax.axvline(clf.significance, color="red", label=f"significance = {clf.significance}")
ax.set(title="Granger p-values (minimum over lags)", xlabel="p-value", ylabel="weights")
ax.legend()

ax = axes[1, 1]
first = clf.mask_["layers.0"]
ax.imshow(first, cmap="Greys_r", vmin=0, vmax=1)
ax.set(title="first-layer mask (black = pruned)", xlabel="input feature", ylabel="hidden unit")

fig.tight_layout()
out.mkdir(parents=True, exist_ok=True)
fig.savefig(out / "inspect_pruning.png", dpi=100)
print(f"wrote {out / 'inspect_pruning.png'}")
