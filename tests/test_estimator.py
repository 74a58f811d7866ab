import pickle
import warnings

import numpy as np
import pytest
import torch
from conftest import FAST
from skorch.callbacks import Callback

from sklegc import LEGCPrunedClassifier
from sklegc.estimator import PruningWarning
from sklegc.network import prunable_layers
from sklegc.trajectory import TrainingDivergedError, WeightTracer
from sklegc.windows import n_windows


def effective_weights(clf):
    return {name: layer.weight.detach().numpy().copy()
            for name, layer in prunable_layers(clf.net_.module_)}


def test_fit_records_the_method_end_to_end(small_problem):
    X, y = small_problem
    clf = LEGCPrunedClassifier(**FAST, max_sparsity=0.25).fit(X, y)
    n_weights = 5 * 4 + 4 * 1
    K = n_windows(4 * 120, 20, 0.1)
    assert clf.n_weights_ == n_weights
    assert clf.lyapunov_.shape == (K, n_weights)
    assert clf.misclassification_.shape == (K,)
    assert np.all((clf.misclassification_ >= 0) & (clf.misclassification_ <= 1))
    assert clf.granger_pvalues_.shape == (n_weights,)
    assert clf.n_dense_steps_ == 4 * 120
    assert clf.window_ends_[0] == 19 and np.all(np.diff(clf.window_ends_) == 18)
    assert set(clf.mask_) == {name for name, _ in clf.weight_layers_}
    assert clf.score(X, y) > 0.8


def test_pruned_weights_are_the_noncausal_ones_and_stay_zero(small_problem):
    X, y = small_problem
    clf = LEGCPrunedClassifier(**{**FAST, "significance": 0.3}).fit(X, y)
    p = clf.granger_pvalues_
    noncausal = ~np.isnan(p) & (p >= 0.3)
    assert clf.n_weights_pruned_ == noncausal.sum() > 0
    np.testing.assert_array_equal(clf.pruned_, noncausal)
    flat = np.concatenate([w.reshape(-1) for w in effective_weights(clf).values()])
    assert np.all(flat[clf.pruned_] == 0.0)
    assert np.all(flat[~clf.pruned_] != 0.0)
    assert clf.sparsity_ == pytest.approx(noncausal.mean())
    assert clf.flops_ == clf.n_weights_ - clf.n_weights_pruned_


def test_pt_mode_runs_fewer_dense_steps_than_ft(small_problem):
    X, y = small_problem
    params = {**FAST, "max_epochs": 10, "maxlag": 2}
    ft = LEGCPrunedClassifier(**{**params, "mode": "ft"}).fit(X, y)
    pt = LEGCPrunedClassifier(**{**params, "mode": "pt", "trace_fraction": 0.2}).fit(X, y)
    assert pt.n_dense_steps_ == 2 * 120 < ft.n_dense_steps_ == 10 * 120
    assert pt.lyapunov_.shape[0] < ft.lyapunov_.shape[0]


