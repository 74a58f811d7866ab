import copy
import io
import pickle
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import false_discovery_control
from torch import nn
from torch.nn.utils import prune

from conftest import FAST
from sklegc import LEGCPrunedClassifier
from sklegc.compress import (
    CompressionError,
    CompressionWarning,
    PackedBoolArray,
    PackedParameter,
    compress_module,
    copy_module,
    effective_weight,
    remove_dead_units,
)
from sklegc.masks import (
    apply_masks,
    baseline_keep,
    noncausal_mask,
    noncausal_units,
    unit_baseline_keep,
    unit_pvalues,
    units_to_weights,
)
from sklegc.network import ACTIVATIONS, MLP, prunable_layers, scores_to_proba
from sklegc.trajectory import WeightTracer

TOL = 1e-6
SMALL = dict(hidden_layer_sizes=(8, 6), lr=0.02, max_epochs=2, batch_size=8, random_state=0)


def proba(module, X):
    module.eval()
    with torch.no_grad():
        return scores_to_proba(module(torch.as_tensor(X))).double().numpy()


def problem(n_classes, n=160, n_features=7, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    score = X[:, 0] + 0.5 * X[:, 1] - 0.3 * X[:, 2]
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return X, y


def hand_masked_mlp(activation, n_outputs, seed=0):
    """A 7-6-5-n MLP whose masks kill units in every way compression must handle."""
    torch.manual_seed(seed)
    net = MLP(7, n_outputs, hidden_layer_sizes=(6, 5), activation=activation)
    with torch.no_grad():
        net.layers[0].bias[0] = 0.7  # relu(0.7) != 0: the folded constant matters
    keep = [np.ones((6, 7), bool), np.ones((5, 6), bool), np.ones((n_outputs, 5), bool)]
    keep[0][0] = False            # unit 0 of layer 0: no input -> constant, folded
    keep[1][:, 1] = False         # unit 1 of layer 0: no output -> removed
    keep[1][2] = False
    keep[1][2, 0] = True          # unit 2 of layer 1 reads only the constant unit -> constant
    keep[2][:, 4] = False         # unit 4 of layer 1: no output -> removed
    keep[0][3, ::2] = False       # ordinary pruned weights in a kept unit
    apply_masks(prunable_layers(net), np.concatenate([k.ravel() for k in keep]))
    return net


# -- remove_dead_units / compress_module on the default MLP ----------------------------------

@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_dead_units_are_removed_and_predictions_unchanged(activation, n_outputs):
    net = hand_masked_mlp(activation, n_outputs)
    X = np.random.RandomState(1).normal(size=(50, 7)).astype(np.float32)
    result = compress_module(net)
    assert result.units_removed == {"layers.0": 2, "layers.2": 2, "layers.4": 0}
    assert result.n_units_removed == 4
    shapes = [tuple(layer.weight.shape) for _, layer in prunable_layers(result.module)]
    assert shapes == [(4, 7), (3, 4), (n_outputs, 3)]
    assert np.abs(proba(result.module, X) - proba(net, X)).max() <= TOL
    assert [row["shape after"] for row in result.layers] == ["4x7", "3x4", f"{n_outputs}x3"]
    # The input module is left as it was.
    assert net.layers[0].weight_mask.shape == (6, 7)


def test_chained_removal_reaches_a_fixed_point():
    # Layer 1's units all read only layer 0's unit 0, which has no input: everything after
    # layer 0 becomes a constant that ends in the output bias.
    rng = np.random.RandomState(0)
    W = [rng.normal(size=(3, 4)), rng.normal(size=(2, 3)), rng.normal(size=(2, 2))]
    b = [rng.normal(size=3), rng.normal(size=2), rng.normal(size=2)]
    W[0][0] = 0.0
    W[1][:, 1:] = 0.0
    W2, b2, kept = remove_dead_units(W, b, "tanh")
    X = rng.normal(size=(5, 4))

    def forward(W, b):
        h = X
        for w, v in zip(W[:-1], b[:-1]):
            h = np.tanh(h @ w.T + v)
        return h @ W[-1].T + b[-1]

    np.testing.assert_allclose(forward(W2, b2), forward(W, b), atol=1e-12)
    assert [w.shape for w in W2] == [(1, 4), (1, 1), (2, 1)]
    assert not W2[1].any() and not W2[2].any()  # the neutral units pass nothing on
    assert remove_dead_units(W2, b2, "tanh")[2] == [np.array([0]), np.array([0])]


def test_remove_dead_units_rejects_bad_input():
    with pytest.raises(ValueError, match="chain"):
        remove_dead_units([np.ones((3, 4)), np.ones((2, 2))], [np.ones(3), np.ones(2)], "relu")
    with pytest.raises(ValueError, match="activation='softplus'"):
        remove_dead_units([np.ones((3, 4))], [np.ones(3)], "softplus")


def test_effective_weight_is_fresh_after_an_optimizer_step():
    layer = prune.l1_unstructured(nn.Linear(4, 3), "weight", amount=5)
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    layer(torch.ones(2, 4)).sum().backward()
    optimizer.step()  # layer.weight still holds the value of the forward pass before the step
    expected = layer.weight_orig.detach() * layer.weight_mask
    assert torch.equal(effective_weight(layer), expected)
    assert not torch.equal(layer.weight.detach(), expected)


@pytest.mark.filterwarnings("ignore::sklegc.estimator.PruningWarning")  # heavy pruning, on purpose
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("granularity", ["weight", "neuron"])
def test_compressed_estimator_predicts_the_same(activation, n_classes, granularity):
    X, y = problem(n_classes)
    clf = LEGCPrunedClassifier(**SMALL, activation=activation, pruning="magnitude",
                               granularity=granularity, fine_tune="continue",
                               amount=0.7 if granularity == "weight" else 0.5).fit(X, y)
    before = clf.predict_proba(X)
    layers = prunable_layers(clf.net_.module_)
    kept = sum(int(effective_weight(layer).count_nonzero()) for _, layer in layers)
    assert clf.compress() is clf
    assert np.abs(clf.predict_proba(X) - before).max() <= TOL
    assert np.array_equal(clf.predict(X), clf.classes_[before.argmax(axis=1)])
    after = prunable_layers(clf.net_.module_)
    assert sum(int(layer.weight.count_nonzero()) for _, layer in after) <= kept
    assert [c.shape[1] for c in clf.coefs_[:-1]] == [layer.out_features for _, layer in after[:-1]]
    if granularity == "neuron":
        # Half of each hidden layer (8 and 6 units) is pruned and removed.
        assert clf.n_units_removed_ == 4 + 3
        assert [layer.out_features for _, layer in after[:-1]] == [4, 3]


@pytest.mark.filterwarnings("ignore::sklegc.estimator.PruningWarning")
def test_magnitude_pruned_fit_compresses_and_pickles_smaller():
    X, y = problem(3, n_features=30)
    clf = LEGCPrunedClassifier(**{**SMALL, "hidden_layer_sizes": (40,)}, pruning="magnitude",
                               amount=0.8, fine_tune="continue").fit(X, y)
    before = clf.predict_proba(X)
    masked_bytes = len(pickle.dumps(clf))
    masked_module_bytes = len(pickle.dumps(clf.net_.module_))
    clf.compress()
    data = pickle.dumps(clf)
    assert len(data) < masked_bytes
    assert len(pickle.dumps(clf.net_.module_)) < masked_module_bytes / 3
    loaded = pickle.loads(data)
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert np.abs(loaded.predict_proba(X) - before).max() <= TOL
    assert all(isinstance(layer.weight, PackedParameter)
               for _, layer in prunable_layers(loaded.net_.module_))


# -- PackedParameter -------------------------------------------------------------------------

def sparse_linear(n_in=200, n_out=100, density=0.1, seed=0):
    torch.manual_seed(seed)
    layer = nn.Linear(n_in, n_out)
    with torch.no_grad():
        layer.weight.mul_((torch.rand(n_out, n_in) < density).float())
    layer.weight = PackedParameter(layer.weight.detach())
    return layer


def test_packed_parameter_round_trips_through_pickle_torch_save_and_deepcopy():
    layer = sparse_linear()
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    dense = nn.Linear(200, 100)
    # The optimizer's reference to the weight is packed too, and stored once.
    assert len(pickle.dumps((layer, optimizer))) < len(pickle.dumps(dense)) / 5
    buffer = io.BytesIO()
    torch.save(layer, buffer)
    buffer.seek(0)
    for copied in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer),
                   torch.load(buffer, weights_only=False)):
        assert type(copied.weight) is PackedParameter
        assert [name for name, _ in copied.named_parameters()] == ["weight", "bias"]
        assert torch.equal(copied.weight, layer.weight) and torch.equal(copied.bias, layer.bias)
        assert copied.weight.requires_grad
    assert type(layer.state_dict()["weight"]) is torch.Tensor
    X = torch.randn(3, 200)
    torch.testing.assert_close(layer(X), nn.functional.linear(X, layer.weight.detach(),
                                                               layer.bias.detach()))


