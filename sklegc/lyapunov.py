"""Largest Lyapunov exponent of many short windows at once.

This is the estimator the LEGCNet paper ran through TISEAN ``lyap_r -m2 -r20 -d1 -s3``
once per window and per weight, stated in docs/method.md ("The Lyapunov exponent of one
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
into buckets of the sum of their coordinates (their projection on the diagonal, along
which weight trajectories lie) and searches outward from each reference in that order: a
candidate whose key differs by ``g`` is at least ``g^2 / m`` away, so the search of one
direction ends once the bucket numbers prove ``g^2`` above ``m`` times the best distance.
The nearest ``_SWEEP`` positions in that order on each side are compared for all
references together, in loops without data-dependent branches that vectorise; only
references whose nearest neighbour may lie further out continue, over the range of
positions that the bucket numbers leave open. ``"torch"`` compares all pairs at once,
which suits GPUs.
"""

import math
import numbers

import numpy as np

from ._jit import kernel, wait_for_compile
from .threads import parallel_blocks
from .windows import _check_int, min_window_size

__all__ = ["divergence_curve", "max_lyapunov"]

# Extra memory one chunk may use, so that the total stays far below 1 GiB whatever
# n_series. The numba backend reads float32 and float64 windows in place and copies only
# other dtypes; the torch backend's pairwise distances need far more per series.
_NUMBA_CHUNK_BYTES = 64 * 2**20
_TORCH_CHUNK_BYTES = 256 * 2**20
# On a GPU, bigger chunks mean fewer kernel launches: 3x faster on an H100, still under
# 1 GiB at the peak.
_CUDA_CHUNK_BYTES = 768 * 2**20


# Positions (in bucket order) on each side of a reference that every search compares;
# nearest neighbours further away than this in that order are found by _scan.
_SWEEP = 9
# Counting-sort buckets per candidate: enough that few buckets hold two keys, so that
# bucket order is nearly key order and the bound that bucket numbers give is tight.
_BUCKETS_PER_POINT = 4
# Sort keys beyond both ends of the sorted candidates: no candidate lies there, and the
# bound they give proves it without a test on the position.
_FAR = 1e300
# Marks "no admissible candidate": above any admissible squared distance (< 1).
_NONE = 4.0
# Bounds on the running product of squared distances before its log is taken: one log
# per few dozen pairs instead of one per pair, with no underflow or overflow.
_TINY = 1e-100
_PROD_LO = 1e-200
_PROD_HI = 1e200

# Compiled (and cached on disk: sklegc._jit) without Python's checks for division by zero
# (no denominator here is ever 0), which would otherwise sit in every loop that divides;
# without the GIL, so that blocks of series run on several threads
# (sklegc.threads.parallel_blocks). The two kernels, _exponent_block (two follow-up steps:
# max_lyapunov, what a fit computes) and _sums_block (any number: divergence_curve beyond
# steps=1), are each one function: their helpers are inlined into them
# (inline="always", in numba's IR), since each function compiled on its own is optimised
# and turned into machine code once by itself and again inside every compiled caller. Each
# is compiled on its first use, so a fit compiles only the first, which leaves out the
# general follow-up steps: about 0.7 s less (docs/performance.md, "Compiling the
# kernels"). Both give the same bits.
_KERNEL = dict(nogil=True, error_model="numpy")


@kernel(**_KERNEL, inline="always")
def _gap_bound(b, m):
    """Squared key gap beyond which a candidate is surely further away than ``b``.

    Keys are coordinate sums, so ``gap^2 <= m * distance`` exactly; the relative and
    absolute slack cover the rounding of the keys, the gap and the distances (keys are
    at most ``m``), so that no candidate at or below ``b`` is ever skipped.
    """
    return m * b * (1.0 + 1e-9) + 1e-12 * m * m * m


@kernel(**_KERNEL, inline="always")
def _key_gap(kq, kp, width):
    """Lower bound on the key difference of candidates in buckets ``kq`` and ``kp``.

    Keys in buckets ``Δ`` apart differ by more than ``Δ - 1`` bucket widths; the
    1e-6 covers the rounding of the bucket numbers.
    """
    return max(abs(kq - kp) - 1.000001, 0.0) * width