def test_same_random_state_gives_identical_fits_and_leaves_torch_rng_alone(small_problem):
    X, y = small_problem
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = LEGCPrunedClassifier(**FAST).fit(X, y)
    after = torch.rand(3)
    b = LEGCPrunedClassifier(**FAST).fit(X, y)
    torch.testing.assert_close(before, after)
    np.testing.assert_array_equal(a.pruned_, b.pruned_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = LEGCPrunedClassifier(**{**FAST, "random_state": 1}).fit(X, y)
    assert not np.array_equal(a.lyapunov_, c.lyapunov_)


class RecordFirstWeights(Callback):
    def __init__(self, store):
        self.store = store

    def on_train_begin(self, net, **kwargs):
        if not self.store:
            self.store.append({name: getattr(layer, "weight_orig", layer.weight).detach().clone()
                               for name, layer in prunable_layers(net.module_)})


@pytest.mark.parametrize("pruning, extra", [("legc", {}), ("magnitude", {"amount": 0.25}),
                                            ("random", {"amount": 0.25}), ("none", {})])
def test_every_pruning_starts_from_the_same_initial_weights(small_problem, pruning, extra):
    X, y = small_problem
    store = []
    clf = LEGCPrunedClassifier(**FAST, pruning=pruning, callbacks=[RecordFirstWeights(store)],
                               **extra).fit(X, y)
    reference = LEGCPrunedClassifier(**{**FAST, "pruning": "none", "max_epochs": 1}).fit(X[:10], y[:10])
    for name, weights in store[0].items():
        torch.testing.assert_close(weights, reference.initial_state_[f"{name}.weight"])
    if pruning in ("magnitude", "random"):
        assert clf.n_weights_pruned_ == round(0.25 * clf.n_weights_)


def test_magnitude_baseline_prunes_the_smallest_trained_weights(small_problem):
    X, y = small_problem
    dense = LEGCPrunedClassifier(**FAST, pruning="none").fit(X, y)
    mag = LEGCPrunedClassifier(**FAST, pruning="magnitude", amount=6, fine_tune=None).fit(X, y)
    trained = np.concatenate([w.reshape(-1) for w in effective_weights(dense).values()])
    smallest = np.argsort(np.abs(trained))[:6]
    assert set(np.flatnonzero(mag.pruned_)) == set(smallest)


def test_fine_tune_none_keeps_the_dense_weights_masked(small_problem):
    X, y = small_problem
    dense = LEGCPrunedClassifier(**FAST, pruning="none").fit(X, y)
    kept = LEGCPrunedClassifier(**{**FAST, "significance": 0.3}, fine_tune=None).fit(X, y)
    a = np.concatenate([w.reshape(-1) for w in effective_weights(dense).values()])
    b = np.concatenate([w.reshape(-1) for w in effective_weights(kept).values()])
    np.testing.assert_array_equal(b, np.where(kept.pruned_, 0.0, a))


def test_amount_with_legc_prunes_the_least_causal_first(small_problem):
    X, y = small_problem
    clf = LEGCPrunedClassifier(**FAST, amount=0.5).fit(X, y)
    assert clf.n_weights_pruned_ == 12
    p = np.where(np.isnan(clf.granger_pvalues_), -1, clf.granger_pvalues_)
    assert p[clf.pruned_].min() >= p[~clf.pruned_].max()


def test_max_sparsity_caps_pruning(small_problem):
    X, y = small_problem
    clf = LEGCPrunedClassifier(**{**FAST, "significance": 0.9}, max_sparsity=0.25).fit(X, y)
    assert clf.n_weights_pruned_ <= 6


def test_target_accuracy_records_epochs_and_stops_fine_tuning(small_problem):
    X, y = small_problem
    clf = LEGCPrunedClassifier(**{**FAST, "max_epochs": 6, "maxlag": 2}, max_sparsity=0.2,
                               target_accuracy=0.8).fit(X, y)
    history = clf.net_.history
    dense = [row for row in history if row["phase"] == "dense"]
    sparse = [row for row in history if row["phase"] == "sparse"]
    assert len(dense) == 6  # the traced phase runs its planned epochs
    first = clf.epochs_to_target_["sparse"]
    assert first is not None and len(sparse) == first
    assert sparse[-1]["train_accuracy"] >= 0.8
    assert all(row["train_accuracy"] < 0.8 for row in sparse[:-1])


def test_string_labels_and_multiclass():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 4))
    y = np.array(["setosa", "versicolor", "virginica"])[np.argmax(X[:, :3], axis=1)]
    clf = LEGCPrunedClassifier(**FAST).fit(X, y)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(clf.predict(X)) <= set(clf.classes_)
    assert clf.n_weights_ == 4 * 4 + 4 * 3


def test_early_stopping_measures_misclassification_on_held_out_rows(small_problem):
    X, y = small_problem
    clf = LEGCPrunedClassifier(**FAST, early_stopping=True, validation_fraction=0.25).fit(X, y)
    assert clf.n_dense_steps_ == 4 * 90
    held_out = 30
    assert np.allclose(clf.misclassification_ * held_out, np.round(clf.misclassification_ * held_out))


def test_custom_module_with_routed_parameters(small_problem):
    X, y = small_problem

    class TwoLayer(torch.nn.Module):
        def __init__(self, n_features, n_outputs, width=3):
            super().__init__()
            self.hidden = torch.nn.Linear(n_features, width)
            self.out = torch.nn.Linear(width, n_outputs)

        def forward(self, X):
            return self.out(torch.tanh(self.hidden(X)))

    clf = LEGCPrunedClassifier(**FAST, module=TwoLayer, module__width=7).fit(X, y)
    assert clf.weight_layers_ == [("hidden", (7, 5)), ("out", (1, 7))]
    assert clf.get_params()["module__width"] == 7
    clf.set_params(module__width=2)
    assert clf.fit(X, y).n_weights_ == 2 * 5 + 2


