"""``LEGCPrunedClassifier``: dense training, chaos-causality pruning and fine-tuning in one fit."""

import copy
import inspect
import math
import time
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet

from .batching import TensorBatches
from .granger import granger_tests, max_feasible_lag
from .masks import (
    CORRECTIONS,
    UNTESTABLE_POLICIES,
    apply_baseline,
    apply_masks,
    noncausal_mask,
)
from .network import ACTIVATIONS, LOSSES, MLP, ClassificationLoss, prunable_layers, scores_to_proba
from .threads import limited_threads, torch_rng_lock, worker_thread_budget
from .trajectory import TrainingAccuracy, WeightTracer
from .windows import min_window_size, n_windows, window_stride

PAPER_MAXLAG = 14

# Prefixed parameters are routed to skorch, as in skorch itself.
_ROUTED_PREFIXES = ("module__", "optimizer__", "iterator_train__", "iterator_valid__")


# scikit-learn's input checks name the problem; these add what to do about it.
_INPUT_FIXES = (
    ("could not convert string", "X must be numeric: encode string or categorical columns "
     "first, e.g. with sklearn.preprocessing.OneHotEncoder or OrdinalEncoder in a Pipeline."),
    ("Input X contains infinity", "Replace, clip or drop the infinite values first."),
    ("Input y contains NaN", "Drop the samples whose label is missing."),
    ("inconsistent numbers of samples", "X and y must have the same number of rows: "
     "one label in y per sample of X."),
    ("features, but", "Pass X with the same columns, in the same order, as in fit."),
    ("feature names should match", "Pass X with the same columns, in the same order, as in fit."),
)


class PruningWarning(UserWarning):
    """The pruning step did something the user should look at (nothing pruned, a layer emptied)."""


