"""Bad input, bad settings, too little training, divergence, reproducibility, persistence."""

import inspect
import io
import pickle
import re
import types
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from conftest import FAST
from sklearn.exceptions import DataConversionWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.utils._param_validation import InvalidParameterError
from skorch.exceptions import DeviceWarning

from sklegc import LEGCPrunedClassifier
from sklegc.estimator import PruningWarning
from sklegc.trajectory import TrainingDivergedError


def make_clf(**params):
    return LEGCPrunedClassifier(**{**FAST, **params})


def fit_quietly(clf, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PruningWarning)
        return clf.fit(X, y)


def reachable_arrays(obj):
    """Every ndarray and tensor (as an ndarray view) reachable from ``obj``'s attributes."""
    seen, stack, found = set(), [obj], []
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, (str, bytes, type, types.ModuleType)):
            continue
        seen.add(id(item))
        if isinstance(item, torch.Tensor):
            found.append(item.detach().cpu().numpy())
        elif isinstance(item, np.ndarray):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif hasattr(item, "__dict__") and not inspect.isroutine(item):
            stack.extend(vars(item).values())
    return found


@pytest.fixture(scope="module")
def margin_problem():
    """Separable with a wide margin: the dense network is perfect after one window."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 5)).astype(np.float32)
    X[:, 0] = np.sign(X[:, 0]) * (2 + np.abs(X[:, 0]))
    return X, (X[:, 0] > 0).astype(int)


# -- bad input ------------------------------------------------------------------------------

def _with(X, row, col, value):
    X = X.astype(np.float64)
    X[row, col] = value
    return X


BAD_INPUT = {
    "nan in X": (lambda X, y: (_with(X, 3, 2, np.nan), y), ["contains NaN", "imputer"]),
    "inf in X": (lambda X, y: (_with(X, 3, 2, -np.inf), y),
                 ["contains infinity", "Replace, clip or drop"]),
    "beyond float32": (lambda X, y: (_with(X, 3, 2, 1e300), y),
                       ["too large for float32", "StandardScaler"]),
    "empty X": (lambda X, y: (X[:0], y[:0]), ["0 sample", "minimum of 2"]),
    "one sample": (lambda X, y: (X[:1], y[:1]), ["1 sample", "minimum of 2"]),
    "one class": (lambda X, y: (X, np.zeros_like(y)),
                  ["only one class", "at least two different labels"]),
    "nan in y": (lambda X, y: (X, np.where(np.arange(len(y)) == 4, np.nan, y)),
                 ["y contains NaN", "Drop the samples"]),
    "y too short": (lambda X, y: (X, y[:-1]), ["[120, 119]", "one label in y per sample"]),
    "multi-output y": (lambda X, y: (X, np.c_[y, 1 - y]),
                       ["shape (120, 2)", "multi-output", "MultiOutputClassifier"]),
    "string column": (lambda X, y: (np.c_[X.astype(object), np.full(len(X), "a", object)], y),
                      ["could not convert string", "OneHotEncoder"]),
    "string frame": (lambda X, y: (pd.DataFrame(X, columns=list("abcde")).assign(city="Paris"), y),
                     ["could not convert string", "OneHotEncoder"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_training_data_is_refused_naming_the_problem_and_the_fix(small_problem, case):
    X, y = small_problem
    make, phrases = BAD_INPUT[case]
    with pytest.raises(ValueError) as info:
        make_clf().fit(*make(X, y))
    for phrase in phrases:
        assert phrase in str(info.value)


def test_column_vector_y_is_accepted_with_sklearns_warning(small_problem):
    X, y = small_problem
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        column = fit_quietly(make_clf(), X, y[:, None])
    flat = fit_quietly(make_clf(), X, y)
    np.testing.assert_array_equal(column.predict_proba(X), flat.predict_proba(X))
    assert column.predict(X).shape == (120,)


def test_predict_refuses_other_columns_than_fit(small_problem):
    X, y = small_problem
    clf = fit_quietly(make_clf(), X, y)
    with pytest.raises(ValueError, match=r"X has 4 features.*expecting 5.*same columns"):
        clf.predict(X[:, :4])
    frame = pd.DataFrame(X, columns=list("abcde"))
    named = fit_quietly(make_clf(), frame, y)
    with pytest.raises(ValueError, match=r"(?s)feature names should match.*- z.*same columns"):
        named.predict(frame.rename(columns={"a": "z"}))
    with pytest.raises(ValueError, match="contains NaN"):
        named.predict(_with(X, 0, 0, np.nan))


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score", "pruning_report"])
def test_unfitted_estimator_raises_not_fitted(small_problem, method):
    X, y = small_problem
    args = {"predict": (X,), "predict_proba": (X,), "score": (X, y), "pruning_report": ()}
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(make_clf(), method)(*args[method])


def test_a_failed_refit_leaves_no_stale_model(small_problem):
    X, y = small_problem
    clf = fit_quietly(make_clf(), X, y)
    with pytest.raises(ValueError, match=r"only one class: 1\. "):  # not np.int64(1)
        clf.fit(X, np.ones_like(y))
    with pytest.raises(NotFittedError):
        clf.predict(X)
    # only what sklearn's validate_data records before any check of ours
    assert {k for k in vars(clf) if k.endswith("_") and not k.startswith("_")} <= {
        "n_features_in_", "feature_names_in_"}


def test_sparse_X_is_densified_and_gives_the_dense_result(small_problem):
    X, y = small_problem
    X = np.where(np.abs(X) < 0.5, 0.0, X).astype(np.float32)
    dense = fit_quietly(make_clf(), X, y)
    for fmt in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix):
        clf = fit_quietly(make_clf(), fmt(X), y)
        np.testing.assert_array_equal(clf.pruned_, dense.pruned_)
        np.testing.assert_array_equal(clf.predict_proba(fmt(X)), dense.predict_proba(X))
    assert "sparse" in LEGCPrunedClassifier.__doc__


def test_numeric_object_columns_are_accepted(small_problem):
    X, y = small_problem
    as_object = fit_quietly(make_clf(), X.astype(object), y)
    plain = fit_quietly(make_clf(), X, y)
    np.testing.assert_array_equal(as_object.predict_proba(X), plain.predict_proba(X))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_X_and_y_are_never_modified_nor_shared(small_problem, dtype):
    X, y = small_problem
    X = X.astype(dtype)
    labels = np.array(["no", "yes"])[y]
    X_copy, labels_copy = X.copy(), labels.copy()
    X.setflags(write=False)
    clf = fit_quietly(make_clf(), X, labels)
    clf.predict(X)
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(labels, labels_copy)
    arrays = reachable_arrays(clf)
    assert len(arrays) > 10  # the walk reaches weights, masks, exponents, p-values
    assert not any(np.shares_memory(a, X) or np.shares_memory(a, labels) for a in arrays)


def test_the_fitted_model_keeps_no_training_data(small_problem):
    X, y = small_problem
    params = dict(pruning="magnitude", amount=0.25, max_epochs=1, batch_size=20)
    rng = np.random.RandomState(1)
    big_X = np.vstack([X] + [X + rng.normal(scale=0.01, size=X.shape) for _ in range(9)])
    small = fit_quietly(make_clf(**params), X, y)
    big = fit_quietly(make_clf(**params), big_X.astype(np.float32), np.tile(y, 10))
    assert not any(a.ndim and a.shape[0] == 1200 for a in reachable_arrays(big))
    for model, data in ((small, X), (big, big_X.astype(np.float32))):
        assert data[:20].tobytes() not in pickle.dumps(model)


# -- bad settings ---------------------------------------------------------------------------

@pytest.mark.parametrize("param, value", [
    ("significance", -0.1), ("significance", 1.0), ("window_overlap", 1), ("mode", "xx"), ("maxlag", 0),
    ("on_empty_layer", "ignore"), ("pruning", "l1"), ("lr", 0.0), ("window_size", 0),
])
def test_out_of_range_parameters_are_refused_at_fit_naming_the_parameter(small_problem, param,
                                                                        value):
    X, y = small_problem
    clf = make_clf(**{param: value})  # __init__ accepts anything
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter"):
        clf.fit(X, y)


def test_unknown_or_unavailable_device_is_refused(small_problem, monkeypatch):
    X, y = small_problem
    with pytest.raises(ValueError, match=r"device='tpu0' is not a torch device.*'cpu'"):
        make_clf(device="tpu0").fit(X, y)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"CUDA is not available.*use device='cpu'"):
        make_clf(device="cuda").fit(X, y)


# -- too little training --------------------------------------------------------------------

def _suggested(message, name):
    return int(re.search(rf"Use .*\b{name}=(\d+)", message).group(1))


def test_fewer_steps_than_one_window_says_what_would_work(small_problem):
    X, y = small_problem
    with pytest.raises(ValueError) as info:
        make_clf(window_size=1000, maxlag="auto").fit(X, y)
    message = str(info.value)
    assert "480 optimizer steps" in message and "fewer than one window of 1000 steps" in message
    window = _suggested(message, "window_size")
    with pytest.warns(PruningWarning, match="using maxlag=1"):
        clf = make_clf(window_size=window, maxlag="auto").fit(X, y)
    assert clf.maxlag_ == 1 and len(clf.misclassification_) == 5


def test_too_few_windows_names_the_count_and_fixes_that_work(small_problem):
    X, y = small_problem
    with pytest.raises(ValueError) as info:
        make_clf(maxlag=14).fit(X, y)
    message = str(info.value)
    assert "which gives 26 windows" in message and "needs at least 44 windows" in message
    assert "maxlag='auto'" in message
    fixes = {name: _suggested(message, name) for name in ("maxlag", "window_size", "max_epochs")}
    assert fixes["maxlag"] == 8
    for name, value in fixes.items():
        clf = fit_quietly(make_clf(**{"maxlag": 14, name: value}), X, y)
        assert 3 * clf.maxlag_ + 2 <= len(clf.misclassification_)


def test_pt_trace_too_short_for_any_window(small_problem):
    X, y = small_problem
    with pytest.raises(ValueError, match=r"(?s)15 optimizer steps.*fewer than one window.*"
                                         r"traced epochs.*trace_fraction"):
        make_clf(mode="pt", trace_fraction=0.25, maxlag="auto").fit(X[:15], y[:15])


# -- divergence -----------------------------------------------------------------------------

def test_divergence_names_the_epoch_and_leaves_the_model_unfitted(small_problem):
    X, y = small_problem
    clf = make_clf(lr=1e6, activation="identity", loss="cross_entropy")
    with pytest.raises(TrainingDivergedError, match=r"epoch 1 .*smaller learning rate") as info:
        clf.fit(X * 1e3, y)
    assert isinstance(info.value, FloatingPointError)
    with pytest.raises(NotFittedError):
        clf.predict(X)


@pytest.mark.parametrize("pruning", ["none", "legc"])
@pytest.mark.parametrize("lr", [1e2, 1e5, 1e8])
def test_huge_learning_rates_never_give_nan_predictions(small_problem, pruning, lr):
    X, y = small_problem
    clf = make_clf(lr=lr, pruning=pruning, activation="relu", loss="cross_entropy")
    try:
        fit_quietly(clf, X * 10, y)
    except TrainingDivergedError as error:
        assert "smaller learning rate" in str(error)
        return
    assert np.isfinite(clf.predict_proba(X)).all()


# -- pruning outcomes -----------------------------------------------------------------------

def test_emptied_layers_warn_or_raise_by_on_empty_layer(small_problem):
    X, y = small_problem
    with pytest.warns(PruningWarning, match="every weight of layer"):
        clf = make_clf(amount=1.0).fit(X, y)
    report = clf.pruning_report(as_frame=True)
    assert list(report["status"][:-1]) == ["EMPTY", "EMPTY"]
    assert "EMPTY" in clf.pruning_report()
    raising = make_clf(pruning="magnitude", amount=1.0, on_empty_layer="raise")
    with pytest.raises(ValueError, match=r"every weight of layer.*on_empty_layer='warn'"):
        raising.fit(X, y)
    with pytest.raises(NotFittedError):
        raising.predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PruningWarning)
        make_clf(pruning="magnitude", amount=3, on_empty_layer="raise").fit(X, y)


@pytest.mark.parametrize("untestable", ["keep", "prune"])
def test_all_untestable_weights_warn_and_prune_nothing(margin_problem, untestable):
    X, y = margin_problem
    with pytest.warns(PruningWarning, match=r"no weight's Granger test could be computed"):
        clf = make_clf(untestable=untestable).fit(X, y)
    assert clf.granger_result_.untestable.all()
    assert clf.n_weights_pruned_ == 0 and clf.mask_["layers.0"].all()
    assert clf.score(X, y) == 1.0


def test_an_effect_that_stops_moving_names_the_failed_lags_and_the_maxlag_that_works():
    """The README's grid search met this on one of its folds: the misclassification rate
    stopped changing after 6 of 45 windows, so every weight's test failed at lags 7-14."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import StratifiedKFold, train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    X, _, y, _ = train_test_split(X, y, random_state=0)
    rows = list(StratifiedKFold(3).split(X, y))[1][0]
    X, y = StandardScaler().fit_transform(X[rows]), y[rows]
    with pytest.warns(PruningWarning) as caught:
        clf = LEGCPrunedClassifier(random_state=0).fit(X, y)
    message = " ".join(str(w.message) for w in caught)
    assert "at lags 7-14 the Granger test failed for every weight" in message
    assert "constant over the last 39 of the 45 windows" in message
    assert "maxlag=6 tests every weight" in message
    tested = ~np.isnan(clf.granger_result_.pvalues)
    assert tested[:, :6].all() and not tested[:, 6:].any()
    assert np.ptp(clf.misclassification_[6:]) == 0 and clf.n_weights_pruned_ == 0
    # The advice works: at maxlag=6 every weight is tested.
    fixed = LEGCPrunedClassifier(random_state=0, maxlag=6).fit(X, y)
    assert not fixed.granger_result_.untestable.any()


