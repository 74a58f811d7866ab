"""The training step's shortcuts change nothing a user or a callback can observe.

``PrunableNet`` leaves out per-step work (sklegc/net.py's module docstring): batch events
only reach callbacks that override them, modules are switched to training mode only when
one is not, gradients are reset without the optimizer's profiling wrapper, and
``WeightTracer`` copies from flat views made once. These tests pin what must still hold.
"""

import numpy as np
import pytest
import torch
from conftest import FAST
from skorch import NeuralNet
from skorch.callbacks import Callback
from torch import nn
from torch.nn.utils import prune

from sklegc import LEGCPrunedClassifier
from sklegc.net import PrunableNet
from sklegc.network import MLP, ClassificationLoss
from sklegc.trajectory import WeightTracer


class ModeSpy(Callback):
    """Puts the hidden activation in eval mode after every batch and records, at the next
    batch's forward pass, whether every module was back in training mode."""

    def initialize(self):
        self.modes = []
        self.batches = 0
        return self

    def on_train_begin(self, net, **kwargs):
        net.module_.register_forward_pre_hook(self._record)

    def _record(self, module, args):
        if torch.is_grad_enabled():
            self.modes.append(all(m.training for m in module.modules()))

    def on_batch_end(self, net, training=False, **kwargs):
        self.batches += 1
        net.module_.layers[1].eval()


def test_a_module_a_callback_put_in_eval_mode_trains_in_training_mode_again(small_problem):
    X, y = small_problem
    spy = ModeSpy()
    PrunableNet(MLP, module__n_features=5, module__n_outputs=1, max_epochs=2, batch_size=40,
                train_split=None, verbose=0, callbacks=[spy]).fit(X, y)
    assert spy.batches == 6 and spy.modes == [True] * 6


class GradSpy(Callback):
    def initialize(self):
        self.norms = []
        return self

    def on_grad_computed(self, net, named_parameters, **kwargs):
        self.norms.append(sum(float(p.grad.norm()) for _, p in named_parameters))


def test_callbacks_that_override_a_batch_event_get_it_at_every_step(small_problem):
    X, y = small_problem
    spy = GradSpy()
    net = PrunableNet(MLP, module__n_features=5, module__n_outputs=1, max_epochs=2,
                      batch_size=30, train_split=None, verbose=0, callbacks=[spy]).fit(X, y)
    assert len(spy.norms) == 8 and all(n > 0 for n in spy.norms)
    # gradients were reset before each step, not accumulated: a fresh step's gradient
    # equals the one computed from scratch on the same batch
    net.module_.zero_grad()
    assert all(p.grad is None or not p.grad.any() for p in net.module_.parameters())


def test_gradients_are_reset_between_steps_as_optimizer_zero_grad_does(small_problem):
    """Two identical nets, one stepping through skorch, one through a plain torch loop with
    optimizer.zero_grad(): the same weights after the same batches."""
    X, y = small_problem
    torch.manual_seed(0)
    net = PrunableNet(MLP, module__n_features=5, module__n_outputs=1, max_epochs=1,
                      batch_size=120, train_split=None, verbose=0, lr=0.5,
                      iterator_train__shuffle=False)
    net.initialize()
    plain = MLP(5, 1)
    plain.load_state_dict(net.module_.state_dict())
    optimizer = torch.optim.SGD(plain.parameters(), lr=0.5)
    criterion = ClassificationLoss()
    for _ in range(3):
        net.partial_fit(X, y)
        optimizer.zero_grad()
        criterion(plain(torch.as_tensor(X)), torch.as_tensor(y)).backward()
        optimizer.step()
    for a, b in zip(net.module_.parameters(), plain.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_the_default_module_gets_fused_optimizers_a_custom_one_and_user_choices_do_not(iris_xy):
    X, y = iris_xy
    fit = dict(max_epochs=2, pruning="none", random_state=0)
    default = LEGCPrunedClassifier(**fit).fit(X, y)
    assert default.net_.optimizer_.defaults["fused"] is True
    chosen = LEGCPrunedClassifier(**fit, optimizer__foreach=False).fit(X, y)
    assert not chosen.net_.optimizer_.defaults.get("fused")
    custom = LEGCPrunedClassifier(**fit, module=MLP, module__hidden_layer_sizes=(5,)).fit(X, y)
    assert not custom.net_.optimizer_.defaults.get("fused")
    # fused and unfused Adam agree up to rounding
    torch.testing.assert_close(torch.as_tensor(default.predict_proba(X)),
                               torch.as_tensor(chosen.predict_proba(X)), rtol=0, atol=1e-5)


@pytest.fixture
def iris_xy():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32), y


