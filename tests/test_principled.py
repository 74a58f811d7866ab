"""Principled pruning (issue 14): the test's options on the estimator, the loss effect,
max_accuracy_drop, SNIP, IMP, layer-matched random pruning, and the study built on them."""

import json
import math
import warnings

import numpy as np
import pytest
import torch
from conftest import FAST
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from sklegc import LEGCPrunedClassifier
from sklegc.estimator import PruningWarning
from sklegc.granger import granger_tests, max_feasible_lag
from sklegc.masks import (
    accuracy_limited_count,
    imp_schedule,
    layer_counts,
    layerwise_random_keep,
    noncausal_mask,
)
from sklegc.network import MLP, ClassificationLoss, prunable_layers
from sklegc.windows import n_windows


def held_out_rows(X, y, random_state, fraction=0.1):
    """The rows fit holds out for max_accuracy_drop: its documented stratified split, seeded
    as every random choice of a fit is, from random_state."""
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    _, X_held, _, y_held = train_test_split(X, y, test_size=fraction, stratify=y,
                                            random_state=seed)
    return X_held, y_held


# -- the decision options ---------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    dict(stationarity="adf", lag_selection="bic", gc_test="ssr_ftest"),
    dict(stationarity="difference", lag_selection="simes"),
    dict(effect="loss", lag_selection="fixed"),
])
def test_decision_options_reach_the_granger_test(small_problem, options):
    X, y = small_problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PruningWarning)
        clf = LEGCPrunedClassifier(**dict(FAST, **options)).fit(X, y)
    result = clf.granger_result_
    assert result.stationarity == options.get("stationarity")
    assert result.lag_selection == options["lag_selection"]
    assert result.test == options.get("gc_test", "ssr_chi2test")
    assert result.maxlag == clf.maxlag_ == 3
    series = clf.window_loss_ if options.get("effect") == "loss" else clf.misclassification_
    np.testing.assert_array_equal(clf.effect_, series)
    expected = granger_tests(series, clf.lyapunov_, maxlag=3, test=result.test,
                             stationarity=result.stationarity,
                             lag_selection=result.lag_selection)
    np.testing.assert_array_equal(clf.granger_pvalues_, expected.pvalue)
    untestable = expected.untestable | np.isnan(expected.pvalue)
    np.testing.assert_array_equal(clf.pruned_, noncausal_mask(expected.pvalue, untestable))
    assert "lag_selection=" in clf.pruning_report()


def test_the_options_set_how_many_windows_the_test_needs(small_problem):
    X, y = small_problem
    # 2 epochs of 120 steps in windows of 20 without overlap: 12 windows, enough for lag 3
    # in levels (11), not after differencing with a BIC lag (13).
    params = dict(FAST, max_epochs=2, window_overlap=0.0)
    K = n_windows(240, 20, 0.0)
    assert K == 12
    LEGCPrunedClassifier(**params).fit(X, y)
    calibrated = dict(stationarity="adf", lag_selection="bic")
    with pytest.raises(ValueError, match=r"maxlag=3 \(stationarity='adf', lag_selection='bic'\) "
                                         r"needs at least 13 windows.*maxlag=2"):
        LEGCPrunedClassifier(**params, **calibrated).fit(X, y)
    with pytest.warns(PruningWarning, match="using maxlag=2"):
        auto = LEGCPrunedClassifier(**dict(params, maxlag="auto"), **calibrated).fit(X, y)
    assert auto.maxlag_ == max_feasible_lag(K, **calibrated) == 2
    assert auto.granger_result_.maxlag == 2