def test_dense_layers_stay_plain_linear():
    torch.manual_seed(0)
    net = MLP(5, 2, hidden_layer_sizes=(4,))
    result = compress_module(net)
    assert all(type(layer.weight) is nn.Parameter for _, layer in prunable_layers(result.module))
    assert [row["storage"] for row in result.layers] == ["dense", "dense"]
    assert [row["bytes after"] for row in result.layers] == [(20 + 4) * 4, (8 + 2) * 4]


def test_report_counts_bytes_and_zeros():
    net = hand_masked_mlp("sigmoid", 3)
    rows = compress_module(net).layers
    first = rows[0]
    # weight_orig and weight_mask (6x7 float32 each) and the bias.
    assert first["bytes before"] == (2 * 42 + 6) * 4
    assert first["% zero before"] == pytest.approx(100 * 11 / 42)
    # Kept 4x7 with 4 pruned weights in unit 3: 24 values, 28 bits, 4 biases.
    assert first["shape after"] == "4x7" and first["storage"] == "packed"
    assert first["bytes after"] == 24 * 4 + 4 + 4 * 4
    assert first["% zero after"] == pytest.approx(100 * 4 / 28)


def test_copy_module_copies_a_module_pruned_mid_training():
    layer = prune.random_unstructured(nn.Linear(3, 2), "weight", amount=2)
    layer(torch.ones(1, 3)).sum().backward()  # weight is now a non-leaf tensor
    with pytest.raises(RuntimeError):
        copy.deepcopy(layer)
    copied = copy_module(layer)
    assert torch.equal(copied.weight_mask, layer.weight_mask)
    assert torch.equal(copied(torch.ones(1, 3)), layer(torch.ones(1, 3)))


