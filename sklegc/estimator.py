"""``LEGCPrunedClassifier``: dense training, chaos-causality pruning and fine-tuning in one fit.

``fit`` reads as the method's phases, each a short method of the class:

1. ``_plan``: the sizes that depend on the data (``"auto"`` batch size, window length,
   traced epochs, the number of windows the Granger test needs);
2. ``_train_dense``: dense training, traced with :class:`~sklegc.trajectory.WeightTracer`
   when the pruning is the method's (the trajectory is reduced to windowed Lyapunov
   exponents as it is recorded);
3. ``_decide``: which weights to keep (the Granger decision, or a baseline), and in which
   order they are pruned; with ``max_accuracy_drop``, ``_accuracy_limited_keep`` then
   prunes them in that order only as far as the held-out accuracy allows;
4. ``_apply_mask``: masks through :mod:`torch.nn.utils.prune`, with the rewind;
5. ``_fine_tune``: training of the sparse network (``_hold_accuracy`` verifies the
   held-out accuracy after it); ``pruning="imp"`` repeats 3-5 in rounds
   (``_iterative_pruning``);
6. ``_check_accuracy``: the sparse network against the dense one on the decision data.

The vocabulary shared with scikit-learn's ``MLPClassifier`` lives in
:mod:`sklegc._vocabulary`; the skorch net that trains is :class:`sklegc.net.PrunableNet`.
"""

import contextlib
import copy
import inspect
import math
import os
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
from skorch.callbacks import (
    BatchScoring,
    Callback,
    Checkpoint,
    EarlyStopping,
    EpochScoring,
    InputShapeSetter,
    LoadInitState,
    LRScheduler,
)
from skorch.history import History
from skorch.utils import get_map_location
from torch.optim.lr_scheduler import ReduceLROnPlateau

from ._jit import compile_in_background
from ._vocabulary import MLPVocabularyMixin, recognised_mistake, unknown_parameter_message
from .batching import TensorBatches
from .export import install_onnx_registration
from .granger import LAG_SELECTIONS, granger_tests, max_feasible_lag
from .masks import (
    CORRECTIONS,
    UNTESTABLE_POLICIES,
    FixedMask,
    accuracy_limited_count,
    apply_masks,
    baseline_keep,
    causality_key,
    check_chain,
    connection_sensitivity,
    imp_schedule,
    noncausal_mask,
    noncausal_units,
    pruned_count,
    pruning_order,
    refresh_masked_weights,
    remove_masks,
    saliency_keep,
    unit_baseline_keep,
)
from .net import Convergence, PrunableNet
from .network import ACTIVATIONS, LOSSES, MLP, ClassificationLoss, prunable_layers, scores_to_proba
from .threads import limited_threads, torch_rng_lock, worker_thread_budget
from .trajectory import TrainingAccuracy, WeightTracer, accuracy
from .windows import min_window_size, n_windows, window_stride

PAPER_MAXLAG = 14

PAPER_PARAMS = {
    "activation": "logistic",
    "loss": "mse",
    "optimizer": torch.optim.SGD,
    "alpha": 0.0,
    "batch_size": 1,
    "tol": None,
    "mode": "ft",
    "trace_fraction": 0.1,
    "window_size": 200,
    "maxlag": PAPER_MAXLAG,
}
"""The paper's training protocol, one line away from the defaults.

Per-sample SGD on sigmoid units with the squared-error loss and no L2 penalty, a fixed
number of epochs (no convergence stop), the whole dense run traced (LEGCNet-FT; with
``mode="pt"`` the first 10% of the epochs, which the paper set per dataset), windows of 200
steps and the Granger test over lags 1..14. The rest of the paper's protocol is the
defaults (``significance=0.05``, ``fine_tune="rewind"``); the paper sized the network, the
learning rate and the epochs per dataset, so they are not in it::

    LEGCPrunedClassifier(**PAPER_PARAMS, hidden_layer_sizes=(6,), lr=0.01, max_epochs=50)
"""

# Prefixed parameters are routed to skorch, as in skorch itself.
# Optimizers whose fused implementation the default module gets (see _build_net).
_FUSED_OPTIMIZERS = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.Adagrad)

_ROUTED_PREFIXES = ("module__", "optimizer__", "iterator_train__", "iterator_valid__",
                    "callbacks__")

# The rules behind the "auto" values; docs/user_guide.md gives the figures behind them.
_AUTO_MAX_BATCH = 200  # batch_size="auto": MLPClassifier's batch of 200 rows ...
_AUTO_ROWS_PER_STEP = 32  # ... but at least 32 optimizer steps per epoch while tracing
_AUTO_WINDOW = (30, 200)  # window_size="auto": a quarter of an epoch's steps, clipped
_MONITOR_ROWS = 10_000  # accuracies during training are measured on at most this many rows
_AUTO_TRACE_WINDOWS = 44  # trace_fraction="auto": the windows traced in mode="pt"

# Below this many multiply-adds per optimizer step (batch rows x parameters) a thread pool
# costs more than it saves: on 2 cores, a (3, 3) cross-entropy took 0.004 ms on one thread
# and 0.28 ms on two. Such phases train on one thread.
_ONE_THREAD_WORK = 2 ** 20

ACCURACY_TOLERANCE = 0.02
"""Largest drop in accuracy, dense to pruned on the decision data, that passes silently."""

# Accuracies are ratios of (weighted) counts: a floor of dense - max_accuracy_drop must not
# fail a network by the rounding of that subtraction.
_ACCURACY_EPS = 1e-12

# pruning="snip": the connection sensitivity is computed on one batch of this many training
# rows (Lee et al. 2019 used their training batches, 100 to 128 examples).
_SNIP_ROWS = 128

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

# Features whose spread exceeds this stall a sigmoid or tanh network and make SGD unstable.
_LARGE_SCALE = 100.0


def _state_key(layer, attribute):
    """The ``state_dict`` key of a layer's attribute (the root module's name is "")."""
    return f"{layer}.{attribute}" if layer else attribute


class PruningWarning(UserWarning):
    """The pruning step did something the user should look at (nothing pruned, a layer
    emptied, accuracy lost)."""


@dataclass
class _Data:
    """One fit's data as tensors: training rows, validation rows, the rows the accuracies
    and the decision are measured on, the held-out rows (``max_accuracy_drop``; the
    validation rows with ``early_stopping``), and their sample weights (None: unweighted)."""

    X: object
    y: object
    w: object
    X_val: object = None
    y_val: object = None
    w_val: object = None
    X_acc: object = None
    y_acc: object = None
    w_acc: object = None
    X_held: object = None
    y_held: object = None
    w_held: object = None

    @property
    def held_out(self):
        """The rows held out from training (None when there are none)."""
        return self.X_held, self.y_held, self.w_held

    @property
    def monitor(self):
        """The decision data: the validation rows if any, else (a sample of) the training rows."""
        if self.X_val is not None:
            return self.X_val, self.y_val, self.w_val
        return self.X_acc, self.y_acc, self.w_acc

    @property
    def fit_input(self):
        return self.X if self.w is None else {"X": self.X, "sample_weight": self.w}


@dataclass
class _Plan:
    """What one fit does, with every "auto" value resolved."""

    pruning: str
    batch_size: int  # of the untraced phases
    trace_batch_size: int
    steps_per_epoch: int  # of the dense phase
    dense_epochs: int
    window_size: int = None
    min_windows: int = None
    maxlag: int = None

    @property
    def traced(self):
        return self.pruning == "legc"


def _sentence(exc):
    """An exception's message as a sentence, ready for ours to follow."""
    text = str(exc).rstrip()
    return text if text.endswith((".", "!", "?")) else text + "."


@contextlib.contextmanager
def _watch_sigint(net):
    """Mark a Ctrl-C as one on ``net`` (``net.sigint_``) while it trains, so that it is never
    taken for a stopping rule's ``KeyboardInterrupt`` (see ``PrunableNet.notify``). Python's
    own handler stays in place where it is not the one installed, or off the main thread
    (where no signal handler can be set)."""
    net.sigint_ = False
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return

    def handler(signum, frame):
        net.sigint_ = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


class _RecordPhase(Callback):
    """Records the phase in each epoch's row as it begins, where callbacks (a Checkpoint's
    saved history, a scorer) can read it."""

    def __init__(self, phase):
        self.phase = phase

    def on_epoch_begin(self, net, **kwargs):
        net.history.record("phase", self.phase)