# -- the loss effect --------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
def test_window_loss_is_the_criterion_loss_at_each_window_end(small_problem, weighted):
    X, y = small_problem
    weight = np.random.RandomState(1).uniform(0.2, 3.0, size=len(y)) if weighted else None
    # Windows without overlap end on the last step, and amount=0 keeps the dense network:
    # the last window's loss is the fitted network's.
    clf = LEGCPrunedClassifier(**dict(FAST, window_overlap=0.0, amount=0, effect="loss"))
    clf.fit(X, y, sample_weight=weight)
    assert clf.window_ends_[-1] == clf.n_dense_steps_ - 1 and clf.n_weights_pruned_ == 0
    with torch.no_grad():
        scores = clf.net_.module_(torch.as_tensor(X))
    per_sample = (torch.sigmoid(scores[:, 0]) - torch.as_tensor(y, dtype=scores.dtype)) ** 2
    w = np.ones(len(y)) if weight is None else weight
    expected = float((per_sample.numpy() * w).sum() / w.sum())
    assert clf.window_loss_[-1] == pytest.approx(expected, rel=1e-5)
    hits = clf.predict(X) == y
    # The estimator holds the weights in float32.
    assert clf.misclassification_[-1] == pytest.approx(1 - (hits * w).sum() / w.sum(), rel=1e-5)
    np.testing.assert_array_equal(clf.effect_, clf.window_loss_)
    assert len(clf.window_loss_) == len(clf.misclassification_) == len(clf.lyapunov_)


def test_loss_effect_is_tested_where_the_misclassification_rate_is_flat():
    # shared/cases/dropin-05-imbalanced.py with sigmoid units and the squared error: 1%
    # positives, and the network predicts the majority class throughout.
    X, y = make_classification(2000, 10, weights=[0.99], random_state=0)
    params = dict(hidden_layer_sizes=(8,), activation="logistic", loss="mse", lr=0.01,
                  max_epochs=8, window_size=40, maxlag="auto", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PruningWarning)
        flat = LEGCPrunedClassifier(**params).fit(X, y)
        loss = LEGCPrunedClassifier(**params, effect="loss").fit(X, y)
    assert np.ptp(flat.misclassification_) == 0 and flat.n_weights_pruned_ == 0
    assert np.isnan(flat.granger_pvalues_).all()
    np.testing.assert_array_equal(loss.misclassification_, flat.misclassification_)
    assert np.ptp(loss.window_loss_) > 0
    assert np.isfinite(loss.granger_pvalues_).sum() > loss.n_weights_ // 2


# -- max_accuracy_drop ------------------------------------------------------------------------

# The paper's protocol, short: 3 epochs of per-sample SGD on the paper's cancer data.
LIMITED = dict(FAST, hidden_layer_sizes=(6,), lr=0.05, max_epochs=3, window_size=40,
               maxlag="auto", amount=1.0, max_accuracy_drop=0.01)


@pytest.fixture(scope="module")
def cancer(data_dir):
    from sklegc.datasets import load_dataset

    return load_dataset("cancer", data_dir)


@pytest.mark.parametrize("pruning, seed", [("legc", 0), ("legc", 1), ("legc", 2),
                                           ("magnitude", 0), ("random", 1), ("snip", 2)])
def test_max_accuracy_drop_holds_on_the_held_out_rows(cancer, pruning, seed):
    X, y = cancer.X_train, cancer.y_train
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PruningWarning)
        clf = LEGCPrunedClassifier(**dict(LIMITED, pruning=pruning, random_state=seed)).fit(X, y)
        # Nothing to prune: the dense network, trained on the same rows (the held-out ones
        # left out), is kept.
        dense = LEGCPrunedClassifier(**dict(LIMITED, pruning="magnitude", amount=0,
                                            random_state=seed)).fit(X, y)
    X_held, y_held = held_out_rows(X, y, seed)
    # The held-out rows are the ones the estimator reports on, and were not trained on: the
    # dense network trained without them scores the same on them.
    assert clf.heldout_accuracy_ == pytest.approx(clf.score(X_held, y_held))
    assert clf.dense_heldout_accuracy_ == pytest.approx(dense.score(X_held, y_held))
    assert clf.heldout_accuracy_ >= clf.dense_heldout_accuracy_ - 0.01
    assert clf.n_weights_pruned_ > 0
    search = clf.accuracy_search_
    assert search["pruned"] == clf.n_weights_pruned_ and search["candidates"] == clf.n_weights_
    assert len(search["trials"]) <= 1 + int(np.ceil(np.log2(clf.n_weights_)))
    np.testing.assert_array_equal(np.flatnonzero(clf.pruned_),
                                  np.sort(clf.pruning_order_[:clf.n_weights_pruned_]))