def test_the_maxlag_advice_works_with_early_stopping_too():
    """A fresh user's chain: with early_stopping the warning advised maxlag=5, and the fit
    at maxlag=5 warned again (lag 5 failed), because the convergence rule ended the PT
    trace at the 18 windows lag 5 needs instead of its planned 44. It no longer ends a PT
    trace."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    with pytest.warns(PruningWarning, match=r"maxlag=(\d+) tests every weight") as caught:
        first = LEGCPrunedClassifier(early_stopping=True, random_state=0).fit(X, y)
    advised = int(re.search(r"maxlag=(\d+) tests every weight",
                            " ".join(str(w.message) for w in caught)).group(1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        second = LEGCPrunedClassifier(early_stopping=True, random_state=0,
                                      maxlag=advised).fit(X, y)
    assert not any("tests every weight" in str(w.message) for w in caught)
    assert not second.granger_result_.untestable.any()
    assert len(second.misclassification_) == len(first.misclassification_) == 44


# -- reproducibility ------------------------------------------------------------------------

def test_same_seed_same_model_whatever_the_global_rngs(small_problem):
    X, y = small_problem
    fits = []
    for global_seed in (1, 999):
        torch.manual_seed(global_seed)
        np.random.seed(global_seed)
        fits.append(fit_quietly(make_clf(significance=0.3), X, y))
    a, b = fits
    for key, value in a.initial_state_.items():
        torch.testing.assert_close(value, b.initial_state_[key], rtol=0, atol=0)
    np.testing.assert_array_equal(a.pruned_, b.pruned_)
    np.testing.assert_array_equal(a.lyapunov_, b.lyapunov_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    other = fit_quietly(make_clf(significance=0.3, random_state=1), X, y)
    assert not torch.equal(other.initial_state_["layers.0.weight"],
                           a.initial_state_["layers.0.weight"])


def _n_pruned(estimator, X, y):
    return estimator.n_weights_pruned_


def test_grid_search_workers_reproduce_direct_fits(small_problem):
    X, y = small_problem
    grid = {"significance": [0.1, 0.3], "hidden_layer_sizes": [(3,)]}
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    scoring = {"accuracy": "accuracy", "pruned": _n_pruned}
    searches = {}
    for n_jobs in (1, 2):
        search = GridSearchCV(make_clf(), grid, cv=cv, scoring=scoring, refit="accuracy",
                              n_jobs=n_jobs)
        searches[n_jobs] = fit_quietly(search, X, y)
    for key in ("split0_test_pruned", "split1_test_pruned", "split0_test_accuracy",
                "split1_test_accuracy"):
        np.testing.assert_array_equal(searches[1].cv_results_[key], searches[2].cv_results_[key])
    train, test = next(cv.split(X, y))
    params = searches[2].cv_results_["params"][-1]
    direct = fit_quietly(make_clf(**params), X[train], y[train])
    assert searches[2].cv_results_["split0_test_pruned"][-1] == direct.n_weights_pruned_
    assert searches[2].cv_results_["split0_test_accuracy"][-1] == direct.score(X[test], y[test])
    best = searches[2].best_estimator_
    refit = fit_quietly(make_clf(**searches[2].best_params_), X, y)
    for name, mask in refit.mask_.items():
        np.testing.assert_array_equal(best.mask_[name], mask)


def test_second_fit_starts_from_scratch(small_problem):
    X, y = small_problem
    clf = make_clf(significance=0.3)
    first = fit_quietly(clf, X, y)
    proba, pruned = first.predict_proba(X), first.pruned_.copy()
    history_length = len(clf.net_.history)
    fit_quietly(clf, X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    np.testing.assert_array_equal(clf.pruned_, pruned)
    assert len(clf.net_.history) == history_length

    rng = np.random.RandomState(1)
    X3 = rng.normal(size=(150, 3))
    y3 = np.array(["a", "b", "c"])[np.argmax(X3, axis=1)]
    fit_quietly(clf, pd.DataFrame(X3, columns=["u", "v", "w"]), y3)
    assert list(clf.classes_) == ["a", "b", "c"] and clf.n_features_in_ == 3
    assert list(clf.feature_names_in_) == ["u", "v", "w"]
    assert clf.weight_layers_ == [("layers.0", (4, 3)), ("layers.2", (3, 4))]
    fit_quietly(clf, X, y)
    assert not hasattr(clf, "feature_names_in_") and list(clf.classes_) == [0, 1]


# -- persistence ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fitted():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 5)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return fit_quietly(make_clf(significance=0.3), X, y), X, y


def _assert_same_model(restored, clf, X):
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(restored.pruned_, clf.pruned_)
    for key, value in clf.initial_state_.items():
        torch.testing.assert_close(restored.initial_state_[key], value, rtol=0, atol=0)


def test_pickle_and_joblib_round_trips(fitted, tmp_path):
    clf, X, y = fitted
    _assert_same_model(pickle.loads(pickle.dumps(clf)), clf, X)
    joblib.dump(clf, tmp_path / "model.joblib")
    restored = joblib.load(tmp_path / "model.joblib")
    _assert_same_model(restored, clf, X)
    refitted = fit_quietly(restored, X, y)
    np.testing.assert_array_equal(refitted.predict_proba(X), clf.predict_proba(X))
    assert "Loading a pickle runs code" in LEGCPrunedClassifier.__doc__


def test_a_cuda_model_loads_on_a_cpu_only_machine(fitted, monkeypatch):
    clf, X, y = fitted
    # Simulated: the tensors are on the CPU here, but the pickle says "cuda" everywhere the
    # estimator records a device, as one written on a GPU machine does.
    gpu_model = pickle.loads(pickle.dumps(clf))
    gpu_model.set_params(device="cuda")
    gpu_model.net_.device = "cuda"
    payload = io.BytesIO()
    joblib.dump(gpu_model, payload)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    payload.seek(0)
    with pytest.warns(DeviceWarning, match="no CUDA devices"):
        restored = joblib.load(payload)
    assert torch.device(restored.net_.device).type == "cpu"
    assert {a.device.type for a in restored.initial_state_.values()} == {"cpu"}
    _assert_same_model(restored, clf, X)
    with pytest.raises(ValueError, match="CUDA is not available"):
        restored.fit(X, y)