# -- custom modules (Torch-Pruning) ----------------------------------------------------------

class Funnel(nn.Module):
    """Not the default MLP: named layers and functional activations."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(7, 6)
        self.mid = nn.Linear(6, 5)
        self.out = nn.Linear(5, 3)

    def forward(self, X):
        return self.out(torch.tanh(self.mid(torch.sigmoid(self.inp(X)))))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(7, 6)
        self.b = nn.Linear(6, 6)
        self.out = nn.Linear(6, 3)

    def forward(self, X):
        h = torch.relu(self.a(X))
        return self.out(h + torch.relu(self.b(h)))


class Frozen(nn.Module):
    """A forward pass without autograd, which Torch-Pruning cannot trace."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(7, 4)
        self.out = nn.Linear(4, 3)

    def forward(self, X):
        with torch.no_grad():
            return self.out(torch.relu(self.a(X)))


def outputs(module, X):
    module.eval()
    with torch.no_grad():
        return module(X)


def test_custom_module_is_compressed_with_torch_pruning():
    torch.manual_seed(0)
    net = Funnel()
    keep = torch.ones(6, 7)
    keep[1] = 0                        # inp unit 1: constant sigmoid(bias), folded
    prune.custom_from_mask(net.inp, "weight", keep)
    keep = torch.ones(5, 6)
    keep[:, 4] = 0                     # inp unit 4: no output
    keep[0] = 0                        # mid unit 0: constant tanh(bias), folded
    prune.custom_from_mask(net.mid, "weight", keep)
    X = torch.randn(40, 7)
    result = compress_module(net, example_inputs=torch.zeros(1, 7))
    assert result.units_removed == {"inp": 2, "mid": 1, "out": 0}
    assert result.module.inp.weight.shape == (4, 7) and result.module.mid.weight.shape == (4, 4)
    torch.testing.assert_close(outputs(result.module, X), outputs(net, X), atol=1e-6, rtol=0)
    assert not prune.is_pruned(result.module)


