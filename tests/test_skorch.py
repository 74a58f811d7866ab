"""What skorch promises works inside LEGCPrunedClassifier, or is refused before training.

The skorch-0N tests are the cases of ../shared/cases/skorch-*, with their settings; the
others run each skorch callback in a full LEGC fit with fine-tuning (``P``), then user
modules, persistence (save_params / load_params / pickle) and prefixed parameters.
"""

import copy
import io
import pickle
import os
import re
import signal
import warnings

import joblib
import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FAST
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    EpochScoring,
    GradientNormClipping,
    InputShapeSetter,
    LoadInitState,
    LRScheduler,
    ProgressBar,
)
from torch import nn

from sklegc import LEGCPrunedClassifier
from sklegc.diagnostics import layer_quality, plot_esd
from sklegc.network import prunable_layers, scores_to_proba

matplotlib.use("Agg")

# A full LEGC fit that prunes and fine-tunes: 4 traced dense epochs, then 4 of fine-tuning.
P = {**FAST, "significance": 0.3}


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def rows(clf, phase):
    return [row for row in clf.net_.history if row["phase"] == phase]


def fit_with_fine_tuning(X, y, callbacks, **params):
    clf = LEGCPrunedClassifier(**{**P, **params}, callbacks=callbacks).fit(X, y)
    assert clf.n_weights_pruned_ > 0 and rows(clf, "sparse"), "the fit must fine-tune"
    return clf


def masked_weights(clf):
    return {name: layer.weight.detach().cpu().numpy().copy()
            for name, layer in prunable_layers(clf.net_.module_)}


def assert_same_model(a, b, X):
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.mask_.keys() == b.mask_.keys()
    for name in a.mask_:
        np.testing.assert_array_equal(a.mask_[name], b.mask_[name])
    np.testing.assert_array_equal(a.pruned_, b.pruned_)
    assert (a.n_weights_pruned_, a.sparsity_, a.flops_) == (b.n_weights_pruned_, b.sparsity_,
                                                             b.flops_)
    for (name, wa), wb in zip(masked_weights(a).items(), masked_weights(b).values()):
        np.testing.assert_array_equal(wa, wb, err_msg=name)


class Record(Callback):
    """Collects (epoch, phase-independent) events into a list the test keeps."""

    def __init__(self, store, event="on_grad_computed"):
        self.store = store
        self.event = event

    def on_train_begin(self, net, **kwargs):
        self.store.append(("train_begin", len(net.history)))

    def on_grad_computed(self, net, named_parameters, **kwargs):
        if self.event == "on_grad_computed":
            grads = [p.grad.reshape(-1) for _, p in named_parameters if p.grad is not None]
            self.store.append((len(net.history), float(torch.linalg.vector_norm(torch.cat(grads)))))

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        if self.event == "on_batch_end" and training:
            self.store.append((len(net.history), y_pred.detach().clone(), batch[1].clone()))


def phase_of_epoch(clf):
    return {i + 1: row["phase"] for i, row in enumerate(clf.net_.history)}


# -- the cases ----------------------------------------------------------------------------