@kernel(**_KERNEL, inline="always")
def _rescale_and_sort(x, offs, C, static_tol, y, key, sc, order, rank, bucket):
    """Rescale ``x`` into ``y`` and sort the candidates on their key's bucket.

    Returns 0, 1 if the window is static, 2 if it is not finite. On success
    ``order[q]`` is the candidate at sorted position ``q``, ``rank`` its inverse,
    ``key[q]`` the number of its key's bucket (keys are coordinate sums, bucketed in
    ``_BUCKETS_PER_POINT * C`` equal widths over ``[0, m]``) and ``sc[k * C + q]``
    coordinate ``k`` of its delay vector. ``x`` may be float32: values are read as float64.
    ``offs`` holds the offsets ``k * d`` of the coordinates (see ``_delay_offsets``).
    """
    m = len(offs)
    N = x.shape[0]
    lo = np.float64(x[0])
    hi = lo
    # |v| < inf is False for NaN and infinities: a finiteness check without another pass,
    # and an OR of flags, not a chain of floating-point additions.
    bad = False
    for i in range(N):
        v = np.float64(x[i])
        bad |= not abs(v) < np.inf
        lo = min(lo, v)
        hi = max(hi, v)
    if bad:
        return 2
    span = hi - lo
    if span <= 0.0 or span < static_tol:
        return 1
    for i in range(N):
        y[i] = (np.float64(x[i]) - lo) / span

    # Counting sort into buckets of equal key width, in linear time. Within a bucket the
    # candidates stay in index order: the searches only rely on the bucket numbers,
    # which never decrease along the order (see _key_gap).
    n_buckets = _BUCKETS_PER_POINT * C
    scale = n_buckets / m
    for b in range(n_buckets):
        bucket[b] = 0
    for j in range(C):
        u = y[j]
        for k in range(1, m):
            u += y[j + offs[k]]
        b = min(int(u * scale), n_buckets - 1)
        rank[j] = b
        bucket[b] += 1
    # Each bucket's first position: the running total stays in a register instead of
    # going through memory from one bucket to the next.
    total = 0
    for b in range(n_buckets):
        c = bucket[b]
        bucket[b] = total
        total += c
    for j in range(C):
        b = rank[j]
        order[bucket[b]] = j
        bucket[b] += 1
    for q in range(C):
        key[q] = rank[order[q]]
    for q in range(C):
        j = order[q]
        rank[j] = q
        for k in range(m):
            sc[k * C + q] = y[j + offs[k]]
    return 0


@kernel(**_KERNEL, inline="always")
def _scan(n, p, W, m, C, t, width, key, sc, order, b, bj):
    """Search on for reference ``n`` (position ``p``) beyond the ``W`` swept on each side.

    The bucket numbers bound the range of positions that may hold a candidate at or
    below the sweep's best squared distance ``b``; every candidate in that range is
    compared (a better one found on the way only makes the range larger than needed,
    which keeps the loop free of a data-dependent exit). Returns the final ``(b, bj)``.
    """
    bound = _gap_bound(b, m)
    lo = p - W - 1
    while lo >= 0 and _key_gap(key[lo], key[p], width) ** 2 <= bound:
        lo -= 1
    hi = p + W + 1
    while hi < C and _key_gap(key[hi], key[p], width) ** 2 <= bound:
        hi += 1
    for q in range(lo + 1, hi):
        if p - W <= q <= p + W:
            continue
        j = order[q]
        v = 0.0
        for k in range(m):
            diff = sc[k * C + q] - sc[k * C + p]
            v += diff * diff
        # Selects instead of short-circuit branches: the outcome is unpredictable.
        better = ((n - j > t) | (j - n > t)) & (v > 0.0) & (v < 1.0) & (
            (v < b) | ((v == b) & (j > bj)))
        b = v if better else b
        bj = j if better else bj
    return b, bj


