"""Largest Lyapunov exponent of many short windows at once.

This is the estimator the LEGCNet paper ran through TISEAN ``lyap_r -m2 -r20 -d1 -s3``
once per window and per weight, restated in METHOD.md ("Lyapunov exponent of one
window") and computed here for every window of every weight in one call:

1. a window whose range is below ``static_tol`` is static: exponent 0;
2. rescale the window to [0, 1];
3. delay vectors ``v_n = (x_n, x_{n+d}, ..., x_{n+(m-1)d})``;
4. candidates ``j = 0 .. N-(m-1)d-S-1``, references ``n = 0 .. N-(m-1)d-S-1-t``;
5. each reference's nearest candidate with ``|n - j| > t`` and ``0 < |v_n - v_j|^2 < 1``,
   the highest index winning ties;
6. ``y_i`` = half the mean of ``ln |v_{n+i} - v_{j+i}|^2`` over the pairs where it is
   positive, ``i = 0 .. S``;
7. exponent ``y_1 - y_0``, or 0 where either is undefined.

Two backends give the same answers. ``"numba"`` (CPU) sorts each window's delay vectors
on their first coordinate and scans outward from each reference, stopping a direction
once the first-coordinate gap alone exceeds the best distance. The first few steps of
every scan are done together, as a branch-free sweep over pairs of sorted positions that
vectorises; only references whose nearest neighbour may lie further out continue with a
scalar scan. ``"torch"`` compares all pairs at once, which suits GPUs.
"""

import math
import numbers

import numba
import numpy as np
from numba import njit, prange

from .windows import _check_int, min_window_size

__all__ = ["divergence_curve", "max_lyapunov"]

# Extra memory one chunk may use, so that the total stays far below 1 GiB whatever
# n_series. The numba backend needs only the float64 copy of the chunk; the torch
# backend's pairwise distances need far more per series.
_NUMBA_CHUNK_BYTES = 64 * 2**20
_TORCH_CHUNK_BYTES = 256 * 2**20


# Sorted positions compared with every candidate in one vectorised sweep; nearest
# neighbours further away than this in first-coordinate order are found by a scalar scan.
_SWEEP = 8
# Bounds on the running product of squared distances before its log is taken: one log
# per few dozen pairs instead of one per pair, with no underflow or overflow.
_TINY = 1e-100
_PROD_LO = 1e-200
_PROD_HI = 1e200


@njit(cache=True, nogil=True)
def _rescale_and_sort(x, m, d, C, static_tol, y, order, rank, sc, bucket):
    """Rescale ``x`` into ``y`` and sort the candidates on their first coordinate.

    Returns 0, 1 if the window is static, 2 if it is not finite. On success
    ``order[q]`` is the candidate at sorted position ``q``, ``rank`` its inverse, and
    ``sc[k * C + q]`` coordinate ``k`` of that candidate's delay vector.
    """
    N = x.shape[0]
    lo = x[0]
    hi = x[0]
    # v - v is 0 for finite v and NaN otherwise: a finiteness check without another pass.
    probe = 0.0
    for i in range(N):
        v = x[i]
        probe += v - v
        lo = min(lo, v)
        hi = max(hi, v)
    if probe != 0.0:
        return 2
    span = hi - lo
    if span <= 0.0 or span < static_tol:
        return 1
    for i in range(N):
        y[i] = (x[i] - lo) / span

    # Counting sort into C buckets, then an insertion sort that only moves items within
    # a bucket: linear time for data spread over [0, 1] like weight trajectories.
    for b in range(C + 1):
        bucket[b] = 0
    for j in range(C):
        b = min(int(y[j] * C), C - 1)
        rank[j] = b
        bucket[b + 1] += 1
    for b in range(C):
        bucket[b + 1] += bucket[b]
    for j in range(C):
        b = rank[j]
        order[bucket[b]] = j
        bucket[b] += 1
    for q in range(C):
        sc[q] = y[order[q]]
    for q in range(1, C):
        key = sc[q]
        j = order[q]
        p = q - 1
        while p >= 0 and sc[p] > key:
            sc[p + 1] = sc[p]
            order[p + 1] = order[p]
            p -= 1
        sc[p + 1] = key
        order[p + 1] = j
    for q in range(C):
        j = order[q]
        rank[j] = q
        for k in range(1, m):
            sc[k * C + q] = y[j + k * d]
    return 0


