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
        Prune at most this fraction of all weights, the least causal (largest p) first
        (also with ``amount``).
    amount : int, float or None, default=None
        Instead of the ``significance`` rule, prune exactly this many weights (int) or this
        fraction of the weights (float), least causal first (at most ``max_sparsity``);
        untestable weights rank after every testable one when they are kept, before them
        when they are pruned.

    Returns
    -------
    prune_ : ndarray of bool, shape (n_weights,)
        True where the weight is pruned.

    Examples
    --------
    >>> import numpy as np
    >>> noncausal_mask(np.array([0.01, 0.2, np.nan]), np.array([False, False, True]))
    array([False,  True, False])
    >>> noncausal_mask(np.array([0.01, 0.2, 0.5]), np.zeros(3, bool), amount=1.0,
    ...                max_sparsity=0.4)
    array([False, False,  True])
    """
    pvalues = np.asarray(pvalues, dtype=float)
    untestable = np.asarray(untestable, dtype=bool)
    n = pvalues.size
    key = causality_key(pvalues, untestable, untestable_policy)
    if amount is not None:
        return _prune_largest(key, pruned_count(amount, n, max_sparsity))
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


def causality_key(pvalues, untestable, untestable_policy="keep"):
    """The rank key of the causality decision: the larger, the less causal.

    It is the p-value, with the untestable weights ranked after every testable one when
    they are kept (``-inf``), before every one when they are pruned (``+inf``), as
    :func:`noncausal_mask` ranks them.

    Parameters
    ----------
    pvalues : ndarray of shape (n_weights,)
        Each weight's p-value (NaN for untestable weights).
    untestable : ndarray of bool, shape (n_weights,)
    untestable_policy : {"keep", "prune"}, default="keep"

    Returns
    -------
    key : ndarray of shape (n_weights,)

    Examples
    --------
    >>> import numpy as np
    >>> causality_key(np.array([0.01, 0.2, np.nan]), np.array([False, False, True]))
    array([0.01, 0.2 , -inf])
    """
    pvalues = np.asarray(pvalues, dtype=float)
    untestable = np.asarray(untestable, dtype=bool)
    return np.where(untestable, -np.inf if untestable_policy == "keep" else np.inf, pvalues)


def pruning_order(key, prune):
    """The pruned weights, least important (largest ``key``) first.

    Ties keep the weight order (a stable sort), so that the order is reproducible and its
    first ``n`` weights are the ``n`` that :func:`noncausal_mask` prunes with
    ``amount=n`` when ``key`` is its :func:`causality_key`.

    Parameters
    ----------
    key : ndarray of shape (n_weights,)
        Larger means pruned earlier (a p-value, or minus a magnitude or a sensitivity).
    prune : ndarray of bool, shape (n_weights,)
        The weights to order.

    Returns
    -------
    order : ndarray of int, shape (prune.sum(),)
        Flat indices of the pruned weights.

    Examples
    --------
    >>> import numpy as np
    >>> pruning_order(np.array([0.3, 0.9, 0.5, 0.9]), np.array([True, True, False, True]))
    array([1, 3, 0])
    """
    key = np.asarray(key, dtype=float)
    index = np.flatnonzero(np.asarray(prune, dtype=bool))
    return index[np.argsort(-key[index], kind="stable")]


def unit_pvalues(pvalues, layer_shapes):
    """Combine the p-values of each hidden unit's weights into one p-value per unit (Simes).

    A hidden unit's weights are its incoming weights (its row of its layer's weight) and its
    outgoing weights (its column of the next layer's weight). The unit is causal when its
    weights reject, jointly, the null hypothesis that none of them Granger-causes the
    misclassification series. Simes' test of that joint null (Simes 1986) gives

        p_unit = min over i of  m * p_(i) / i,

    with ``p_(1) <= ... <= p_(m)`` the unit's ``m`` testable p-values; it equals the smallest
    Benjamini-Hochberg adjusted p-value of the unit's weights
    (``scipy.stats.false_discovery_control(p).min()``).

    Why Simes: the weights' tests are not independent (they share the effect series, and the
    weights of one unit train together), which rules out the combinations of
    :func:`scipy.stats.combine_pvalues` (Fisher, Stouffer, Tippett, ...), whose level assumes
    independence and is exceeded under positive dependence. Simes' test keeps its level
    under independence and under positive regression dependence (Sarkar 1998; Benjamini and
    Yekutieli 2001), is less conservative than Bonferroni's ``m * min(p)``, and reduces to
    the weight rule (``p < significance`` keeps) for a unit with a single testable weight.

    Parameters
    ----------
    pvalues : ndarray of shape (n_weights,)
        Each weight's p-value, flat over the layers' weights in order (NaN = untestable).
    layer_shapes : list of tuple of int
        Each layer's weight shape ``(n_out, n_in)`` (``torch.nn.Linear``'s layout), in
        order; the layers must form a chain (each takes the previous one's outputs).

    Returns
    -------
    unit_p : ndarray of shape (n_hidden_units,)
        Each hidden unit's combined p-value, hidden layer by hidden layer; NaN for a unit
        none of whose weights is testable. Untestable weights do not enter the combination.

    Raises
    ------
    ValueError
        If the shapes do not chain or do not match the number of p-values.

    References
    ----------
    R. J. Simes, "An improved Bonferroni procedure for multiple tests of significance",
    Biometrika 73(3), 751-754, 1986. S. K. Sarkar, "Some probability inequalities for ordered
    MTP2 random variables: a proof of the Simes conjecture", Annals of Statistics 26(2),
    494-504, 1998. Y. Benjamini and D. Yekutieli, "The control of the false discovery rate in
    multiple testing under dependency", Annals of Statistics 29(4), 1165-1188, 2001.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([0.01, 0.5, 0.2, 0.9,   0.02, 0.6])  # a 2-2-1 network
    >>> unit_pvalues(p, [(2, 2), (1, 2)])  # unit 0: 0.01, 0.5, 0.02; unit 1: 0.2, 0.9, 0.6
    array([0.03, 0.6 ])
    """
    pvalues = np.asarray(pvalues, dtype=float)
    blocks = _split_layers(pvalues, layer_shapes)
    combined = []
    for incoming, outgoing in zip(blocks[:-1], blocks[1:]):
        P = np.sort(np.concatenate([incoming, outgoing.T], axis=1), axis=1)  # NaN sort last
        m = (~np.isnan(P)).sum(axis=1, keepdims=True)
        ranks = np.arange(1, P.shape[1] + 1)
        with np.errstate(invalid="ignore"):
            scaled = np.where(np.isnan(P), np.inf, m * P / ranks)
        unit = np.minimum(scaled.min(axis=1), 1.0)
        unit[m[:, 0] == 0] = np.nan
        combined.append(unit)
    return np.concatenate(combined) if combined else np.empty(0)


def units_to_weights(unit_pruned, layer_shapes):
    """The weight-level prune vector of pruning whole hidden units.

    A pruned unit loses its incoming weights (its row) and its outgoing weights (its column
    of the next layer), so it neither depends on the input nor affects the output and
    compression removes it (:func:`sklegc.compress.remove_dead_units`).

    Parameters
    ----------
    unit_pruned : ndarray of bool, shape (n_hidden_units,)
        True for a pruned unit, hidden layer by hidden layer.
    layer_shapes : list of tuple of int
        Each layer's weight shape ``(n_out, n_in)``, forming a chain.

    Returns
    -------
    prune_ : ndarray of bool, shape (n_weights,)
        True where the weight is pruned, flat over the layers' weights in order.

    Raises
    ------
    ValueError
        If the shapes do not chain or ``unit_pruned`` does not count the hidden units.

    Examples
    --------
    >>> import numpy as np
    >>> units_to_weights(np.array([True, False]), [(2, 2), (1, 2)]).astype(int)
    array([1, 1, 0, 0, 1, 0])
    """
    check_chain(layer_shapes)
    widths = [shape[0] for shape in layer_shapes[:-1]]
    unit_pruned = np.asarray(unit_pruned, dtype=bool)
    if unit_pruned.shape != (sum(widths),):
        raise ValueError(
            f"unit_pruned has shape {unit_pruned.shape}, but the layers have {sum(widths)} "
            f"hidden units ({widths})."
        )
    per_layer = np.split(unit_pruned, np.cumsum(widths)[:-1])
    masks = [np.zeros(shape, dtype=bool) for shape in layer_shapes]
    for layer, pruned in enumerate(per_layer):
        masks[layer][pruned, :] = True
        masks[layer + 1][:, pruned] = True
    return np.concatenate([m.reshape(-1) for m in masks])


def noncausal_units(pvalues, untestable, layer_shapes, *, significance=0.05, correction=None,
                    untestable_policy="keep", max_sparsity=None, amount=None):
    """Decide which hidden units are pruned, as a whole, from their weights' p-values.

    Each hidden unit gets the Simes combination of its incoming and outgoing weights'
    p-values (:func:`unit_pvalues`); the rule of :func:`noncausal_mask` is then applied to
    the units, so ``significance``, ``correction``, ``untestable_policy``, ``max_sparsity``
    and ``amount`` count units, not weights. A pruned unit's incoming and outgoing weights
    are all pruned (:func:`units_to_weights`), so compression turns the result into a
    network with fewer hidden units. Input features and output units are never pruned.

    Parameters
    ----------
    pvalues : ndarray of shape (n_weights,)
        Each weight's p-value (NaN for untestable weights).
    untestable : ndarray of bool, shape (n_weights,)
        Weights whose Granger test could not be computed; they do not enter the combination.
    layer_shapes : list of tuple of int
        Each layer's weight shape ``(n_out, n_in)``, forming a chain (the default MLP).
    significance, correction, untestable_policy, max_sparsity, amount
        As in :func:`noncausal_mask`, over hidden units: a unit with combined
        ``p >= significance`` is pruned; a unit none of whose weights is testable follows
        ``untestable_policy``; ``max_sparsity`` and a float ``amount`` are shares of the
        hidden units, an int ``amount`` a number of hidden units (ranked over all hidden
        layers together, least causal first).

    Returns
    -------
    prune_ : ndarray of bool, shape (n_weights,)
        True where the weight is pruned.

    Raises
    ------
    ValueError
        If the shapes do not chain or do not match the number of p-values.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([0.01, 0.5, 0.2, 0.9,   0.02, 0.6])
    >>> noncausal_units(p, np.isnan(p), [(2, 2), (1, 2)]).astype(int)
    array([0, 0, 1, 1, 0, 1])
    """
    pvalues = np.where(np.asarray(untestable, dtype=bool), np.nan,
                       np.asarray(pvalues, dtype=float))
    unit_p = unit_pvalues(pvalues, layer_shapes)
    unit_pruned = noncausal_mask(unit_p, np.isnan(unit_p), significance=significance,
                                 correction=correction, untestable_policy=untestable_policy,
                                 max_sparsity=max_sparsity, amount=amount)
    return units_to_weights(unit_pruned, layer_shapes)


def unit_baseline_keep(layers, method, amount, generator_seed):
    """Which weights the baselines keep when they prune whole hidden units.

    The units of each hidden layer are chosen by :class:`torch.nn.utils.prune.LnStructured`
    (``n=1, dim=0``: the rows of smallest L1 norm) or
    :class:`torch.nn.utils.prune.RandomStructured` (``dim=0``), as ``prune.ln_structured``
    and ``prune.random_structured`` do; a pruned unit then also loses its outgoing weights,
    so that compression removes it. The layers are only read, as by :func:`baseline_keep`:
    the choice can be made on trained weights and applied to rewound ones.

    Parameters
    ----------
    layers : list of (str, torch.nn.Linear)
        The prunable layers, forming a chain (the default MLP); the last one is the output
        layer, whose units are never pruned.
    method : {"magnitude", "random"}
        The criterion.
    amount : int or float
        A float is the share of each hidden layer's units pruned (rounded per layer, as
        torch does); an int is the number of hidden units pruned in total, split over the
        hidden layers in proportion to their widths (largest remainders).
    generator_seed : int
        Fixes the random choice without touching torch's global RNG state.

    Returns
    -------
    keep : ndarray of bool, shape (n_weights,)
        True where a weight is kept, over all layers' weights flattened in order.

    Raises
    ------
    ValueError
        If the layers do not chain, ``method`` is unknown, or an int ``amount`` exceeds the
        number of hidden units.

    Examples
    --------
    >>> from sklegc.network import MLP, prunable_layers
    >>> net = MLP(4, 2, hidden_layer_sizes=(6,))
    >>> keep = unit_baseline_keep(prunable_layers(net), "magnitude", 0.5, generator_seed=0)
    >>> first, second = keep[:24].reshape(6, 4), keep[24:].reshape(2, 6)
    >>> int((~first.any(axis=1)).sum()), int((~second.any(axis=0)).sum())
    (3, 3)
    """
    methods = {"magnitude": lambda n: prune.LnStructured(n, n=1, dim=0),
               "random": lambda n: prune.RandomStructured(n, dim=0)}
    if method not in methods:
        raise ValueError(f"method={method!r} is not one of {sorted(methods)}.")
    shapes = [tuple(layer.weight.shape) for _, layer in layers]
    check_chain(shapes)
    widths = [shape[0] for shape in shapes[:-1]]
    if isinstance(amount, float):
        counts = [amount] * len(widths)
    else:
        if not 0 <= amount <= sum(widths):
            raise ValueError(
                f"amount={amount} hidden units, but the network has {sum(widths)} "
                f"({widths}): use 0 <= amount <= {sum(widths)}, or a share as a float."
            )
        counts = _split_count(int(amount), widths)
    unit_pruned = []
    with torch_rng_lock, torch.random.fork_rng(devices=[]):
        torch.manual_seed(generator_seed)
        for (_, layer), count in zip(layers[:-1], counts):
            weight = layer.weight.detach()
            mask = methods[method](count).compute_mask(weight, torch.ones_like(weight))
            unit_pruned.append(~mask.bool().any(dim=1).cpu().numpy())
    pruned = np.concatenate(unit_pruned) if unit_pruned else np.zeros(0, dtype=bool)
    return ~units_to_weights(pruned, shapes)


def _split_count(total, widths):
    # Largest remainder: the counts add up to total and follow the widths as closely as integers can.
    exact = total * np.asarray(widths, dtype=float) / sum(widths)
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:total - counts.sum()]] += 1
    return [int(c) for c in counts]


def check_chain(layer_shapes):
    """Check that layers form a chain, so that their hidden units are defined.

    Parameters
    ----------
    layer_shapes : list of tuple of int
        Each layer's weight shape ``(n_out, n_in)``, in order.

    Raises
    ------
    ValueError
        If a layer does not take the previous layer's outputs, naming the fix
        (``granularity='weight'``).

    Examples
    --------
    >>> check_chain([(6, 4), (3, 6)])
    >>> check_chain([(6, 4), (3, 5)])
    Traceback (most recent call last):
    ...
    ValueError: layer 1 (weight shape (3, 5)) does not take the 6 outputs of layer 0: ...
    """
    for layer in range(1, len(layer_shapes)):
        if layer_shapes[layer][1] != layer_shapes[layer - 1][0]:
            raise ValueError(
                f"layer {layer} (weight shape {tuple(layer_shapes[layer])}) does not take the "
                f"{layer_shapes[layer - 1][0]} outputs of layer {layer - 1}: hidden units are "
                "defined for a chain of linear layers (the default MLP); use granularity="
                "'weight' with other modules."
            )


def _split_layers(flat, layer_shapes):
    check_chain(layer_shapes)
    sizes = [int(np.prod(shape)) for shape in layer_shapes]
    if flat.shape != (sum(sizes),):
        raise ValueError(
            f"got {flat.size} p-values for layers of shapes {list(layer_shapes)}, which hold "
            f"{sum(sizes)} weights."
        )
    return [block.reshape(shape)
            for block, shape in zip(np.split(flat, np.cumsum(sizes)[:-1]), layer_shapes)]


def pruned_count(amount, n, max_sparsity=None):
    """How many of ``n`` weights (or units) ``amount`` prunes, at most ``max_sparsity`` of them.

    Parameters
    ----------
    amount : int or float
        A number (int) or a share of ``n`` (float, rounded as ``torch.nn.utils.prune``
        rounds it).
    n : int
    max_sparsity : float in [0, 1] or None, default=None
        Cap: at most ``floor(max_sparsity * n)``.

    Returns
    -------
    int

    Examples
    --------
    >>> pruned_count(0.5, 25), pruned_count(12, 25), pruned_count(0.5, 25, max_sparsity=0.3)
    (12, 12, 7)
    """
    count = int(round(amount * n)) if isinstance(amount, float) else int(amount)
    return count if max_sparsity is None else min(count, int(np.floor(max_sparsity * n)))


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


def connection_sensitivity(module, loss_fn):
    """SNIP's connection sensitivity ``|dL/dw * w|`` of every prunable weight.

    Lee, Ajanthan and Torr (2019), "SNIP: single-shot network pruning based on connection
    sensitivity" (ICLR): the sensitivity of the loss to removing a connection, to first
    order, is ``|g_j * w_j|`` with ``g_j = dL/dw_j``, computed once on a batch of
    training data at initialisation. Their normalisation by the sum over the weights does
    not change a global ranking and is left out.

    Parameters
    ----------
    module : torch.nn.Module
        The network, with plain (unmasked) ``nn.Linear`` weights; it is not changed.
    loss_fn : callable
        ``loss_fn(module)`` returns the scalar loss of the batch, computed by ``module``.

    Returns
    -------
    sensitivity : ndarray of shape (n_weights,)
        Flat over the prunable layers' weights, in order (``float64``).

    Examples
    --------
    >>> import torch
    >>> from sklegc.network import MLP
    >>> net = MLP(3, 1, hidden_layer_sizes=(2,))
    >>> X, y = torch.ones(4, 3), torch.ones(4)
    >>> s = connection_sensitivity(
    ...     net, lambda m: torch.nn.functional.mse_loss(m(X)[:, 0], y))
    >>> s.shape, bool((s >= 0).all())
    ((8,), True)
    """
    from .network import prunable_layers

    weights = [layer.weight for _, layer in prunable_layers(module)]
    with torch.enable_grad():
        grads = torch.autograd.grad(loss_fn(module), weights, allow_unused=True)
    blocks = [torch.zeros_like(w) if g is None else (g * w).abs()
              for g, w in zip(grads, weights)]
    return np.concatenate([b.detach().cpu().double().numpy().reshape(-1) for b in blocks])


def saliency_keep(layers, scores, amount):
    """Which weights a global pruning by a score keeps: the ``amount`` lowest-scored go.

    :func:`torch.nn.utils.prune.global_unstructured` with ``L1Unstructured`` and the
    scores as ``importance_scores``, on copies of the layers (which are left as they are);
    a layer that already has a mask keeps its pruned weights pruned, and ``amount`` then
    counts the weights still unpruned, as in :mod:`torch.nn.utils.prune`. With the SNIP
    sensitivities (:func:`connection_sensitivity`) this is SNIP's global selection.

    Parameters
    ----------
    layers : list of (str, torch.nn.Linear)
    scores : ndarray of shape (n_weights,)
        Non-negative scores, flat over the layers' weights in order; lowest pruned first.
    amount : int or float
        Number (int) or share (float) of the weights to prune.

    Returns
    -------
    keep : ndarray of bool, shape (n_weights,)
        True where a weight is kept.

    Raises
    ------
    ValueError
        If ``scores`` does not hold one score per weight.

    Examples
    --------
    >>> import numpy as np
    >>> from sklegc.network import MLP, prunable_layers
    >>> layers = prunable_layers(MLP(2, 1, hidden_layer_sizes=(2,)))
    >>> saliency_keep(layers, np.array([5., 1., 4., 2., 3., 6.]), 2).astype(int)
    array([1, 0, 1, 0, 1, 1])
    """
    copies = [copy.deepcopy(layer) for _, layer in layers]
    sizes = [layer.weight.numel() for layer in copies]
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (sum(sizes),):
        raise ValueError(f"scores has shape {scores.shape}, but the layers hold {sum(sizes)} "
                         "weights: give one score per weight, flat over the layers in order.")
    importance = {}
    for layer, block in zip(copies, np.split(scores, np.cumsum(sizes)[:-1])):
        importance[(layer, "weight")] = torch.as_tensor(
            block.reshape(layer.weight.shape), dtype=layer.weight.dtype,
            device=layer.weight.device)
    prune.global_unstructured([(layer, "weight") for layer in copies],
                              pruning_method=prune.L1Unstructured,
                              importance_scores=importance, amount=amount)
    return np.concatenate([layer.weight_mask.detach().cpu().numpy().astype(bool).reshape(-1)
                           for layer in copies])


def layerwise_random_keep(layers, counts, generator_seed):
    """Random pruning of a given number of weights in each layer.

    The control for a method that prunes unevenly across layers: the same count in every
    layer, chosen at random, by :func:`torch.nn.utils.prune.random_unstructured` on copies
    of the layers (which are left as they are). ``generator_seed`` fixes the choice
    without touching torch's global RNG state.

    Parameters
    ----------
    layers : list of (str, torch.nn.Linear)
    counts : sequence of int
        Weights to prune in each layer, in order (see :func:`layer_counts`).
    generator_seed : int

    Returns
    -------
    keep : ndarray of bool, shape (n_weights,)
        True where a weight is kept, flat over the layers' weights in order.

    Raises
    ------
    ValueError
        If ``counts`` does not give one count in ``[0, layer size]`` per layer.

    Examples
    --------
    >>> from sklegc.network import MLP, prunable_layers
    >>> layers = prunable_layers(MLP(4, 3, hidden_layer_sizes=(5,)))
    >>> keep = layerwise_random_keep(layers, [7, 2], generator_seed=0)
    >>> layer_counts(~keep, [(5, 4), (3, 5)])
    [7, 2]
    """
    copies = [copy.deepcopy(layer) for _, layer in layers]
    counts = [int(c) for c in counts]
    sizes = [layer.weight.numel() for layer in copies]
    if len(counts) != len(copies) or any(not 0 <= c <= n for c, n in zip(counts, sizes)):
        raise ValueError(f"counts={counts} must give, for each of the {len(copies)} layers, a "
                         f"number of weights between 0 and its size ({sizes}).")
    with torch_rng_lock, torch.random.fork_rng(devices=[]):
        torch.manual_seed(generator_seed)
        for layer, count in zip(copies, counts):
            prune.random_unstructured(layer, "weight", amount=count)
    return np.concatenate([layer.weight_mask.detach().cpu().numpy().astype(bool).reshape(-1)
                           for layer in copies])


def layer_counts(pruned, layer_shapes):
    """How many weights of each layer a flat prune vector prunes.

    Parameters
    ----------
    pruned : ndarray of bool, shape (n_weights,)
        True where a weight is pruned, flat over the layers' weights in order.
    layer_shapes : list of tuple of int
        Each layer's weight shape, in order.

    Returns
    -------
    counts : list of int

    Raises
    ------
    ValueError
        If the shapes do not hold ``pruned.size`` weights.

    Examples
    --------
    >>> import numpy as np
    >>> layer_counts(np.array([1, 0, 1, 0, 1, 0], dtype=bool), [(2, 2), (1, 2)])
    [2, 1]
    """
    pruned = np.asarray(pruned, dtype=bool)
    sizes = [int(np.prod(shape)) for shape in layer_shapes]
    if pruned.shape != (sum(sizes),):
        raise ValueError(f"pruned has shape {pruned.shape}, but the layers "
                         f"{list(layer_shapes)} hold {sum(sizes)} weights.")
    return [int(block.sum()) for block in np.split(pruned, np.cumsum(sizes)[:-1])]


def imp_schedule(n_weights, amount, rounds):
    """Weights pruned in total after each round of iterative magnitude pruning.

    Frankle and Carbin (2019), "The lottery ticket hypothesis" (ICLR): each of the
    ``rounds`` rounds prunes the same share ``1 - (1 - a) ** (1 / rounds)`` of the weights
    still unpruned, so that a share ``a`` is pruned after the last one. The totals are
    rounded to whole weights, and the last one is exactly ``amount`` (an int) or
    ``round(amount * n_weights)`` (a float), the count :func:`baseline_keep` prunes.

    Parameters
    ----------
    n_weights : int
        Prunable weights.
    amount : int or float
        Number (int) or share (float in [0, 1]) of the weights pruned after the last round.
    rounds : int
        Rounds (at least 1).

    Returns
    -------
    totals : list of int
        ``totals[r - 1]``: weights pruned after round ``r``, non-decreasing.

    Raises
    ------
    ValueError
        If ``rounds < 1`` or ``amount`` is outside ``[0, n_weights]`` (int) or ``[0, 1]``
        (float).

    Examples
    --------
    >>> imp_schedule(1000, 0.875, 3)
    [500, 750, 875]
    >>> imp_schedule(60, 30, 2)
    [18, 30]
    """
    if int(rounds) < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}.")
    if isinstance(amount, (float, np.floating)):
        if not 0.0 <= amount <= 1.0:
            raise ValueError(f"a float amount is a share in [0, 1], got {amount}.")
        final = int(round(amount * n_weights))
    else:
        final = int(amount)
        if not 0 <= final <= n_weights:
            raise ValueError(f"amount={amount} weights, but there are {n_weights}.")
    remaining = 1.0 - final / n_weights if n_weights else 1.0
    totals = [int(round(n_weights * (1.0 - remaining ** (r / rounds))))
              for r in range(1, int(rounds))] + [final]
    return list(np.minimum(np.maximum.accumulate(totals), final).tolist())


def accuracy_limited_count(n_max, accuracy_at, floor):
    """The number of candidates to prune, found by bisection on an accuracy floor.

    Candidates are pruned in order; ``accuracy_at(n)`` is the accuracy with the first
    ``n`` pruned. If pruning all ``n_max`` keeps the accuracy at or above ``floor``, that
    is the answer (one evaluation); otherwise bisection between 0 (taken to pass: nothing
    pruned) and ``n_max`` (fails) narrows to a count ``n`` that passes with ``n + 1``
    failing, in at most ``1 + ceil(log2(n_max))`` evaluations. If the accuracy falls
    monotonically as more is pruned, ``n`` is the largest count that passes; otherwise it
    is a count that passes, not necessarily the largest.

    Parameters
    ----------
    n_max : int
        Candidates.
    accuracy_at : callable
        ``accuracy_at(n)`` for ``1 <= n <= n_max``.
    floor : float
        Lowest accuracy that passes.

    Returns
    -------
    n : int
        Candidates to prune; ``accuracy_at(n) >= floor`` was measured unless ``n == 0``.
    trials : list of (int, float)
        Every count evaluated and its accuracy, in order.

    Examples
    --------
    >>> accuracy_limited_count(10, lambda n: (90 - n) / 100, floor=0.85)
    (5, [(10, 0.8), (5, 0.85), (7, 0.83), (6, 0.84)])
    """
    trials = []

    def passes(n):
        value = float(accuracy_at(n))
        trials.append((n, value))
        return value >= floor

    if n_max <= 0 or passes(n_max):
        return max(int(n_max), 0), trials
    low, high = 0, int(n_max)
    while high - low > 1:
        middle = (low + high) // 2
        if passes(middle):
            low = middle
        else:
            high = middle
    return low, trials


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
