"""Parallel model selection: joblib workers, a dask cluster, and the threads each fit uses.

This module does not import ``conftest`` (which pins torch to one thread), so that the
loky workers that import it keep the thread settings joblib gave them.
"""

import os
import threading
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from skorch.callbacks import Callback

import sklegc.threads
from sklegc import LEGCPrunedClassifier
from sklegc.estimator import PAPER_PARAMS, PruningWarning
from sklegc.threads import kernel_threads

CONFIG = dict(PAPER_PARAMS, hidden_layer_sizes=(3,), lr=0.5, max_epochs=4, batch_size=1,
              window_size=20, maxlag=3, random_state=0)
GRID = {"significance": [0.1, 0.3]}
SEEN = []  # (thread name, torch threads, kernel threads) at the start of each training phase


class RecordThreads(Callback):
    def on_train_begin(self, net, **kwargs):
        SEEN.append((threading.current_thread().name, torch.get_num_threads(),
                     kernel_threads()))

    def on_epoch_end(self, net, **kwargs):
        net.history.record("torch_threads", torch.get_num_threads())


def _most_threads(estimator, X, y):
    return max(row["torch_threads"] for row in estimator.net_.history)


def _n_pruned(estimator, X, y):
    return estimator.n_weights_pruned_


@pytest.fixture
def problem():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 5)).astype(np.float32)
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)


@pytest.fixture
def two_torch_threads(monkeypatch):
    """torch with two threads in this process, as outside a worker, restored afterwards."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    SEEN.clear()
    yield
    torch.set_num_threads(before)


def _search(**kwargs):
    return GridSearchCV(LEGCPrunedClassifier(**CONFIG, callbacks=[RecordThreads()]), GRID,
                        cv=StratifiedKFold(2, shuffle=True, random_state=0),
                        scoring={"accuracy": "accuracy", "pruned": _n_pruned,
                                 "threads": _most_threads},
                        refit=False, **kwargs)


def _fit(search, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PruningWarning)
        return search.fit(X, y)


def test_fit_caps_threads_at_the_workers_share_and_restores_them(problem, two_torch_threads,
                                                                 monkeypatch):
    X, y = problem
    # Outside a worker a network big enough for a thread pool to pay is left alone ...
    big = dict(CONFIG, hidden_layer_sizes=(4096,), batch_size=64, pruning="none",
               max_epochs=1, callbacks=[RecordThreads()])
    _fit(LEGCPrunedClassifier(**big), X, y)
    assert {torch_n for _, torch_n, _ in SEEN} == {2}
    SEEN.clear()
    # ... while a tiny one trains on one thread, and the setting is restored afterwards.
    # The Granger tests after training run their blocks on the kernels' helper threads.
    helpers = []
    executor = sklegc.threads._executor
    monkeypatch.setattr(sklegc.threads, "_executor", lambda: helpers.append(1) or executor())
    clf = LEGCPrunedClassifier(**CONFIG, significance=0.3, callbacks=[RecordThreads()])
    _fit(clf, X, y)
    assert {torch_n for _, torch_n, _ in SEEN} == {1}
    assert torch.get_num_threads() == 2
    assert bool(helpers) == (kernel_threads() > 1)
    SEEN.clear()
    helpers.clear()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what loky and dask nannies set in workers
    _fit(clf, X, y)
    assert {(torch_n, kernel_n) for _, torch_n, kernel_n in SEEN} == {(1, 1)}
    assert not helpers  # every kernel ran in the fit's own thread
    assert torch.get_num_threads() == 2


def test_loky_workers_do_not_oversubscribe(problem):
    X, y = problem
    search = _fit(_search(n_jobs=2), X, y)
    budget = max(1, os.cpu_count() // 2)
    assert 1 <= search.cv_results_["mean_test_threads"].max() <= budget


@pytest.fixture
def dask_client():
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is not installed: pip install 'dask[distributed]'"
    )
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    client = distributed.Client(cluster, timeout="30s")
    try:
        yield client
    finally:
        client.close(timeout=10)
        cluster.close(timeout=10)


def test_grid_search_on_a_dask_cluster_matches_the_sequential_one(problem, two_torch_threads,
                                                                  dask_client):
    X, y = problem
    with joblib.parallel_backend("dask"):
        on_dask = _fit(_search(n_jobs=2), X, y)
    worker_fits = list(SEEN)
    sequential = _fit(_search(n_jobs=1), X, y)
    for key in ("split0_test_accuracy", "split1_test_accuracy", "split0_test_pruned",
                "split1_test_pruned"):
        np.testing.assert_array_equal(on_dask.cv_results_[key], sequential.cv_results_[key])
    # 4 fits, two training phases each, all on the dask workers' threads, one torch thread each
    assert len(worker_fits) == 8
    assert all(name != threading.main_thread().name for name, _, _ in worker_fits)
    assert {(torch_n, kernel_n) for _, torch_n, kernel_n in worker_fits} == {(1, 1)}
    assert on_dask.cv_results_["mean_test_threads"].max() == 1
    assert torch.get_num_threads() == 2