def test_a_fine_tuning_that_loses_accuracy_gives_way_to_the_masked_dense_weights(cancer):
    X, y = cancer.X_train, cancer.y_train
    # No fine-tuning epochs after the rewind: the initial weights, masked, are what is left.
    with pytest.warns(PruningWarning, match="are kept instead"):
        clf = LEGCPrunedClassifier(**dict(LIMITED, pruning="magnitude", fine_tune_epochs=0))
        clf.fit(X, y)
    search = clf.accuracy_search_
    assert search["fallback"] and search["fine_tuned"] < search["floor"]
    passing = dict(search["trials"])[clf.n_weights_pruned_]
    assert clf.heldout_accuracy_ == passing >= search["floor"]
    dense = LEGCPrunedClassifier(**dict(LIMITED, pruning="magnitude", amount=0)).fit(X, y)
    for coef, dense_coef, mask in zip(clf.coefs_, dense.coefs_, clf.mask_.values()):
        np.testing.assert_array_equal(coef, dense_coef * mask.T)


def test_imp_stops_at_the_first_round_that_loses_too_much(cancer):
    X, y = cancer.X_train, cancer.y_train
    params = dict(LIMITED, pruning="imp", amount=0.95, imp_rounds=3, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PruningWarning)
        clf = LEGCPrunedClassifier(**params).fit(X, y)
    search = clf.accuracy_search_
    trials = search["trials"]
    totals = imp_schedule(clf.n_weights_, 0.95, 3)
    assert [n for n, _ in trials] == totals[:len(trials)]
    assert clf.heldout_accuracy_ >= clf.dense_heldout_accuracy_ - 0.01
    if search["fallback"]:
        assert trials[-1][1] < search["floor"]
        assert clf.n_weights_pruned_ == ([0] + totals)[len(trials) - 1]
    else:
        assert clf.n_weights_pruned_ == totals[-1]


@pytest.mark.parametrize("fine_tune", ["rewind", None])
def test_max_accuracy_drop_in_pt_mode_compares_with_the_fully_trained_dense_network(
        cancer, fine_tune):
    X, y = cancer.X_train, cancer.y_train
    params = dict(LIMITED, mode="pt", fine_tune=fine_tune)  # traces 1 of the 3 epochs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PruningWarning)
        clf = LEGCPrunedClassifier(**params).fit(X, y)
        full = LEGCPrunedClassifier(**dict(params, mode="ft")).fit(X, y)
        # Nothing may be pruned: the dense network, trained on after its PT trace, is kept.
        dense = LEGCPrunedClassifier(**dict(params, amount=0)).fit(X, y)
    assert dense.n_weights_pruned_ == 0
    rows = clf.net_.history
    # The decision read the PT trace (the first epoch's windows) ...
    assert [row.get("n_windows") for row in rows if row.get("n_windows")] == [
        len(clf.lyapunov_)] == [full.net_.history[0]["n_windows"]]
    # ... and the search compared with the dense network trained for all the epochs.
    assert [row["phase"] for row in rows].count("dense") == LIMITED["max_epochs"]
    assert clf.dense_heldout_accuracy_ == dense.heldout_accuracy_
    assert 0 < clf.n_weights_pruned_ < clf.n_weights_
    assert clf.heldout_accuracy_ >= clf.dense_heldout_accuracy_ - LIMITED["max_accuracy_drop"]
    if fine_tune is None:
        # The masked dense weights are the answer.
        for coef, dense_coef, mask in zip(clf.coefs_, dense.coefs_, clf.mask_.values()):
            np.testing.assert_array_equal(coef, dense_coef * mask.T)
    else:
        assert [row["phase"] for row in rows].count("sparse") == LIMITED["max_epochs"]


