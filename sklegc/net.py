"""The skorch net that trains the network inside :class:`~sklegc.LEGCPrunedClassifier`.

:class:`PrunableNet` is a skorch ``NeuralNet`` that answers as skorch's
``NeuralNetClassifier`` does, so that skorch callbacks and scikit-learn scorers work on it
unchanged: ``predict`` gives encoded class labels (``0 .. n_classes - 1``) and
``predict_proba`` probabilities. Its loss is the one scikit-learn's ``MLPClassifier``
minimises: the mean of the (optionally sample-weighted) per-sample losses plus the L2
penalty ``alpha / 2 * sum(W ** 2) / n_batch`` on the weights of its ``nn.Linear`` layers
(not on the biases). Sample weights are expected to have mean 1 over the training data
(see :class:`~sklegc.network.ClassificationLoss`).

Sample weights travel with the data: pass ``X`` as a dict ``{"X": X, "sample_weight": w}``
(skorch's own convention for extra per-sample inputs); the module only ever sees ``X``.

A phase that must not end early (the traced dense phase needs its windows) sets
``PrunableNet.hold_stop``: a callback that asks to stop (skorch's ``KeyboardInterrupt``
from ``on_epoch_end``, as ``EarlyStopping`` and :class:`Convergence` do) is then held off
until ``hold_stop()`` returns False, and the stop takes effect at that epoch's end.
"""

from collections.abc import Mapping

import copy
import math

import numpy as np
import torch
from sklearn.utils import ClassifierTags
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.utils import to_numpy, to_tensor

from .masks import refresh_masked_weights
from .network import ClassificationLoss, prunable_layers, scores_to_proba
from .trajectory import accuracy


def _features(X):
    return X["X"] if isinstance(X, Mapping) else X


def _sample_weight(X):
    return X.get("sample_weight") if isinstance(X, Mapping) else None


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
        if method_name != "on_epoch_end" or self.hold_stop is None:
            return super().notify(method_name, **cb_kwargs)
        self.on_epoch_end(self, **cb_kwargs)
        for _, cb in self.callbacks_:
            try:
                cb.on_epoch_end(self, **cb_kwargs)
            except KeyboardInterrupt:
                self._stop_requested = True
        if getattr(self, "_stop_requested", False) and not self.hold_stop():
            self._stop_requested = False
            raise KeyboardInterrupt

    def infer(self, x, **fit_params):
        return super().infer(_features(x), **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = to_tensor(y_true, device=self.device)
        weight = _sample_weight(X)
        if weight is not None:
            weight = to_tensor(weight, device=self.device)
        loss = self.criterion_(y_pred, y_true, sample_weight=weight)
        if training and self.alpha:
            squares = sum((layer.weight ** 2).sum() for _, layer in prunable_layers(self.module_))
            loss = loss + 0.5 * self.alpha * squares / len(y_true)
        return loss

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
