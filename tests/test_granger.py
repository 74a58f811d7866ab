import dataclasses
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statsmodels.tsa.stattools import grangercausalitytests

from sklegc.granger import GrangerResult, granger_tests, max_feasible_lag

TESTS = ("ssr_chi2test", "ssr_ftest")
ATOL = 1e-8


def statsmodels_tests(effect, cause, maxlag):
    """statsmodels' (statistic, p-value) per test, shape (maxlag,), NaN where it refuses.

    One call for all lags; lag by lag only when that call raises, since statsmodels stops
    at the first infeasible lag.
    """
    data = np.column_stack([effect, cause])
    out = {test: (np.full(maxlag, np.nan), np.full(maxlag, np.nan)) for test in TESTS}
    with warnings.catch_warnings():
        # Its params_ftest, which we do not use, warns on rank-deficient designs.
        warnings.simplefilter("ignore")
        try:
            results = grangercausalitytests(data, maxlag)
        except Exception:
            results = {}
            for lag in range(1, maxlag + 1):
                try:
                    results.update(grangercausalitytests(data, [lag]))
                except Exception as exc:
                    assert type(exc).__name__ == "InfeasibleTestError"
    for lag, (tests, _) in results.items():
        for test in TESTS:
            out[test][0][lag - 1] = tests[test][0]
            out[test][1][lag - 1] = tests[test][1]
    return out


def assert_matches_statsmodels(effect, causes, maxlag, columns=None, rtol_statistic=None):
    """Every test, lag and listed cause equals statsmodels: p-values to ATOL; statistics to
    ATOL, or relatively to ``rtol_statistic`` where they are large."""
    causes = np.asarray(causes)
    columns = range(causes.shape[1]) if columns is None else columns
    results = {test: granger_tests(effect, causes, maxlag=maxlag, test=test) for test in TESTS}
    for i in columns:
        reference = statsmodels_tests(effect, causes[:, i], maxlag)
        for test, res in results.items():
            statistic, pvalues = reference[test]
            np.testing.assert_allclose(res.pvalues[i], pvalues, rtol=0, atol=ATOL,
                                       err_msg=f"{test} p-values, cause {i}")
            if rtol_statistic is None:
                np.testing.assert_allclose(res.statistic[i], statistic, rtol=0, atol=ATOL,
                                           err_msg=f"{test} statistic, cause {i}")
            else:
                np.testing.assert_allclose(res.statistic[i], statistic, rtol=rtol_statistic,
                                           err_msg=f"{test} statistic, cause {i}")
            np.testing.assert_allclose(res.pvalue[i], np.fmin.reduce(pvalues, initial=np.nan),
                                       rtol=0, atol=ATOL)
    return results


def random_causes(rng, K, n):
    """Gaussian, AR(1), heavy-tailed and discrete-valued cause series, one per column."""
    columns = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            columns.append(rng.normal(size=K))
        elif kind == 1:
            e = rng.normal(size=K)
            x = np.zeros(K)
            for t in range(1, K):
                x[t] = 0.8 * x[t - 1] + e[t]
            columns.append(x)
        elif kind == 2:
            columns.append(rng.standard_t(2, size=K) * 1e3 + 50)
        else:
            columns.append(rng.integers(0, 5, size=K).astype(float))
    return np.column_stack(columns)


@pytest.mark.parametrize("K, maxlag", [(44, 14), (45, 14), (60, 14), (106, 14), (20, 6)])
def test_random_series_match_statsmodels(K, maxlag):
    rng = np.random.default_rng(K)
    effect = rng.normal(size=K).cumsum() * 0.01 + 0.3
    causes = random_causes(rng, K, 8)
    results = assert_matches_statsmodels(effect, causes, maxlag)
    assert not results["ssr_chi2test"].untestable.any()