def test_pt_fine_tuning_after_the_search_trains_as_the_dense_network_did():
    from sklearn.datasets import load_iris
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PruningWarning)
        clf = LEGCPrunedClassifier(amount=1.0, max_accuracy_drop=0.05, max_epochs=60,
                                   random_state=0).fit(X, y)
    assert clf.trace_batch_size_ < clf.batch_size_ and clf.n_weights_pruned_ > 0
    steps = {phase: [row["train_batch_count"] for row in clf.net_.history
                     if row["phase"] == phase] for phase in ("dense", "sparse")}
    traced = sum(1 for row in clf.net_.history if row.get("n_windows"))
    # The dense network: its PT trace in small batches, then trained on in large ones ...
    assert 0 < traced < len(steps["dense"]) <= 60
    assert set(steps["dense"][traced:]) == {math.ceil(len(y) * 0.9 / clf.batch_size_)}
    # ... and the rewound sparse network trains the same way.
    assert steps["sparse"][:traced] == steps["dense"][:traced]
    assert set(steps["sparse"][traced:]) <= set(steps["dense"][traced:])


def test_fine_tune_none_in_pt_mode_needs_max_accuracy_drop(small_problem):
    with pytest.raises(ValueError, match="with max_accuracy_drop"):
        LEGCPrunedClassifier(**dict(FAST, mode="pt", fine_tune=None)).fit(*small_problem)


def test_accuracy_limited_count_bisects_to_the_last_passing_count():
    calls = []

    def accuracy(n):
        calls.append(n)
        return 1.0 - 0.01 * n

    assert accuracy_limited_count(100, accuracy, 0.8) == (20, [(n, 1 - 0.01 * n) for n in calls])
    assert len(calls) <= 1 + 7
    assert accuracy_limited_count(100, lambda n: 1.0, 0.8)[0] == 100
    assert accuracy_limited_count(0, accuracy, 0.8) == (0, [])
    # Not monotone: a count that passes is returned, with the next one failing.
    bumpy = {n: (n % 3 != 1) for n in range(31)}
    n, _ = accuracy_limited_count(30, lambda n: float(bumpy[n]), 0.5)
    assert bumpy[n] or n == 0
    assert n == 30 or not bumpy[n + 1]


# -- IMP and SNIP -----------------------------------------------------------------------------


def test_imp_schedule_prunes_the_same_share_of_the_remaining_weights_each_round():
    totals = imp_schedule(10_000, 0.9, 4)
    assert totals[-1] == 9000
    remaining = 10_000 - np.array([0] + totals)
    np.testing.assert_allclose(remaining[1:] / remaining[:-1], 0.1 ** 0.25, atol=2e-4)
    assert imp_schedule(60, 31, 3)[-1] == 31
    with pytest.raises(ValueError, match="rounds"):
        imp_schedule(60, 0.5, 0)


def test_imp_prunes_the_amount_in_rounds_from_the_smallest_weights(small_problem):
    X, y = small_problem
    params = dict(FAST, pruning="imp", amount=0.6, imp_rounds=3)
    clf = LEGCPrunedClassifier(**params).fit(X, y)
    totals = imp_schedule(clf.n_weights_, 0.6, 3)
    assert clf.n_weights_pruned_ == totals[-1] == round(0.6 * clf.n_weights_)
    phases = [row["phase"] for row in clf.net_.history]
    assert phases.count("dense") == phases.count("sparse") == FAST["max_epochs"]
    assert phases.count("imp") == 2 * FAST["max_epochs"]
    np.testing.assert_array_equal(np.sort(clf.pruning_order_), np.flatnonzero(clf.pruned_))
    # Round 1 is magnitude pruning of the dense network, which the same seed trains alike.
    first = LEGCPrunedClassifier(**dict(FAST, pruning="magnitude", amount=totals[0],
                                        fine_tune=None)).fit(X, y)
    np.testing.assert_array_equal(np.sort(clf.pruning_order_[:totals[0]]),
                                  np.flatnonzero(first.pruned_))
    again = LEGCPrunedClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(again.pruned_, clf.pruned_)
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_imp_needs_training_between_rounds(small_problem):
    with pytest.raises(ValueError, match="fine_tune='rewind'"):
        LEGCPrunedClassifier(**dict(FAST, pruning="imp", amount=0.5, fine_tune=None)).fit(
            *small_problem)


