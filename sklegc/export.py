"""Deploying a pruned network without torch: scikit-learn's MLPClassifier and ONNX.

The default :class:`sklegc.network.MLP` is exactly the network of scikit-learn's
:class:`~sklearn.neural_network.MLPClassifier` (sigmoid hidden units are its
``"logistic"``; one logistic output unit for two classes, softmax otherwise), so a fitted
``LEGCPrunedClassifier`` becomes a fitted ``MLPClassifier`` holding the compressed weights
(:func:`to_mlpclassifier`). The ONNX converter registered with skl2onnx converts through
that ``MLPClassifier`` and skl2onnx's own converter for it, so ``skl2onnx.to_onnx`` turns a
whole Pipeline ending in a ``LEGCPrunedClassifier`` into one ONNX graph, with the options of
``MLPClassifier`` (``zipmap``, ``nocl``, ``output_class_labels``).

skl2onnx costs about half a second to import, more than the rest of ``import sklegc``, so
the converter is registered when skl2onnx is imported (:func:`install_onnx_registration`),
not before.
"""

import importlib.abc
import importlib.util
import sys

import numpy as np

# sklegc's hidden activations under MLPClassifier's names.
MLP_ACTIVATIONS = {"sigmoid": "logistic", "tanh": "tanh", "relu": "relu", "identity": "identity"}

ONNX_ALIAS = "SklegcLEGCPrunedClassifier"
# The options skl2onnx registers for MLPClassifier.
ONNX_OPTIONS = {"zipmap": [True, False, "columns"], "output_class_labels": [False, True],
                "nocl": [True, False]}


def to_mlpclassifier(module, classes, *, n_features_in=None, feature_names_in=None):
    """A fitted scikit-learn ``MLPClassifier`` computing what a default sklegc MLP computes.

    The network is compressed first (:func:`sklegc.compress.remove_dead_units`): dead hidden
    units are removed and their constant contributions folded into biases, so the
    ``MLPClassifier`` has only the live units.

    Parameters
    ----------
    module : sklegc.network.MLP
        The trained default network (``net_.module_`` of a fitted ``LEGCPrunedClassifier``),
        pruned, compressed or dense.
    classes : array-like of shape (n_classes,)
        The class labels, sorted as the estimator's ``classes_``.
    n_features_in : int or None, default=None
        Number of input features, checked against the network's input layer.
    feature_names_in : array-like of str or None, default=None
        Feature names seen in fit, if any.

    Returns
    -------
    mlp : sklearn.neural_network.MLPClassifier
        Fitted: ``coefs_`` (layer ``l`` of shape (n_in, n_out)) and ``intercepts_`` in
        float64, holding the network's float32 weights exactly (and the folded biases), so
        that it computes in float64 and differs from the float32 network by that network's
        own rounding; ``classes_``, ``n_layers_``, ``n_outputs_``,
        ``out_activation_``, ``n_features_in_`` and its label binarizer are set, and
        ``n_iter_``, ``t_``, ``loss_curve_`` as scikit-learn initialises them, so that
        ``warm_start=True`` can train it on. Its ``predict_proba`` equals the network's up to
        float rounding.

    Raises
    ------
    TypeError
        If ``module`` is not the default MLP.
    ValueError
        If the number of output units does not match ``classes``, or ``n_features_in`` does
        not match the network.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklegc.network import MLP, scores_to_proba
    >>> net = MLP(4, 3, hidden_layer_sizes=(5,), activation="tanh")
    >>> mlp = to_mlpclassifier(net, ["a", "b", "c"])
    >>> mlp.activation, mlp.out_activation_, [c.shape for c in mlp.coefs_]
    ('tanh', 'softmax', [(4, 5), (5, 3)])
    >>> X = np.random.RandomState(0).normal(size=(6, 4)).astype(np.float32)
    >>> ours = scores_to_proba(net(torch.from_numpy(X))).detach().numpy()
    >>> bool(np.abs(mlp.predict_proba(X) - ours).max() < 1e-6)
    True
    """
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import LabelBinarizer

    from .compress import mlp_arrays, remove_dead_units

    weights, biases, activation = mlp_arrays(module)
    weights, biases, _ = remove_dead_units(weights, biases, activation)
    classes = np.asarray(classes)
    n_outputs = weights[-1].shape[0]
    if len(classes) == 2 and n_outputs == 2:
        # softmax(z0, z1)[1] = sigmoid(z1 - z0): one logistic unit, as MLPClassifier has.
        weights[-1] = weights[-1][1:] - weights[-1][:1]
        biases[-1] = biases[-1][1:] - biases[-1][:1]
    elif n_outputs != (1 if len(classes) == 2 else len(classes)):
        raise ValueError(
            f"the network has {n_outputs} output units for {len(classes)} classes; "
            "MLPClassifier needs 1 (binary) or one per class."
        )
    n_features = weights[0].shape[1]
    if n_features_in is not None and n_features_in != n_features:
        raise ValueError(
            f"n_features_in={n_features_in}, but the network takes {n_features} inputs."
        )
    mlp = MLPClassifier(hidden_layer_sizes=tuple(w.shape[0] for w in weights[:-1]),
                        activation=MLP_ACTIVATIONS[activation])
    mlp.coefs_ = [np.ascontiguousarray(w.T) for w in weights]
    mlp.intercepts_ = biases
    mlp.n_layers_ = len(weights) + 1
    mlp.n_outputs_ = weights[-1].shape[0]
    mlp.out_activation_ = "logistic" if mlp.n_outputs_ == 1 else "softmax"
    mlp._label_binarizer = LabelBinarizer().fit(classes)
    mlp.classes_ = mlp._label_binarizer.classes_
    mlp.n_features_in_ = n_features
    if feature_names_in is not None:
        mlp.feature_names_in_ = np.asarray(feature_names_in, dtype=object)
    # What MLPClassifier._initialize sets for the stochastic solvers, so warm_start works.
    mlp.n_iter_ = 0
    mlp.t_ = 0
    mlp.loss_curve_ = []
    mlp._no_improvement_count = 0
    mlp.best_loss_ = np.inf
    return mlp