def test_custom_module_with_coupled_units_keeps_them_and_says_why():
    torch.manual_seed(0)
    net = Residual()
    keep = torch.ones(6, 7)
    keep[2] = 0
    prune.custom_from_mask(net.a, "weight", keep)
    with pytest.warns(CompressionWarning, match="a: its units are coupled with b"):
        result = compress_module(net, example_inputs=torch.zeros(1, 7))
    X = torch.randn(40, 7)
    torch.testing.assert_close(outputs(result.module, X), outputs(net, X), atol=1e-6, rtol=0)
    assert result.n_units_removed == 0


def test_untraceable_custom_module_gets_a_clear_error():
    with pytest.raises(CompressionError,
                       match=r"did not reach its linear layer\(s\) \['a'\].*masked weights"):
        compress_module(Frozen(), example_inputs=torch.zeros(1, 7))
    with pytest.raises(CompressionError, match="could not trace Funnel.*masked weights"):
        compress_module(Funnel(), example_inputs=torch.zeros(1, 5))
    with pytest.raises(CompressionError, match="needs example_inputs"):
        compress_module(Funnel())


# -- neuron-level pruning decisions ----------------------------------------------------------

def test_unit_pvalues_is_the_simes_combination():
    rng = np.random.RandomState(0)
    shapes = [(4, 3), (5, 4), (2, 5)]
    p = rng.uniform(size=sum(a * b for a, b in shapes)) ** 2
    unit_p = unit_pvalues(p, shapes)
    W = [block.reshape(s) for block, s in
         zip(np.split(p, np.cumsum([a * b for a, b in shapes])[:-1]), shapes)]
    expected = [false_discovery_control(np.r_[W[0][k], W[1][:, k]]).min() for k in range(4)]
    expected += [false_discovery_control(np.r_[W[1][k], W[2][:, k]]).min() for k in range(5)]
    np.testing.assert_allclose(unit_p, expected)


def test_unit_pvalues_skip_untestable_weights():
    # A 1-1-1 chain: the unit has one incoming and one outgoing weight.
    assert unit_pvalues(np.array([0.03, np.nan]), [(1, 1), (1, 1)])[0] == 0.03
    assert np.isnan(unit_pvalues(np.array([np.nan, np.nan]), [(1, 1), (1, 1)])[0])


def test_noncausal_units_count_units_and_prune_rows_and_columns():
    rng = np.random.RandomState(1)
    shapes = [(4, 3), (5, 4), (2, 5)]
    n = sum(a * b for a, b in shapes)
    p = rng.uniform(size=n)
    untestable = np.zeros(n, bool)
    unit_p = unit_pvalues(p, shapes)
    for kwargs in ({}, {"amount": 3}, {"amount": 0.5}, {"max_sparsity": 0.2},
                   {"correction": "bonferroni"}):
        pruned = noncausal_units(p, untestable, shapes, **kwargs)
        units = noncausal_mask(unit_p, np.isnan(unit_p), **kwargs)
        np.testing.assert_array_equal(pruned, units_to_weights(units, shapes))
    assert noncausal_mask(unit_p, np.isnan(unit_p), amount=3).sum() == 3
    pruned = units_to_weights(np.array([1, 0, 0, 0, 0, 0, 0, 0, 1], bool), shapes)
    blocks = np.split(pruned, np.cumsum([a * b for a, b in shapes])[:-1])
    assert blocks[0].reshape(4, 3)[0].all() and blocks[1].reshape(5, 4)[:, 0].all()
    assert blocks[1].reshape(5, 4)[4].all() and blocks[2].reshape(2, 5)[:, 4].all()
    assert pruned.sum() == 3 + 5 + 4 + 2 - 1  # weight (4, 0) of layer 1 is in both units


