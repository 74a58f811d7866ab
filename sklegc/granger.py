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
from dataclasses import InitVar, dataclass
from functools import lru_cache

import numpy as np
from scipy import special

from ._jit import kernel, wait_for_compile
from .threads import parallel_blocks

__all__ = ["GrangerResult", "granger_tests", "max_feasible_lag"]

TESTS = ("ssr_chi2test", "ssr_ftest")
STATIONARITY = (None, "difference", "adf")
LAG_SELECTIONS = ("min_p", "fixed", "aic", "bic", "bonferroni", "simes")

# About 12 KiB of work space per cause for maxlag 14 and K = 106: a chunk of 8192 causes
# takes about 100 MiB. Fewer, larger chunks mean fewer thread-pool wake-ups, which cost
# milliseconds each on a busy machine.
_DEFAULT_CHUNK = 8192

# The ADF and VAR steps factor one (rows x columns) design per series, about 25 KiB for
# K = 106 and maxlag 14: at most this many series at a time keeps that near 25 MiB.
# numpy factors a stack one matrix at a time, so smaller stacks cost nothing in speed.
_QR_CHUNK = 1024

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

# Below this ratio of residual to total sum of squares (ADF) or of the residual
# covariance's determinant to the product of its diagonal (VAR), the log-likelihoods the
# criteria compare carry rounding of about 1e-6 and a near tie could go either way: such
# series are handed to statsmodels itself, as are rank-deficient designs.
_DEGENERATE_RTOL = 1e-10

# The ADF test's level: a series whose unit root adfuller does not reject at 5% is
# differenced (the common reading of its p-value, and the level the Granger test uses).
_ADF_LEVEL = 0.05

# Status of one (cause, lag) pair in the kernel: fast route, QR route, not testable.
_OK, _REFINE, _UNTESTABLE = 0, 1, 2


@dataclass(frozen=True, eq=False)
class GrangerResult:
    """Granger causality tests of one effect against ``n`` causes, lags ``1..maxlag``.

    Attributes
    ----------
    pvalue : ndarray of shape (n,)
        The p-value the pruning decision reads (non-causal when ``>= significance``), as
        ``lag_selection`` defines it: by default (``"min_p"``, the LEGCNet paper's rule)
        the smallest p-value over the lags that could be tested. NaN when it cannot be
        computed (no lag could be tested, or the chosen lag could not).
    pvalues : ndarray of shape (n, maxlag)
        ``pvalues[i, p - 1]`` is the p-value of cause ``i`` at lag ``p``; NaN where the
        test cannot be computed.
    statistic : ndarray of shape (n, maxlag)
        The test statistic (chi-square or F), NaN where ``pvalues`` is.
    df : ndarray of int
        Degrees of freedom per lag, as statsmodels reports them: shape ``(maxlag,)`` with
        ``p`` for ``"ssr_chi2test"``; shape ``(maxlag, 2)`` with
        ``(df_denom, df_num) = (N - 3p - 1, p)`` for ``"ssr_ftest"``, statsmodels' order,
        where ``N`` is the length of the series tested (``n_obs``). With
        ``stationarity="adf"`` the length can differ between causes, and ``df`` has a
        leading axis of causes: shape ``(n, maxlag)`` or ``(n, maxlag, 2)``.
    untestable : ndarray of bool, shape (n,)
        True where the test is infeasible at one lag or more (see :func:`granger_tests`):
        exactly the causes for which the authors' pipeline got no p-value. ``pvalue`` is
        still computed from the other lags where ``lag_selection`` allows it.
    test : str
        ``"ssr_chi2test"`` or ``"ssr_ftest"``.
    maxlag : int
        The largest lag tested.
    lag : ndarray of float, shape (n,)
        The lag whose test ``pvalue`` is: the lag of the smallest p-value (``"min_p"``),
        ``maxlag`` (``"fixed"``), the lag chosen by the criterion (``"aic"``, ``"bic"``);
        NaN for a combination over lags (``"bonferroni"``, ``"simes"``) and where
        ``pvalue`` is NaN.
    n_obs : ndarray of int, shape (n,)
        Length of the pair of series tested: ``K``, or ``K - 1`` where a series was
        differenced.
    differenced : ndarray of bool, shape (n,)
        True where the cause was differenced before testing.
    differenced_effect : bool
        Whether the effect was differenced before testing.
    stationarity : {None, "difference", "adf"}
        The option used.
    lag_selection : str
        The option used, one of ``"min_p"``, ``"fixed"``, ``"aic"``, ``"bic"``,
        ``"bonferroni"``, ``"simes"``.

    Notes
    -----
    The attributes from ``lag`` on are init-only arguments, stored as read-only
    attributes (None where a caller constructs a result without them), so that the
    dataclass fields stay those of the paper's rule; :func:`dataclasses.replace` resets
    them.
    """

    pvalue: np.ndarray
    pvalues: np.ndarray
    statistic: np.ndarray
    df: np.ndarray
    untestable: np.ndarray
    test: str
    maxlag: int
    lag: InitVar[np.ndarray] = None
    n_obs: InitVar[np.ndarray] = None
    differenced: InitVar[np.ndarray] = None
    differenced_effect: InitVar[bool] = None
    stationarity: InitVar[str] = None
    lag_selection: InitVar[str] = None

    def __post_init__(self, lag, n_obs, differenced, differenced_effect, stationarity,
                      lag_selection):
        # object.__setattr__ is how a frozen dataclass sets attributes in __post_init__.
        for name, value in (("lag", lag), ("n_obs", n_obs), ("differenced", differenced),
                            ("differenced_effect", differenced_effect),
                            ("stationarity", stationarity), ("lag_selection", lag_selection)):
            object.__setattr__(self, name, value)


