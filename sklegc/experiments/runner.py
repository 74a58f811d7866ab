"""The reproduction run: every cell of the paper's Tables 1-3 and of the sparsity sweep.

A *cell* is one fit: a dataset, a method, a seed and (for the sweep) a target sparsity.
Cells run in worker processes, each result is appended to ``cells.csv`` as soon as it
is known, and a run that is started again skips the cells already in the file, so an
interrupted run resumes where it stopped.

Every method of one seed starts from the same initial weights (``random_state=seed``).
The baselines prune as many weights as the LEGCNet fit of the same seed did, so they wait
for it. The sweep's LEGCNet cells rank weights by the Granger p-values of the LEGCNet-FT
cell of the same seed: instead of tracing the same dense run five more times, they replay
its saved trace (see :class:`TraceReplayClassifier`).
"""

import csv
import json
import os
import platform
import signal
import sys
import threading
import time
import traceback
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from .config import SPARSITIES, TABULAR, setting_for

__all__ = [
    "COLUMNS",
    "MAIN_METHODS",
    "SWEEP_METHODS",
    "Cell",
    "CellGroup",
    "TraceReplayClassifier",
    "group_cells",
    "plan_cells",
    "read_cells",
    "run_cell",
    "run_cells",
]

MAIN_METHODS = ("dense", "LEGCNet-FT", "LEGCNet-PT",
                "random@FT", "magnitude@FT", "random@PT", "magnitude@PT")
SWEEP_METHODS = ("LEGC rank", "magnitude", "random")

COLUMNS = [
    "study", "dataset", "method", "seed", "target_sparsity",
    "accuracy", "f1_macro", "weights_kept", "n_weights", "pct_pruned",
    "epochs", "epochs_dense", "epochs_sparse", "epochs_run_dense", "epochs_run_sparse",
    "fit_time_s", "cpu_s", "dense_s", "analysis_s", "sparse_s",
    "n_windows", "maxlag", "n_untestable", "trace_replayed", "warnings",
]


@dataclass(frozen=True)
class Cell:
    """One fit of the run.

    Attributes
    ----------
    study : {"tables", "sweep"}
        The paper's tables or the sparsity sweep.
    dataset, method : str
        See :data:`MAIN_METHODS` and :data:`SWEEP_METHODS`.
    seed : int
        ``random_state`` of the fit: the initial weights, shuffling and random masks.
    target_sparsity : float or None
        The sweep's share of weights to prune.
    needs : tuple of str
        Methods of the same dataset and seed whose results this cell needs.
    """

    study: str
    dataset: str
    method: str
    seed: int
    target_sparsity: object = None
    needs: tuple = field(default=(), compare=False)

    @property
    def key(self):
        """The cell's identity in ``cells.csv``."""
        return _key(self.study, self.dataset, self.method, self.seed, self.target_sparsity)


def _key(study, dataset, method, seed, target):
    target = "" if target is None or target == "" or (
        isinstance(target, float) and np.isnan(target)) else f"{float(target):.2f}"
    return (str(study), str(dataset), str(method), int(seed), target)


# Cells whose fine-tuning can run stacked with the others of their dataset and seed: the
# sweep's, and the tables' baselines (the LEGCNet and dense cells are fitted alone).
_STACKED_METHODS = {"sweep": SWEEP_METHODS,
                    "tables": ("random@FT", "magnitude@FT", "random@PT", "magnitude@PT")}


@dataclass(frozen=True)
class CellGroup:
    """Cells of one study, dataset and seed fitted together, their fine-tuning stacked
    (see :mod:`sklegc.experiments.batched`); scheduled as one task."""

    cells: tuple

    @property
    def study(self):
        return self.cells[0].study

    @property
    def dataset(self):
        return self.cells[0].dataset

    @property
    def seed(self):
        return self.cells[0].seed

    @property
    def method(self):
        return f"{len(self.cells)} fits"

    @property
    def needs(self):
        return tuple(dict.fromkeys(m for c in self.cells for m in c.needs))

    @property
    def key(self):
        return ("group",) + tuple(c.key for c in self.cells)