@kernel(**_KERNEL, inline="always")
def _nearest(offs, C, R, t, keypad, sc, order, rank, best, bestj, pair, ordpad, todo, flag,
             nn, nnd):
    """Nearest admissible candidate of every reference and its squared distance.

    ``nn[n]`` is ``-1`` where reference ``n`` has none. Distances are accumulated
    coordinate by coordinate in a fixed order, so they are bit-identical to a
    one-pair-at-a-time computation and exact ties are real ties. ``pair`` (shape
    ``(_SWEEP + 1, C + 2 * _SWEEP)``) and ``ordpad`` (``C + 2 * _SWEEP``) must hold
    ``_NONE`` and ``-1`` in their first and last ``_SWEEP`` columns; ``keypad``
    (``C + 2 * (_SWEEP + 1)``) holds the sorted keys between ``_SWEEP + 1`` entries
    of ``-_FAR`` and of ``_FAR``.
    """
    m = len(offs)
    W = _SWEEP
    KO = W + 1
    key = keypad[KO:KO + C]
    # Pass 1: the squared distance of every pair of sorted positions (q, q + o),
    # o = 1.._SWEEP, in pair[o, W + q], _NONE where the pair is not admissible.
    # Branch-free loops over contiguous memory: they vectorise.
    for o in range(1, W + 1):
        row = pair[o]
        for q in range(C - o):
            v = 0.0
            for k in range(m):
                diff = sc[k * C + q + o] - sc[k * C + q]
                v += diff * diff
            row[W + q] = v if (v > 0.0) & (v < 1.0) else _NONE
    if t > 0:
        # Distinct candidates are always more than 0 steps apart: only a Theiler
        # window needs the time indices.
        for o in range(1, W + 1):
            row = pair[o]
            for q in range(C - o):
                ja = order[q]
                jb = order[q + o]
                row[W + q] = row[W + q] if (ja - jb > t) | (jb - ja > t) else _NONE
    # Pass 2: each position's best over its 2 * _SWEEP sorted neighbours. The padding
    # stands in for positions beyond the ends. The rule (smaller distance, then higher
    # index) is a total order, so the visiting order does not matter.
    for q in range(C):
        ordpad[W + q] = order[q]
    for p in range(C):
        b = _NONE
        bj = -1
        for o in range(1, W + 1):
            v = pair[o, W + p]
            j = ordpad[W + p + o]
            better = (v < b) | ((v == b) & (j > bj))
            b = v if better else b
            bj = j if better else bj
            v = pair[o, W + p - o]
            j = ordpad[W + p - o]
            better = (v < b) | ((v == b) & (j > bj))
            b = v if better else b
            bj = j if better else bj
        best[p] = b
        bestj[p] = bj
    # A reference is settled once the next position on each side is provably further
    # away than its best (beyond the ends, the padding's keys prove it); flag the others
    # in a loop that vectorises, then collect them and scan on for them.
    width = m / (_BUCKETS_PER_POINT * C)
    for p in range(C):
        kp = keypad[KO + p]
        gl = _key_gap(keypad[p], kp, width)
        gr = _key_gap(keypad[p + 2 * KO], kp, width)
        bound = _gap_bound(best[p], m)
        flag[p] = (gl * gl <= bound) | (gr * gr <= bound)
    n_todo = 0
    for p in range(C):
        if flag[p] and order[p] < R:
            todo[n_todo] = p
            n_todo += 1
    for i in range(n_todo):
        p = todo[i]
        b, bj = _scan(order[p], p, W, m, C, t, width, key, sc, order, best[p], bestj[p])
        best[p] = b
        bestj[p] = bj
    for n in range(R):
        p = rank[n]
        nn[n] = bestj[p] if best[p] < 1.0 else -1
        nnd[n] = best[p]


@kernel(**_KERNEL, inline="always")
def _add_log(v, logs, prod, count):
    """Add ``ln v`` to the running ``logs + ln(prod)`` if ``v > 0``; count it."""
    if v > 0.0:
        count += 1
        if v < _TINY:
            logs += math.log(v)
        else:
            prod *= v
            if prod < _PROD_LO or prod > _PROD_HI:
                logs += math.log(prod)
                prod = 1.0
    return logs, prod, count


