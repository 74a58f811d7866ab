"""The skorch net that trains the network inside :class:`~sklegc.LEGCPrunedClassifier`.

:class:`PrunableNet` is a skorch ``NeuralNet`` that answers as skorch's
``NeuralNetClassifier`` does, so that skorch callbacks and scikit-learn scorers work on it
unchanged: ``predict`` gives encoded class labels (``0 .. n_classes - 1``) and
``predict_proba`` probabilities. Its loss is the one scikit-learn's ``MLPClassifier``
minimises, batch by batch: the mean of the per-sample losses plus the L2 penalty
``alpha / 2 * sum(W ** 2) / n_batch`` on the weights of its ``nn.Linear`` layers (not on
the biases); with sample weights, the weighted average ``sum(w_i l_i) / sum(w_i)`` plus the
penalty divided by ``sum(w_i)`` instead of ``n_batch`` (see
:class:`~sklegc.network.ClassificationLoss`). An epoch's ``train_loss`` is the average of
its batches' losses weighted by their rows, or by their sample weights where there are
weights (:class:`EpochLoss`): the epoch's weighted average loss.

Sample weights travel with the data: pass ``X`` as a dict ``{"X": X, "sample_weight": w}``
(skorch's own convention for extra per-sample inputs); the module only ever sees ``X``.

A phase that must not end early (the traced dense phase needs its windows) sets
``PrunableNet.hold_stop``: a callback that asks to stop (skorch's ``KeyboardInterrupt``
from ``on_epoch_end``, as ``EarlyStopping`` and :class:`Convergence` do) is then held off
until ``hold_stop()`` returns False, and the stop takes effect at that epoch's end. Either
way, every callback gets ``on_epoch_end`` at the epoch a stop is asked for, whatever its
place in the list (skorch skips the callbacks after the one that raises). A
``KeyboardInterrupt`` raised any other way (Ctrl-C, a callback's ``on_batch_end``) ends
training as skorch ends it, and sets ``interrupted_``, which a stop never sets.

The paper trains with one sample per optimizer step, where the fixed cost of a step
decides the run time. The net keeps skorch's training loop (every callback event, every
history entry) but leaves out work no one can observe (docs/performance.md, "Training
steps"): batch events reach only the callbacks that override them, the modules are put in
training mode only when one of them is not, tensors already on the device are not
converted again, and gradients are reset without the optimizer's profiling wrapper unless
a profiler is recording.
"""

from collections.abc import Mapping

import copy
import math

import numpy as np
import torch
from sklearn.utils import ClassifierTags
from skorch import NeuralNet
from skorch.callbacks import Callback, PassthroughScoring
from skorch.dataset import unpack_data
from skorch.utils import to_numpy, to_tensor

from .masks import refresh_masked_weights
from .network import ClassificationLoss, batch_weight, prunable_layers, scores_to_proba
from .trajectory import accuracy


def _features(X):
    return X["X"] if isinstance(X, Mapping) else X


def _sample_weight(X):
    return X.get("sample_weight") if isinstance(X, Mapping) else None


# Events of every optimizer step: dispatched only to the callbacks that override them.
_BATCH_EVENTS = ("on_batch_begin", "on_grad_computed", "on_batch_end")


def _overrides(cb, method_name):
    """Whether ``cb``'s ``method_name`` is anything but skorch's no-op ``Callback`` method."""
    method = getattr(cb, method_name, None)
    if method is None:
        return False
    return getattr(method, "__func__", None) is not getattr(Callback, method_name)