class LEGCPrunedClassifier(MLPVocabularyMixin, ClassifierMixin, BaseEstimator):
    """Neural-network classifier pruned by chaos-causality (LEGCNet).

    ``fit`` trains a dense multi-layer perceptron while tracing every weight, computes
    each weight's largest Lyapunov exponent over overlapping windows of its trajectory,
    tests whether that exponent series Granger-causes the network's misclassification
    rate, prunes the non-causal weights, and fine-tunes the sparse network (by default
    from the same initial weights, as the paper does). The pruned weights are held at zero
    by :mod:`torch.nn.utils.prune` masks.

    It is a drop-in for scikit-learn's ``MLPClassifier``: the defaults are
    ``MLPClassifier``'s network and training (100 ReLU units, Adam at 1e-3, L2 penalty
    1e-4, log loss, stop when the training loss stops improving), and the sizes the
    method needs are chosen from the data. ``MLPClassifier`` parameters spelled
    differently here (``max_iter``, ``learning_rate_init``, ``solver``, ...) are refused
    with the name to use. The paper's protocol is :data:`PAPER_PARAMS`.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
        Width of each hidden layer of the default MLP (``MLPClassifier``'s default).
    activation : {"relu", "logistic", "sigmoid", "tanh", "identity"}, default="relu"
        Hidden-unit non-linearity of the default MLP; ``"logistic"`` and ``"sigmoid"`` are
        the same (the paper's).
    alpha : float >= 0, default=1e-4
        L2 penalty, as in ``MLPClassifier``: ``alpha / 2 * sum(W ** 2)`` over the weights
        of the ``nn.Linear`` layers (not the biases), divided by the number of samples in
        the batch (with sample weights: by their sum in the batch), is added to the batch
        loss.
    batch_size : int or "auto", default="auto"
        Mini-batch size. ``"auto"`` is ``MLPClassifier``'s ``min(200, n_samples)`` in the
        untraced phases (``pruning="none"``, the baselines, a PT run trained on,
        ``partial_fit``) and ``clip(n_samples // 32, 1, 200)`` in the traced phase: 32 to
        48 optimizer steps per epoch from 64 rows on (one row per step below), so that the
        trajectories have steps enough for their windows. Fine-tuning from the rewound
        weights trains as the dense network did: the traced phase's epochs in its batches,
        the rest in the untraced ones.
    lr : float, default=1e-3
        Learning rate (``MLPClassifier``'s ``learning_rate_init``).
    max_epochs : int, default=200
        Most epochs of each training phase (``MLPClassifier``'s ``max_iter``).
    optimizer : torch.optim.Optimizer subclass, default=torch.optim.Adam
        Optimizer class (``MLPClassifier``'s ``solver``); ``optimizer__*`` parameters are
        passed to it (``optimizer__momentum``, ``optimizer__betas``, ...).
    loss : {"cross_entropy", "mse"}, default="cross_entropy"
        ``"cross_entropy"`` is the log loss ``MLPClassifier`` minimises; ``"mse"`` is the
        paper's squared error on the sigmoid / softmax outputs.
    tol : float >= 0 or None, default=1e-4
        Convergence: a phase stops when its training loss (validation accuracy with
        ``early_stopping``) has not improved by at least ``tol`` for more than
        ``n_iter_no_change`` epochs in a row, as in ``MLPClassifier``. ``None`` never
        stops early (the paper trained for a fixed number of epochs). The rule does not end
        a ``mode="pt"`` trace (it runs its planned epochs, then applies to the training
        that follows); a ``mode="ft"`` trace never stops before it has the windows the
        Granger test needs.
    n_iter_no_change : int, default=10
        See ``tol``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified): convergence is
        judged on its accuracy, the best epoch's weights are restored at the end of each
        phase, and the misclassification rate the causality test reads is measured on it.
    validation_fraction : float in (0, 1), default=0.1
        Share of the training data held out with ``early_stopping``.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, as in ``LogisticRegression``: ``"balanced"`` is
        ``n_samples / (n_classes * np.bincount(y))``. They multiply ``sample_weight`` and,
        like it, weigh the loss and the misclassification rate the causality test reads.
        The loss of a batch is its weighted average, as ``MLPClassifier`` computes it with
        ``sample_weight`` (:class:`~sklegc.network.ClassificationLoss`); in a batch of one
        row the weight cancels, so a phase trained with ``batch_size=1`` is not weighted
        (a warning says so).
    warm_start : bool, default=False
        When fitted, ``fit`` starts from the fitted network and its mask: the pruned
        weights stay pruned, the new decision can prune further (iterative pruning: only
        if the new trace still moves; a network that has converged gives a constant
        misclassification series, and a warning says nothing more is pruned), and the
        rewind goes back to the first fit's initial weights.
    module : torch.nn.Module subclass or instance, default=None
        A network to use instead of the default MLP. Its ``forward`` returns raw scores of
        shape (n_samples, 1) for a binary problem, (n_samples, n_classes) otherwise. If its
        constructor takes ``n_features`` / ``n_outputs`` they are filled in; other arguments
        come from ``module__*`` parameters. Every ``nn.Linear`` weight in it is prunable.
        A module whose parameters are float64 is trained in float64; float16 and bfloat16
        are refused. An instance is copied and the copy moved to ``device``; one on the
        ``"meta"`` device (no weights) is refused.
    pruning : {"legc", "magnitude", "random", "snip", "imp", "none"}, default="legc"
        ``"legc"`` is the method; ``"magnitude"`` and ``"random"`` are the paper's baselines
        (global unstructured L1 pruning of the trained weights, or random pruning, of
        ``amount`` weights, no tracing); ``"none"`` trains the dense network only.
        Baselines beyond the paper, of ``amount`` weights too: ``"snip"`` (Lee, Ajanthan
        and Torr 2019) prunes the weights of lowest connection sensitivity
        ``|dL/dw * w|``, computed once at initialisation on a random batch of up to 128
        training rows, globally; ``"imp"`` is iterative magnitude pruning with rewinding,
        the lottery-ticket procedure (Frankle and Carbin 2019): ``imp_rounds`` rounds,
        each pruning ``1 - (1 - a) ** (1 / imp_rounds)`` of the remaining weights by
        global magnitude (``a`` the share ``amount`` gives), going back to the initial
        weights (``fine_tune``) and training, so that the last round's network has
        ``amount`` weights pruned.
    granularity : {"weight", "neuron"}, default="weight"
        What is pruned. ``"weight"`` prunes single weights (the paper). ``"neuron"`` prunes
        hidden units as a whole, with their incoming and outgoing weights, so that
        :meth:`compress` turns the pruning into a network with fewer units: with
        ``pruning="legc"`` a unit is pruned when its weights are jointly non-causal (the
        Simes combination of their p-values, :func:`sklegc.masks.unit_pvalues`); the
        baselines prune the units of smallest incoming L1 norm, or random units, of each
        hidden layer (:func:`sklegc.masks.unit_baseline_keep`). ``significance``,
        ``correction``, ``untestable``, ``max_sparsity`` and ``amount`` then count hidden
        units. Input features and output units are never pruned. Needs a chain of
        ``nn.Linear`` layers (the default MLP); other modules are refused before training.
    mode : {"pt", "ft"}, default="pt"
        ``"pt"`` (LEGCNet-PT) traces only the start of the dense run (``trace_fraction``)
        and stops dense training there (unless ``max_accuracy_drop`` needs the trained
        dense network), so that pruning costs a fraction of a training run; ``"ft"``
        (LEGCNet-FT) traces the whole dense run.
    trace_fraction : float in (0, 1] or "auto", default="auto"
        With ``mode="pt"``, the share of ``max_epochs`` traced (the paper: 0.1, rounded,
        at least one epoch); ``"auto"`` traces the epochs that give the windows the
        Granger test needs.
    window_size : int or "auto", default="auto"
        Steps per window of the weight trajectories (the paper: 160 to 250). ``"auto"`` is
        a quarter of an epoch's optimizer steps, clipped to [30, 200], shortened where the
        planned steps would not give the windows the Granger test needs.
    window_overlap : float in [0, 1), default=0.1
        Overlap of consecutive windows.
    embedding_dim, delay, le_steps, theiler_window : int, default=2, 1, 3, 0
        Parameters of the Lyapunov exponent (TISEAN ``lyap_r -m2 -d1 -s3``, Theiler 0).
    maxlag : int or "auto", default="auto"
        Largest Granger lag. ``"auto"`` uses the paper's 14 or, with too few windows for
        it, the largest feasible lag (with a warning).
    significance : float in (0, 1), default=0.05
        Significance level of the Granger test: a weight whose p-value is
        ``>= significance`` is pruned.
    gc_test : {"ssr_chi2test", "ssr_ftest"}, default="ssr_chi2test"
        Granger test statistic (statsmodels' names).
    stationarity : {None, "difference", "adf"}, default=None
        What the Granger test does to the series first (see
        :func:`sklegc.granger.granger_tests`): nothing (the paper), first differences, or
        first differences where the augmented Dickey-Fuller test does not reject a unit
        root (the authors' code had this check, off by default).
    lag_selection : {"min_p", "fixed", "aic", "bic", "bonferroni", "simes"}, default="min_p"
        Which p-value over the lags ``1..maxlag`` a weight gets (see
        :func:`sklegc.granger.granger_tests`): the smallest (the paper), the test at
        ``maxlag``, at the lag AIC or BIC chooses, or a Bonferroni or Simes combination
        over the lags. The paper's rule (``"min_p"``, ``"ssr_chi2test"``, no stationarity
        check) is not a test at its level: on series that no weight can cause it called
        34-88% of the weights causal at 0.05; ``stationarity="adf"``,
        ``lag_selection="bic"``, ``gc_test="ssr_ftest"`` called 4.8-6.0%
        (``docs/reproduction.md``, "Calibration of the causality test").
    effect : {"misclassification", "loss"}, default="misclassification"
        The series the Granger test reads, measured on the decision data at the end of
        every window: the misclassification rate (the paper), or the loss (the training
        criterion, sample-weighted, without the L2 penalty), which moves while the network
        learns even when its predicted labels do not (a rare class, a plateau of the error
        rate). Both are recorded (``misclassification_``, ``window_loss_``).
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
        Prune at most this share of the weights (of the hidden units with
        ``granularity="neuron"``), least causal first (beyond the paper); it also caps
        ``amount``, for the method and the baselines alike.
    max_accuracy_drop : float in [0, 1] or None, default=None
        Accuracy-constrained pruning (beyond the paper): prune in the method's order
        (``pruning_order_``: least causal, smallest, least sensitive first; random for
        ``"random"``) only as far as the accuracy on held-out rows allows. The rule
        (``significance``, ``correction``, ``max_sparsity``, ``amount``) gives the most
        that may be pruned; ``amount=1.0`` makes every weight a candidate, "prune as far
        as the accuracy allows". ``validation_fraction`` of the training rows is held out,
        stratified, as ``early_stopping`` holds them out (the same rows when both are set),
        and never trained on. **Guaranteed**: the final network's accuracy on those rows
        is at least the dense network's minus ``max_accuracy_drop``
        (``heldout_accuracy_ >= dense_heldout_accuracy_ - max_accuracy_drop``), and a
        pruned network's is above what predicting the most frequent class gets on those
        rows (``accuracy_search_["chance"]``; if the dense network's is not, the rows cannot
        tell a pruned network from a broken one: nothing is pruned, with a
        :class:`PruningWarning`). Not
        guaranteed: the same on other data (the held-out rows also chose how much to
        prune, so expect a larger drop on a test set, the more so the fewer the rows),
        nor that the most prunable count is found. How: the count is chosen by bisection
        (:func:`sklegc.masks.accuracy_limited_count`) on the trained dense weights with the
        first candidates masked, forward passes only; the sparse network is then
        fine-tuned once (``fine_tune``) and its held-out accuracy verified; if
        fine-tuning lost more than allowed, the masked dense weights, which passed, are
        kept instead, with a :class:`PruningWarning`. ``pruning="imp"`` checks each
        round's trained network instead and stops at the first that loses more than
        allowed, keeping the round before (the dense network before the first).
        ``accuracy_search_`` records what was tried. The comparison is with the fully
        trained dense network: with ``mode="pt"`` the dense network is trained on,
        untraced, to ``max_epochs`` after the decision has read its PT trace (so the fit
        trains the dense network fully, then the sparse one), and ``"random"`` and
        ``"snip"`` train it too.
    amount : int, float or None, default=None
        For the baselines, the number (int) or share (float) of weights to prune. With
        ``pruning="legc"``, prune exactly that many, ranked by p-value, instead of
        ``significance``.
    imp_rounds : int >= 1, default=3
        Rounds of ``pruning="imp"``. Each trains the network again (for at most
        ``fine_tune_epochs``), so the fit trains ``imp_rounds + 1`` times.
    fine_tune : {"rewind", "continue", None}, default="rewind"
        ``"rewind"`` retrains the sparse network from the initial weights (the paper),
        ``"continue"`` trains on from the dense weights, ``None`` keeps the masked dense
        weights (not with ``pruning="imp"``, which trains between rounds; with
        ``pruning="legc"`` and ``mode="pt"`` only with ``max_accuracy_drop``, which trains
        the dense network fully). When nothing is
        pruned the dense network is kept (and, in ``"pt"`` mode, trained on) rather than
        trained again.
    fine_tune_epochs : int or None, default=None
        Most epochs of fine-tuning; ``None`` means ``max_epochs``.
    target_accuracy : float in (0, 1] or None, default=None
        Training accuracy that counts as trained. The first epoch reaching it is recorded
        for each phase (the paper's "epochs"); untraced phases stop there.
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks (objects, classes, or ``(name, callback)`` pairs). Each
        training phase (the dense phase, fine-tuning, a ``partial_fit`` epoch) gets a fresh
        (shallow) copy of each, initialised by skorch for that phase's optimizer: the
        objects passed here are never changed, and what they refer to (a writer, a list
        they collect into) is shared. An ``LRScheduler`` starts over with each new
        optimizer. A callback that stops training (``EarlyStopping``) is held off in the
        traced phase until the trace has the windows the Granger test needs, and stops it
        then. Callbacks that cannot work here (a monitor of a validation column, scoring
        with ``on_train=False``, ``LoadInitState``, ...) are refused when ``fit`` starts;
        docs/user_guide.md, "Callbacks and skorch", lists what each does.
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
        ``module__*``, ``optimizer__*``, ``iterator_train__*``, ``iterator_valid__*`` and
        ``callbacks__*`` parameters, routed as in skorch. Any other name is refused with
        a ``TypeError``: at once when it is an ``MLPClassifier`` name spelled differently
        here (the message names the one to use) or a near miss of a valid name, else when
        ``fit`` starts.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when ``X`` had string column names.
    net_ : sklegc.net.PrunableNet
        The trained skorch net (the sparse one after pruning); ``net_.history`` holds every
        epoch of every phase, with ``phase`` and ``train_accuracy`` columns (and
        ``valid_acc`` with ``early_stopping``).
    coefs_ : list of ndarray
        ``coefs_[i]`` of shape (n_inputs, n_outputs): the weights of the ``i``-th
        ``nn.Linear`` layer, as in ``MLPClassifier``; pruned weights are exactly 0.
        Read-only copies of the network's weights (writing raises ``ValueError``, where
        in ``MLPClassifier`` it would change the model): change the network through
        ``net_.module_``, or export it with :meth:`to_mlpclassifier`.
    intercepts_ : list of ndarray
        ``intercepts_[i]`` of shape (n_outputs,): the biases of that layer (read-only).
    loss_curve_ : list of float
        Training loss of every epoch of every phase, in order (the dense phase, then
        fine-tuning, then each ``partial_fit``); the ``phase`` column of ``net_.history``
        says which phase each entry belongs to. The loss includes the L2 penalty. An
        epoch's loss is the average of its batches' losses weighted by their rows, as in
        ``MLPClassifier``; with sample weights, weighted by the batches' weights instead
        (the epoch's weighted average loss, :class:`~sklegc.net.EpochLoss`).
    loss_ : float
        Training loss of the last epoch.
    best_loss_ : float or None
        Lowest training loss of the phase that produced the final weights; None with
        ``early_stopping``, as in ``MLPClassifier``.
    validation_scores_ : list of float or None
        Validation accuracy of every epoch of every phase with ``early_stopping``, else None.
    best_validation_score_ : float or None
        Best validation accuracy of the phase that produced the final weights (whose
        weights it restored), with ``early_stopping``; else None.
    n_iter_ : int
        Epochs run, all phases together (``len(loss_curve_)``).
    t_ : int
        Training samples seen by the optimizer, all phases together.
    n_layers_ : int
        Number of layers, input layer included (``MLPClassifier``'s count).
    n_outputs_ : int
        Output units: 1 for a binary problem, the number of classes otherwise.
    out_activation_ : str
        ``"logistic"`` (binary) or ``"softmax"``, the output non-linearity of
        ``predict_proba``.
    batch_size_, trace_batch_size_, window_size_ : int
        The batch sizes of the untraced phases and of the traced phase, and the window
        length (``"auto"`` resolved); ``trace_batch_size_`` and ``window_size_`` are None
        without tracing.
    mask_ : dict of str to ndarray of bool
        Per prunable layer, True where the weight is kept.
    weight_layers_ : list of (str, tuple)
        Prunable layers and their weight shapes, the order of the flat weight index.
    lyapunov_ : ndarray of shape (n_windows, n_weights) or None
        Windowed Lyapunov exponents of every weight (``pruning="legc"`` only).
    misclassification_ : ndarray of shape (n_windows,) or None
        Misclassification rate at the end of each window.
    window_loss_ : ndarray of shape (n_windows,) or None
        Loss on the decision data at the end of each window (see ``effect``).
    effect_ : ndarray of shape (n_windows,) or None
        The series the Granger test read: ``misclassification_`` or ``window_loss_``, as
        ``effect`` says.
    window_ends_ : ndarray of shape (n_windows,) or None
        The optimizer step at which each window ends.
    granger_result_ : sklegc.granger.GrangerResult or None
        The full Granger test results, with the options used (``test``,
        ``stationarity``, ``lag_selection``, ``maxlag``).
    granger_pvalues_ : ndarray of shape (n_weights,) or None
        Each weight's p-value, as ``lag_selection`` defines it (by default the minimum
        over lags); NaN where it cannot be computed.
    pruning_order_ : ndarray of int
        The flat indices of the weights the rule prunes at most, in the order the method
        prunes them (largest p-value, smallest trained magnitude, lowest sensitivity
        first; a random order for ``"random"``; round by round for ``"imp"``, the rounds
        run). With ``max_accuracy_drop`` the pruned weights are its first ones.
    saliency_ : ndarray of shape (n_weights,) or None
        ``pruning="snip"``: every weight's connection sensitivity ``|dL/dw * w|`` at
        initialisation; None otherwise.
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
    dense_accuracy_, pruned_accuracy_ : float or None
        Accuracy of the dense network at the end of its phase and of the final network,
        on the decision data (the validation rows with ``early_stopping``, else the
        training rows, at most 10,000 of them); None where there was no dense phase.
    dense_heldout_accuracy_, heldout_accuracy_ : float or None
        The same on the rows held out from training (``max_accuracy_drop`` or
        ``early_stopping``); None without them (``dense_heldout_accuracy_`` also where
        there was no dense phase).
    accuracy_search_ : dict or None
        With ``max_accuracy_drop``: ``"dense"`` (held-out accuracy of the dense network),
        ``"floor"`` (the lowest accuracy allowed), ``"candidates"`` (weights the rule
        allowed to prune), ``"trials"`` (list of (weights pruned, held-out accuracy): the
        masked dense networks the bisection evaluated, or IMP's trained rounds),
        ``"pruned"`` (weights pruned), ``"fine_tuned"`` (held-out accuracy after
        fine-tuning, None without fine-tuning) and ``"fallback"`` (whether the masked
        dense weights, or an earlier IMP round, replaced the fine-tuned network). None
        otherwise.
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
    n_units_removed_ : int
        Hidden units that :meth:`compress` removed; set by :meth:`compress`.
    compression_ : dict
        What :meth:`compress` did, set by it: ``"layers"``, one row per ``nn.Linear`` layer
        (``shape before``, ``shape after``, ``units removed``, ``% zero before``,
        ``% zero after``, ``storage`` and ``bytes before`` / ``bytes after`` of the layer's
        tensors as pickled, see :class:`sklegc.compress.Compression`); ``"dropped"``, the
        attributes it set to None; ``"n_untestable"``, the untestable weights of the
        Granger decision (None without one), for :meth:`pruning_report`.

    Notes
    -----
    Input: ``X`` must be numeric and finite. SciPy sparse matrices are accepted and turned
    into dense arrays (the network computes on dense tensors), so a very wide sparse ``X``
    costs its full dense size in memory. ``X`` and ``y`` are never modified, and the fitted
    model keeps no reference to them. Standardise the features (``StandardScaler``):
    features on large scales stall training, and ``fit`` warns about them.

    Threads: inside a parallel search (joblib's loky workers, dask workers) ``fit`` caps
    torch's threads and those of the analysis kernels at the worker's share of the cores
    (``OMP_NUM_THREADS``, or one thread per task of a dask worker thread) and restores
    them afterwards, so that ``n_jobs`` workers do not each use every core.

    Persistence: the fitted estimator pickles (``pickle``, ``joblib.dump``) without its
    training data. Loading a pickle runs code from it: load only files you trust.
    :meth:`save_params` and :meth:`load_params` save and load the network's state with
    skorch, masks included.

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
    >>> clf = make_pipeline(StandardScaler(), LEGCPrunedClassifier(random_state=0))
    >>> clf.fit(X, y).score(X, y) > 0.9
    True
    >>> clf[-1].n_weights_
    700
    """

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "optimizer": [type],
        "loss": [StrOptions(set(LOSSES))],
        "tol": [None, Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "class_weight": [None, dict, StrOptions({"balanced"})],
        "warm_start": ["boolean"],
        "module": [None, type, torch.nn.Module],
        "pruning": [StrOptions({"legc", "magnitude", "random", "snip", "imp", "none"})],
        "granularity": [StrOptions({"weight", "neuron"})],
        "mode": [StrOptions({"ft", "pt"})],
        "trace_fraction": [Interval(Real, 0, 1, closed="right"), StrOptions({"auto"})],
        "window_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "window_overlap": [Interval(Real, 0, 1, closed="left")],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "delay": [Interval(Integral, 1, None, closed="left")],
        "le_steps": [Interval(Integral, 1, None, closed="left")],
        "theiler_window": [Interval(Integral, 0, None, closed="left")],
        "maxlag": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "significance": [Interval(Real, 0, 1, closed="neither")],
        "gc_test": [StrOptions({"ssr_chi2test", "ssr_ftest"})],
        "stationarity": [None, StrOptions({"difference", "adf"})],
        "lag_selection": [StrOptions(set(LAG_SELECTIONS))],
        "effect": [StrOptions({"misclassification", "loss"})],
        "correction": [None, StrOptions({k for k in CORRECTIONS if k})],
        "untestable": [StrOptions(set(UNTESTABLE_POLICIES))],
        "on_empty_layer": [StrOptions({"warn", "raise"})],
        "max_sparsity": [None, Interval(Real, 0, 1, closed="both")],
        "max_accuracy_drop": [None, Interval(Real, 0, 1, closed="both")],
        "amount": [
            None,
            Interval(Integral, 0, None, closed="left"),
            Interval(Real, 0, 1, closed="both"),
        ],
        "imp_rounds": [Interval(Integral, 1, None, closed="left")],
        "fine_tune": [None, StrOptions({"rewind", "continue"})],
        "fine_tune_epochs": [None, Interval(Integral, 0, None, closed="left")],
        "target_accuracy": [None, Interval(Real, 0, 1, closed="right")],
        "callbacks": [None, list],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        alpha=1e-4,
        batch_size="auto",
        lr=1e-3,
        max_epochs=200,
        optimizer=torch.optim.Adam,
        loss="cross_entropy",
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        class_weight=None,
        warm_start=False,
        module=None,
        pruning="legc",
        granularity="weight",
        mode="pt",
        trace_fraction="auto",
        window_size="auto",
        window_overlap=0.1,
        embedding_dim=2,
        delay=1,
        le_steps=3,
        theiler_window=0,
        maxlag="auto",
        significance=0.05,
        gc_test="ssr_chi2test",
        stationarity=None,
        lag_selection="min_p",
        effect="misclassification",
        correction=None,
        untestable="keep",
        on_empty_layer="warn",
        max_sparsity=None,
        max_accuracy_drop=None,
        amount=None,
        imp_rounds=3,
        fine_tune="rewind",
        fine_tune_epochs=None,
        target_accuracy=None,
        callbacks=None,
        device="cpu",
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.alpha = alpha
        self.batch_size = batch_size
        self.lr = lr
        self.max_epochs = max_epochs
        self.optimizer = optimizer
        self.loss = loss
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.module = module
        self.pruning = pruning
        self.granularity = granularity
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
        self.stationarity = stationarity
        self.lag_selection = lag_selection
        self.effect = effect
        self.correction = correction
        self.untestable = untestable
        self.on_empty_layer = on_empty_layer
        self.max_sparsity = max_sparsity
        self.max_accuracy_drop = max_accuracy_drop
        self.amount = amount
        self.imp_rounds = imp_rounds
        self.fine_tune = fine_tune
        self.fine_tune_epochs = fine_tune_epochs
        self.target_accuracy = target_accuracy
        self.callbacks = callbacks
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        for key, value in kwargs.items():
            self._refuse_recognised_mistake(key, TypeError)
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
            self._refuse_recognised_mistake(key, ValueError)
            setattr(self, key, params.pop(key))
        return super().set_params(**params) if params else self

    def _refuse_recognised_mistake(self, name, error):
        # Other unknown names are refused by fit (see sklegc._vocabulary).
        valid = self._get_param_names()
        if not name.startswith(_ROUTED_PREFIXES) and recognised_mistake(name, valid):
            raise error(unknown_parameter_message(name, valid))

    def _check_params(self):
        unknown = [k for k in self._routed_params() if not k.startswith(_ROUTED_PREFIXES)]
        if unknown:
            raise TypeError(unknown_parameter_message(unknown[0], self._get_param_names()))
        self._validate_params()
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        if not all(isinstance(s, Integral) and s >= 1 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must hold positive integers, got {self.hidden_layer_sizes!r}."
            )
        if self.pruning in ("magnitude", "random", "snip", "imp") and self.amount is None:
            raise ValueError(
                f"pruning={self.pruning!r} needs `amount`: the number (int) or share (float in "
                "[0, 1]) of weights to prune, e.g. amount=0.1 (with max_accuracy_drop, "
                "amount=1.0 prunes as far as the held-out accuracy allows)."
            )
        if self.pruning == "imp" and (self.amount == 1.0 and isinstance(self.amount, float)):
            raise ValueError(
                "pruning='imp' with amount=1.0 prunes 1 - (1 - 1.0) ** (1 / imp_rounds) = "
                "every weight in its first round: no round trains a network (and none can "
                "pass max_accuracy_drop). Give the share to reach in "
                "the last round, e.g. amount=0.99 with imp_rounds=5 (each round then prunes "
                "60% of the remaining weights)."
            )
        if self.pruning == "imp" and self.fine_tune is None:
            raise ValueError(
                "pruning='imp' trains the network after every round of pruning: use "
                "fine_tune='rewind' (the lottery-ticket procedure) or 'continue'."
            )
        if (self.fine_tune is None and self.pruning == "legc" and self.mode == "pt"
                and self.max_accuracy_drop is None):
            raise ValueError(
                "fine_tune=None keeps the dense weights, which mode='pt' trained only "
                "partially. Use fine_tune='rewind' or 'continue' with mode='pt', mode='ft' "
                "with fine_tune=None, or mode='pt' with max_accuracy_drop (which trains the "
                "dense network fully)."
            )
        if self.pruning == "legc" and self.window_size != "auto":
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
        self._check_callbacks()
        return sizes

    def _check_callbacks(self):
        """Refuse, before training, the skorch callbacks and parameters that cannot work here."""
        routed = self._routed_params()
        if "iterator_train__batch_size" in routed:
            raise ValueError(
                "iterator_train__batch_size is not supported: use batch_size, from which the "
                "traced phase's steps and windows are planned."
            )
        for key, value in routed.items():
            name = key[len("callbacks__"):]
            if key.startswith("callbacks__") and "__" not in name and value is not None:
                raise ValueError(
                    f"{key}={value!r} replaces a callback through a parameter, which skorch "
                    f"would then change in place: pass the new callback in `callbacks` instead "
                    f"(set_params(callbacks=[...])), or {key}=None to turn it off."
                )
        # A callback turned off with callbacks__<name>=None is not used.
        resolved = [cb for name, cb in self._resolved_callbacks()
                    if routed.get(f"callbacks__{name or type(cb).__name__}", cb) is not None]
        scored = {"valid_acc"} if self.early_stopping else set()
        for cb in resolved:
            if isinstance(cb, (EpochScoring, BatchScoring)):
                if not cb.on_train:
                    raise ValueError(
                        f"callbacks: {type(cb).__name__}({cb.scoring!r}) with on_train=False "
                        "scores a validation split, which LEGCPrunedClassifier does not make "
                        "(skorch's train_split=None), so it would record nothing. Pass "
                        "on_train=True to score the training rows; with early_stopping=True the "
                        "held-out rows' accuracy is recorded as 'valid_acc'."
                    )
                name = cb.initialize().name_
                scored |= {name, f"{name}_best"}
        for cb in resolved:
            self._check_callback(cb, scored)

    def _check_callback(self, cb, scored):
        name = type(cb).__name__
        monitor = getattr(cb, "monitor", None)
        reads_monitor = isinstance(cb, (EarlyStopping, Checkpoint)) or (
            isinstance(cb, LRScheduler) and cb._get_policy_cls() is ReduceLROnPlateau)
        if reads_monitor and isinstance(monitor, str) and monitor.startswith("valid_") \
                and monitor not in scored:
            raise ValueError(
                f"callbacks: {name}(monitor={monitor!r}) reads {monitor!r}, which skorch records "
                "only on a validation split; LEGCPrunedClassifier trains without one (skorch's "
                "train_split=None). Monitor 'train_loss' ('train_loss_best' for a "
                "Checkpoint), or set early_stopping=True, which holds out validation_fraction "
                "of the rows and records their accuracy as 'valid_acc' (monitor it with "
                "lower_is_better=False)."
            )
        if isinstance(cb, Checkpoint) and cb.load_best and cb.f_history is not None:
            raise ValueError(
                "callbacks: Checkpoint(load_best=True) would load the checkpoint's history in "
                "place of the fit's, whose epochs record the training phases. Pass "
                "f_history=None to restore the best parameters only."
            )
        if isinstance(cb, LoadInitState):
            raise ValueError(
                "callbacks: LoadInitState would load its checkpoint at the start of every "
                "training phase, over the rewound weights and the masks. To train on from a "
                "fitted model use warm_start=True; to load saved parameters into a fitted "
                "model, its load_params(...)."
            )
        if isinstance(cb, InputShapeSetter):
            raise ValueError(
                f"callbacks: InputShapeSetter would re-create the module from X after its "
                f"initial weights were recorded for the rewind. Name the module's argument "
                f"n_features (it is filled in from X), or pass module__{cb.param_name}=<number "
                "of features>."
            )

    # -- input ------------------------------------------------------------------------------

    def _validated_X(self, X, y="no_validation", reset=True):
        """``X`` as a float32 array (and ``y`` in fit), checked as scikit-learn checks them."""
        options = dict(accept_sparse=("csr", "csc", "coo"), dtype=[np.float32, np.float64])
        try:
            if isinstance(y, str) and y == "no_validation":
                X = validate_data(self, X, reset=False, **options)
            else:
                X, y = validate_data(self, X, y, ensure_min_samples=2, reset=reset, **options)
        except ValueError as exc:
            fix = next((fix for problem, fix in _INPUT_FIXES if problem in str(exc)), None)
            if fix is None or type(exc) is not ValueError:
                raise
            raise ValueError(f"{_sentence(exc)} {fix}") from exc
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

    def _check_y_shape(self, y):
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

    def _encode(self, y, classes=None):
        check_classification_targets(y)
        if hasattr(self, "classes_"):
            unseen = np.setdiff1d(np.unique(y), self.classes_)
            if unseen.size:
                raise ValueError(
                    f"y holds labels {unseen.tolist()} that the fitted model does not know "
                    f"(its classes_ are {self.classes_.tolist()}). Fit again without "
                    "warm_start to learn new classes."
                )
            return np.searchsorted(self.classes_, y).astype(np.int64)
        encoder = LabelEncoder().fit(y if classes is None else classes)
        if classes is not None and np.setdiff1d(np.unique(y), encoder.classes_).size:
            raise ValueError("y holds labels that are not in `classes`: pass every class "
                             "of the whole data set in `classes`.")
        if len(encoder.classes_) < 2:
            raise ValueError(
                "LEGCPrunedClassifier needs samples of at least 2 classes in the data, but the "
                f"data contain only one class: {encoder.classes_[:1].tolist()[0]!r}. Pass a y "
                "with at least two different labels."
            )
        self.classes_ = encoder.classes_
        return encoder.transform(y).astype(np.int64)

    def _sample_weight(self, sample_weight, X, y):
        """Sample weights times class weights, float32, as given (their scale sets the L2
        penalty's divisor, as in ``MLPClassifier``); None when both are absent."""
        if sample_weight is None and self.class_weight is None:
            return None
        weight = np.ones(len(y), dtype=np.float64)
        if sample_weight is not None:
            weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                          ensure_non_negative=True)
        if self.class_weight is not None:
            try:
                weight = weight * compute_sample_weight(self.class_weight, y)
            except ValueError as exc:
                raise ValueError(f"class_weight={self.class_weight!r}: {_sentence(exc)} Use "
                                 "'balanced' or a dict mapping every class label to a "
                                 "weight.") from exc
        held = weight.astype(np.float32)
        if not np.isfinite(held).all() or (held[weight > 0] < np.finfo(np.float32).tiny).any():
            raise ValueError(
                f"sample weights (times class_weight) range from {weight[weight > 0].min():.3g} "
                f"to {weight.max():.3g}; the network trains in float32, which holds positive "
                f"values from {np.finfo(np.float32).tiny:.3g} to {np.finfo(np.float32).max:.3g}. "
                "Multiply the weights by a common factor to bring them into that range: the "
                "weighted loss is unchanged, and the L2 penalty, divided by the batch's weight "
                "sum, stays the same if alpha is multiplied by the same factor."
            )
        weighted = np.unique(np.asarray(y)[weight > 0])
        if len(weighted) < 2:
            raise ValueError(
                "the sample weights leave fewer than 2 classes with a positive weight "
                f"(classes with weight: {weighted.tolist()}): a classifier needs samples of "
                "at least 2 classes. Give samples of another class a positive weight."
            )
        return held

    def _warn_large_scales(self, X):
        spread = X.std(axis=0) if len(X) > 1 else np.zeros(X.shape[1])
        large = np.flatnonzero((spread > _LARGE_SCALE) | (np.abs(X.mean(axis=0)) > _LARGE_SCALE))
        if large.size:
            warnings.warn(
                f"{large.size} feature(s) (columns {large[:5].tolist()}"
                f"{' ...' if large.size > 5 else ''}) have a mean or standard deviation "
                f"above {_LARGE_SCALE:g}: on such scales the network trains slowly or not at "
                "all. Standardise the features, e.g. make_pipeline(StandardScaler(), "
                "LEGCPrunedClassifier()).",
                UserWarning,
                stacklevel=3,
            )

    # -- fit --------------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Train, prune and fine-tune the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels of any type.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples: they weigh the loss (as in
            ``MLPClassifier``, see :class:`~sklegc.network.ClassificationLoss` for
            mini-batches) and the misclassification rate the causality test reads.

        Returns
        -------
        self : LEGCPrunedClassifier
            The fitted estimator.
        """
        compile_in_background()  # sklegc._jit: the first fit after installing
        warm = bool(self.warm_start) and self.__sklearn_is_fitted__()
        self._warm_fit = warm
        if warm:
            self._refuse_compressed("fit with warm_start=True")
        if not warm:
            # A second fit starts from scratch: nothing of an earlier fit survives, even if
            # this one fails.
            self._clear_fitted()
        sizes = self._check_params()
        self._check_y_shape(y)
        X, y = self._validated_X(X, y, reset=not warm)
        y_enc = self._encode(y)
        if warm and len(np.unique(y_enc)) != len(self.classes_):
            raise ValueError(
                "warm_start can only be used where y has the same classes as in the "
                f"previous call to fit (as in MLPClassifier). Previously got "
                f"{self.classes_.tolist()}, y has {np.unique(y).tolist()}. Pass y with every "
                "class, use partial_fit to train on a subset, or fit with warm_start=False."
            )
        weight = self._sample_weight(sample_weight, X, y)
        self._warn_large_scales(X)
        with self._fit_context() as seed:
            data = self._split(X, y_enc, weight, seed)
            plan = self._plan(len(data.y), self.pruning, self.max_epochs)
            self._warn_weights_cancel(data.w, plan, sample_weight)
            self._fit(data, plan, sizes, seed, warm)
        self._partial_fit_only = False
        return self

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train the network for one more epoch; never prunes.

        On a fitted model the epoch trains the current (pruned) network, with its mask
        held: pruned weights stay zero. On an unfitted model it builds the dense network
        and trains it for one epoch, as ``MLPClassifier.partial_fit`` does; pruning
        happens only in :meth:`fit`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            Every class of the whole data set; required on the first call.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : LEGCPrunedClassifier
        """
        if self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True (as in "
                             "MLPClassifier): set early_stopping=False.")
        fitted = self.__sklearn_is_fitted__()
        if fitted:
            self._refuse_compressed("partial_fit")
        if not fitted and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit: "
                             "every class of the whole data set, e.g. np.unique(y_all).")
        if fitted and classes is not None and not np.array_equal(
                np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(
                f"classes={np.unique(np.asarray(classes)).tolist()} is not the same as the "
                f"fitted model's classes_ {self.classes_.tolist()} (as in MLPClassifier, the "
                "classes are fixed by the first call). Pass the same classes, or none after "
                "the first call; to learn other classes, fit a new model."
            )
        sizes = self._check_params()
        self._check_y_shape(y)
        X, y = self._validated_X(X, y, reset=not fitted)
        y_enc = self._encode(y, classes=None if fitted else classes)
        weight = self._sample_weight(sample_weight, X, y)
        with self._fit_context() as seed:
            data = self._split(X, y_enc, weight, seed, early_stopping=False)
            plan = self._plan(len(data.y), "none", 1)
            self._warn_weights_cancel(data.w, plan, sample_weight)
            if not fitted:
                self._fit(data, plan, sizes, seed, warm=False)
                self._partial_fit_only = True  # for pruning_report: nothing was decided
                return self
            net = self.net_
            self._match_module_dtype(net, data)
            self._train(net, data, 1, "partial_fit", self._phase_callbacks(data, plan, False),
                        plan.batch_size)
            self._record_training_attributes(net)
        return self

    def _refuse_compressed(self, what):
        if getattr(self, "compression_", None) is not None:
            raise ValueError(
                f"{what} cannot train a compressed model: compress() made its masks "
                "permanent, removed units and dropped the rewind point, so training would "
                "revive its pruned weights. Call it before compress(), or fit again without "
                "warm_start; to train the compressed network on, use to_mlpclassifier() with "
                "MLPClassifier's warm_start=True."
            )

    def _clear_fitted(self):
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, name)

    @contextlib.contextmanager
    def _fit_context(self):
        """Seed everything from ``random_state``, leave torch's global RNG as it was, and
        cap the threads inside parallel jobs; yields the seed."""
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        device = torch.device(self.device)
        fork_devices = [device.index or 0] if device.type == "cuda" else []
        with limited_threads(worker_thread_budget()):
            # The global generator is seeded and restored under the lock: a fit running as
            # a thread beside this one seeds it and draws its initial weights under the
            # lock, and must not see it reseeded or restored half-way (that race gave one
            # of two concurrent fits other initial weights in 1 of 10 runs).
            rng = torch.random.fork_rng(devices=fork_devices)
            with torch_rng_lock:
                rng.__enter__()
                torch.manual_seed(seed)
            try:
                yield seed
            finally:
                with torch_rng_lock:
                    rng.__exit__(None, None, None)

    def _split(self, X, y, weight, seed, early_stopping=None):
        """The training, validation, held-out and monitoring rows of one fit (see
        :class:`_Data`); ``early_stopping=False`` holds nothing out."""
        if early_stopping is None:
            early_stopping = self.early_stopping
            hold_out = early_stopping or (self.max_accuracy_drop is not None
                                          and self.pruning != "none")
        else:
            hold_out = early_stopping
        X_val = y_val = w_val = None
        if hold_out:
            reason, off = (("early_stopping", "early_stopping=False") if early_stopping
                           else ("max_accuracy_drop", "max_accuracy_drop=None"))
            arrays = [X, y] + ([] if weight is None else [weight])
            try:
                parts = train_test_split(*arrays, test_size=float(self.validation_fraction),
                                         stratify=y, random_state=seed)
            except ValueError as exc:
                single = self.classes_[np.bincount(y, minlength=len(self.classes_)) == 1]
                if single.size:
                    # No validation_fraction helps: a class of one row cannot be on both sides.
                    raise ValueError(
                        f"{reason} could not hold out a stratified validation_fraction="
                        f"{self.validation_fraction:g} of {len(y)} rows: class(es) "
                        f"{single.tolist()} have a single row, and a stratified split needs "
                        "at least 2 of every class. Add rows of those classes, leave them "
                        f"out, or set {off}."
                    ) from exc
                # sklearn names the side that is too small for one row of every class.
                way = "smaller" if "train_size" in str(exc) else "larger"
                raise ValueError(
                    f"{reason} could not hold out a stratified validation_fraction="
                    f"{self.validation_fraction:g} of {len(y)} rows: {_sentence(exc)} Use a "
                    f"{way} validation_fraction, more data, or {off}."
                ) from exc
            X, X_val, y, y_val = parts[:4]
            weight, w_val = (None, None) if weight is None else parts[4:]
            if len(y_val) < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "validation_fraction or the size of your dataset.")
            unseen = np.setdiff1d(np.unique(y), np.unique(y_val))
            if len(unseen) and self.max_accuracy_drop is not None and self.pruning != "none":
                counts = np.bincount(y)[unseen]
                warnings.warn(
                    f"max_accuracy_drop: the {len(y_val)} held-out rows hold no row of "
                    f"class(es) {self.classes_[unseen].tolist()} ({', '.join(map(str, counts))} "
                    "training rows), so the accuracy bound cannot see them: pruning may "
                    "lose them unnoticed. Hold out at least one row of every class (a larger "
                    f"validation_fraction: at least {1 / counts.min():.2g} here), or bound "
                    "the pruning by count (amount, max_sparsity).",
                    PruningWarning,
                    stacklevel=4,
                )
        acc = np.arange(len(y))
        if len(y) > _MONITOR_ROWS:
            acc = np.sort(check_random_state(seed).choice(len(y), _MONITOR_ROWS, replace=False))
        device = torch.device(self.device)

        def tensor(array):
            return None if array is None else torch.as_tensor(array, device=device)

        held = [tensor(X_val), tensor(y_val), tensor(w_val)]
        validation = held if early_stopping else [None, None, None]
        return _Data(
            X=X, y=y, w=weight, X_val=validation[0], y_val=validation[1], w_val=validation[2],
            X_acc=tensor(X[acc]), y_acc=tensor(y[acc]),
            w_acc=None if weight is None else tensor(weight[acc]),
            X_held=held[0], y_held=held[1], w_held=held[2],
        )

    def _plan(self, n_train, pruning, max_epochs):
        """Resolve every "auto" size of a fit on ``n_train`` rows."""
        if self.batch_size == "auto":
            batch = _AUTO_MAX_BATCH
            trace_batch = int(np.clip(n_train // _AUTO_ROWS_PER_STEP, 1, _AUTO_MAX_BATCH))
        else:
            batch = trace_batch = self.batch_size
            if self.batch_size > n_train:
                warnings.warn(
                    f"batch_size={self.batch_size} is larger than the {n_train} rows trained "
                    f"on: it is clipped to {n_train} (as MLPClassifier clips it). Use a "
                    "smaller batch_size, or 'auto'.", UserWarning, stacklevel=3)
        batch, trace_batch = min(batch, n_train), min(trace_batch, n_train)
        drop_last = self._routed_params().get("iterator_train__drop_last", False)

        def steps(size):
            return n_train // size if drop_last else math.ceil(n_train / size)

        if pruning != "legc":
            return _Plan(pruning, batch, None, steps(batch), max_epochs)
        steps_per_epoch = steps(trace_batch)
        plan = _Plan(pruning, batch, trace_batch, steps_per_epoch, max_epochs)
        lag = PAPER_MAXLAG if self.maxlag == "auto" else self.maxlag
        plan.min_windows = self._windows_needed(lag)
        if self.window_size == "auto":
            plan.window_size = int(np.clip(steps_per_epoch // 4, *_AUTO_WINDOW))
        else:
            plan.window_size = self.window_size
        if self.mode == "pt":
            if self.trace_fraction == "auto":
                wanted = max(plan.min_windows, _AUTO_TRACE_WINDOWS)
                steps = plan.window_size + (wanted - 1) * window_stride(
                    plan.window_size, self.window_overlap)
                plan.dense_epochs = min(max_epochs, math.ceil(steps / steps_per_epoch))
            else:
                plan.dense_epochs = max(1, round(self.trace_fraction * max_epochs))
        if self.window_size == "auto":
            plan.window_size = self._fitting_window(plan)
        plan.maxlag = self._feasible_maxlag(plan, n_train)
        plan.min_windows = self._windows_needed(plan.maxlag)
        return plan

    def _warn_weights_cancel(self, weight, plan, sample_weight):
        """Warn where a phase trains on single rows, in which unequal weights cancel."""
        if weight is None or np.ptp(weight) == 0:
            return
        sizes = {plan.batch_size}
        if plan.traced:
            sizes.add(plan.trace_batch_size)
        if 1 not in sizes:
            return
        if sizes == {1}:
            phase = "every training phase trains"
        else:
            # Fine-tuning from the rewind replays the traced phase's batches.
            phase = "the traced phase (and the fine-tuning epochs that replay it) trains"
        given = " and ".join(name for name, value in (
            ("class_weight", self.class_weight), ("sample_weight", sample_weight))
            if value is not None)
        effect = ("there the weights set only the L2 penalty's divisor, not the loss; they "
                  "still weigh the misclassification rate the causality test reads"
                  if plan.traced else
                  "the weights set only the L2 penalty's divisor, not the loss")
        auto = (" (batch_size='auto' traces in batches of one row below 64 rows)"
                if self.batch_size == "auto" else "")
        warnings.warn(
            f"{given}: {phase} in batches of one row (batch_size={self.batch_size!r} on the "
            f"{len(weight)} rows trained on), where a row's weight cancels in the batch's "
            f"weighted average loss, as in MLPClassifier(batch_size=1): {effect}. Use a "
            f"batch_size of 2 or more{auto}.",
            UserWarning, stacklevel=3)

    def _windows_needed(self, lag):
        """Fewest windows for a Granger test up to ``lag`` with this fit's options:
        statsmodels' condition ``K > 3 * lag + 1``, on the differenced series where
        ``stationarity`` may difference them, one more for ``"aic"``/``"bic"``."""
        K = 3 * lag + 2
        while self._largest_lag(K) < lag:
            K += 1
        return K

    def _largest_lag(self, K):
        return max_feasible_lag(K, stationarity=self.stationarity,
                                lag_selection=self.lag_selection) if K > 0 else 0

    def _fitting_window(self, plan):
        """The auto window, shortened (down to the Lyapunov estimate's minimum) until the
        planned steps give the windows the Granger test needs."""
        steps = plan.dense_epochs * plan.steps_per_epoch
        shortest = min_window_size(self.embedding_dim, self.delay, self.le_steps,
                                   self.theiler_window)
        for size in range(plan.window_size, shortest - 1, -1):
            if n_windows(steps, size, self.window_overlap) >= plan.min_windows:
                return size
        # Not reachable: the shortest window gives the most windows, hence the largest
        # feasible lag (a short run, e.g. max_epochs=5 on 150 rows, otherwise ends at lag 1).
        return shortest if steps >= shortest else max(shortest, min(plan.window_size, steps))

    def _fit(self, data, plan, sizes, seed, warm):
        net = self.net_ if warm else self._initialize_net(data, sizes, plan, seed)
        self._match_module_dtype(net, data)
        initial_state = self.initial_state_ if warm else {
            # Kept on the CPU, so that a model fitted on a GPU unpickles without one.
            name: value.detach().cpu().clone() for name, value in net.module_.state_dict().items()}
        previous_keep = self._flat_keep() if warm else None
        layers = prunable_layers(net.module_)
        self.weight_layers_ = [(name, tuple(layer.weight.shape)) for name, layer in layers]
        self.n_weights_ = sum(layer.weight.numel() for _, layer in layers)
        self._check_granularity(plan)
        self.batch_size_ = plan.batch_size
        self.trace_batch_size_ = plan.trace_batch_size
        self.window_size_ = plan.window_size
        times = {"dense": 0.0, "analysis": 0.0, "sparse": 0.0}

        start = time.perf_counter()
        tracer = self._train_dense(net, data, plan)
        times["dense"] = time.perf_counter() - start

        if plan.pruning == "imp":
            self._iterative_pruning(net, data, plan, seed, initial_state, previous_keep, times)
        else:
            start = time.perf_counter()
            keep = self._decide(net, tracer, plan, seed, data, initial_state)
            if previous_keep is not None:
                keep &= previous_keep
            dense = None
            if self._limits_accuracy(plan):
                # The comparison is with the fully trained dense network: a PT run is
                # trained on, untraced, after the decision has read its trace.
                begin = time.perf_counter()
                self._train_on(net, data, plan)
                trained_on = time.perf_counter() - begin
                times["dense"] += trained_on
                start += trained_on  # not charged to the analysis
                dense = self._plain_copy(net.module_)
                keep = self._accuracy_limited_keep(dense, data, keep, previous_keep)
            newly_pruned = bool((~keep).any()) and (previous_keep is None
                                                     or bool((previous_keep & ~keep).any()))
            self._apply_mask(net, keep, initial_state, rewind=newly_pruned)
            times["analysis"] = time.perf_counter() - start

            start = time.perf_counter()
            self._fine_tune(net, data, plan, newly_pruned)
            if dense is not None:
                self._hold_accuracy(net, data, keep, dense)
            times["sparse"] = time.perf_counter() - start

        self.initial_state_ = initial_state
        self.phase_times_ = times
        self._check_accuracy(net, data, plan)
        self._record_training_attributes(net)
        self.net_ = net  # last: a fit that failed half-way leaves the estimator unfitted

    def _initialize_net(self, data, sizes, plan, seed):
        net = self._build_net(data.X.shape[1], len(self.classes_), sizes, plan, seed)
        # Initial weights come from torch's global generator: seed and draw under the lock,
        # so that fits running as threads of one process get the same weights as alone.
        with torch_rng_lock:
            torch.manual_seed(seed)
            try:
                net.initialize()
            except NotImplementedError as exc:
                # skorch moves the module to `device`, which a module without data cannot do.
                if "meta tensor" not in str(exc):
                    raise
                raise ValueError(
                    f"the module's parameters are on the 'meta' device, which holds no values, "
                    f"so they cannot be moved to device={self.device!r}. Create the module "
                    "with its weights (not under torch.device('meta')), or materialise it "
                    "first: module.to_empty(device='cpu') and initialise its weights (e.g. "
                    "each layer's reset_parameters())."
                ) from exc
        if not prunable_layers(net.module_):
            raise ValueError(
                "the module has no torch.nn.Linear layer, so there is no weight to prune. "
                "Use a module built from nn.Linear layers."
            )
        return net

    def _match_module_dtype(self, net, data):
        dtypes = {p.dtype for p in net.module_.parameters() if p.is_floating_point()}
        if len(dtypes) > 1:
            raise ValueError(
                f"the module's parameters mix the dtypes {sorted(map(str, dtypes))}: give them "
                "one dtype (module.float() or module.double())."
            )
        dtype = dtypes.pop() if dtypes else torch.float32
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(
                f"the module's parameters are {dtype}; LEGCPrunedClassifier trains in float32 "
                "or float64 (half precision rounds away the small steps of the weight "
                "trajectories that decide the pruning). Convert the module with module.float() "
                "or module.double()."
            )
        if dtype != torch.float32:
            data.X = data.X.astype(torch.empty(0, dtype=dtype).numpy().dtype)
            for name in ("X_val", "X_acc", "X_held"):
                value = getattr(data, name)
                if value is not None:
                    setattr(data, name, value.to(dtype))

    # -- phase 1: dense training, traced ------------------------------------------------------

    def _phase_callbacks(self, data, plan, traced, stop_at_target=True):
        """This project's callbacks of one phase: the accuracy record and convergence.

        A PT trace (``mode="pt"``) is a planned start of the dense run, which is trained on
        untraced afterwards: the convergence rule does not end it (``tol=None``; it still
        records ``valid_acc`` and restores the best epoch), so that its trace has the
        windows it was planned for, not only the fewest the test accepts, which may leave
        lags untestable. It applies to the training that follows."""
        accuracy_cb = TrainingAccuracy(data.X_acc, data.y_acc, target=self.target_accuracy,
                                       stop_at_target=stop_at_target and not traced,
                                       sample_weight=data.w_acc)
        tol = None if traced and self.mode == "pt" else self.tol
        convergence = Convergence(tol, self.n_iter_no_change, data.X_val, data.y_val,
                                  data.w_val)
        return [("train_accuracy", accuracy_cb), ("convergence", convergence)]

    def _train_dense(self, net, data, plan):
        """Train the dense network (tracing it for the method); returns the tracer or None."""
        self.epochs_to_target_ = {"dense": None, "sparse": None}
        self.n_dense_steps_ = 0
        self._traced_epochs = 0
        self.dense_accuracy_ = self.dense_heldout_accuracy_ = self.accuracy_search_ = None
        # Random pruning and SNIP with rewind need no trained weights: there is no dense
        # phase, unless max_accuracy_drop compares with the dense network.
        if (plan.pruning in ("random", "snip") and self.fine_tune == "rewind"
                and not self._limits_accuracy(plan)):
            return None
        callbacks = self._phase_callbacks(data, plan, plan.traced)
        tracer = hold = None
        if plan.traced:
            X_mon, y_mon, w_mon = data.monitor
            tracer = WeightTracer(
                plan.window_size,
                window_stride(plan.window_size, self.window_overlap),
                X_mon, y_mon,
                lyapunov_params=dict(embedding_dim=self.embedding_dim, delay=self.delay,
                                     steps=self.le_steps, theiler=self.theiler_window),
                w_monitor=w_mon,
            )
            callbacks.append(("trace", tracer))

            def hold():
                return len(tracer.lyapunov_) < plan.min_windows

        start = len(net.history)
        batch = plan.trace_batch_size if plan.traced else plan.batch_size
        self._train(net, data, plan.dense_epochs, "dense", callbacks, batch, hold=hold)
        self._check_trace_length(tracer, plan, len(net.history) - start)
        self.epochs_to_target_["dense"] = callbacks[0][1].epoch_to_target_
        self._traced_epochs = len(net.history) - start if plan.traced else 0
        self.n_dense_steps_ = sum(row.get("train_batch_count", 0) for row in net.history)
        self.dense_accuracy_ = accuracy(net.module_, *data.monitor)
        if data.X_held is not None:
            self.dense_heldout_accuracy_ = accuracy(net.module_, *data.held_out)
        return tracer

    def _train_on(self, net, data, plan):
        """If the dense phase was a PT trace that stopped before ``max_epochs``, train the
        dense network on, untraced, to ``max_epochs`` epochs in all (fewer if it converges),
        and measure its held-out and decision-data accuracies again."""
        dense_run = sum(1 for row in net.history if row.get("phase") == "dense")
        if not (plan.traced and self.mode == "pt" and dense_run < self.max_epochs):
            return
        callbacks = self._phase_callbacks(data, plan, False)
        self._train(net, data, self.max_epochs - dense_run, "dense", callbacks, plan.batch_size)
        if self.epochs_to_target_["dense"] is None and callbacks[0][1].epoch_to_target_:
            self.epochs_to_target_["dense"] = dense_run + callbacks[0][1].epoch_to_target_
        self.dense_accuracy_ = accuracy(net.module_, *data.monitor)
        if data.X_held is not None:
            self.dense_heldout_accuracy_ = accuracy(net.module_, *data.held_out)

    def _check_trace_length(self, tracer, plan, epochs):
        """Refuse a traced phase that ran ``epochs`` epochs and gave too few windows."""
        if plan.traced and len(tracer.lyapunov_) < plan.min_windows:
            raise ValueError(self._short_trace_message(epochs, tracer, plan))

    def _short_trace_message(self, epochs, tracer, plan):
        found = (f"the traced dense phase ran {epochs} of its {plan.dense_epochs} planned epochs "
                 f"({tracer.n_steps_} optimizer steps), which gives {len(tracer.lyapunov_)} "
                 f"windows; the Granger test with maxlag={plan.maxlag} needs {plan.min_windows}. ")
        if epochs < plan.dense_epochs:
            return found + (
                "Training was interrupted: a callback raised KeyboardInterrupt outside "
                "on_epoch_end, or Ctrl-C was pressed. Stop training from a callback's "
                "on_epoch_end instead, which is held off until the trace is long enough."
            )
        return found + (
            f"The data loader gave fewer batches than the {plan.steps_per_epoch} per epoch that "
            "batch_size implies: leave the number of batches to batch_size (no sampler or "
            "batch_sampler through iterator_train__*)."
        )

    def _train(self, net, data, epochs, phase, callbacks, batch_size, hold=None,
               resume=False, part=(0, None)):
        """Run one training phase with this project's and the user's callbacks; ``resume``:
        the phase goes on with the optimizer of the previous call (a schedule continues);
        ``part``: (epochs of the phase before this call, its planned epochs) where the phase
        is trained in parts (fine-tuning's schedule), for the interruption warning."""
        user = self._user_callbacks(net, phase, resume)
        callbacks = [("phase", _RecordPhase(phase))] + callbacks
        net.set_params(max_epochs=epochs, batch_size=batch_size, callbacks=callbacks + user)
        net.initialize_callbacks()
        work = net.batch_size * sum(p.numel() for p in net.module_.parameters())
        net.hold_stop = hold
        start = len(net.history)
        try:
            with limited_threads(1 if work < _ONE_THREAD_WORK else None), _watch_sigint(net):
                net.partial_fit(data.fit_input, data.y)
        finally:
            net.hold_stop = None
        if getattr(net, "interrupted_", False):
            # As MLPClassifier ("Training interrupted by user.") and skorch: the phase ends
            # and what follows starts from the network as trained so far; said, not silent.
            name = {"dense": "dense phase", "sparse": "fine-tuning", "imp": "iterative pruning",
                    "partial_fit": "partial_fit call"}.get(phase, phase)
            before, planned = part
            warnings.warn(
                f"Training was interrupted (KeyboardInterrupt: Ctrl-C, or a callback that "
                f"raised it outside on_epoch_end) in the {name}, in its epoch "
                f"{before + len(net.history) - start} of {planned or epochs}: the {name} ends "
                "there, and what follows starts from the network as trained so far, as "
                "MLPClassifier and skorch keep theirs. To stop training early on purpose, "
                "raise KeyboardInterrupt from a callback's on_epoch_end (or use skorch's "
                "EarlyStopping).", UserWarning, stacklevel=4)

    def _user_callbacks(self, net, phase, resume=False):
        """Fresh copies of the user's callbacks for one phase, set for its optimizer.

        The objects passed as parameters are never changed; the copies are shallow, so that
        what a callback refers to (a writer, a list it collects into) is the user's own.
        skorch initialises each copy. An ``LRScheduler`` starts its schedule over with each
        new optimizer (the dense phase, fine-tuning) and goes on with it over the epochs
        that keep one (``partial_fit``, a ``mode="pt"`` run trained on, a warm start):
        skorch would resume it at the fit's epoch count, which a new optimizer cannot do.
        """
        resolved = self._resolved_callbacks()
        copies = [cb if name is None else (name, cb) for name, cb in resolved]
        schedulers = [cb for _, cb in resolved
                      if isinstance(cb, LRScheduler) and "last_epoch" not in vars(cb)
                      and cb._get_policy_cls() is not ReduceLROnPlateau]
        if not schedulers:
            return copies
        # Fine-tuning ("sparse") is the one phase that starts with a new optimizer on a
        # trained net (see _fine_tune); the first phase of a new net starts with one too.
        rows = [] if phase == "sparse" and not resume else list(net.history)
        starts = [i for i, row in enumerate(rows) if row.get("phase") == "sparse"
                  and (i == 0 or rows[i - 1].get("phase") != "sparse")]
        rows = rows[starts[-1]:] if starts else rows
        epochs = len(rows)
        batches = sum(row.get("train_batch_count", 0) for row in rows)
        for cb in schedulers:
            cb.last_epoch = (batches if cb.step_every == "batch" else epochs) - 1
        if epochs:
            # A scheduler resumed on an optimizer that never had one starts from its lr.
            for group in net.optimizer_.param_groups:
                group.setdefault("initial_lr", group["lr"])
        return copies

    def _resolved_callbacks(self):
        """The user's callbacks as ``(name or None, new object)`` pairs: a shallow copy of
        each instance, an instance of each class, with its ``callbacks__<name>__*``
        parameters set (skorch sets them again, to the same values)."""
        routed = self._routed_params()
        resolved = []
        for item in self.callbacks or []:
            name, cb = item if isinstance(item, (tuple, list)) else (None, item)
            key = name or (cb.__name__ if isinstance(cb, type) else type(cb).__name__)
            prefix = f"callbacks__{key}__"
            params = {k[len(prefix):]: v for k, v in routed.items() if k.startswith(prefix)}
            if isinstance(cb, type):
                cb = cb(**params)
            else:
                cb = copy.copy(cb)
                if params:
                    cb.set_params(**params)
            resolved.append((name, cb))
        return resolved

    # -- phase 2: the decision ---------------------------------------------------------------

    def _feasible_maxlag(self, plan, n_train):
        steps = plan.dense_epochs * plan.steps_per_epoch
        K = n_windows(steps, plan.window_size, self.window_overlap)
        largest = self._largest_lag(K)
        wanted = PAPER_MAXLAG if self.maxlag == "auto" else self.maxlag
        if largest >= wanted:
            return wanted
        if self.maxlag == "auto" and largest >= 1:
            warnings.warn(
                f"only {K} windows fit in {steps} traced steps, too few for a Granger lag of "
                f"{wanted}; using maxlag={largest}.",
                PruningWarning,
                stacklevel=4,
            )
            return largest
        raise ValueError(self._too_few_windows_message(plan, K, n_train, wanted))

    def _too_few_windows_message(self, plan, K, n_train, wanted):
        W = plan.window_size
        n_steps = plan.dense_epochs * plan.steps_per_epoch
        lag = 1 if self.maxlag == "auto" else wanted
        needed_windows = self._windows_needed(lag)
        needed_steps = W + (needed_windows - 1) * window_stride(W, self.window_overlap)
        found = (f"{n_steps} optimizer steps ({plan.dense_epochs} epochs of "
                 f"{plan.steps_per_epoch} batches)")
        if n_steps < W:
            found += f", fewer than one window of {W} steps, so no window can be formed"
        else:
            found += f", which gives {K} windows of {W} steps"
        fixes = []
        largest = self._largest_lag(K)
        if largest >= 1:
            fixes.append(f"maxlag={largest} or maxlag='auto' (the largest feasible maxlag is "
                         f"{largest})")
        shortest = min_window_size(self.embedding_dim, self.delay, self.le_steps,
                                   self.theiler_window)
        fitting = [w for w in range(W - 1, shortest - 1, -1)
                   if n_windows(n_steps, w, self.window_overlap) >= needed_windows]
        if fitting:
            fixes.append(f"window_size={fitting[0]}")
        needed_epochs = math.ceil(needed_steps / plan.steps_per_epoch)
        if self.mode == "pt":
            fixes.append(f"{needed_epochs} traced epochs (mode='pt' traces "
                         f"{plan.dense_epochs}: raise trace_fraction or max_epochs)")
        else:
            fixes.append(f"max_epochs={needed_epochs}")
        if plan.trace_batch_size > 1:
            fixes.append("a smaller batch_size (one optimizer step per batch)")
        options = [f"{name}={value!r}" for name, value, paper in (
            ("stationarity", self.stationarity, None),
            ("lag_selection", self.lag_selection, "min_p")) if value != paper]
        test = f"a Granger test with maxlag={lag}" + (
            f" ({', '.join(options)})" if options else "")
        return (
            f"the traced dense phase has {found}; {test} needs at least {needed_windows} "
            f"windows ({needed_steps} steps). Use " + ", or ".join(fixes) + "."
        )

    def _decide(self, net, tracer, plan, seed, data=None, initial_state=None):
        """Which weights to keep, flat over the prunable layers (True = kept); sets
        ``pruning_order_``, the pruned weights in the order the method ranks them."""
        self.lyapunov_ = self.misclassification_ = self.window_ends_ = None
        self.window_loss_ = self.effect_ = self.saliency_ = None
        self.granger_result_ = self.granger_pvalues_ = self.maxlag_ = None
        self.pruning_order_ = np.empty(0, dtype=np.intp)
        if plan.pruning == "none":
            return np.ones(self.n_weights_, dtype=bool)
        if plan.traced:
            return ~self._legc_decision(tracer, plan)
        layers = prunable_layers(net.module_)
        if plan.pruning == "snip":
            self.saliency_ = self._connection_sensitivity(net, data, initial_state, seed)
            keep = saliency_keep(layers, self.saliency_, self._capped_amount(self.n_weights_))
            self.pruning_order_ = pruning_order(-self.saliency_, ~keep)
            return keep
        if self.granularity == "neuron":
            shapes = [shape for _, shape in self.weight_layers_]
            amount = self._capped_amount(sum(shape[0] for shape in shapes[:-1]))
            keep = unit_baseline_keep(layers, plan.pruning, amount, seed)
        else:
            keep = baseline_keep(layers, plan.pruning, self._capped_amount(self.n_weights_), seed)
        if plan.pruning == "magnitude":
            key = -np.abs(self._flat_weights(net.module_))
        else:
            key = np.random.default_rng(seed).random(self.n_weights_)
        self.pruning_order_ = pruning_order(key, ~keep)
        return keep

    def _capped_amount(self, n):
        """``amount`` for the baselines, at most ``max_sparsity`` of the ``n`` weights (or
        hidden units); the Granger rule caps it itself (:func:`sklegc.masks.noncausal_mask`)."""
        if self.max_sparsity is None:
            return self.amount
        return pruned_count(self.amount, n, self.max_sparsity)

    def _check_granularity(self, plan):
        """Refuse, before training, a neuron-level pruning the network cannot have."""
        if self.granularity != "neuron" or plan.pruning == "none":
            return
        if plan.pruning in ("snip", "imp"):
            raise ValueError(
                f"pruning={plan.pruning!r} ranks single weights; granularity='neuron' works "
                "with pruning='legc', 'magnitude' or 'random'. Use one of those, or "
                "granularity='weight'."
            )
        if self.max_accuracy_drop is not None:
            raise ValueError(
                "max_accuracy_drop prunes single weights in order as far as the held-out "
                "accuracy allows, which would leave hidden units partly pruned; it is not "
                "available with granularity='neuron'. Set max_accuracy_drop=None (bound the "
                "pruning with max_sparsity or amount), or use granularity='weight'."
            )
        shapes = [shape for _, shape in self.weight_layers_]
        check_chain(shapes)
        n_hidden = sum(shape[0] for shape in shapes[:-1])
        if not n_hidden:
            raise ValueError(
                "granularity='neuron' prunes hidden units, but the network has none: give "
                "it hidden layers (hidden_layer_sizes) or use granularity='weight'."
            )
        if isinstance(self.amount, Integral) and self.amount > n_hidden:
            raise ValueError(
                f"amount={self.amount} counts hidden units with granularity='neuron', but the "
                f"network has {n_hidden}: use amount <= {n_hidden}, or a share as a float."
            )

    def _still_learning_hint(self):
        """What would give the causality test an effect that moves, for this fit."""
        fixes = ["a smaller lr"]
        if getattr(self, "_warm_fit", False):
            fixes.insert(0, "fit without warm_start (a warm start traces a network that has "
                            "already learned)")
        if self.mode == "ft":
            fixes.append("mode='pt' (trace the start of training)")
        if self.effect == "misclassification":
            fixes.append("effect='loss' (the loss moves while the predicted labels do not)")
        if self.class_weight is None:
            fixes.append("class_weight='balanced' with rare classes")
        return ("Trace a phase in which the network is still learning: "
                + "; ".join(fixes) + ".")

    def _untestable_message(self, result, what):
        """Why no weight is testable, and what would make them testable."""
        tested = ~np.isnan(result.pvalues)
        # Lags 1..usable are tested for every weight: maxlag=usable makes every weight
        # testable (a weight is untestable when any of its lags fails).
        usable = int(np.argmin(np.append(tested.all(axis=0), False)))
        failed = np.flatnonzero(~tested.any(axis=0)) + 1
        if not usable or not len(failed):
            return (f"no weight's Granger test could be computed (the {what} series, or "
                    "every Lyapunov exponent series, is constant or collinear over the lags), "
                    f"so nothing is pruned. {self._still_learning_hint()}")
        K = len(self.effect_)
        moves = np.flatnonzero(np.diff(self.effect_) != 0)
        still = K - 1 - moves[-1] if len(moves) else K
        why = (f"the {what} is constant over the last {still} of the {K} windows"
               if still > 1 else f"the {what} is fitted exactly by its own lags")
        lags = f"lag {failed[0]}" if len(failed) == 1 else f"lags {failed[0]}-{failed[-1]}"
        return (f"no weight could be tested at every lag up to maxlag={result.maxlag}: at "
                f"{lags} the Granger test failed for every weight ({why}), and a weight "
                "with a failed lag counts as untestable, which untestable='keep' keeps (the "
                f"authors' rule), so nothing is pruned. maxlag={usable} tests every weight at "
                f"the lags that work; or: {self._still_learning_hint()}")

    def _legc_decision(self, tracer, plan):
        self.lyapunov_ = np.stack(tracer.lyapunov_)
        self.misclassification_ = np.asarray(tracer.misclassification_)
        self.window_loss_ = np.asarray(tracer.loss_, dtype=np.float64)
        self.effect_ = (self.misclassification_ if self.effect == "misclassification"
                        else self.window_loss_)
        self.window_ends_ = np.asarray(tracer.window_ends_)
        self.maxlag_ = plan.maxlag
        n = self.lyapunov_.shape[1]
        what = "misclassification rate" if self.effect == "misclassification" else "loss"
        if np.ptp(self.effect_) == 0:
            warnings.warn(
                f"the {what} did not change over the traced windows "
                f"(constant at {self.effect_[0]:.4g}), so no weight can Granger-cause "
                f"it; nothing is pruned. {self._still_learning_hint()}",
                PruningWarning,
                stacklevel=4,
            )
            self.granger_pvalues_ = np.full(n, np.nan)
            return np.zeros(n, dtype=bool)
        with warnings.catch_warnings():
            # Every cause is then untestable, and the PruningWarning below says so with
            # the fix: one warning for one cause.
            warnings.filterwarnings("ignore", message="The effect series makes the Granger "
                                    "test infeasible", category=RuntimeWarning)
            result = granger_tests(self.effect_, self.lyapunov_, maxlag=plan.maxlag,
                                   test=self.gc_test, stationarity=self.stationarity,
                                   lag_selection=self.lag_selection)
        self.granger_result_ = result
        self.granger_pvalues_ = result.pvalue
        # A p-value that lag_selection could not compute ("aic"/"bic" without a lag order)
        # is untestable too: the rule must not read NaN as "not causal".
        untestable = result.untestable | np.isnan(result.pvalue)
        if untestable.all():
            warnings.warn(self._untestable_message(result, what), PruningWarning, stacklevel=4)
            return np.zeros(n, dtype=bool)
        rule = dict(significance=self.significance, correction=self.correction,
                    untestable_policy=self.untestable, max_sparsity=self.max_sparsity,
                    amount=self.amount)
        if self.granularity == "neuron":
            prune_ = noncausal_units(result.pvalue, untestable,
                                     [shape for _, shape in self.weight_layers_], **rule)
        else:
            prune_ = noncausal_mask(result.pvalue, untestable, **rule)
        self.pruning_order_ = pruning_order(
            causality_key(result.pvalue, untestable, self.untestable), prune_)
        return prune_

    def _connection_sensitivity(self, net, data, initial_state, seed):
        """SNIP's ``|dL/dw * w|`` at the initial weights, on a random batch of training rows."""
        module = self._plain_copy(net.module_)
        module.load_state_dict(initial_state)
        n_rows = len(data.y)
        rows = np.sort(check_random_state(seed).choice(n_rows, min(n_rows, _SNIP_ROWS),
                                                       replace=False))
        device = torch.device(self.device)
        X = torch.as_tensor(data.X[rows], device=device)
        y = torch.as_tensor(data.y[rows], device=device)
        w = None if data.w is None else torch.as_tensor(data.w[rows], device=device)
        criterion = net.criterion_
        return connection_sensitivity(module, lambda m: criterion(m(X), y, sample_weight=w))

    @staticmethod
    def _plain_copy(module):
        """A copy of ``module`` with its pruning masks made permanent (plain weights)."""
        module = copy.deepcopy(module)
        remove_masks(prunable_layers(module))
        return module

    @staticmethod
    def _flat_weights(module):
        return np.concatenate([layer.weight.detach().cpu().double().numpy().reshape(-1)
                               for _, layer in prunable_layers(module)])

    # -- phase 2b: as far as the held-out accuracy allows -------------------------------------

    def _limits_accuracy(self, plan):
        return self.max_accuracy_drop is not None and plan.pruning != "none"

    def _passing_accuracy(self, data):
        """The held-out test of ``max_accuracy_drop``: ``(floor, chance, bar)``.

        A network passes when its held-out accuracy is at least ``bar``: at least
        ``floor``, the dense network's minus ``max_accuracy_drop``, and above ``chance``,
        what predicting the most frequent class of the held-out rows gets (its weighted
        share), so that a network that no longer tells the classes apart never passes,
        however poor the dense one."""
        y, w = data.y_held, data.w_held
        counts = torch.bincount(y.long(), weights=None if w is None else w.double()).double()
        chance = (counts.max() / counts.sum()).item()
        floor = self.dense_heldout_accuracy_ - self.max_accuracy_drop
        return floor, chance, max(floor - _ACCURACY_EPS, chance + _ACCURACY_EPS)

    def _accuracy_limited_keep(self, dense, data, keep, previous_keep):
        """Prune the rule's candidates in ``pruning_order_`` only as far as the held-out
        accuracy of the masked dense weights (``dense``, a plain copy) stays above the floor."""
        base = np.ones_like(keep) if previous_keep is None else previous_keep
        candidates = base & ~keep
        order = self.pruning_order_[candidates[self.pruning_order_]]
        layers = prunable_layers(dense)
        weights = [layer.weight.detach().clone() for _, layer in layers]
        offsets = np.cumsum([w.numel() for w in weights])[:-1]
        floor, chance, bar = self._passing_accuracy(data)

        def keep_first(n):
            kept = base.copy()
            kept[order[:n]] = False
            return kept

        @torch.no_grad()
        def accuracy_at(n):
            for (_, layer), weight, mask in zip(layers, weights, np.split(keep_first(n), offsets)):
                layer.weight.copy_(weight * torch.as_tensor(
                    mask.reshape(weight.shape), dtype=weight.dtype, device=weight.device))
            return accuracy(dense, *data.held_out)

        if self.dense_heldout_accuracy_ >= bar:
            n, trials = accuracy_limited_count(len(order), accuracy_at, bar)
        else:
            n, trials = 0, []
            if len(order):
                warnings.warn(self._uninformative_heldout_message(chance), PruningWarning,
                              stacklevel=4)
        with torch.no_grad():
            for (_, layer), weight in zip(layers, weights):
                layer.weight.copy_(weight)
        self.accuracy_search_ = {
            "dense": self.dense_heldout_accuracy_, "floor": floor, "chance": chance,
            "candidates": len(order), "trials": trials, "pruned": int(n + (~base).sum()),
            "fine_tuned": None, "fallback": False}
        if n == 0 and trials:
            warnings.warn(
                f"max_accuracy_drop={self.max_accuracy_drop:g}: pruning even the first of the "
                f"{len(order)} candidate weights lowered the held-out accuracy of the dense "
                f"network ({self.dense_heldout_accuracy_:.4f}) below {floor:.4f}, or to "
                f"what predicting one class gets ({chance:.4f}), so nothing "
                "is pruned. Allow a larger drop, or hold out more rows "
                "(validation_fraction): with few rows one row is a large step.",
                PruningWarning,
                stacklevel=4,
            )
        return keep_first(n)

    def _uninformative_heldout_message(self, chance):
        return (
            f"max_accuracy_drop={self.max_accuracy_drop:g}: the dense network's held-out "
            f"accuracy ({self.dense_heldout_accuracy_:.4f}) is no better than predicting the "
            f"most frequent class ({chance:.4f}), so the held-out rows cannot tell a pruned "
            "network from one that no longer separates the classes; nothing is pruned. If "
            "the dense network did not learn (see its training accuracy, dense_accuracy_), "
            "train it longer or larger; if it did, hold out more rows (validation_fraction, "
            "with early_stopping the same rows), above all of the rare classes; or bound the "
            "pruning by count (amount, max_sparsity) instead.")

    def _hold_accuracy(self, net, data, keep, dense):
        """After fine-tuning: keep the masked dense weights instead if the held-out accuracy
        fell below the floor (they passed it in the search)."""
        search = self.accuracy_search_
        final = accuracy(net.module_, *data.held_out)
        if self.fine_tune is not None and self.n_weights_pruned_:
            search["fine_tuned"] = final
        bar = self._passing_accuracy(data)[2]
        if final >= bar or search["dense"] < bar:
            # Passed; or the dense network itself does not pass, so nothing was pruned (and
            # _accuracy_limited_keep said why).
            return
        layers = prunable_layers(net.module_)
        remove_masks(layers)
        net.module_.load_state_dict(dense.state_dict())
        apply_masks(layers, keep)
        net.initialize_optimizer()
        search["fallback"] = True
        warnings.warn(
            f"fine-tuning the network with {self.n_weights_pruned_} of {self.n_weights_} "
            f"weights pruned lowered the held-out accuracy to {final:.4f}, below "
            f"{search['floor']:.4f} (dense {search['dense']:.4f} - max_accuracy_drop="
            f"{self.max_accuracy_drop:g}) or to what predicting one class gets "
            f"({search['chance']:.4f}); the trained dense weights with the same mask, which "
            "passed, are kept instead. Fine-tune longer (fine_tune_epochs) or with "
            "fine_tune='continue'.",
            PruningWarning,
            stacklevel=4,
        )

    def _iterative_pruning(self, net, data, plan, seed, initial_state, previous_keep, times):
        """``pruning="imp"``: rounds of global magnitude pruning among the remaining weights,
        rewinding and training; with ``max_accuracy_drop``, stop at the first round whose
        trained network loses more than allowed on the held-out rows and keep the round
        before."""
        layers = prunable_layers(net.module_)
        keep = np.ones(self.n_weights_, dtype=bool) if previous_keep is None else previous_keep
        totals = imp_schedule(self.n_weights_, self._capped_amount(self.n_weights_),
                              self.imp_rounds)
        epochs = self.max_epochs if self.fine_tune_epochs is None else self.fine_tune_epochs
        limited = self._limits_accuracy(plan)
        if limited:
            floor, chance, bar = self._passing_accuracy(data)
            passed = (keep, self._plain_copy(net.module_).state_dict())
            self.accuracy_search_ = {
                "dense": self.dense_heldout_accuracy_, "floor": floor, "chance": chance,
                "candidates": totals[-1], "trials": [], "pruned": 0, "fine_tuned": None,
                "fallback": False}
            if self.dense_heldout_accuracy_ < bar and totals[-1] > int((~keep).sum()):
                warnings.warn(self._uninformative_heldout_message(chance), PruningWarning,
                              stacklevel=3)
                totals = []
        order = [np.empty(0, dtype=np.intp)]
        self.lyapunov_ = self.misclassification_ = self.window_ends_ = None
        self.window_loss_ = self.effect_ = self.saliency_ = None
        self.granger_result_ = self.granger_pvalues_ = self.maxlag_ = None
        if totals[-1] <= int((~keep).sum()):
            # Nothing (more) to prune: the dense network is the answer, as for the others.
            totals = []
            self._apply_mask(net, keep, initial_state, rewind=False)
        for round_, total in enumerate(totals, start=1):
            start = time.perf_counter()
            more = total - int((~keep).sum())
            # On the masked layers global_unstructured prunes among the remaining weights.
            new_keep = keep & baseline_keep(layers, "magnitude", more, seed) if more > 0 else keep
            order.append(pruning_order(-np.abs(self._flat_weights(net.module_)),
                                       keep & ~new_keep))
            keep = new_keep
            self._apply_mask(net, keep, initial_state, rewind=True)
            layers = prunable_layers(net.module_)
            times["analysis"] += time.perf_counter() - start
            start = time.perf_counter()
            if epochs:
                net.initialize_optimizer()
                callbacks = self._phase_callbacks(data, plan, False)
                self._train(net, data, epochs, "sparse" if round_ == len(totals) else "imp",
                            callbacks, plan.batch_size)
                self.epochs_to_target_["sparse"] = callbacks[0][1].epoch_to_target_
            times["sparse"] += time.perf_counter() - start
            if not limited:
                continue
            held = accuracy(net.module_, *data.held_out)
            self.accuracy_search_["trials"].append((self.n_weights_pruned_, held))
            if held < bar:
                kept, state = passed
                remove_masks(layers)
                net.module_.load_state_dict(state)
                self._apply_mask(net, kept, initial_state, rewind=False)
                net.initialize_optimizer()
                self.accuracy_search_["fallback"] = True
                warnings.warn(
                    f"pruning='imp': round {round_} ({total} weights pruned) lowered the "
                    f"held-out accuracy to {held:.4f}, below {floor:.4f} (dense "
                    f"{self.dense_heldout_accuracy_:.4f} - "
                    f"max_accuracy_drop={self.max_accuracy_drop:g}) or to what predicting one "
                    f"class gets ({chance:.4f}); the network of round "
                    f"{round_ - 1}{' (the dense network)' if round_ == 1 else ''} is kept.",
                    PruningWarning,
                    stacklevel=3,
                )
                break
            passed = (keep, self._plain_copy(net.module_).state_dict())
        self.pruning_order_ = np.concatenate(order).astype(np.intp)
        if limited:
            trials = self.accuracy_search_["trials"]
            self.accuracy_search_["pruned"] = self.n_weights_pruned_
            self.accuracy_search_["fine_tuned"] = trials[-1][1] if trials else None

    # -- phase 3: the mask --------------------------------------------------------------------

    def _apply_mask(self, net, keep, initial_state, rewind):
        layers = prunable_layers(net.module_)
        # A mask of an earlier fit (warm_start) is made permanent first, so that the weights
        # can be rewound and the combined mask applied as one.
        remove_masks(layers)
        if rewind and self.fine_tune == "rewind":
            net.module_.load_state_dict(initial_state)
        self.mask_ = apply_masks(layers, keep)
        self.pruned_ = ~keep
        self.n_weights_pruned_ = int(self.pruned_.sum())
        self.sparsity_ = self.n_weights_pruned_ / self.n_weights_
        self.flops_ = self.n_weights_ - self.n_weights_pruned_
        self.multiply_adds_ = self.flops_
        self._check_empty_layers()

    def _flat_keep(self):
        return np.concatenate([m.reshape(-1) for m in self.mask_.values()])

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
        warnings.warn(f"{message}.", PruningWarning, stacklevel=5)

    # -- phase 4: fine-tuning -----------------------------------------------------------------

    def _fine_tune(self, net, data, plan, newly_pruned):
        if plan.pruning == "none" or self.fine_tune is None:
            return
        dense_run = sum(1 for row in net.history if row.get("phase") == "dense")
        if not newly_pruned and dense_run:
            # Nothing pruned: the dense network is the answer. A partial (PT) run is
            # trained on, without starting again.
            self._train_on(net, data, plan)
            return
        epochs = self.max_epochs if self.fine_tune_epochs is None else self.fine_tune_epochs
        if epochs == 0:
            return
        net.initialize_optimizer()
        # Rewound, the sparse network is trained as the dense one was: the epochs the dense
        # phase ran in the traced phase's batches, the rest in the untraced batches. With the
        # untraced batches throughout it would take far fewer steps than the dense network
        # (iris, PT: 200 steps against 1,216 + 12), and lose accuracy to training, not pruning.
        schedule = [(epochs, plan.batch_size)]
        if (self.fine_tune == "rewind" and plan.traced and plan.trace_batch_size is not None
                and plan.trace_batch_size != plan.batch_size and self._traced_epochs):
            first = min(epochs, self._traced_epochs)
            schedule = [(first, plan.trace_batch_size), (epochs - first, plan.batch_size)]
        done = 0
        for part, batch_size in schedule:
            if not part:
                continue
            callbacks = self._phase_callbacks(data, plan, False)
            start = len(net.history)
            self._train(net, data, part, "sparse", callbacks, batch_size, resume=done > 0,
                        part=(done, epochs))
            reached = callbacks[0][1].epoch_to_target_
            if reached is not None and self.epochs_to_target_["sparse"] is None:
                self.epochs_to_target_["sparse"] = done + reached
            ran = len(net.history) - start
            done += ran
            if ran < part or getattr(net, "interrupted_", False):
                break  # stopped: converged, reached target_accuracy, or interrupted

    # -- phase 5: the accuracy check ----------------------------------------------------------

    def _check_accuracy(self, net, data, plan):
        self.pruned_accuracy_ = accuracy(net.module_, *data.monitor)
        self.heldout_accuracy_ = (None if data.X_held is None
                                  else accuracy(net.module_, *data.held_out))
        # With max_accuracy_drop the held-out accuracy is the check (_hold_accuracy).
        if (self.dense_accuracy_ is None or not self.n_weights_pruned_
                or self.max_accuracy_drop is not None):
            return
        drop = self.dense_accuracy_ - self.pruned_accuracy_
        if drop > ACCURACY_TOLERANCE:
            where = "validation" if data.X_val is not None else "training"
            steps = {phase: sum(row.get("train_batch_count", 0) for row in net.history
                                if row.get("phase") == phase) for phase in ("dense", "sparse")}
            if self.fine_tune is not None and 0 < steps["sparse"] < steps["dense"]:
                # The sparse network trained less than the dense one: the drop may be
                # training, not pruning.
                batch = (f"batches of {plan.batch_size} rows" if plan.trace_batch_size is None
                         or plan.trace_batch_size == plan.batch_size else
                         f"batches of {plan.batch_size} rows, against the traced phase's "
                         f"{plan.trace_batch_size}")
                fixes = (
                    f"Fine-tuning took {steps['sparse']} optimizer steps ({batch}), the dense "
                    f"phase {steps['dense']}, so part of the drop may be training, not "
                    "pruning: fine-tune longer (fine_tune_epochs), with a smaller "
                    "batch_size, or from the trained weights (fine_tune='continue'); or "
                    "prune less (max_sparsity, a smaller amount).")
            else:
                fixes = ("Prune less (max_sparsity, a smaller amount"
                         + ("" if self.pruning != "legc" or self.correction == "bonferroni"
                            else ", correction='bonferroni'")
                         + "), fine-tune longer (fine_tune_epochs), or keep the dense model "
                         "(pruning='none').")
            warnings.warn(
                f"pruning {self.n_weights_pruned_} of {self.n_weights_} weights lowered the "
                f"{where} accuracy from {self.dense_accuracy_:.4f} (dense) to "
                f"{self.pruned_accuracy_:.4f} (pruned, after fine-tuning), more than "
                f"{ACCURACY_TOLERANCE}. {fixes}",
                PruningWarning,
                stacklevel=4,
            )

    def _record_training_attributes(self, net):
        """``MLPClassifier``'s training attributes, read from the net's history."""
        history = net.history
        self.loss_curve_ = [row["train_loss"] for row in history if "train_loss" in row]
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else None
        self.n_iter_ = len(self.loss_curve_)
        self.t_ = int(sum(sum(b.get("train_batch_size", 0) for b in row.get("batches", []))
                          for row in history))
        last_phase = history[-1, "phase"] if len(history) else None
        final = [row for row in history if row.get("phase") == last_phase]
        if self.early_stopping:
            self.validation_scores_ = [row["valid_acc"] for row in history if "valid_acc" in row]
            scores = [row["valid_acc"] for row in final if "valid_acc" in row]
            self.best_validation_score_ = max(scores) if scores else None
            self.best_loss_ = None
        else:
            self.validation_scores_ = self.best_validation_score_ = None
            losses = [row["train_loss"] for row in final if "train_loss" in row]
            self.best_loss_ = min(losses) if losses else None
        n_outputs = 1 if len(self.classes_) == 2 else len(self.classes_)
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(prunable_layers(net.module_)) + 1
        self.out_activation_ = "logistic" if n_outputs == 1 else "softmax"

    # -- the network --------------------------------------------------------------------------

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

    def _build_net(self, n_features, n_classes, sizes, plan, seed):
        module, module_params = self._module_and_params(n_features, n_classes, sizes)
        routed = {k: v for k, v in self._routed_params().items() if not k.startswith("module__")}
        # iterator_train__shuffle (MLPClassifier's `shuffle`) is the user's, True by default.
        routed.setdefault("iterator_train__shuffle", True)
        # A user who configures the DataLoader otherwise (workers, samplers, ...) gets a
        # DataLoader, which shuffles with torch's global generator.
        if not any(k.startswith("iterator_train__") and k != "iterator_train__shuffle"
                   for k in routed):
            routed.update(iterator_train=TensorBatches, iterator_train__seed=seed)
        # torch's fused optimizers do a step in one kernel instead of a few per parameter
        # tensor: Adam's step costs about 140 us less per optimizer step on a 4-8-3 network
        # (docs/performance.md, "Training steps"), with the same numbers up to rounding. For
        # the default module only: a custom one may have sparse or non-float parameters,
        # which the fused kernels refuse.
        if (self.module is None and self.optimizer in _FUSED_OPTIMIZERS
                and torch.device(self.device).type in ("cpu", "cuda")
                and not {"optimizer__fused", "optimizer__foreach",
                         "optimizer__differentiable"} & set(routed)):
            routed["optimizer__fused"] = True
        return PrunableNet(
            module=module,
            criterion=ClassificationLoss,
            criterion__loss=self.loss,
            optimizer=self.optimizer,
            lr=self.lr,
            alpha=self.alpha,
            max_epochs=self.max_epochs,
            batch_size=plan.batch_size,
            train_split=None,
            device=torch.device(self.device),
            verbose=self.verbose,
            **{f"module__{k}": v for k, v in module_params.items()},
            **routed,
        )

    # -- prediction -------------------------------------------------------------------------

    def _scores(self, X):
        check_is_fitted(self)
        module = self.net_.module_
        dtype = next(module.parameters()).dtype
        X_t = torch.as_tensor(self._validated_X(X), device=self.net_.device).to(dtype)
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

    # -- persistence ------------------------------------------------------------------------

    def save_params(self, f_params=None, f_optimizer=None, f_criterion=None, f_history=None,
                    use_safetensors=False):
        """Save the fitted network's state with skorch's ``save_params``, masks included.

        The parameters (``f_params``) hold every layer's weights and, for a layer with
        pruned weights, its mask (``<layer>.weight_mask``, 1 = kept) and unmasked weights
        (``<layer>.weight_orig``), as :mod:`torch.nn.utils.prune` stores them.
        :meth:`load_params` reads them back. To keep everything else (the decision record,
        ``initial_state_``), pickle the estimator instead.

        Parameters
        ----------
        f_params, f_optimizer, f_criterion, f_history : str, path or file-like, default=None
            Where to write the module's, the optimizer's and the criterion's state and the
            training history (JSON); None skips that part.
        use_safetensors : bool, default=False
            Write with safetensors instead of torch's pickle-based format (not for
            ``f_optimizer``, whose state is not only tensors).

        Returns
        -------
        self : LEGCPrunedClassifier

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.

        Examples
        --------
        >>> import io
        >>> from sklearn.datasets import load_iris
        >>> X, y = load_iris(return_X_y=True)
        >>> params = dict(hidden_layer_sizes=(4,), max_epochs=5, pruning="magnitude")
        >>> a = LEGCPrunedClassifier(**params, amount=0.5, random_state=0).fit(X, y)
        >>> b = LEGCPrunedClassifier(**params, amount=0.2, random_state=1).fit(X, y)
        >>> f = io.BytesIO()
        >>> _ = a.save_params(f_params=f), f.seek(0)
        >>> b.load_params(f_params=f).sparsity_ == a.sparsity_ == 0.5
        True
        """
        check_is_fitted(self)
        self.net_.save_params(f_params=f_params, f_optimizer=f_optimizer,
                              f_criterion=f_criterion, f_history=f_history,
                              use_safetensors=use_safetensors)
        return self

    def load_params(self, f_params=None, f_optimizer=None, f_criterion=None, f_history=None,
                    checkpoint=None, use_safetensors=False):
        """Load a network's state saved by :meth:`save_params` (or skorch), masks included.

        The saved masks replace this model's, whatever they were, together with what is
        derived from them (``mask_``, ``pruned_``, ``n_weights_pruned_``, ``sparsity_``,
        ``flops_``, ``multiply_adds_``; ``coefs_`` and ``intercepts_`` read the network).
        With ``f_history``, the history and the attributes read from it (``loss_curve_``,
        ``n_iter_``, ...) are replaced too. When the loaded masks differ from this model's,
        the record of how this model decided its mask (``lyapunov_``,
        ``misclassification_``, ``window_ends_``, ``granger_result_``,
        ``granger_pvalues_``, ``maxlag_``, ``dense_accuracy_``, ``pruned_accuracy_``) no
        longer describes it: it is set to None, with a warning.

        Parameters
        ----------
        f_params, f_optimizer, f_criterion, f_history : str, path or file-like, default=None
            What to load (see :meth:`save_params`); None skips that part.
        checkpoint : skorch.callbacks.Checkpoint, default=None
            Load the files of this checkpoint (those it wrote last); an ``f_*`` argument
            given as well takes precedence.
        use_safetensors : bool, default=False
            The files were written with safetensors.

        Returns
        -------
        self : LEGCPrunedClassifier

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted: fit it first (on data with the same features
            and classes), then load.
        ValueError
            If ``f_params`` holds another network's parameters (other layers or shapes).

        Examples
        --------
        See :meth:`save_params`.
        """
        check_is_fitted(self)
        net = self.net_
        files = {}
        if checkpoint is not None:
            # As skorch does: the checkpoint's files are named from its own history.
            history = net.history
            if f_history is None and checkpoint.f_history is not None:
                net.history = History.from_file(checkpoint.f_history_)
            try:
                files = checkpoint.get_formatted_files(net)
            finally:
                net.history = history
        explicit = dict(f_params=f_params, f_optimizer=f_optimizer, f_criterion=f_criterion,
                        f_history=f_history)
        files.update({key: value for key, value in explicit.items() if value is not None})
        if files.get("f_params") is not None:
            self._load_module_state(self._read_state(files["f_params"], use_safetensors))
        rest = {key: files.get(key) for key in ("f_optimizer", "f_criterion", "f_history")}
        if any(value is not None for value in rest.values()):
            net.load_params(**rest, use_safetensors=use_safetensors)
        if rest["f_history"] is not None:
            self._record_training_attributes(net)
        return self

    def _read_state(self, f, use_safetensors):
        device = self.net_.device
        if use_safetensors:
            from safetensors.torch import load, load_file

            if isinstance(f, (str, os.PathLike)):
                return load_file(f, device=str(device))
            return {k: v.to(device) for k, v in load(f.read()).items()}
        load_kwargs = self.net_.torch_load_kwargs or {"weights_only": True}
        return torch.load(f, map_location=get_map_location(device), **load_kwargs)

    def _load_module_state(self, state):
        """Load a module state into the fitted network, re-masking it as the state is."""
        module = self.net_.module_
        layers = prunable_layers(module)
        self._check_state_matches(module, layers, state)
        with torch.no_grad():
            for name, layer in layers:
                remove_masks([(name, layer)])
                mask = state.get(_state_key(name, "weight_mask"))
                if mask is not None:
                    FixedMask.apply(layer, "weight", mask=mask != 0)
            module.load_state_dict(state)
            refresh_masked_weights(module)
        keep = np.concatenate([
            (layer.weight_mask != 0).cpu().numpy().reshape(-1) if hasattr(layer, "weight_mask")
            else np.ones(layer.weight.numel(), dtype=bool) for _, layer in layers])
        changed = not np.array_equal(keep, ~self.pruned_)
        self.mask_ = {name: kept.reshape(shape) for (name, shape), kept in zip(
            self.weight_layers_, np.split(keep, np.cumsum([math.prod(s) for _, s in
                                                           self.weight_layers_])[:-1]))}
        self.pruned_ = ~keep
        self.n_weights_pruned_ = int(self.pruned_.sum())
        self.sparsity_ = self.n_weights_pruned_ / self.n_weights_
        self.flops_ = self.n_weights_ - self.n_weights_pruned_
        self.multiply_adds_ = self.flops_
        if changed:
            self.lyapunov_ = self.misclassification_ = self.window_ends_ = None
            self.granger_result_ = self.granger_pvalues_ = self.maxlag_ = None
            self.dense_accuracy_ = self.pruned_accuracy_ = None
            warnings.warn(
                f"the loaded masks differ from this model's ({self.n_weights_pruned_} of "
                f"{self.n_weights_} weights pruned now): its record of how it chose its own "
                "mask (lyapunov_, granger_pvalues_, dense_accuracy_, ...) is cleared. Pickle "
                "the estimator to keep a model together with that record.",
                UserWarning,
                stacklevel=3,
            )
        self._check_empty_layers()

    def _check_state_matches(self, module, layers, state):
        """Refuse, before changing anything, a state saved from another network."""
        weights = {_state_key(name, attribute) for name, _ in layers
                   for attribute in ("weight", "weight_orig", "weight_mask")}
        expected = {key: tuple(value.shape) for key, value in module.state_dict().items()
                    if key not in weights}
        for name, layer in layers:
            shape = tuple(getattr(layer, "weight_orig", layer.weight).shape)
            masked = _state_key(name, "weight_mask") in state
            for attribute in ("weight_orig", "weight_mask") if masked else ("weight",):
                expected[_state_key(name, attribute)] = shape
        found = {key: tuple(value.shape) for key, value in state.items()}
        if found != expected:
            missing = sorted(set(expected) - set(found))
            unexpected = sorted(set(found) - set(expected))
            reshaped = sorted(k for k in set(found) & set(expected) if found[k] != expected[k])
            raise ValueError(
                "f_params holds the parameters of another network (missing: "
                f"{missing[:5]}, unexpected: {unexpected[:5]}, other shapes: "
                f"{[(k, found[k], expected[k]) for k in reshaped[:5]]}). Load it into a model "
                "fitted with the same module, hidden_layer_sizes, number of features and "
                "number of classes."
            )

    # -- reporting --------------------------------------------------------------------------

    def pruning_report(self, as_frame=False):
        """A per-layer table of what was pruned (and, after :meth:`compress`, removed).

        Parameters
        ----------
        as_frame : bool, default=False
            Return a :class:`pandas.DataFrame` instead of text.

        Returns
        -------
        report : str or pandas.DataFrame
            One row per prunable layer and a total: its weight shape, weights, pruned and
            kept weights, share pruned, and ``EMPTY`` for a layer that lost every weight.
            After :meth:`compress`, also the layer's shape after compression, the hidden
            units removed from it (its output units), the share of zeros in what remains,
            how its weight is stored (``packed``: non-zero values and a bit mask) and the
            bytes of its tensors as pickled before and after.
        """
        import pandas as pd

        check_is_fitted(self)
        compression = getattr(self, "compression_", None)
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
        total = {
            "layer": "total", "shape": "", "weights": self.n_weights_,
            "pruned": self.n_weights_pruned_, "kept": self.flops_,
            "% pruned": 100.0 * self.sparsity_, "status": "",
        }
        if compression is not None:
            after = {row["layer"]: row for row in compression["layers"]}
            columns = ("shape after", "units removed", "% zero after", "storage",
                       "bytes before", "bytes after")
            for row in rows:
                row.update({column: after[row["layer"]][column] for column in columns})
            total.update({"shape after": "", "units removed": self.n_units_removed_,
                          "% zero after": np.nan, "storage": "",
                          "bytes before": sum(r["bytes before"] for r in rows),
                          "bytes after": sum(r["bytes after"] for r in rows)})
        rows.append(total)
        frame = pd.DataFrame(rows)
        if as_frame:
            return frame
        decided = not getattr(self, "_partial_fit_only", False)
        lines = [f"pruning={self.pruning!r}, granularity={self.granularity!r}, "
                 f"mode={self.mode!r}, fine_tune={self.fine_tune!r}" if decided else
                 "trained by partial_fit only: no pruning decision was made (fit prunes; "
                 "partial_fit trains the network it has, with its mask held)"]
        if compression is not None:
            untestable = compression["n_untestable"]
        elif self.granger_pvalues_ is not None:
            untestable = int(np.isnan(self.granger_pvalues_).sum())
        else:
            untestable = None
        if untestable is not None:
            lines.append(
                f"{len(self.misclassification_)} windows of {self.window_size_} steps, "
                f"effect={self.effect!r}, test={self.gc_test!r}, "
                f"stationarity={self.stationarity!r}, lag_selection={self.lag_selection!r}, "
                f"maxlag={self.maxlag_}, significance={self.significance:g}, untestable "
                f"weights: {untestable} ({self.untestable})"
            )
        if self.dense_accuracy_ is not None and decided:
            lines.append(f"accuracy on the decision data: dense {self.dense_accuracy_:.4f}, "
                         f"final {self.pruned_accuracy_:.4f}")
        if self.dense_heldout_accuracy_ is not None:
            limit = ("" if self.max_accuracy_drop is None
                     else f" (max_accuracy_drop={self.max_accuracy_drop:g})")
            lines.append(f"accuracy on the held-out rows: dense "
                         f"{self.dense_heldout_accuracy_:.4f}, final "
                         f"{self.heldout_accuracy_:.4f}{limit}")
        if self.target_accuracy is not None:
            reached = ", ".join(f"{phase} {'not reached' if epoch is None else epoch}"
                                for phase, epoch in self.epochs_to_target_.items())
            lines.append(f"epochs to target_accuracy={self.target_accuracy:g}: {reached}")
        if compression is not None:
            lines.append(f"compressed: {self.n_units_removed_} hidden units removed; the "
                         f"layers' tensors take {total['bytes after']:,} bytes "
                         f"({total['bytes before']:,} before)")
        lines.append(frame.to_string(index=False, float_format=lambda v: f"{v:.2f}",
                                     na_rep=""))
        return "\n".join(lines)

    def compress(self):
        """Make the fitted model small for deployment, in place; the predictions stay.

        In the spirit of scikit-learn's ``sparsify()``. The network is compressed by
        :func:`sklegc.compress.compress_module`: the masks are made permanent, every hidden
        unit whose incoming or outgoing weights are all pruned is removed (a removed unit
        that still outputs a constant, ``activation(bias)``, has that contribution folded
        into the next layer's bias), and a weight matrix that is smaller stored as its
        non-zero values plus a bit mask is pickled that way. In memory the layers stay
        dense ``nn.Linear`` layers of the smaller shapes, so predicting is at least as fast.

        What the compressed estimator keeps: everything ``predict``, ``predict_proba``,
        ``predict_log_proba``, ``score``, :meth:`pruning_report`, :meth:`to_mlpclassifier`
        and ONNX export use; ``coefs_`` and ``intercepts_`` then read the compressed network
        (``MLPClassifier``'s layout, fewer units); ``mask_`` and ``pruned_`` still describe
        the pruning of the original layers, stored one bit per weight when pickled
        (:class:`sklegc.compress.PackedBoolArray`); the counts (``n_weights_``,
        ``sparsity_``, ``flops_`` ...), ``misclassification_``, ``window_ends_`` and the
        training curves stay as they were. What it drops, because only training or the
        analysis needs it: ``initial_state_`` (the rewind point, a dense copy of the
        network), ``lyapunov_`` (n_windows x n_weights), ``granger_result_``,
        ``granger_pvalues_``, ``pruning_order_`` (an index per pruned weight) and
        ``saliency_`` (set to None), ``net_.history`` (emptied: the training record;
        ``loss_curve_``, ``n_iter_``, ``best_loss_`` and ``validation_scores_`` stay), the
        training callbacks of ``net_`` (skorch's defaults are
        left) and the optimizer's state (a fresh optimizer is attached to the compressed
        parameters). ``compression_`` and ``n_units_removed_`` record what
        was done.

        A compressed model does not train: ``partial_fit`` and ``fit`` with
        ``warm_start=True`` refuse it, since training would revive its pruned weights.
        ``fit`` without ``warm_start`` starts again from scratch. To train the compressed
        network further, use :meth:`to_mlpclassifier` and ``MLPClassifier``'s
        ``warm_start``. A second call does nothing.

        Returns
        -------
        self : LEGCPrunedClassifier
            The estimator, compressed.

        Raises
        ------
        sklegc.compress.CompressionError
            If a custom module cannot be compressed (Torch-Pruning cannot trace it, or
            removing its units would change its outputs); the estimator is left as it was
            and predicts with its masked weights.

        Warns
        -----
        sklegc.compress.CompressionWarning
            When dead units of a custom module cannot be removed exactly (for example units
            coupled by a residual sum); they stay, with their zeros packed.

        Notes
        -----
        The predictions differ from the masked network's by float32 rounding only: the
        compressed layers sum fewer terms, in another order, and the folded biases are
        rounded once. On the tests' networks the largest difference in ``predict_proba`` is
        below 1e-6; docs/deploying.md gives the figures measured on larger ones. A custom
        module is compressed with Torch-Pruning, traced on ``torch.zeros(1,
        n_features_in_)``, and checked on random inputs to compute the same outputs.

        Examples
        --------
        >>> import numpy as np, pickle
        >>> from sklearn.datasets import load_digits
        >>> from sklegc import LEGCPrunedClassifier
        >>> X, y = load_digits(return_X_y=True)
        >>> clf = LEGCPrunedClassifier(hidden_layer_sizes=(50,), pruning="magnitude",
        ...                            granularity="neuron", amount=0.5, max_epochs=20,
        ...                            random_state=0).fit(X / 16, y)
        >>> before, size = clf.predict_proba(X / 16), len(pickle.dumps(clf))
        >>> clf.compress().n_units_removed_, [c.shape for c in clf.coefs_]
        (25, [(64, 25), (25, 10)])
        >>> bool(np.abs(clf.predict_proba(X / 16) - before).max() <= 1e-6)
        True
        >>> len(pickle.dumps(clf)) < size / 3
        True
        """
        from .compress import PackedBoolArray, compress_module

        check_is_fitted(self)
        if getattr(self, "compression_", None) is not None:
            return self
        net = self.net_
        parameter = next(net.module_.parameters())
        example = torch.zeros(1, self.n_features_in_, dtype=parameter.dtype,
                              device=parameter.device)
        result = compress_module(net.module_, example_inputs=example)
        net.module_ = result.module
        # The optimizer holds the dense parameters and their state: it would keep them alive.
        net.initialize_optimizer()
        # The last phase's callbacks (the tracer and its ring buffer, when nothing was
        # pruned) only train.
        net.set_params(callbacks=[])
        # The training record: what MLPClassifier keeps of it (loss_curve_, n_iter_,
        # best_loss_, validation_scores_) stays as attributes.
        net.history = History()
        n_untestable = (None if self.granger_pvalues_ is None
                        else int(np.isnan(self.granger_pvalues_).sum()))
        dropped = ["initial_state_", "lyapunov_", "granger_result_", "granger_pvalues_",
                   "pruning_order_", "saliency_"]
        for name in dropped:
            setattr(self, name, None)
        self.mask_ = {name: np.asarray(mask, dtype=bool).view(PackedBoolArray)
                      for name, mask in self.mask_.items()}
        self.pruned_ = np.asarray(self.pruned_, dtype=bool).view(PackedBoolArray)
        self.compression_ = {"layers": result.layers, "dropped": dropped + ["net_.history"],
                             "n_untestable": n_untestable}
        self.n_units_removed_ = result.n_units_removed
        return self

    def to_mlpclassifier(self):
        """The fitted network as a fitted scikit-learn ``MLPClassifier``, to deploy without torch.

        The network is compressed on the way (:func:`sklegc.export.to_mlpclassifier`): the
        ``MLPClassifier`` has only the live hidden units, its ``coefs_`` hold the pruned
        weights as zeros, and it predicts what this estimator predicts, up to float32
        rounding. It works before and after :meth:`compress`, and ``warm_start=True`` can
        train it on.

        Returns
        -------
        mlp : sklearn.neural_network.MLPClassifier
            Fitted, with this estimator's ``classes_``, ``n_features_in_`` and
            ``feature_names_in_``.

        Raises
        ------
        TypeError
            If the network is not the default MLP (``module`` was given): only the default
            network maps onto ``MLPClassifier``. A custom module can be compressed
            (:meth:`compress`) and exported with ``torch.onnx.export``.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from sklegc import LEGCPrunedClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = LEGCPrunedClassifier(hidden_layer_sizes=(8,), pruning="magnitude",
        ...                            amount=0.5, max_epochs=20, random_state=0).fit(X, y)
        >>> mlp = clf.to_mlpclassifier()
        >>> type(mlp).__name__, bool((mlp.predict(X) == clf.predict(X)).all())
        ('MLPClassifier', True)
        """
        from .export import to_mlpclassifier

        check_is_fitted(self)
        return to_mlpclassifier(self.net_.module_, self.classes_,
                                n_features_in=self.n_features_in_,
                                feature_names_in=getattr(self, "feature_names_in_", None))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = True
        return tags

    def __sklearn_is_fitted__(self):
        # Set last in fit: a fit that failed half-way leaves the estimator unfitted.
        return hasattr(self, "net_")


# skl2onnx converts a Pipeline holding this estimator once it is imported (sklegc.export).
install_onnx_registration()