def max_feasible_lag(n_obs, *, stationarity=None, lag_selection="min_p"):
    """Largest maximum lag that :func:`granger_tests` accepts for ``n_obs`` observations.

    statsmodels refuses a maximum lag ``P`` (with its constant term) when
    ``n_obs <= 3 * P + 1``, so the largest feasible lag is ``(n_obs - 2) // 3``. With
    ``stationarity`` set, the series tested may be one shorter (differenced); with
    ``lag_selection`` ``"aic"`` or ``"bic"``, statsmodels' ``VAR.select_order`` needs
    ``n_obs >= 3 * P + 3``, one more.

    Parameters
    ----------
    n_obs : int
        Length ``K`` of the series.
    stationarity : {None, "difference", "adf"}, default=None
        As in :func:`granger_tests`.
    lag_selection : str, default="min_p"
        As in :func:`granger_tests`.

    Returns
    -------
    int
        The largest feasible lag, 0 when no lag is feasible.

    Raises
    ------
    ValueError
        If ``n_obs`` is negative or an option is unknown.
    TypeError
        If ``n_obs`` is not an integer.

    Examples
    --------
    >>> from sklegc.granger import max_feasible_lag
    >>> max_feasible_lag(106)
    34
    >>> max_feasible_lag(44)
    14
    >>> max_feasible_lag(44, stationarity="difference", lag_selection="bic")
    13
    """
    n_obs = _as_int(n_obs, "n_obs")
    if n_obs < 0:
        raise ValueError(f"n_obs must be a non-negative integer, got {n_obs}.")
    _check_options(stationarity, lag_selection)
    tested = n_obs - (stationarity is not None)
    spare = 3 if lag_selection in ("aic", "bic") else 2
    return max((tested - spare) // 3, 0)


def granger_tests(effect, causes, *, maxlag=14, test="ssr_chi2test", stationarity=None,
                  lag_selection="min_p", chunk_size=None):
    """Test whether each cause Granger-causes the effect, as statsmodels does, in batch.

    For every cause ``x`` (a column of ``causes``) and lag ``p = 1..maxlag`` this computes
    the test that ``statsmodels.tsa.stattools.grangercausalitytests`` reports for
    ``np.column_stack([effect, x])``: the effect is the first column, the rows are
    ``t = p .. K-1``, both regressions have a constant. The null hypothesis is that the
    lags of ``x`` do not help to predict ``effect``. The defaults are the LEGCNet paper's
    rule; ``stationarity`` and ``lag_selection`` make the p-value a calibrated test (see
    ``docs/reproduction.md``, "Calibration of the causality test").

    Parameters
    ----------
    effect : array-like of shape (K,)
        The effect series (in LEGCNet, the misclassification rate per window).
    causes : array-like of shape (K, n) or (K,)
        One cause series per column (in LEGCNet, each weight's Lyapunov exponent per
        window); a 1-D array is one cause.
    maxlag : int, default=14
        Test the lags ``1..maxlag``. Needs ``N >= 3 * maxlag + 2`` for the length ``N``
        of the series tested: ``K``, or ``K - 1`` with ``stationarity`` set (for
        ``"adf"`` whatever the ADF tests decide, so that whether a call is valid does not
        depend on the data); ``"aic"`` and ``"bic"`` need one more. See
        :func:`max_feasible_lag`.
    test : {"ssr_chi2test", "ssr_ftest"}, default="ssr_chi2test"
        The statistic, with statsmodels' meaning. The paper uses ``"ssr_chi2test"``.
    stationarity : {None, "difference", "adf"}, default=None
        What is done to the series before testing. The Granger test's distributions
        assume stationary series; on integrated (trending, random-walk-like) series the
        test in levels rejects far too often (Granger and Newbold 1974; Toda and Phillips
        1993).

        - None: test the series as given (the paper).
        - ``"difference"``: test the first differences ``np.diff`` of the effect and of
          every cause (``K - 1`` values each).
        - ``"adf"``: difference a series only where the augmented Dickey-Fuller test does
          not reject a unit root at 5%: statsmodels' ``adfuller`` with its defaults
          (``regression="c"``, ``autolag="AIC"``, maximum lag
          ``ceil(12 (K / 100)^(1/4))``), p-value ``>= 0.05``. Decided once for the effect
          and separately for each cause; where only one series of a pair is differenced,
          the other loses its first value, so both have ``K - 1`` values. A constant
          series is never differenced (``adfuller`` refuses it; its test is untestable
          either way). The LEGCNet authors' code had this check, off by default
          (``shared/METHOD.md``).
    lag_selection : {"min_p", "fixed", "aic", "bic", "bonferroni", "simes"}, default="min_p"
        Which p-value ``pvalue`` is, from the tests at lags ``1..maxlag``:

        - ``"min_p"``: the smallest p-value over the lags (the paper). Not a test at the
          nominal level: taking the best of ``maxlag`` tests rejects more often.
        - ``"fixed"``: the test at lag ``maxlag`` only.
        - ``"aic"``, ``"bic"``: the test at the lag order that statsmodels'
          ``VAR(np.column_stack([effect, x])).select_order(maxlag)`` chooses with that
          criterion (Lütkepohl 2005, sec. 4.3: both equations, a constant, the same
          ``N - maxlag`` rows for every order), per cause; an order of 0 (no lags
          preferred) tests lag 1, the smallest test there is.
        - ``"bonferroni"``: ``min(1, m * min_p)`` over the ``m`` lags that could be
          tested (Dunn 1961): a valid p-value under any dependence between the lags'
          tests, conservative when they are correlated, as nested lags are.
        - ``"simes"``: Simes' (1986) combination ``min_k m p_(k) / k`` of the sorted
          p-values of the ``m`` lags tested: valid when the tests are positively
          dependent (Sarkar 1998), less conservative than Bonferroni.
    chunk_size : int, optional
        Causes processed together. The default (8192) keeps the extra memory near
        100 MiB for ``maxlag=14`` and ``K=106``. Results depend on it only through float
        rounding (matrix products over chunks of another size may round differently:
        p-values within about 1e-15).

    Returns
    -------
    GrangerResult
        ``pvalue`` (as ``lag_selection`` defines it), ``pvalues``, ``statistic``, ``df``,
        ``untestable``, ``test``, ``maxlag``, and what the options did: ``lag``,
        ``n_obs``, ``differenced``, ``differenced_effect``, ``stationarity``,
        ``lag_selection``.

    Raises
    ------
    ValueError
        If ``maxlag`` is below 1 or too large for the series tested (with
        ``stationarity`` set, ``K - 1`` values; with ``"aic"``/``"bic"``, one more is
        needed, see :func:`max_feasible_lag`), ``test``, ``stationarity`` or
        ``lag_selection`` is unknown, the shapes do not match, or an input holds NaN or
        inf.
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

    The rule is per lag: a failure at one lag leaves the others tested. With ``"min_p"``,
    ``pvalue`` is the minimum over the tested lags, so pruning on
    ``pvalue >= significance`` never prunes a cause that could not be tested at all (NaN
    compares false). The authors' pipeline, which called statsmodels with all lags at
    once, got no p-value as soon as one lag failed and kept the weight;
    ``(pvalue >= significance) & ~untestable`` reproduces that rule. ``"fixed"``,
    ``"aic"`` and ``"bic"`` give NaN where their lag is untestable, or (``"aic"``,
    ``"bic"``) where statsmodels cannot choose a lag (a singular residual covariance, for
    instance a constant cause).

    The statistic is computed as ``(SSR_r - SSR_u)`` accumulated directly (never as a
    difference of two nearly equal sums), so it is never negative; statsmodels can report
    ``-1e-16`` where ours is ``0``.

    The ADF tests and the VAR lag orders are batched too (a Householder QR per series);
    a series whose design is rank deficient or fitted almost exactly is handed to
    statsmodels' own ``adfuller`` or ``VAR.select_order``. For 41,000 causes of length
    106 they add seconds, where statsmodels takes 6.5 ms per ADF test and tens of ms per
    ``select_order``.

    References
    ----------
    Dickey, D. A. and Fuller, W. A. (1979). Distribution of the estimators for
    autoregressive time series with a unit root. JASA 74, 427-431.
    Dunn, O. J. (1961). Multiple comparisons among means. JASA 56, 52-64.
    Granger, C. W. J. and Newbold, P. (1974). Spurious regressions in econometrics.
    J. Econometrics 2, 111-120.
    Lütkepohl, H. (2005). New Introduction to Multiple Time Series Analysis. Springer.
    Sarkar, S. K. (1998). Some probability inequalities for ordered MTP2 random
    variables: a proof of the Simes conjecture. Ann. Statist. 26, 494-504.
    Simes, R. J. (1986). An improved Bonferroni procedure for multiple tests of
    significance. Biometrika 73, 751-754.
    Toda, H. Y. and Phillips, P. C. B. (1993). Vector autoregressions and causality.
    Econometrica 61, 1367-1393.

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

    A calibrated variant: differences where a unit root is not rejected, the F test at
    the lag order BIC chooses.

    >>> walks = np.cumsum(rng.normal(size=(60, 2)), axis=0)
    >>> res = granger_tests(walks[:, 0], walks[:, 1], maxlag=3, test="ssr_ftest",
    ...                     stationarity="adf", lag_selection="bic")
    >>> bool(res.differenced_effect), res.differenced.tolist(), res.n_obs.tolist()
    (True, [True], [59])
    >>> res.lag.tolist()
    [1.0]
    """
    wait_for_compile("granger")
    maxlag = _as_int(maxlag, "maxlag")
    if maxlag < 1:
        raise ValueError(f"maxlag must be an integer >= 1, got {maxlag}.")
    if not isinstance(test, str) or test not in TESTS:
        raise ValueError(f"test must be one of {', '.join(map(repr, TESTS))}; got {test!r}.")
    _check_options(stationarity, lag_selection)
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
    _check_length(K, maxlag, stationarity, lag_selection)

    n = x.shape[1]
    differenced_effect, differenced, groups = _stationary_pairs(y, x, stationarity)
    pvalues = np.full((n, maxlag), np.nan)
    statistic = np.full((n, maxlag), np.nan)
    n_obs = np.empty(n, dtype=np.int64)
    orders = np.full(n, np.nan)
    effect_testable = False
    for y_g, columns, x_g in groups:
        stat_g, p_g, effect_ok = _lag_tests(y_g, x_g, maxlag, test, chunk_size)
        statistic[columns] = stat_g
        pvalues[columns] = p_g
        n_obs[columns] = y_g.shape[0]
        effect_testable |= effect_ok
        if lag_selection in ("aic", "bic"):
            orders[columns] = _var_orders(y_g, x_g, maxlag, lag_selection)
    if not effect_testable:
        warnings.warn("The effect series makes the Granger test infeasible at every lag "
                      "(constant, or fitted exactly by its own lags, over the rows used): "
                      "every cause is untestable.", RuntimeWarning, stacklevel=2)

    lags = np.arange(1, maxlag + 1)
    if stationarity == "adf":
        df_denom = n_obs[:, None] - 3 * lags - 1
        df = (np.broadcast_to(lags, (n, maxlag)).copy() if test == "ssr_chi2test"
              else np.stack([df_denom, np.broadcast_to(lags, (n, maxlag))], axis=-1))
    else:
        df_denom = (K - (stationarity is not None)) - 3 * lags - 1
        df = lags if test == "ssr_chi2test" else np.column_stack([df_denom, lags])
    pvalue, lag = _select(pvalues, lag_selection, orders)
    untestable = np.isnan(pvalues).any(axis=1)
    for array in (pvalue, pvalues, statistic, df, untestable, lag, n_obs, differenced):
        array.flags.writeable = False
    return GrangerResult(pvalue=pvalue, pvalues=pvalues, statistic=statistic, df=df,
                         untestable=untestable, test=test, maxlag=maxlag, lag=lag,
                         n_obs=n_obs, differenced=differenced,
                         differenced_effect=differenced_effect, stationarity=stationarity,
                         lag_selection=lag_selection)


def _check_options(stationarity, lag_selection):
    if not (stationarity is None or (isinstance(stationarity, str)
                                     and stationarity in STATIONARITY)):
        raise ValueError("stationarity must be None (test the series as given), "
                         f"'difference' or 'adf'; got {stationarity!r}.")
    if not isinstance(lag_selection, str) or lag_selection not in LAG_SELECTIONS:
        raise ValueError(f"lag_selection must be one of {', '.join(map(repr, LAG_SELECTIONS))}"
                         f"; got {lag_selection!r}.")


def _check_length(K, maxlag, stationarity, lag_selection):
    largest = max_feasible_lag(K, stationarity=stationarity, lag_selection=lag_selection)
    if maxlag <= largest:
        return
    tested = K - (stationarity is not None)
    spare = 3 if lag_selection in ("aic", "bic") else 2
    needed = 3 * maxlag + spare + (stationarity is not None)
    why = []
    if stationarity is not None:
        why.append(f"stationarity={stationarity!r} tests series of K - 1 = {tested} values")
    if spare == 3:
        why.append(f"lag_selection={lag_selection!r} needs one more, as statsmodels' "
                   "VAR.select_order does")
    why = f" ({'; '.join(why)})" if why else ""
    options = " with these options" if why else ""
    fix = (f"the largest feasible lag for K={K}{options} is {largest}: pass "
           f"maxlag <= {largest} or a longer series" if largest >= 1
           else "no lag is feasible with so few observations")
    raise ValueError(f"maxlag={maxlag} needs at least {needed} observations "
                     f"(K > 3 * maxlag + 1 for the series tested{why}), but effect has "
                     f"K={K}; {fix}.")


def _difference(series, name):
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.diff(series, axis=0)
    if not np.isfinite(out).all():
        raise ValueError(f"the first differences of {name} overflow; rescale {name} (the "
                         "test does not depend on the scale).")
    return out


def _stationary_pairs(y, x, stationarity):
    """The series to test: ``(differenced_effect, differenced, groups)``.

    ``groups`` lists ``(effect, columns, causes)``: the causes ``columns`` are tested, as
    ``causes`` of shape (N, len(columns)), against ``effect`` of length N.
    """
    n = x.shape[1]
    everything = np.arange(n)
    if stationarity is None:
        return False, np.zeros(n, dtype=bool), [(y, everything, x)]
    if stationarity == "difference":
        return (True, np.ones(n, dtype=bool),
                [(_difference(y, "effect"), everything, _difference(x, "causes"))])
    differenced_effect = bool(_has_unit_root(y[None, :])[0])
    differenced = _has_unit_root(x.T)
    if differenced_effect:
        # Every pair has K - 1 values: a cause left in levels loses its first value.
        x_tested = x[1:].copy()
        x_tested[:, differenced] = _difference(x[:, differenced], "causes")
        return True, differenced, [(_difference(y, "effect"), everything, x_tested)]
    levels, diffs = np.flatnonzero(~differenced), np.flatnonzero(differenced)
    groups = [(y[1:], diffs, _difference(x[:, diffs], "causes"))] if diffs.size else []
    if levels.size or not groups:
        groups.insert(0, (y, levels, x[:, levels]))
    return False, differenced, groups


def _lag_tests(y, x, maxlag, test, chunk_size):
    """Statistics and p-values, (n, maxlag), of effect ``y`` (K,) against causes ``x`` (K, n).

    Also returns whether the effect allows the test at one lag at least.
    """
    K = y.shape[0]
    restricted = _restricted_fits(y, maxlag)
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
    else:
        statistic = ess / ssr_u / lags * df_denom
        pvalues = special.fdtrc(lags, df_denom, statistic)
    return statistic, pvalues, bool(restricted.lag_ok.any())


def _select(pvalues, lag_selection, orders):
    """``(pvalue, lag)`` per cause from the per-lag p-values, as ``lag_selection`` says."""
    n, maxlag = pvalues.shape
    tested = np.isfinite(pvalues)
    m = tested.sum(axis=1)
    if lag_selection == "min_p":
        pvalue = np.fmin.reduce(pvalues, axis=1, initial=np.nan)
        lag = np.where(m > 0, np.argmin(np.where(tested, pvalues, np.inf), axis=1) + 1.0,
                       np.nan)
        return pvalue, lag
    if lag_selection in ("fixed", "aic", "bic"):
        if lag_selection == "fixed":
            lag = np.full(n, float(maxlag))
        else:
            lag = np.maximum(orders, 1.0)
        known = np.isfinite(lag)
        pvalue = np.full(n, np.nan)
        pvalue[known] = pvalues[known, lag[known].astype(np.int64) - 1]
        lag[np.isnan(pvalue)] = np.nan
        return pvalue, lag
    lag = np.full(n, np.nan)
    if lag_selection == "bonferroni":
        smallest = np.fmin.reduce(pvalues, axis=1, initial=np.nan)
        return np.minimum(1.0, m * smallest), lag
    # Simes: NaN sorts last, so the k-th smallest of the m tested p-values is column k-1.
    ordered = np.sort(pvalues, axis=1)
    ranks = np.arange(1, maxlag + 1)
    with np.errstate(invalid="ignore"):
        scaled = m[:, None] * ordered / ranks
    return np.fmin.reduce(scaled, axis=1, initial=np.nan), lag


def _has_unit_root(series):
    """Where statsmodels' ``adfuller`` (defaults) does not reject a unit root at 5%.

    ``series`` has shape (m, K), one series per row. Constant rows give False.
    """
    statistic, _ = _adf_statistics(series)
    threshold = _adf_threshold()
    rejects = statistic < threshold
    # At the threshold itself, decide as adfuller's own p-value does.
    close = np.flatnonzero(np.abs(statistic - threshold) <= 1e-9 * abs(threshold))
    if close.size:
        from statsmodels.tsa.adfvalues import mackinnonp

        rejects[close] = [mackinnonp(s, regression="c", N=1) < _ADF_LEVEL
                          for s in statistic[close]]
    constant = series.max(axis=1) == series.min(axis=1)
    return ~rejects & ~constant


@lru_cache(maxsize=None)
def _adf_threshold():
    """The ADF statistic at which MacKinnon's p-value (statsmodels' ``mackinnonp``) is 5%.

    The p-value increases with the statistic, so ``p < 0.05`` is ``statistic < this``.
    """
    from scipy.optimize import brentq
    from statsmodels.tsa.adfvalues import mackinnonp

    return brentq(lambda s: mackinnonp(s, regression="c", N=1) - _ADF_LEVEL, -10.0, 0.0,
                  xtol=1e-15)


def _adf_statistics(series):
    """statsmodels' ``adfuller`` statistic and lag (regression "c", autolag "AIC"), per row.

    ``series`` has shape (m, K). Returns ``(statistic, usedlag)``, NaN where adfuller
    raises (a constant row) or returns NaN.

    The autolag regressions ``dx_t ~ 1 + x_{t-1} + dx_{t-1..t-l}``, ``l = 0..L`` on the
    same rows, are nested: one QR of ``[1, x_{t-1}, dx_{t-1}, ..., dx_{t-L}, dx_t]`` gives
    every residual sum of squares. The chosen lag is refitted on all its rows, with
    ``x_{t-1}`` last, where its t statistic is ``R[j, y] sign(R[j, j]) / sigma``.
    """
    m, K = series.shape
    # statsmodels' maximum lag (Schwert 1989), with ntrend = 1.
    L = min(K // 2 - 2, math.ceil(12.0 * (K / 100.0) ** 0.25))
    series = np.ascontiguousarray(series)
    z = np.empty_like(series)
    _standardise(series, z)
    d = np.diff(z, axis=1)
    statistic = np.full(m, np.nan)
    usedlag = np.full(m, -1, dtype=np.int64)
    fallback = np.zeros(m, dtype=bool)
    n1 = K - 1 - L
    for start in range(0, m, _QR_CHUNK):
        rows = slice(start, min(start + _QR_CHUNK, m))
        design = np.empty((z[rows].shape[0], n1, L + 3))
        design[:, :, 0] = 1.0
        design[:, :, 1] = z[rows, L:K - 1]
        for j in range(1, L + 1):
            design[:, :, 1 + j] = d[rows, L - j:K - 1 - j]
        design[:, :, L + 2] = d[rows, L:]
        R = np.linalg.qr(design, mode="r")
        tail = R[:, :, L + 2] ** 2
        ssr = np.cumsum(tail[:, ::-1], axis=1)[:, ::-1][:, 2:]  # ssr[:, l]: l dx lags
        total = np.einsum("mr,mr->m", design[:, :, L + 2], design[:, :, L + 2])
        # statsmodels' AIC up to terms equal for every lag: nobs log(SSR) + 2 (l + 2).
        with np.errstate(divide="ignore"):
            aic = n1 * np.log(ssr) + 2.0 * np.arange(L + 1)
        usedlag[rows] = np.argmin(aic, axis=1)
        fallback[rows] = (_rank_deficient(design[:, :, :L + 2], R)
                          | ~(ssr[:, -1] > _DEGENERATE_RTOL * total))
    for b in np.unique(usedlag[~fallback]):
        chosen = np.flatnonzero((usedlag == b) & ~fallback)
        n2 = K - 1 - b
        for start in range(0, chosen.size, _QR_CHUNK):
            rows = chosen[start:start + _QR_CHUNK]
            design = np.empty((rows.size, n2, b + 3))
            design[:, :, 0] = 1.0
            for j in range(1, b + 1):
                design[:, :, j] = d[rows, b - j:K - 1 - j]
            design[:, :, b + 1] = z[rows, b:K - 1]
            design[:, :, b + 2] = d[rows, b:]
            R = np.linalg.qr(design, mode="r")
            sigma = np.abs(R[:, b + 2, b + 2]) / math.sqrt(n2 - b - 2)
            total = np.einsum("mr,mr->m", design[:, :, b + 2], design[:, :, b + 2])
            fallback[rows] |= (_rank_deficient(design[:, :, :b + 2], R)
                               | ~(R[:, b + 2, b + 2] ** 2 > _DEGENERATE_RTOL * total))
            with np.errstate(divide="ignore", invalid="ignore"):
                statistic[rows] = R[:, b + 1, b + 2] * np.sign(R[:, b + 1, b + 1]) / sigma
    for i in np.flatnonzero(fallback):
        statistic[i], usedlag[i] = _statsmodels_adf(series[i])
    return statistic, usedlag


def _statsmodels_adf(x):
    from statsmodels.tsa.stattools import adfuller

    if x.max() == x.min():
        return np.nan, -1
    with warnings.catch_warnings():
        # Degenerate regressions (the reason to come here) warn about divisions by zero.
        warnings.simplefilter("ignore")
        try:
            result = adfuller(x, result_object=True)
        except (ValueError, np.linalg.LinAlgError):
            return np.nan, -1
    return result.statistic, result.lags


def _rank_deficient(design, R):
    """Rows of a stack whose regressors (``design``, QR factor ``R``) are collinear."""
    k = design.shape[2]
    pivots = np.abs(np.diagonal(R, axis1=1, axis2=2)[:, :k])
    norms = np.sqrt(np.einsum("mrj,mrj->mj", design, design))
    return (pivots < _RANK_RTOL * norms).any(axis=1)


def _var_orders(y, x, maxlag, criterion):
    """The lag order ``VAR(np.column_stack([y, x_i])).select_order(maxlag)`` selects.

    ``y`` has shape (N,), ``x`` (N, n); ``criterion`` is "aic" or "bic". Returns floats,
    NaN where statsmodels cannot select an order.

    For order ``p`` both equations regress on ``[1, y_{t-1}, x_{t-1}, ..., y_{t-p},
    x_{t-p}]`` over the rows ``t = maxlag..N-1``: nested designs, so one QR of
    ``[1, y_{t-1}, x_{t-1}, ..., y_{t-maxlag}, x_{t-maxlag}, y_t, x_t]`` gives every
    residual cross-product matrix, and statsmodels' criterion
    ``log det(Sigma_p) + c / nobs * (4 p + 2)``, ``c`` = 2 (AIC) or ``log(nobs)`` (BIC).
    """
    N, n = x.shape
    nobs = N - maxlag
    width = 2 * maxlag + 1
    ys = np.empty((1, N))
    _standardise(y[None, :], ys)
    xs = np.empty((n, N))
    _standardise(np.ascontiguousarray(x.T), xs)
    weight = 2.0 if criterion == "aic" else math.log(nobs)
    penalty = weight / nobs * (4.0 * np.arange(maxlag + 1) + 2.0)
    orders = np.full(n, np.nan)
    fallback = np.zeros(n, dtype=bool)
    for start in range(0, n, _QR_CHUNK):
        rows = slice(start, min(start + _QR_CHUNK, n))
        design = np.empty((xs[rows].shape[0], nobs, width + 2))
        design[:, :, 0] = 1.0
        for j in range(1, maxlag + 1):
            design[:, :, 2 * j - 1] = ys[0, maxlag - j:N - j]
            design[:, :, 2 * j] = xs[rows, maxlag - j:N - j]
        design[:, :, width] = ys[0, maxlag:]
        design[:, :, width + 1] = xs[rows, maxlag:]
        R = np.linalg.qr(design, mode="r")
        targets = R[:, :, width:]
        # Residual cross products after the first k regressors: sum of rows k.. of R.
        products = targets[:, :, :, None] * targets[:, :, None, :]
        remaining = np.cumsum(products[:, ::-1], axis=1)[:, ::-1]
        sigma = remaining[:, 1:width + 1:2]  # orders 0..maxlag: k = 1 + 2p
        det = sigma[..., 0, 0] * sigma[..., 1, 1] - sigma[..., 0, 1] ** 2
        scale = sigma[..., 0, 0] * sigma[..., 1, 1]
        degenerate = ~(det > _DEGENERATE_RTOL * scale).all(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            criteria = np.log(det) + penalty
        orders[rows] = np.argmin(np.where(np.isnan(criteria), np.inf, criteria), axis=1)
        fallback[rows] = degenerate | _rank_deficient(design[:, :, :width], R)
    for i in np.flatnonzero(fallback):
        orders[i] = _statsmodels_var_order(y, x[:, i], maxlag, criterion)
    return orders


def _statsmodels_var_order(y, x, maxlag, criterion):
    from statsmodels.tsa.api import VAR

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(VAR(np.column_stack([y, x])).select_order(maxlag)
                         .selected_orders[criterion])
        except (ValueError, np.linalg.LinAlgError):
            return np.nan


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
    # int8 codes here and in _gram_fits: one compiled version (a constant argument would
    # be typed as that literal value, and compiled for it alone).
    _mark_constant_lags(effect, constant_y, np.int8(1))
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
    parallel_blocks(lambda lo, hi: _gram_fits(lo, hi, causes, x, proj, restricted.offsets,
                                              restricted.ssr_r, _PIVOT_RTOL, _FIT_RTOL,
                                              status, ess, ssr_u), len(causes))
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


def _standardise(series, out):
    """Write each row of ``series`` (finite, float64, shape (m, K)) centred and rescaled to
    at most 1 in size into ``out``.

    The tests are invariant to shifting and scaling either series (the constant absorbs
    shifts, the statistics are ratios); on centred unit-size data the sums of
    ``_gram_fits`` are as accurate as the tolerances above assume, whatever the series'
    offset and units. Dividing by the largest value first keeps the mean from overflowing.
    Equal values stay equal, so constant stretches stay exactly constant. The mean is
    summed value by value in time order, every row at once; numpy rather than a compiled
    kernel, which saves compiling one on first use (docs/performance.md, "Compiling the
    kernels").
    """
    K = series.shape[1]
    scale = np.maximum(series.max(axis=1), -series.min(axis=1))
    scale[scale == 0.0] = 1.0
    np.divide(series, scale[:, None], out=out)
    mean = np.zeros(len(out))
    for a in range(K):
        mean += out[:, a]
    mean /= K
    out -= mean[:, None]
    spread = np.maximum(out.max(axis=1), -out.min(axis=1))
    spread[spread == 0.0] = 1.0  # a constant row: all zeros, left as it is
    out /= spread[:, None]


@kernel(nogil=True)
def _mark_constant_lags(series, status, code):
    """Set ``status[l] = code`` where a lag column ``series[p-j : K-j]``, ``j <= p = l+1``,
    is constant: exact equality, statsmodels' check, on the data as given."""
    K = series.shape[0]
    changes = np.empty(K, dtype=np.int64)
    changes[0] = 0
    for a in range(1, K):
        changes[a] = changes[a - 1] + (series[a] != series[a - 1])
    for li in range(status.shape[0]):
        p = li + 1
        for j in range(1, p + 1):
            # No change between positions p-j and K-1-j.
            if changes[K - 1 - j] == changes[p - j]:
                status[li] = code
                break


@kernel(nogil=True)
def _gram_fits(lo, hi, raw, x, proj, offsets, ssr_r, pivot_rtol, fit_rtol, status, ess, ssr_u):
    """Fast route for causes ``lo .. hi - 1``: Cholesky of ``S = X'X - (Q'X)'(Q'X)`` per
    cause and lag. Blocks of causes run on several threads (``parallel_blocks``).

    ``proj[c]`` holds ``Q'X`` then ``X'e`` for every lag (see ``_restricted_fits``).
    Pairs with a constant lag column of ``raw`` get status ``_UNTESTABLE``; pairs this route
    cannot resolve accurately get ``_REFINE``; pairs with another status are skipped.
    """
    K = x.shape[1]
    maxlag = ssr_r.shape[0]
    # Work space of the whole block. np.empty and explicit zeros rather than np.zeros:
    # every numpy constructor used is one more function to compile on first use.
    full = np.empty(maxlag)
    head = np.empty((maxlag, maxlag + 1))
    tail = np.empty((maxlag, maxlag + 1))
    S = np.empty((maxlag, maxlag))
    b = np.empty(maxlag)
    norm2 = np.empty(maxlag)
    for d in range(maxlag):
        head[d, 0] = 0.0
        tail[d, 0] = 0.0
    for c in range(lo, hi):
        _mark_constant_lags(raw[c], status[c], np.int8(_UNTESTABLE))
        xc = x[c]
        pc = proj[c]
        # Lagged product sums: sum_{a=lo}^{hi} x_a x_{a+d} = full - head - tail, where
        # the corrections are short sums, more accurate than differences of a cumsum.
        for d in range(maxlag):
            s = 0.0
            for a in range(K - d):
                s += xc[a] * xc[a + d]
            full[d] = s
            for k in range(maxlag):
                head[d, k + 1] = head[d, k] + xc[k] * xc[k + d]
                a = K - d - 1 - k
                tail[d, k + 1] = tail[d, k] + xc[a] * xc[a + d]
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
