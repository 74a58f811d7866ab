"""Fits that run as tasks of a parallel job: thread budgets and torch's shared RNG.

A grid search with ``n_jobs`` workers on a machine with ``n_jobs`` cores must not let every
worker's torch and numba use every core: the fits would fight for them. These helpers find
the share of the cores a worker was given and hold torch's and numba's thread pools to it
for the duration of a fit. Fits that run as threads of one process (dask's threaded
workers, joblib's threading backend) also share torch's global random generator; the
estimator draws from it only while holding :data:`torch_rng_lock`, so that concurrent fits
cannot interleave their draws.
"""

import contextlib
import os
import sys
import threading

import numba
import torch


def worker_thread_budget():
    """Threads one fit may use when it runs as a task of a parallel job; None elsewhere.

    joblib's loky workers and dask's worker processes set ``OMP_NUM_THREADS`` to their
    share of the cores, but torch honours it only when it was imported after the variable
    was set. Dask workers running as threads of the client's process set nothing: there a
    task gets one thread, as dask advises for numerical libraries.
    """
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) >= 1:
        return int(value)
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        try:
            distributed.get_worker()
        except ValueError:
            return None
        return 1
    return None


torch_rng_lock = threading.RLock()
"""Held while a fit seeds and draws from torch's process-wide random generator."""

_threads_lock = threading.Lock()
_threads_state = {"fits": 0, "saved": None}


@contextlib.contextmanager
def limited_threads(budget):
    """Cap torch's and numba's thread pools at ``budget`` while the block runs.

    torch's pool is process-wide, so concurrent fits in one process (dask threads) share
    the cap and the last one to finish restores it; numba's setting is per thread.
    """
    if budget is None:
        yield
        return
    with _threads_lock:
        if _threads_state["fits"] == 0:
            _threads_state["saved"] = torch.get_num_threads()
        _threads_state["fits"] += 1
        # Set it in every fit's own thread: with OpenMP the setting can be per thread, so
        # what another thread's fit set may not show here.
        if budget < _threads_state["saved"]:
            torch.set_num_threads(budget)
    numba_saved = numba.get_num_threads()
    numba.set_num_threads(min(budget, numba_saved))
    try:
        yield
    finally:
        numba.set_num_threads(numba_saved)
        with _threads_lock:
            _threads_state["fits"] -= 1
            if _threads_state["fits"] == 0:
                torch.set_num_threads(_threads_state["saved"])
