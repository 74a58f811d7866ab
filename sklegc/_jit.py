"""The numba decorator of the package's kernels: compiled once per machine, cached on disk.

The first call of a kernel with a new argument type compiles it (seconds); ``cache=True``
stores the machine code so that later processes load it instead (well under a second). numba
writes it next to the source, in ``sklegc/__pycache__``, or, where the installation is
read-only (a system-wide or container install), in the user's cache directory
(``~/.cache/numba`` on Linux); ``NUMBA_CACHE_DIR`` chooses another place. A cached version
is used only for the source it was compiled from (numba checks a hash of the file) and on
the same CPU model (docs/performance.md, "Compiling the kernels").

Where numba can write to none of these places, ``cache=True`` makes the decoration, and so
importing the package, fail. :func:`kernel` then compiles without the cache, in every
process, and warns once.
"""

import warnings

from numba import njit

_warned = []


def kernel(**options):
    """``numba.njit(cache=True, **options)``, or without the cache where numba has no
    writable place for it (tests/test_jit.py)."""

    def decorate(func):
        try:
            return njit(cache=True, **options)(func)
        except RuntimeError as exc:
            if "cannot cache" not in str(exc):
                raise
            if not _warned:
                _warned.append(True)
                warnings.warn(
                    f"numba cannot cache sklegc's compiled kernels ({exc}): every new process "
                    "compiles them again on first use, which takes seconds. Set "
                    "NUMBA_CACHE_DIR to a writable directory.", RuntimeWarning, stacklevel=2)
            return njit(**options)(func)

    return decorate
