"""Granger causality tests of one effect series against many cause series at once.

The LEGCNet paper tests, for every weight, whether its series of windowed Lyapunov
exponents (the cause ``x``) Granger-causes the network's misclassification series (the
effect ``y``), with statsmodels' ``grangercausalitytests`` and a maximum lag of 14, and
keeps the smallest p-value over the lags. :func:`granger_tests` gives the same statistics
and p-values for all weights in one call. For a lag ``p`` and rows ``t = p .. K-1``
(``nobs = K - p``):

- restricted OLS    ``y_t ~ 1 + y_{t-1} + ... + y_{t-p}``  (residual sum of squares SSR_r),
- unrestricted OLS  ``y_t ~ 1 + y_{t-1..t-p} + x_{t-1..t-p}``  (SSR_u),
- ``ssr_chi2test``: ``nobs * (SSR_r - SSR_u) / SSR_u``, chi-square with ``p`` degrees of
  freedom;
- ``ssr_ftest``: ``((SSR_r - SSR_u) / p) / (SSR_u / (nobs - 2p - 1))``, F with
  ``(p, nobs - 2p - 1)`` degrees of freedom.

How it is batched. The restricted regression does not depend on the cause, so it is
solved once per lag: an orthonormal basis ``Q`` of the restricted design and the
restricted residual ``e`` of the effect. By Frisch-Waugh-Lovell, ``SSR_r - SSR_u`` is the
explained sum of squares of ``e`` regressed on the cause's lag block ``X`` residualised on
``Q``, that is ``b' S^-1 b`` with ``S = X'X - (Q'X)'(Q'X)`` and ``b = X'e``. ``Q'X`` and
``X'e`` are linear in the cause, so one matrix product per chunk of causes gives them for
every lag; ``X'X`` comes from the cause's lagged products; what is left is a Cholesky
factorisation of a ``p x p`` matrix per cause and lag, compiled with numba. Where that
route would lose accuracy (a lag column of the cause almost explained by the columns
before it, or an almost perfect fit, where ``SSR_r - (SSR_r - SSR_u)`` cancels), the pair
is recomputed by a Householder QR of the explicitly residualised block.

Cost: 41,000 causes of length 106 with maxlag 14 take about a second on two cores
(statsmodels: 16.6 ms per cause, 11 minutes), with about 100 MiB of extra memory. Pairs
on the QR route cost about ten times more; only causes whose lags are almost collinear
(relative R^2 above 0.999 among their own lags and the effect's) take it.
"""

import math
import numbers
import operator
import warnings
from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from scipy import special

from ._openmp import keep_torch_threads

__all__ = ["GrangerResult", "granger_tests", "max_feasible_lag"]

TESTS = ("ssr_chi2test", "ssr_ftest")

# About 12 KiB of work space per cause for maxlag 14 and K = 106: a chunk of 8192 causes
# takes about 100 MiB. Fewer, larger chunks mean fewer thread-pool wake-ups, which cost
# milliseconds each on a busy machine.
_DEFAULT_CHUNK = 8192

# A regressor is collinear with the columns before it (the design is rank deficient) when
# the part of it orthogonal to them is below this fraction of its norm. Householder QR
# resolves that fraction to about 1e-14 here, so the margin absorbs rounding, while causes
# that differ from a collinear one by a relative 1e-9 are still tested, with about 1e-6
# relative accuracy.
_RANK_RTOL = 1e-9

# The fast (Gram) route loses about eps / ratio in relative accuracy: below these ratios a
# pair goes to the QR route instead. Pivot: squared orthogonal part of a lag column over
# its squared norm. Fit: SSR_u over SSR_r.
_PIVOT_RTOL = 1e-3
_FIT_RTOL = 1e-2

# Status of one (cause, lag) pair in the kernel: fast route, QR route, not testable.
_OK, _REFINE, _UNTESTABLE = 0, 1, 2


