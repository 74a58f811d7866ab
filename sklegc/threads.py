"""Threads: the package's parallel kernels, and fits that run as tasks of a parallel job.

The numerical kernels (Lyapunov exponents, Granger tests) are numba functions compiled
``nogil`` that work on a block of series; :func:`parallel_blocks` runs the blocks on a
small pool of Python threads shared by the process, which the kernels leave free of the
GIL while they compute. numba's own parallel loops (``prange``) are not used: they run on
a threading layer of their own (OpenMP, whose spinning threads and thread-count setting
interfere with torch's, or numba's workqueue, which cannot launch kernels from two threads
at once), and the machinery behind them took about 10 of the 22 seconds that the first
fit after installing spent compiling (docs/performance.md, "Compiling the kernels").

A grid search with ``n_jobs`` workers on a machine with ``n_jobs`` cores must not let every
worker's torch and kernels use every core: the fits would fight for them. These helpers
find the share of the cores a worker was given and hold torch's thread pool and the
kernels' threads to it for the duration of a fit. Fits that run as threads of one process
(dask's threaded workers, joblib's threading backend) also share torch's global random
generator; the estimator draws from it only while holding :data:`torch_rng_lock`, so that
concurrent fits cannot interleave their draws.
"""

import concurrent.futures
import contextlib
import os
import sys
import threading

import numba


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


_budget = threading.local()
_pool_lock = threading.Lock()
_pool = {"pid": None, "executor": None}

# Blocks per thread: many small blocks, handed out as the threads free up, keep every
# thread busy to the end even when another process preempts one of them ...
_BLOCKS_PER_THREAD = 16
# ... but each block is at least this many items, so that the cost of a call into a
# kernel (microseconds) stays small beside the block's work.
_MIN_BLOCK = 8


def kernel_threads():
    """Threads the package's kernels may use when called from this thread.

    The budget that :func:`limited_threads` set in this thread, else ``NUMBA_NUM_THREADS``
    (numba's setting: by default the cores this process may run on).
    """
    budget = getattr(_budget, "threads", None)
    return numba.config.NUMBA_NUM_THREADS if budget is None else budget


def _executor():
    # One pool per process (a pool inherited through fork has no threads behind it), of
    # one thread fewer than the cores: the thread that calls a kernel works too.
    with _pool_lock:
        if _pool["pid"] != os.getpid():
            _pool["executor"] = concurrent.futures.ThreadPoolExecutor(
                max_workers=max(1, numba.config.NUMBA_NUM_THREADS - 1),
                thread_name_prefix="sklegc-kernel")
            _pool["pid"] = os.getpid()
        return _pool["executor"]


def parallel_blocks(kernel, n, threads=None):
    """Call ``kernel(lo, hi)`` on disjoint blocks that cover ``range(n)``, on up to
    ``threads`` threads.

    Parameters
    ----------
    kernel : callable
        ``kernel(lo, hi)`` processes items ``lo .. hi - 1``. Blocks are disjoint, so a
        kernel that writes only its own items needs no locking, and its results do not
        depend on how the items were split. To run in parallel it must release the GIL
        (a numba function compiled with ``nogil=True``).
    n : int
        Number of items.
    threads : int, optional
        Default :func:`kernel_threads`: the budget of a fit that runs as a task of a
        parallel job caps its kernels. The calling thread is one of them and works
        through the blocks itself; the others are helpers from a pool shared by the
        process (one thread fewer than the cores). A helper that has not started by the
        time the blocks are all taken is cancelled, so concurrent callers (fits running
        as threads of one process) never wait for each other and never run more kernel
        threads than their own plus the pool's.

    Examples
    --------
    >>> seen = []
    >>> parallel_blocks(lambda lo, hi: seen.extend(range(lo, hi)), 100, threads=2)
    >>> sorted(seen) == list(range(100))
    True
    """
    threads = kernel_threads() if threads is None else threads
    n_blocks = min(_BLOCKS_PER_THREAD * threads, n // _MIN_BLOCK)
    if threads <= 1 or n_blocks <= 1:
        if n > 0:
            kernel(0, n)
        return
    blocks = iter(range(n_blocks))
    lock = threading.Lock()
    failed = []

    def work():
        while True:
            with lock:
                b = None if failed else next(blocks, None)
            if b is None:
                return
            try:
                kernel(b * n // n_blocks, (b + 1) * n // n_blocks)
            except BaseException:
                failed.append(True)  # the others stop taking blocks
                raise

    helpers = [_executor().submit(work) for _ in range(min(threads, n_blocks) - 1)]
    error = None
    try:
        work()
    finally:
        # Wait for every helper that took blocks (they write into the caller's arrays),
        # even when one failed; then raise the first error.
        for helper in helpers:
            if not helper.cancel() and helper.exception() is not None and error is None:
                error = helper.exception()
    if error is not None:
        raise error


torch_rng_lock = threading.RLock()
"""Held while a fit seeds and draws from torch's process-wide random generator."""

_threads_lock = threading.Lock()
_threads_state = {"fits": 0, "saved": None}


@contextlib.contextmanager
def limited_threads(budget):
    """Cap torch's thread pool and the kernels' threads at ``budget`` while the block runs.

    torch's pool is process-wide, so concurrent fits in one process (dask threads) share
    the cap and the last one to finish restores it; the kernels' budget
    (:func:`kernel_threads`) is per thread.
    """
    if budget is None:
        yield
        return
    import torch  # here, not at the top: the kernels import this module, not torch

    with _threads_lock:
        if _threads_state["fits"] == 0:
            _threads_state["saved"] = torch.get_num_threads()
        _threads_state["fits"] += 1
        # Set it in every fit's own thread: with OpenMP the setting can be per thread, so
        # what another thread's fit set may not show here.
        if budget < _threads_state["saved"]:
            torch.set_num_threads(budget)
    kernels_saved = getattr(_budget, "threads", None)
    _budget.threads = min(budget, kernel_threads())
    try:
        yield
    finally:
        _budget.threads = kernels_saved
        with _threads_lock:
            _threads_state["fits"] -= 1
            if _threads_state["fits"] == 0:
                torch.set_num_threads(_threads_state["saved"])
