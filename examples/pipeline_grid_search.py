"""LEGCPrunedClassifier in a Pipeline, tuned with GridSearchCV on tabular data.

The defaults are MLPClassifier's network and training, with the sizes the method needs
chosen from the data. Runs in a few minutes on two cores::

    python examples/pipeline_grid_search.py
"""

import warnings

from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklegc import LEGCPrunedClassifier
from sklegc.estimator import PruningWarning

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

model = make_pipeline(
    StandardScaler(),
    LEGCPrunedClassifier(random_state=0),
)
grid = {
    "legcprunedclassifier__significance": [0.01, 0.05],
    "legcprunedclassifier__correction": [None, "bonferroni"],
}
search = GridSearchCV(model, grid, cv=3, n_jobs=2)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", PruningWarning)
    search.fit(X_train, y_train)

clf = search.best_estimator_[-1]
print("best parameters:", search.best_params_)
print(f"test accuracy: {search.score(X_test, y_test):.4f}")
print(f"weights pruned: {clf.n_weights_pruned_} of {clf.n_weights_} ({clf.sparsity_:.1%})")
print(clf.pruning_report())