@njit(cache=True, nogil=True)
def _scan(n, p, step, stop, m, C, t, sc, order, b, bj):
    """Continue the search of reference ``n`` (sorted position ``p``) from ``stop``.

    Walks in direction ``step`` until the first-coordinate gap alone exceeds the best
    squared distance ``b``; returns the improved ``(b, bj)``.
    """
    q = stop
    while 0 <= q < C:
        g = sc[q] - sc[p]
        g2 = g * g
        # Equal gaps are still examined: an equally near candidate with a higher index
        # must win the tie.
        if g2 > b:
            break
        j = order[q]
        v = g2
        for k in range(1, m):
            diff = sc[k * C + q] - sc[k * C + p]
            v += diff * diff
        # Selects instead of short-circuit branches: the outcome is unpredictable.
        better = ((n - j > t) | (j - n > t)) & (v > 0.0) & (v < 1.0) & (
            (v < b) | ((v == b) & (j > bj)))
        b = v if better else b
        bj = j if better else bj
        q += step
    return b, bj


@njit(cache=True, nogil=True)
def _nearest(m, C, R, t, sc, order, rank, best, bestj, dist, todo, nn):
    """Nearest admissible candidate of every reference, ``-1`` where there is none.

    Distances are accumulated coordinate by coordinate in a fixed order, so they are
    bit-identical to a one-pair-at-a-time computation and exact ties are real ties.
    """
    # 4.0 exceeds any admissible squared distance (< 1) and marks "none found yet".
    for q in range(C):
        best[q] = 4.0
        bestj[q] = -1
    # Pairs of sorted positions (q, q + o) for o = 1.._SWEEP: each pair is a candidate
    # for both of its ends, and every loop below runs over contiguous memory without
    # data-dependent branches, so it vectorises.
    sweep = min(_SWEEP, C - 1)
    for o in range(1, sweep + 1):
        L = C - o
        for q in range(L):
            g = sc[q + o] - sc[q]
            dist[q] = g * g
        for k in range(1, m):
            base = k * C
            for q in range(L):
                diff = sc[base + q + o] - sc[base + q]
                dist[q] += diff * diff
        for q in range(L):
            ja = order[q]
            jb = order[q + o]
            v = dist[q]
            ok = ((ja - jb > t) | (jb - ja > t)) & (v > 0.0) & (v < 1.0)
            v = v if ok else 4.0
            dist[q] = v
            b = best[q]
            bj = bestj[q]
            better = (v < b) | ((v == b) & (jb > bj))
            best[q] = v if better else b
            bestj[q] = jb if better else bj
        for q in range(L):
            v = dist[q]
            ja = order[q]
            b = best[q + o]
            bj = bestj[q + o]
            better = (v < b) | ((v == b) & (ja > bj))
            best[q + o] = v if better else b
            bestj[q + o] = ja if better else bj
    # A reference is settled once the next position on each side is further away in
    # the first coordinate alone than its best distance; collect the others.
    n_todo = 0
    for p in range(C):
        b = best[p]
        lq = max(p - sweep - 1, 0)
        rq = min(p + sweep + 1, C - 1)
        gl = sc[lq] - sc[p]
        gr = sc[rq] - sc[p]
        open_left = (p - sweep - 1 >= 0) & (gl * gl <= b)
        open_right = (p + sweep + 1 < C) & (gr * gr <= b)
        todo[n_todo] = p
        n_todo += (open_left | open_right) & (order[p] < R)
    for i in range(n_todo):
        p = todo[i]
        n = order[p]
        b, bj = _scan(n, p, -1, p - sweep - 1, m, C, t, sc, order, best[p], bestj[p])
        b, bj = _scan(n, p, 1, p + sweep + 1, m, C, t, sc, order, b, bj)
        best[p] = b
        bestj[p] = bj
    for n in range(R):
        p = rank[n]
        nn[n] = bestj[p] if best[p] < 1.0 else -1