def test_pickle_round_trip_gives_identical_predictions(small_problem):
    X, y = small_problem
    clf = LEGCPrunedClassifier(**{**FAST, "significance": 0.3}).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(restored.pruned_, clf.pruned_)


def test_pruning_report_lists_every_layer(small_problem):
    X, y = small_problem
    clf = LEGCPrunedClassifier(**{**FAST, "significance": 0.3}).fit(X, y)
    frame = clf.pruning_report(as_frame=True)
    assert list(frame["layer"]) == [name for name, _ in clf.weight_layers_] + ["total"]
    assert frame["pruned"].iloc[-1] == clf.n_weights_pruned_
    text = clf.pruning_report()
    assert "maxlag=3" in text and "total" in text
    assert "target_accuracy" not in text  # none was set
    targeted = LEGCPrunedClassifier(**{**FAST, "significance": 0.3, "target_accuracy": 0.5,
                                       "random_state": 0}).fit(X, y)
    reached = targeted.epochs_to_target_
    assert (f"epochs to target_accuracy=0.5: dense {reached['dense'] or 'not reached'}, "
            f"sparse {reached['sparse'] or 'not reached'}") in targeted.pruning_report()


def test_too_few_windows_is_refused_before_training(small_problem):
    X, y = small_problem
    with pytest.raises(ValueError, match=r"largest feasible maxlag is \d+") as info:
        LEGCPrunedClassifier(**{**FAST, "maxlag": 14}).fit(X, y)
    assert "windows" in str(info.value) and "maxlag='auto'" in str(info.value)


def test_maxlag_auto_uses_the_largest_feasible_lag_with_a_warning(small_problem):
    X, y = small_problem
    K = n_windows(4 * 120, 20, 0.1)
    with pytest.warns(PruningWarning, match="using maxlag"):
        clf = LEGCPrunedClassifier(**{**FAST, "maxlag": "auto"}).fit(X, y)
    assert clf.maxlag_ == (K - 2) // 3


def test_diverging_training_stops_with_a_clear_error(small_problem):
    X, y = small_problem
    with pytest.raises(TrainingDivergedError, match=r"epoch 1 .*smaller learning rate"):
        LEGCPrunedClassifier(**{**FAST, "lr": 1e6, "activation": "identity",
                                "loss": "cross_entropy"}).fit(X * 1e3, y)


def test_verbose_zero_is_silent_and_verbose_prints_the_epoch_log(small_problem, capsys):
    X, y = small_problem
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LEGCPrunedClassifier(**FAST, max_sparsity=0.2).fit(X, y)
    assert capsys.readouterr().out == ""
    LEGCPrunedClassifier(**FAST, max_sparsity=0.2, verbose=1).fit(X, y)
    assert "train_loss" in capsys.readouterr().out


def test_trace_buffer_never_holds_more_than_one_window(small_problem):
    from skorch import NeuralNet

    from sklegc.network import MLP, ClassificationLoss

    X, y = small_problem
    X_t, y_t = torch.as_tensor(X), torch.as_tensor(y)
    tracer = WeightTracer(20, 18, X_t, y_t)
    net = NeuralNet(MLP, criterion=ClassificationLoss, module__n_features=5,
                    module__n_outputs=1, max_epochs=3, batch_size=1, train_split=None,
                    callbacks=[tracer], verbose=0, lr=0.1)
    sizes = []
    original = tracer.on_batch_end

    def spy(net, **kwargs):
        original(net, **kwargs)
        sizes.append(tracer.buffer_.shape[0])

    tracer.on_batch_end = spy
    net.fit(X, y)
    assert len(tracer.lyapunov_) == n_windows(360, 20, 0.1) > 10
    assert set(sizes) == {20}
    # the recorded window equals the trajectory it was cut from: replay the last window
    assert tracer.window_ends_[-1] == 19 + 18 * (len(tracer.window_ends_) - 1)