class RowSpy(WeightTracer):
    """Records, after every step, the trace row and the weights as the module holds them."""

    def initialize(self):
        super().initialize()
        self.rows, self.truth = [], []
        return self

    def on_batch_end(self, net, training=False, **kwargs):
        super().on_batch_end(net, training=training, **kwargs)
        step = self.n_steps_ - 1
        self.rows.append(self.buffer_[step % self.window_size].clone())
        layers = [m for m in net.module_.modules() if isinstance(m, nn.Linear)]
        self.truth.append(torch.cat([
            (getattr(m, "weight_orig", m.weight) * getattr(m, "weight_mask", 1)).detach()
            .reshape(-1) for m in layers]))


def test_the_trace_holds_the_weights_after_each_step_also_when_memory_is_replaced(
        small_problem):
    X, y = small_problem
    X_t, y_t = torch.as_tensor(X), torch.as_tensor(y)

    class Replace(Callback):
        # Gives the first layer's weight new memory half-way (as loading a state can).
        def on_batch_begin(self, net, **kwargs):
            if len(net.history[-1]["batches"]) == 60:
                layer = net.module_.layers[0]
                layer.weight.data = layer.weight.data.clone() * 0.5

    tracer = RowSpy(20, 10, X_t, y_t)
    net = NeuralNet(MLP, criterion=ClassificationLoss, module__n_features=5,
                    module__n_outputs=1, max_epochs=1, batch_size=1, train_split=None,
                    callbacks=[Replace(), tracer], verbose=0, lr=0.1)
    net.fit(X, y)
    assert len(tracer.rows) == 120
    for row, truth in zip(tracer.rows, tracer.truth):
        torch.testing.assert_close(row, truth, rtol=0, atol=0)


def test_a_masked_network_traces_its_masked_weights_after_each_step(small_problem):
    X, y = small_problem
    X_t, y_t = torch.as_tensor(X), torch.as_tensor(y)

    class Mask(Callback):
        def on_train_begin(self, net, **kwargs):
            first = net.module_.layers[0]
            if not hasattr(first, "weight_mask"):
                mask = torch.ones_like(first.weight)
                mask[:, ::2] = 0
                prune.custom_from_mask(first, "weight", mask)
                net.initialize_optimizer()

    tracer = RowSpy(20, 10, X_t, y_t)
    net = NeuralNet(MLP, criterion=ClassificationLoss, module__n_features=5,
                    module__n_outputs=1, max_epochs=1, batch_size=1, train_split=None,
                    callbacks=[Mask(), tracer], verbose=0, lr=0.1)
    net.fit(X, y)
    rows = torch.stack(tracer.rows)
    pruned = (net.module_.layers[0].weight_mask == 0).reshape(-1)
    assert pruned.sum() == 24 and not rows[:, :40][:, pruned].any()  # traced as zeros
    for row, truth in zip(tracer.rows, tracer.truth):
        torch.testing.assert_close(row, truth, rtol=0, atol=0)
    # the weights moved: each row is the state after its own step, not the one before
    assert (rows[1:] != rows[:-1]).any(dim=1).all()


def test_fast_settings_still_train_and_prune(small_problem):
    X, y = small_problem
    clf = LEGCPrunedClassifier(**FAST).fit(X, y)
    assert clf.score(X, y) > 0.8


class EpochLog(Callback):
    def __init__(self, log):
        self.log = log

    def on_epoch_end(self, net, **kwargs):
        self.log.append(len(net.history))


@pytest.mark.parametrize("kw", [dict(pruning="none"), dict(pruning="magnitude", amount=0.3)])
def test_user_callbacks_see_the_last_epoch_of_a_phase_the_stopping_rule_ends(small_problem, kw):
    X, y = small_problem
    log = []
    clf = LEGCPrunedClassifier(max_epochs=200, tol=1e-2, n_iter_no_change=2, random_state=0,
                               callbacks=[EpochLog(log)],
                               **kw).fit(X, y)
    assert clf.n_iter_ < 200 * (2 if kw["pruning"] != "none" else 1)  # the rule stopped it
    assert log == list(range(1, len(clf.net_.history) + 1))


def test_a_fit_seeds_and_restores_torchs_generator_only_under_the_lock():
    """A fit running as a thread beside another must not reseed or restore torch's global
    generator while the other holds torch_rng_lock to seed it and draw its initial weights
    (the race gave concurrent fits different initial weights now and then)."""
    import threading

    from sklegc.threads import torch_rng_lock

    clf = LEGCPrunedClassifier(random_state=0)
    inside, leave, done = threading.Event(), threading.Event(), threading.Event()

    def fit_context():
        with clf._fit_context():
            inside.set()
            leave.wait(10)
        done.set()

    torch.manual_seed(123)
    state = torch.get_rng_state()
    with torch_rng_lock:  # held as another fit seeding and drawing would hold it
        thread = threading.Thread(target=fit_context)
        thread.start()
        assert not inside.wait(0.5)  # blocked before touching the generator
        assert torch.equal(torch.get_rng_state(), state)
    assert inside.wait(10)
    with torch_rng_lock:
        state = torch.get_rng_state()
        leave.set()
        assert not done.wait(0.5)  # blocked before restoring the generator
        assert torch.equal(torch.get_rng_state(), state)
    thread.join(10)
    assert done.is_set()