class LEGCPrunedClassifier(ClassifierMixin, BaseEstimator):
    """Neural-network classifier pruned by chaos-causality (LEGCNet).

    ``fit`` trains a dense multi-layer perceptron with SGD while tracing every weight,
    computes each weight's largest Lyapunov exponent over overlapping windows of its
    trajectory, tests whether that exponent series Granger-causes the network's
    misclassification rate, prunes the non-causal weights, and fine-tunes the sparse network
    (by default from the same initial weights, as the paper does). The pruned weights are
    held at zero by :mod:`torch.nn.utils.prune` masks.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(8,)
        Width of each hidden layer of the default MLP.
    activation : {"sigmoid", "tanh", "relu", "identity"}, default="sigmoid"
        Hidden-unit non-linearity of the default MLP (the paper: sigmoid).
    module : torch.nn.Module subclass or instance, default=None
        A network to use instead of the default MLP. Its ``forward`` returns raw scores of
        shape (n_samples, 1) for a binary problem, (n_samples, n_classes) otherwise. If its
        constructor takes ``n_features`` / ``n_outputs`` they are filled in; other arguments
        come from ``module__*`` parameters. Every ``nn.Linear`` weight in it is prunable.
    loss : {"mse", "cross_entropy"}, default="mse"
        ``"mse"`` is the paper's squared error on the sigmoid / softmax outputs.
    lr : float, default=0.01
        Learning rate.
    max_epochs : int, default=50
        Planned epochs of dense training (and of fine-tuning unless ``fine_tune_epochs``).
    batch_size : int, default=1
        Mini-batch size (the paper: 1 on tabular data, 128 on MNIST).
    optimizer : torch.optim.Optimizer subclass, default=torch.optim.SGD
        Optimizer class; ``optimizer__*`` parameters are passed to it.
    pruning : {"legc", "magnitude", "random", "none"}, default="legc"
        ``"legc"`` is the method; ``"magnitude"`` and ``"random"`` are the paper's baselines
        (global unstructured L1 or random pruning of ``amount`` weights, no tracing);
        ``"none"`` trains the dense network only.
    mode : {"ft", "pt"}, default="ft"
        ``"ft"`` traces the whole dense run; ``"pt"`` traces only the first
        ``trace_fraction`` of ``max_epochs`` and stops dense training there.
    trace_fraction : float in (0, 1], default=0.1
        Share of the planned epochs traced in ``"pt"`` mode (rounded, at least one epoch).
    window_size : int, default=200
        Steps per window of the weight trajectories (the paper: 160 to 250).
    window_overlap : float in [0, 1), default=0.1
        Overlap of consecutive windows.
    embedding_dim, delay, le_steps, theiler_window : int, default=2, 1, 3, 0
        Parameters of the Lyapunov exponent (TISEAN ``lyap_r -m2 -d1 -s3``, Theiler 0).
    maxlag : int or "auto", default=14
        Largest Granger lag. ``"auto"`` uses 14 or, with too few windows for it, the
        largest feasible lag (with a warning).
    significance : float in (0, 1), default=0.05
        Significance level of the Granger test: a weight whose p-value is
        ``>= significance`` is pruned.
    gc_test : {"ssr_chi2test", "ssr_ftest"}, default="ssr_chi2test"
        Granger test statistic (statsmodels' names).
    correction : {None, "bonferroni", "fdr_bh"}, default=None
        Multiple-testing correction over the weights (beyond the paper).
    untestable : {"keep", "prune"}, default="keep"
        What to do with weights whose test cannot be computed (the authors kept them).
    on_empty_layer : {"warn", "raise"}, default="warn"
        What to do when pruning removes every weight of a layer (the network then predicts
        from biases alone): ``"warn"`` issues a :class:`PruningWarning`, marks the layer
        ``EMPTY`` in :meth:`pruning_report` and goes on; ``"raise"`` refuses with a
        ``ValueError`` before fine-tuning.
    max_sparsity : float in [0, 1] or None, default=None
        Prune at most this share of the weights, least causal first (beyond the paper).
    amount : int, float or None, default=None
        For the baselines, the number (int) or share (float) of weights to prune. With
        ``pruning="legc"``, prune exactly that many, ranked by p-value, instead of ``significance``.
    fine_tune : {"rewind", "continue", None}, default="rewind"
        ``"rewind"`` retrains the sparse network from the initial weights (the paper),
        ``"continue"`` trains on from the dense weights, ``None`` keeps the masked dense weights.
    fine_tune_epochs : int or None, default=None
        Epochs of fine-tuning; ``None`` means ``max_epochs``.
    target_accuracy : float in (0, 1] or None, default=None
        Training accuracy that counts as trained. The first epoch reaching it is recorded
        for each phase (the paper's "epochs"); untraced phases stop there. The traced dense
        phase always runs its planned epochs, since the trajectory needs them.
    validation_fraction : float in (0, 1) or None, default=None
        If set, this stratified share of the training data is held out and the
        misclassification rate is measured on it; otherwise on the training data.
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks for every training phase.
    device : str, default="cpu"
        Torch device for training and the Lyapunov kernel (``"cuda"`` where available).
        A model fitted on ``"cuda"`` and unpickled where CUDA is unavailable is mapped to
        the CPU (with skorch's warning).
    random_state : int, RandomState instance or None, default=None
        Seeds initial weights, shuffling, splits and random pruning. Torch's global random
        state is left as it was.
    verbose : int, default=0
        ``0`` is silent; ``1`` prints skorch's epoch log.
    **kwargs
        ``module__*``, ``optimizer__*``, ``iterator_train__*``, ``iterator_valid__*``
        parameters, routed as in skorch.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when ``X`` had string column names.
    net_ : skorch.NeuralNet
        The trained network (the sparse one after pruning); ``net_.history`` holds every
        epoch of every phase, with ``phase`` and ``train_accuracy`` columns.
    mask_ : dict of str to ndarray of bool
        Per prunable layer, True where the weight is kept.
    weight_layers_ : list of (str, tuple)
        Prunable layers and their weight shapes, the order of the flat weight index.
    lyapunov_ : ndarray of shape (n_windows, n_weights) or None
        Windowed Lyapunov exponents of every weight (``pruning="legc"`` only).
    misclassification_ : ndarray of shape (n_windows,) or None
        Misclassification rate at the end of each window.
    granger_result_ : sklegc.granger.GrangerResult or None
        The full Granger test results.
    granger_pvalues_ : ndarray of shape (n_weights,) or None
        Each weight's p-value (minimum over lags); NaN where untestable.
    maxlag_ : int or None
        The Granger lag actually used.
    pruned_ : ndarray of bool, shape (n_weights,)
        True for pruned weights, in the flat weight order.
    n_weights_ : int
        Number of prunable weights (biases are not counted, as in the paper).
    n_weights_pruned_ : int
        Number of pruned weights.
    sparsity_ : float
        ``n_weights_pruned_ / n_weights_``.
    flops_ : int
        The paper's "flops": the number of non-zero weights.
    multiply_adds_ : int
        Multiply-adds per sample in the prunable layers: one per kept weight of an
        ``nn.Linear`` layer (bias additions not counted).
    epochs_to_target_ : dict
        ``{"dense": int or None, "sparse": int or None}``, first epoch of each phase at which
        the training accuracy reached ``target_accuracy``.
    initial_state_ : dict
        The network's initial ``state_dict`` (the weights every pruning method starts from,
        and the rewind point).
    n_dense_steps_ : int
        Optimizer steps of the dense phase.
    phase_times_ : dict
        Seconds spent in ``"dense"``, ``"analysis"`` and ``"sparse"``.

    Notes
    -----
    Input: ``X`` must be numeric and finite. SciPy sparse matrices are accepted and turned
    into dense arrays (the network computes on dense tensors), so a very wide sparse ``X``
    costs its full dense size in memory. ``X`` and ``y`` are never modified, and the fitted
    model keeps no reference to them.

    Threads: inside a parallel search (joblib's loky workers, dask workers) ``fit`` caps
    torch's and numba's threads at the worker's share of the cores (``OMP_NUM_THREADS``,
    or one thread per task of a dask worker thread) and restores them afterwards, so
    that ``n_jobs`` workers do not each use every core.

    Persistence: the fitted estimator pickles (``pickle``, ``joblib.dump``) without its
    training data. Loading a pickle runs code from it: load only files you trust.

    See Also
    --------
    sklearn.neural_network.MLPClassifier : Dense multi-layer perceptron.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklegc import LEGCPrunedClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = make_pipeline(StandardScaler(), LEGCPrunedClassifier(
    ...     hidden_layer_sizes=(6,), lr=0.05, max_epochs=30, window_size=40,
    ...     maxlag=4, random_state=0))
    >>> clf.fit(X, y).score(X, y) > 0.8
    True
    >>> clf[-1].n_weights_
    42
    """

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "module": [None, type, torch.nn.Module],
        "loss": [StrOptions(set(LOSSES))],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "optimizer": [type],
        "pruning": [StrOptions({"legc", "magnitude", "random", "none"})],
        "mode": [StrOptions({"ft", "pt"})],
        "trace_fraction": [Interval(Real, 0, 1, closed="right")],
        "window_size": [Interval(Integral, 1, None, closed="left")],
        "window_overlap": [Interval(Real, 0, 1, closed="left")],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "delay": [Interval(Integral, 1, None, closed="left")],
        "le_steps": [Interval(Integral, 1, None, closed="left")],
        "theiler_window": [Interval(Integral, 0, None, closed="left")],
        "maxlag": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "significance": [Interval(Real, 0, 1, closed="neither")],
        "gc_test": [StrOptions({"ssr_chi2test", "ssr_ftest"})],
        "correction": [None, StrOptions({k for k in CORRECTIONS if k})],
        "untestable": [StrOptions(set(UNTESTABLE_POLICIES))],
        "on_empty_layer": [StrOptions({"warn", "raise"})],
        "max_sparsity": [None, Interval(Real, 0, 1, closed="both")],
        "amount": [
            None,
            Interval(Integral, 0, None, closed="left"),
            Interval(Real, 0, 1, closed="both"),
        ],
        "fine_tune": [None, StrOptions({"rewind", "continue"})],
        "fine_tune_epochs": [None, Interval(Integral, 0, None, closed="left")],
        "target_accuracy": [None, Interval(Real, 0, 1, closed="right")],
        "validation_fraction": [None, Interval(Real, 0, 1, closed="neither")],
        "callbacks": [None, list],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(8,),
        activation="sigmoid",
        module=None,
        loss="mse",
        lr=0.01,
        max_epochs=50,
        batch_size=1,
        optimizer=torch.optim.SGD,
        pruning="legc",
        mode="ft",
        trace_fraction=0.1,
        window_size=200,
        window_overlap=0.1,
        embedding_dim=2,
        delay=1,
        le_steps=3,
        theiler_window=0,
        maxlag=14,
        significance=0.05,
        gc_test="ssr_chi2test",
        correction=None,
        untestable="keep",
        on_empty_layer="warn",
        max_sparsity=None,
        amount=None,
        fine_tune="rewind",
        fine_tune_epochs=None,
        target_accuracy=None,
        validation_fraction=None,
        callbacks=None,
        device="cpu",
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.module = module
        self.loss = loss
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.pruning = pruning
        self.mode = mode
        self.trace_fraction = trace_fraction
        self.window_size = window_size
        self.window_overlap = window_overlap
        self.embedding_dim = embedding_dim
        self.delay = delay
        self.le_steps = le_steps
        self.theiler_window = theiler_window
        self.maxlag = maxlag
        self.significance = significance
        self.gc_test = gc_test
        self.correction = correction
        self.untestable = untestable
        self.on_empty_layer = on_empty_layer
        self.max_sparsity = max_sparsity
        self.amount = amount
        self.fine_tune = fine_tune
        self.fine_tune_epochs = fine_tune_epochs
        self.target_accuracy = target_accuracy
        self.validation_fraction = validation_fraction
        self.callbacks = callbacks
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        for key, value in kwargs.items():
            setattr(self, key, value)

    # -- parameters -------------------------------------------------------------------------

    def _routed_params(self):
        # Everything stored beyond the named parameters came in through **kwargs; fitted
        # attributes end in "_" and private state starts with it.
        named = set(self._get_param_names())
        return {k: v for k, v in vars(self).items()
                if k not in named and not k.startswith("_") and not k.endswith("_")}

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        params.update(self._routed_params())
        return params

    def set_params(self, **params):
        named = set(self._get_param_names())
        for key in [k for k in params if k not in named]:
            setattr(self, key, params.pop(key))
        return super().set_params(**params) if params else self

    def _check_params(self):
        self._validate_params()
        unknown = [k for k in self._routed_params() if not k.startswith(_ROUTED_PREFIXES)]
        if unknown:
            raise TypeError(
                f"LEGCPrunedClassifier got unexpected parameter(s) {sorted(unknown)}. Routed "
                f"parameters must start with one of {list(_ROUTED_PREFIXES)}."
            )
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        if not all(isinstance(s, Integral) and s >= 1 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must hold positive integers, got {self.hidden_layer_sizes!r}."
            )
        if self.pruning in ("magnitude", "random") and self.amount is None:
            raise ValueError(
                f"pruning={self.pruning!r} needs `amount`: the number (int) or share (float in "
                "[0, 1]) of weights to prune, e.g. amount=0.1."
            )
        if self.fine_tune is None and self.pruning == "legc" and self.mode == "pt":
            raise ValueError(
                "fine_tune=None keeps the dense weights, which mode='pt' trained only "
                f"partially ({self.trace_fraction:.0%} of max_epochs). Use fine_tune='rewind' "
                "or 'continue' with mode='pt', or mode='ft' with fine_tune=None."
            )
        if self.pruning == "legc":
            need = min_window_size(self.embedding_dim, self.delay, self.le_steps, self.theiler_window)
            if self.window_size < need:
                raise ValueError(
                    f"window_size={self.window_size} is too short for the Lyapunov exponent with "
                    f"embedding_dim={self.embedding_dim}, delay={self.delay}, "
                    f"le_steps={self.le_steps}, theiler_window={self.theiler_window}: "
                    f"use window_size >= {need}."
                )
        try:
            device = torch.device(self.device)
        except RuntimeError as exc:
            raise ValueError(
                f"device={self.device!r} is not a torch device: use 'cpu' or 'cuda'."
            ) from exc
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device={self.device!r}, but CUDA is not available on this machine: "
                "use device='cpu'."
            )
        return sizes

    def _validated_X(self, X, y="no_validation"):
        """``X`` as a new float32 array (and ``y`` in fit), checked as scikit-learn checks them."""
        options = dict(accept_sparse=("csr", "csc", "coo"), dtype=[np.float32, np.float64])
        try:
            if isinstance(y, str) and y == "no_validation":
                X = validate_data(self, X, reset=False, **options)
            else:
                X, y = validate_data(self, X, y, ensure_min_samples=2, **options)
        except ValueError as exc:
            fix = next((fix for problem, fix in _INPUT_FIXES if problem in str(exc)), None)
            if fix is None or type(exc) is not ValueError:
                raise
            raise ValueError(f"{exc} {fix}") from exc
        if sparse.issparse(X):
            X = X.toarray()
        # No copy when X is float32 already: fit only reads it, and keeps no reference.
        with np.errstate(over="ignore"):
            X = X.astype(np.float32, copy=False)
        if not np.isfinite(X).all():
            raise ValueError(
                "X holds values too large for float32 (beyond 3.4e38), the precision the "
                "network computes in. Scale the features, e.g. with "
                "sklearn.preprocessing.StandardScaler."
            )
        return X if isinstance(y, str) and y == "no_validation" else (X, y)

    # -- fit --------------------------------------------------------------------------------

    def fit(self, X, y):
        """Train, prune and fine-tune the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels of any type.

        Returns
        -------
        self : LEGCPrunedClassifier
            The fitted estimator.
        """
        # A second fit starts from scratch: nothing of an earlier fit survives, even if
        # this one fails.
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, name)
        sizes = self._check_params()
        shape = getattr(y, "shape", None)
        if shape is None and isinstance(y, (list, tuple)):
            try:
                shape = np.shape(y)
            except ValueError:  # ragged: scikit-learn's check explains it below
                shape = None
        if shape is not None and len(shape) == 2 and shape[1] > 1:
            raise ValueError(
                f"y has shape {shape}: LEGCPrunedClassifier predicts one label per sample "
                "and does not support multi-output, multilabel or one-hot targets. Pass a 1-D "
                "y of class labels (for one-hot targets, y.argmax(axis=1)), or wrap the "
                "classifier in sklearn.multioutput.MultiOutputClassifier."
            )
        X, y = self._validated_X(X, y)
        check_classification_targets(y)
        encoder = LabelEncoder()
        y_enc = encoder.fit_transform(y)
        if len(encoder.classes_) < 2:
            raise ValueError(
                "LEGCPrunedClassifier needs samples of at least 2 classes in the data, but the "
                f"data contain only one class: {encoder.classes_[0]!r}. Pass a y with at least "
                "two different labels."
            )
        self.classes_ = encoder.classes_
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        device = torch.device(self.device)
        fork_devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices), \
                limited_threads(worker_thread_budget()):
            torch.manual_seed(seed)
            self._fit(X, y_enc.astype(np.int64), sizes, seed, device)
        return self

    def _fit(self, X, y, sizes, seed, device):
        X_train, y_train, X_mon, y_mon = X, y, X, y
        if self.validation_fraction is not None and self.pruning == "legc":
            X_train, X_mon, y_train, y_mon = train_test_split(
                X, y, test_size=self.validation_fraction, stratify=y, random_state=seed
            )
        X_t = torch.as_tensor(X_train, device=device)
        y_t = torch.as_tensor(y_train, device=device)
        steps_per_epoch = math.ceil(len(X_train) / self.batch_size)
        traced = self.pruning == "legc"
        dense_epochs = self.max_epochs
        if traced and self.mode == "pt":
            dense_epochs = max(1, round(self.trace_fraction * self.max_epochs))
        if traced:
            maxlag = self._feasible_maxlag(dense_epochs * steps_per_epoch, dense_epochs, len(X_train))

        net = self._build_net(X_train.shape[1], len(self.classes_), sizes, device, seed)
        # Initial weights come from torch's global generator: seed and draw under the lock,
        # so that fits running as threads of one process get the same weights as alone.
        with torch_rng_lock:
            torch.manual_seed(seed)
            net.initialize()
        # Kept on the CPU, so that a model fitted on a GPU unpickles on a machine without one.
        initial_state = {name: value.detach().cpu().clone()
                         for name, value in net.module_.state_dict().items()}
        layers = prunable_layers(net.module_)
        if not layers:
            raise ValueError(
                "the module has no torch.nn.Linear layer, so there is no weight to prune. "
                "Use a module built from nn.Linear layers."
            )
        self.weight_layers_ = [(name, tuple(layer.weight.shape)) for name, layer in layers]
        self.n_weights_ = sum(layer.weight.numel() for _, layer in layers)

        accuracy_cb = TrainingAccuracy(
            X_t, y_t, target=self.target_accuracy, stop_at_target=not traced
        )
        phase_cbs = [("train_accuracy", accuracy_cb)]
        tracer = None
        if traced:
            tracer = WeightTracer(
                self.window_size,
                window_stride(self.window_size, self.window_overlap),
                torch.as_tensor(X_mon, device=device),
                torch.as_tensor(y_mon, device=device),
                lyapunov_params=dict(
                    embedding_dim=self.embedding_dim,
                    delay=self.delay,
                    steps=self.le_steps,
                    theiler=self.theiler_window,
                ),
            )
            phase_cbs.append(("trace", tracer))

        times = {"dense": 0.0, "analysis": 0.0, "sparse": 0.0}
        skip_dense = self.pruning == "random" and self.fine_tune == "rewind"
        self.epochs_to_target_ = {"dense": None, "sparse": None}
        self.n_dense_steps_ = 0
        if not skip_dense:
            start = time.perf_counter()
            self._train(net, X_train, y_train, dense_epochs, phase_cbs, "dense")
            times["dense"] = time.perf_counter() - start
            self.epochs_to_target_["dense"] = accuracy_cb.epoch_to_target_
            self.n_dense_steps_ = sum(
                row["train_batch_count"] for row in net.history if "train_batch_count" in row
            )

        start = time.perf_counter()
        self.lyapunov_ = self.misclassification_ = None
        self.granger_result_ = self.granger_pvalues_ = self.maxlag_ = self.window_ends_ = None
        if traced:
            pruned = self._legc_decision(tracer, maxlag)
            if self.fine_tune == "rewind":
                net.module_.load_state_dict(initial_state)
            self.mask_ = apply_masks(layers, ~pruned)
        elif self.pruning == "none":
            self.mask_ = {name: np.ones(shape, dtype=bool) for name, shape in self.weight_layers_}
        else:
            if self.fine_tune == "rewind":
                net.module_.load_state_dict(initial_state)
            self.mask_ = apply_baseline(layers, self.pruning, self.amount, seed)
        times["analysis"] = time.perf_counter() - start
        self.pruned_ = ~np.concatenate([m.reshape(-1) for m in self.mask_.values()])
        self._check_empty_layers()

        if self.pruning != "none" and self.fine_tune is not None:
            epochs = self.max_epochs if self.fine_tune_epochs is None else self.fine_tune_epochs
            if epochs > 0:
                net.initialize_optimizer()
                sparse_acc = TrainingAccuracy(X_t, y_t, target=self.target_accuracy,
                                              stop_at_target=True)
                start = time.perf_counter()
                self._train(net, X_train, y_train, epochs, [("train_accuracy", sparse_acc)],
                            "sparse")
                times["sparse"] = time.perf_counter() - start
                self.epochs_to_target_["sparse"] = sparse_acc.epoch_to_target_

        self.net_ = net
        self.initial_state_ = initial_state
        self.phase_times_ = times
        self.n_weights_pruned_ = int(self.pruned_.sum())
        self.sparsity_ = self.n_weights_pruned_ / self.n_weights_
        self.flops_ = self.n_weights_ - self.n_weights_pruned_
        self.multiply_adds_ = self.flops_

    def _feasible_maxlag(self, n_steps, dense_epochs, n_train):
        K = n_windows(n_steps, self.window_size, self.window_overlap)
        largest = max_feasible_lag(K) if K > 0 else 0
        wanted = PAPER_MAXLAG if self.maxlag == "auto" else self.maxlag
        if largest >= wanted:
            return wanted
        if self.maxlag == "auto" and largest >= 1:
            warnings.warn(
                f"only {K} windows fit in {n_steps} traced steps, too few for a Granger lag of "
                f"{wanted}; using maxlag={largest}.",
                PruningWarning,
                stacklevel=3,
            )
            return largest
        raise ValueError(self._too_few_windows_message(n_steps, K, dense_epochs, n_train, wanted))

    def _too_few_windows_message(self, n_steps, K, dense_epochs, n_train, wanted):
        W = self.window_size
        lag = 1 if self.maxlag == "auto" else wanted
        needed_windows = 3 * lag + 2
        needed_steps = W + (needed_windows - 1) * window_stride(W, self.window_overlap)
        steps_per_epoch = math.ceil(n_train / self.batch_size)
        found = (f"{n_steps} optimizer steps ({dense_epochs} epochs of {steps_per_epoch} "
                 "batches)")
        if n_steps < W:
            found += f", fewer than one window of {W} steps, so no window can be formed"
        else:
            found += f", which gives {K} windows of {W} steps"
        fixes = []
        largest = max_feasible_lag(K)
        if largest >= 1:
            fixes.append(f"maxlag={largest} or maxlag='auto' (the largest feasible maxlag is "
                         f"{largest})")
        shortest = min_window_size(self.embedding_dim, self.delay, self.le_steps,
                                   self.theiler_window)
        fitting = [w for w in range(W - 1, shortest - 1, -1)
                   if n_windows(n_steps, w, self.window_overlap) >= needed_windows]
        if fitting:
            fixes.append(f"window_size={fitting[0]}")
        needed_epochs = math.ceil(needed_steps / steps_per_epoch)
        if self.mode == "pt":
            fixes.append(f"{needed_epochs} traced epochs (mode='pt' traces "
                         f"round(trace_fraction * max_epochs) = {dense_epochs}: raise "
                         "trace_fraction or max_epochs)")
        else:
            fixes.append(f"max_epochs={needed_epochs}")
        if self.batch_size > 1:
            fixes.append("a smaller batch_size (one optimizer step per batch)")
        return (
            f"the traced dense phase has {found}; a Granger test with maxlag={lag} needs at "
            f"least {needed_windows} windows ({needed_steps} steps). Use "
            + ", or ".join(fixes) + "."
        )

    def _legc_decision(self, tracer, maxlag):
        self.lyapunov_ = np.stack(tracer.lyapunov_)
        self.misclassification_ = np.asarray(tracer.misclassification_)
        self.window_ends_ = np.asarray(tracer.window_ends_)
        self.maxlag_ = maxlag
        n = self.lyapunov_.shape[1]
        if np.ptp(self.misclassification_) == 0:
            warnings.warn(
                "the misclassification rate did not change over the traced windows "
                f"(constant at {self.misclassification_[0]:.4g}), so no weight can Granger-cause "
                "it; nothing is pruned. Trace a phase in which the network is still learning "
                "(smaller lr, mode='pt', or validation_fraction).",
                PruningWarning,
                stacklevel=4,
            )
            self.granger_pvalues_ = np.full(n, np.nan)
            return np.zeros(n, dtype=bool)
        result = granger_tests(self.misclassification_, self.lyapunov_, maxlag=maxlag,
                               test=self.gc_test)
        self.granger_result_ = result
        self.granger_pvalues_ = result.pvalue
        if result.untestable.all():
            warnings.warn(
                "no weight's Granger test could be computed (the misclassification series, or "
                "every Lyapunov exponent series, is constant or collinear over the lags), so "
                "nothing is pruned. Trace a phase in which the network is still learning "
                "(smaller lr, mode='pt', or validation_fraction).",
                PruningWarning,
                stacklevel=4,
            )
            return np.zeros(n, dtype=bool)
        return noncausal_mask(
            result.pvalue,
            result.untestable,
            significance=self.significance,
            correction=self.correction,
            untestable_policy=self.untestable,
            max_sparsity=self.max_sparsity,
            amount=self.amount,
        )

    def _check_empty_layers(self):
        empty = [name for name, mask in self.mask_.items() if not mask.any()]
        if not empty:
            return
        message = (
            f"pruning removed every weight of layer(s) {empty}: no signal passes to the "
            "output, and the network predicts from biases alone. Use a larger significance, "
            "max_sparsity, or a smaller amount"
        )
        if self.on_empty_layer == "raise":
            raise ValueError(f"{message}; or on_empty_layer='warn' to accept it.")
        warnings.warn(f"{message}.", PruningWarning, stacklevel=4)

    def _module_and_params(self, n_features, n_classes, sizes):
        n_outputs = 1 if n_classes == 2 else n_classes
        routed = {k[len("module__"):]: v for k, v in self._routed_params().items()
                  if k.startswith("module__")}
        if self.module is None:
            defaults = dict(n_features=n_features, n_outputs=n_outputs,
                            hidden_layer_sizes=sizes, activation=self.activation)
            return MLP, {**defaults, **routed}
        if isinstance(self.module, torch.nn.Module):
            return copy.deepcopy(self.module), routed
        accepted = inspect.signature(self.module).parameters
        for name, value in (("n_features", n_features), ("n_outputs", n_outputs)):
            if name in accepted:
                routed.setdefault(name, value)
        return self.module, routed

    def _build_net(self, n_features, n_classes, sizes, device, seed):
        module, module_params = self._module_and_params(n_features, n_classes, sizes)
        routed = {k: v for k, v in self._routed_params().items() if not k.startswith("module__")}
        # A user who configures the DataLoader (workers, samplers, ...) gets a DataLoader,
        # which shuffles with torch's global generator.
        if not any(k.startswith("iterator_train__") for k in routed):
            routed.update(iterator_train=TensorBatches, iterator_train__seed=seed)
        return NeuralNet(
            module=module,
            criterion=ClassificationLoss,
            criterion__loss=self.loss,
            optimizer=self.optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=None,
            iterator_train__shuffle=True,
            device=device,
            verbose=self.verbose,
            **{f"module__{k}": v for k, v in module_params.items()},
            **routed,
        )

    def _train(self, net, X, y, epochs, phase_callbacks, phase):
        extra = [(f"user_{i}", cb) for i, cb in enumerate(self.callbacks or [])]
        net.set_params(max_epochs=epochs, callbacks=phase_callbacks + extra)
        net.initialize_callbacks()
        net.partial_fit(X, y)
        for row in net.history:
            row.setdefault("phase", phase)

    # -- prediction -------------------------------------------------------------------------

    def _scores(self, X):
        check_is_fitted(self)
        X_t = torch.as_tensor(self._validated_X(X), device=self.net_.device)
        module = self.net_.module_
        module.eval()
        with torch.no_grad():
            return torch.cat([module(X_t[i:i + 4096]) for i in range(0, len(X_t), 4096)])

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        proba = scores_to_proba(self._scores(X)).cpu().double().numpy()
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    # -- reporting --------------------------------------------------------------------------

    def pruning_report(self, as_frame=False):
        """A per-layer table of what was pruned.

        Parameters
        ----------
        as_frame : bool, default=False
            Return a :class:`pandas.DataFrame` instead of text.

        Returns
        -------
        report : str or pandas.DataFrame
        """
        import pandas as pd

        check_is_fitted(self)
        rows = []
        for name, mask in self.mask_.items():
            rows.append({
                "layer": name,
                "shape": "x".join(map(str, mask.shape)),
                "weights": mask.size,
                "pruned": int((~mask).sum()),
                "kept": int(mask.sum()),
                "% pruned": 100.0 * (~mask).sum() / mask.size,
                "status": "EMPTY" if not mask.any() else "",
            })
        rows.append({
            "layer": "total", "shape": "", "weights": self.n_weights_,
            "pruned": self.n_weights_pruned_, "kept": self.flops_,
            "% pruned": 100.0 * self.sparsity_, "status": "",
        })
        frame = pd.DataFrame(rows)
        if as_frame:
            return frame
        lines = [f"pruning={self.pruning!r}, mode={self.mode!r}, fine_tune={self.fine_tune!r}"]
        if self.granger_pvalues_ is not None:
            untestable = int(np.isnan(self.granger_pvalues_).sum())
            lines.append(
                f"{len(self.misclassification_)} windows of {self.window_size} steps, "
                f"maxlag={self.maxlag_}, significance={self.significance}, untestable weights: {untestable} "
                f"({self.untestable})"
            )
        lines.append(f"epochs to target accuracy: {self.epochs_to_target_}")
        lines.append(frame.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        return "\n".join(lines)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = True
        return tags

    def __sklearn_is_fitted__(self):
        # Set last in fit: a fit that failed half-way leaves the estimator unfitted.
        return hasattr(self, "net_")