@dataclass(frozen=True, eq=False)
class GrangerResult:
    """Granger causality tests of one effect against ``n`` causes, lags ``1..maxlag``.

    Attributes
    ----------
    pvalue : ndarray of shape (n,)
        Smallest p-value over the lags that could be tested; NaN when no lag could.
        This is the p-value the LEGCNet paper prunes on (non-causal when ``>= significance``).
    pvalues : ndarray of shape (n, maxlag)
        ``pvalues[i, p - 1]`` is the p-value of cause ``i`` at lag ``p``; NaN where the
        test cannot be computed.
    statistic : ndarray of shape (n, maxlag)
        The test statistic (chi-square or F), NaN where ``pvalues`` is.
    df : ndarray of int
        Degrees of freedom per lag, as statsmodels reports them: shape ``(maxlag,)`` with
        ``p`` for ``"ssr_chi2test"``; shape ``(maxlag, 2)`` with
        ``(df_denom, df_num) = (K - 3p - 1, p)`` for ``"ssr_ftest"``, statsmodels' order.
    untestable : ndarray of bool, shape (n,)
        True where the test is infeasible at one lag or more (see :func:`granger_tests`):
        exactly the causes for which the authors' pipeline got no p-value. ``pvalue`` is
        still the minimum over the other lags; it is NaN only when every lag failed.
    test : str
        ``"ssr_chi2test"`` or ``"ssr_ftest"``.
    maxlag : int
        The largest lag tested.
    """

    pvalue: np.ndarray
    pvalues: np.ndarray
    statistic: np.ndarray
    df: np.ndarray
    untestable: np.ndarray
    test: str
    maxlag: int


