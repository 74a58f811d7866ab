"""granger_tests' stationarity and lag_selection options, against statsmodels where it
computes the same thing, and against the formulas where it does not."""

import dataclasses
import warnings

import numpy as np
import pytest
from statsmodels.tsa.api import VAR
from statsmodels.tsa.stattools import adfuller, grangercausalitytests

from sklegc.granger import (
    LAG_SELECTIONS,
    _adf_statistics,
    _has_unit_root,
    granger_tests,
    max_feasible_lag,
)

ATOL = 1e-8


def series_zoo(rng, K, n):
    """Random walks, AR(1) noise, trending series, white noise, constant-ish series (a few
    values off a constant) and a slow decay with a little noise, one per column."""
    columns = []
    for i in range(n):
        noise = rng.normal(size=K)
        kind = i % 6
        if kind == 0:
            column = np.cumsum(noise)
        elif kind == 1:
            column = np.zeros(K)
            for t in range(1, K):
                column[t] = 0.7 * column[t - 1] + noise[t]
        elif kind == 2:
            column = 0.05 * np.arange(K) + noise
        elif kind == 3:
            column = noise
        elif kind == 4:
            column = np.full(K, 1.5)
            column[rng.integers(0, K, size=3)] = rng.normal(size=3)
        else:
            column = np.exp(-np.arange(K) / 20) + 0.01 * np.cumsum(noise)
        columns.append(column)
    return np.column_stack(columns)