@kernel(**_KERNEL, inline="always")
def _follow_two(y, offs, R, nn, nnd, sums, counts):
    """``_follow`` for the exponent's two steps, in one pass: two independent chains of
    products that the processor overlaps (each step's order is unchanged)."""
    m = len(offs)
    l0, p0, c0 = 0.0, 1.0, 0
    l1, p1, c1 = 0.0, 1.0, 0
    for n in range(R):
        j = nn[n]
        if j < 0:
            continue
        l0, p0, c0 = _add_log(nnd[n], l0, p0, c0)
        v = 0.0
        for k in range(m):
            diff = y[n + 1 + offs[k]] - y[j + 1 + offs[k]]
            v += diff * diff
        l1, p1, c1 = _add_log(v, l1, p1, c1)
    sums[0] = l0 + math.log(p0)
    sums[1] = l1 + math.log(p1)
    counts[0] = c0
    counts[1] = c1


@kernel(**_KERNEL, inline="always")
def _follow(y, offs, R, n_follow, nn, nnd, sums, counts):
    """Sum of ``ln |v_{n+i} - v_{j+i}|^2`` over the pairs, and their number, per step.

    Step 0 reuses the neighbour search's distances, which are the same numbers.
    """
    m = len(offs)
    for i in range(n_follow):
        logs, prod, count = 0.0, 1.0, 0
        for n in range(R):
            j = nn[n]
            if j < 0:
                continue
            if i == 0:
                v = nnd[n]
            else:
                v = 0.0
                for k in range(m):
                    diff = y[n + i + offs[k]] - y[j + i + offs[k]]
                    v += diff * diff
            logs, prod, count = _add_log(v, logs, prod, count)
        sums[i] = logs + math.log(prod)
        counts[i] = count


@kernel(**_KERNEL, inline="always")
def _workspace(N, offs, S):
    """The work arrays of a block of windows of length ``N``: ``(C, y, keypad, key, flag,
    sc, best, nnd, pair, ordpad, order, rank, bestj, todo, nn, bucket)``, ``C`` being the
    number of candidates; the padding of ``keypad``, ``pair`` and ``ordpad`` is set."""
    m = len(offs)
    C = N - offs[m - 1] - S
    W = _SWEEP
    y = np.empty(N)
    keypad = np.empty(C + 2 * (W + 1))
    keypad[:W + 1] = -_FAR
    keypad[C + W + 1:] = _FAR
    key = keypad[W + 1:C + W + 1]
    flag = np.empty(C, dtype=np.bool_)
    sc = np.empty(m * C)
    best = np.empty(C)
    nnd = np.empty(C)
    # np.empty and loops rather than np.full: one function fewer to compile on first use.
    pair = np.empty((W + 1, C + 2 * W))
    ordpad = np.empty(C + 2 * W, dtype=np.int64)
    for o in range(W + 1):
        for q in range(C + 2 * W):
            pair[o, q] = _NONE
    for q in range(C + 2 * W):
        ordpad[q] = -1
    order = np.empty(C, dtype=np.int64)
    rank = np.empty(C, dtype=np.int64)
    bestj = np.empty(C, dtype=np.int64)
    todo = np.empty(C, dtype=np.int64)
    nn = np.empty(C, dtype=np.int64)
    bucket = np.empty(_BUCKETS_PER_POINT * C, dtype=np.int64)
    return (C, y, keypad, key, flag, sc, best, nnd, pair, ordpad, order, rank, bestj, todo,
            nn, bucket)


@kernel(**_KERNEL)
def _exponent_block(buf, rs, N, lo, hi, offs, S, t, static_tol, sums, counts, status):
    """``_sums_block`` for two steps, the exponent's case (``max_lyapunov``, what a fit
    computes): without the code for other numbers of steps, it compiles in about 0.7 s
    less (docs/performance.md, "Compiling the kernels"). The same arithmetic in the same
    order: the same bits. Its loop over the windows is written out, as ``_sums_block``'s
    is, so that it holds none of the other's code (a shared inlined body with constant
    arguments compiled slower still)."""
    (C, y, keypad, key, flag, sc, best, nnd, pair, ordpad, order, rank, bestj, todo, nn,
     bucket) = _workspace(N, offs, S)
    R = C - t
    for s in range(lo, hi):
        r = s - lo
        x = buf[s * rs:s * rs + N]
        st = _rescale_and_sort(x, offs, C, static_tol, y, key, sc, order, rank, bucket)
        status[r] = st
        if st != 0:
            continue
        _nearest(offs, C, R, t, keypad, sc, order, rank, best, bestj, pair, ordpad, todo, flag,
                 nn, nnd)
        _follow_two(y, offs, R, nn, nnd, sums[r], counts[r])