def max_feasible_lag(n_obs):
    """Largest maximum lag that ``grangercausalitytests`` accepts for ``n_obs`` observations.

    statsmodels refuses a maximum lag ``P`` (with its constant term) when
    ``n_obs <= 3 * P + 1``, so the largest feasible lag is ``(n_obs - 2) // 3``.

    Parameters
    ----------
    n_obs : int
        Length ``K`` of the series.

    Returns
    -------
    int
        The largest feasible lag, 0 when ``n_obs < 5`` and no lag is feasible.

    Examples
    --------
    >>> from sklegc.granger import max_feasible_lag
    >>> max_feasible_lag(106)
    34
    >>> max_feasible_lag(44)
    14
    """
    n_obs = _as_int(n_obs, "n_obs")
    if n_obs < 0:
        raise ValueError(f"n_obs must be a non-negative integer, got {n_obs}.")
    return max((n_obs - 2) // 3, 0)


def granger_tests(effect, causes, *, maxlag=14, test="ssr_chi2test", chunk_size=None):
    """Test whether each cause Granger-causes the effect, as statsmodels does, in batch.

    For every cause ``x`` (a column of ``causes``) and lag ``p = 1..maxlag`` this computes
    the test that ``statsmodels.tsa.stattools.grangercausalitytests`` reports for
    ``np.column_stack([effect, x])``: the effect is the first column, the rows are
    ``t = p .. K-1``, both regressions have a constant. The null hypothesis is that the
    lags of ``x`` do not help to predict ``effect``.

    Parameters
    ----------
    effect : array-like of shape (K,)
        The effect series (in LEGCNet, the misclassification rate per window).
    causes : array-like of shape (K, n) or (K,)
        One cause series per column (in LEGCNet, each weight's Lyapunov exponent per
        window); a 1-D array is one cause.
    maxlag : int, default=14
        Test the lags ``1..maxlag``. Needs ``K >= 3 * maxlag + 2``, see
        :func:`max_feasible_lag`.
    test : {"ssr_chi2test", "ssr_ftest"}, default="ssr_chi2test"
        The statistic, with statsmodels' meaning. The paper uses ``"ssr_chi2test"``.
    chunk_size : int, optional
        Causes processed together. The default (8192) keeps the extra memory near
        100 MiB for ``maxlag=14`` and ``K=106``; results do not depend on it.

    Returns
    -------
    GrangerResult
        ``pvalue`` (minimum over lags), ``pvalues``, ``statistic``, ``df``,
        ``untestable``, ``test`` and ``maxlag``.

    Raises
    ------
    ValueError
        If ``maxlag`` is below 1 or too large for ``K``, ``test`` is unknown, the shapes
        do not match, or an input holds NaN or inf.
    TypeError
        If ``maxlag`` or ``chunk_size`` is not an integer.

    Warns
    -----
    RuntimeWarning
        When the effect alone makes the test infeasible at every lag (for instance a
        constant effect): every cause is then untestable.

    Notes
    -----
    A test is *untestable* (NaN statistic and p-value at that lag, and ``untestable``
    set for the cause) where statsmodels raises ``InfeasibleTestError`` or where its
    answer would carry no information:

    - a lag column of the effect or of the cause is exactly constant over the rows used
      (statsmodels' own check; note that ``x[K-1]`` is never a regressor, so a cause
      constant except for its last value is constant at every lag);
    - the effect is constant over the rows used, or the fit is perfect
      (``SSR_u / TSS < eps``), statsmodels' "perfect fit" check;
    - the unrestricted design is rank deficient: a lag column, of the effect or of the
      cause, has less than a relative ``1e-9`` of its norm outside the span of the
      columns before it, for instance a cause that is an exact linear function of the
      effect's lags. statsmodels then returns numbers from a pseudo-inverse that do not
      test anything (often a statistic of 0 and a p-value of 1).

    The rule is per lag: a failure at one lag leaves the others tested. ``pvalue`` is the
    minimum over the tested lags, so pruning on ``pvalue >= significance`` never prunes a cause
    that could not be tested at all (NaN compares false). The authors' pipeline, which
    called statsmodels with all lags at once, got no p-value as soon as one lag failed
    and kept the weight; ``(pvalue >= significance) & ~untestable`` reproduces that rule.

    The statistic is computed as ``(SSR_r - SSR_u)`` accumulated directly (never as a
    difference of two nearly equal sums), so it is never negative; statsmodels can report
    ``-1e-16`` where ours is ``0``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklegc.granger import granger_tests
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(60, 2))
    >>> y = np.r_[0.0, x[:-1, 0]] + 0.1 * rng.normal(size=60)  # column 0 drives y
    >>> res = granger_tests(y, x, maxlag=3)
    >>> res.pvalues.shape
    (2, 3)
    >>> bool(res.pvalue[0] < 1e-6), bool(res.pvalue[1] > 0.05)
    (True, True)
    """
    maxlag = _as_int(maxlag, "maxlag")
    if maxlag < 1:
        raise ValueError(f"maxlag must be an integer >= 1, got {maxlag}.")
    if not isinstance(test, str) or test not in TESTS:
        raise ValueError(f"test must be one of {', '.join(map(repr, TESTS))}; got {test!r}.")
    if chunk_size is None:
        chunk_size = _DEFAULT_CHUNK
    else:
        chunk_size = _as_int(chunk_size, "chunk_size")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be an integer >= 1 or None, got {chunk_size}.")

    y = _as_float_array(effect, "effect")
    if y.ndim != 1:
        raise ValueError(f"effect must be 1-D, of shape (K,); got shape {y.shape}.")
    K = y.shape[0]
    x = _as_float_array(causes, "causes")
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != K:
        hint = " (pass causes.T: one cause per column)" if x.ndim == 2 and x.shape[1] == K else ""
        raise ValueError(f"causes must have shape (K, n) or (K,) with K = len(effect) = {K}; "
                         f"got shape {x.shape}{hint}.")
    if K <= 3 * maxlag + 1:
        largest = max_feasible_lag(K)
        fix = (f"the largest feasible lag for K={K} is {largest}: pass maxlag <= {largest} "
               "or a longer series" if largest >= 1
               else "no lag is feasible with fewer than 5 observations")
        raise ValueError(f"maxlag={maxlag} needs at least {3 * maxlag + 2} observations "
                         f"(K > 3 * maxlag + 1), but effect has K={K}; {fix}.")

    restricted = _restricted_fits(y, maxlag)
    if not restricted.lag_ok.any():
        warnings.warn("The effect series makes the Granger test infeasible at every lag "
                      "(constant, or fitted exactly by its own lags, over the rows used): "
                      "every cause is untestable.", RuntimeWarning, stacklevel=2)

    n = x.shape[1]
    ess = np.full((n, maxlag), np.nan)
    ssr_u = np.full((n, maxlag), np.nan)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        chunk = np.ascontiguousarray(x[:, start:stop].T)
        _unrestricted_fits(chunk, restricted, ess[start:stop], ssr_u[start:stop])

    lags = np.arange(1, maxlag + 1)
    nobs = K - lags
    df_denom = nobs - 2 * lags - 1
    tss = restricted.tss
    # statsmodels' "perfect fit" check, applied per pair.
    perfect = ~(ssr_u >= np.finfo(float).eps * tss)
    ess[perfect] = np.nan
    ssr_u[perfect] = np.nan
    # chdtrc and fdtrc are what scipy.stats.chi2.sf and f.sf (so statsmodels) evaluate.
    if test == "ssr_chi2test":
        statistic = nobs * ess / ssr_u
        pvalues = special.chdtrc(lags, statistic)
        df = lags
    else:
        statistic = ess / ssr_u / lags * df_denom
        pvalues = special.fdtrc(lags, df_denom, statistic)
        df = np.column_stack([df_denom, lags])
    pvalue = np.fmin.reduce(pvalues, axis=1, initial=np.nan)
    untestable = np.isnan(pvalues).any(axis=1)
    for array in (pvalue, pvalues, statistic, df, untestable):
        array.flags.writeable = False
    return GrangerResult(pvalue=pvalue, pvalues=pvalues, statistic=statistic, df=df,
                         untestable=untestable, test=test, maxlag=maxlag)


def _as_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} of type "
                        f"{type(value).__name__}.")
    return operator.index(value)


