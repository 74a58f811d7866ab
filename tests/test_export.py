import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from sklegc import LEGCPrunedClassifier
from sklegc.compress import compress_module, copy_module
from sklegc.export import install_onnx_registration, sparse_initializers, to_mlpclassifier
from sklegc.masks import apply_masks, unit_baseline_keep
from sklegc.network import ACTIVATIONS, MLP, prunable_layers, scores_to_proba

SMALL = dict(hidden_layer_sizes=(8, 6), lr=0.02, max_epochs=2, batch_size=8, random_state=0,
             pruning="magnitude", amount=0.6, fine_tune="continue")


def problem(n_classes, labels=None, n=150, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    score = X[:, 0] - 0.7 * X[:, 1]
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return X, (np.asarray(labels)[y] if labels is not None else y)


def net_proba(module, X):
    module.eval()
    with torch.no_grad():
        return scores_to_proba(module(torch.as_tensor(X))).double().numpy()


def exact_proba(module, X):
    """The network's probabilities computed in float64 (free of float32 rounding)."""
    module = copy_module(module).double().eval()
    with torch.no_grad():
        return scores_to_proba(module(torch.as_tensor(X, dtype=torch.float64))).numpy()


# -- to_mlpclassifier ------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::sklegc.estimator.PruningWarning")  # 60% pruned, on purpose
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("labels", [["no", "yes"], [3, 7, 9]])
def test_mlpclassifier_predicts_as_the_pruned_estimator(activation, labels):
    X, y = problem(len(labels), labels)
    clf = LEGCPrunedClassifier(**SMALL, activation=activation).fit(X, y)
    mlp = to_mlpclassifier(clf.net_.module_, clf.classes_, n_features_in=clf.n_features_in_)
    assert isinstance(mlp, MLPClassifier)
    # MLPClassifier computes in float64 with the network's weights: what the float32
    # network computes, without its rounding.
    assert np.abs(mlp.predict_proba(X) - exact_proba(clf.net_.module_, X)).max() <= 1e-12
    assert np.abs(mlp.predict_proba(X) - clf.predict_proba(X)).max() <= 1e-6
    np.testing.assert_array_equal(clf.to_mlpclassifier().coefs_[0], mlp.coefs_[0])
    np.testing.assert_array_equal(mlp.predict(X), clf.predict(X))
    np.testing.assert_array_equal(mlp.classes_, clf.classes_)
    expected = {"sigmoid": "logistic"}.get(activation, activation)
    assert mlp.activation == expected
    assert mlp.out_activation_ == ("logistic" if len(labels) == 2 else "softmax")
    assert mlp.n_outputs_ == (1 if len(labels) == 2 else len(labels))
    assert mlp.n_layers_ == 4 and mlp.n_features_in_ == 6
    assert mlp.score(X, y) == pytest.approx(clf.score(X, y))


def test_mlpclassifier_has_the_compressed_units_only():
    X, y = problem(3)
    clf = LEGCPrunedClassifier(**{**SMALL, "pruning": "none"}).fit(X, y)
    layers = prunable_layers(clf.net_.module_)
    apply_masks(layers, unit_baseline_keep(layers, "magnitude", 0.5, generator_seed=0))
    mlp = to_mlpclassifier(clf.net_.module_, clf.classes_)
    assert mlp.hidden_layer_sizes == (4, 3)
    assert [c.shape for c in mlp.coefs_] == [(6, 4), (4, 3), (3, 3)]
    assert np.abs(mlp.predict_proba(X) - clf.predict_proba(X)).max() <= 1e-6
    compressed = compress_module(clf.net_.module_).module
    assert np.abs(mlp.predict_proba(X) - net_proba(compressed, X)).max() <= 1e-6


def test_mlpclassifier_keeps_feature_names_and_trains_on_with_warm_start():
    X, y = problem(2)
    clf = LEGCPrunedClassifier(**SMALL).fit(X, y)
    names = [f"f{i}" for i in range(6)]
    mlp = to_mlpclassifier(clf.net_.module_, clf.classes_, feature_names_in=names)
    np.testing.assert_array_equal(mlp.feature_names_in_, names)
    before = [c.copy() for c in mlp.coefs_]
    mlp.set_params(warm_start=True, max_iter=1, solver="sgd", learning_rate_init=0.1)
    with pytest.warns(UserWarning):  # one iteration does not converge
        mlp.fit(X, y)
    assert mlp.n_iter_ == 1 and mlp.coefs_[0].shape == before[0].shape
    assert not np.array_equal(mlp.coefs_[0], before[0])


def test_two_softmax_outputs_become_one_logistic_unit():
    torch.manual_seed(0)
    net = MLP(6, 2, hidden_layer_sizes=(5,), activation="relu")
    X, _ = problem(2)
    mlp = to_mlpclassifier(net, ["a", "b"])
    assert mlp.n_outputs_ == 1 and mlp.out_activation_ == "logistic"
    assert np.abs(mlp.predict_proba(X) - net_proba(net, X)).max() <= 1e-6


def test_mlpclassifier_refuses_what_it_cannot_represent():
    custom = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    with pytest.raises(TypeError, match="not the default MLP: it is a Sequential.*torch.onnx"):
        to_mlpclassifier(custom, [0, 1, 2])
    net = MLP(6, 3, hidden_layer_sizes=(4,))
    with pytest.raises(ValueError, match="3 output units for 4 classes"):
        to_mlpclassifier(net, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="n_features_in=5, but the network takes 6"):
        to_mlpclassifier(net, [0, 1, 2], n_features_in=5)


# -- ONNX ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def onnx_tools():
    skl2onnx = pytest.importorskip("skl2onnx")
    ort = pytest.importorskip("onnxruntime")
    install_onnx_registration()
    return skl2onnx, ort


def run_onnx(ort, onx, X):
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return names, session.run(None, {session.get_inputs()[0].name: X})


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("granularity", ["weight", "neuron"])
@pytest.mark.parametrize("compressed", [False, True])
def test_onnx_pipeline_round_trip(onnx_tools, n_classes, granularity, compressed):
    skl2onnx, ort = onnx_tools
    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    y = np.array(["setosa", "versicolor", "virginica"])[np.minimum(y, n_classes - 1)]
    clf = LEGCPrunedClassifier(hidden_layer_sizes=(8,), lr=0.1, max_epochs=5, batch_size=8,
                               random_state=0, pruning="magnitude", amount=0.5,
                               granularity=granularity, fine_tune="continue")
    pipe = make_pipeline(StandardScaler(), clf).fit(X, y)
    if compressed:
        pipe[-1].compress()
    expected_labels, expected_proba = pipe.predict(X), pipe.predict_proba(X)

    onx = skl2onnx.to_onnx(pipe, X[:1], options={LEGCPrunedClassifier: {"zipmap": False}})
    names, (labels, proba) = run_onnx(ort, onx, X)
    assert names == ["label", "probabilities"]
    np.testing.assert_array_equal(labels, expected_labels)
    assert np.abs(proba - expected_proba).max() <= 1e-5
    first = [w.dims for w in onx.graph.initializer if len(w.dims) == 2 and w.dims[0] == 4][0]
    assert first[1] == pipe[-1].to_mlpclassifier().hidden_layer_sizes[0]
    if granularity == "neuron":
        assert first[1] == 4

    _, (labels, dicts) = run_onnx(ort, skl2onnx.to_onnx(pipe, X[:1]), X)  # zipmap by default
    np.testing.assert_array_equal(labels, expected_labels)
    zipped = np.array([[row[c] for c in pipe.classes_] for row in dicts])
    assert np.abs(zipped - expected_proba).max() <= 1e-5

    onx = skl2onnx.to_onnx(pipe, X[:1], options={LEGCPrunedClassifier: {"zipmap": "columns"}})
    names, outputs = run_onnx(ort, onx, X)
    assert len(names) == 1 + n_classes
    assert np.abs(np.column_stack(outputs[1:]) - expected_proba).max() <= 1e-5


@pytest.mark.filterwarnings("ignore::sklegc.estimator.PruningWarning")  # 90% pruned, on purpose
def test_sparse_initializers_shrink_the_onnx_file_and_keep_its_outputs(onnx_tools):
    skl2onnx, ort = onnx_tools
    X, y = problem(3, n=300)
    clf = LEGCPrunedClassifier(**{**SMALL, "hidden_layer_sizes": (60,), "amount": 0.9})
    clf.fit(X, y).compress()
    onx = skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False})
    dense_bytes = len(onx.SerializeToString())
    _, (labels, proba) = run_onnx(ort, onx, X)
    sparse_initializers(onx)
    coefs = clf.coefs_
    sparse = [np.count_nonzero(c) * 12 < c.size * 4 for c in coefs]
    assert len(onx.graph.sparse_initializer) == sum(sparse) >= 1
    saved = sum(c.size * 4 - np.count_nonzero(c) * 12 for c, s in zip(coefs, sparse) if s)
    assert len(onx.SerializeToString()) <= dense_bytes - saved + 100 * sum(sparse)
    _, (sparse_labels, sparse_proba) = run_onnx(ort, onx, X)
    np.testing.assert_array_equal(sparse_labels, labels)
    np.testing.assert_array_equal(sparse_proba, proba)


