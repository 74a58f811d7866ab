"""Fine-tuning many masked copies of one network at once, for the reproduction run.

The sweep's fits of one dataset and seed (``LEGC rank``, ``magnitude`` and ``random`` at
five sparsities) and the tables' baselines of one seed all start their fine-tuning from
the same initial weights and draw their batches from the same seed, so they see the same
rows in the same order; they differ only in their masks. On the paper's tiny networks at
one row per step, a step costs torch's fixed dispatch overhead, not arithmetic: one step
of 15 stacked networks (``torch.baddbmm``) costs about as much as a step of one
(docs/reproduction.md). So the run fine-tunes such a group as one stacked network.

Two parts:

- :func:`train_masked_networks`, the kernel: plain torch on stacked tensors, the
  estimator's fine-tuning step for step (the same batches, loss, SGD update, per-epoch
  training accuracy and stop at the target accuracy, and the same divergence check), each
  network leaving the stack when it stops.
- :func:`run_cell_group`: the cells of a group are fitted by the estimator itself up to
  their fine-tuning (dense training, the pruning decision, the rewind), which a subclass
  of the estimator defers; the kernel trains the deferred networks together; each
  estimator then takes its trained weights and history back and finishes its fit as
  usual (its accuracy check and training attributes). A fit whose fine-tuning the kernel
  cannot reproduce (a validation split, sample weights, callbacks, another optimizer,
  ...) fine-tunes alone, as the estimator does.

The stacked matrix products round differently from one network's, so the results equal
the fits one by one up to float rounding; ``tests/test_batched.py`` holds them to it.
"""

import copy
import hashlib
import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

from ..network import ACTIVATIONS, LOSSES, prunable_layers

__all__ = ["MaskedNetworkResult", "train_masked_networks", "run_cell_group"]


@dataclass
class MaskedNetworkResult:
    """What :func:`train_masked_networks` returns for one network.

    Attributes
    ----------
    weights, biases : list of torch.Tensor
        The trained weights (unmasked values, as ``weight_orig``; shape (out, in)) and
        biases (out,) of each layer.
    epoch_losses : list of float
        Each epoch's training loss: the mean of its batch losses weighted by their rows.
    batch_losses : list of list of float
        Each epoch's batch losses.
    batch_sizes : list of int
        The rows of each batch of an epoch.
    accuracies : list of float
        The training accuracy (on ``X_acc``) after each epoch.
    epoch_to_target : int or None
        The first epoch (1-based) whose accuracy reached ``target``.
    error : str or None
        Why training stopped with an error (the weights or the loss became non-finite);
        the message of :class:`sklegc.trajectory.TrainingDivergedError`.
    """

    weights: list
    biases: list
    epoch_losses: list = field(default_factory=list)
    batch_losses: list = field(default_factory=list)
    batch_sizes: list = field(default_factory=list)
    accuracies: list = field(default_factory=list)
    epoch_to_target: object = None
    error: object = None


def _forward(weights, masks, biases, X, act):
    """Scores (G, n, out) of the G stacked networks on the rows ``X`` (n, in)."""
    h = X.expand(weights[0].shape[0], *X.shape)
    for i, (W, M, b) in enumerate(zip(weights, masks, biases)):
        h = torch.baddbmm(b.unsqueeze(1), h, (W * M).transpose(1, 2))
        if i < len(weights) - 1:
            h = act(h)
    return h


def _losses(scores, y, loss, eye):
    """Each network's mean loss over the batch, shape (G,): ClassificationLoss's."""
    from torch.nn import functional

    if scores.shape[2] == 1:
        target = y.to(scores.dtype).expand(scores.shape[0], -1)
        if loss == "cross_entropy":
            per = functional.binary_cross_entropy_with_logits(scores[..., 0], target,
                                                              reduction="none")
        else:
            per = (torch.sigmoid(scores[..., 0]) - target) ** 2
        return per.mean(dim=1)
    if loss == "cross_entropy":
        per = -torch.log_softmax(scores, dim=2).gather(
            2, y.view(1, -1, 1).expand(scores.shape[0], -1, 1))[..., 0]
        return per.mean(dim=1)
    per = (torch.softmax(scores, dim=2) - eye.index_select(0, y)) ** 2
    return per.mean(dim=(1, 2))


def _labels(scores):
    return (scores[..., 0] > 0).long() if scores.shape[2] == 1 else scores.argmax(dim=2)