def _as_float_array(value, name):
    array = np.asarray(value)
    if array.dtype.kind == "c":
        raise ValueError(f"{name} must hold real numbers, got complex values.")
    try:
        array = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}.") from exc
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf values; remove or impute them first.")
    return array


@dataclass(frozen=True)
class _Restricted:
    weights: np.ndarray    # (K, n_cols): x @ weights gives Q'X and X'e for every lag
    offsets: np.ndarray    # (maxlag,): first column of lag p in weights
    bases: tuple           # per lag, the orthonormal basis Q of the restricted design
    resid: tuple           # per lag, the restricted residual e of the effect
    ssr_r: np.ndarray      # (maxlag,)
    tss: np.ndarray        # (maxlag,): centred total sum of squares of y_t
    lag_ok: np.ndarray     # (maxlag,): the effect allows the test at this lag


def _restricted_fits(effect, maxlag):
    K = effect.shape[0]
    y = np.empty(K)
    _standardise(effect[None, :], y[None, :])
    constant_y = np.zeros(maxlag, dtype=np.int8)
    _mark_constant_lags(effect, constant_y, 1)
    widths = [(p + 2) * p for p in range(1, maxlag + 1)]
    offsets = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)
    weights = np.zeros((K, sum(widths)))
    bases, resid = [], []
    ssr_r = np.zeros(maxlag)
    tss = np.zeros(maxlag)
    lag_ok = np.zeros(maxlag, dtype=bool)
    for p in range(1, maxlag + 1):
        nobs = K - p
        target = y[p:]
        design = np.empty((nobs, p + 1))
        design[:, 0] = 1.0
        for j in range(1, p + 1):
            design[:, j] = y[p - j:K - j]
        Q, R = np.linalg.qr(np.column_stack([design, target]))
        basis = Q[:, :-1]
        e = target - basis @ (basis.T @ target)
        bases.append(basis)
        resid.append(e)
        ssr_r[p - 1] = R[-1, -1] ** 2
        tss[p - 1] = np.sum((target - target.mean()) ** 2)
        full_rank = np.all(np.abs(np.diag(R)[:-1])
                           >= _RANK_RTOL * np.linalg.norm(design, axis=0))
        lag_ok[p - 1] = (not constant_y[p - 1] and tss[p - 1] > 0 and full_rank
                         and ssr_r[p - 1] >= np.finfo(float).eps * tss[p - 1])
        # Column (k, j) holds Q[:, k] at rows r + p - j: x @ it is sum_r Q[r, k] x_{t-j}.
        off = offsets[p - 1]
        for j in range(1, p + 1):
            rows = slice(p - j, K - j)
            weights[rows, off + j - 1:off + (p + 1) * p:p] = basis
            weights[rows, off + (p + 1) * p + j - 1] = e
    return _Restricted(weights, offsets, tuple(bases), tuple(resid), ssr_r, tss, lag_ok)


