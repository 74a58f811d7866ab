"""LEGCPrunedClassifier as a drop-in for scikit-learn's MLPClassifier.

The cases of ``shared/cases/dropin-*`` (found by replacing ``MLPClassifier()`` with
``LEGCPrunedClassifier()`` in ordinary scripts) and a walk over MLPClassifier's whole
vocabulary: its parameters, methods and fitted attributes.
"""

import inspect
import warnings

import numpy as np
import pytest
import sklearn
import torch
from sklearn.datasets import load_iris, make_classification
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from sklegc import LEGCPrunedClassifier
from sklegc._vocabulary import MLP_EQUIVALENTS
from sklegc.estimator import PAPER_PARAMS, PruningWarning
from sklegc.network import MLP


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def iris_default(iris):
    """``LEGCPrunedClassifier()`` with no argument but the seed, on raw iris."""
    X, y = iris
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = LEGCPrunedClassifier(random_state=0).fit(X, y)
    return clf, caught


# -- dropin-01: the defaults fit small data ---------------------------------------------------

def test_defaults_fit_iris_with_the_papers_lag(iris, iris_default):
    X, y = iris
    clf, caught = iris_default
    assert clf.score(X, y) > 0.95
    # The window is sized from the data, so the paper's lag of 14 fits without a warning.
    assert clf.maxlag_ == 14 and len(clf.misclassification_) >= 3 * 14 + 2
    assert not [w for w in caught if issubclass(w.category, PruningWarning)
                and "maxlag" in str(w.message)]
    # The paper's test (minimum p-value over 14 lags) finds almost every weight causal on
    # iris: the decision is whatever the p-values say, and a network with nothing pruned is
    # the dense one, trained on to max_epochs once (no second run, no sparse phase).
    assert clf.n_weights_pruned_ < 0.05 * clf.n_weights_
    if clf.n_weights_pruned_ == 0:
        assert {row["phase"] for row in clf.net_.history} == {"dense"}
        steps_per_epoch = -(-len(y) // clf.trace_batch_size_)
        traced_epochs = -(-clf.n_dense_steps_ // steps_per_epoch)
        assert clf.n_iter_ > traced_epochs


def test_defaults_are_mlpclassifiers_network(iris_default):
    clf, _ = iris_default
    mlp = MLPClassifier()
    for name in ("hidden_layer_sizes", "activation", "alpha", "batch_size", "tol",
                 "n_iter_no_change", "early_stopping", "validation_fraction", "warm_start"):
        assert clf.get_params()[name] == mlp.get_params()[name], name
    assert clf.lr == mlp.learning_rate_init and clf.max_epochs == mlp.max_iter
    assert clf.n_weights_ == 4 * 100 + 100 * 3


# -- dropin-02: sample weights ----------------------------------------------------------------

def test_sample_weight_weighs_the_loss_and_routes_through_pipelines():
    X, y = make_classification(300, 6, random_state=0)
    params = dict(hidden_layer_sizes=(8,), batch_size=16, max_epochs=15, pruning="none",
                  random_state=0)
    plain = LEGCPrunedClassifier(**params).fit(X, y)
    ones = LEGCPrunedClassifier(**params).fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_allclose(ones.predict_proba(X), plain.predict_proba(X), atol=1e-5)
    # Class 1 weighted 20 times more: class 1 is predicted more often.
    heavy = LEGCPrunedClassifier(**params).fit(X, y, sample_weight=np.where(y == 1, 20.0, 1.0))
    assert heavy.predict(X).mean() > plain.predict(X).mean() + 0.05
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(StandardScaler().set_fit_request(sample_weight=False),
                             LEGCPrunedClassifier(**params).set_fit_request(sample_weight=True))
        pipe.fit(X, y, sample_weight=np.where(y == 1, 20.0, 1.0))
    assert pipe.predict(X).mean() > plain.predict(X).mean() + 0.05


def _mlp_from(module, **params):
    """An MLPClassifier whose weights are ``module``'s (a warm start after one epoch)."""
    X, y = make_classification(20, module.layers[0].in_features, random_state=1)
    mlp = MLPClassifier(warm_start=True, max_iter=1, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp.fit(X, y)
    layers = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    mlp.coefs_ = [m.weight.detach().double().numpy().T.copy() for m in layers]
    mlp.intercepts_ = [m.bias.detach().double().numpy().copy() for m in layers]
    return mlp


def test_weighted_training_takes_mlpclassifiers_steps():
    # The same initial weights, batches, weights and penalty (SGD, float64): sample weights
    # must weigh each batch as MLPClassifier does (its weighted average, the penalty over
    # the batch's weight sum), weights not of mean 1 included.
    X, y = make_classification(120, 5, weights=[0.8], random_state=0)
    X = X.astype(np.float32).astype(np.float64)  # the estimator reads X in float32
    w = np.where(y == 1, 4.0, 0.5)
    torch.manual_seed(0)
    module = MLP(5, 1, hidden_layer_sizes=(6,), activation="relu").double()
    mlp = _mlp_from(module, hidden_layer_sizes=(6,), solver="sgd", learning_rate_init=0.1,
                    momentum=0.0, batch_size=16, shuffle=False, alpha=0.01)
    ours = LEGCPrunedClassifier(module=module, pruning="none", optimizer=torch.optim.SGD,
                                lr=0.1, batch_size=16, max_epochs=4, alpha=0.01,
                                iterator_train__shuffle=False).fit(X, y, sample_weight=w)
    mlp.set_params(max_iter=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp.fit(X, y, sample_weight=w)
    for theirs, mine in zip(mlp.coefs_ + mlp.intercepts_, ours.coefs_ + ours.intercepts_):
        np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-12)
    assert not np.allclose(ours.coefs_[0], module.layers[0].weight.detach().numpy().T)


def _frozen_weighted_fit(X, y, w, **params):
    """A float64 fit whose weights never move (SGD, lr=1e-300, alpha=0.5, batches of 20),
    with the weighted log loss and the sum of squared weights of its network."""
    torch.manual_seed(0)
    module = MLP(X.shape[1], 1, hidden_layer_sizes=(5,), activation="relu").double()
    clf = LEGCPrunedClassifier(module=module, pruning="none", optimizer=torch.optim.SGD,
                               lr=1e-300, batch_size=20, max_epochs=2, alpha=0.5,
                               **params).fit(X, y, sample_weight=w)
    proba = clf.predict_proba(X)[:, 1]
    data_loss = -np.average(y * np.log(proba) + (1 - y) * np.log(1 - proba), weights=w)
    return clf, data_loss, sum((c ** 2).sum() for c in clf.coefs_)


def test_weighted_epoch_loss_is_the_weighted_average_loss():
    # The weights never move, so every batch of an epoch is scored by the same network:
    # the epoch's loss must be the weighted log loss of the whole training set (plus the
    # penalty of each batch over the epoch's weight), not its batches' losses averaged by
    # rows.
    X, y = make_classification(90, 4, weights=[0.85], random_state=0)
    X = X.astype(np.float32).astype(np.float64)
    w = np.where(y == 1, 6.0, 1.0)
    clf, data_loss, squares = _frozen_weighted_fit(X, y, w)
    n_batches = 5  # 90 rows in batches of 20
    expected = data_loss + n_batches * 0.5 * 0.5 * squares / w.sum()
    np.testing.assert_allclose(clf.loss_curve_, [expected] * 2, rtol=1e-9)


def test_a_batch_of_zero_weights_adds_nothing():
    # Rows of weight 0 carry no data (as in scikit-learn): a batch made only of them adds
    # no loss, no penalty and no share of the epoch's loss. The weights never move, so the
    # epoch's loss must be that of the weighted rows alone: their weighted log loss plus
    # the penalty of the 2 batches that hold them over their weight.
    X, y = make_classification(80, 4, random_state=0)
    X = X.astype(np.float32).astype(np.float64)
    w = np.r_[np.zeros(40), np.where(y[40:] == 1, 3.0, 1.0)]
    clf, data_loss, squares = _frozen_weighted_fit(X, y, w, iterator_train__shuffle=False)
    expected = data_loss + 2 * 0.5 * 0.5 * squares / w.sum()
    np.testing.assert_allclose(clf.loss_curve_, [expected] * 2, rtol=1e-9)


@pytest.mark.parametrize("weight", [1e-50, 1e40])
def test_weights_beyond_float32_are_refused_naming_the_range(weight):
    X, y = make_classification(60, 4, random_state=0)
    for w in (np.full(60, weight), np.where(y == 0, weight, 1.0)):
        with pytest.raises(ValueError, match=r"float32.*Multiply the weights by a common "
                                             r"factor.*alpha is multiplied"):
            LEGCPrunedClassifier(pruning="none", max_epochs=1).fit(X, y, sample_weight=w)


def test_weights_that_cancel_in_batches_of_one_row_are_named():
    X, y = make_classification(60, 4, weights=[0.7], random_state=0)
    with pytest.warns(UserWarning, match=r"class_weight: every training phase trains in "
                                          r"batches of one row.*batch_size of 2 or more"):
        LEGCPrunedClassifier(class_weight="balanced", batch_size=1, pruning="none",
                             max_epochs=1, hidden_layer_sizes=(3,)).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # equal weights change nothing, so no warning
        LEGCPrunedClassifier(batch_size=1, pruning="none", max_epochs=1,
                             hidden_layer_sizes=(3,)).fit(X, y, sample_weight=np.full(60, 2.0))


def test_sample_weight_weighs_the_misclassification_the_test_reads():
    X, y = make_classification(300, 6, random_state=0)
    w = np.where(y == 1, 3.0, 1.0)
    clf = LEGCPrunedClassifier(**dict(PAPER_PARAMS, window_size=20, maxlag=2),
                               hidden_layer_sizes=(4,), lr=0.1, max_epochs=2,
                               random_state=0).fit(X, y, sample_weight=w)
    # With weights 3 and 1 and 300 rows, a weighted rate is a multiple of 1 / sum(w).
    total = w.sum()
    rates = clf.misclassification_ * total
    np.testing.assert_allclose(rates, np.round(rates), atol=1e-3)
    assert not np.allclose(clf.misclassification_ * len(y),
                           np.round(clf.misclassification_ * len(y)))


def test_bad_sample_weights_are_refused_naming_the_problem():
    X, y = make_classification(60, 4, random_state=0)
    clf = LEGCPrunedClassifier(max_epochs=1, pruning="none")
    with pytest.raises(ValueError, match="(?i)negative"):
        clf.fit(X, y, sample_weight=-np.ones(60))
    with pytest.raises(ValueError, match="fewer than 2 classes with a positive weight"):
        clf.fit(X, y, sample_weight=(y == 1).astype(float))
    with pytest.raises(ValueError, match=r"shape|length|samples"):
        clf.fit(X, y, sample_weight=np.ones(59))


# -- dropin-03: alpha is the L2 penalty -------------------------------------------------------

def test_alpha_is_the_l2_penalty_and_significance_the_tests_level():
    X, y = make_classification(300, 6, random_state=0)
    params = dict(hidden_layer_sizes=(8,), max_epochs=20, pruning="none", random_state=0)
    norms = [sum((c ** 2).sum() for c in
                 LEGCPrunedClassifier(**params, alpha=alpha).fit(X, y).coefs_)
             for alpha in (0.0, 1.0, 10.0)]
    assert norms[0] > norms[1] > norms[2]
    legc = LEGCPrunedClassifier(**dict(PAPER_PARAMS, window_size=20, maxlag=2),
                                hidden_layer_sizes=(4,), lr=0.1, max_epochs=3,
                                significance=0.3, random_state=0).fit(X, y)
    p = legc.granger_pvalues_
    np.testing.assert_array_equal(legc.pruned_, ~np.isnan(p) & (p >= 0.3))
    assert "significance=0.3" in legc.pruning_report()


# -- dropin-04: pruning never silently costs accuracy -----------------------------------------

def test_an_accuracy_collapse_warns_with_both_figures_and_the_fix():
    X, y = make_classification(500, 5, random_state=0)
    X = X[:, 2:3]  # one informative feature
    kw = dict(PAPER_PARAMS, hidden_layer_sizes=(8,), lr=0.05, max_epochs=8, window_size=40,
              maxlag="auto", random_state=0)
    with pytest.warns(PruningWarning, match=r"lowered the training accuracy from (\S+) "
                                            r"\(dense\) to (\S+) \(pruned") as caught:
        legc = LEGCPrunedClassifier(**kw).fit(X, y)
    message = next(str(w.message) for w in caught if "lowered" in str(w.message))
    assert f"{legc.dense_accuracy_:.4f}" in message and f"{legc.pruned_accuracy_:.4f}" in message
    assert "max_sparsity" in message and legc.dense_accuracy_ - legc.pruned_accuracy_ > 0.02
    assert legc.score(X, y) == pytest.approx(legc.pruned_accuracy_)


def test_nothing_pruned_keeps_the_dense_network_without_training_again():
    X, y = make_classification(200, 5, random_state=0)
    kw = dict(PAPER_PARAMS, hidden_layer_sizes=(4,), lr=0.1, max_epochs=3, window_size=20,
              maxlag=2, random_state=0)
    dense = LEGCPrunedClassifier(**kw, pruning="none").fit(X, y)
    legc = LEGCPrunedClassifier(**kw, significance=1 - 1e-12).fit(X, y)  # p < 1: all kept
    assert legc.n_weights_pruned_ == 0
    assert {row["phase"] for row in legc.net_.history} == {"dense"}
    np.testing.assert_array_equal(legc.predict_proba(X), dense.predict_proba(X))


# -- dropin-05: imbalanced classes ------------------------------------------------------------

def test_balanced_class_weight_matches_mlp_with_balanced_sample_weights():
    # One seed decides by a false positive either way (about 1 in 1,000 test rows), so the
    # comparison is over the first four seeds, paired: the same split, the same seed on
    # both sides. Weighting each row by 1/n (instead of MLPClassifier's per-batch weighted
    # average) gave 12 false positives here against MLPClassifier's 9.
    X, y = make_classification(2000, 10, weights=[0.99], random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, test_size=0.5,
                                                        random_state=0)
    ours, theirs = [], []
    for seed in range(4):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            legc = make_pipeline(StandardScaler(), LEGCPrunedClassifier(
                class_weight="balanced", random_state=seed)).fit(X_train, y_train)
            mlp = make_pipeline(StandardScaler(), MLPClassifier(random_state=seed)).fit(
                X_train, y_train,
                mlpclassifier__sample_weight=compute_sample_weight("balanced", y_train))
        ours.append(balanced_accuracy_score(y_test, legc.predict(X_test)))
        theirs.append(balanced_accuracy_score(y_test, mlp.predict(X_test)))
        # The weighted misclassification rate moves, so the causality test has a signal.
        assert np.ptp(legc[-1].misclassification_) > 0.05
    assert np.mean(ours) >= np.mean(theirs)


# -- the vocabulary ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MLPClassifier().get_params()))
def test_every_mlpclassifier_parameter_works_or_names_our_equivalent(name):
    value = MLPClassifier().get_params()[name]
    ours = LEGCPrunedClassifier().get_params()
    if name in ours:
        assert name not in MLP_EQUIVALENTS
        LEGCPrunedClassifier().set_params(**{name: ours[name]})
        return
    for refuse in (lambda: LEGCPrunedClassifier(**{name: value}),
                   lambda: LEGCPrunedClassifier().set_params(**{name: value})):
        with pytest.raises((TypeError, ValueError), match="MLPClassifier's name") as info:
            refuse()
        assert MLP_EQUIVALENTS[name].split()[0].strip(",") in str(info.value)


def test_unknown_names_raise_with_a_did_you_mean():
    with pytest.raises(ValueError, match="Did you mean 'hidden_layer_sizes'"):
        LEGCPrunedClassifier().set_params(hiden_layer_sizes=(4,))
    with pytest.raises(TypeError, match="max_epochs"):
        LEGCPrunedClassifier(max_iter=10)
    # A name without a near miss is kept (scikit-learn's checks require that) and refused by
    # fit, before any training.
    clf = LEGCPrunedClassifier(colour="red")
    with pytest.raises(TypeError, match="Invalid parameter 'colour'"):
        clf.fit(np.zeros((4, 2)), [0, 1, 0, 1])
    assert not hasattr(clf, "net_")


def test_every_public_method_of_mlpclassifier_exists():
    public = [name for name, _ in inspect.getmembers(MLPClassifier, callable)
              if not name.startswith("_")]
    missing = [name for name in public if not hasattr(LEGCPrunedClassifier, name)]
    assert missing == []


def test_every_fitted_attribute_of_mlpclassifier_has_the_same_meaning(iris, iris_default):
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier(random_state=0).fit(X, y)
    clf, _ = iris_default
    fitted = sorted(k for k in vars(mlp) if k.endswith("_") and not k.startswith("_"))
    for name in fitted:
        assert hasattr(clf, name), name
    assert [c.shape for c in clf.coefs_] == [c.shape for c in mlp.coefs_]
    assert [b.shape for b in clf.intercepts_] == [b.shape for b in mlp.intercepts_]
    for name in ("n_layers_", "n_outputs_", "out_activation_", "n_features_in_"):
        assert getattr(clf, name) == getattr(mlp, name), name
    np.testing.assert_array_equal(clf.classes_, mlp.classes_)
    assert clf.n_iter_ == len(clf.loss_curve_) and clf.loss_ == clf.loss_curve_[-1]
    assert clf.best_loss_ <= clf.loss_ and clf.validation_scores_ is None
    assert clf.t_ == clf.n_iter_ * len(y)
    # Pruned weights are exactly 0 in coefs_.
    flat = np.concatenate([c.T.reshape(-1) for c in clf.coefs_])
    assert np.all(flat[clf.pruned_] == 0) and np.all(flat[~clf.pruned_] != 0)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(clf.predict_proba(X)))


def test_early_stopping_holds_out_rows_and_restores_the_best_epoch():
    X, y = make_classification(400, 6, flip_y=0.2, random_state=0)
    clf = LEGCPrunedClassifier(hidden_layer_sizes=(32,), lr=0.01, early_stopping=True,
                               n_iter_no_change=3, pruning="none", random_state=0).fit(X, y)
    scores = clf.validation_scores_
    assert len(scores) == clf.n_iter_ < clf.max_epochs
    assert clf.best_validation_score_ == max(scores) and clf.best_loss_ is None
    # The restored weights are the best epoch's: their validation accuracy is the best one.
    best = int(np.argmax(scores))
    assert best < len(scores) - 3
    assert clf.pruned_accuracy_ == pytest.approx(clf.best_validation_score_)


def test_the_convergence_rule_runs_a_pt_trace_to_its_plan_and_stops_an_ft_trace_early():
    X, y = make_classification(300, 5, random_state=0)
    # tol=1.0 on validation accuracy: no epoch ever improves, so the rule fires at once.
    common = dict(hidden_layer_sizes=(8,), maxlag=2, early_stopping=True, max_epochs=60,
                  n_iter_no_change=1, random_state=0)
    windows = {}
    for mode in ("pt", "ft"):
        for tol in (None, 1.0):
            clf = LEGCPrunedClassifier(mode=mode, tol=tol, **common)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf.fit(X, y)
            windows[mode, tol] = len(clf.misclassification_)
            dense = [row for row in clf.net_.history if row["phase"] == "dense"]
            if mode == "pt" and tol is not None:
                # The trace ran its plan; the untraced training after it stopped at once.
                assert len(dense) < clf.max_epochs
    assert windows["pt", 1.0] == windows["pt", None]
    assert windows["ft", 1.0] < windows["ft", None]


def test_numpy_scalar_parameters_work_as_python_numbers(iris):
    # scikit-learn's train_test_split refuses an np.float32 test_size; MLPClassifier takes it.
    X, y = iris
    clf = LEGCPrunedClassifier(early_stopping=True, validation_fraction=np.float32(0.2),
                               hidden_layer_sizes=(6,), max_epochs=5, pruning="none",
                               random_state=0).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_


def test_partial_fit_trains_one_epoch_with_the_mask_held():
    X, y = make_classification(200, 5, random_state=0)
    clf = LEGCPrunedClassifier(hidden_layer_sizes=(6,), max_epochs=3, pruning="magnitude",
                               amount=0.5, random_state=0).fit(X, y)
    epochs = clf.n_iter_
    clf.partial_fit(X, y)
    assert clf.n_iter_ == epochs + 1 and clf.net_.history[-1, "phase"] == "partial_fit"
    flat = np.concatenate([c.T.reshape(-1) for c in clf.coefs_])
    assert np.all(flat[clf.pruned_] == 0) and clf.sparsity_ == 0.5
    fresh = LEGCPrunedClassifier(hidden_layer_sizes=(6,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        fresh.partial_fit(X, y)
    fresh.partial_fit(X[:50], y[:50], classes=[0, 1]).partial_fit(X[50:], y[50:])
    assert fresh.n_iter_ == 2 and fresh.n_weights_pruned_ == 0
    with pytest.raises(ValueError, match="early_stopping"):
        LEGCPrunedClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1])


def test_warm_start_prunes_further_from_the_fitted_network():
    X, y = make_classification(200, 5, random_state=0)
    clf = LEGCPrunedClassifier(hidden_layer_sizes=(6,), max_epochs=3, pruning="magnitude",
                               amount=0.3, warm_start=True, random_state=0).fit(X, y)
    first = clf.pruned_.copy()
    clf.fit(X, y)
    assert np.all(clf.pruned_[first]) and clf.pruned_.sum() > first.sum()
    flat = np.concatenate([c.T.reshape(-1) for c in clf.coefs_])
    assert np.all(flat[clf.pruned_] == 0)


def test_large_feature_scales_warn_naming_standardscaler():
    X, y = make_classification(100, 4, random_state=0)
    with pytest.warns(UserWarning, match="StandardScaler"):
        LEGCPrunedClassifier(max_epochs=1, pruning="none").fit(X * 1000, y)


def test_logistic_is_mlpclassifiers_name_for_sigmoid():
    X, y = make_classification(100, 4, random_state=0)
    a = LEGCPrunedClassifier(activation="logistic", max_epochs=2, pruning="none",
                             random_state=0).fit(X, y)
    b = LEGCPrunedClassifier(activation="sigmoid", max_epochs=2, pruning="none",
                             random_state=0).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


# -- found by a new user (fresh helper session) ----------------------------------------------

@pytest.fixture(scope="module")
def iris_scaled(iris):
    X, y = iris
    return StandardScaler().fit_transform(X), y


def test_a_short_run_uses_short_windows_and_retrains_as_the_dense_one_trained(iris_scaled):
    # max_epochs=5 on 150 rows: 190 traced steps. The auto window shrinks to the shortest
    # (the most windows, so the largest lag) instead of leaving lag 1, and the rewound sparse
    # network trains in the traced phase's batches, as the dense one did.
    X, y = iris_scaled
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = LEGCPrunedClassifier(max_epochs=5, random_state=0).fit(X, y)
    assert clf.window_size_ == 6 and clf.maxlag_ >= 10
    assert clf.n_weights_pruned_ > 0
    sparse = [row for row in clf.net_.history if row["phase"] == "sparse"]
    assert [row["train_batch_count"] for row in sparse] == [38] * 5
    assert clf.pruned_accuracy_ >= clf.dense_accuracy_ - 0.02
    assert not [w for w in caught if "lowered the training accuracy" in str(w.message)]


def test_an_accuracy_drop_after_short_fine_tuning_points_at_the_fine_tuning(iris_scaled):
    X, y = iris_scaled
    with pytest.warns(PruningWarning, match=r"Fine-tuning took 1 optimizer steps .* the dense "
                                            r"phase 100, .*fine_tune='continue'"):
        LEGCPrunedClassifier(hidden_layer_sizes=(8,), pruning="magnitude", amount=0.5,
                             max_epochs=100, fine_tune_epochs=1, lr=0.01,
                             random_state=0).fit(X, y)


def test_a_warm_start_that_traces_a_converged_network_says_so(iris_scaled):
    X, y = iris_scaled
    clf = LEGCPrunedClassifier(random_state=0, warm_start=True, mode="ft", max_epochs=60,
                               significance=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(X, y)
    hints = [str(w.message) for w in caught if "still learning" in str(w.message)]
    if hints:  # the second trace gave the test nothing to work on
        assert "fit without warm_start" in hints[0] and "mode='pt'" in hints[0]
    # The first fit's mask is kept: a warm start never revives a pruned weight.
    assert clf.n_weights_pruned_ > 0


def test_wrapped_error_messages_read_as_sentences(iris):
    X, y = iris
    with pytest.raises(ValueError, match=r"\. Use 'balanced' or a dict"):
        LEGCPrunedClassifier(class_weight={5: 2.0}, max_epochs=1).fit(X, y)


def test_a_trace_the_test_cannot_use_gives_one_warning(iris_scaled):
    # Binary iris (setosa vs the rest) is learned within the first windows: the effect is
    # constant or fitted exactly by its own lags, and the user hears it once, with the fix.
    X, y = iris_scaled
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = LEGCPrunedClassifier(random_state=0).fit(X, (y == 0).astype(int))
    about_it = [w for w in caught if "Granger" in str(w.message) or "still learning"
                in str(w.message)]
    assert clf.n_weights_pruned_ == 0
    assert len(about_it) == 1 and issubclass(about_it[0].category, PruningWarning)
    assert "Trace a phase in which the network is still learning" in str(about_it[0].message)


# -- found by a fresh user's session (2026-11-30): MLPClassifier habits --------------------

def test_iterator_train_shuffle_is_the_users_choice(iris):
    """``shuffle`` is refused naming ``iterator_train__shuffle``; that name must then work
    (it raised "got multiple values") and keep the fast in-memory batches."""
    X, y = iris
    clf = LEGCPrunedClassifier(hidden_layer_sizes=(4,), pruning="none", max_epochs=2,
                               iterator_train__shuffle=False, random_state=0).fit(X, y)
    batches = clf.net_.get_iterator(clf.net_.get_dataset(X.astype(np.float32), y),
                                    training=True)
    assert type(batches).__name__ == "TensorBatches" and batches.shuffle is False
    # Unshuffled, an epoch's batches are the rows in order (iris is sorted by class).
    first = next(iter(batches))[1]
    np.testing.assert_array_equal(first.numpy(), y[:len(first)])
    assert LEGCPrunedClassifier(iterator_train__shuffle=True).get_params()[
        "iterator_train__shuffle"] is True


def test_partial_fit_refuses_other_classes_than_the_first_calls(iris):
    X, y = iris
    clf = LEGCPrunedClassifier(hidden_layer_sizes=(4,)).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match=r"classes=\[0, 1, 2, 3\] is not the same as the "
                                         r"fitted model's classes_ \[0, 1, 2\]"):
        clf.partial_fit(X, y, classes=[0, 1, 2, 3])
    clf.partial_fit(X, y, classes=[2, 1, 0])  # the same classes, in another order
    assert clf.classes_.tolist() == [0, 1, 2]
    with pytest.raises(ValueError):  # as MLPClassifier does
        MLPClassifier(hidden_layer_sizes=(4,)).partial_fit(X, y, classes=[0, 1, 2]) \
            .partial_fit(X, y, classes=[0, 1, 2, 3])


def test_a_warm_start_refit_needs_the_same_classes(iris):
    X, y = iris
    clf = LEGCPrunedClassifier(hidden_layer_sizes=(4,), pruning="none", max_epochs=2,
                               warm_start=True, random_state=0).fit(X, y)
    before = [c.copy() for c in clf.coefs_]
    with pytest.raises(ValueError, match=r"Previously got \[0, 1, 2\], y has \[0, 1\]"):
        clf.fit(X[y < 2], y[y < 2])
    for a, b in zip(before, clf.coefs_):  # nothing trained before the refusal
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="same classes"):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, warm_start=True).fit(X, y) \
            .fit(X[y < 2], y[y < 2])