def test_onnx_matches_mlpclassifier_graph(onnx_tools):
    skl2onnx, ort = onnx_tools
    X, y = problem(3)
    clf = LEGCPrunedClassifier(**SMALL).fit(X, y)
    ours = skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False})
    mlp = to_mlpclassifier(clf.net_.module_, clf.classes_)
    theirs = skl2onnx.to_onnx(mlp, X[:1], options={"zipmap": False})
    a, b = run_onnx(ort, ours, X)[1], run_onnx(ort, theirs, X)[1]
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_converter_is_registered_on_skl2onnx_import_without_importing_it():
    pytest.importorskip("skl2onnx")
    code = (
        "import sys\n"
        "from sklegc.export import install_onnx_registration\n"
        "from sklegc import LEGCPrunedClassifier\n"
        "install_onnx_registration()\n"
        "assert 'skl2onnx' not in sys.modules\n"
        "from skl2onnx import get_model_alias\n"
        "print(get_model_alias(LEGCPrunedClassifier))\n"
    )
    root = Path(__file__).resolve().parents[1]
    path = os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "SklegcLEGCPrunedClassifier"


def test_masks_of_a_custom_module_are_refused_for_export():
    class Wide(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(6, 3)

        def forward(self, X):
            return self.a(X)

    net = Wide()
    apply_masks(prunable_layers(net), np.ones(18, bool))
    with pytest.raises(TypeError, match="it is a Wide"):
        to_mlpclassifier(net, [0, 1, 2])