def _unrestricted_fits(causes, restricted, ess, ssr_u):
    """Fill ``ess`` (SSR_r - SSR_u) and ``ssr_u``, (m, maxlag), for causes of shape (m, K).

    Untestable pairs stay NaN.
    """
    maxlag = ess.shape[1]
    x = np.empty(causes.shape)
    _standardise(causes, x)
    proj = x @ restricted.weights
    status = np.zeros(ess.shape, dtype=np.int8)
    status[:, ~restricted.lag_ok] = _UNTESTABLE
    with keep_torch_threads():
        _gram_fits(causes, x, proj, restricted.offsets, restricted.ssr_r, _PIVOT_RTOL,
                   _FIT_RTOL, status, ess, ssr_u)
    for p in range(1, maxlag + 1):
        refine = np.flatnonzero(status[:, p - 1] == _REFINE)
        if refine.size:
            ess[refine, p - 1], ssr_u[refine, p - 1] = _qr_fits(
                x[refine], p, restricted.bases[p - 1], restricted.resid[p - 1])


def _qr_fits(x, p, basis, resid):
    """Accurate route for one lag: QR of the residualised lag block beside the residual."""
    m, K = x.shape
    nobs = K - p
    stacked = np.empty((m, nobs, p + 1))
    block = stacked[:, :, :p]
    block[...] = np.lib.stride_tricks.sliding_window_view(x, p, axis=1)[:, :nobs, ::-1]
    norms = np.sqrt(np.einsum("mrj,mrj->mj", block, block))
    block -= basis @ (basis.T @ block)
    stacked[:, :, p] = resid
    R = np.linalg.qr(stacked, mode="r")
    pivots = np.abs(np.diagonal(R, axis1=1, axis2=2)[:, :p])
    ess = np.sum(R[:, :p, p] ** 2, axis=1)
    ssr_u = R[:, p, p] ** 2
    deficient = (pivots < _RANK_RTOL * norms).any(axis=1)
    ess[deficient] = np.nan
    ssr_u[deficient] = np.nan
    return ess, ssr_u


@njit(cache=True, nogil=True)
def _standardise(series, out):
    """Write each row of ``series`` centred and rescaled to at most 1 in size into ``out``.

    The tests are invariant to shifting and scaling either series (the constant absorbs
    shifts, the statistics are ratios); on centred unit-size data the sums of
    ``_gram_fits`` are as accurate as the tolerances above assume, whatever the series'
    offset and units. Dividing by the largest value first keeps the mean from overflowing.
    Equal values stay equal, so constant stretches stay exactly constant.
    """
    m, K = series.shape
    for c in range(m):
        scale = 0.0
        for a in range(K):
            scale = max(scale, abs(series[c, a]))
        if scale == 0.0:
            scale = 1.0
        mean = 0.0
        for a in range(K):
            mean += series[c, a] / scale
        mean /= K
        spread = 0.0
        for a in range(K):
            v = series[c, a] / scale - mean
            out[c, a] = v
            spread = max(spread, abs(v))
        if spread > 0.0:
            for a in range(K):
                out[c, a] /= spread