@kernel(**_KERNEL)
def _sums_block(buf, rs, N, lo, hi, offs, S, t, n_follow, static_tol, sums, counts, status):
    """Divergence sums of windows ``lo .. hi-1``, window ``s`` being ``buf[s*rs : s*rs+N]``.

    Row ``r`` of ``sums``, ``counts`` and ``status`` is window ``lo + r``; ``status`` is
    0, 1 for a static window or 2 for one that is not finite. Any number of steps
    ``n_follow``; ``_exponent_block`` computes the case of two steps, the exponent's.
    """
    (C, y, keypad, key, flag, sc, best, nnd, pair, ordpad, order, rank, bestj, todo, nn,
     bucket) = _workspace(N, offs, S)
    R = C - t
    for s in range(lo, hi):
        r = s - lo
        x = buf[s * rs:s * rs + N]
        st = _rescale_and_sort(x, offs, C, static_tol, y, key, sc, order, rank, bucket)
        status[r] = st
        if st != 0:
            continue
        _nearest(offs, C, R, t, keypad, sc, order, rank, best, bestj, pair, ordpad, todo, flag,
                 nn, nnd)
        _follow(y, offs, R, n_follow, nn, nnd, sums[r], counts[r])


def _divergence_sums(chunk, m, d, S, t, n_follow, static_tol):
    """``(sums, counts, status)`` of every row of ``chunk`` (see ``_sums_block``), the
    rows' blocks spread over the kernels' threads."""
    if n_follow == 2:
        # The kernel compiled in the background (sklegc._jit); _sums_block, which no
        # background process compiles, is compiled here on its first use, without waiting.
        wait_for_compile("lyapunov")
    buf, rs = _flat_rows(chunk)
    n, N = chunk.shape
    offs = _delay_offsets(m, d)
    sums = np.empty((n, n_follow))
    counts = np.zeros((n, n_follow), dtype=np.int64)  # the kernel skips static windows
    status = np.empty(n, dtype=np.int64)
    if n_follow == 2:
        parallel_blocks(lambda lo, hi: _exponent_block(
            buf, rs, N, lo, hi, offs, S, t, static_tol, sums[lo:hi], counts[lo:hi],
            status[lo:hi]), n)
    else:
        parallel_blocks(lambda lo, hi: _sums_block(
            buf, rs, N, lo, hi, offs, S, t, n_follow, static_tol, sums[lo:hi], counts[lo:hi],
            status[lo:hi]), n)
    return sums, counts, status


def _flat_rows(chunk):
    """``(buf, rs)``: a read-only 1-D view of ``chunk``'s memory in which row ``s`` starts
    at ``s * rs``, so that every input reaches the kernels with one array type per dtype
    (another type would compile the kernels again)."""
    n, N = chunk.shape
    if n <= 1:
        chunk = np.ascontiguousarray(chunk)
        rs = N
    else:
        rs = chunk.strides[0] // chunk.itemsize
    buf = np.lib.stride_tricks.as_strided(chunk, shape=((n - 1) * rs + N,),
                                          strides=(chunk.itemsize,), writeable=False)
    return buf, rs


