"""The kernels' decorator (sklegc._jit): cached where numba can write, compiled anyway where not."""

import os
import subprocess
import sys
import warnings

import numba
import numpy as np
import pytest
from numba.core import caching

from sklegc import _jit
from sklegc._jit import kernel


def _add_one(x):
    return x + 1


def test_kernels_are_cached_on_disk():
    assert isinstance(kernel(nogil=True)(_add_one)._cache, caching.FunctionCache)


def test_without_a_writable_cache_the_kernels_compile_anyway(monkeypatch):
    # What numba does where neither the installation nor the user's cache directory is
    # writable (seen in a read-only mount namespace): cache=True fails at decoration.
    def njit(cache=False, **options):
        if cache:
            raise RuntimeError("cannot cache function '_add_one': no locator available for "
                               "file 'sklegc/lyapunov.py'")
        return numba.njit(**options)

    monkeypatch.setattr(_jit, "njit", njit)
    monkeypatch.setattr(_jit, "_warned", [])
    with pytest.warns(RuntimeWarning, match="NUMBA_CACHE_DIR"):
        add_one = kernel(nogil=True)(_add_one)
    assert add_one(41) == 42
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process
        kernel(nogil=True)(_add_one)


# -- compiling in the background (the first fit after installing) -----------------------------

_FIT = """
import sys, warnings
import numpy as np
from sklearn.datasets import load_iris
from sklegc import LEGCPrunedClassifier
from sklegc import _jit
warnings.simplefilter("ignore")
X, y = load_iris(return_X_y=True)
X = (X - X.mean(axis=0)) / X.std(axis=0)
clf = LEGCPrunedClassifier(hidden_layer_sizes=(6,), max_epochs=10, maxlag=2, random_state=0).fit(X, y)
np.save(sys.argv[1], np.concatenate([np.ravel(clf.granger_pvalues_), np.ravel(clf.lyapunov_)]))
print(sorted(group for group, child in _jit._started.items() if group is not None))
"""


def _fit_in_new_process(tmp_path, cache, switch, name):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "SKLEGC_BACKGROUND_COMPILE": switch,
           "OMP_NUM_THREADS": "1"}
    out = tmp_path / f"{name}.npy"
    done = subprocess.run([sys.executable, "-c", _FIT, str(out)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return np.load(out), done.stdout.strip()


def test_a_cold_cache_compiles_in_background_processes_and_the_fit_is_unchanged(tmp_path):
    cache = tmp_path / "cache"
    compiled, started = _fit_in_new_process(tmp_path, cache, "1", "cold")
    assert started == "['granger', 'lyapunov']"
    markers = sorted(path.name.rsplit("-", 1)[1] for path in cache.rglob("sklegc-kernels-*"))
    assert markers == ["granger.ready", "lyapunov.ready"]  # and no lock left behind
    # The next process finds them cached and starts nothing.
    warm, started = _fit_in_new_process(tmp_path, cache, "1", "warm")
    assert started == "[]"
    # Compiled in this process instead, the same numbers.
    inline, started = _fit_in_new_process(tmp_path, tmp_path / "cache2", "0", "inline")
    assert started == "[]"
    assert np.isfinite(inline).all()
    np.testing.assert_array_equal(compiled, inline)
    np.testing.assert_array_equal(warm, inline)


def test_windows_traced_while_the_kernel_compiles_get_the_same_exponents(monkeypatch):
    from sklearn.datasets import load_iris

    from sklegc import LEGCPrunedClassifier, trajectory

    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    params = dict(hidden_layer_sizes=(6,), max_epochs=10, maxlag=2, random_state=0)
    direct = LEGCPrunedClassifier(**params).fit(X, y)
    calls = []

    def pending(group):  # compiling until the fifth window
        calls.append(group)
        return len(calls) < 9

    monkeypatch.setattr(trajectory, "compile_pending", pending)
    deferred = LEGCPrunedClassifier(**params).fit(X, y)
    assert len(calls) > 9 and np.isfinite(direct.granger_pvalues_).all()
    np.testing.assert_array_equal(deferred.lyapunov_, direct.lyapunov_)
    np.testing.assert_array_equal(deferred.granger_pvalues_, direct.granger_pvalues_)


def test_a_lock_left_by_a_killed_compiler_is_not_waited_for(tmp_path, monkeypatch):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    lock = tmp_path / "x.lock"
    lock.write_text(dead)
    monkeypatch.setattr(_jit, "_started", {None: None})
    monkeypatch.setattr(_jit, "_found", [(str(tmp_path), {"lyapunov": ("x.ready", str(lock))})])
    assert not _jit.compile_pending("lyapunov")
    lock.write_text(str(os.getpid()))  # a live holder is waited for
    assert _jit.compile_pending("lyapunov")


def test_background_compilation_can_be_turned_off(monkeypatch):
    monkeypatch.setattr(_jit, "_started", {})
    monkeypatch.setenv("SKLEGC_BACKGROUND_COMPILE", "0")
    assert _jit.compile_in_background() == []
    assert not _jit.compile_pending("lyapunov")
