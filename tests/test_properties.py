"""Property-based tests of the numerical kernels: any shape, lag, window or scale.

The kernels must never raise on valid input, whatever the data, and never return values
outside their documented ranges: exponents finite (0 for static windows), divergence
curves finite or NaN and bounded by the rescaled geometry, p-values in [0, 1] or NaN with
the untestable flag.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sklegc.granger import granger_tests, max_feasible_lag
from sklegc.lyapunov import divergence_curve, max_lyapunov
from sklegc.windows import min_window_size

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

SCALES = [1e-12, 1e-6, 1.0, 1e6]


@st.composite
def lyapunov_case(draw):
    m = draw(st.integers(1, 3))
    d = draw(st.integers(1, 2))
    S = draw(st.integers(1, 4))
    t = draw(st.integers(0, 3))
    length = draw(st.integers(min_window_size(m, d, S, t), 60))
    n = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from(SCALES))
    offset = draw(st.sampled_from([0.0, 1.0, -3e3]))
    rng = np.random.default_rng(seed)
    kinds = draw(st.lists(st.sampled_from(["walk", "noise", "constant", "near_constant",
                                           "repeating"]), min_size=n, max_size=n))
    rows = []
    for kind in kinds:
        if kind == "walk":
            row = rng.standard_normal(length).cumsum()
        elif kind == "noise":
            row = rng.standard_normal(length)
        elif kind == "constant":
            row = np.zeros(length)
        elif kind == "near_constant":
            row = 1e-9 * rng.standard_normal(length)
        else:  # exact ties between delay vectors
            row = np.tile([0.0, 1.0, 0.5], length)[:length]
        rows.append(offset + scale * row)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return np.asarray(rows, dtype=dtype), dict(embedding_dim=m, delay=d, steps=S, theiler=t)


@SETTINGS
@given(lyapunov_case())
def test_max_lyapunov_is_finite_and_zero_on_static_windows(case):
    windows, params = case
    le = max_lyapunov(windows, **params)
    assert le.shape == (len(windows),) and le.dtype == np.float64
    assert np.isfinite(le).all()
    spans = np.ptp(windows.astype(np.float64), axis=1)
    assert np.all(le[spans < 1e-5] == 0.0)


@SETTINGS
@given(lyapunov_case())
def test_divergence_curve_is_bounded_by_the_rescaled_geometry(case):
    windows, params = case
    curve = divergence_curve(windows, **params)
    S, m = params["steps"], params["embedding_dim"]
    assert curve.shape == (len(windows), S + 1)
    assert not np.isinf(curve).any()
    spans = np.ptp(windows.astype(np.float64), axis=1)
    assert np.isnan(curve[spans == 0]).all()
    # In the [0, 1]-rescaled window a delay vector difference has squared norm at most m,
    # and a neighbour is closer than 1: y_0 < 0 <= ... and every y_i <= ln(m) / 2.
    finite = curve[np.isfinite(curve)]
    assert np.all(finite <= 0.5 * math.log(m) + 1e-12)
    first = curve[:, 0]
    assert np.all(first[np.isfinite(first)] < 0)
    # max_lyapunov's exponent is y_1 - y_0 wherever both are defined and the window moves
    le = max_lyapunov(windows, **params)
    moving = (spans >= 1e-5) & np.isfinite(curve[:, :2]).all(axis=1)
    np.testing.assert_allclose(le[moving], (curve[:, 1] - curve[:, 0])[moving],
                               rtol=1e-12, atol=1e-12)


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 2), st.integers(1, 4), st.integers(0, 3),
       st.integers(1, 4))
def test_windows_too_short_are_refused_with_value_error(m, d, S, t, short_by):
    shortest = min_window_size(m, d, S, t)
    assume(shortest - short_by >= 1)
    windows = np.random.default_rng(0).standard_normal((2, shortest - short_by))
    with pytest.raises(ValueError, match="window"):
        max_lyapunov(windows, embedding_dim=m, delay=d, steps=S, theiler=t)


@st.composite
def granger_case(draw):
    K = draw(st.integers(5, 40))
    maxlag = draw(st.integers(1, max_feasible_lag(K)))
    n = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)

    def series(kind, scale, size):
        if kind == "noise":
            values = rng.standard_normal(size)
        elif kind == "walk":
            values = rng.standard_normal(size).cumsum()
        elif kind == "constant":
            values = np.full(size, 0.25)
        elif kind == "near_constant":
            values = 0.25 + 1e-13 * rng.standard_normal(size)
        elif kind == "binary":
            values = rng.integers(0, 2, size).astype(float)
        else:  # lagged copy of the effect's noise: collinear designs
            values = np.r_[0.0, rng.standard_normal(size - 1)]
        return scale * values

    kinds = st.sampled_from(["noise", "walk", "constant", "near_constant", "binary", "lagged"])
    effect = series(draw(kinds), draw(st.sampled_from(SCALES)), K)
    causes = np.column_stack([series(draw(kinds), draw(st.sampled_from(SCALES)), K)
                              for _ in range(n)])
    if draw(st.booleans()):
        causes[:, 0] = np.r_[0.0, effect[:-1]]  # the effect's own lag: a perfect collinearity
    test = draw(st.sampled_from(["ssr_chi2test", "ssr_ftest"]))
    return effect, causes, maxlag, test


@SETTINGS
@given(granger_case())
def test_granger_pvalues_are_probabilities_or_flagged_untestable(case):
    effect, causes, maxlag, test = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # documented for a hopeless effect
        result = granger_tests(effect, causes, maxlag=maxlag, test=test)
    n = causes.shape[1]
    assert result.pvalue.shape == (n,) and result.pvalues.shape == (n, maxlag)
    for p in (result.pvalue, result.pvalues):
        finite = p[~np.isnan(p)]
        assert np.all((finite >= 0) & (finite <= 1))
    assert np.all(result.untestable[np.isnan(result.pvalue)])
    assert np.all(result.untestable[np.isnan(result.pvalues).any(axis=1)])
    np.testing.assert_array_equal(np.isnan(result.statistic), np.isnan(result.pvalues))
    assert np.all(result.statistic[~np.isnan(result.statistic)] >= 0)
    tested = ~np.isnan(result.pvalues).all(axis=1)
    np.testing.assert_array_equal(result.pvalue[tested],
                                  np.nanmin(result.pvalues[tested], axis=1))


@SETTINGS
@given(st.integers(5, 40), st.integers(1, 5))
def test_granger_refuses_lags_beyond_the_feasible_one(K, beyond):
    rng = np.random.default_rng(K)
    with pytest.raises(ValueError, match="maxlag"):
        granger_tests(rng.standard_normal(K), rng.standard_normal((K, 2)),
                      maxlag=max_feasible_lag(K) + beyond)