def train_masked_networks(weights, masks, biases, X, y, *, lr, batch_size, max_epochs, seed,
                          X_acc=None, y_acc=None, target=None, loss="mse",
                          activation="logistic"):
    """Train G masked copies of one MLP at once, each as the estimator fine-tunes one.

    Every network sees the same batches: an epoch draws ``torch.randperm(n)`` from one
    ``torch.Generator`` seeded with ``seed`` for the whole run (as
    :class:`sklegc.batching.TensorBatches` does for one phase) and takes the permuted rows
    ``batch_size`` at a time. A step is plain SGD (``torch.optim.SGD(fused=True)``, no
    momentum, no penalty) on each network's mean batch loss. After each epoch a network's
    training accuracy is measured on ``X_acc``; it leaves the stack at the first epoch that
    reaches ``target``, after its ``max_epochs``, or when its loss or weights become
    non-finite (as :class:`sklegc.trajectory.TrainingAccuracy` stops and raises).

    Parameters
    ----------
    weights : list of torch.Tensor, each of shape (G, out, in)
        Each layer's initial weights, unmasked (a masked weight keeps its value and gets no
        gradient, as under :mod:`torch.nn.utils.prune`).
    masks : list of torch.Tensor, each of shape (G, out, in)
        1 where a weight is kept, 0 where it is pruned.
    biases : list of torch.Tensor, each of shape (G, out)
    X : torch.Tensor of shape (n, in)
    y : torch.Tensor of shape (n,)
        Encoded labels, 0 .. n_classes - 1.
    lr : float
    batch_size : int
    max_epochs : sequence of int, length G
        Each network's epoch cap.
    seed : int
        Seed of the batch order.
    X_acc, y_acc : torch.Tensor or None, default=None
        The rows the accuracy is measured on (default: ``X``, ``y``).
    target : float or None, default=None
        Training accuracy at which a network stops.
    loss : {"mse", "cross_entropy"}, default="mse"
        See :class:`sklegc.network.ClassificationLoss`; one output column is a binary
        problem (sigmoid), several a multi-class one (softmax).
    activation : {"logistic", "sigmoid", "tanh", "relu", "identity"}, default="logistic"
        The hidden units' non-linearity.

    Returns
    -------
    list of MaskedNetworkResult
        One per network, in input order.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> X, y = torch.randn(20, 3, generator=g), torch.arange(20) % 2
    >>> W = [torch.randn(4, 5, 3, generator=g), torch.randn(4, 1, 5, generator=g)]
    >>> M = [torch.ones(4, 5, 3), torch.ones(4, 1, 5)]
    >>> M[0][1:, 0] = 0  # networks 1-3 lose the first hidden unit's inputs
    >>> b = [torch.zeros(4, 5), torch.zeros(4, 1)]
    >>> out = train_masked_networks(W, M, b, X, y, lr=0.1, batch_size=1,
    ...                             max_epochs=[1, 2, 3, 3], seed=0)
    >>> [len(r.epoch_losses) for r in out]
    [1, 2, 3, 3]
    """
    from ..trajectory import TrainingDivergedError

    G = weights[0].shape[0]
    caps = [int(c) for c in max_epochs]
    if len(caps) != G:
        raise ValueError(f"max_epochs has {len(caps)} entries for {G} networks: give one "
                         "epoch cap per network (the first axis of the weights).")
    X_acc = X if X_acc is None else X_acc
    y_acc = y if y_acc is None else y_acc
    y, y_acc = y.long(), y_acc.long()
    act = ACTIVATIONS[activation]()
    n_out = weights[-1].shape[1]
    eye = torch.eye(n_out, dtype=weights[0].dtype)
    masks = [m.to(weights[0].dtype) for m in masks]
    results = [MaskedNetworkResult([w[g].clone() for w in weights],
                                   [b[g].clone() for b in biases]) for g in range(G)]
    active = [g for g in range(G) if caps[g] > 0]
    generator = torch.Generator().manual_seed(int(seed))
    n = len(y)
    starts = list(range(0, n, batch_size))
    sizes = [min(batch_size, n - s) for s in starts]

    index = torch.as_tensor(active, dtype=torch.long)
    params = [t[index].clone().requires_grad_() for t in [*weights, *biases]]
    live_masks = [m[index] for m in masks]
    optimizer = torch.optim.SGD(params, lr=lr, fused=True)
    n_layers = len(weights)
    epoch = 0
    while active:
        epoch += 1
        order = torch.randperm(n, generator=generator)
        Xp, yp = X[order], y[order]
        batch_losses = torch.empty(len(starts), len(active), dtype=weights[0].dtype)
        for i, start in enumerate(starts):
            rows = slice(start, start + batch_size)
            scores = _forward(params[:n_layers], live_masks, params[n_layers:], Xp[rows], act)
            per_network = _losses(scores, yp[rows], loss, eye)
            optimizer.zero_grad(set_to_none=True)
            per_network.sum().backward()
            optimizer.step()
            batch_losses[i] = per_network.detach()
        weights_now = [p.detach() for p in params]
        with torch.no_grad():
            scores = _forward(weights_now[:n_layers], live_masks, weights_now[n_layers:],
                              X_acc, act)
            acc = (_labels(scores) == y_acc).to(torch.float64).mean(dim=1).tolist()
        row_weights = torch.as_tensor(sizes, dtype=batch_losses.dtype).unsqueeze(1)
        epoch_losses = ((batch_losses * row_weights).sum(0) / n).tolist()
        finite = torch.stack([torch.isfinite(p).flatten(1).all(1) for p in weights_now]).all(0)
        per_batch = batch_losses.T.tolist()
        leaving = []
        for j, g in enumerate(active):
            r = results[g]
            for i in range(n_layers):
                r.weights[i] = weights_now[i][j].clone()
                r.biases[i] = weights_now[n_layers + i][j].clone()
            r.epoch_losses.append(epoch_losses[j])
            r.batch_losses.append(per_batch[j])
            r.batch_sizes = sizes
            if not (np.isfinite(epoch_losses[j]) and bool(finite[j])):
                what = (f"the training loss became {epoch_losses[j]}" if bool(finite[j])
                        else "the weights overflowed")
                r.error = str(TrainingDivergedError.at(what, epoch, lr))
                leaving.append(j)
                continue
            r.accuracies.append(acc[j])
            if target is not None and acc[j] >= target:
                r.epoch_to_target = epoch
                leaving.append(j)
            elif epoch >= caps[g]:
                leaving.append(j)
        if leaving:
            stay = [j for j in range(len(active)) if j not in leaving]
            active = [active[j] for j in stay]
            if active:
                index = torch.as_tensor(stay, dtype=torch.long)
                params = [p.detach()[index].clone().requires_grad_() for p in params]
                live_masks = [m[index] for m in live_masks]
                optimizer = torch.optim.SGD(params, lr=lr, fused=True)
    return results