def convert_legc_classifier(scope, operator, container):
    """skl2onnx converter of a fitted ``LEGCPrunedClassifier``.

    Emits the graph of the equivalent ``MLPClassifier`` (the estimator's
    ``to_mlpclassifier()``, see :func:`to_mlpclassifier`) with
    skl2onnx's own converter for it (through ``OnnxSubEstimator``, as skl2onnx's guide to
    wrapping converters does); ZipMap and class-label outputs are added by skl2onnx's
    classifier parser, as for ``MLPClassifier``.
    """
    from skl2onnx.algebra.onnx_operator import OnnxSubEstimator
    from skl2onnx.algebra.onnx_ops import OnnxIdentity

    estimator = operator.raw_operator
    mlp = estimator.to_mlpclassifier()
    opset = container.target_opset
    nocl = container.get_options(estimator, dict(nocl=False))["nocl"]
    sub = OnnxSubEstimator(mlp, operator.inputs[0], op_version=opset,
                           options={"zipmap": False, "nocl": nocl})
    for index, output in enumerate(operator.outputs[:2]):
        OnnxIdentity(sub[index], op_version=opset, output_names=[output]).add_to(
            scope, container)


def sparse_initializers(model):
    """Store the weight matrices of an ONNX model sparse where that is smaller.

    skl2onnx writes every weight matrix dense, pruned zeros included. This moves each
    two-dimensional float initializer that is smaller as a sparse tensor (its non-zero values
    plus their int64 positions, 12 bytes per non-zero float32 entry: smaller below a third of
    the entries non-zero) to the graph's ``sparse_initializer`` list, which the ONNX format
    defines and ONNX Runtime turns back into a dense tensor when it loads the model. The
    graph computes exactly what it computed; only the file is smaller.

    Parameters
    ----------
    model : onnx.ModelProto
        For example the result of ``skl2onnx.to_onnx``; changed in place.

    Returns
    -------
    model : onnx.ModelProto
        The same model.

    Examples
    --------
    >>> import numpy as np
    >>> from onnx import TensorProto, helper, numpy_helper
    >>> W = np.zeros((100, 10), dtype=np.float32)
    >>> W[::10, 0] = 1.0
    >>> graph = helper.make_graph(
    ...     [helper.make_node("MatMul", ["X", "W"], ["Y"])], "g",
    ...     [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 100])],
    ...     [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 10])],
    ...     initializer=[numpy_helper.from_array(W, "W")])
    >>> model = helper.make_model(graph)
    >>> before = len(model.SerializeToString())
    >>> model = sparse_initializers(model)
    >>> len(model.graph.initializer), len(model.graph.sparse_initializer)
    (0, 1)
    >>> len(model.SerializeToString()) < before / 10
    True
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    for initializer in list(graph.initializer):
        if len(initializer.dims) != 2:
            continue
        array = numpy_helper.to_array(initializer)
        if array.dtype.kind != "f":
            continue
        nonzero = np.flatnonzero(array)
        if nonzero.size * (array.itemsize + 8) >= array.nbytes:
            continue
        values = numpy_helper.from_array(array.reshape(-1)[nonzero], name=initializer.name)
        indices = numpy_helper.from_array(nonzero.astype(np.int64),
                                          name=f"{initializer.name}_indices")
        graph.sparse_initializer.append(
            helper.make_sparse_tensor(values, indices, list(array.shape)))
        graph.initializer.remove(initializer)
    return model


def register_onnx_converter():
    """Register the ``LEGCPrunedClassifier`` converter with skl2onnx (idempotent).

    Uses ``skl2onnx.update_registered_converter``, the entry point other libraries (LightGBM
    and XGBoost converters in onnxmltools, for example) use, with skl2onnx's shape
    calculator for classifiers and the options of ``MLPClassifier``.

    Examples
    --------
    >>> register_onnx_converter()
    >>> from skl2onnx import get_model_alias
    >>> from sklegc import LEGCPrunedClassifier
    >>> get_model_alias(LEGCPrunedClassifier)
    'SklegcLEGCPrunedClassifier'
    """
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    from .estimator import LEGCPrunedClassifier

    update_registered_converter(LEGCPrunedClassifier, ONNX_ALIAS,
                                calculate_linear_classifier_output_shapes,
                                convert_legc_classifier, options=ONNX_OPTIONS)


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Runs :func:`register_onnx_converter` right after skl2onnx's package has executed."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "skl2onnx":
            return None
        sys.meta_path.remove(self)  # one shot, and no recursion into find_spec below
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                register_onnx_converter()

            spec.loader.exec_module = exec_module
        return spec


def install_onnx_registration():
    """Register the ONNX converter now if skl2onnx is imported, else when it gets imported.

    Importing skl2onnx costs about half a second; this costs nothing until skl2onnx is
    imported (by the user, ``to_onnx`` or a ``skl2onnx`` submodule), and does nothing
    where skl2onnx is not installed. Call it when the estimator's module is imported.

    Examples
    --------
    >>> install_onnx_registration()
    >>> import skl2onnx
    >>> from skl2onnx import get_model_alias
    >>> from sklegc import LEGCPrunedClassifier
    >>> get_model_alias(LEGCPrunedClassifier)
    'SklegcLEGCPrunedClassifier'
    """
    if "skl2onnx" in sys.modules:
        register_onnx_converter()
    elif not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())