def test_snip_prunes_the_least_sensitive_weights_at_initialisation(small_problem):
    X, y = small_problem  # 120 rows: the batch is every training row
    params = dict(FAST, pruning="snip", amount=0.5)
    clf = LEGCPrunedClassifier(**params).fit(X, y)
    assert clf.n_dense_steps_ == 0  # rewind: no dense training needed
    module = MLP(5, 1, hidden_layer_sizes=(4,), activation="logistic")
    module.load_state_dict(clf.initial_state_)
    loss = ClassificationLoss("mse")(module(torch.as_tensor(X)), torch.as_tensor(y))
    weights = [layer.weight for _, layer in prunable_layers(module)]
    grads = torch.autograd.grad(loss, weights)
    expected = np.concatenate([(g * w).abs().detach().numpy().ravel()
                               for g, w in zip(grads, weights)])
    np.testing.assert_allclose(clf.saliency_, expected, rtol=1e-5, atol=1e-9)
    assert clf.n_weights_pruned_ == round(0.5 * clf.n_weights_)
    assert clf.saliency_[clf.pruned_].max() <= clf.saliency_[~clf.pruned_].min()
    again = LEGCPrunedClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(again.pruned_, clf.pruned_)
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


# -- random pruning with per-layer counts -----------------------------------------------------


def test_layerwise_random_pruning_has_the_counts_and_leaves_torch_alone():
    layers = prunable_layers(MLP(5, 3, hidden_layer_sizes=(7, 4)))
    shapes = [tuple(layer.weight.shape) for _, layer in layers]
    state = torch.random.get_rng_state()
    keep = layerwise_random_keep(layers, [10, 5, 2], generator_seed=0)
    assert torch.equal(state, torch.random.get_rng_state())
    assert layer_counts(~keep, shapes) == [10, 5, 2]
    np.testing.assert_array_equal(keep, layerwise_random_keep(layers, [10, 5, 2], 0))
    assert (keep != layerwise_random_keep(layers, [10, 5, 2], 1)).any()
    assert all(not prune_attr for prune_attr in
               (hasattr(layer, "weight_mask") for _, layer in layers))
    with pytest.raises(ValueError, match="for each of the 3 layers"):
        layerwise_random_keep(layers, [10, 5], 0)


def test_study_random_pruning_copies_the_per_layer_counts(small_problem):
    from sklegc.experiments.principled import _study_class

    X, y = small_problem
    legc = LEGCPrunedClassifier(**dict(FAST, amount=0.5)).fit(X, y)
    counts = layer_counts(legc.pruned_, [shape for _, shape in legc.weight_layers_])
    control = _study_class()(**dict(FAST, pruning="random", amount=legc.n_weights_pruned_))
    control._layer_counts = counts
    control.fit(X, y)
    assert layer_counts(control.pruned_, [s for _, s in control.weight_layers_]) == counts
    assert (control.pruned_ != legc.pruned_).any()


# -- replay and the study ---------------------------------------------------------------------


def test_replay_with_the_dense_state_decides_like_a_full_fit(small_problem, tmp_path):
    from sklegc.experiments.principled import _study_class
    from sklegc.experiments.runner import load_trace, save_trace

    X, y = small_problem
    params = dict(FAST, amount=1.0, max_accuracy_drop=0.02, stationarity="adf",
                  lag_selection="bic", gc_test="ssr_ftest", effect="loss")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PruningWarning)
        full = _study_class()(**params)
        full._keep_dense_state = True
        full.fit(X, y)
        save_trace(tmp_path / "trace.npz", full, full._dense_state)
        replay = _study_class()(**params)
        replay._replay = load_trace(tmp_path / "trace.npz")
        replay.fit(X, y)
    assert replay.n_dense_steps_ == 0 < full.n_dense_steps_
    # The trace keeps the exponents in float32.
    np.testing.assert_allclose(replay.granger_pvalues_, full.granger_pvalues_, rtol=1e-5)
    np.testing.assert_array_equal(replay.window_loss_, full.window_loss_)
    assert replay.dense_heldout_accuracy_ == full.dense_heldout_accuracy_
    assert replay.accuracy_search_["trials"] == full.accuracy_search_["trials"]
    np.testing.assert_array_equal(replay.pruned_, full.pruned_)


