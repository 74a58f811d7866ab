"""numba's parallel kernels and torch in one process.

numba's default threading layer runs parallel kernels on the system's OpenMP runtime, while
torch ships its own. A parallel numba kernel resets the OpenMP thread count that torch then
reads, and afterwards torch's tiny per-step operations run on several threads that compete
with numba's idle (spinning) ones: measured on a 2-core machine, a cross-entropy forward
and backward pass on a (3, 3) batch took 0.1 ms before the first numba kernel and 24 ms
after it, until ``torch.set_num_threads`` was called again. Every parallel kernel of this
package runs inside :func:`keep_torch_threads`, which puts torch's setting back.
"""

import contextlib
import sys


@contextlib.contextmanager
def keep_torch_threads():
    """Restore torch's thread count after the block, if torch is loaded (never imports it)."""
    torch = sys.modules.get("torch")
    saved = None if torch is None else torch.get_num_threads()
    try:
        yield
    finally:
        if saved is not None and torch.get_num_threads() != saved:
            torch.set_num_threads(saved)
