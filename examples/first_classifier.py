"""Your first pruned classifier: LEGCPrunedClassifier, defaults and all, in a Pipeline on iris.

Shown, with what it prints, in docs/getting_started.md (a few seconds on one core)::

    python examples/first_classifier.py
"""

from sklearn.datasets import load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklegc import LEGCPrunedClassifier

X, y = load_iris(return_X_y=True)
model = make_pipeline(
    StandardScaler(),
    LEGCPrunedClassifier(random_state=0),
)
model.fit(X, y)
clf = model[-1]
print(clf.pruning_report())