def test_study_plan_and_a_quick_run(tmp_path, data_dir):
    from sklegc.experiments.principled import METHODS, plan_cells, write_report
    from sklegc.experiments.principled import COLUMNS
    from sklegc.experiments.runner import read_cells, run_cells

    cells = plan_cells(["iris"], [0])
    assert {c.method for c in cells} == set(METHODS)
    chosen = {"dense", "LEGC paper", "LEGC calibrated <=1%", "random layers @paper",
              "SNIP 50%"}
    result = run_cells([c for c in cells if c.method in chosen], tmp_path, data_dir=data_dir,
                       quick=True, n_jobs=1, progress=False, columns=COLUMNS)
    assert result["failed"] == []
    frame = read_cells(tmp_path / "cells.csv").set_index("method")
    assert frame.loc["LEGC calibrated <=1%", "trace_replayed"].endswith(".npz")
    assert str(frame.loc["LEGC calibrated <=1%", "within_drop"]) == "True"
    assert frame.loc["random layers @paper", "layer_pruned"] == frame.loc["LEGC paper",
                                                                          "layer_pruned"]
    assert len(json.loads(frame.loc["SNIP 50%", "shap"])) == 4
    report = write_report(tmp_path).read_text()
    assert "max_accuracy_drop=0.01" in report and "SHAP agreement" in report


def test_the_study_report_prints_from_its_folder(tmp_path, capsys):
    from sklegc.experiments.principled import COLUMNS, main, write_report

    row = dict.fromkeys(COLUMNS, "")
    rows = []
    for seed, (dense, paper) in enumerate([(0.90, 0.92), (0.80, 0.81), (0.85, 0.84)]):
        for method, accuracy, pruned in (("dense", dense, 0.0), ("LEGC paper", paper, 25.0)):
            rows.append(dict(row, study="principled", dataset="iris", method=method,
                             seed=seed, accuracy=accuracy, pct_pruned=pruned, cpu_s=1.0,
                             fit_time_s=1.0))
    import pandas as pd

    pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp_path / "cells.csv", index=False)
    assert main([str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert printed == write_report(tmp_path).read_text()
    # LEGC paper - dense: +0.02, +0.01, -0.01 over the three seeds.
    assert "| LEGC paper − dense | 0.0067 ± 0.0153 | 2 / 0 / 1 | 1 | 3 |" in printed
    with pytest.raises(SystemExit):
        main([str(tmp_path / "nowhere")])


def test_max_accuracy_drop_never_passes_a_network_no_better_than_one_class():
    """1% positives, balanced class weights: on this fold the held-out rows hold 2
    positives and the dense network gets neither right, so its weighted held-out accuracy
    is below what predicting the majority class gets. Any pruned network, even one that
    predicts a constant, passed dense - 0.01 alone (the drop-in bench pruned 99.7% here)."""
    from sklearn.datasets import make_classification
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils.class_weight import compute_sample_weight

    X, y = make_classification(2000, n_features=10, weights=[0.99], random_state=0)
    rows = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))[2][0]
    X, y = StandardScaler().fit_transform(X[rows]), y[rows]
    with pytest.warns(PruningWarning, match="no better than predicting the most frequent"):
        clf = LEGCPrunedClassifier(random_state=0, class_weight="balanced", amount=1.0,
                                   max_accuracy_drop=0.01).fit(X, y)
    _, y_held = held_out_rows(X, y, 0)
    weights = compute_sample_weight("balanced", y)
    w_held = held_out_rows(weights[:, None], y, 0)[0][:, 0]
    chance = max(w_held[y_held == c].sum() for c in (0, 1)) / w_held.sum()
    search = clf.accuracy_search_
    assert y_held.sum() == 2
    assert search["chance"] == pytest.approx(chance)
    assert search["dense"] <= chance and search["trials"] == []
    assert clf.n_weights_pruned_ == 0 and clf.heldout_accuracy_ == search["dense"]