def group_cells(cells):
    """``cells`` with those of :data:`_STACKED_METHODS` gathered into one
    :class:`CellGroup` per study, dataset and seed (a group of one stays a cell), in the
    order of each group's first cell."""
    groups, items = {}, []
    for cell in cells:
        if cell.method in _STACKED_METHODS.get(cell.study, ()):
            key = (cell.study, cell.dataset, cell.seed)
            if key not in groups:
                groups[key] = []
                items.append(key)
            groups[key].append(cell)
        else:
            items.append(cell)
    return [item if isinstance(item, Cell) else
            (CellGroup(tuple(groups[item])) if len(groups[item]) > 1 else groups[item][0])
            for item in items]


def plan_cells(datasets, seeds, *, sweep=True, sweep_seeds=None, sparsities=SPARSITIES):
    """All cells of a run, in an order that starts the long ones first.

    Parameters
    ----------
    datasets : list of str
        Datasets (keys of :data:`sklegc.experiments.config.SETTINGS`).
    seeds : list of int
        Seeds of the paper's tables.
    sweep : bool, default=True
        Add the sparsity sweep on the tabular datasets among ``datasets``.
    sweep_seeds : list of int or None, default=None
        Seeds of the sweep; None means ``seeds``.
    sparsities : tuple of float, default=SPARSITIES
        Target sparsities of the sweep.

    Returns
    -------
    list of Cell
    """
    cells = []
    for dataset in datasets:
        for seed in seeds:
            cells += [
                Cell("tables", dataset, "LEGCNet-FT", seed),
                Cell("tables", dataset, "LEGCNet-PT", seed),
                Cell("tables", dataset, "dense", seed),
                Cell("tables", dataset, "magnitude@FT", seed, needs=("LEGCNet-FT",)),
                Cell("tables", dataset, "random@FT", seed, needs=("LEGCNet-FT",)),
                Cell("tables", dataset, "magnitude@PT", seed, needs=("LEGCNet-PT",)),
                Cell("tables", dataset, "random@PT", seed, needs=("LEGCNet-PT",)),
            ]
    if sweep:
        for dataset in [d for d in datasets if d in TABULAR]:
            for seed in (seeds if sweep_seeds is None else sweep_seeds):
                for s in sparsities:
                    cells += [
                        # Needs the FT cell's trace to replay; it falls back to tracing itself.
                        Cell("sweep", dataset, "LEGC rank", seed, s, needs=("LEGCNet-FT",)),
                        Cell("sweep", dataset, "magnitude", seed, s),
                        Cell("sweep", dataset, "random", seed, s),
                    ]
    return cells


