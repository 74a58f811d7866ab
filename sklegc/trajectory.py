"""Recording weight trajectories during training, as skorch callbacks.

:class:`WeightTracer` keeps the last ``window_size`` values of every prunable weight in a
ring buffer and, each time a window completes, reduces it at once to one Lyapunov exponent
per weight and records the network's misclassification rate and loss. Memory for the
trajectory is therefore one window of weights, however long the run.
:class:`TrainingAccuracy` measures the accuracy on the training data after every epoch (the
paper's "epochs to threshold"), optionally stopping there, and refuses to go on once the
loss is no longer finite.
Both callbacks serve one training run: they drop their references to the data when it
ends, so that a fitted network neither keeps nor pickles the training set.
"""

import math

import numpy as np
import torch
from skorch.callbacks import Callback

from ._jit import compile_pending
from .lyapunov import max_lyapunov
from .network import prunable_layers, scores_to_labels

# Windows kept while the kernels compile in the background use at most this much memory;
# beyond it the trace waits for the compilation (MNIST-sized: 41,000 weights x 200 steps
# in float32 is 33 MB a window).
_DEFERRED_BYTES = 256 * 2**20


class TrainingDivergedError(FloatingPointError):
    """Raised when the training loss becomes NaN or infinite."""

    @classmethod
    def at(cls, what, epoch, lr):
        """The error for ``what`` went wrong in ``epoch``, with the fix."""
        return cls(f"{what} in epoch {epoch} (lr={lr:g}); training diverged. "
                   "Use a smaller learning rate `lr` (or scale the features).")


@torch.no_grad()
def accuracy(module, X, y, sample_weight=None, batch_size=4096):
    """Accuracy of ``module``'s predicted labels on tensors ``X``, ``y`` (eval mode).

    With ``sample_weight`` (a tensor of shape (n_samples,)) the weighted accuracy
    ``sum(w_i [correct_i]) / sum(w_i)``, as ``sklearn.metrics.accuracy_score`` weighs it.
    """
    was_training = module.training
    module.eval()
    correct = 0.0
    for start in range(0, len(X), batch_size):
        hits = scores_to_labels(module(X[start:start + batch_size])) == y[start:start + batch_size]
        if sample_weight is None:
            correct += hits.sum().item()
        else:
            correct += (hits * sample_weight[start:start + batch_size]).sum().item()
    module.train(was_training)
    return correct / (len(X) if sample_weight is None else sample_weight.sum().item())


@torch.no_grad()
def accuracy_and_loss(module, criterion, X, y, sample_weight=None, batch_size=4096):
    """Accuracy and mean loss of ``module`` on tensors ``X``, ``y`` (eval mode), in one pass.

    The accuracy is :func:`accuracy`'s. The loss is ``criterion``'s per-sample loss
    averaged over the rows, with ``sample_weight`` the weighted average
    ``sum(w_i l_i) / sum(w_i)``; ``criterion(scores, y, sample_weight=None)`` returns the
    mean over a batch, or its weighted average (see
    :class:`~sklegc.network.ClassificationLoss`). No L2 penalty: the loss of the data only.

    Returns
    -------
    accuracy, loss : float
    """
    was_training = module.training
    module.eval()
    correct = total_loss = 0.0
    for start in range(0, len(X), batch_size):
        rows = slice(start, start + batch_size)
        scores = module(X[rows])
        hits = scores_to_labels(scores) == y[rows]
        if sample_weight is None:
            correct += hits.sum().item()
            total_loss += criterion(scores, y[rows]).item() * len(hits)
        else:
            w = sample_weight[rows]
            correct += (hits * w).sum().item()
            total_loss += criterion(scores, y[rows], sample_weight=w).item() * w.sum().item()
    module.train(was_training)
    norm = len(X) if sample_weight is None else sample_weight.sum().item()
    return correct / norm, total_loss / norm


