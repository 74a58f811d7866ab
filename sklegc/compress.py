"""Compression of a pruned network: dead hidden units removed, masks made permanent, zeros packed.

Pruning through :mod:`torch.nn.utils.prune` only masks: the network keeps every tensor, so it
is as large on disk and as slow as the dense one. Compression turns the masks into a smaller
network that computes the same function, in the spirit of scikit-learn's ``sparsify()``:

1. Masks are made permanent: each weight becomes ``weight_orig * weight_mask``.
2. A hidden unit whose incoming weights are all zero outputs the constant
   ``activation(bias)``; its contribution ``activation(bias) * outgoing weights`` is added to
   the next layer's bias and the unit is removed. A hidden unit whose outgoing weights are all
   zero contributes nothing and is removed. Removing a unit can leave another unit without
   inputs or outputs, so this repeats until nothing changes. Input features and output units
   are never removed, so the compressed network takes and returns the same shapes.
3. A remaining weight matrix that is stored smaller as its non-zero values plus a bit mask is
   pickled that way (:class:`PackedParameter`); in memory it stays a dense parameter of a
   plain ``nn.Linear``, so predicting is no slower than with the dense network.

The default :class:`sklegc.network.MLP` is compressed by array arithmetic
(:func:`remove_dead_units`). Any other module goes through Torch-Pruning's dependency graph
(Fang et al., "DepGraph: Towards Any Structural Pruning", CVPR 2023), which removes a unit
from its layer and from every layer that consumes it.
"""

import copy
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.special import expit
from torch import nn
from torch.nn.utils import prune

from .network import ACTIVATIONS, MLP


class CompressionError(ValueError):
    """The module cannot be compressed; its masked weights keep working as they are."""


class CompressionWarning(UserWarning):
    """Part of a module could not be compressed (the rest was)."""


def _relu(z):
    return np.maximum(z, 0.0)


def _identity(z):
    return z


# The hidden non-linearities of sklegc.network.ACTIVATIONS, as functions on arrays.
ACTIVATION_FUNCTIONS = {"sigmoid": expit, "tanh": np.tanh, "relu": _relu, "identity": _identity}


