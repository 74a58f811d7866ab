"""Mini-batches of in-memory training data, without per-sample collation.

The paper trains with one sample per step, where a ``DataLoader`` spends more time
collating single rows than the network spends learning from them. :class:`TensorBatches`
draws one permutation per epoch and gathers each batch from the whole tensors by index:
the same batches a shuffled DataLoader gives, at a fraction of the overhead. Small data
sets are permuted once per epoch instead, so that each batch is a slice (a view): one
gather per epoch rather than one per batch and tensor.
"""

import math
from collections.abc import Mapping

import torch

# Data up to this size is permuted as a whole at each epoch (a second copy of it lives for
# the epoch); larger data is gathered batch by batch.
_PERMUTE_BYTES = 16 * 2**20


class TensorBatches:
    """Iterate over ``(X, y)`` mini-batches of a skorch dataset held in memory.

    Parameters
    ----------
    dataset : skorch.dataset.Dataset
        A dataset whose ``X`` and ``y`` are arrays or tensors of equal length; ``X`` may
        also be a dict of them (for instance ``{"X": X, "sample_weight": w}``), batched
        alike.
    batch_size : int
        Rows per batch; the last batch may be smaller.
    shuffle : bool, default=False
        Draw a new permutation at every epoch.
    seed : int or None, default=None
        Seed of this iterator's own random generator, so that concurrent fits in one
        process do not share (and race on) torch's global one. None draws from the global
        generator.

    Examples
    --------
    >>> import numpy as np
    >>> from skorch.dataset import Dataset
    >>> batches = TensorBatches(Dataset(np.zeros((5, 2)), np.arange(5)), batch_size=2)
    >>> [len(yb) for _, yb in batches]
    [2, 2, 1]
    """

    def __init__(self, dataset, batch_size, shuffle=False, seed=None):
        X = dataset.X
        self.X = ({k: torch.as_tensor(v) for k, v in X.items()} if isinstance(X, Mapping)
                  else torch.as_tensor(X))
        self.y = torch.as_tensor(dataset.y)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)

    def __len__(self):
        return math.ceil(len(self.y) / self.batch_size)

    def __iter__(self):
        X, y, n = self.X, self.y, len(self.y)
        tensors = list(X.values()) if isinstance(X, dict) else [X]
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator)
            if sum(t.nelement() * t.element_size() for t in tensors + [y]) <= _PERMUTE_BYTES:
                X, y = _take(X, order), y[order]
            else:
                # Gathered batch by batch: permuting all of X would hold a second copy of
                # the training data for the whole epoch.
                for start in range(0, n, self.batch_size):
                    index = order[start:start + self.batch_size]
                    yield _take(X, index), y[index]
                return
        for start in range(0, n, self.batch_size):
            batch = slice(start, start + self.batch_size)
            yield _take(X, batch), y[batch]


def _take(X, index):
    return {k: v[index] for k, v in X.items()} if isinstance(X, dict) else X[index]
