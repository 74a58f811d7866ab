"""Which weights to prune, and masks that stay applied.

The decision rule turns Granger p-values into a keep/prune vector over all weights; the
masks are then applied through :mod:`torch.nn.utils.prune`, whose forward pre-hook
multiplies ``weight_orig`` by the ``weight_mask`` buffer, so no optimizer step can revive a
pruned weight. The baselines of the paper (magnitude and random pruning at a given
sparsity) are :func:`torch.nn.utils.prune.global_unstructured` with the built-in methods.
"""

import copy

import numpy as np
import torch
from torch.nn.utils import prune

from .threads import torch_rng_lock

CORRECTIONS = {None: None, "bonferroni": "bonferroni", "fdr_bh": "fdr_bh"}
UNTESTABLE_POLICIES = ("keep", "prune")


def noncausal_mask(pvalues, untestable, *, significance=0.05, correction=None, untestable_policy="keep",
                   max_sparsity=None, amount=None):
    """Decide which weights are pruned from their Granger p-values.

    Parameters
    ----------
    pvalues : ndarray of shape (n_weights,)
        Each weight's p-value (NaN for untestable weights).
    untestable : ndarray of bool, shape (n_weights,)
        Weights whose Granger test could not be computed.
    significance : float, default=0.05
        Significance level: a weight with ``p >= significance`` is non-causal and pruned.
    correction : {None, "bonferroni", "fdr_bh"}, default=None
        Multiple-testing correction over the testable weights (statsmodels'
        ``multipletests``); a weight is causal when the corrected test rejects.
    untestable_policy : {"keep", "prune"}, default="keep"
        What happens to untestable weights; the authors' code kept them.
    max_sparsity : float in [0, 1] or None, default=None
        Prune at most this fraction of all weights, the least causal (largest p) first.
    amount : int, float or None, default=None
        Instead of the ``significance`` rule, prune exactly this many weights (int) or this
        fraction of the weights (float), least causal first; untestable weights rank after
        every testable one when they are kept, before them when they are pruned.

    Returns
    -------
    prune_ : ndarray of bool, shape (n_weights,)
        True where the weight is pruned.

    Examples
    --------
    >>> import numpy as np
    >>> noncausal_mask(np.array([0.01, 0.2, np.nan]), np.array([False, False, True]))
    array([False,  True, False])
    """
    pvalues = np.asarray(pvalues, dtype=float)
    untestable = np.asarray(untestable, dtype=bool)
    n = pvalues.size
    # Rank key: larger means less causal; untestable weights go last or first by policy.
    key = np.where(untestable, -np.inf if untestable_policy == "keep" else np.inf, pvalues)
    if amount is not None:
        n_prune = int(round(amount * n)) if isinstance(amount, float) else int(amount)
        return _prune_largest(key, n_prune)
    testable = ~untestable
    causal = np.zeros(n, dtype=bool)
    if correction is None:
        causal[testable] = pvalues[testable] < significance
    elif testable.any():
        from statsmodels.stats.multitest import multipletests

        causal[testable] = multipletests(pvalues[testable], alpha=significance, method=correction)[0]
    to_prune = ~causal & testable
    if untestable_policy == "prune":
        to_prune |= untestable
    if max_sparsity is not None:
        cap = int(np.floor(max_sparsity * n))
        if to_prune.sum() > cap:
            to_prune = _prune_largest(np.where(to_prune, key, -np.inf), cap)
    return to_prune


def _prune_largest(key, n_prune):
    # A stable sort on the negated key keeps ties in weight order, so the choice is reproducible.
    order = np.argsort(-key, kind="stable")
    out = np.zeros(key.size, dtype=bool)
    out[order[:n_prune]] = True
    return out


class FixedMask(prune.BasePruningMethod):
    """Prune exactly the weights a precomputed mask marks (0 = pruned, 1 = kept)."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, mask):
        self.mask = mask

    def compute_mask(self, t, default_mask):
        return default_mask * self.mask.to(device=default_mask.device, dtype=default_mask.dtype)


def apply_masks(layers, keep):
    """Attach a fixed pruning mask to the ``weight`` of each layer that loses a weight.

    Parameters
    ----------
    layers : list of (str, torch.nn.Linear)
        The prunable layers, in the order their weights are flattened into ``keep``.
    keep : ndarray of bool, shape (n_weights,)
        True where a weight is kept, over all layers' weights flattened in order.

    Returns
    -------
    masks : dict of str to ndarray of bool
        Each layer's mask, shaped like its weight (True = kept).
    """
    masks = {}
    offset = 0
    for name, layer in layers:
        n = layer.weight.numel()
        mask = np.asarray(keep[offset:offset + n]).reshape(layer.weight.shape).astype(bool)
        # A layer that keeps every weight stays a plain nn.Linear: nothing to hold at zero.
        if not mask.all():
            FixedMask.apply(layer, "weight", mask=torch.as_tensor(mask))
        masks[name] = mask
        offset += n
    return masks


def baseline_keep(layers, method, amount, generator_seed):
    """Which weights the paper's baselines keep: global magnitude (L1) or random pruning.

    The choice is made on copies of the layers with
    :func:`torch.nn.utils.prune.global_unstructured` (``L1Unstructured`` or
    ``RandomUnstructured``), so the layers themselves are left as they are: the mask can be
    computed on trained weights and then applied to rewound ones. ``generator_seed`` fixes
    the random choice without touching torch's global RNG state.

    Parameters
    ----------
    layers : list of (str, torch.nn.Linear)
    method : {"magnitude", "random"}
    amount : int or float
        Number (int) or share (float) of all the layers' weights to prune.
    generator_seed : int

    Returns
    -------
    keep : ndarray of bool, shape (n_weights,)
        True where a weight is kept, over all layers' weights flattened in order.
    """
    copies = [copy.deepcopy(layer) for _, layer in layers]
    pruning_method = prune.L1Unstructured if method == "magnitude" else prune.RandomUnstructured
    with torch_rng_lock, torch.random.fork_rng(devices=[]):
        torch.manual_seed(generator_seed)
        prune.global_unstructured([(layer, "weight") for layer in copies],
                                  pruning_method=pruning_method, amount=amount)
    return np.concatenate([layer.weight_mask.detach().cpu().numpy().astype(bool).reshape(-1)
                           for layer in copies])


def refresh_masked_weights(module):
    """Recompute every masked weight of ``module`` from ``weight_orig * weight_mask``.

    :mod:`torch.nn.utils.prune` sets a masked weight at each forward pass; after a training
    pass it is a non-leaf tensor of that pass's autograd graph, which ``copy.deepcopy`` (and
    so ``sklearn.base.clone`` of a fitted net, or diagnostics that copy the module) cannot
    copy. Called under ``torch.no_grad()``, this makes each one a plain tensor again.
    """
    for submodule in module.modules():
        for hook in submodule._forward_pre_hooks.values():
            if isinstance(hook, prune.BasePruningMethod):
                setattr(submodule, hook._tensor_name, hook.apply_mask(submodule))


def remove_masks(layers):
    """Drop the pruning re-parametrisation, keeping the masked weights (used on refit)."""
    for _, layer in layers:
        if prune.is_pruned(layer):
            prune.remove(layer, "weight")