def test_unit_decisions_need_a_chain():
    with pytest.raises(ValueError, match="chain of linear layers"):
        unit_pvalues(np.zeros(12 + 6), [(4, 3), (2, 3)])
    with pytest.raises(ValueError, match="got 5 p-values"):
        unit_pvalues(np.zeros(5), [(2, 2), (1, 2)])


def test_magnitude_units_are_the_rows_of_smallest_l1_norm():
    torch.manual_seed(0)
    net = MLP(6, 3, hidden_layer_sizes=(10, 8))
    norms = [layer.weight.detach().abs().sum(dim=1).numpy()
             for layer in (net.layers[0], net.layers[2])]
    masks = apply_masks(prunable_layers(net),
                        unit_baseline_keep(prunable_layers(net), "magnitude", 0.3, 0))
    for name, norm, n in (("layers.0", norms[0], 3), ("layers.2", norms[1], 2)):
        pruned = ~masks[name].any(axis=1)
        np.testing.assert_array_equal(np.flatnonzero(pruned), np.sort(np.argsort(norm)[:n]))
    # A pruned unit's outgoing weights go as well; output units are never pruned.
    np.testing.assert_array_equal(~masks["layers.2"].any(axis=0), ~masks["layers.0"].any(axis=1))
    np.testing.assert_array_equal(~masks["layers.4"].any(axis=0), ~masks["layers.2"].any(axis=1))
    assert masks["layers.4"].any(axis=1).all()


def test_random_units_are_reproducible_and_leave_torch_rng_alone():
    def units(seed):
        torch.manual_seed(0)
        net = MLP(6, 3, hidden_layer_sizes=(10, 8))
        masks = apply_masks(prunable_layers(net),
                            unit_baseline_keep(prunable_layers(net), "random", 9, seed))
        return np.r_[~masks["layers.0"].any(axis=1), ~masks["layers.2"].any(axis=1)]

    torch.manual_seed(5)
    state = torch.get_rng_state()
    a, b, c = units(1), units(1), units(2)
    torch.manual_seed(5)
    assert torch.equal(torch.get_rng_state(), state)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a[:10].sum() == 5 and a[10:].sum() == 4  # 9 units split 10:8 by width


def test_unit_baseline_rejects_bad_amounts():
    net = MLP(6, 3, hidden_layer_sizes=(10, 8))
    with pytest.raises(ValueError, match="amount=19 hidden units"):
        unit_baseline_keep(prunable_layers(net), "magnitude", 19, generator_seed=0)
    with pytest.raises(ValueError, match="method='l2'"):
        unit_baseline_keep(prunable_layers(net), "l2", 0.5, generator_seed=0)