def test_a_batch_size_larger_than_the_data_is_clipped_with_a_warning(iris):
    X, y = iris
    with pytest.warns(UserWarning, match="batch_size=1000 is larger than the 150 rows"):
        clf = LEGCPrunedClassifier(hidden_layer_sizes=(4,), pruning="none", max_epochs=1,
                                   batch_size=1000).fit(X, y)
    assert clf.batch_size_ == 150


def test_coefs_and_intercepts_are_read_only_copies(iris):
    """Writing into MLPClassifier's coefs_ changes its model; ours are copies of the
    network's weights, so a write must fail instead of silently changing nothing."""
    X, y = iris
    clf = LEGCPrunedClassifier(hidden_layer_sizes=(4,), pruning="none", max_epochs=1,
                               random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="read-only"):
        clf.coefs_[0][:] = 0
    with pytest.raises(ValueError, match="read-only"):
        clf.intercepts_[0][0] = 1.0
    assert clf.coefs_[0].any()


def test_the_pruning_report_of_a_partial_fit_says_nothing_was_decided(iris):
    X, y = iris
    clf = LEGCPrunedClassifier(hidden_layer_sizes=(4,)).partial_fit(X, y, classes=[0, 1, 2])
    report = clf.pruning_report()
    assert report.startswith("trained by partial_fit only: no pruning decision was made")
    assert "decision data" not in report and "pruning='legc'" not in report
    assert clf.n_weights_pruned_ == 0
    # A fit afterwards decides, and its report says how.
    clf.set_params(max_epochs=40, random_state=0).fit(X, y)
    assert clf.pruning_report().startswith("pruning='legc'")


def test_a_class_of_one_row_cannot_be_held_out_and_the_advice_says_so():
    """A larger validation_fraction cannot split a class of one row: the message names the
    class by the user's label and gives fixes that work; a fraction too small for one row
    of every class still gets the fraction advice."""
    X = np.random.RandomState(0).randn(60, 3)
    y = np.array(["a"] * 30 + ["b"] * 29 + ["c"])
    for params, off in ((dict(early_stopping=True), "early_stopping=False"),
                        (dict(max_accuracy_drop=0.01), "max_accuracy_drop=None")):
        with pytest.raises(ValueError) as info:
            LEGCPrunedClassifier(max_epochs=2, **params).fit(X, y)
        message = str(info.value)
        assert "class(es) ['c'] have a single row" in message and off in message
        assert "larger validation_fraction" not in message
    with pytest.raises(ValueError, match="Use a larger validation_fraction"):
        LEGCPrunedClassifier(max_epochs=2, early_stopping=True,
                             validation_fraction=0.02).fit(X, np.repeat(["a", "b", "c"], 20))