@njit(cache=True, nogil=True)
def _mark_constant_lags(series, status, code):
    """Set ``status[l] = code`` where a lag column ``series[p-j : K-j]``, ``j <= p = l+1``,
    is constant: exact equality, statsmodels' check, on the data as given."""
    K = series.shape[0]
    changes = np.zeros(K, dtype=np.int64)
    for a in range(1, K):
        changes[a] = changes[a - 1] + (series[a] != series[a - 1])
    for li in range(status.shape[0]):
        p = li + 1
        for j in range(1, p + 1):
            # No change between positions p-j and K-1-j.
            if changes[K - 1 - j] == changes[p - j]:
                status[li] = code
                break


@njit(parallel=True, cache=True)
def _gram_fits(raw, x, proj, offsets, ssr_r, pivot_rtol, fit_rtol, status, ess, ssr_u):
    """Fast route: Cholesky of ``S = X'X - (Q'X)'(Q'X)`` per cause and lag.

    ``proj[c]`` holds ``Q'X`` then ``X'e`` for every lag (see ``_restricted_fits``).
    Pairs with a constant lag column of ``raw`` get status ``_UNTESTABLE``; pairs this route
    cannot resolve accurately get ``_REFINE``; pairs with another status are skipped.
    """
    m, K = x.shape
    maxlag = ssr_r.shape[0]
    for c in prange(m):
        _mark_constant_lags(raw[c], status[c], _UNTESTABLE)
        xc = x[c]
        pc = proj[c]
        # Lagged product sums: sum_{a=lo}^{hi} x_a x_{a+d} = full - head - tail, where
        # the corrections are short sums, more accurate than differences of a cumsum.
        full = np.zeros(maxlag)
        head = np.zeros((maxlag, maxlag + 1))
        tail = np.zeros((maxlag, maxlag + 1))
        for d in range(maxlag):
            s = 0.0
            for a in range(K - d):
                s += xc[a] * xc[a + d]
            full[d] = s
            for k in range(maxlag):
                head[d, k + 1] = head[d, k] + xc[k] * xc[k + d]
                a = K - d - 1 - k
                tail[d, k + 1] = tail[d, k] + xc[a] * xc[a + d]
        S = np.empty((maxlag, maxlag))
        b = np.empty(maxlag)
        norm2 = np.empty(maxlag)
        for li in range(maxlag):
            if status[c, li] != _OK:
                continue
            p = li + 1
            off = offsets[li]
            for i in range(p):
                # Columns i <= j hold lags i+1 <= j+1 of x over rows t = p..K-1.
                for j in range(i, p):
                    d = j - i
                    S[i, j] = full[d] - head[d, p - 1 - j] - tail[d, i + 1]
                norm2[i] = S[i, i]
                b[i] = pc[off + (p + 1) * p + i]
            for k in range(p + 1):
                row = pc[off + k * p:off + (k + 1) * p]
                for i in range(p):
                    a = row[i]
                    for j in range(i, p):
                        S[i, j] -= a * row[j]
            explained = 0.0
            refine = False
            for k in range(p):
                pivot = S[k, k]
                if not pivot > pivot_rtol * norm2[k]:
                    refine = True
                    break
                r = math.sqrt(pivot)
                z = b[k] / r
                explained += z * z
                for j in range(k + 1, p):
                    S[k, j] /= r
                    b[j] -= S[k, j] * z
                for i in range(k + 1, p):
                    a = S[k, i]
                    for j in range(i, p):
                        S[i, j] -= a * S[k, j]
            remaining = ssr_r[li] - explained
            if refine or not remaining > fit_rtol * ssr_r[li]:
                status[c, li] = _REFINE
                continue
            ess[c, li] = explained
            ssr_u[c, li] = remaining
