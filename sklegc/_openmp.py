"""numba's parallel kernels and torch in one process.

Two things go wrong when numba's parallel kernels run on the OpenMP runtime, which torch
also uses (numba's ``omp`` threading layer, its default where OpenMP is found, runs its
parallel regions on the libgomp that torch loaded):

- A parallel numba kernel resets the OpenMP thread count that torch then reads, and
  afterwards torch's tiny per-step operations run on several threads: measured on a 2-core
  machine, a cross-entropy forward and backward pass on a (3, 3) batch took 0.1 ms before
  the first numba kernel and 24 ms after it, until ``torch.set_num_threads`` was called
  again. :func:`keep_torch_threads` puts torch's setting back after each kernel.
- After each parallel region the OpenMP worker threads spin, waiting for the next one. The
  Lyapunov kernel runs once per window while the network trains, so the spinning threads
  take the cores from torch's training steps. Measured on the 2-core machine with two
  other jobs running, the default iris fit (1,216 traced steps) spent 25.4 s in its dense
  phase, against 4.4 s with numba's ``workqueue`` layer; 200 small kernel calls 2 ms apart
  cost 1.5 s of CPU on ``omp`` and 0.5 s on ``workqueue``, and a large kernel (20,000
  windows of 200 steps) took the same time on both. ``OMP_WAIT_POLICY=PASSIVE`` would
  help too, but only if set before torch is imported.

So, unless the user chose a layer (``NUMBA_THREADING_LAYER`` or
``numba.config.THREADING_LAYER``), this module selects ``workqueue`` when it is imported,
which works only if no parallel numba kernel ran in the process before. ``workqueue``
must not launch kernels from two threads at once (fits running as threads of one process,
e.g. dask's threaded workers): :func:`keep_torch_threads` holds a lock while a kernel runs.
"""

import contextlib
import sys
import threading

import numba

if numba.config.THREADING_LAYER == "default":
    numba.config.THREADING_LAYER = "workqueue"

_kernel_lock = threading.RLock()


@contextlib.contextmanager
def keep_torch_threads():
    """Run a parallel numba kernel: one at a time in the process, and torch's thread count
    restored after it (see the module docstring). Never imports torch."""
    torch = sys.modules.get("torch")
    saved = None if torch is None else torch.get_num_threads()
    with _kernel_lock:
        try:
            yield
        finally:
            if saved is not None and torch.get_num_threads() != saved:
                torch.set_num_threads(saved)