def test_neuron_masks_compress_to_a_smaller_network():
    torch.manual_seed(0)
    net = MLP(6, 3, hidden_layer_sizes=(10, 8), activation="relu")
    shapes = [tuple(layer.weight.shape) for _, layer in prunable_layers(net)]
    p = np.random.RandomState(0).uniform(size=sum(a * b for a, b in shapes))
    pruned = noncausal_units(p, np.zeros(p.size, bool), shapes, amount=7)
    apply_masks(prunable_layers(net), ~pruned)
    X = np.random.RandomState(2).normal(size=(30, 6)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = compress_module(net)
    assert result.n_units_removed == 7
    assert np.abs(proba(result.module, X) - proba(net, X)).max() <= TOL


# -- LEGCPrunedClassifier: granularity and compress() ----------------------------------------

def pruned_units(clf):
    """Per hidden unit, whether the mask prunes it as a whole; checks that it prunes nothing else."""
    masks = list(clf.mask_.values())
    units = np.concatenate([~incoming.any(axis=1) for incoming in masks[:-1]])
    shapes = [shape for _, shape in clf.weight_layers_]
    np.testing.assert_array_equal(clf.pruned_, units_to_weights(units, shapes))
    return units


def test_legc_neuron_granularity_prunes_the_least_causal_units(small_problem):
    X, y = small_problem
    clf = LEGCPrunedClassifier(**{**FAST, "hidden_layer_sizes": (6,)}, granularity="neuron",
                               amount=2).fit(X, y)
    shapes = [shape for _, shape in clf.weight_layers_]
    p = clf.granger_pvalues_
    np.testing.assert_array_equal(clf.pruned_, noncausal_units(p, np.isnan(p), shapes, amount=2))
    units = pruned_units(clf)
    assert units.sum() == 2
    unit_p = unit_pvalues(p, shapes)
    assert np.nanmin(unit_p[units]) >= np.nanmax(unit_p[~units])
    before = clf.predict_proba(X)
    clf.compress()
    assert clf.n_units_removed_ == 2 and clf.coefs_[0].shape == (5, 4)
    assert np.abs(clf.predict_proba(X) - before).max() <= TOL


@pytest.mark.filterwarnings("ignore::sklegc.estimator.PruningWarning")
@pytest.mark.parametrize("pruning", ["magnitude", "random"])
def test_baseline_neuron_granularity_prunes_whole_units(pruning):
    X, y = problem(3)
    clf = LEGCPrunedClassifier(**SMALL, pruning=pruning, granularity="neuron", amount=5).fit(X, y)
    units = pruned_units(clf)
    # 5 units split 8:6 by width (largest remainders): 3 in the first layer, 2 in the second.
    assert [units[:8].sum(), units[8:].sum()] == [3, 2]


class Branches(nn.Module):
    """Two layers reading the input side by side: not a chain, so hidden units are undefined."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.a = nn.Linear(n_features, 4)
        self.b = nn.Linear(n_features, 3)
        self.out = nn.Linear(7, n_outputs)

    def forward(self, X):
        return self.out(torch.cat([torch.relu(self.a(X)), torch.relu(self.b(X))], dim=1))


def test_neuron_granularity_is_refused_before_training(small_problem):
    X, y = small_problem
    clf = LEGCPrunedClassifier(**FAST, module=Branches, granularity="neuron")
    with pytest.raises(ValueError, match="granularity='weight' with other modules"):
        clf.fit(X, y)
    assert not hasattr(clf, "net_") and not hasattr(clf, "dense_accuracy_")
    # Without pruning, any module trains.
    LEGCPrunedClassifier(**{**FAST, "pruning": "none"}, module=Branches,
                         granularity="neuron").fit(X, y)
    with pytest.raises(ValueError, match="amount=5 counts hidden units.*has 4"):
        LEGCPrunedClassifier(**FAST, granularity="neuron", amount=5).fit(X, y)
    with pytest.raises(ValueError, match="granularity='neuron' prunes hidden units, but the "
                                         "network has none"):
        LEGCPrunedClassifier(**{**FAST, "hidden_layer_sizes": ()}, granularity="neuron").fit(X, y)
    with pytest.raises(ValueError, match="granularity"):
        LEGCPrunedClassifier(**FAST, granularity="unit").fit(X, y)


def test_compress_keeps_what_deployment_needs_and_drops_the_rest(small_problem):
    X, y = small_problem
    clf = LEGCPrunedClassifier(**{**FAST, "hidden_layer_sizes": (8,)}, granularity="neuron",
                               amount=4).fit(X, y)
    before, masks, pruned = clf.predict_proba(X), copy.deepcopy(clf.mask_), clf.pruned_.copy()
    untestable = int(np.isnan(clf.granger_pvalues_).sum())
    size = len(pickle.dumps(clf))
    curve = list(clf.loss_curve_)
    assert len(clf.net_.history) == len(curve) > 0
    clf.compress()
    dropped = ["initial_state_", "lyapunov_", "granger_result_", "granger_pvalues_",
               "pruning_order_", "saliency_"]
    assert all(getattr(clf, name) is None for name in dropped)
    assert clf.compression_["dropped"] == dropped + ["net_.history"]
    assert len(clf.net_.history) == 0 and clf.loss_curve_ == curve and clf.n_iter_ == len(curve)
    assert not any(isinstance(cb, WeightTracer) for _, cb in clf.net_.callbacks_)
    data = pickle.dumps(clf)
    assert len(data) < size / 4
    loaded = pickle.loads(data)
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert np.abs(loaded.predict_proba(X) - before).max() <= TOL
    assert loaded.score(X, y) == clf.score(X, y)
    for name in masks:
        assert isinstance(loaded.mask_[name], PackedBoolArray)
        np.testing.assert_array_equal(loaded.mask_[name], masks[name])
    np.testing.assert_array_equal(loaded.pruned_, pruned)
    report = loaded.pruning_report(as_frame=True)
    assert list(report["units removed"]) == [4, 0, 4]
    assert list(report["shape after"])[:2] == ["4x5", "1x4"]
    assert report["bytes after"].iloc[-1] < report["bytes before"].iloc[-1]
    text = loaded.pruning_report()
    assert f"untestable weights: {untestable}" in text
    assert "compressed: 4 hidden units removed" in text
    assert clf.compress() is clf and clf.compression_["n_untestable"] == untestable
    mlp = loaded.to_mlpclassifier()
    assert mlp.hidden_layer_sizes == (4,)
    assert np.abs(mlp.predict_proba(X) - before).max() <= TOL


def test_a_compressed_model_refuses_to_train_and_refits_from_scratch(small_problem):
    X, y = small_problem
    clf = LEGCPrunedClassifier(**SMALL, pruning="magnitude", amount=0.5).fit(X, y).compress()
    with pytest.raises(ValueError, match="partial_fit cannot train a compressed model.*"
                                         "to_mlpclassifier"):
        clf.partial_fit(X, y)
    clf.set_params(warm_start=True)
    with pytest.raises(ValueError, match="fit with warm_start=True cannot train a compressed"):
        clf.fit(X, y)
    clf.set_params(warm_start=False).fit(X, y)
    assert not hasattr(clf, "compression_") and not hasattr(clf, "n_units_removed_")
    assert clf.initial_state_ is not None
    clf.partial_fit(X, y)


def test_custom_module_estimator_compresses_or_says_why(small_problem):
    X, y = small_problem
    clf = LEGCPrunedClassifier(**SMALL, module=Branches, pruning="magnitude", amount=0.5)
    clf.fit(X, y)
    before = clf.predict_proba(X)
    clf.compress()
    assert np.abs(clf.predict_proba(X) - before).max() <= TOL
    with pytest.raises(TypeError, match="not the default MLP: it is a Branches"):
        clf.to_mlpclassifier()

    frozen = LEGCPrunedClassifier(**{**SMALL, "pruning": "none"}, module=FrozenFive).fit(X, y)
    with pytest.raises(CompressionError, match="did not reach"):
        frozen.compress()
    assert not hasattr(frozen, "compression_") and frozen.initial_state_ is not None
    frozen.predict_proba(X)


class FrozenFive(nn.Module):
    """Trains, but its forward pass runs its first layer without autograd."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.a = nn.Linear(n_features, 4)
        self.out = nn.Linear(4, n_outputs)

    def forward(self, X):
        with torch.no_grad():
            h = torch.relu(self.a(X))
        return self.out(h)


def test_compressed_pickle_does_not_grow_with_the_pruned_weights(small_problem):
    # An index per pruned weight (pruning_order_) is decision state, not deployment state:
    # at 90% sparsity the compressed model pickles smaller than the dense one compressed.
    X, y = small_problem
    params = dict(hidden_layer_sizes=(64,), max_epochs=3, random_state=0)
    dense = LEGCPrunedClassifier(**params, pruning="none").fit(X, y).compress()
    sparse = LEGCPrunedClassifier(**params, pruning="magnitude", amount=0.9).fit(X, y)
    assert len(sparse.pruning_order_) == sparse.n_weights_pruned_ > 0
    sparse.compress()
    assert sparse.pruning_order_ is None
    assert len(pickle.dumps(sparse)) < len(pickle.dumps(dense))