@pytest.mark.parametrize("pruning, extra", [("none", {}), ("magnitude", {"amount": 0.3})])
def test_skorch01_lr_scheduler_restarts_with_each_phase(iris, pruning, extra):
    X, y = iris
    scheduler = LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=2)
    clf = LEGCPrunedClassifier(hidden_layer_sizes=(4,), max_epochs=5, lr=0.05, random_state=0,
                               batch_size=4,
                               pruning=pruning, callbacks=[scheduler], **extra).fit(X, y)
    expected = [0.05 * 0.1 ** (epoch // 2) for epoch in range(5)]
    phases = ["dense"] + (["sparse"] if pruning != "none" else [])
    for phase in phases:
        assert [row["event_lr"] for row in rows(clf, phase)] == pytest.approx(expected)
    assert clf.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(0.05 * 0.1 ** (5 // 2))
    assert clf.score(X, y) > 0.9


def test_skorch01_legc_with_the_cases_settings_is_refused_then_scheduled_in_both_phases(iris):
    X, y = iris
    params = dict(hidden_layer_sizes=(4,), max_epochs=5, lr=0.05, random_state=0, pruning="legc",
                  mode="ft", window_size=40, maxlag=2,
                  callbacks=[LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=2)])
    # With MLPClassifier's defaults (batch_size="auto": 4 rows, 38 steps an epoch) 5 epochs
    # give 5 windows of 40 steps; the check before training names what would do.
    with pytest.raises(ValueError, match=r"needs at least 8 windows.*max_epochs=8"):
        LEGCPrunedClassifier(**params).fit(X, y)
    clf = LEGCPrunedClassifier(**{**params, "max_epochs": 8}).fit(X, y)
    expected = [0.05 * 0.1 ** (epoch // 2) for epoch in range(8)]
    assert clf.n_weights_pruned_ > 0
    for phase in ("dense", "sparse"):
        assert [row["event_lr"] for row in rows(clf, phase)] == pytest.approx(expected)


def test_skorch02_early_stopping_is_held_off_until_the_trace_has_its_windows(iris):
    X, y = iris
    X, y = X[::2], y[::2]
    for kw, maxlag in [(dict(window_size=40, maxlag=2), 2), (dict(window_size=40, maxlag="auto"), 3)]:
        es = EarlyStopping(monitor="train_loss", patience=1, threshold=0.5, threshold_mode="abs")
        clf = LEGCPrunedClassifier(hidden_layer_sizes=(4,), max_epochs=12, lr=0.05,
                                   random_state=0, callbacks=[es], **kw).fit(X, y)
        needed = 3 * maxlag + 2
        windows = [row["n_windows"] for row in rows(clf, "dense")]
        # EarlyStopping asks to stop at epoch 2 (no improvement by 0.5); the stop takes effect
        # at the first epoch whose trace has the windows the test needs.
        assert len(windows) > 2
        assert windows[-1] >= needed > windows[-2]
        assert clf.maxlag_ == maxlag and len(clf.misclassification_) == windows[-1]
        # Fine-tuning is not traced: there it stops at once.
        assert len(rows(clf, "sparse")) == 2


def test_skorch02_a_trace_too_short_for_any_stop_is_refused_before_training(iris):
    X, y = iris
    es = EarlyStopping(monitor="train_loss", patience=1, threshold=0.5, threshold_mode="abs")
    clf = LEGCPrunedClassifier(hidden_layer_sizes=(4,), max_epochs=12, lr=0.05, random_state=0,
                               callbacks=[es], window_size=180, maxlag=1, mode="ft")
    with pytest.raises(ValueError, match=r"456 optimizer steps.*2 windows of 180 steps.*needs "
                                         r"at least 5 windows.*window_size=99, or max_epochs=22"):
        clf.fit(X[::2], y[::2])
    assert not hasattr(clf, "net_")


class CtrlC(Callback):
    """Ctrl-C in the phase ``phase``: KeyboardInterrupt raised at its batch ``at``
    (``when="batch"``) or at the start of its epoch ``at`` (``"epoch"``), or a real SIGINT
    sent while this callback's ``on_epoch_end`` runs in its epoch ``at`` (``"signal"``)."""

    def __init__(self, phase, at=3, when="batch"):
        self.phase = phase
        self.at = at
        self.when = when

    def on_train_begin(self, net, **kwargs):
        self.seen_ = 0

    def _count(self, net, unit):
        """Count a batch or an epoch of the phase; True at the ``at``-th."""
        counted = "batch" if self.when == "batch" else "epoch"
        if unit != counted or net.history[-1]["phase"] != self.phase:
            return False
        self.seen_ += 1
        return self.seen_ == self.at

    def on_batch_end(self, net, **kwargs):
        if self._count(net, "batch"):
            raise KeyboardInterrupt

    def on_epoch_begin(self, net, **kwargs):
        if self._count(net, "epoch") and self.when == "epoch":
            raise KeyboardInterrupt

    def on_epoch_end(self, net, **kwargs):
        if (self.when == "signal" and net.history[-1]["phase"] == self.phase
                and self.seen_ == self.at):
            os.kill(os.getpid(), signal.SIGINT)


def test_an_interrupted_fine_tuning_is_said_and_the_fit_goes_on(iris):
    # MLPClassifier warns "Training interrupted by user." and keeps the network; skorch ends
    # training without a word. sklegc keeps both habits and says which phase was cut short.
    X, y = iris
    full = fit_with_fine_tuning(X, y, [])
    with pytest.warns(UserWarning, match=r"interrupted \(KeyboardInterrupt.* in the "
                                         r"fine-tuning, in its epoch 1 of 4: the fine-tuning "
                                         r"ends there, and what follows starts from"):
        cut = fit_with_fine_tuning(X, y, [CtrlC("sparse")])
    assert len(rows(full, "sparse")) == 4 and len(rows(cut, "sparse")) == 1
    assert cut.predict(X).shape == y.shape and cut.n_weights_pruned_ == full.n_weights_pruned_
    assert not np.array_equal(cut.predict_proba(X), full.predict_proba(X))


def test_an_interrupted_dense_phase_is_said(iris):
    X, y = iris
    with pytest.warns(UserWarning, match=r"in the dense phase, in its epoch 2 of 5:"):
        clf = LEGCPrunedClassifier(hidden_layer_sizes=(4,), max_epochs=5, pruning="none",
                                   batch_size=1, random_state=0,
                                   callbacks=[CtrlC("dense", at=200)]).fit(X, y)
    assert len(rows(clf, "dense")) == 2 and clf.predict(X).shape == y.shape


def test_an_interrupt_ends_the_whole_fine_tuning_schedule(iris):
    # Fine-tuning from the rewind trains the traced epochs in the traced phase's batches,
    # then the rest in the untraced ones: two parts. An interrupt in the first part's last
    # epoch ends fine-tuning, and the warning counts the epochs of the whole phase.
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    params = dict(hidden_layer_sizes=(32,), random_state=0, max_epochs=60)
    full = LEGCPrunedClassifier(**params).fit(X, y)
    traced = len(rows(full, "dense"))
    assert full.n_weights_pruned_ and len(rows(full, "sparse")) > traced
    with pytest.warns(UserWarning, match=rf"fine-tuning, in its epoch {traced} of 60: the "
                                         r"fine-tuning ends there"):
        cut = LEGCPrunedClassifier(**params, callbacks=[CtrlC("sparse", traced, when="epoch")])
        cut.fit(X, y)
    assert len(rows(cut, "sparse")) == traced


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="POSIX signals")
def test_ctrl_c_during_a_callbacks_epoch_end_is_not_taken_for_a_stop(iris):
    # A stopping rule raises KeyboardInterrupt from on_epoch_end; a Ctrl-C that lands there
    # must still count as one.
    X, y = iris
    with pytest.warns(UserWarning, match=r"in the fine-tuning, in its epoch 2 of 4:"):
        clf = fit_with_fine_tuning(X, y, [CtrlC("sparse", 2, when="signal")])
    assert len(rows(clf, "sparse")) == 2 and clf.net_.interrupted_
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back


def test_stopping_rules_are_not_interruptions(iris):
    X, y = iris
    X, y = X[::2], y[::2]
    es = EarlyStopping(monitor="train_loss", patience=1, threshold=0.5, threshold_mode="abs")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = LEGCPrunedClassifier(hidden_layer_sizes=(4,), max_epochs=12, lr=0.05,
                                   random_state=0, callbacks=[es], window_size=40,
                                   maxlag=2).fit(X, y)
    # EarlyStopping ended both phases early (held off in the traced one), yet nothing was
    # interrupted.
    assert len(rows(clf, "dense")) < 12 and len(rows(clf, "sparse")) == 2
    assert not [w for w in caught if "interrupted" in str(w.message)]


@pytest.mark.parametrize("binary", [False, True])
def test_skorch03_epoch_scoring_accuracy_scores_the_labels(iris, binary):
    X, y = iris
    y = (y > 0).astype(int) if binary else y
    store = []
    clf = LEGCPrunedClassifier(hidden_layer_sizes=(3,), max_epochs=2, pruning="none",
                               random_state=0,
                               callbacks=[EpochScoring("accuracy", on_train=True, name="acc"),
                                          Record(store, "on_batch_end")]).fit(X, y)
    # skorch scores the predictions cached from the training batches: the accuracy of their
    # argmax against the batches' labels.
    for epoch, row in enumerate(clf.net_.history, start=1):
        batches = [entry[1:] for entry in store if entry[0] == epoch]
        labels = torch.cat([scores_to_proba(s) for s, _ in batches]).argmax(1).numpy()
        target = torch.cat([t for _, t in batches]).numpy()
        assert row["acc"] == pytest.approx(np.mean(labels == target))
    X32 = X.astype(np.float32)  # the inner net takes what the module computes in
    np.testing.assert_array_equal(clf.net_.predict(X32), np.searchsorted(clf.classes_,
                                                                          clf.predict(X)))
    np.testing.assert_allclose(clf.net_.predict_proba(X32), clf.predict_proba(X), rtol=1e-6)


def test_skorch04_fit_leaves_the_callbacks_unchanged_and_a_clone_reproduces(iris):
    X, y = iris
    cbs = [EarlyStopping(monitor="train_loss", patience=50)]
    before_vars = dict(vars(cbs[0]))
    clf = LEGCPrunedClassifier(hidden_layer_sizes=(3,), max_epochs=2, pruning="magnitude",
                               amount=0.2, random_state=0, callbacks=cbs)
    before = joblib.hash(clf.get_params())
    clf.fit(X, y)
    assert joblib.hash(clf.get_params()) == before
    assert vars(cbs[0]) == before_vars  # misses_ and dynamic_threshold_ come from __init__
    assert all(cb is not cbs[0] for _, cb in clf.net_.callbacks_)
    np.testing.assert_array_equal(clf.predict_proba(X), clone(clf).fit(X, y).predict_proba(X))


@pytest.mark.parametrize("kw", [
    dict(pruning="magnitude", amount=0.3, fine_tune=None),
    dict(pruning="magnitude", amount=0.3, fine_tune_epochs=0),
    # The case's max_epochs=5 gives too few windows under the defaults (see skorch01).
    dict(pruning="legc", mode="ft", window_size=40, maxlag=2, fine_tune=None, max_epochs=8),
])
def test_skorch05_copies_and_diagnostics_right_after_fit(iris, kw):
    X, y = iris
    kw = {"max_epochs": 5, **kw}
    clf = LEGCPrunedClassifier(hidden_layer_sizes=(4,), lr=0.05, random_state=0, **kw).fit(X, y)
    assert clf.n_weights_pruned_ > 0
    statuses = list(layer_quality(clf)["status"])
    plot_esd(clf)
    module = copy.deepcopy(clf.net_.module_)
    for (_, a), (_, b) in zip(prunable_layers(module), prunable_layers(clf.net_.module_)):
        torch.testing.assert_close(a.weight, b.weight)
    np.testing.assert_array_equal(copy.deepcopy(clf).predict_proba(X), clf.predict_proba(X))
    clf.predict(X)
    assert list(layer_quality(clf)["status"]) == statuses


# -- one test per skorch callback, in a full LEGC fit with fine-tuning ----------------------


def test_lr_scheduler_by_epoch_restarts_with_each_optimizer_and_goes_on_in_partial_fit(
        small_problem):
    X, y = small_problem
    clf = fit_with_fine_tuning(
        X, y, [LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=2, gamma=0.5)])
    for phase in ("dense", "sparse"):
        assert [row["event_lr"] for row in rows(clf, phase)] == [0.5, 0.5, 0.25, 0.25]
    assert clf.net_.optimizer_.param_groups[0]["lr"] == 0.125
    clf.partial_fit(X, y)
    # partial_fit keeps the optimizer: the schedule goes on (skorch resumes it at the epoch
    # count), it does not start over at 0.5.
    assert rows(clf, "partial_fit")[0]["event_lr"] <= 0.125
    assert_same_model(copy.deepcopy(clf), clf, X)
    layer_quality(clf)


def test_lr_scheduler_by_batch_restarts_with_each_optimizer(small_problem):
    X, y = small_problem
    clf = fit_with_fine_tuning(X, y, [LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=100,
                                                  gamma=0.5, step_every="batch")])
    for phase in ("dense", "sparse"):
        lrs = [batch["event_lr"] for row in rows(clf, phase) for batch in row["batches"]]
        assert lrs == [0.5 * 0.5 ** (step // 100) for step in range(4 * 120)]


def test_early_stopping_stops_each_phase_but_not_before_the_trace_is_long_enough(small_problem):
    X, y = small_problem
    es = EarlyStopping(monitor="train_loss", patience=1, threshold=0.5, threshold_mode="abs")
    # maxlag=5 needs 17 windows: 13 after epoch 2, when EarlyStopping asks to stop, 19 after 3.
    clf = fit_with_fine_tuning(X, y, [es], maxlag=5)
    assert [row["n_windows"] for row in rows(clf, "dense")] == [6, 13, 19]
    assert clf.lyapunov_.shape[0] == 19
    assert len(rows(clf, "sparse")) == 2


def test_epoch_scoring_records_sensible_scores_in_each_phase(small_problem):
    X, y = small_problem
    clf = fit_with_fine_tuning(X, y, [
        EpochScoring("accuracy", on_train=True, use_caching=False, name="acc"),
        EpochScoring("roc_auc", on_train=True, use_caching=False, lower_is_better=False),
    ])
    for phase in ("dense", "sparse"):
        history = rows(clf, phase)
        # Scored after each epoch on the training rows, as the project's own record is.
        assert [row["acc"] for row in history] == pytest.approx(
            [row["train_accuracy"] for row in history])
        assert all(0.5 <= row["roc_auc"] <= 1 for row in history[1:])
    assert clf.net_.history[-1, "acc"] == pytest.approx(clf.score(X, y))
    assert clf.net_.history[-1, "roc_auc"] == pytest.approx(
        roc_auc_score(y, clf.predict_proba(X)[:, 1]))


def test_checkpoint_saves_in_each_phase_and_loads_back(small_problem, tmp_path):
    X, y = small_problem
    checkpoint = Checkpoint(dirname=str(tmp_path), monitor=None, f_history="history.json")
    clf = fit_with_fine_tuning(X, y, [checkpoint])
    assert all(row["event_cp"] for row in clf.net_.history)
    saved = torch.load(tmp_path / "params.pt", weights_only=True)
    assert {k for k in saved if k.endswith("weight_mask")} == {
        f"{name}.weight_mask" for name, mask in clf.mask_.items() if not mask.all()}
    # The last checkpoint is the final model: it loads into a model fitted with other masks.
    other = LEGCPrunedClassifier(**{**FAST, "pruning": "random", "amount": 0.6}).fit(X, y)
    with pytest.warns(UserWarning, match="loaded masks differ"):
        other.load_params(checkpoint=checkpoint)
    assert_same_model(other, clf, X)
    assert other.loss_curve_ == clf.loss_curve_  # its history came from the checkpoint


def test_checkpoint_load_best_restores_the_best_epoch_of_each_phase(small_problem, tmp_path):
    X, y = small_problem
    checkpoint = Checkpoint(dirname=str(tmp_path), monitor="train_loss_best", load_best=True,
                            f_history=None)
    clf = fit_with_fine_tuning(X, y, [checkpoint])
    for phase in ("dense", "sparse"):
        assert rows(clf, phase)[0]["event_cp"]  # each phase's first epoch is its best yet
    saved = torch.load(tmp_path / "params.pt", weights_only=True)
    for key, value in clf.net_.module_.state_dict().items():
        torch.testing.assert_close(value, saved[key])
    assert len(clf.net_.history) == 8  # the history is the fit's, not the checkpoint's


def test_progress_bar_shows_every_epoch_of_each_phase(small_problem, capsys):
    X, y = small_problem
    clf = fit_with_fine_tuning(X, y, [ProgressBar()])
    bars = re.findall(r"\| 0/120 \[", capsys.readouterr().err)
    assert len(bars) == len(clf.net_.history) == 8


def test_gradient_norm_clipping_clips_in_each_phase(small_problem):
    X, y = small_problem
    clipped, free = [], []
    clf = fit_with_fine_tuning(X, y, [GradientNormClipping(0.05), Record(clipped)])
    reference = fit_with_fine_tuning(X, y, [Record(free)])
    for model, norms, clip in ((clf, clipped, True), (reference, free, False)):
        phase = phase_of_epoch(model)
        for name in ("dense", "sparse"):
            values = np.array([norm for epoch, norm in norms
                               if epoch != "train_begin" and phase[epoch] == name])
            assert len(values) == 4 * 120
            if clip:
                assert values.max() <= 0.05 * (1 + 1e-5)
            else:
                assert (values > 0.05).mean() > 0.5


@pytest.mark.parametrize("callback, message", [
    (EarlyStopping(), r"EarlyStopping\(monitor='valid_loss'\).*validation split.*'train_loss'"),
    (Checkpoint(), r"Checkpoint\(monitor='valid_loss_best'\).*'train_loss_best'"),
    (LRScheduler("ReduceLROnPlateau", monitor="valid_loss"), r"LRScheduler\(monitor='valid_loss'"),
    (EpochScoring("accuracy"), r"on_train=False.*record nothing.*on_train=True"),
    (Checkpoint(monitor="train_loss_best", load_best=True), r"history.*f_history=None"),
    (LoadInitState(Checkpoint(monitor=None)), r"LoadInitState.*warm_start=True.*load_params"),
    (InputShapeSetter(), r"InputShapeSetter.*n_features.*module__input_dim"),
])
def test_callbacks_that_cannot_work_are_refused_before_training(small_problem, callback,
                                                                message):
    X, y = small_problem
    store = []
    clf = LEGCPrunedClassifier(**P, callbacks=[callback, Record(store)])
    with pytest.raises(ValueError, match=message):
        clf.fit(X, y)
    assert store == [] and not hasattr(clf, "net_")


def test_validation_columns_are_allowed_where_early_stopping_records_them(small_problem):
    X, y = small_problem
    es = EarlyStopping(monitor="valid_acc", lower_is_better=False, patience=1)
    clf = LEGCPrunedClassifier(**{**P, "max_epochs": 6}, early_stopping=True,
                               callbacks=[es]).fit(X, y)
    assert all("valid_acc" in row for row in clf.net_.history)


def test_an_interrupted_traced_phase_is_refused_with_sklegcs_message(small_problem):
    class Interrupt(Callback):
        def initialize(self):
            self.steps_ = 0
            return self

        def on_batch_end(self, net, **kwargs):
            self.steps_ += 1
            if self.steps_ == 150:
                raise KeyboardInterrupt

    X, y = small_problem
    with pytest.raises(ValueError, match=r"ran 2 of its 4 planned epochs \(150 optimizer "
                                         r"steps\), which gives 8 windows.*needs 11.*interrupted"):
        LEGCPrunedClassifier(**P, callbacks=[Interrupt()]).fit(X, y)


# -- user modules: dtype and device ---------------------------------------------------------


class TwoLayer(nn.Module):
    def __init__(self, n_features, n_outputs, width=4):
        super().__init__()
        self.hidden = nn.Linear(n_features, width)
        self.out = nn.Linear(width, n_outputs)

    def forward(self, x):
        assert x.dtype == self.hidden.weight.dtype, "the data must come in the module's dtype"
        return self.out(torch.tanh(self.hidden(x)))


def test_a_float64_module_trains_prunes_and_predicts_in_float64(small_problem):
    X, y = small_problem
    torch.manual_seed(0)
    module = TwoLayer(5, 1)
    single = LEGCPrunedClassifier(**P, module=copy.deepcopy(module)).fit(X, y)
    double = LEGCPrunedClassifier(**P, module=copy.deepcopy(module).double()).fit(X, y)
    assert {p.dtype for p in double.net_.module_.parameters()} == {torch.float64}
    assert double.n_weights_pruned_ > 0
    # The same network and data: the dense trajectories agree to float32's precision.
    np.testing.assert_allclose(double.loss_curve_[:4], single.loss_curve_[:4], rtol=1e-4)
    assert double.score(X, y) > 0.9


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_modules_are_refused_naming_the_conversion(small_problem, dtype):
    X, y = small_problem
    with pytest.raises(ValueError, match=rf"{dtype}.*float32 or float64.*module.float\(\)"):
        LEGCPrunedClassifier(**P, module=TwoLayer(5, 1).to(dtype)).fit(X, y)


class MetaBuilt(TwoLayer):
    def __init__(self, n_features, n_outputs):
        with torch.device("meta"):
            super().__init__(n_features, n_outputs)


@pytest.mark.parametrize("module", [TwoLayer(5, 1).to("meta"), MetaBuilt])
def test_a_module_without_data_on_the_meta_device_is_refused_naming_the_fix(small_problem,
                                                                            module):
    X, y = small_problem
    with pytest.raises(ValueError, match=r"'meta' device.*device='cpu'.*to_empty"):
        LEGCPrunedClassifier(**P, module=module).fit(X, y)


def test_a_module_instance_is_trained_as_a_copy_on_device(small_problem):
    X, y = small_problem
    module = TwoLayer(5, 1)
    before = copy.deepcopy(module.state_dict())
    clf = LEGCPrunedClassifier(**P, module=module).fit(X, y)
    assert clf.net_.module_ is not module
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, before[key])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("module_device, device", [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_module_on_another_device_is_moved_to_device(small_problem, module_device, device):
    X, y = small_problem
    module = TwoLayer(5, 1).to(module_device)
    clf = LEGCPrunedClassifier(**P, module=module, device=device).fit(X, y)
    assert {p.device.type for p in clf.net_.module_.parameters()} == {device}
    assert {p.device.type for p in module.parameters()} == {module_device}
    assert clf.score(X, y) > 0.9


# -- persistence ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_models():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 5)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    callbacks = [LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.9),
                 EarlyStopping(monitor="train_loss", patience=3), GradientNormClipping(1.0),
                 EpochScoring("accuracy", on_train=True)]
    source = LEGCPrunedClassifier(**P, callbacks=callbacks).fit(X, y)
    other = LEGCPrunedClassifier(**{**FAST, "pruning": "magnitude", "amount": 0.7,
                                    "random_state": 3}).fit(X, y)
    # The masks differ in what they prune and in which layers they mask at all.
    masked = {name for name, mask in source.mask_.items() if not mask.all()}
    assert masked != {name for name, mask in other.mask_.items() if not mask.all()}
    return source, other, X, y


def test_save_params_load_params_and_pickle_give_the_same_model(two_models, tmp_path):
    source, other, X, _ = two_models
    source.save_params(f_params=tmp_path / "params.pt", f_history=tmp_path / "history.json")
    target = copy.deepcopy(other)
    with pytest.warns(UserWarning, match="loaded masks differ"):
        target.load_params(f_params=tmp_path / "params.pt", f_history=tmp_path / "history.json")
    assert_same_model(target, source, X)
    assert target.loss_curve_ == source.loss_curve_
    assert target.granger_pvalues_ is None and target.lyapunov_ is None
    assert_same_model(pickle.loads(pickle.dumps(source)), source, X)
    # and the loaded model copies and diagnoses at once
    assert_same_model(copy.deepcopy(target), source, X)
    pd.testing.assert_frame_equal(layer_quality(target), layer_quality(source))


def test_a_dense_state_unmasks_and_safetensors_round_trip(two_models, tmp_path):
    source, other, X, y = two_models
    dense = LEGCPrunedClassifier(**{**FAST, "pruning": "none", "random_state": 5}).fit(X, y)
    target = copy.deepcopy(source)
    buffer = io.BytesIO()
    dense.save_params(f_params=buffer)
    buffer.seek(0)
    with pytest.warns(UserWarning, match="loaded masks differ"):
        target.load_params(f_params=buffer)
    assert target.n_weights_pruned_ == 0
    assert not any(hasattr(layer, "weight_mask") for _, layer in prunable_layers(
        target.net_.module_))
    assert_same_model(target, dense, X)
    source.save_params(f_params=tmp_path / "p.safetensors", use_safetensors=True)
    with pytest.warns(UserWarning, match="loaded masks differ"):
        target.load_params(f_params=tmp_path / "p.safetensors", use_safetensors=True)
    assert_same_model(target, source, X)


def test_net_level_load_params_works_within_a_mask_layout_and_explains_otherwise(two_models):
    source, other, X, _ = two_models
    buffer = io.BytesIO()
    source.net_.save_params(f_params=buffer)
    buffer.seek(0)
    same_layout = copy.deepcopy(source)
    with torch.no_grad():
        for _, layer in prunable_layers(same_layout.net_.module_):
            getattr(layer, "weight_orig", layer.weight).mul_(2.0)
    same_layout.net_.load_params(f_params=buffer)
    assert_same_model(same_layout, source, X)
    buffer.seek(0)
    before = other.predict_proba(X)
    with pytest.raises(ValueError, match=r"masks other layers.*LEGCPrunedClassifier.load_params"):
        copy.deepcopy(other).net_.load_params(f_params=buffer)
    np.testing.assert_array_equal(other.predict_proba(X), before)


def test_loading_another_networks_state_is_refused_and_changes_nothing(two_models):
    source, _, X, y = two_models
    wider = LEGCPrunedClassifier(**{**P, "hidden_layer_sizes": (6,)}).fit(X, y)
    buffer = io.BytesIO()
    wider.save_params(f_params=buffer)
    buffer.seek(0)
    target = copy.deepcopy(source)
    with pytest.raises(ValueError, match=r"another network.*same module, hidden_layer_sizes"):
        target.load_params(f_params=buffer)
    assert_same_model(target, source, X)
    with pytest.raises(NotFittedError):
        LEGCPrunedClassifier().load_params(f_params=buffer)


# -- prefixed parameters, set_params, searches -----------------------------------------------


def test_prefixed_parameters_reach_the_optimizer_module_loader_and_named_callbacks(
        small_problem):
    X, y = small_problem
    clf = LEGCPrunedClassifier(
        **{**P, "batch_size": 7, "max_epochs": 20, "window_size": 10}, module=TwoLayer,
        module__width=6, optimizer__momentum=0.5, iterator_train__drop_last=True,
        callbacks=[("sched", LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1,
                                         gamma=0.5))],
        callbacks__sched__gamma=0.9).fit(X, y)
    assert clf.weight_layers_ == [("hidden", (6, 5)), ("out", (1, 6))]
    assert clf.net_.optimizer_.param_groups[0]["momentum"] == 0.5
    assert clf.n_dense_steps_ == 20 * (120 // 7)  # the last, short batch is dropped
    assert [row["event_lr"] for row in rows(clf, "dense")][:3] == pytest.approx(
        [0.5, 0.45, 0.405])


def test_set_params_on_a_fitted_model_then_refit(small_problem):
    X, y = small_problem
    clf = LEGCPrunedClassifier(**P, callbacks=[("sched", LRScheduler(
        torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5))]).fit(X, y)
    clf.set_params(hidden_layer_sizes=(3,), optimizer__momentum=0.5, callbacks__sched__gamma=0.1)
    clf.fit(X, y)
    assert clf.weight_layers_ == [("layers.0", (3, 5)), ("layers.2", (1, 3))]
    assert clf.net_.optimizer_.param_groups[0]["momentum"] == 0.5
    assert [row["event_lr"] for row in clf.net_.history][:2] == pytest.approx([0.5, 0.05])
    assert len(clf.net_.history) == 8


def test_turning_a_named_callback_off_and_refusing_a_replacement(small_problem):
    X, y = small_problem
    named = [("sched", LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1))]
    off = LEGCPrunedClassifier(**P, callbacks=named, callbacks__sched=None).fit(X, y)
    assert all("event_lr" not in row for row in off.net_.history)
    with pytest.raises(ValueError, match=r"callbacks__sched=.*pass the new callback in "
                                         r"`callbacks`"):
        LEGCPrunedClassifier(**P, callbacks=named, callbacks__sched=ProgressBar()).fit(X, y)
    with pytest.raises(ValueError, match="use batch_size"):
        LEGCPrunedClassifier(**P, iterator_train__batch_size=8).fit(X, y)


def test_a_callback_class_is_instantiated_with_its_parameters(small_problem):
    X, y = small_problem
    clf = fit_with_fine_tuning(X, y, [("sched", LRScheduler)],
                               callbacks__sched__policy=torch.optim.lr_scheduler.StepLR,
                               callbacks__sched__step_size=2, callbacks__sched__gamma=0.5)
    for phase in ("dense", "sparse"):
        assert [row["event_lr"] for row in rows(clf, phase)] == [0.5, 0.5, 0.25, 0.25]


def test_grid_search_over_a_callback_parameter(small_problem):
    X, y = small_problem
    clf = LEGCPrunedClassifier(**{**P, "pruning": "magnitude", "amount": 0.3}, callbacks=[
        ("sched", LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = GridSearchCV(clf, {"callbacks__sched__gamma": [0.01, 0.9]}, cv=2).fit(X, y)
    assert not np.isnan(search.cv_results_["mean_test_score"]).any()
    gamma = search.best_params_["callbacks__sched__gamma"]
    lrs = [row["event_lr"] for row in rows(search.best_estimator_, "dense")]
    assert lrs[:2] == pytest.approx([0.5, 0.5 * gamma])
    assert clf.callbacks[0][1].gamma == 0.5


def test_lr_schedule_goes_on_when_fine_tuning_changes_batch_size(iris):
    # Rewound fine-tuning trains as the dense network did: the traced epochs in the traced
    # batches (4 rows), then the untraced ones (150 rows). One optimizer throughout, so a
    # StepLR schedule continues across the change instead of starting over.
    X, y = iris
    scheduler = LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=6, gamma=0.5)
    clf = LEGCPrunedClassifier(amount=0.3, effect="loss", max_epochs=40, tol=0.0,
                               n_iter_no_change=1000, random_state=0,
                               callbacks=[scheduler]).fit(X, y)
    assert clf.n_weights_pruned_ == 210
    sparse = rows(clf, "sparse")
    batches = {row["train_batch_count"] for row in sparse}
    assert batches == {38, 1} and len(sparse) == 40
    expected = [1e-3 * 0.5 ** (epoch // 6) for epoch in range(40)]
    assert [row["event_lr"] for row in sparse] == pytest.approx(expected)