# -- the estimator's side ----------------------------------------------------------------------

@lru_cache(maxsize=None)
def _member_class():
    from .runner import _replay_class

    class GroupMember(_replay_class()):
        """A reproduction fit whose fine-tuning :func:`run_cell_group` does, stacked
        with its group's (see the module docstring); the rest of the fit is the
        estimator's. Where the kernel cannot reproduce the fine-tuning, it is the
        estimator's too."""

        _deferred = None
        # Shared by the members of one group (run_cell_group sets it): the dense phase
        # of magnitude pruning is the same for every amount, so it is trained once.
        _dense_cache = None

        def _train_dense(self, net, data, plan):
            if self._dense_cache is None or plan.pruning != "magnitude":
                return super()._train_dense(net, data, plan)
            key = self._dense_key(data)
            if key not in self._dense_cache:
                tracer = super()._train_dense(net, data, plan)
                self._dense_cache[key] = (
                    copy.deepcopy(net.module_.state_dict()), copy.deepcopy(net.history),
                    copy.deepcopy({k: getattr(self, k) for k in _DENSE_ATTRIBUTES}))
                return tracer
            state, history, attributes = self._dense_cache[key]
            net.module_.load_state_dict(state)
            net.history = copy.deepcopy(history)
            for k, v in copy.deepcopy(attributes).items():
                setattr(self, k, v)
            return None

        def _dense_key(self, data):
            # Everything but what acts after the dense phase, and the data.
            params = {k: v for k, v in self.get_params(deep=False).items()
                      if k not in ("amount", "fine_tune_epochs", "max_sparsity")}
            return (repr(sorted(params.items())), _digest(data.X, data.y, data.X_acc,
                                                           data.y_acc))

        def _fine_tune(self, net, data, plan, newly_pruned):
            epochs = (self.max_epochs if self.fine_tune_epochs is None
                      else self.fine_tune_epochs)
            self._deferred = None
            if epochs and newly_pruned and self._stackable(net, data, plan):
                self._deferred = (net, data, plan, epochs)
                return
            super()._fine_tune(net, data, plan, newly_pruned)

        def _stackable(self, net, data, plan):
            from ..batching import TensorBatches

            params = net.get_params()
            two_part = (plan.traced and plan.trace_batch_size not in (None, plan.batch_size)
                        and self._traced_epochs)
            return (
                plan.pruning != "none" and self.fine_tune == "rewind" and not two_part
                and self.module is None and self.activation in ACTIVATIONS
                and self.loss in LOSSES
                and self.optimizer is torch.optim.SGD and not self.alpha
                and self.tol is None and self.max_accuracy_drop is None
                and not self.warm_start
                and not self.callbacks and not self._routed_params() and not self.verbose
                and data.X_val is None and data.w is None and data.w_acc is None
                and torch.device(self.device).type == "cpu"
                and all(p.dtype == torch.float32 for p in net.module_.parameters())
                and params.get("iterator_train") is TensorBatches
                and params.get("iterator_train__shuffle", False)
            )

        def _check_accuracy(self, net, data, plan):
            if self._deferred is None:
                super()._check_accuracy(net, data, plan)

        def _stack_key(self):
            """Fits with equal keys can be fine-tuned as one stack."""
            net, data, plan, _ = self._deferred
            shapes = tuple(tuple(layer.weight.shape)
                           for _, layer in prunable_layers(net.module_))
            return (_digest(data.X, data.y, data.X_acc, data.y_acc),
                    net.get_params()["iterator_train__seed"], plan.batch_size,
                    float(self.lr), self.loss, self.activation, shapes,
                    self.target_accuracy)

        def _finish_fine_tune(self, result, seconds):
            """Take the trained weights and history of ``result`` and end the fit as
            ``_fit`` ends it; raises the fine-tuning's TrainingDivergedError."""
            from ..masks import refresh_masked_weights
            from ..trajectory import TrainingDivergedError

            net, data, plan, _ = self._deferred
            self._deferred = None
            with torch.no_grad():
                for (_, layer), W, b in zip(prunable_layers(net.module_), result.weights,
                                            result.biases):
                    weight = getattr(layer, "weight_orig", None)
                    (layer.weight if weight is None else weight).copy_(W)
                    layer.bias.copy_(b)
                refresh_masked_weights(net.module_)
            history = net.history
            for k, loss in enumerate(result.epoch_losses):
                history.new_epoch()
                history.record("epoch", len(history))
                history.record("phase", "sparse")
                for batch_loss, size in zip(result.batch_losses[k], result.batch_sizes):
                    history.new_batch()
                    history.record_batch("train_loss", batch_loss)
                    history.record_batch("train_batch_size", size)
                history.record("train_batch_count", len(result.batch_sizes))
                history.record("train_loss", loss)
                if k < len(result.accuracies):
                    history.record("train_accuracy", result.accuracies[k])
            self.phase_times_["sparse"] = seconds
            if result.error is not None:
                raise TrainingDivergedError(result.error)
            if result.epoch_to_target is not None:
                self.epochs_to_target_["sparse"] = result.epoch_to_target
            self._check_accuracy(net, data, plan)
            self._record_training_attributes(net)

    return GroupMember