class WeightTracer(Callback):
    """Trace every prunable weight and reduce each complete window to Lyapunov exponents.

    Parameters
    ----------
    window_size : int
        Steps per window (the paper: 160 to 250).
    stride : int
        Steps between window starts (``window_size * (1 - overlap)``).
    X_monitor, y_monitor : torch.Tensor
        Data on which the misclassification rate is measured at the end of each window.
    lyapunov_params : dict
        Keyword arguments of :func:`sklegc.lyapunov.max_lyapunov`.
    w_monitor : torch.Tensor of shape (n_monitor,) or None, default=None
        Sample weights of the monitoring data: the misclassification rate is then weighted.

    Attributes
    ----------
    buffer_ : torch.Tensor of shape (window_size, n_weights)
        The ring buffer; it never holds more than one window of steps.
    n_steps_ : int
        Optimizer steps seen.
    lyapunov_ : list of ndarray of shape (n_weights,)
        One exponent per weight for every completed window. While the Lyapunov kernel
        compiles in the background (the first fit after installing, ``sklegc._jit``) the
        windows are kept and their entries are None; all are computed by the end of
        training.
    misclassification_ : list of float
        ``1 - accuracy`` right after each window's last step.
    loss_ : list of float
        The loss (``net.criterion_``, sample-weighted with ``w_monitor``, without the L2
        penalty) on the monitoring data right after each window's last step; it moves
        even while the predicted labels, and so the misclassification rate, do not.
    window_ends_ : list of int
        The index of each completed window's last step.
    """

    def __init__(self, window_size, stride, X_monitor, y_monitor, lyapunov_params=None,
                 w_monitor=None):
        self.window_size = window_size
        self.stride = stride
        self.X_monitor = X_monitor
        self.y_monitor = y_monitor
        self.lyapunov_params = lyapunov_params
        self.w_monitor = w_monitor

    def initialize(self):
        self.buffer_ = None
        self.n_steps_ = 0
        self.lyapunov_ = []
        self.misclassification_ = []
        self.loss_ = []
        self.window_ends_ = []
        self._deferred = []
        return self

    def on_train_begin(self, net, **kwargs):
        layers = [layer for _, layer in prunable_layers(net.module_)]
        # The trained tensors themselves: under a pruning mask, the ``weight_orig``
        # parameter that the optimizer updates (``weight`` is recomputed from it only at the
        # next forward pass, so after a step it still holds the weights before the step).
        self._params = [getattr(layer, "weight_orig", layer.weight) for layer in layers]
        self._sources = self._flat_views()
        masks = [getattr(layer, "weight_mask", None) for layer in layers]
        # A masked network moves as its masked weights: pruned weights trace as zeros.
        self._mask = None if all(mask is None for mask in masks) else torch.cat([
            (torch.ones(param.numel(), dtype=param.dtype, device=param.device)
             if mask is None else mask.reshape(-1))
            for param, mask in zip(self._params, masks)])
        n_weights = sum(param.numel() for param in self._params)
        self.buffer_ = torch.empty(
            (self.window_size, n_weights), dtype=self._params[0].dtype,
            device=self._params[0].device,
        )
        self._rows = self.buffer_.unbind(0)

    def _flat_views(self):
        # Flat views of the weights' memory, made once: they follow the optimizer's
        # in-place updates, and making them at every step cost four times the copy.
        return [param.detach().reshape(-1) for param in self._params]

    def on_batch_end(self, net, training=False, **kwargs):
        if not training:
            return
        step = self.n_steps_
        sources = self._sources
        for param, source in zip(self._params, sources):
            # A weight given new memory (``weight.data = ...``, a loaded state) is flattened
            # again, and so is one stored non-contiguously (its flat copy is new memory).
            if param.data_ptr() != source.data_ptr():
                sources = self._sources = self._flat_views()
                break
        row = self._rows[step % self.window_size]
        torch.cat(sources, out=row)
        if self._mask is not None:
            row.mul_(self._mask)
        self.n_steps_ = step + 1
        first_end = self.window_size - 1
        if step >= first_end and (step - first_end) % self.stride == 0:
            self._close_window(net, step)

    def _close_window(self, net, step):
        # Rows of the ring buffer in time order: the oldest step sits right after the newest.
        oldest = (step + 1) % self.window_size
        order = torch.arange(oldest, oldest + self.window_size, device=self.buffer_.device)
        # Gathered through the transposed view: one row per weight, each row contiguous,
        # which the kernel reads in place instead of copying the transpose again.
        window = self.buffer_.T[:, order % self.window_size]
        if not torch.isfinite(window).all():
            raise TrainingDivergedError.at("the weights overflowed", len(net.history), net.lr)
        if window.device.type == "cpu":
            window = window.numpy()
        pending = isinstance(window, np.ndarray) and compile_pending("lyapunov")
        if pending or self._deferred:
            # The kernels are still compiling in the background (the first fit after
            # installing, sklegc._jit): keep the window (it is a copy of the ring buffer's
            # rows) and compute its exponents once they are ready, so that training goes
            # on meanwhile instead of waiting for the compiler or compiling a second time.
            self._deferred.append((len(self.lyapunov_), window))
            self.lyapunov_.append(None)
            if not pending or sum(w.nbytes for _, w in self._deferred) > _DEFERRED_BYTES:
                self._compute_deferred()
        else:
            self.lyapunov_.append(self._exponents(window))
        acc, loss = accuracy_and_loss(net.module_, net.criterion_, self.X_monitor,
                                      self.y_monitor, self.w_monitor)
        self.misclassification_.append(1.0 - acc)
        self.loss_.append(loss)
        self.window_ends_.append(step)

    def _exponents(self, window):
        exponents = max_lyapunov(window, **(self.lyapunov_params or {}))
        if isinstance(exponents, torch.Tensor):
            exponents = exponents.cpu().numpy()
        return np.asarray(exponents, dtype=np.float64)

    def _compute_deferred(self):
        """The exponents of the windows kept while the kernels compiled (max_lyapunov
        waits for the compilation to end)."""
        for index, window in self._deferred:
            self.lyapunov_[index] = self._exponents(window)
        self._deferred = []

    def on_epoch_end(self, net, **kwargs):
        net.history.record("n_steps", self.n_steps_)
        net.history.record("n_windows", len(self.lyapunov_))

    def on_train_end(self, net, **kwargs):
        self._compute_deferred()
        # The fitted net keeps its callbacks: without this it would hold (and pickle) the
        # monitoring data and one window of every weight, possibly on the GPU.
        self.buffer_ = self.X_monitor = self.y_monitor = self.w_monitor = None
        self._params = self._sources = self._mask = self._rows = None