@njit(cache=True, nogil=True)
def _follow(y, m, d, R, n_follow, nn, sums, counts):
    """Sum of ``ln |v_{n+i} - v_{j+i}|^2`` over the pairs, and their number, per step."""
    for i in range(n_follow):
        logs = 0.0
        prod = 1.0
        count = 0
        for n in range(R):
            j = nn[n]
            if j < 0:
                continue
            v = 0.0
            for k in range(m):
                diff = y[n + i + k * d] - y[j + i + k * d]
                v += diff * diff
            if v > 0.0:
                count += 1
                if v < _TINY:
                    logs += math.log(v)
                else:
                    prod *= v
                    if prod < _PROD_LO or prod > _PROD_HI:
                        logs += math.log(prod)
                        prod = 1.0
        sums[i] = logs + math.log(prod)
        counts[i] = count


@njit(cache=True, nogil=True)
def _window(x, m, d, S, t, n_follow, static_tol, work, iwork, sums, counts):
    """Divergence sums of one window; returns 0, 1 if static, 2 if not finite."""
    N = x.shape[0]
    C = N - (m - 1) * d - S
    R = C - t
    y = work[:N]
    sc = work[N:N + m * C]
    best = work[N + m * C:N + (m + 1) * C]
    dist = work[N + (m + 1) * C:N + (m + 2) * C]
    order = iwork[:C]
    rank = iwork[C:2 * C]
    bestj = iwork[2 * C:3 * C]
    todo = iwork[3 * C:4 * C]
    nn = iwork[4 * C:5 * C]
    bucket = iwork[5 * C:6 * C + 1]
    status = _rescale_and_sort(x, m, d, C, static_tol, y, order, rank, sc, bucket)
    if status != 0:
        return status
    _nearest(m, C, R, t, sc, order, rank, best, bestj, dist, todo, nn)
    _follow(y, m, d, R, n_follow, nn, sums, counts)
    return 0


def _n_blocks(n_series):
    # Many small blocks per thread keep the threads busy to the end even when other
    # processes preempt one of them; each block allocates its buffers once.
    return max(1, min(n_series, 64 * numba.get_num_threads()))


@njit(cache=True, nogil=True)
def _curves_block(X, lo, hi, m, d, S, t, out, bad):
    N = X.shape[1]
    C = N - (m - 1) * d - S
    work = np.empty(N + (m + 2) * C)
    iwork = np.empty(6 * C + 1, dtype=np.int64)
    sums = np.empty(S + 1)
    counts = np.empty(S + 1, dtype=np.int64)
    for s in range(lo, hi):
        status = _window(X[s], m, d, S, t, S + 1, 0.0, work, iwork, sums, counts)
        if status != 0:
            bad[s] = status == 2
            out[s, :] = np.nan
            continue
        for i in range(S + 1):
            out[s, i] = sums[i] / counts[i] / 2.0 if counts[i] > 0 else np.nan


@njit(cache=True, nogil=True)
def _lyap_block(X, lo, hi, m, d, S, t, static_tol, out, bad):
    N = X.shape[1]
    C = N - (m - 1) * d - S
    work = np.empty(N + (m + 2) * C)
    iwork = np.empty(6 * C + 1, dtype=np.int64)
    sums = np.empty(2)
    counts = np.empty(2, dtype=np.int64)
    for s in range(lo, hi):
        out[s] = 0.0
        # Only y_0 and y_1 enter the exponent, so only two steps are followed.
        status = _window(X[s], m, d, S, t, 2, static_tol, work, iwork, sums, counts)
        if status != 0:
            bad[s] = status == 2
            continue
        if counts[0] > 0 and counts[1] > 0:
            out[s] = sums[1] / counts[1] / 2.0 - sums[0] / counts[0] / 2.0