# What LEGCPrunedClassifier._train_dense sets, besides the network and its history.
_DENSE_ATTRIBUTES = ("epochs_to_target_", "n_dense_steps_", "_traced_epochs", "dense_accuracy_",
                     "dense_heldout_accuracy_", "accuracy_search_")


def _digest(*arrays):
    """A fingerprint of the arrays' shapes, dtypes and values."""
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(torch.as_tensor(a).numpy())
        h.update(repr((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def fine_tune_members(members):
    """Fine-tune the deferred fits among ``members`` (fitted :func:`_member_class`
    estimators), stacked by :meth:`_stack_key`; returns, per member, the seconds of wall
    and CPU time its share of the stacked training took (its stack's divided evenly)."""
    stacks = {}
    for m in members:
        if m._deferred is not None:
            stacks.setdefault(m._stack_key(), []).append(m)
    shares = {}
    for group in stacks.values():
        net, data, plan, _ = group[0]._deferred
        layers = [prunable_layers(m._deferred[0].module_) for m in group]
        weights, masks, biases = [], [], []
        for i in range(len(layers[0])):
            ws = [getattr(ls[i][1], "weight_orig", ls[i][1].weight).detach() for ls in layers]
            weights.append(torch.stack(ws))
            masks.append(torch.stack([
                torch.as_tensor(m.mask_[ls[i][0]], dtype=ws[0].dtype)
                for m, ls in zip(group, layers)]))
            biases.append(torch.stack([ls[i][1].bias.detach() for ls in layers]))
        first = group[0]
        start, cpu_start = time.perf_counter(), time.process_time()
        results = train_masked_networks(
            weights, masks, biases, torch.as_tensor(data.X), torch.as_tensor(data.y),
            lr=float(first.lr), batch_size=plan.batch_size,
            max_epochs=[m._deferred[3] for m in group],
            seed=net.get_params()["iterator_train__seed"], X_acc=data.X_acc, y_acc=data.y_acc,
            target=first.target_accuracy, loss=first.loss, activation=first.activation)
        wall = (time.perf_counter() - start) / len(group)
        cpu = (time.process_time() - cpu_start) / len(group)
        for m, result in zip(group, results):
            shares[id(m)] = (m, result, wall, cpu)
    return shares


def run_cell_group(cells, *, out, data_dir=None, quick=False, scale=True, sources=None,
                   stop=None):
    """Fit the cells of one dataset and seed, their fine-tuning stacked; their rows.

    Each cell is fitted by :func:`sklegc.experiments.runner.cell_estimator`'s estimator
    (as :func:`~sklegc.experiments.runner.run_cell` fits it) up to its fine-tuning; the
    fine-tuning of all of them runs in :func:`train_masked_networks`; each then ends its
    fit. Magnitude pruning's dense phase, the same computation for every amount, is
    trained by the first such cell (whose times include it) and copied into the others. A
    cell's ``fit_time_s`` and ``cpu_s`` are its own part plus an even share of the
    stacked training.

    Parameters
    ----------
    cells : list of Cell
        Of one dataset and seed.
    out, data_dir, quick, scale, sources
        As for :func:`~sklegc.experiments.runner.run_cell` (``sources`` is shared: the
        rows of the cells any of them needs, by method).
    stop : callable or None, default=None
        Asked before each fit and before the stacked training; when it returns True the
        group ends with KeyboardInterrupt (the run was interrupted: skorch ends a fit
        quietly on Ctrl-C, so the other fits of the group would otherwise go on).

    Returns
    -------
    list of (Cell, dict or None, str or None)
        Each cell, its row (None if it failed) and the error's traceback.
    """
    import traceback

    from .runner import cell_estimator, cell_row, timed_call, timed_fit

    member = _member_class()
    fitted = []
    outcomes = {}
    dense_cache = {}

    def check():
        if stop is not None and stop():
            raise KeyboardInterrupt("the run was interrupted during a group of cells")

    for cell in cells:
        check()
        try:
            clf, data, replayed = cell_estimator(cell, out=out, data_dir=data_dir, quick=quick,
                                                 scale=scale, sources=sources,
                                                 replay_class=member)
            clf._dense_cache = dense_cache
            caught, *times = timed_fit(clf, data.X_train, data.y_train)
            fitted.append((cell, clf, data, list(caught), times, replayed))
        except Exception:  # as run_cell's failures: logged, the others go on
            outcomes[cell] = (None, traceback.format_exc())
    check()
    try:
        shares = fine_tune_members([clf for _, clf, *_ in fitted])
    except Exception:  # the stacked fits fail, logged; the others give their rows
        error = traceback.format_exc()
        shares = {}
        for cell, clf, *_ in fitted:
            if clf._deferred is not None:
                outcomes[cell] = (None, error)
        fitted = [f for f in fitted if f[0] not in outcomes]
    for cell, clf, data, caught, times, replayed in fitted:
        try:
            if id(clf) in shares:
                _, result, wall, cpu = shares[id(clf)]
                more, _, _ = timed_call(clf._finish_fine_tune, result, wall)
                caught += more
                times = [times[0] + wall, times[1] + cpu]
            outcomes[cell] = (cell_row(cell, clf, data, caught, *times, replayed, out=out),
                              None)
        except Exception:
            outcomes[cell] = (None, traceback.format_exc())
    return [(cell, *outcomes[cell]) for cell in cells]
