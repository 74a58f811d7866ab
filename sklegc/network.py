"""The network LEGCNet prunes and the losses it is trained with.

The module returns raw scores (logits): one column for a binary problem, one per class
otherwise. The output non-linearity of the paper (a sigmoid unit for binary tasks, softmax
for multi-class ones) belongs to the loss and to ``predict_proba``, so that the same module
serves the mean-squared-error loss of the paper and the cross-entropy loss.
"""

import torch
from torch import nn

ACTIVATIONS = {
    "logistic": nn.Sigmoid,  # scikit-learn's MLPClassifier name
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "identity": nn.Identity,
}

LOSSES = ("mse", "cross_entropy")


class MLP(nn.Module):
    """A dense multi-layer perceptron with a raw-score output layer.

    Parameters
    ----------
    n_features : int
        Number of input features.
    n_outputs : int
        Number of output scores: 1 for a binary problem, the number of classes otherwise.
    hidden_layer_sizes : tuple of int, default=(8,)
        Width of each hidden layer.
    activation : {"relu", "logistic", "sigmoid", "tanh", "identity"}, default="sigmoid"
        Hidden-unit non-linearity; ``"logistic"`` (MLPClassifier's name) and ``"sigmoid"``
        are the same function, the paper's.

    Examples
    --------
    >>> import torch
    >>> net = MLP(4, 3, hidden_layer_sizes=(6,))
    >>> net(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """

    def __init__(self, n_features, n_outputs, hidden_layer_sizes=(8,), activation="sigmoid"):
        super().__init__()
        sizes = [n_features, *hidden_layer_sizes]
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation]()]
        layers.append(nn.Linear(sizes[-1], n_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)


def scores_to_proba(scores):
    """Class probabilities, shape (n, n_classes), from the module's raw scores."""
    if scores.shape[1] == 1:
        p = torch.sigmoid(scores)
        return torch.cat([1 - p, p], dim=1)
    return torch.softmax(scores, dim=1)


def scores_to_labels(scores):
    """Encoded class labels from raw scores (threshold 0 for a single score column)."""
    if scores.shape[1] == 1:
        return (scores[:, 0] > 0).long()
    return scores.argmax(dim=1)


def batch_weight(sample_weight):
    """The weight of a batch, ``sum(w_i)`` (a 0-d tensor), or 1 for a batch of zero weights.

    The divisor of a weighted batch loss and of the L2 penalty, as in ``MLPClassifier``
    (its ``sw_sum``). A batch whose rows all weigh 0 carries no data: its loss is 0 (where
    scikit-learn would divide by 0), and :class:`~sklegc.net.PrunableNet` adds no penalty
    to it.
    """
    total = sample_weight.sum()
    return torch.where(total > 0, total, torch.ones_like(total))


class ClassificationLoss(nn.Module):
    """The training loss on raw scores and encoded integer labels, optionally weighted.

    ``loss="mse"`` is the paper's: the squared error between the output unit(s) after the
    sigmoid (binary) or softmax (multi-class) and the 0/1 or one-hot target, averaged over
    the output units of a sample. ``loss="cross_entropy"`` is the usual log loss. The batch
    loss is the mean of the per-sample losses, or with ``sample_weight`` their weighted
    average ``sum(w_i l_i) / sum(w_i)`` over the batch, as scikit-learn's ``MLPClassifier``
    computes it (``sklearn.neural_network._base.log_loss`` and ``binary_log_loss``), so that
    the same weights, initial weights and batches give ``MLPClassifier``'s steps. Each
    batch is normalised by its own weights: within a batch a row counts ``w_i / sum(w_i)``.
    In a batch of one row the weight cancels, as in ``MLPClassifier(batch_size=1)``.
    """

    def __init__(self, loss="mse"):
        super().__init__()
        self.loss = loss

    def forward(self, scores, y, sample_weight=None):
        reduction = "mean" if sample_weight is None else "none"
        loss = self._loss(scores, y.long(), reduction)
        if sample_weight is None:
            return loss
        if loss.ndim == 2:  # mse over several output units: their mean per sample
            loss = loss.mean(dim=1)
        weight = sample_weight.to(loss.dtype)
        return (loss * weight).sum() / batch_weight(weight)

    def _loss(self, scores, y, reduction):
        # The unweighted loss is torch's fused mean, exactly as the paper's runs computed it.
        functional = nn.functional
        if scores.shape[1] == 1:
            target = y.to(scores.dtype)
            if self.loss == "cross_entropy":
                return functional.binary_cross_entropy_with_logits(
                    scores[:, 0], target, reduction=reduction)
            return functional.mse_loss(torch.sigmoid(scores[:, 0]), target, reduction=reduction)
        if self.loss == "cross_entropy":
            return functional.cross_entropy(scores, y, reduction=reduction)
        target = self._one_hot(scores).index_select(0, y)
        return functional.mse_loss(torch.softmax(scores, dim=1), target, reduction=reduction)

    def _one_hot(self, scores):
        # The one-hot targets are rows of an identity matrix, made once: one_hot() checks
        # the labels' range at every call, which costs more than the loss on one row.
        eye = self.__dict__.get("_eye")
        n = scores.shape[1]
        if eye is None or eye.shape[0] != n or eye.dtype != scores.dtype or (
                eye.device != scores.device):
            eye = torch.eye(n, dtype=scores.dtype, device=scores.device)
            self.__dict__["_eye"] = eye
        return eye


def prunable_layers(module):
    """The ``(name, nn.Linear)`` pairs whose weights are subject to pruning, in module order."""
    return [(name, m) for name, m in module.named_modules() if isinstance(m, nn.Linear)]
