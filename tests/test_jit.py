"""The kernels' decorator (sklegc._jit): cached where numba can write, compiled anyway where not."""

import warnings

import numba
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