class PrunableNet(NeuralNet):
    """A skorch ``NeuralNet`` with classifier answers, sample weights and an L2 penalty.

    Parameters
    ----------
    module : torch.nn.Module subclass or instance
        Returns raw scores: shape (n_samples, 1) for a binary problem, (n_samples,
        n_classes) otherwise.
    criterion : torch.nn.Module subclass, default=ClassificationLoss
        Called as ``criterion(scores, y, sample_weight=None)``.
    alpha : float, default=0.0
        L2 penalty, with ``MLPClassifier``'s meaning and scaling (see the module docstring).
    **kwargs
        Any ``NeuralNet`` parameter.

    Examples
    --------
    >>> import numpy as np
    >>> from sklegc.network import MLP
    >>> X = np.random.RandomState(0).normal(size=(40, 3)).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(np.int64)
    >>> net = PrunableNet(MLP, module__n_features=3, module__n_outputs=1,
    ...                   max_epochs=2, train_split=None, verbose=0).fit(X, y)
    >>> net.predict(X[:4]).dtype, net.predict_proba(X[:4]).shape
    (dtype('int64'), (4, 2))
    """

    hold_stop = None

    def __init__(self, module, criterion=ClassificationLoss, alpha=0.0, **kwargs):
        super().__init__(module, criterion, **kwargs)
        self.alpha = alpha

    def notify(self, method_name, **cb_kwargs):
        if method_name in _BATCH_EVENTS:
            getattr(self, method_name)(self, **cb_kwargs)
            for cb in self._listeners(method_name):
                getattr(cb, method_name)(self, **cb_kwargs)
            return None
        if method_name == "on_train_begin":
            # A stop held off to the end of the last phase must not end the next one.
            self._stop_requested = False
        if method_name in ("on_train_begin", "on_epoch_begin"):
            # The per-step lookups are made again at every epoch: a callback or a module
            # may be added or changed between.
            self._lookups_ = {}
        if method_name != "on_epoch_end":
            return super().notify(method_name, **cb_kwargs)
        # Every callback sees every epoch's end, also the epoch at which one of them asks to
        # stop: the estimator's own stopping rule (Convergence) comes before the user's
        # callbacks, which would otherwise miss the last epoch of every phase it ends.
        self.on_epoch_end(self, **cb_kwargs)
        for _, cb in self.callbacks_:
            try:
                cb.on_epoch_end(self, **cb_kwargs)
            except KeyboardInterrupt:
                if getattr(self, "sigint_", False):
                    raise  # Ctrl-C while the callback ran: not a stop it asked for
                self._stop_requested = True
        if getattr(self, "_stop_requested", False) and (
                self.hold_stop is None or not self.hold_stop()):
            self._stop_requested = False
            self._stopping = True
            raise KeyboardInterrupt

    def fit_loop(self, X, y=None, *args, **kwargs):
        """skorch's loop; sets ``interrupted_``: whether it ended on a ``KeyboardInterrupt``
        that was not a stopping rule's (Ctrl-C, or a callback that raised it outside
        ``on_epoch_end``). skorch's ``partial_fit`` ends training quietly on either."""
        self._stopping = False
        self.interrupted_ = False
        try:
            return super().fit_loop(X, y, *args, **kwargs)
        except KeyboardInterrupt:
            self.interrupted_ = not self._stopping or getattr(self, "sigint_", False)
            raise

    def _lookup(self, name, make):
        """``make()``, made once per epoch (see ``notify``) instead of at every step."""
        lookups = self.__dict__.setdefault("_lookups_", {})
        if name not in lookups:
            lookups[name] = make()
        return lookups[name]

    def _listeners(self, method_name):
        """The callbacks whose ``method_name`` does something."""
        return self._lookup("listeners", lambda: {
            name: [cb for _, cb in self.callbacks_ if _overrides(cb, name)]
            for name in _BATCH_EVENTS})[method_name]

    def _on_device(self, tensor):
        return isinstance(tensor, torch.Tensor) and tensor.device == torch.device(self.device)

    def train_step_single(self, batch, **fit_params):
        """skorch's training step, switching the modules to training mode only if needed."""
        if not self._all_training():
            self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def _all_training(self):
        # The modes are read at every step, since a callback may switch any module.
        modules = self._lookup("modules", lambda: [
            m for name in self._modules + self._criteria
            if isinstance(getattr(self, name + "_"), torch.nn.Module)
            for m in getattr(self, name + "_").modules()])
        return all(m.training for m in modules)

    def _zero_grad_optimizer(self, set_to_none=None):
        # Optimizer.zero_grad sets every gradient to None inside a profiler record; the
        # record is only seen by a running profiler, and costs more than the loop itself.
        plain = [getattr(self, name + "_") for name in self._optimizers]
        if set_to_none is not None or torch.autograd._profiler_enabled() or any(
                type(opt).zero_grad is not torch.optim.Optimizer.zero_grad for opt in plain):
            return super()._zero_grad_optimizer(set_to_none)
        for optimizer in plain:
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad = None
        return None

    def infer(self, x, **fit_params):
        x = _features(x)
        if not fit_params and self._on_device(x):
            return self.module_(x)
        return super().infer(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if not self._on_device(y_true):
            y_true = to_tensor(y_true, device=self.device)
        weight = _sample_weight(X)
        if weight is not None and not self._on_device(weight):
            weight = to_tensor(weight, device=self.device)
        loss = self.criterion_(y_pred, y_true, sample_weight=weight)
        if not training:
            return loss
        if weight is not None:
            # The batch's share of the epoch's loss (EpochLoss): its weight, 0 for a batch
            # of zero weights, which adds no loss and no penalty.
            self._batch_weight = weight.sum()
        if self.alpha:
            squares = sum((layer.weight ** 2).sum() for layer in self._penalised_layers())
            if weight is None:
                loss = loss + 0.5 * self.alpha * squares / len(y_true)
            else:
                # MLPClassifier's divisor of the penalty (its sw_sum).
                loss = loss + (0.5 * self.alpha * squares / batch_weight(weight)
                               * (self._batch_weight > 0))
        return loss

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        weight = self.__dict__.pop("_batch_weight", None)
        if training and weight is not None:
            self.history.record_batch("train_batch_weight", weight.item())

    @property
    def _default_callbacks(self):
        # skorch's own, with the epoch's train_loss averaged by the batches' weights.
        return [(name, EpochLoss("train_loss", on_train=True) if name == "train_loss" else cb)
                for name, cb in super()._default_callbacks]

    def _penalised_layers(self):
        return self._lookup("penalised",
                            lambda: [layer for _, layer in prunable_layers(self.module_)])

    def __getstate__(self):
        state = super().__getstate__()
        # Lookups, rebuilt when needed; the module's layers travel with the module itself.
        state.pop("_lookups_", None)
        return state

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        probas = [to_numpy(scores_to_proba(scores))
                  for scores in self.forward_iter(_features(X), training=False)]
        return np.concatenate(probas, 0)

    def predict(self, X):
        """Encoded class labels ``0 .. n_classes - 1``, shape (n_samples,)."""
        return self.predict_proba(X).argmax(axis=1)

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        try:
            return super().partial_fit(X, y, classes=classes, **fit_params)
        finally:
            # torch.nn.utils.prune leaves each masked weight as the output of the last
            # training forward pass, a tensor in the autograd graph that cannot be
            # deep-copied; a callback may also have loaded other weights since.
            with torch.no_grad():
                refresh_masked_weights(self.module_)

    def load_params(self, f_params=None, f_optimizer=None, f_criterion=None, f_history=None,
                    checkpoint=None, use_safetensors=False, **kwargs):
        """skorch's ``load_params``, for a state masked on the same layers as this net's.

        A layer's mask is part of its state (``weight_mask``), so loading a state saved by a
        net with pruned weights in the same layers loads its masks too. To load a state
        masked on other layers, use :meth:`sklegc.LEGCPrunedClassifier.load_params`.

        Raises
        ------
        ValueError
            If the state masks other layers than this net's.
        """
        try:
            super().load_params(f_params=f_params, f_optimizer=f_optimizer,
                                f_criterion=f_criterion, f_history=f_history,
                                checkpoint=checkpoint, use_safetensors=use_safetensors,
                                **kwargs)
        except RuntimeError as exc:
            if "weight_orig" not in str(exc) and "weight_mask" not in str(exc):
                raise
            raise ValueError(
                "the loaded state masks other layers than this net's (a layer is masked in "
                "one and whole in the other; the dense phase of a fit has no masks). Load it "
                "with LEGCPrunedClassifier.load_params, which masks the network as the state "
                "is. (Raised by a Checkpoint(load_best=True) at the end of fine-tuning: no "
                "fine-tuning epoch was a best one, so its file is the dense phase's; monitor "
                "a column whose best restarts with each phase, such as 'train_loss_best'.)"
            ) from exc
        finally:
            # The masked weights are recomputed at the next forward pass; until then they
            # would show the weights from before the load.
            if self.initialized_:
                with torch.no_grad():
                    refresh_masked_weights(self.module_)

    def check_data(self, X, y=None):
        super().check_data(X, y)
        if y is not None:
            # Like NeuralNetClassifier's classes_, for scikit-learn's scorers (roc_auc,
            # neg_log_loss, ... read it to pick predict_proba's columns): the encoded labels
            # up to the largest seen, two at least (a binary net has one output).
            seen = len(getattr(self, "classes_", ()))
            self.classes_ = np.arange(max(2, seen, int(to_numpy(y).max()) + 1))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        return tags


class EpochLoss(PassthroughScoring):
    """skorch's epoch score from batch scores, averaged by the batches' sample weights.

    skorch's ``PassthroughScoring`` averages the batches' scores weighted by their rows
    (``train_batch_size``). Where every batch of the epoch recorded its sample weights'
    sum (``train_batch_weight``, written by :class:`PrunableNet` in a weighted fit), this
    averages by those instead: with the batch loss ``sum(w_i l_i) / sum(w_i)``, the
    epoch's score is then ``sum(w_i l_i) / sum(w_i)`` over all its rows (plus the batches'
    penalties, likewise averaged), the weighted loss of the epoch. Averaged by rows it
    would change with how the heavy rows happen to fall into batches, enough to end
    training early under the ``tol`` rule (``n_iter_no_change`` epochs without
    improvement).
    """

    def get_avg_score(self, history):
        batches = history[-1, "batches"]
        if self.on_train and batches and all("train_batch_weight" in b for b in batches):
            weights = [batch["train_batch_weight"] for batch in batches]
            if sum(weights) > 0:
                return float(np.average([batch[self.name] for batch in batches],
                                        weights=weights))
        return super().get_avg_score(history)


class Convergence(Callback):
    """Stop training as ``MLPClassifier`` does (its ``tol`` / ``n_iter_no_change`` rule).

    Without validation data: an epoch whose training loss is not below the best so far
    by ``tol`` counts as no improvement. With validation data (``MLPClassifier``'s
    ``early_stopping``): an epoch whose validation accuracy is not above the best so far
    by ``tol`` counts, and the weights of the best epoch are restored at the end. Training
    stops after more than ``n_iter_no_change`` such epochs in a row (scikit-learn's
    ``_update_no_improvement_count``). ``tol=None`` never stops.

    Parameters
    ----------
    tol : float or None
    n_iter_no_change : int
    X_valid, y_valid, w_valid : torch.Tensor or None, default=None
        Validation data and its sample weights; with ``X_valid`` the validation accuracy is
        recorded as ``valid_acc`` in the history and drives the rule.

    Attributes
    ----------
    best_loss_ : float
        Lowest training loss seen.
    best_score_ : float or None
        Best validation accuracy seen (None without validation data).
    stopped_ : bool
        Whether the rule ended training.
    """

    def __init__(self, tol, n_iter_no_change, X_valid=None, y_valid=None, w_valid=None):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.X_valid = X_valid
        self.y_valid = y_valid
        self.w_valid = w_valid

    def initialize(self):
        self.best_loss_ = math.inf
        self.best_score_ = None if self.X_valid is None else -math.inf
        self.stopped_ = False
        self._misses = 0
        self._best_state = None
        return self

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1, "train_loss"]
        tol = 0.0 if self.tol is None else self.tol
        if self.X_valid is None:
            improved = not loss > self.best_loss_ - tol
        else:
            score = accuracy(net.module_, self.X_valid, self.y_valid, self.w_valid)
            net.history.record("valid_acc", score)
            improved = not score < self.best_score_ + tol
            if score > self.best_score_:
                self.best_score_ = score
                self._best_state = copy.deepcopy(net.module_.state_dict())
        self.best_loss_ = min(self.best_loss_, loss)
        self._misses = 0 if improved else self._misses + 1
        if self.tol is not None and self._misses > self.n_iter_no_change:
            self.stopped_ = True
            raise KeyboardInterrupt

    def on_train_end(self, net, **kwargs):
        if self._best_state is not None:
            net.module_.load_state_dict(self._best_state)
        self.X_valid = self.y_valid = self.w_valid = self._best_state = None
