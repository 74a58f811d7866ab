"""Deploying a pruned model: compress(), to_mlpclassifier(), ONNX, and a custom module.

Shown, with what it prints, in docs/deploying.md (about half a minute on one core)::

    python examples/deploy_pruned_model.py
"""

import pickle

import numpy as np
import onnxruntime as ort
import torch
from skl2onnx import to_onnx
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from sklegc import LEGCPrunedClassifier
from sklegc.export import sparse_initializers

X, y = load_digits(return_X_y=True)
X = X.astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                    stratify=y)

print("== fit ==")
# A third of the hidden units, the least causal ones (Simes combination of their weights'
# Granger p-values), are pruned as a whole.
model = make_pipeline(
    StandardScaler(),
    LEGCPrunedClassifier(hidden_layer_sizes=(50, 30), granularity="neuron", amount=0.3,
                         max_epochs=50, random_state=0),
)
model.fit(X_train, y_train)
clf = model[-1]
proba = model.predict_proba(X_test)
print(f"test accuracy: {model.score(X_test, y_test):.4f}")
print(f"weights pruned: {clf.n_weights_pruned_} of {clf.n_weights_} ({clf.sparsity_:.1%})")
print(f"pickled pipeline: {len(pickle.dumps(model)):,} bytes")

print("== compress ==")
clf.compress()
print(clf.pruning_report())
print(f"max |difference in predict_proba|: {np.abs(model.predict_proba(X_test) - proba).max():.1g}")
print(f"pickled pipeline: {len(pickle.dumps(model)):,} bytes")
print(f"coefs_ shapes: {[c.shape for c in clf.coefs_]}")

print("== scikit-learn ==")
mlp = clf.to_mlpclassifier()
sklearn_pipeline = make_pipeline(model[0], mlp)  # the fitted scaler and the MLPClassifier
print(mlp)
print(f"hidden_layer_sizes: {mlp.hidden_layer_sizes}")
print(f"same labels: {bool((sklearn_pipeline.predict(X_test) == model.predict(X_test)).all())}")
difference = np.abs(sklearn_pipeline.predict_proba(X_test) - model.predict_proba(X_test)).max()
print(f"max |difference in predict_proba|: {difference:.1g}")

print("== onnx ==")
onx = to_onnx(model, X_train[:1], options={LEGCPrunedClassifier: {"zipmap": False}})
session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
labels, probabilities = session.run(None, {session.get_inputs()[0].name: X_test})
print(f"outputs: {[output.name for output in session.get_outputs()]}")
print(f"same labels: {bool((labels == model.predict(X_test)).all())}")
print(f"max |difference in predict_proba|: "
      f"{np.abs(probabilities - model.predict_proba(X_test)).max():.1g}")
print(f"ONNX file: {len(onx.SerializeToString()):,} bytes")
sparse_initializers(onx)
print(f"ONNX file with sparse initializers: {len(onx.SerializeToString()):,} bytes")


print("== custom module ==")


class TwoLayers(nn.Module):
    """Not the default MLP: named layers and a functional activation."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.hidden = nn.Linear(n_features, 40)
        self.out = nn.Linear(40, n_outputs)

    def forward(self, X):
        return self.out(torch.tanh(self.hidden(X)))


custom = make_pipeline(
    StandardScaler(),
    LEGCPrunedClassifier(module=TwoLayers, pruning="magnitude", granularity="neuron",
                         amount=0.25, max_epochs=50, random_state=0),
)
custom.fit(X_train, y_train)
before = custom.predict_proba(X_test)
print(f"test accuracy: {custom.score(X_test, y_test):.4f}")
custom[-1].compress()  # through Torch-Pruning's dependency graph
print(custom[-1].pruning_report(as_frame=True)[
    ["layer", "shape", "% pruned", "shape after", "units removed", "storage"]].to_string(
    index=False, float_format=lambda v: f"{v:.1f}"))
print(f"max |difference in predict_proba|: {np.abs(custom.predict_proba(X_test) - before).max():.1g}")
print(f"compressed module: {custom[-1].net_.module_}")