class TrainingAccuracy(Callback):
    """Record the accuracy on the training data after every epoch.

    Parameters
    ----------
    X, y : torch.Tensor
        The training data (or a sample of it).
    target : float or None
        Accuracy at which the phase counts as trained (the paper's threshold).
    stop_at_target : bool
        Whether to end training once ``target`` is reached.
    sample_weight : torch.Tensor of shape (n_samples,) or None, default=None
        Weights of the samples: the accuracy is then weighted.

    Attributes
    ----------
    epoch_to_target_ : int or None
        First epoch (1-based, counted within this phase) whose training accuracy reached
        ``target``.
    n_epochs_ : int
        Epochs seen in this phase.
    """

    def __init__(self, X, y, target=None, stop_at_target=False, sample_weight=None):
        self.X = X
        self.y = y
        self.target = target
        self.stop_at_target = stop_at_target
        self.sample_weight = sample_weight

    def initialize(self):
        self.epoch_to_target_ = None
        self.n_epochs_ = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.n_epochs_ += 1
        epoch = self.n_epochs_
        loss = net.history[-1].get("train_loss", 0.0)
        finite = all(torch.isfinite(p).all() for p in net.module_.parameters())
        if not (math.isfinite(loss) and finite):
            what = f"the training loss became {loss}" if finite else "the weights overflowed"
            raise TrainingDivergedError.at(what, epoch, net.lr)
        acc = accuracy(net.module_, self.X, self.y, self.sample_weight)
        net.history.record("train_accuracy", acc)
        if self.target is not None and self.epoch_to_target_ is None and acc >= self.target:
            self.epoch_to_target_ = epoch
            if self.stop_at_target:
                raise KeyboardInterrupt

    def on_train_end(self, net, **kwargs):
        # As for WeightTracer: the fitted net must not keep (or pickle) the training data.
        self.X = self.y = self.sample_weight = None