def _delay_offsets(m, d):
    """Offsets ``k * d`` of the delay coordinates. A tuple for the paper's ``m = 2``, so
    that the compiled loops over coordinates unroll; an array otherwise, so that other
    dimensions share one compiled version."""
    offs = tuple(k * d for k in range(m))
    return offs if m == 2 else np.array(offs, dtype=np.int64)


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
            budget = _CUDA_CHUNK_BYTES if is_tensor and windows.device.type == "cuda" \
                else _TORCH_CHUNK_BYTES
            chunk_size = max(1, budget // (8 * 4 * N * N))
    else:
        chunk_size = _check_int("chunk_size", chunk_size, 1)
    return windows, is_tensor, backend, chunk_size


def _numba_chunk(windows, start, stop, is_tensor):
    """Rows ``start:stop`` for the numba kernels: float32 and float64 rows are read in
    place where their layout allows (and upcast to float64 value by value), other dtypes
    are converted."""
    chunk = windows[start:stop]
    if is_tensor:
        torch = _torch_if_loaded()
        chunk = chunk.detach()
        if chunk.dtype not in (torch.float32, torch.float64):
            chunk = chunk.to(dtype=torch.float64)
        chunk = chunk.numpy()
    if chunk.dtype not in (np.float32, np.float64):
        return np.ascontiguousarray(chunk, dtype=np.float64)
    if chunk.strides[1] != chunk.itemsize or chunk.strides[0] < 0 or (
            chunk.strides[0] % chunk.itemsize):
        # Rows must be contiguous and evenly spaced (a transposed trace, for example,
        # is not): copy them, in their own precision.
        return np.ascontiguousarray(chunk)
    return chunk


def _torch_chunk(windows, start, stop, is_tensor):
    import torch

    chunk = windows[start:stop]
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
        if backend == "numba":
            chunk = _numba_chunk(windows, start, stop, is_tensor)
            bad = np.zeros(stop - start, dtype=np.bool_)
            numba_kernel(chunk, out[start:stop], bad)
            nonfinite = bool(bad.any())
        else:
            chunk = _torch_chunk(windows, start, stop, is_tensor)
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
    """Mean log-distance curve of each window (docs/method.md, section 3, steps 2 to 6).

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
        Series processed at once. The default bounds the extra memory to about 64 MiB
        (numba: float32 and float64 windows are read in place, other dtypes are
        converted chunk by chunk), 256 MiB (torch on the CPU) or 768 MiB (torch on a
        CUDA device); results do not depend on it.
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
        sums, counts, status = _divergence_sums(chunk, m, d, S, t, S + 1, 0.0)
        out[:] = np.nan
        np.divide(sums, counts, out=out, where=counts > 0)
        out /= 2.0
        out[status != 0] = np.nan
        bad[:] = status == 2

    def torch_kernel(chunk):
        curve, span = _curves_torch(chunk, m, d, S, t, S + 1)
        curve[span == 0] = math.nan
        return curve

    return _run(windows, params, chunk_size, backend, S + 1, numba_kernel, torch_kernel)


def max_lyapunov(windows, *, embedding_dim=2, delay=1, steps=3, theiler=0,
                 static_tol=1e-5, chunk_size=None, backend=None):
    """Largest Lyapunov exponent of each window, as the LEGCNet paper computed it.

    The exponent is ``y_1 - y_0`` of :func:`divergence_curve` (docs/method.md, section 3, step 7):
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
        Series processed at once. The default bounds the extra memory to about 64 MiB
        (numba: float32 and float64 windows are read in place, other dtypes are
        converted chunk by chunk), 256 MiB (torch on the CPU) or 768 MiB (torch on a
        CUDA device); results do not depend on it.
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
        # Only y_0 and y_1 enter the exponent, so only two steps are followed.
        sums, counts, status = _divergence_sums(chunk, m, d, S, t, 2, static_tol)
        ok = (status == 0) & (counts[:, 0] > 0) & (counts[:, 1] > 0)
        out[:] = 0.0
        out[ok] = (sums[ok, 1] / counts[ok, 1] / 2.0) - (sums[ok, 0] / counts[ok, 0] / 2.0)
        bad[:] = status == 2

    def torch_kernel(chunk):
        curve, span = _curves_torch(chunk, m, d, S, t, 2)
        le = curve[:, 1] - curve[:, 0]
        le[(span < static_tol) | (span == 0) | le.isnan()] = 0.0
        return le

    return _run(windows, params, chunk_size, backend, None, numba_kernel, torch_kernel)
