"""SHAP feature importance of a fitted classifier, and how well two models agree on it.

The paper reports that LEGCNet pruning preserves the dense network's SHAP feature
importance while random pruning does not. The importance of a feature here is its mean
absolute SHAP value on the predicted class probabilities, computed by shap's model-agnostic
Kernel explainer on ``predict_proba``, so that a Pipeline is explained in its input space.
"""

from dataclasses import dataclass, field

import numpy as np

from ._utils import final_step, numpy_seed, quiet


def feature_importance(estimator, X, *, background=100, max_samples=200, nsamples="auto",
                       random_state=None):
    """Mean absolute SHAP value of each feature, per class.

    Parameters
    ----------
    estimator : fitted classifier or Pipeline
        Anything with ``predict_proba`` and ``classes_``: a ``LEGCPrunedClassifier``, a
        Pipeline ending in one (explained in the Pipeline's input space), or any other
        scikit-learn classifier for comparison.
    X : array-like of shape (n_samples, n_features)
        Data to explain; also summarises the background distribution.
    background : int, default=100
        Background rows: ``shap.kmeans`` centres of ``X`` (weighted by cluster size), or all
        of ``X`` when it has no more rows than this.
    max_samples : int, default=200
        At most this many rows of ``X``, drawn at random, are explained.
    nsamples : "auto" or int, default="auto"
        Feature coalitions the Kernel explainer evaluates per explained row, each on every
        background row (shap's ``"auto"``: ``2 * n_features + 2048``). With up to 11
        features every coalition is enumerated and the values are exact.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of explained rows and the explainer's coalition sampling.

    Returns
    -------
    importance : pandas.DataFrame of shape (n_features, n_classes + 1)
        Indexed by feature name (``feature_names_in_``, else ``X``'s columns, else
        ``x0, x1, ...``) in input order; one column per class (``str(label)``) holding the
        mean |SHAP value| of that class's probability, and ``"mean"``, their average. For a
        binary problem the two class columns are equal, since the probabilities sum to one.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator (or Pipeline) is not fitted.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.random.RandomState(0).normal(size=(100, 3))
    >>> clf = LogisticRegression().fit(X, X[:, 1] > 0)
    >>> imp = feature_importance(clf, X, background=20, max_samples=30, random_state=0)
    >>> imp["mean"].idxmax()
    'x1'
    """
    import pandas as pd

    step = final_step(estimator)
    if not hasattr(estimator, "predict_proba"):
        raise TypeError(f"{type(estimator).__name__} has no predict_proba to explain.")
    names = _feature_names(estimator, X)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(names):
        raise ValueError(f"X must have shape (n_samples, {len(names)}), got {X.shape}.")
    for name, value in (("background", background), ("max_samples", max_samples)):
        if not (isinstance(value, (int, np.integer)) and value >= 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    from sklearn.utils import check_random_state

    rng = check_random_state(random_state)
    rows = X
    if len(X) > max_samples:
        rows = X[np.sort(rng.choice(len(X), max_samples, replace=False))]
    seed = int(rng.randint(np.iinfo(np.int32).max))

    fitted_on_frame = getattr(estimator, "feature_names_in_", None) is not None

    def predict_proba(A):
        # Fitted on a DataFrame: predict on one, so scikit-learn sees the names it expects.
        if fitted_on_frame:
            A = pd.DataFrame(A, columns=list(estimator.feature_names_in_))
        return estimator.predict_proba(A)

    classes = step.classes_
    with quiet():
        import shap

        data = shap.kmeans(X, background) if len(X) > background else X
        explainer = shap.KernelExplainer(predict_proba, data)
        with numpy_seed(seed):
            values = explainer.shap_values(rows, nsamples=nsamples, l1_reg=False, silent=True)
    values = _per_class(values, len(rows), len(names), len(classes))
    frame = pd.DataFrame(np.abs(values).mean(axis=0), index=pd.Index(names, name="feature"),
                         columns=[str(c) for c in classes])
    frame["mean"] = frame.mean(axis=1)
    return frame


def _feature_names(estimator, X):
    # A Pipeline answers feature_names_in_ / n_features_in_ for its first step: its input.
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        names = getattr(X, "columns", None)
    if names is not None:
        return [str(n) for n in names]
    n = getattr(estimator, "n_features_in_", None)
    return [f"x{i}" for i in range(np.shape(X)[1] if n is None else n)]


def _per_class(values, n_rows, n_features, n_classes):
    # shap returns a list of (rows, features) arrays in older versions, one array now.
    if isinstance(values, list):
        values = np.stack(values, axis=-1)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2:
        values = values[:, :, None]
    if values.shape != (n_rows, n_features, n_classes):
        raise RuntimeError(f"unexpected SHAP value shape {values.shape}")
    return values


@dataclass(frozen=True)
class ImportanceConsistency:
    """How far two models agree on which features matter.

    Attributes
    ----------
    spearman : float
        Spearman rank correlation of the two models' mean |SHAP value| per feature.
    kendall : float
        Kendall's tau-b of the same.
    top_k_overlap : float
        Share of the ``top_k`` most important features of one model that are also among the
        ``top_k`` of the other.
    top_k : int
        The ``k`` of ``top_k_overlap``.
    table : pandas.DataFrame
        Per feature: both importances and both ranks (1 = most important).
    """

    spearman: float
    kendall: float
    top_k_overlap: float
    top_k: int
    table: object = field(repr=False)


def importance_consistency(est_a, est_b, X, *, top_k=3, labels=("a", "b"), **importance_kwargs):
    """Compare the SHAP feature importance of two fitted models on the same data.

    Both models are explained on the same rows with the same background (one seed is drawn
    for both when ``random_state`` is None), so the comparison reflects the models only.

    Parameters
    ----------
    est_a, est_b : fitted classifiers or Pipelines
        E.g. the dense network and a pruned one.
    X : array-like of shape (n_samples, n_features)
        Data to explain.
    top_k : int, default=3
        Size of the top-feature sets compared by ``top_k_overlap``.
    labels : tuple of two str, default=("a", "b")
        Names of the two models in the table's columns.
    **importance_kwargs
        Passed to :func:`feature_importance` (``background``, ``max_samples``,
        ``nsamples``, ``random_state``).

    Returns
    -------
    result : ImportanceConsistency
        ``spearman``, ``kendall``, ``top_k_overlap``, ``top_k`` and ``table`` (columns: the
        two labels, then ``rank_<label>`` for each).

    See Also
    --------
    feature_importance : The per-feature importance compared here.
    compare_importances : The same comparison of importances already computed.
    """
    from sklearn.utils import check_random_state

    importance_kwargs["random_state"] = int(
        check_random_state(importance_kwargs.get("random_state")).randint(np.iinfo(np.int32).max)
    )
    imp_a = feature_importance(est_a, X, **importance_kwargs)
    imp_b = feature_importance(est_b, X, **importance_kwargs)
    return compare_importances(imp_a, imp_b, top_k=top_k, labels=labels)


def compare_importances(importance_a, importance_b, *, top_k=3, labels=("a", "b"),
                        column="mean"):
    """Rank agreement of two models' feature importances.

    Parameters
    ----------
    importance_a, importance_b : pandas.DataFrame or pandas.Series
        :func:`feature_importance` results (``column`` is used) or Series of importances,
        indexed by the same features. For a like-for-like comparison, compute both on the
        same rows with the same ``random_state``.
    top_k : int, default=3
        Size of the top-feature sets compared by ``top_k_overlap``.
    labels : tuple of two str, default=("a", "b")
        Names of the two models in the table's columns.
    column : str, default="mean"
        Column of DataFrame inputs to compare (a class's column, or the class average).

    Returns
    -------
    result : ImportanceConsistency
    """
    import pandas as pd
    from scipy import stats

    label_a, label_b = labels
    if label_a == label_b:
        raise ValueError(f"labels must differ, got {labels!r}.")
    imp_a, imp_b = (imp[column] if hasattr(imp, "columns") else imp
                    for imp in (importance_a, importance_b))
    if not imp_a.index.equals(imp_b.index):
        raise ValueError("the two importances are not over the same features.")
    n = len(imp_a)
    if not (isinstance(top_k, (int, np.integer)) and 1 <= top_k <= n):
        raise ValueError(f"top_k must be an integer in [1, {n}], got {top_k!r}.")
    table = pd.DataFrame({label_a: imp_a, label_b: imp_b})
    for label in labels:
        table[f"rank_{label}"] = table[label].rank(ascending=False, method="min").astype(int)
    top_a = set(_top(imp_a.to_numpy(), top_k))
    top_b = set(_top(imp_b.to_numpy(), top_k))
    return ImportanceConsistency(
        spearman=float(stats.spearmanr(imp_a, imp_b).statistic),
        kendall=float(stats.kendalltau(imp_a, imp_b).statistic),
        top_k_overlap=len(top_a & top_b) / top_k,
        top_k=int(top_k),
        table=table,
    )


def _top(values, k):
    # Stable on ties: equally important features are taken in input order.
    return np.argsort(-values, kind="stable")[:k]