def remove_dead_units(weights, biases, activation):
    """Remove the hidden units that are constant or unused, folding constants into biases.

    Parameters
    ----------
    weights : list of ndarray
        The weight matrices of a chain of fully connected layers, layer ``l`` of shape
        ``(n_units[l + 1], n_units[l])`` (``torch.nn.Linear``'s layout); zeros are pruned
        weights.
    biases : list of ndarray
        The biases, layer ``l`` of shape ``(n_units[l + 1],)``.
    activation : {"sigmoid", "tanh", "relu", "identity"}
        The hidden-unit non-linearity (applied after every layer but the last).

    Returns
    -------
    weights : list of ndarray
        The weight matrices without the removed units (float64).
    biases : list of ndarray
        The biases, with the constant contributions of removed units added (float64).
    kept : list of ndarray of int
        For each hidden layer, the original indices of the units kept.

    Raises
    ------
    ValueError
        If the shapes do not chain or ``activation`` is unknown.

    Notes
    -----
    A unit whose incoming weights are all zero outputs ``activation(bias)`` whatever the
    input; the next layer receives ``W[:, j] * activation(bias_j)`` from it, a constant that
    is added to its bias exactly (up to rounding). A unit whose outgoing weights are all zero
    is removed as it stands. Every hidden layer keeps at least one unit so that the network
    stays a valid chain; when every unit of a layer is dead, one is kept with zero weights
    and zero bias (it contributes nothing) and the network predicts a constant.

    Examples
    --------
    >>> import numpy as np
    >>> W = [np.array([[1.0, 2.0], [0.0, 0.0]]), np.array([[3.0, 4.0]])]
    >>> b = [np.array([0.5, 1.0]), np.array([0.0])]
    >>> W2, b2, kept = remove_dead_units(W, b, "identity")
    >>> [w.shape for w in W2], b2[1], kept
    ([(1, 2), (1, 1)], array([4.]), [array([0])])
    """
    if activation not in ACTIVATION_FUNCTIONS:
        raise ValueError(
            f"activation={activation!r} is not one of {sorted(ACTIVATION_FUNCTIONS)}."
        )
    f = ACTIVATION_FUNCTIONS[activation]
    W = [np.array(w, dtype=np.float64) for w in weights]
    b = [np.array(v, dtype=np.float64) for v in biases]
    for layer, (w, v) in enumerate(zip(W, b)):
        if v.shape != (w.shape[0],):
            raise ValueError(
                f"layer {layer}: bias of shape {v.shape} does not match weight of shape "
                f"{w.shape}; the bias needs shape ({w.shape[0]},)."
            )
        if layer and w.shape[1] != W[layer - 1].shape[0]:
            raise ValueError(
                f"layer {layer} takes {w.shape[1]} inputs but layer {layer - 1} has "
                f"{W[layer - 1].shape[0]} units: the layers must form a chain."
            )
    kept = [np.arange(w.shape[0]) for w in W[:-1]]
    changed = True
    while changed:
        changed = False
        for layer in range(len(W) - 1):
            no_input = ~W[layer].any(axis=1)
            no_output = ~W[layer + 1].any(axis=0)
            constant = no_input & ~no_output
            if constant.any():
                b[layer + 1] += W[layer + 1][:, constant] @ f(b[layer][constant])
                W[layer + 1][:, constant] = 0.0
            keep = ~(no_input | no_output)
            if not keep.any():
                # The neutral unit left in an emptied layer: zero in, zero out, zero bias.
                keep[0] = True
                W[layer][0] = 0.0
                b[layer][0] = 0.0
            changed |= bool(constant.any() or not keep.all())
            W[layer], b[layer] = W[layer][keep], b[layer][keep]
            W[layer + 1] = W[layer + 1][:, keep]
            kept[layer] = kept[layer][keep]
    return W, b, kept


# -- storage --------------------------------------------------------------------------------