@pytest.mark.parametrize("params", [
    dict(pruning="legc", amount=0.5),
    dict(pruning="magnitude", amount=0.5),
    dict(pruning="random", amount=15),
    dict(pruning="legc", amount=1.0, max_accuracy_drop=1.0),
])
def test_max_sparsity_caps_amount(small_problem, params):
    X, y = small_problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PruningWarning)
        capped = LEGCPrunedClassifier(**dict(FAST, max_sparsity=0.3, **params)).fit(X, y)
        free = LEGCPrunedClassifier(**dict(FAST, **params)).fit(X, y)
    assert capped.n_weights_pruned_ == int(0.3 * capped.n_weights_) < free.n_weights_pruned_
    # Ranked pruning keeps the first of the weights the uncapped rule prunes, in its order
    # (random pruning draws its count afresh).
    first = np.sort(free.pruning_order_[:capped.n_weights_pruned_])
    if params["pruning"] != "random" and params.get("max_accuracy_drop") is None:
        np.testing.assert_array_equal(np.flatnonzero(capped.pruned_), first)


def test_imp_refuses_amount_one():
    with pytest.raises(ValueError, match="every weight in its first round.*amount=0.99"):
        LEGCPrunedClassifier(pruning="imp", amount=1.0).fit(np.eye(4), [0, 1, 0, 1])


def test_a_class_without_held_out_rows_is_named(small_problem):
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    rows = np.r_[0:100, 100:103]  # class 2: 3 rows, none of them held out
    with pytest.warns(PruningWarning, match=r"no row of class\(es\) \[2\] \(3 training rows\)"):
        LEGCPrunedClassifier(**dict(FAST, pruning="magnitude", amount=0.3,
                                    max_accuracy_drop=0.01)).fit(X[rows], y[rows])


def test_validation_fraction_errors_say_which_way_to_move_it():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="Use a smaller validation_fraction"):
        LEGCPrunedClassifier(pruning="magnitude", amount=0.3, max_accuracy_drop=0.01,
                             validation_fraction=0.99).fit(X, y)
    with pytest.raises(ValueError, match="Use a larger validation_fraction"):
        LEGCPrunedClassifier(pruning="magnitude", amount=0.3, max_accuracy_drop=0.01,
                             validation_fraction=0.01).fit(X, y)


def test_pruning_none_holds_nothing_out_for_max_accuracy_drop(small_problem):
    X, y = small_problem
    bounded = LEGCPrunedClassifier(**dict(FAST, pruning="none", max_accuracy_drop=0.01)).fit(X, y)
    plain = LEGCPrunedClassifier(**dict(FAST, pruning="none")).fit(X, y)
    assert bounded.heldout_accuracy_ is None and bounded.accuracy_search_ is None
    np.testing.assert_array_equal(bounded.predict_proba(X), plain.predict_proba(X))


def test_paired_lines_count_wins_in_the_metric_s_direction():
    import pandas as pd

    from sklegc.experiments.principled import _paired_lines

    frame = pd.DataFrame([dict(dataset="iris", seed=s, method=m, shift=v)
                          for s, (a, b) in enumerate([(0.1, 0.3), (0.2, 0.4), (0.5, 0.1)])
                          for m, v in (("a", a), ("b", b))])
    higher, lower = (_paired_lines(frame, [("a", "b")], "shift", "x", lower_is_better=flag)[2]
                     for flag in (False, True))
    # a - b = -0.2, -0.2, +0.4: larger in one pair, smaller (closer) in two.
    assert "| 1 / 0 / 2 |" in higher and "| 2 / 0 / 1 |" in lower