def estimated_steps(cell, n_train, quick=False):
    """Rough optimizer steps of ``cell``, used only to start the longest cells first."""
    if isinstance(cell, CellGroup):
        # The stacked fine-tuning costs about one fit's, the longest.
        return max(estimated_steps(c, n_train, quick) for c in cell.cells)
    st = setting_for(cell.dataset, quick)
    per_epoch = -(-n_train // st.batch_size)
    if cell.study == "principled":
        from .principled import estimated_epochs

        return estimated_epochs(cell, st) * per_epoch
    if cell.method == "LEGCNet-FT":
        epochs = 1.3 * st.epochs  # tracing costs about a third more per step
    elif cell.method == "LEGCNet-PT":
        epochs = 1.3 * st.pt_epochs + 0.2 * st.epochs
    elif cell.study == "sweep":
        epochs = st.sweep_epochs * (0.3 + float(cell.target_sparsity))
    else:
        epochs = 0.2 * st.epochs
    return epochs * per_epoch


# -- one cell ---------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _replay_class():
    from ..estimator import LEGCPrunedClassifier

    class TraceReplayClassifier(LEGCPrunedClassifier):
        """LEGCNet whose traced dense phase is replayed from an earlier fit's saved trace.

        With the same parameters and ``random_state`` the traced dense phase is the same
        computation every time, so a fit that differs from an earlier one only in
        ``amount`` can take that fit's Lyapunov exponents and misclassification series
        instead of training and tracing again. The Granger tests, the pruning decision and
        the fine-tuning are the estimator's own. The fine-tuning shuffles in the same order
        as a full fit's (each training phase's batch generator starts from the seed), so
        the result is the full fit's; what a replay lacks is the dense phase's history
        (``epochs_to_target_["dense"]`` is None).

        The trace is set as the private attribute ``_replay``: a dict with ``lyapunov``
        (n_windows, n_weights), ``misclassification`` (n_windows,), ``window_ends``, and
        optionally ``loss`` (n_windows,), which ``effect="loss"`` needs, and
        ``dense_state``, the network's ``state_dict`` at the end of the traced phase, which
        ``max_accuracy_drop`` needs (the dense network it compares with and searches on).
        """

        def _train(self, net, data, epochs, phase, callbacks, batch_size, **kwargs):
            if phase == "dense" and getattr(self, "_replay", None) is not None:
                # Zero epochs: the phase's callbacks are set up and torn down, nothing trains.
                epochs = 0
            super()._train(net, data, epochs, phase, callbacks, batch_size, **kwargs)

        def _check_trace_length(self, tracer, plan, epochs):
            # A replay trains nothing: its windows come from the saved trace.
            if getattr(self, "_replay", None) is None:
                super()._check_trace_length(tracer, plan, epochs)

        def _train_dense(self, net, data, plan):
            from ..trajectory import accuracy

            tracer = super()._train_dense(net, data, plan)
            replay = getattr(self, "_replay", None)
            if replay is None:
                return tracer
            state = replay.get("dense_state")
            if state is None:
                # No dense network was trained to compare with.
                self.dense_accuracy_ = self.dense_heldout_accuracy_ = None
            else:
                net.module_.load_state_dict(state)
                self.dense_accuracy_ = accuracy(net.module_, *data.monitor)
                if data.X_held is not None:
                    self.dense_heldout_accuracy_ = accuracy(net.module_, *data.held_out)
            return tracer

        def _legc_decision(self, tracer, plan):
            replay = getattr(self, "_replay", None)
            if replay is not None:
                if replay["lyapunov"].shape[1] != self.n_weights_:
                    raise ValueError("the replayed trace belongs to a network of another size")
                if self.effect == "loss" and replay.get("loss") is None:
                    raise ValueError("effect='loss' needs the loss series, which the replayed "
                                     "trace does not hold: trace again.")
                tracer.lyapunov_ = list(replay["lyapunov"])
                tracer.misclassification_ = list(replay["misclassification"])
                tracer.window_ends_ = list(replay["window_ends"])
                loss = replay.get("loss")
                tracer.loss_ = list(np.full(len(tracer.window_ends_), np.nan) if loss is None
                                    else loss)
            return super()._legc_decision(tracer, plan)

    return TraceReplayClassifier


def __getattr__(name):
    # The estimator (torch, skorch) loads only when the replay class is asked for.
    if name == "TraceReplayClassifier":
        return _replay_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@lru_cache(maxsize=None)
def _data(dataset, data_dir, scale):
    from ..datasets import load_dataset

    return load_dataset(dataset, data_dir, scale=scale)


def _trace_path(out, dataset, method, seed):
    return Path(out) / "traces" / f"{dataset}_{method}_seed{seed}.npz"


_STATE_PREFIX = "dense_state/"


def save_trace(path, clf, dense_state=None):
    """Save a LEGCNet fit's trace (and the dense network's weights) for a replay.

    Parameters
    ----------
    path : path-like
        The ``.npz`` file written.
    clf : fitted LEGCPrunedClassifier
        A ``pruning="legc"`` fit.
    dense_state : dict of str to torch.Tensor or None, default=None
        The network's ``state_dict`` at the end of the traced phase, for replays with
        ``max_accuracy_drop``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {} if dense_state is None else {
        _STATE_PREFIX + name: value.detach().cpu().numpy() for name, value in dense_state.items()}
    np.savez_compressed(
        path,
        lyapunov=clf.lyapunov_.astype(np.float32),
        misclassification=clf.misclassification_,
        loss=clf.window_loss_,
        window_ends=clf.window_ends_,
        pvalues=clf.granger_pvalues_,
        pruned=clf.pruned_,
        **state,
    )


def load_trace(path):
    """The replay dict of a trace saved by :func:`save_trace` (see :class:`TraceReplayClassifier`).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    dict
    """
    import torch

    with np.load(path) as saved:
        replay = {k: saved[k] for k in ("lyapunov", "misclassification", "window_ends")}
        replay["loss"] = saved["loss"] if "loss" in saved.files else None
        state = {k[len(_STATE_PREFIX):]: torch.as_tensor(saved[k]) for k in saved.files
                 if k.startswith(_STATE_PREFIX)}
    replay["dense_state"] = state or None
    return replay


def _params(cell, setting, sources):
    """Estimator parameters of ``cell``; ``sources`` maps needed methods to their rows."""
    from ..estimator import PAPER_PARAMS

    base = dict(PAPER_PARAMS, hidden_layer_sizes=setting.hidden, lr=setting.lr,
                batch_size=setting.batch_size, max_epochs=setting.epochs,
                window_size=setting.window, maxlag="auto", target_accuracy=setting.threshold,
                random_state=cell.seed)
    method = cell.method
    if method == "dense":
        return dict(base, pruning="none")
    if method in ("LEGCNet-FT", "LEGCNet-PT"):
        return dict(base, pruning="legc", mode=method[-2:].lower(),
                    trace_fraction=setting.pt_epochs / setting.epochs)
    if cell.study == "tables":
        kind, source = method.split("@")
        # The same number of weights as the LEGCNet fit of this seed pruned.
        n_pruned = int(sources[f"LEGCNet-{source}"]["n_weights"]) - int(
            sources[f"LEGCNet-{source}"]["weights_kept"])
        return dict(base, pruning=kind, amount=n_pruned)
    sweep = dict(base, amount=float(cell.target_sparsity), fine_tune_epochs=setting.sweep_epochs)
    if method == "LEGC rank":
        return dict(sweep, pruning="legc", mode="ft")
    return dict(sweep, pruning=method)


def timed_fit(clf, X, y):
    """Fit ``clf``, recording every warning; returns (warnings, wall seconds, CPU seconds).

    CPU time as well as wall time: on a shared machine only the CPU time says what the fit
    costs (torch runs one thread per worker, so it is this process's time).
    """
    return timed_call(clf.fit, X, y)


def timed_call(func, *args):
    """Call ``func(*args)`` as :func:`timed_fit` fits; returns (warnings, wall seconds, CPU
    seconds)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start, cpu_start = time.perf_counter(), time.process_time()
        func(*args)
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
    return caught, wall, cpu


def run_cell(cell, *, out, data_dir=None, quick=False, scale=True, sources=None):
    """Fit one cell and return its row of ``cells.csv``.

    Parameters
    ----------
    cell : Cell
    out : path-like
        Output directory; LEGCNet cells save their trace under ``out/traces``.
    data_dir : path-like or None
        Directory of the dataset files (None: ``SKLEGC_DATA_DIR``).
    quick : bool, default=False
        Tiny settings (see :data:`sklegc.experiments.config.QUICK`).
    scale : bool or "authors", default=True
        Passed to :func:`sklegc.datasets.load_dataset`.
    sources : dict or None
        Rows of the cells named in ``cell.needs``, by method.

    Returns
    -------
    dict
        The row, with the keys :data:`COLUMNS` (a ``"principled"`` cell: those of
        :data:`sklegc.experiments.principled.COLUMNS`).
    """
    if cell.study == "principled":
        from .principled import run_principled_cell

        return run_principled_cell(cell, out=out, data_dir=data_dir, quick=quick, scale=scale,
                                   sources=sources)
    clf, data, replayed = cell_estimator(cell, out=out, data_dir=data_dir, quick=quick,
                                         scale=scale, sources=sources)
    caught, fit_time, cpu_time = timed_fit(clf, data.X_train, data.y_train)
    return cell_row(cell, clf, data, caught, fit_time, cpu_time, replayed, out=out)


def cell_estimator(cell, *, out, data_dir=None, quick=False, scale=True, sources=None,
                   replay_class=None):
    """The unfitted estimator of ``cell``, its data, and the method whose trace it replays.

    A ``LEGC rank`` cell replays the LEGCNet-FT cell's saved trace where there is one
    (``replay_class``, default :class:`TraceReplayClassifier`); other cells get
    :class:`~sklegc.LEGCPrunedClassifier`, or ``replay_class`` where it is given (a
    subclass of the replay class behaves as the estimator when it replays nothing).

    Returns
    -------
    clf : LEGCPrunedClassifier
    data : sklegc.datasets.Dataset
    replayed : str
        ``"LEGCNet-FT"`` or ``""``.
    """
    from ..estimator import LEGCPrunedClassifier

    setting = setting_for(cell.dataset, quick)
    data = _data(cell.dataset, None if data_dir is None else str(data_dir), scale)
    params = _params(cell, setting, sources or {})
    path = _trace_path(out, cell.dataset, "LEGCNet-FT", cell.seed)
    replay = load_trace(path) if cell.method == "LEGC rank" and path.is_file() else None
    clf = (replay_class or (LEGCPrunedClassifier if replay is None else _replay_class()))(
        **params)
    if replay is not None:
        clf._replay = replay
    return clf, data, "" if replay is None else "LEGCNet-FT"


def cell_row(cell, clf, data, caught, fit_time, cpu_time, replayed, *, out):
    """The row of ``cells.csv`` of ``cell`` fitted as ``clf`` (see :func:`run_cell`);
    LEGCNet cells save their trace under ``out/traces``."""
    from sklearn.metrics import accuracy_score, f1_score

    pred = clf.predict(data.X_test)

    if cell.method in ("LEGCNet-FT", "LEGCNet-PT"):
        save_trace(_trace_path(out, cell.dataset, cell.method, cell.seed), clf)

    rows_run = {}
    for row in clf.net_.history:
        rows_run[row.get("phase")] = rows_run.get(row.get("phase"), 0) + 1
    to_target = clf.epochs_to_target_
    # The paper's "epochs": those of the phase that trained the final network (a pruned
    # network's fine-tuning; the dense phase when nothing was pruned and the dense network
    # was kept).
    epochs = to_target["sparse"] if rows_run.get("sparse") else to_target["dense"]
    n_windows = None if clf.misclassification_ is None else len(clf.misclassification_)
    pvalues = clf.granger_pvalues_
    messages = sorted({str(w.message).split(";")[0][:120] for w in caught
                       if issubclass(w.category, UserWarning)})
    return {
        "study": cell.study, "dataset": cell.dataset, "method": cell.method, "seed": cell.seed,
        "target_sparsity": "" if cell.target_sparsity is None else cell.target_sparsity,
        "accuracy": accuracy_score(data.y_test, pred),
        "f1_macro": f1_score(data.y_test, pred, average="macro"),
        "weights_kept": clf.flops_, "n_weights": clf.n_weights_,
        "pct_pruned": 100.0 * clf.sparsity_,
        "epochs": _blank(epochs), "epochs_dense": _blank(to_target["dense"]),
        "epochs_sparse": _blank(to_target["sparse"]),
        "epochs_run_dense": rows_run.get("dense", 0), "epochs_run_sparse": rows_run.get("sparse", 0),
        "fit_time_s": round(fit_time, 3), "cpu_s": round(cpu_time, 3),
        "dense_s": round(clf.phase_times_["dense"], 3),
        "analysis_s": round(clf.phase_times_["analysis"], 3),
        "sparse_s": round(clf.phase_times_["sparse"], 3),
        "n_windows": _blank(n_windows), "maxlag": _blank(clf.maxlag_),
        "n_untestable": "" if pvalues is None else int(np.isnan(pvalues).sum()),
        "trace_replayed": replayed,
        "warnings": " | ".join(messages),
    }


def _blank(value):
    return "" if value is None else value


# -- the CSV ----------------------------------------------------------------------------------


def read_cells(path):
    """The rows of ``cells.csv`` as a :class:`pandas.DataFrame` (empty if there is no file)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame(columns=COLUMNS)
    return pd.read_csv(path)


class _CellWriter:
    """Appends rows to ``cells.csv``, flushed to disk one by one."""

    def __init__(self, path, columns=COLUMNS):
        self.path = Path(path)
        new = not self.path.is_file() or self.path.stat().st_size == 0
        fields = columns
        if not new:
            # Appending to a file written by another version keeps that file's columns.
            with open(self.path, newline="") as existing:
                fields = next(csv.reader(existing))
        self.file = open(self.path, "a", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=fields, extrasaction="ignore")
        if new:
            self.writer.writeheader()
            self.file.flush()

    def write(self, row):
        self.writer.writerow(row)
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self):
        self.file.close()


# -- the scheduler ----------------------------------------------------------------------------


def _init_worker():
    import torch

    # Two workers on two cores: one thread each, or they fight over the cores.
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


# Set by a Ctrl-C or kill in this process. skorch ends training quietly on a
# KeyboardInterrupt raised during a fit, so the fit returns as if finished: the flag tells
# the runner that the cell's training was cut short, and that it is not a result.
_STOP = threading.Event()


def _interrupt(signum, frame):
    _STOP.set()
    raise KeyboardInterrupt(f"signal {signum}")


def _run_cell_safely(cell, kwargs):
    """``[(cell, row or None, error or None)]`` of a cell, or of each cell of a group."""
    if isinstance(cell, CellGroup):
        from .batched import run_cell_group

        results = run_cell_group(list(cell.cells), stop=_STOP.is_set, **kwargs)
    else:
        try:
            row = run_cell(cell, **kwargs)
        except Exception:  # a failed cell is logged and retried by the next run, not fatal
            row, error = None, traceback.format_exc()
        else:
            error = None
        results = [(cell, row, error)]
    if _STOP.is_set():
        raise KeyboardInterrupt("interrupted during a cell, whose row is not kept")
    return results


def run_cells(cells, out, *, data_dir=None, quick=False, scale=True, n_jobs=2, progress=True,
              columns=COLUMNS, stacked=True):
    """Run ``cells`` (skipping those already in ``out/cells.csv``), appending each result.

    Parameters
    ----------
    cells : list of Cell
        From :func:`plan_cells`.
    out : path-like
        Output directory: ``cells.csv``, ``traces/``, ``errors.log``, ``runs.jsonl``.
    data_dir : path-like or None
        Directory of the dataset files.
    quick : bool, default=False
        Tiny settings for CI.
    scale : bool or "authors", default=True
        Feature scaling (see :func:`sklegc.datasets.load_dataset`).
    n_jobs : int, default=2
        Worker processes; 1 runs the cells in this process.
    progress : bool, default=True
        Show a tqdm bar over the cells on stderr.
    columns : list of str, default=COLUMNS
        Columns of a new ``cells.csv``.
    stacked : bool, default=True
        Fit the sweep's cells of one dataset and seed, and the tables' baselines of one,
        as a :class:`CellGroup` whose fine-tuning is stacked
        (:mod:`sklegc.experiments.batched`): the same results up to float rounding, in a
        fraction of the time. False fits every cell alone.

    Returns
    -------
    dict
        ``ran``, ``skipped``, ``failed`` (lists of cell keys) and ``wall_s``.
    """
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "cells.csv"
    done = {}
    for row in read_cells(csv_path).to_dict("records"):
        done[_key(row["study"], row["dataset"], row["method"], row["seed"],
                  row["target_sparsity"])] = row
    todo = [c for c in cells if c.key not in done]
    skipped = [c.key for c in cells if c.key in done]
    n_train = {d: len(_data(d, None if data_dir is None else str(data_dir), scale).X_train)
               for d in {c.dataset for c in todo}}
    # Seed by seed (tables 0, sweep 0, tables 1, ...), the longest cells of a seed first: a
    # run cut short has both studies over fewer seeds, rather than one and not the other.
    if stacked:
        todo = group_cells(todo)
    todo.sort(key=lambda c: (c.seed + (0.5 if c.study == "sweep" else 0),
                             -estimated_steps(c, n_train[c.dataset], quick)))
    kwargs = dict(out=str(out), data_dir=data_dir, quick=quick, scale=scale)

    def source_rows(cell, outstanding):
        """Rows of the cells ``cell`` needs; None while one of them is still to come."""
        rows = {}
        # The sweep needs cells of the tables; other studies need their own.
        study = "tables" if cell.study == "sweep" else cell.study
        for method in cell.needs:
            key = _key(study, cell.dataset, method, cell.seed, None)
            if key in done:
                rows[method] = done[key]
            elif key in outstanding:
                return None
        return rows

    ran, failed = [], []
    writer = _CellWriter(csv_path, columns)
    bar = tqdm(total=len(cells), initial=len(skipped), desc="cells", unit="cell",
               file=sys.stderr, disable=not progress, dynamic_ncols=True)
    start = time.perf_counter()
    failed_methods = set()
    pool = None
    interrupted = False
    # Ctrl-C (SIGINT) and `kill` (SIGTERM) end the run: finished cells are in the CSV, the
    # cell cut short is not (see _STOP), and the invocation is logged.
    in_main_thread = threading.current_thread() is threading.main_thread()
    _STOP.clear()
    previous_handlers = ({sig: signal.signal(sig, _interrupt)
                          for sig in (signal.SIGINT, signal.SIGTERM)} if in_main_thread else {})
    if n_jobs > 1:
        pool = ProcessPoolExecutor(n_jobs, mp_context=get_context("spawn"),
                                   initializer=_init_worker)
    try:
        pending = list(todo)
        running = {}

        def finish(results):
            for result in results:
                finish_cell(*result)

        def finish_cell(cell, row, error):
            if row is not None:
                writer.write(row)
                done[cell.key] = row
                ran.append(cell.key)
                bar.set_postfix_str(f"{cell.dataset} {cell.method} seed {cell.seed}", refresh=False)
            else:
                failed.append(cell.key)
                failed_methods.add((cell.dataset, cell.method, cell.seed))
                with open(out / "errors.log", "a") as log:
                    log.write(f"--- {cell.key}\n{error}\n")
            bar.update(1)

        def keys(item):
            return [c.key for c in item.cells] if isinstance(item, CellGroup) else [item.key]

        while pending or running:
            outstanding = {k for item in [*pending, *running.values()] for k in keys(item)}
            ready = []
            for cell in list(pending):
                members = cell.cells if isinstance(cell, CellGroup) else (cell,)
                blocked = [c for c in members if any(
                    (c.dataset, m, c.seed) in failed_methods for m in c.needs)]
                if blocked:
                    # Only the cells whose own needs failed are not run; a group goes on
                    # with the others, as they would run cell by cell.
                    pending.remove(cell)
                    for c in blocked:
                        failed_needs = [m for m in c.needs
                                        if (c.dataset, m, c.seed) in failed_methods]
                        finish_cell(c, None, f"not run: a cell it needs ({failed_needs}) failed")
                    rest = [c for c in members if c not in blocked]
                    if not rest:
                        continue
                    cell = CellGroup(tuple(rest)) if len(rest) > 1 else rest[0]
                    pending.append(cell)
                sources = source_rows(cell, outstanding)
                if sources is not None:
                    ready.append((cell, sources))
            if pool is None:
                if not ready:
                    break
                cell, sources = ready[0]
                pending.remove(cell)
                finish(_run_cell_safely(cell, dict(kwargs, sources=sources)))
                continue
            # Only as many cells in flight as workers, so that a cell that just became ready
            # and is long still goes before the short ones queued earlier.
            for cell, sources in ready[:max(0, n_jobs - len(running))]:
                pending.remove(cell)
                running[pool.submit(_run_cell_safely, cell, dict(kwargs, sources=sources))] = cell
            if not running:
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                del running[future]
                finish(future.result())
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        if pool is not None:
            # Interrupted: the workers got the same signal; do not wait for their cells.
            pool.shutdown(wait=not interrupted, cancel_futures=True)
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
        bar.close()
        writer.close()
        wall = time.perf_counter() - start
        # Every invocation is logged, an interrupted one too: the report sums their wall time.
        with open(out / "runs.jsonl", "a") as log:
            log.write(json.dumps({
                "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - wall)),
                "wall_s": round(wall, 1), "ran": len(ran), "skipped": len(skipped),
                "failed": len(failed), "interrupted": interrupted, "n_jobs": n_jobs,
                "quick": quick, "scale": str(scale), "cpus": os.cpu_count(),
                "machine": platform.platform(), "argv": sys.argv,
            }) + "\n")
    return {"ran": ran, "skipped": skipped, "failed": failed, "wall_s": wall}

