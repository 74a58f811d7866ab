"""The kernels' threads: blocks, budgets, concurrent callers (sklegc.threads)."""

import concurrent.futures
import os
import signal
import threading
import time

import numba
import numpy as np
import pytest

from sklegc import threads
from sklegc.granger import granger_tests
from sklegc.lyapunov import divergence_curve, max_lyapunov
from sklegc.threads import kernel_threads, limited_threads, parallel_blocks


@pytest.fixture
def four_cores(monkeypatch):
    """Kernels see 4 cores, and a pool of 3 helpers of their own, whatever the machine."""
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 4)
    monkeypatch.setattr(threads, "_pool", {"pid": None, "executor": None})
    yield
    executor = threads._pool["executor"]
    if executor is not None:
        executor.shutdown()


def _blocks(n, n_threads):
    seen = []
    lock = threading.Lock()

    def kernel(lo, hi):
        with lock:
            seen.append((lo, hi, threading.get_ident()))

    parallel_blocks(kernel, n, threads=n_threads)
    return seen


@pytest.mark.parametrize("n", [0, 1, 7, 15, 16, 17, 100, 1000])
@pytest.mark.parametrize("n_threads", [1, 2, 3, 8])
def test_blocks_cover_every_item_once(n, n_threads, four_cores):
    seen = _blocks(n, n_threads)
    items = sorted(i for lo, hi, _ in seen for i in range(lo, hi))
    assert items == list(range(n))
    assert all(hi > lo for lo, hi, _ in seen)
    assert len({ident for *_, ident in seen}) <= n_threads
    if n_threads == 1 or n < 16:
        assert [(lo, hi) for lo, hi, _ in seen] == ([(0, n)] if n else [])


def test_the_budget_caps_the_kernels_threads(four_cores):
    assert kernel_threads() == 4
    with limited_threads(1):
        assert kernel_threads() == 1
        seen = _blocks(1000, None)
        assert {ident for *_, ident in seen} == {threading.get_ident()}
        with limited_threads(3):  # a nested budget never raises the outer one
            assert kernel_threads() == 1
    with limited_threads(2):
        assert kernel_threads() == 2
        # Another thread has its own budget: the default.
        with concurrent.futures.ThreadPoolExecutor(1) as other:
            assert other.submit(kernel_threads).result() == 4
    assert kernel_threads() == 4


def test_results_do_not_depend_on_the_threads(four_cores):
    rng = np.random.default_rng(0)
    walks = rng.standard_normal((203, 60)).cumsum(axis=1).astype(np.float32)
    effect = rng.standard_normal(40)
    causes = rng.standard_normal((40, 130))
    with limited_threads(1):
        alone = (max_lyapunov(walks), divergence_curve(walks, theiler=2),
                 granger_tests(effect, causes, maxlag=4).pvalue)
    together = (max_lyapunov(walks), divergence_curve(walks, theiler=2),
                granger_tests(effect, causes, maxlag=4).pvalue)
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(a, b)


def test_a_caller_never_waits_for_another_callers_blocks(monkeypatch):
    """Fits running as threads of one process share the pool: when it is busy with one
    caller's blocks, another caller does its own blocks itself instead of waiting."""
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 2)  # a pool of one helper
    monkeypatch.setattr(threads, "_pool", {"pid": None, "executor": None})
    running = threading.Semaphore(0)
    release = threading.Event()

    def slow(lo, hi):
        running.release()
        assert release.wait(timeout=30)

    first = threading.Thread(target=parallel_blocks, args=(slow, 32, 2))
    first.start()
    try:
        # The first caller and the pool's only thread are both inside its blocks ...
        assert running.acquire(timeout=30) and running.acquire(timeout=30)
        # ... and a second caller still gets through all of its own, by itself.
        second = {}
        caller = threading.Thread(target=lambda: second.update(seen=_blocks(1000, 2)))
        caller.start()
        caller.join(timeout=20)
        assert not caller.is_alive() and not release.is_set()
        seen = second["seen"]
        assert sorted(i for lo, hi, _ in seen for i in range(lo, hi)) == list(range(1000))
        assert {ident for *_, ident in seen} == {caller.ident}
    finally:
        release.set()
        first.join(timeout=30)
        threads._pool["executor"].shutdown()
    assert not first.is_alive()


def test_an_error_in_a_block_reaches_the_caller(four_cores):
    started, finished = [], []
    other_started = threading.Event()

    def kernel(lo, hi):
        started.append(lo)
        if lo == 0:
            assert other_started.wait(timeout=30)
            raise ZeroDivisionError("block 0")
        other_started.set()
        time.sleep(0.05)
        finished.append(lo)

    with pytest.raises(ZeroDivisionError, match="block 0"):
        parallel_blocks(kernel, 1000, threads=4)
    assert len(started) < 64  # the other threads stopped taking blocks ...
    assert sorted(finished) == sorted(lo for lo in started if lo != 0)  # ... and finished


def test_a_forked_child_gets_a_pool_of_its_own(four_cores):
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    _blocks(100, 2)  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 if its blocks all ran, killed if it hangs
        ok = False
        try:
            signal.alarm(30)
            seen = _blocks(100, 2)
            ok = sorted(i for lo, hi, _ in seen for i in range(lo, hi)) == list(range(100))
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