def packed_nbytes(weight):
    """Bytes of ``weight`` stored as its non-zero values plus a bit mask (one bit per entry).

    Parameters
    ----------
    weight : torch.Tensor or ndarray

    Returns
    -------
    nbytes : int

    Examples
    --------
    >>> import numpy as np
    >>> packed_nbytes(np.eye(16, dtype=np.float32))  # 16 values of 4 bytes + 256 bits
    96
    """
    w = weight.detach().cpu().numpy() if isinstance(weight, torch.Tensor) else np.asarray(weight)
    return int(np.count_nonzero(w)) * w.itemsize + -(-w.size // 8)


class PackedParameter(nn.Parameter):
    """A parameter pickled as its non-zero values plus a bit mask.

    In memory it is an ordinary dense parameter: layers compute with it exactly as with
    ``nn.Parameter``, so predicting is as fast as with the dense network. Only pickling
    differs: the tensor is stored as its non-zero values plus one bit per entry, and made
    dense again, once, when the pickle is loaded, which is smaller than the dense tensor
    whenever fewer than 31 entries in 32 are non-zero (float32). Every reference pickles that
    way (the module's, and an optimizer's), through ``pickle``, ``joblib.dump`` and
    ``torch.save``; ``state_dict()`` holds plain dense tensors.

    Examples
    --------
    >>> import pickle, torch
    >>> dense = torch.nn.Parameter(torch.eye(100))
    >>> packed = PackedParameter(torch.eye(100))
    >>> len(pickle.dumps(packed)) < len(pickle.dumps(dense)) / 10
    True
    >>> loaded = pickle.loads(pickle.dumps(packed))
    >>> type(loaded).__name__, torch.equal(loaded, packed)
    ('PackedParameter', True)
    """

    def __reduce_ex__(self, protocol):
        data = self.detach()
        nonzero = data != 0
        bits = np.packbits(nonzero.cpu().numpy(), axis=None)
        # The values stay a tensor, so that unpickling maps them to the right device.
        return _unpack_parameter, (tuple(data.shape), bits, data[nonzero], self.requires_grad)


def _unpack_parameter(shape, bits, values, requires_grad):
    nonzero = np.unpackbits(bits, count=int(np.prod(shape))).reshape(shape).astype(bool)
    data = torch.zeros(shape, dtype=values.dtype, device=values.device)
    data[torch.from_numpy(nonzero).to(values.device)] = values
    return PackedParameter(data, requires_grad)


class PackedBoolArray(np.ndarray):
    """A boolean array pickled as one bit per entry; in memory an ordinary ``bool`` array.

    Used for the masks a compressed estimator keeps (``mask_``, ``pruned_``): they describe
    the pruning of the original network and take one byte per original weight as plain
    arrays, more than the compressed weights themselves. Pickled with
    :func:`numpy.packbits`, they take one bit. Operations on it (``~mask``, ``mask.sum()``)
    return plain arrays and scalars.

    Examples
    --------
    >>> import pickle
    >>> import numpy as np
    >>> mask = np.random.RandomState(0).uniform(size=(100, 80)) < 0.1
    >>> packed = mask.view(PackedBoolArray)
    >>> len(pickle.dumps(packed)) < len(pickle.dumps(mask)) / 5
    True
    >>> loaded = pickle.loads(pickle.dumps(packed))
    >>> type(loaded).__name__, bool((loaded == mask).all()), type(~loaded).__name__
    ('PackedBoolArray', True, 'ndarray')
    """

    def __reduce_ex__(self, protocol):
        return _unpack_bools, (self.shape, np.packbits(np.asarray(self), axis=None))

    def __array_wrap__(self, array, context=None, return_scalar=False):
        # Results of computations are plain arrays: only the stored masks pickle packed.
        array = np.asarray(array)
        return array[()] if return_scalar else array


def _unpack_bools(shape, bits):
    count = int(np.prod(shape))
    return np.unpackbits(bits, count=count).reshape(shape).astype(bool).view(PackedBoolArray)


def _pack_if_it_pays(layer):
    weight = layer.weight
    if packed_nbytes(weight) < weight.numel() * weight.element_size():
        layer.weight = PackedParameter(weight.detach(), weight.requires_grad)
    return layer


def stored_nbytes(layer):
    """Bytes of a linear layer's tensors as pickled (pruning buffers or packed weight included).

    Parameters
    ----------
    layer : torch.nn.Linear

    Returns
    -------
    nbytes : int

    Examples
    --------
    >>> import torch
    >>> stored_nbytes(torch.nn.Linear(3, 2))  # 6 weights and 2 biases, float32
    32
    """
    total = 0
    for tensor in [*layer.parameters(recurse=False), *layer.buffers(recurse=False)]:
        if isinstance(tensor, PackedParameter):
            total += packed_nbytes(tensor)
        else:
            total += tensor.numel() * tensor.element_size()
    return total


# -- modules --------------------------------------------------------------------------------

@dataclass
class Compression:
    """What :func:`compress_module` did.

    Attributes
    ----------
    module : torch.nn.Module
        The compressed network (a new module; the input module is left as it was).
    layers : list of dict
        One row per ``nn.Linear`` layer, in module order: ``layer`` (name), ``shape before``
        and ``shape after`` (``"out x in"``), ``units removed`` (output units of the layer),
        ``% zero before`` and ``% zero after`` (share of zero weights, in percent),
        ``storage`` (``"packed"`` or ``"dense"``), ``bytes before`` and ``bytes after``
        (the layer's tensors as pickled, see :func:`stored_nbytes`).
    units_removed : dict of str to int
        Hidden units removed, per layer name.
    """

    module: nn.Module
    layers: list = field(default_factory=list)
    units_removed: dict = field(default_factory=dict)

    @property
    def n_units_removed(self):
        """Total number of hidden units removed."""
        return int(sum(self.units_removed.values()))


def effective_weight(layer):
    """The weight a layer computes with, pruned entries exactly zero.

    For a layer pruned with :mod:`torch.nn.utils.prune` this is ``weight_orig * weight_mask``,
    computed afresh: the ``weight`` attribute is only refreshed by the next forward pass, so
    after an optimizer step it may be stale.

    Parameters
    ----------
    layer : torch.nn.Linear

    Returns
    -------
    weight : torch.Tensor of shape (out_features, in_features), detached

    Examples
    --------
    >>> import torch
    >>> from torch.nn.utils import prune
    >>> layer = prune.l1_unstructured(torch.nn.Linear(4, 2), "weight", amount=3)
    >>> int((effective_weight(layer) == 0).sum())
    3
    """
    if hasattr(layer, "weight_orig") and hasattr(layer, "weight_mask"):
        return (layer.weight_orig * layer.weight_mask).detach()
    return layer.weight.detach()


def copy_module(module):
    """A deep copy of a module, also when it is pruned and its ``weight`` is not a graph leaf.

    :mod:`torch.nn.utils.prune` stores the masked weight as a plain attribute computed from
    ``weight_orig``; after a forward pass with gradients it is not a leaf, and
    :func:`copy.deepcopy` refuses it. The copy gets it detached (the next forward pass
    recomputes it anyway).

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    copy : torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> from torch.nn.utils import prune
    >>> layer = prune.l1_unstructured(torch.nn.Linear(3, 2), "weight", amount=2)
    >>> copy_module(layer).weight_mask.sum().item()
    4.0
    """
    memo = {}
    for sub in module.modules():
        for hook in sub._forward_pre_hooks.values():
            computed = sub.__dict__.get(getattr(hook, "_tensor_name", None))
            if isinstance(hook, prune.BasePruningMethod) and isinstance(computed, torch.Tensor):
                memo[id(computed)] = computed.detach()
    return copy.deepcopy(module, memo)


def mlp_arrays(module):
    """The weights, biases and activation of a default :class:`sklegc.network.MLP`.

    Parameters
    ----------
    module : sklegc.network.MLP
        A (possibly pruned or compressed) default network.

    Returns
    -------
    weights : list of ndarray
        Effective weights (pruned entries 0), layer ``l`` of shape (out, in), float64.
    biases : list of ndarray
        Biases, float64.
    activation : str
        The hidden activation, a key of :data:`sklegc.network.ACTIVATIONS`.

    Raises
    ------
    TypeError
        If ``module`` is not a default MLP (Linear, activation, ..., Linear, with one of the
        activations of :data:`sklegc.network.ACTIVATIONS`).

    Examples
    --------
    >>> from sklegc.network import MLP
    >>> W, b, act = mlp_arrays(MLP(4, 3, hidden_layer_sizes=(5,), activation="tanh"))
    >>> [w.shape for w in W], act
    ([(5, 4), (3, 5)], 'tanh')
    """
    linears, activation = _mlp_structure(module)
    weights = [effective_weight(layer).cpu().double().numpy() for layer in linears]
    biases = [layer.bias.detach().cpu().double().numpy() for layer in linears]
    return weights, biases, activation


def _mlp_structure(module):
    names = {cls: name for name, cls in ACTIVATIONS.items()}
    problem = None
    if not isinstance(module, MLP):
        problem = f"it is a {type(module).__name__}, not sklegc.network.MLP"
    else:
        children = list(module.layers)
        linears, acts = children[0::2], children[1::2]
        kinds = {type(a) for a in acts}
        if not all(type(m) is nn.Linear and m.bias is not None for m in linears):
            problem = "its layers are not all nn.Linear with a bias"
        elif len(linears) != len(acts) + 1 or len(kinds) > 1 or not kinds <= set(names):
            problem = ("its layers do not alternate nn.Linear and one of the activations "
                       f"{sorted(ACTIVATIONS)}")
    if problem:
        raise TypeError(
            f"the module is not the default MLP: {problem}. Only the default network "
            "(module=None) maps onto scikit-learn's MLPClassifier and ONNX; a custom module "
            "can still be compressed (compress_module with example_inputs) and exported with "
            "torch.onnx.export."
        )
    activation = names[type(acts[0])] if acts else "identity"
    return linears, activation


def compress_module(module, example_inputs=None):
    """Compress a pruned network: masks permanent, dead hidden units removed, zeros packed.

    Parameters
    ----------
    module : torch.nn.Module
        The network, pruned with :mod:`torch.nn.utils.prune` (or not). It is not modified.
    example_inputs : torch.Tensor or None, default=None
        An input batch, e.g. ``torch.zeros(1, n_features)``, needed for a module other than
        the default MLP: Torch-Pruning traces the module with it, and random inputs of its
        shape check that the compressed module computes the same outputs.

    Returns
    -------
    compression : Compression
        The compressed module and the per-layer report.

    Raises
    ------
    CompressionError
        If a custom module cannot be traced by Torch-Pruning, ``example_inputs`` is missing
        for it, or the compressed module would not compute the same outputs.

    Warns
    -----
    CompressionWarning
        When a layer of a custom module has dead units that cannot be removed exactly (for
        example units coupled by a residual sum); they stay, with their zeros packed.

    Notes
    -----
    The default MLP is compressed by :func:`remove_dead_units`; the predictions then differ
    from the masked network's by float32 rounding only. Zero weights that remain in the
    kept units are stored packed when that is smaller (:class:`PackedParameter`); the layers
    compute densely. A compressed module has no pruning masks: training it further would
    move its zero weights, so compress after training.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from torch.nn.utils import prune
    >>> from sklegc.network import MLP
    >>> _ = torch.manual_seed(0)
    >>> net = MLP(4, 3, hidden_layer_sizes=(6,))
    >>> keep = torch.ones(6, 4)
    >>> keep[:2] = 0  # units 0 and 1 lose every input: constant, folded into the output bias
    >>> _ = prune.custom_from_mask(net.layers[0], "weight", keep)
    >>> result = compress_module(net)
    >>> result.units_removed, result.module.layers[0].weight.shape
    ({'layers.0': 2, 'layers.2': 0}, torch.Size([4, 4]))
    >>> X = torch.randn(5, 4)
    >>> bool(torch.allclose(net(X), result.module(X), atol=1e-6))
    True
    """
    try:
        linears, activation = _mlp_structure(module)
    except TypeError:
        linears = None
    if linears is None:
        return _compress_custom(module, example_inputs)
    names = [name for name, m in module.named_modules() if m in linears]
    before = [_layer_stats(layer) for layer in linears]
    weights, biases, kept = remove_dead_units(*mlp_arrays(module)[:2], activation)
    compressed = copy_module(module)
    for position, layer, w, b in zip(range(0, len(module.layers), 2), linears, weights, biases):
        like = layer.bias
        new = torch.nn.utils.skip_init(nn.Linear, w.shape[1], w.shape[0], device=like.device,
                                       dtype=like.dtype)
        with torch.no_grad():
            new.weight.copy_(torch.from_numpy(w))
            new.bias.copy_(torch.from_numpy(b))
        compressed.layers[position] = _pack_if_it_pays(new)
    removed = {name: int(layer.out_features - len(k))
               for name, layer, k in zip(names, linears, kept)}
    removed[names[-1]] = 0
    after = [_layer_stats(compressed.layers[p]) for p in range(0, len(module.layers), 2)]
    return Compression(compressed, _report(names, before, after, removed), removed)


def _layer_stats(layer):
    weight = effective_weight(layer)
    return {"shape": "x".join(map(str, weight.shape)),
            "zero": 100.0 * float((weight == 0).float().mean()) if weight.numel() else 0.0,
            "storage": "packed" if isinstance(layer.weight, PackedParameter) else "dense",
            "bytes": stored_nbytes(layer)}


def _report(names, before, after, removed):
    return [{"layer": name, "shape before": b["shape"], "shape after": a["shape"],
             "units removed": removed[name], "% zero before": b["zero"],
             "% zero after": a["zero"], "storage": a["storage"],
             "bytes before": b["bytes"], "bytes after": a["bytes"]}
            for name, b, a in zip(names, before, after)]


# -- custom modules (Torch-Pruning) ---------------------------------------------------------

def _make_masks_permanent(module):
    for sub in module.modules():
        for hook in list(sub._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(sub, hook._tensor_name)


def _probe(example_inputs, n=16):
    # A private generator: the check must not move torch's global random state.
    generator = torch.Generator().manual_seed(0)
    shape = (n, *example_inputs.shape[1:])
    return torch.randn(shape, generator=generator, dtype=example_inputs.dtype).to(
        example_inputs.device)


def _consumers(graph, group, names):
    """The consumer layers of a group's channels, or why the group is not a plain hidden layer."""
    from torch_pruning.ops import OPTYPE

    consumers = []
    for item in group[1:]:
        target = item.dep.target
        if target.type in (OPTYPE.ELEMENTWISE, OPTYPE.RESHAPE):
            continue
        handler = item.dep.handler
        if isinstance(target.module, nn.Linear) and graph.is_in_channel_pruning_fn(handler):
            consumers.append((target.module, list(item.idxs), list(item.root_idxs)))
        elif graph.is_out_channel_pruning_fn(handler):
            return None, (f"its units are coupled with {names.get(target.module, 'a layer')} "
                          "(e.g. a residual sum or a product of two layers)")
        else:
            return None, f"its units pass through a {target.type.name.lower()} operation"
    return consumers, None


def _consumer_inputs(module, consumers, probe):
    captured = {}
    handles = [layer.register_forward_pre_hook(
        lambda m, args, key=id(layer): captured.setdefault(key, args[0].detach()))
        for layer, _, _ in consumers]
    try:
        with torch.no_grad():
            module(probe)
    finally:
        for handle in handles:
            handle.remove()
    return captured


def _dead_channels(module, layer, consumers, probe):
    """Remove-ready channels of ``layer``: unused, or constant with their constant folded."""
    links = {}
    for consumer, idxs, roots in consumers:
        for idx, root in zip(idxs, roots):
            links.setdefault(root, []).append((consumer, idx))
    inputs = _consumer_inputs(module, consumers, probe)
    dead = []
    with torch.no_grad():
        for unit in range(layer.out_features):
            targets = links.get(unit, [])
            if not targets:
                continue
            if all(not consumer.weight[:, idx].any() for consumer, idx in targets):
                dead.append(unit)
                continue
            if layer.weight[unit].any():
                continue
            values = [inputs[id(consumer)][..., idx] for consumer, idx in targets]
            if not all(bool((v == v.reshape(-1)[0]).all()) for v in values):
                continue
            contributions = [consumer.weight[:, idx] * v.reshape(-1)[0]
                             for (consumer, idx), v in zip(targets, values)]
            if any(consumer.bias is None and c.any()
                   for (consumer, _), c in zip(targets, contributions)):
                continue
            for (consumer, idx), c in zip(targets, contributions):
                if consumer.bias is not None:
                    consumer.bias += c
                consumer.weight[:, idx] = 0.0
            dead.append(unit)
        if dead and len(dead) == layer.out_features:
            # Torch-Pruning keeps at least one unit per layer: leave a neutral one.
            neutral = dead.pop(0)
            layer.weight[neutral] = 0.0
            if layer.bias is not None:
                layer.bias[neutral] = 0.0
    return dead


def _compress_custom(module, example_inputs):
    if example_inputs is None:
        raise CompressionError(
            f"compressing a {type(module).__name__} (not the default MLP) needs "
            "example_inputs, an input batch such as torch.zeros(1, n_features), for "
            "Torch-Pruning to trace it."
        )
    try:
        import torch_pruning as tp
    except ImportError as exc:
        raise ImportError(
            f"compressing a {type(module).__name__} (not the default MLP) removes its units "
            "with Torch-Pruning, which is not installed: pip install torch-pruning (or "
            "pip install 'sklegc[export]')."
        ) from exc

    compressed = copy_module(module).eval()
    _make_masks_permanent(compressed)
    linears = [(name, m) for name, m in compressed.named_modules() if isinstance(m, nn.Linear)]
    names = [name for name, _ in linears]
    before = [_layer_stats(layer) for layer in module.modules() if isinstance(layer, nn.Linear)]
    probe = _probe(example_inputs)
    try:
        with torch.no_grad():
            reference = compressed(probe)
        with torch.enable_grad():
            graph = tp.DependencyGraph().build_dependency(
                compressed, example_inputs=example_inputs, verbose=False)
    except Exception as exc:  # tracing can fail in any way a forward pass can
        raise CompressionError(
            f"Torch-Pruning could not trace {type(module).__name__} ({type(exc).__name__}: "
            f"{exc}), so its dead units cannot be removed. The pruned model still works as "
            "it is: its masked weights predict the same, and pruning_report() and flops_ "
            "count the kept weights."
        ) from exc
    unreached = [name for name, layer in linears if layer not in graph.module2node]
    if unreached:
        raise CompressionError(
            f"Torch-Pruning's trace of {type(module).__name__} did not reach its linear "
            f"layer(s) {unreached} (does its forward pass skip them, or run without "
            "autograd, e.g. under torch.no_grad?), so its dead units cannot be removed. The "
            "pruned model still works as it is: its masked weights predict the same, and "
            "pruning_report() and flops_ count the kept weights."
        )
    skipped = {}
    module_names = {layer: name for name, layer in linears}
    removed = dict.fromkeys(names, 0)
    changed = True
    while changed:
        changed = False
        for name, layer in linears:
            group = graph.get_pruning_group(layer, tp.prune_linear_out_channels,
                                            list(range(layer.out_features)))
            consumers, problem = _consumers(graph, group, module_names)
            if problem is not None:
                if not (effective_weight(layer).any(dim=1)).all():
                    skipped[name] = problem
                continue
            if not consumers:  # an output layer: its units are the module's outputs
                continue
            dead = _dead_channels(compressed, layer, consumers, probe)
            if dead:
                graph.get_pruning_group(layer, tp.prune_linear_out_channels, dead).prune()
                removed[name] += len(dead)
                changed = True
    with torch.no_grad():
        outputs = compressed(probe)
    if outputs.shape != reference.shape or not torch.allclose(outputs, reference, rtol=1e-5,
                                                              atol=1e-6):
        raise CompressionError(
            f"removing dead units from {type(module).__name__} changed its outputs on test "
            "inputs: its structure is beyond what sklegc checks (elementwise operations "
            "between linear layers). The pruned model still works as it is, with its masked "
            "weights."
        )
    if skipped:
        warnings.warn(
            "dead units kept (their zeros are still packed) in "
            + "; ".join(f"{name}: {why}" for name, why in skipped.items()) + ".",
            CompressionWarning,
            stacklevel=3,
        )
    for _, layer in linears:
        _pack_if_it_pays(layer)
    after = [_layer_stats(layer) for _, layer in linears]
    return Compression(compressed, _report(names, before, after, removed), removed)