# The parallel loops only hand out blocks of series: code inside a prange body is
# compiled with less aliasing information and ran about 20% slower.
@njit(parallel=True, cache=True)
def _curves_numba(X, m, d, S, t, n_blocks, out, bad):
    n = X.shape[0]
    for blk in prange(n_blocks):
        _curves_block(X, blk * n // n_blocks, (blk + 1) * n // n_blocks, m, d, S, t, out, bad)


@njit(parallel=True, cache=True)
def _lyap_numba(X, m, d, S, t, static_tol, n_blocks, out, bad):
    n = X.shape[0]
    for blk in prange(n_blocks):
        _lyap_block(X, blk * n // n_blocks, (blk + 1) * n // n_blocks, m, d, S, t, static_tol,
                    out, bad)


def _curves_torch(x, m, d, S, t, n_follow):
    """Divergence curves ``y_0 .. y_{n_follow-1}`` of float64 tensor ``x`` and its ranges."""
    import torch

    n_series, N = x.shape
    M = N - (m - 1) * d
    C = M - S
    R = C - t
    lo = x.amin(dim=1, keepdim=True)
    span = x.amax(dim=1, keepdim=True) - lo
    y = (x - lo) / torch.where(span > 0, span, torch.ones_like(span))
    coords = [y[:, k * d: k * d + M] for k in range(m)]

    # Accumulating coordinate by coordinate, in the numba kernel's order, makes the
    # squared distances bit-identical, so exact ties are broken the same way.
    d2 = None
    for k in range(m):
        diff = coords[k][:, :R, None] - coords[k][:, None, :C]
        sq = diff * diff
        d2 = sq if d2 is None else d2 + sq
        del diff, sq
    ref = torch.arange(R, device=x.device)
    cand = torch.arange(C, device=x.device)
    far = (ref[:, None] - cand[None, :]).abs() > t
    valid = far & (d2 > 0) & (d2 < 1)
    d2 = torch.where(valid, d2, torch.full((), math.inf, dtype=d2.dtype, device=d2.device))
    best = d2.amin(dim=2, keepdim=True)
    winner = torch.where((d2 == best) & valid, cand, -1).amax(dim=2)
    del d2, valid
    found = winner >= 0
    winner = winner.clamp(min=0)

    curve = torch.empty((n_series, n_follow), dtype=x.dtype, device=x.device)
    for i in range(n_follow):
        d2 = None
        for k in range(m):
            diff = coords[k][:, i: i + R] - torch.gather(coords[k], 1, winner + i)
            sq = diff * diff
            d2 = sq if d2 is None else d2 + sq
        ok = found & (d2 > 0)
        logs = torch.where(ok, torch.log(torch.where(ok, d2, torch.ones_like(d2))),
                           torch.zeros_like(d2))
        count = ok.sum(dim=1)
        # 0 / 0 gives the NaN that marks an undefined point of the curve.
        curve[:, i] = logs.sum(dim=1) / count / 2.0
    return curve, span[:, 0]


def _check_params(embedding_dim, delay, steps, theiler):
    return (
        _check_int("embedding_dim", embedding_dim, 1),
        _check_int("delay", delay, 1),
        _check_int("steps", steps, 1),
        _check_int("theiler", theiler, 0),
    )


def _is_tensor(x):
    torch = _torch_if_loaded()
    return torch is not None and isinstance(x, torch.Tensor)


def _torch_if_loaded():
    # Importing torch costs seconds; numpy callers of the numba backend never pay it.
    import sys

    return sys.modules.get("torch")


def _prepare(windows, params, chunk_size, backend):
    """Validate the inputs; return (windows, is_tensor, backend, chunk_size)."""
    m, d, S, t = params
    is_tensor = _is_tensor(windows)
    if not is_tensor:
        windows = np.asarray(windows)
        if windows.dtype.kind not in "fiub":
            raise TypeError(f"windows must hold real numbers, got dtype {windows.dtype}")
    elif windows.is_complex():
        raise TypeError(f"windows must hold real numbers, got dtype {windows.dtype}")
    if windows.ndim != 2:
        raise ValueError(
            f"windows must be 2-D with shape (n_series, window_length), got shape "
            f"{tuple(windows.shape)}"
        )
    need = min_window_size(m, d, S, t)
    if windows.shape[1] < need:
        raise ValueError(
            f"windows are {windows.shape[1]} long; with embedding_dim={m}, delay={d}, "
            f"steps={S}, theiler={t} the minimum window length is {need}"
        )
    if backend is None:
        backend = "torch" if is_tensor and windows.device.type != "cpu" else "numba"
    if backend not in ("numba", "torch"):
        raise ValueError(f"backend must be 'numba', 'torch' or None, got {backend!r}")
    if backend == "numba" and is_tensor and windows.device.type != "cpu":
        raise ValueError("backend='numba' needs CPU data; use backend='torch' for "
                         f"tensors on {windows.device}")
    if chunk_size is None:
        N = windows.shape[1]
        if backend == "numba":
            chunk_size = max(1, _NUMBA_CHUNK_BYTES // (8 * N))
        else:
            # The pairwise distances dominate: a few (R, C) float64 arrays per series.
            chunk_size = max(1, _TORCH_CHUNK_BYTES // (8 * 4 * N * N))
    else:
        chunk_size = _check_int("chunk_size", chunk_size, 1)
    return windows, is_tensor, backend, chunk_size


def _float64_chunk(windows, start, stop, is_tensor, backend):
    chunk = windows[start:stop]
    if backend == "numba":
        if is_tensor:
            chunk = chunk.detach().to(dtype=_torch_if_loaded().float64).contiguous().numpy()
        return np.ascontiguousarray(chunk, dtype=np.float64)
    import torch

    if is_tensor:
        return chunk.detach().to(dtype=torch.float64).contiguous()
    return torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float64))


def _run(windows, params, chunk_size, backend, width, numba_kernel, torch_kernel):
    windows, is_tensor, backend, chunk_size = _prepare(windows, params, chunk_size, backend)
    n_series = windows.shape[0]
    shape = (n_series,) if width is None else (n_series, width)
    if backend == "torch":
        import torch

        device = windows.device if is_tensor else torch.device("cpu")
        torch_out = torch.empty(shape, dtype=torch.float64, device=device)
    else:
        out = np.empty(shape)
    for start in range(0, n_series, chunk_size):
        stop = min(start + chunk_size, n_series)
        chunk = _float64_chunk(windows, start, stop, is_tensor, backend)
        if backend == "numba":
            bad = np.zeros(stop - start, dtype=np.bool_)
            numba_kernel(chunk, out[start:stop], bad)
            nonfinite = bool(bad.any())
        else:
            nonfinite = not bool(torch.isfinite(chunk).all())
            if not nonfinite:
                torch_out[start:stop] = torch_kernel(chunk)
        if nonfinite:
            raise ValueError("windows must be finite: found NaN or infinity")
        # Dropped before the next chunk is made, so that two never coexist.
        del chunk
    if backend == "torch":
        if is_tensor:
            return torch_out
        return torch_out.cpu().numpy()
    if is_tensor:
        import torch

        return torch.from_numpy(out).to(windows.device)
    return out


def divergence_curve(windows, *, embedding_dim=2, delay=1, steps=3, theiler=0,
                     chunk_size=None, backend=None):
    """Mean log-distance curve of each window (METHOD.md, steps 2 to 6).

    Parameters
    ----------
    windows : array-like or torch.Tensor of shape (n_series, window_length)
        One window of one trajectory per row, float32 or float64 (computed in float64).
    embedding_dim : int, default=2
        Embedding dimension ``m``.
    delay : int, default=1
        Delay ``d`` between the coordinates of a delay vector.
    steps : int, default=3
        Follow-up steps ``S``; the curve has ``S + 1`` points.
    theiler : int, default=0
        Theiler window ``t``: a neighbour must be more than ``t`` steps away in time.
    chunk_size : int, optional
        Series converted to float64 and processed at once. The default bounds the
        extra memory to about 64 MiB (numba) or 256 MiB (torch); results do not
        depend on it.
    backend : {"numba", "torch"}, optional
        Default: ``"torch"`` for CUDA tensors, ``"numba"`` otherwise. Both give the
        same answers.

    Returns
    -------
    ndarray or torch.Tensor of shape (n_series, steps + 1), float64
        ``y_i``, half the mean of ``ln |v_{n+i} - v_{j+i}|^2`` over the reference /
        nearest-neighbour pairs; NaN where no pair contributes and on rows whose
        window is constant. A tensor (on the input's device) for tensor input.

    Raises
    ------
    ValueError
        For invalid parameters, windows that are not 2-D, shorter than
        ``min_window_size(embedding_dim, delay, steps, theiler)``, or not finite.

    See Also
    --------
    max_lyapunov : the exponent ``y_1 - y_0`` with the paper's conventions.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.empty(2000)
    >>> x[0] = 0.3
    >>> for i in range(1, x.size):
    ...     x[i] = 4.0 * x[i - 1] * (1.0 - x[i - 1])
    >>> y = divergence_curve(x[None, :], theiler=10)
    >>> y.shape
    (1, 4)
    >>> bool(abs((y[0, 1] - y[0, 0]) - np.log(2)) < 0.2)
    True
    """
    params = _check_params(embedding_dim, delay, steps, theiler)
    m, d, S, t = params

    def numba_kernel(chunk, out, bad):
        _curves_numba(chunk, m, d, S, t, _n_blocks(len(chunk)), out, bad)

    def torch_kernel(chunk):
        curve, span = _curves_torch(chunk, m, d, S, t, S + 1)
        curve[span == 0] = math.nan
        return curve

    return _run(windows, params, chunk_size, backend, S + 1, numba_kernel, torch_kernel)


def max_lyapunov(windows, *, embedding_dim=2, delay=1, steps=3, theiler=0,
                 static_tol=1e-5, chunk_size=None, backend=None):
    """Largest Lyapunov exponent of each window, as the LEGCNet paper computed it.

    The exponent is ``y_1 - y_0`` of :func:`divergence_curve` (METHOD.md, step 7):
    the paper's TISEAN ``lyap_r -m2 -r20 -d1 -s3`` with its post-processing.

    Parameters
    ----------
    windows : array-like or torch.Tensor of shape (n_series, window_length)
        One window of one trajectory per row, float32 or float64 (computed in float64).
    embedding_dim : int, default=2
        Embedding dimension ``m``.
    delay : int, default=1
        Delay ``d`` between the coordinates of a delay vector.
    steps : int, default=3
        Follow-up steps ``S`` (only ``y_0`` and ``y_1`` enter the exponent, but ``S``
        fixes the candidate and reference ranges).
    theiler : int, default=0
        Theiler window ``t``: a neighbour must be more than ``t`` steps away in time.
    static_tol : float, default=1e-5
        A window with ``max - min < static_tol`` is static: exponent 0.
    chunk_size : int, optional
        Series converted to float64 and processed at once. The default bounds the
        extra memory to about 64 MiB (numba) or 256 MiB (torch); results do not
        depend on it.
    backend : {"numba", "torch"}, optional
        Default: ``"torch"`` for CUDA tensors, ``"numba"`` otherwise. Both give the
        same answers.

    Returns
    -------
    ndarray or torch.Tensor of shape (n_series,), float64
        The exponents; 0 for static windows and where ``y_0`` or ``y_1`` is undefined.
        A tensor (on the input's device) for tensor input.

    Raises
    ------
    ValueError
        For invalid parameters, windows that are not 2-D, shorter than
        ``min_window_size(embedding_dim, delay, steps, theiler)``, or not finite.

    See Also
    --------
    divergence_curve : the whole curve ``y_0 .. y_S``.
    sklegc.windows.window_layout : where the windows of a trajectory lie.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> walks = rng.standard_normal((3, 200)).cumsum(axis=1).astype(np.float32)
    >>> walks[2] = 0.5
    >>> le = max_lyapunov(walks)
    >>> le.shape, le.dtype, float(le[2])
    ((3,), dtype('float64'), 0.0)
    """
    params = _check_params(embedding_dim, delay, steps, theiler)
    m, d, S, t = params
    if isinstance(static_tol, bool) or not isinstance(static_tol, numbers.Real):
        raise TypeError(f"static_tol must be a real number, got {static_tol!r}")
    static_tol = float(static_tol)
    if not static_tol >= 0.0:
        raise ValueError(f"static_tol must be at least 0, got {static_tol!r}")

    def numba_kernel(chunk, out, bad):
        _lyap_numba(chunk, m, d, S, t, static_tol, _n_blocks(len(chunk)), out, bad)

    def torch_kernel(chunk):
        curve, span = _curves_torch(chunk, m, d, S, t, 2)
        le = curve[:, 1] - curve[:, 0]
        le[(span < static_tol) | (span == 0) | le.isnan()] = 0.0
        return le

    return _run(windows, params, chunk_size, backend, None, numba_kernel, torch_kernel)