def test_df_as_statsmodels_reports_them():
    rng = np.random.default_rng(0)
    K, maxlag = 50, 5
    effect, cause = rng.normal(size=(2, K))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = grangercausalitytests(np.column_stack([effect, cause]), maxlag)
    chi2 = granger_tests(effect, cause, maxlag=maxlag, test="ssr_chi2test")
    ftest = granger_tests(effect, cause, maxlag=maxlag, test="ssr_ftest")
    assert chi2.df.shape == (maxlag,)
    assert ftest.df.shape == (maxlag, 2)
    for lag in range(1, maxlag + 1):
        assert chi2.df[lag - 1] == reference[lag][0]["ssr_chi2test"][2] == lag
        # statsmodels' order: (df_denom, df_num).
        assert tuple(ftest.df[lag - 1]) == reference[lag][0]["ssr_ftest"][2:] == (
            K - 3 * lag - 1, lag)


def test_result_fields_and_immutability():
    rng = np.random.default_rng(1)
    res = granger_tests(rng.normal(size=30), rng.normal(size=(30, 3)), maxlag=4)
    assert isinstance(res, GrangerResult)
    assert [f.name for f in dataclasses.fields(res)] == [
        "pvalue", "pvalues", "statistic", "df", "untestable", "test", "maxlag"]
    assert res.pvalue.shape == res.untestable.shape == (3,)
    assert res.pvalues.shape == res.statistic.shape == (3, 4)
    assert res.untestable.dtype == bool
    assert (res.test, res.maxlag) == ("ssr_chi2test", 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.maxlag = 3
    with pytest.raises(ValueError):
        res.pvalues[0, 0] = 0.5


def test_strongly_causal_pairs():
    rng = np.random.default_rng(2)
    K, maxlag = 106, 14
    drivers = rng.normal(size=(K, 3))
    effect = (0.9 * np.r_[0.0, drivers[:-1, 0]] - 0.5 * np.r_[0.0, 0.0, drivers[:-2, 1]]
              + 0.05 * rng.normal(size=K))
    causes = np.column_stack([drivers, rng.normal(size=K)])
    results = assert_matches_statsmodels(effect, causes, maxlag, rtol_statistic=1e-8)
    assert results["ssr_chi2test"].pvalue[0] < 1e-12
    assert results["ssr_chi2test"].pvalue[1] < 1e-6
    assert results["ssr_chi2test"].statistic[0].min() > 100


@pytest.mark.parametrize("seed", range(3))
def test_near_collinear_causes(seed):
    rng = np.random.default_rng(seed)
    K, maxlag = 80, 14
    effect = rng.normal(size=K)
    causes = np.column_stack([
        np.r_[0.0, effect[:-1]] + 1e-6 * rng.normal(size=K),  # ~ the effect's own lags
        5.0 + 1e-6 * rng.normal(size=K),  # nearly constant
        2.0 * effect - 1.0 + 1e-5 * rng.normal(size=K),  # ~ an affine copy of the effect
        rng.normal(size=K),
    ])
    results = assert_matches_statsmodels(effect, causes, maxlag, rtol_statistic=1e-8)
    assert not results["ssr_chi2test"].untestable.any()


def test_near_perfect_fit_against_high_precision():
    """A cause that leads the effect by one step almost fits it exactly: SSR_u ~ 1e-12 SSR_r.

    statsmodels' own statistic is off by up to ~1e-3 relatively there (its residuals
    carry the design's conditioning; at lag 14 only one degree of freedom is left), so
    the statistic is checked against a 60-digit computation, and the p-values (all 0)
    against statsmodels.
    """
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 60
    rng = np.random.default_rng(1)
    K, maxlag = 44, 14
    effect = rng.normal(size=K)
    cause = np.r_[effect[1:], 0.0] + 1e-6 * rng.normal(size=K)
    res = granger_tests(effect, cause, maxlag=maxlag)
    reference = statsmodels_tests(effect, cause, maxlag)["ssr_chi2test"]
    np.testing.assert_allclose(res.pvalues[0], reference[1], rtol=0, atol=ATOL)

    def ssr(target, columns):
        design = mpmath.matrix([[1] + [mpmath.mpf(float(c[r])) for c in columns]
                                for r in range(len(target))])
        y = mpmath.matrix([mpmath.mpf(float(v)) for v in target])
        residual = y - design * mpmath.lu_solve(design.T * design, design.T * y)
        return sum(v ** 2 for v in residual)

    for lag in (1, 2, 7, 14):
        rows = np.arange(lag, K)
        own = [effect[rows - j] for j in range(1, lag + 1)]
        other = [cause[rows - j] for j in range(1, lag + 1)]
        ssr_r, ssr_u = ssr(effect[rows], own), ssr(effect[rows], own + other)
        exact = float((K - lag) * (ssr_r - ssr_u) / ssr_u)
        assert res.statistic[0, lag - 1] == pytest.approx(exact, rel=1e-8)


def test_untestable_causes_are_flagged_and_do_not_contaminate_neighbours():
    rng = np.random.default_rng(3)
    K, maxlag = 50, 5
    effect = rng.normal(size=K)
    causes = rng.normal(size=(K, 9))
    causes[:, 1] = 2.0  # constant
    causes[:, 3] = np.r_[np.full(K - 1, 2.0), 7.0]  # x[K-1] is never a regressor
    causes[:, 5] = effect  # the cause's lags are the effect's lags
    causes[:, 6] = 2.0 * effect + 1.0
    causes[:, 7] = 0.0
    res = granger_tests(effect, causes, maxlag=maxlag)
    untestable = [1, 3, 5, 6, 7]
    assert res.untestable.tolist() == [i in untestable for i in range(9)]
    assert np.isnan(res.pvalues[untestable]).all()
    assert np.isnan(res.statistic[untestable]).all()
    assert np.isnan(res.pvalue[untestable]).all()
    # statsmodels refuses the constant ones at every lag; for the collinear ones it
    # returns pseudo-inverse numbers (p ~ 1) that test nothing.
    for i in (1, 3, 7):
        assert np.isnan(statsmodels_tests(effect, causes[:, i], maxlag)["ssr_chi2test"][1]).all()
    assert_matches_statsmodels(effect, causes, maxlag, columns=[0, 2, 4, 8])


def test_untestable_rule_is_per_lag():
    rng = np.random.default_rng(4)
    K, maxlag = 50, 5
    effect = rng.normal(size=K)
    causes = np.column_stack([
        np.r_[7.0, np.full(K - 1, 2.0)],  # lag columns j < p miss x[0]: constant for p >= 2
        np.r_[0.0, effect[:-1]],  # collinear with the effect's lags for p >= 2 only
        rng.normal(size=K),
    ])
    res = granger_tests(effect, causes, maxlag=maxlag)
    assert res.untestable.tolist() == [True, True, False]
    assert np.isfinite(res.pvalues[:2, 0]).all()
    assert np.isnan(res.pvalues[:2, 1:]).all()
    np.testing.assert_array_equal(res.pvalue[:2], res.pvalues[:2, 0])
    assert_matches_statsmodels(effect, causes[:, [0, 2]], maxlag)
    lag1 = statsmodels_tests(effect, causes[:, 1], maxlag)["ssr_chi2test"][1][0]
    assert res.pvalues[1, 0] == pytest.approx(lag1, abs=ATOL)


@pytest.mark.parametrize("effect", [
    np.full(40, 0.25),
    np.r_[np.full(39, 0.25), 0.5],  # constant lag columns at every lag
    np.tile([0.1, 0.3], 20),  # y_t = y_{t-2}, and 0.4 - y_{t-1}: a perfect fit
], ids=["constant", "constant-but-last", "period-two"])
def test_effect_that_makes_every_test_infeasible(effect):
    rng = np.random.default_rng(5)
    causes = rng.normal(size=(40, 3))
    with pytest.warns(RuntimeWarning, match="every cause is untestable"):
        res = granger_tests(effect, causes, maxlag=4)
    assert res.untestable.all()
    assert np.isnan(res.pvalues).all() and np.isnan(res.pvalue).all()
    assert np.isnan(statsmodels_tests(effect, causes[:, 0], 4)["ssr_chi2test"][1]).all()


def test_results_do_not_depend_on_chunk_size():
    rng = np.random.default_rng(6)
    K, n = 60, 37
    effect = rng.normal(size=K)
    causes = random_causes(rng, K, n)
    causes[:, 5] = 1.0
    causes[:, 9] = np.r_[0.0, effect[:-1]] + 1e-6 * rng.normal(size=K)
    reference = granger_tests(effect, causes, maxlag=10)
    for chunk_size in (1, 7, 36, 1000):
        res = granger_tests(effect, causes, maxlag=10, chunk_size=chunk_size)
        np.testing.assert_allclose(res.pvalues, reference.pvalues, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(res.statistic, reference.statistic, rtol=1e-12)
        np.testing.assert_array_equal(res.untestable, reference.untestable)


def test_one_dimensional_cause_and_array_likes():
    rng = np.random.default_rng(7)
    effect, cause = rng.normal(size=(2, 30))
    one = granger_tests(effect.tolist(), cause.tolist(), maxlag=3)
    two = granger_tests(effect, cause[:, None], maxlag=3)
    assert one.pvalues.shape == (1, 3)
    np.testing.assert_array_equal(one.pvalues, two.pvalues)
    integers = granger_tests(np.arange(30) % 7, (np.arange(30) * 3) % 5, maxlag=3)
    assert integers.pvalues.shape == (1, 3)


def test_no_causes():
    res = granger_tests(np.random.default_rng(8).normal(size=20), np.empty((20, 0)), maxlag=2)
    assert res.pvalue.shape == (0,) and res.pvalues.shape == (0, 2)


def test_invariant_to_shifting_and_scaling():
    rng = np.random.default_rng(9)
    effect = rng.normal(size=60)
    causes = random_causes(rng, 60, 4)
    res = granger_tests(effect, causes, maxlag=6)
    # Shifts of the data's own size and power-of-two scales change no digit that matters.
    moved = granger_tests((effect + 3.0) * 2.0**-40, (causes - 7.0) * 2.0**30, maxlag=6)
    np.testing.assert_allclose(moved.pvalues, res.pvalues, rtol=0, atol=1e-11)


def test_max_feasible_lag_is_what_statsmodels_accepts():
    rng = np.random.default_rng(10)
    assert max_feasible_lag(106) == 34
    assert max_feasible_lag(4) == max_feasible_lag(0) == 0
    for K in range(5, 30):
        data = rng.normal(size=(K, 2))
        lag = max_feasible_lag(K)
        assert K > 3 * lag + 1 >= K - 3
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            grangercausalitytests(data, lag)
        with pytest.raises(ValueError, match="Insufficient observations"):
            grangercausalitytests(data, lag + 1)
    with pytest.raises(ValueError, match="n_obs"):
        max_feasible_lag(-1)
    with pytest.raises(TypeError, match="n_obs"):
        max_feasible_lag(10.0)


def test_maxlag_too_large_names_the_largest_feasible_lag():
    rng = np.random.default_rng(11)
    effect, cause = rng.normal(size=(2, 43))
    with pytest.raises(ValueError, match=r"maxlag=14 needs at least 44 observations.*K=43"
                                         r".*largest feasible lag for K=43 is 13"):
        granger_tests(effect, cause, maxlag=14)
    with pytest.raises(ValueError, match="no lag is feasible"):
        granger_tests(effect[:4], cause[:4], maxlag=1)


@pytest.mark.parametrize("maxlag, error, match", [
    (0, ValueError, "maxlag must be an integer >= 1"),
    (-2, ValueError, "maxlag must be an integer >= 1"),
    (2.0, TypeError, "maxlag must be an integer"),
    (True, TypeError, "maxlag must be an integer"),
    ("3", TypeError, "maxlag must be an integer"),
])
def test_maxlag_validation(maxlag, error, match):
    with pytest.raises(error, match=match):
        granger_tests(np.arange(30.0) ** 2, np.sin(np.arange(30.0)), maxlag=maxlag)


def test_input_validation_names_the_argument():
    rng = np.random.default_rng(12)
    effect, causes = rng.normal(size=30), rng.normal(size=(30, 4))
    with pytest.raises(ValueError, match=r"test must be one of 'ssr_chi2test', 'ssr_ftest'"):
        granger_tests(effect, causes, maxlag=2, test="lrtest")
    with pytest.raises(ValueError, match=r"effect must be 1-D"):
        granger_tests(causes, causes, maxlag=2)
    with pytest.raises(ValueError, match=r"causes must have shape \(K, n\).*K = len\(effect\) "
                                         r"= 30.*\(29, 4\)"):
        granger_tests(effect, causes[:29], maxlag=2)
    with pytest.raises(ValueError, match=r"pass causes.T"):
        granger_tests(effect, causes.T, maxlag=2)
    with pytest.raises(ValueError, match=r"causes must have shape"):
        granger_tests(effect, causes[:, :, None], maxlag=2)
    bad = effect.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="effect contains NaN or inf"):
        granger_tests(bad, causes, maxlag=2)
    bad = causes.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="causes contains NaN or inf"):
        granger_tests(effect, bad, maxlag=2)
    with pytest.raises(ValueError, match="causes must hold real numbers"):
        granger_tests(effect, causes + 1j, maxlag=2)
    with pytest.raises(ValueError, match="effect must hold real numbers"):
        granger_tests(["a"] * 30, causes, maxlag=2)
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        granger_tests(effect, causes, maxlag=2, chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size must be an integer"):
        granger_tests(effect, causes, maxlag=2, chunk_size=1.5)


series_kinds = st.sampled_from(["normal", "discrete", "mostly-constant", "trend", "copy"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(K=st.integers(5, 70), data=st.data(),
       scale=st.sampled_from([1e-12, 1.0, 1e6, 1e-200, 1e200]),
       seed=st.integers(0, 2**32 - 1), test=st.sampled_from(TESTS))
def test_property_pvalues_in_unit_interval_or_flagged(K, data, scale, seed, test):
    maxlag = data.draw(st.integers(1, max_feasible_lag(K)), label="maxlag")
    n = data.draw(st.integers(1, 5), label="n")
    kinds = data.draw(st.lists(series_kinds, min_size=n + 1, max_size=n + 1), label="kinds")
    rng = np.random.default_rng(seed)
    columns = []
    for kind in kinds:
        if kind == "normal":
            column = rng.normal(size=K)
        elif kind == "discrete":
            column = rng.integers(0, 3, size=K).astype(float)
        elif kind == "mostly-constant":
            column = np.full(K, 1.5)
            column[rng.integers(0, K)] = -1.0
        elif kind == "trend":
            column = np.arange(K, dtype=float)
        else:
            column = columns[0] if columns else rng.normal(size=K)
        columns.append(column)
    shifts = rng.integers(-3, 4, size=len(columns))
    effect, *causes = [(column + shift) * scale for column, shift in zip(columns, shifts)]
    causes = np.column_stack(causes)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The effect series makes", RuntimeWarning)
        res = granger_tests(effect, causes, maxlag=maxlag, test=test)
    finite = np.isfinite(res.pvalues)
    assert ((res.pvalues[finite] >= 0) & (res.pvalues[finite] <= 1)).all()
    np.testing.assert_array_equal(finite, np.isfinite(res.statistic))
    assert (res.statistic[finite] >= 0).all()
    np.testing.assert_array_equal(res.untestable, ~finite.all(axis=1))
    np.testing.assert_array_equal(np.isnan(res.pvalue), ~finite.any(axis=1))
    has_any = finite.any(axis=1)
    np.testing.assert_array_equal(res.pvalue[has_any],
                                  np.where(finite, res.pvalues, np.inf)[has_any].min(axis=1))


def test_standardise_is_the_plain_per_row_computation():
    """The series are standardised with numpy, every row at once; each row must be what a
    plain loop over its values gives, bit for bit (the mean summed in time order), so that
    the tests' sums and their tolerances stay as they were."""
    from sklegc.granger import _standardise

    rng = np.random.default_rng(5)
    series = np.concatenate([
        rng.standard_normal((20, 37)).cumsum(axis=1) * 1e6 + 1e9,  # far from 0, large units
        rng.standard_normal((20, 37)) * 1e-12,
        np.round(rng.standard_normal((5, 37)), 1),
        np.zeros((2, 37)),
        np.full((2, 37), -3.5),
        np.r_[np.zeros(36), 1.0][None, :],
    ])

    def plain(row):
        scale = max(abs(v) for v in row) or 1.0
        mean = 0.0
        for v in row:
            mean += v / scale
        mean /= len(row)
        centred = [v / scale - mean for v in row]
        spread = max(abs(v) for v in centred)
        return np.array([v / spread for v in centred] if spread > 0 else centred)

    out = np.empty_like(series)
    _standardise(series, out)
    expected = np.stack([plain(row) for row in series])
    assert out.tobytes() == expected.tobytes()
    assert np.all(np.abs(out).max(axis=1)[:-5] == 1.0)