def statsmodels_pvalues(effect, cause, maxlag, test):
    """statsmodels' p-value per lag, NaN where it refuses the lag."""
    data = np.column_stack([effect, cause])
    out = np.full(maxlag, np.nan)
    for lag in range(1, maxlag + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                out[lag - 1] = grangercausalitytests(data, [lag])[lag][0][test][1]
            except Exception as exc:
                assert type(exc).__name__ == "InfeasibleTestError"
    return out


def adf_reference(x):
    """statsmodels' adfuller (defaults): (statistic, lags, unit root not rejected at 5%)."""
    if x.max() == x.min():
        return np.nan, -1, False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = adfuller(x, result_object=True)
    return res.statistic, res.lags, not res.pvalue < 0.05


def var_order(effect, cause, maxlag, criterion):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return VAR(np.column_stack([effect, cause])).select_order(maxlag) \
                .selected_orders[criterion]
        except (ValueError, np.linalg.LinAlgError):
            return None


def test_defaults_are_the_papers_rule():
    rng = np.random.default_rng(0)
    effect, causes = rng.normal(size=60), series_zoo(rng, 60, 12)
    paper = granger_tests(effect, causes, maxlag=6)
    explicit = granger_tests(effect, causes, maxlag=6, stationarity=None, lag_selection="min_p")
    for name in ("pvalue", "pvalues", "statistic", "df", "untestable"):
        np.testing.assert_array_equal(getattr(explicit, name), getattr(paper, name))
    assert paper.stationarity is None and paper.lag_selection == "min_p"
    assert not paper.differenced_effect and not paper.differenced.any()
    assert (paper.n_obs == 60).all()
    tested = ~np.isnan(paper.pvalue)
    lag = paper.lag[tested].astype(int)
    np.testing.assert_array_equal(paper.pvalues[tested, lag - 1], paper.pvalue[tested])


@pytest.mark.parametrize("test", ["ssr_chi2test", "ssr_ftest"])
def test_difference_is_statsmodels_on_first_differences(test):
    rng = np.random.default_rng(1)
    K, maxlag = 70, 6
    effect = np.cumsum(rng.normal(size=K))
    causes = series_zoo(rng, K, 12)
    res = granger_tests(effect, causes, maxlag=maxlag, test=test, stationarity="difference")
    assert res.differenced_effect and res.differenced.all() and (res.n_obs == K - 1).all()
    for i in range(causes.shape[1]):
        reference = statsmodels_pvalues(np.diff(effect), np.diff(causes[:, i]), maxlag, test)
        np.testing.assert_allclose(res.pvalues[i], reference, rtol=0, atol=ATOL,
                                   err_msg=f"cause {i}")
    if test == "ssr_ftest":
        lags = np.arange(1, maxlag + 1)
        np.testing.assert_array_equal(res.df, np.column_stack([K - 1 - 3 * lags - 1, lags]))


@pytest.mark.parametrize("K", [20, 33, 64, 106])
def test_adf_agrees_with_adfuller(K):
    rng = np.random.default_rng(K)
    series = series_zoo(rng, K, 120).T
    statistic, lags = _adf_statistics(series)
    decisions = _has_unit_root(series)
    for i, x in enumerate(series):
        ref_statistic, ref_lags, ref_unit_root = adf_reference(x)
        assert decisions[i] == ref_unit_root, f"series {i} (kind {i % 6})"
        if np.isfinite(ref_statistic):
            assert lags[i] == ref_lags
            np.testing.assert_allclose(statistic[i], ref_statistic, rtol=1e-8)
    # The zoo holds series on both sides of the decision.
    assert 0.2 < decisions.mean() < 0.8


def test_adf_decision_at_the_threshold_follows_adfullers_pvalue():
    from statsmodels.tsa.adfvalues import mackinnonp

    from sklegc.granger import _adf_threshold

    threshold = _adf_threshold()
    assert mackinnonp(threshold, regression="c", N=1) == pytest.approx(0.05, abs=1e-12)
    assert mackinnonp(threshold - 1e-6, regression="c", N=1) < 0.05
    assert mackinnonp(threshold + 1e-6, regression="c", N=1) > 0.05


@pytest.mark.parametrize("test", ["ssr_chi2test", "ssr_ftest"])
@pytest.mark.parametrize("effect_kind", ["random walk", "stationary"])
def test_adf_pairs_are_statsmodels_on_the_rule(effect_kind, test):
    rng = np.random.default_rng(2)
    K, maxlag = 80, 5
    noise = rng.normal(size=K)
    effect = np.cumsum(noise) if effect_kind == "random walk" else noise
    causes = series_zoo(rng, K, 18)
    res = granger_tests(effect, causes, maxlag=maxlag, test=test, stationarity="adf")
    assert res.differenced_effect == adf_reference(effect)[2] == (effect_kind == "random walk")
    expected = [adf_reference(causes[:, i])[2] for i in range(causes.shape[1])]
    np.testing.assert_array_equal(res.differenced, expected)
    assert 0 < res.differenced.sum() < causes.shape[1]
    for i in range(causes.shape[1]):
        x = np.diff(causes[:, i]) if res.differenced[i] else causes[:, i]
        y = np.diff(effect) if res.differenced_effect else effect
        # Where only one series is differenced, the other loses its first value.
        n = min(len(x), len(y))
        x, y = x[len(x) - n:], y[len(y) - n:]
        assert res.n_obs[i] == n
        reference = statsmodels_pvalues(y, x, maxlag, test)
        np.testing.assert_allclose(res.pvalues[i], reference, rtol=0, atol=ATOL,
                                   err_msg=f"cause {i}")
    # The F test's degrees of freedom follow each cause's length.
    lags = np.arange(1, maxlag + 1)
    expected_df = (np.broadcast_to(lags, (18, maxlag)) if test == "ssr_chi2test" else
                   np.stack([res.n_obs[:, None] - 3 * lags - 1,
                             np.broadcast_to(lags, (18, maxlag))], axis=-1))
    np.testing.assert_array_equal(res.df, expected_df)


@pytest.mark.parametrize("criterion", ["aic", "bic"])
@pytest.mark.parametrize("effect_kind", ["random walk", "ar", "trend", "noise"])
def test_aic_bic_lag_is_what_var_select_order_picks(criterion, effect_kind):
    rng = np.random.default_rng(3)
    K, maxlag = 64, 8
    effect = series_zoo(rng, K, 6)[:, ["random walk", "ar", "trend", "noise"].index(effect_kind)]
    causes = series_zoo(rng, K, 30)
    # Causes that do drive the effect, at lags 1 and 3, so that orders above 1 occur.
    causes[:, 0] = np.r_[effect[1:], 0.0] + 0.3 * rng.normal(size=K)
    causes[:, 1] = np.r_[effect[3:], 0.0, 0.0, 0.0] + 0.3 * rng.normal(size=K)
    res = granger_tests(effect, causes, maxlag=maxlag, lag_selection=criterion)
    orders = []
    for i in range(causes.shape[1]):
        order = var_order(effect, causes[:, i], maxlag, criterion)
        orders.append(order)
        if order is None:
            assert np.isnan(res.lag[i]) and np.isnan(res.pvalue[i])
            continue
        lag = max(order, 1)
        expected = res.pvalues[i, lag - 1]
        if np.isnan(expected):
            assert np.isnan(res.pvalue[i]) and np.isnan(res.lag[i])
        else:
            assert res.lag[i] == lag, f"cause {i}"
            assert res.pvalue[i] == expected
    assert len({o for o in orders if o is not None}) >= 2


def test_aic_bic_after_differencing_select_on_the_differenced_series():
    rng = np.random.default_rng(4)
    K, maxlag = 70, 6
    effect = np.cumsum(rng.normal(size=K))
    causes = np.cumsum(rng.normal(size=(K, 8)), axis=0)
    res = granger_tests(effect, causes, maxlag=maxlag, stationarity="difference",
                        lag_selection="bic")
    for i in range(8):
        order = var_order(np.diff(effect), np.diff(causes[:, i]), maxlag, "bic")
        assert res.lag[i] == max(order, 1)


def test_fixed_bonferroni_and_simes_by_their_formulas():
    rng = np.random.default_rng(5)
    K, maxlag = 50, 6
    causes = series_zoo(rng, K, 18)
    causes[:, 0] = rng.normal(size=K)
    effect = 0.8 * np.r_[0.0, causes[:-1, 0]] + rng.normal(size=K)  # cause 0 drives it
    # Constant except near the end: untestable at the longer lags only.
    causes[:, 1] = 0.0
    causes[-3:, 1] = [1.0, -1.0, 2.0]
    results = {s: granger_tests(effect, causes, maxlag=maxlag, lag_selection=s)
               for s in LAG_SELECTIONS}
    pvalues = results["min_p"].pvalues
    for s, res in results.items():
        np.testing.assert_array_equal(res.pvalues, pvalues)
        assert res.lag_selection == s
    tested = np.isfinite(pvalues[1])
    assert tested.any() and not tested.all()
    for i in range(causes.shape[1]):
        p = pvalues[i][np.isfinite(pvalues[i])]
        m = len(p)
        fixed = results["fixed"]
        if np.isnan(pvalues[i, -1]):
            assert np.isnan(fixed.pvalue[i]) and np.isnan(fixed.lag[i])
        else:
            assert fixed.pvalue[i] == pvalues[i, -1] and fixed.lag[i] == maxlag
        if m == 0:
            assert np.isnan(results["bonferroni"].pvalue[i])
            assert np.isnan(results["simes"].pvalue[i])
            continue
        assert results["bonferroni"].pvalue[i] == pytest.approx(min(1.0, m * p.min()),
                                                                rel=1e-15)
        ordered = np.sort(p)
        simes = min(m * ordered[k] / (k + 1) for k in range(m))
        assert results["simes"].pvalue[i] == pytest.approx(simes, rel=1e-15)
        assert results["simes"].pvalue[i] <= results["bonferroni"].pvalue[i]
        assert np.isnan(results["bonferroni"].lag[i]) and np.isnan(results["simes"].lag[i])
    assert results["bonferroni"].pvalue[0] < 0.05 and results["simes"].pvalue[0] < 0.05


@pytest.mark.parametrize("stationarity", [None, "difference", "adf"])
@pytest.mark.parametrize("lag_selection", LAG_SELECTIONS)
def test_degenerate_series_give_nan_or_unit_interval(stationarity, lag_selection):
    rng = np.random.default_rng(6)
    K = 40
    effect = np.cumsum(rng.normal(size=K)) * 1e200
    causes = np.column_stack([
        np.full(K, 3.0),                      # constant
        np.r_[np.full(K - 1, 2.0), 5.0],      # constant but the last value
        np.arange(K, dtype=float),            # a straight line: differences constant
        np.tile([0.0, 1.0], K // 2),          # period two
        rng.normal(size=K) * 1e-200,
        np.r_[0.0, effect[:-1]],              # the effect's first lag
    ])
    res = granger_tests(effect, causes, maxlag=4, stationarity=stationarity,
                        lag_selection=lag_selection)
    finite = np.isfinite(res.pvalue)
    assert ((res.pvalue[finite] >= 0) & (res.pvalue[finite] <= 1)).all()
    assert np.isnan(res.pvalue[0]) and res.untestable[0]
    if stationarity == "adf":
        # adfuller refuses a constant series; it is left as it is.
        assert not res.differenced[0]
    assert finite[4]
    assert np.isnan(res.lag[~finite]).all()


def test_result_attributes_are_read_only():
    rng = np.random.default_rng(7)
    res = granger_tests(rng.normal(size=40), rng.normal(size=(40, 3)), maxlag=3,
                        stationarity="adf", lag_selection="aic")
    assert res.lag.shape == res.n_obs.shape == res.differenced.shape == (3,)
    assert (res.stationarity, res.lag_selection) == ("adf", "aic")
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.lag = None
    for array in (res.lag, res.n_obs, res.differenced):
        with pytest.raises(ValueError):
            array[0] = 1


def test_option_validation():
    rng = np.random.default_rng(8)
    effect, causes = rng.normal(size=30), rng.normal(size=(30, 2))
    with pytest.raises(ValueError, match=r"stationarity must be None .* 'difference' or "
                                         r"'adf'; got 'kpss'"):
        granger_tests(effect, causes, maxlag=2, stationarity="kpss")
    with pytest.raises(ValueError, match=r"stationarity must be None"):
        granger_tests(effect, causes, maxlag=2, stationarity=True)
    with pytest.raises(ValueError, match=r"lag_selection must be one of 'min_p', 'fixed', "
                                         r"'aic', 'bic', 'bonferroni', 'simes'; got 'hqic'"):
        granger_tests(effect, causes, maxlag=2, lag_selection="hqic")
    with pytest.raises(ValueError, match="lag_selection must be one of"):
        max_feasible_lag(30, lag_selection=None)


def test_feasibility_applies_to_the_series_tested():
    rng = np.random.default_rng(9)
    effect, cause = rng.normal(size=(2, 44))
    assert max_feasible_lag(44) == 14
    assert max_feasible_lag(44, stationarity="difference") == 13
    assert max_feasible_lag(44, stationarity="adf") == 13
    assert max_feasible_lag(44, lag_selection="aic") == 13
    assert max_feasible_lag(45, stationarity="adf", lag_selection="bic") == 13
    granger_tests(effect, cause, maxlag=14)
    with pytest.raises(ValueError, match=r"maxlag=14 needs at least 45 observations.*"
                                         r"K - 1 = 43 values.*largest feasible lag for K=44 "
                                         r"with these options is 13"):
        granger_tests(effect, cause, maxlag=14, stationarity="adf")
    with pytest.raises(ValueError, match=r"needs at least 45 observations.*"
                                         r"VAR.select_order"):
        granger_tests(effect, cause, maxlag=14, lag_selection="bic")
    # statsmodels refuses that order too.
    with pytest.raises(ValueError, match="maxlags is too large"):
        VAR(np.column_stack([effect, cause])).select_order(14)
    # The largest feasible lag is accepted by statsmodels and by us.
    for K in range(8, 30):
        data = rng.normal(size=(K, 2))
        lag = max_feasible_lag(K, stationarity="difference", lag_selection="aic")
        VAR(np.diff(data, axis=0)).select_order(lag)
        granger_tests(data[:, 0], data[:, 1], maxlag=lag, stationarity="difference",
                      lag_selection="aic")
