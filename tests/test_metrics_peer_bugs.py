"""One test per bug class the peer libraries shipped to their users.

Each test feeds the input that broke the peer, derives the correct answer in its docstring and
computes the expectation independently (``statistics``, ``math``, ``scipy.stats``), never from the
library under test. Links name the peer's issue or pull request.
"""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kurtosis, norm, skew

from execution import metrics_normalizer as mn
from execution.trade_returns import trade_returns

# ffn #303's 30-minute returns, verbatim
FFN_303 = [0.001, -0.0005, 0.0007, -0.0002, 0.0004, -0.0001, 0.0003, -0.0006, 0.0008, -0.0003]


def _raw_sharpe(values: list[float]) -> float:
    """Per-period Sharpe from the standard library: mean over the sample (n - 1) deviation."""
    return statistics.fmean(values) / statistics.stdev(values)


# --------------------------------------------------------------------------- annualisation
def test_ffn_303_thirty_minute_bars_are_not_multiplied() -> None:
    """30-minute data: a year holds the day's bars times the days, divided by the bar length.

    https://github.com/pmorissette/ffn/issues/303 : ffn returned ``30 * 252 * 24 * 60 =
    10,886,400`` periods a year for '30min' (it multiplied by the 30 instead of dividing) and
    inflated Sharpe 30x (871.13 instead of 29.04 with its own 252 x 24 h year).

    Correct: a crypto year of 365 days x 24 h has ``365 * 48 = 17,520`` half-hours; an equity year
    of 252 sessions x 6.5 h has ``252 * 13 = 3,276``. Inferred from the 30-minute index of the
    issue, the Sharpe is the raw per-period Sharpe times ``sqrt(17,520)``.
    """
    idx = pd.date_range("2026-01-01", periods=10, freq="30min", tz="UTC")
    returns = pd.Series(FFN_303, index=idx)
    assert mn.periods_per_year(idx) == 17_520.0
    assert mn.periods_per_year("30min") == 17_520.0
    assert mn.periods_per_year("30m", calendar="equity") == 3_276.0
    ppy = mn.periods_per_year(returns.index)
    assert mn.sharpe_ratio(returns, periods_per_year=ppy) == pytest.approx(
        _raw_sharpe(FFN_303) * math.sqrt(17_520), rel=1e-12
    )
    table = mn.normalized_table(returns=returns.to_frame("BTC"))
    assert table.loc[0, "periods_per_year"] == 17_520.0


def test_vectorbt_294_fifteen_minute_us_stocks_use_the_session() -> None:
    """15-minute US equity bars: 26 bars per 6.5-hour session, 252 sessions: 6,552 a year.

    https://github.com/polakowo/vectorbt/issues/294 : ``year_freq / freq`` with a 252-day year of
    24 hours gave 24,192 (``252 * 96``), overstating annualised return and Sharpe (the Sharpe by
    ``sqrt(24192 / 6552) = 1.92``). Session bars from 09:30 to 15:45 on consecutive days have
    a median spacing of 15 minutes (the overnight gap is one spacing of many), so the inferred
    count is the same 6,552.
    """
    assert mn.periods_per_year("15min", calendar="equity") == 6_552.0
    days = pd.bdate_range("2024-03-04", periods=5, tz="America/New_York")
    stamps = [
        d + pd.Timedelta(hours=9, minutes=30) + pd.Timedelta(minutes=15 * i) for d in days for i in range(26)
    ]
    assert mn.periods_per_year(pd.DatetimeIndex(stamps), calendar="equity") == 6_552.0
    # crypto trades around the clock: 365 * 96
    assert mn.periods_per_year("15min") == 35_040.0


def test_quantstats_40_crypto_trades_365_days() -> None:
    """Daily crypto returns annualise with 365 days, daily equity returns with 252 sessions.

    https://github.com/ranaroussi/quantstats/issues/40 : annualisation was hard-coded to 252, so a
    daily crypto Sharpe was understated by ``sqrt(365 / 252) = 1.2035``. The calendar is explicit
    here and the default ('crypto') matches this platform's markets.
    """
    idx = pd.date_range("2024-01-01", periods=14, freq="D", tz="UTC")  # weekends included
    r = [0.01, -0.02, 0.015, 0.003, -0.004, 0.02, 0.0, 0.011, -0.006, 0.002, 0.009, -0.013, 0.004, 0.007]
    assert mn.periods_per_year(idx) == 365.0
    assert mn.periods_per_year("1D", calendar="equity") == 252.0
    table = mn.normalized_table(returns=pd.DataFrame({"BTC": r}, index=idx))
    assert table.loc[0, "sharpe"] == pytest.approx(_raw_sharpe(r) * math.sqrt(365), rel=1e-12)


def test_quantstats_116_weekly_and_monthly_sharpe_use_their_own_year() -> None:
    """Monthly returns annualise with 12, weekly with 52 (equity) or 365 / 7 (crypto).

    https://github.com/ranaroussi/quantstats/issues/116 : monthly and weekly Sharpe came out "much
    too high" because ``sqrt(252)`` was applied to them: ``sqrt(252 / 12) = 4.58`` times too high
    for monthly data. Month-end timestamps are 28 to 31 days apart; their median spacing (31 days)
    must still mean 12 periods a year, not ``365 / 31 = 11.77``.
    """
    monthly = pd.date_range("2023-01-31", periods=12, freq="ME", tz="UTC")
    r = [0.02, -0.01, 0.03, 0.005, -0.02, 0.01, 0.015, -0.005, 0.0, 0.025, -0.015, 0.01]
    for calendar in ("crypto", "equity"):
        assert mn.periods_per_year(monthly, calendar=calendar) == 12.0
    table = mn.normalized_table(returns=pd.DataFrame({"FUND": r}, index=monthly))
    assert table.loc[0, "periods_per_year"] == 12.0
    assert table.loc[0, "sharpe"] == pytest.approx(_raw_sharpe(r) * math.sqrt(12), rel=1e-12)
    weekly = pd.date_range("2024-01-07", periods=20, freq="W", tz="UTC")
    assert mn.periods_per_year(weekly, calendar="equity") == 52.0
    assert mn.periods_per_year(weekly) == pytest.approx(365 / 7)
    quarterly = pd.date_range("2020-03-31", periods=8, freq="QE", tz="UTC")
    assert mn.periods_per_year(quarterly) == 4.0


# --------------------------------------------------------------------------- compounding
def test_nautilus_4141_intraday_returns_compound_into_daily_bins() -> None:
    """Returns of one capital base compound into a day; they do not add.

    https://github.com/nautechsystems/nautilus_trader/issues/4141 (pull request): daily bins
    summed intraday returns, so +5 % then -5 % made a 0 % day. Correct:
    ``1.05 * 0.95 - 1 = -0.0025``. A second day of three 1 % bars is ``1.01**3 - 1 = 0.030301``;
    a day with no bar is NaN (no information), not 0.

    (``trade_returns`` adds the returns of trades closed in a period on purpose: each trade is its
    own equal slice of capital, concurrent, not sequential; its docstring says so.)
    """
    idx = pd.to_datetime(
        [
            "2024-01-01 10:00",
            "2024-01-01 15:00",
            "2024-01-02 01:00",
            "2024-01-02 02:00",
            "2024-01-02 03:00",
            "2024-01-04 12:00",
        ],
        utc=True,
    )
    r = pd.DataFrame(
        {"A": [0.05, -0.05, 0.01, 0.01, 0.01, 0.02], "B": [0.0, np.nan, 0.0, 0.0, 0.0, -0.5]}, index=idx
    )
    daily = mn.resample_returns(r, freq="1D")
    assert list(daily.index) == list(pd.date_range("2024-01-01", periods=4, freq="D", tz="UTC"))
    np.testing.assert_allclose(daily["A"], [1.05 * 0.95 - 1, 1.01**3 - 1, np.nan, 0.02], rtol=1e-13)
    np.testing.assert_allclose(daily["B"], [0.0, 0.0, np.nan, -0.5], rtol=1e-15)
    assert mn.resample_returns(r["A"], freq="1D").iloc[0] == pytest.approx(-0.0025, rel=1e-14)


# --------------------------------------------------------------------------- risk-free rate
def test_empyrical_108_risk_free_unit_is_explicit() -> None:
    """An annual rate passed where a per-period one is expected flips the sign of the Sharpe.

    https://github.com/quantopian/empyrical/issues/108 : ``sharpe_ratio(ret, 0.01)`` on 2017 SPX
    returns gave -34.99 instead of 2.70, because 0.01 was subtracted from every DAILY return. The
    fix was a docstring. Here a non-zero rate without ``risk_free_unit`` raises, and an annual 1 %
    is de-compounded to ``1.01 ** (1/252) - 1 = 3.9487e-5`` per day, so the Sharpe moves only a
    little: ``mean(r - rf_d) / std(r) * sqrt(252)``.
    """
    r = [
        0.0085,
        0.0057,
        -0.0008,
        0.0035,
        -0.0035,
        0.0021,
        0.0012,
        -0.0019,
        0.0044,
        0.0003,
    ]  # the first days
    with pytest.raises(
        ValueError, match=r"'risk_free_unit' parameter of sharpe_ratio must be one of \['period', 'annual'\]"
    ):
        mn.sharpe_ratio(r, periods_per_year=252, risk_free=0.01)
    rf_daily = 1.01 ** (1 / 252) - 1
    assert rf_daily == pytest.approx(3.9487e-5, rel=1e-4)
    want = (statistics.fmean(r) - rf_daily) / statistics.stdev(r) * math.sqrt(252)
    got = mn.sharpe_ratio(r, periods_per_year=252, risk_free=0.01, risk_free_unit="annual")
    assert got == pytest.approx(want, rel=1e-12)
    assert mn.sharpe_ratio(
        r, periods_per_year=252, risk_free=rf_daily, risk_free_unit="period"
    ) == pytest.approx(want, rel=1e-12)
    roll = mn.rolling_sharpe_ratio(
        r, window=10, periods_per_year=252, risk_free=0.01, risk_free_unit="annual"
    )
    assert roll[-1] == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match="'risk_free_unit' parameter of rolling_sharpe_ratio"):
        mn.rolling_sharpe_ratio(r, window=5, periods_per_year=252, risk_free=0.01)


def test_quantstats_71_risk_free_in_percent_is_refused_and_rf_moves_sharpe() -> None:
    """A rate of 10.0 is 10 % typed as a percentage; the Sharpe must respond to the rate.

    https://github.com/ranaroussi/quantstats/issues/71 : ``sharpe(stock, rf=10.0)``, ``rf=100.0``
    and ``rf=1000.0`` printed the same Sharpe for one user and -12 to -36 for the maintainer
    (related: https://github.com/ranaroussi/quantstats/issues/18 , where rf=0.065 made CAGR
    -100 %). Rates are fractions in (-1, 1) here: 10.0 raises. With the annual unit the Sharpe
    falls strictly as the rate rises, by exactly ``rf_per_period * sqrt(252) / std(r)``.
    """
    r = [0.004, -0.002, 0.006, 0.001, -0.003, 0.005, 0.002, -0.001]
    for bad in (10.0, 100.0, 1000.0, -1.0):
        with pytest.raises(
            ValueError, match=r"must be a rate as a fraction in \(-1, 1\), e\.g\. 0\.05 for 5 %\. Got"
        ):
            mn.sharpe_ratio(r, periods_per_year=252, risk_free=bad, risk_free_unit="annual")
    base = mn.sharpe_ratio(r, periods_per_year=252)
    sd = statistics.stdev(r)
    for annual in (0.02, 0.05, 0.10):
        rf = (1 + annual) ** (1 / 252) - 1
        got = mn.sharpe_ratio(r, periods_per_year=252, risk_free=annual, risk_free_unit="annual")
        assert got == pytest.approx(base - rf * math.sqrt(252) / sd, rel=1e-12)
        assert got < base


def test_ffn_257_series_risk_free_equals_the_same_float() -> None:
    """A per-period risk-free Series equal to a constant gives the Sharpe of that constant.

    https://github.com/pmorissette/ffn/issues/257 : with the issue's 13 monthly prices, a 2 %
    annual rate as a float and as a Series of ``1.02 ** (1/12) - 1`` per month gave different
    Sharpes (the Series was read as prices and turned into returns of ~0). Here both are rates
    with a named unit; ``std(r - c) = std(r)``, so both give
    ``(mean(r) - c) / std(r) * sqrt(12)``. A misaligned Series raises instead of aligning silently.
    """
    prices = [100, 101.5, 102.9, 103.6, 104.6, 105.8, 105.4, 105.7, 106.6, 107.5, 108.1, 108.7, 109.9]
    idx = pd.date_range("2024-01-31", periods=12, freq="ME", tz="UTC")
    r = pd.Series([b / a - 1 for a, b in itertools.pairwise(prices)], index=idx)
    monthly_rf = 1.02 ** (1 / 12) - 1
    want = (statistics.fmean(r) - monthly_rf) / statistics.stdev(r) * math.sqrt(12)
    from_float = mn.sharpe_ratio(r, periods_per_year=12, risk_free=0.02, risk_free_unit="annual")
    rf_series = pd.Series(monthly_rf, index=idx)
    from_series = mn.sharpe_ratio(r, periods_per_year=12, risk_free=rf_series, risk_free_unit="period")
    assert from_float == pytest.approx(want, rel=1e-12)
    assert from_series == pytest.approx(want, rel=1e-12)
    annual_series = mn.sharpe_ratio(
        r, periods_per_year=12, risk_free=pd.Series(0.02, index=idx), risk_free_unit="annual"
    )
    assert annual_series == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match="must be a Series on the same index as 'returns'"):
        mn.sharpe_ratio(
            r, periods_per_year=12, risk_free=rf_series.shift(1, freq="D"), risk_free_unit="period"
        )
    with pytest.raises(ValueError, match=r"must have one rate per period \(12\)\. Got 13 instead"):
        mn.sharpe_ratio(
            r.to_numpy(), periods_per_year=12, risk_free=np.full(13, monthly_rf), risk_free_unit="period"
        )


# --------------------------------------------------------------------------- timezones
def test_quantstats_226_timezones_aware_naive_and_mixed() -> None:
    """New York timestamps, the same instants in UTC and a mix of both give one answer.

    https://github.com/ranaroussi/quantstats/issues/226 : a tz-aware America/New_York index
    compared with a naive datetime crashed the report ("Cannot compare tz-naive and tz-aware").
    Here a tz-aware index of any zone is converted to UTC (the table's start and end are UTC);
    an index mixing zones (two sources concatenated: pandas keeps it as objects) is the same
    instants; a mix of naive and aware timestamps is ambiguous and raises naming the position.
    """
    utc = pd.date_range("2024-03-01 14:30", periods=30, freq="D", tz="UTC")
    rng = np.random.default_rng(226)
    values = rng.normal(0.001, 0.01, 30)
    ny = utc.tz_convert("America/New_York")
    base = mn.normalized_table(returns=pd.DataFrame({"A": values}, index=utc), lookback_days=10)
    for index in (ny, pd.Index(list(ny[:15]) + list(utc[15:]), dtype=object)):
        got = mn.normalized_table(returns=pd.DataFrame({"A": values}, index=index), lookback_days=10)
        pd.testing.assert_frame_equal(got, base)
    assert base.loc[0, "end"] == pd.Timestamp("2024-03-30 14:30", tz="UTC")
    assert base.loc[0, "n_obs"] == 10
    mixed = pd.Index(list(ny[:15]) + list(utc.tz_localize(None)[15:]), dtype=object)
    with pytest.raises(
        ValueError, match="mixes timezone-aware and timezone-naive timestamps \\(position 15 is naive"
    ):
        mn.normalized_table(returns=pd.DataFrame({"A": values}, index=mixed))
    with pytest.raises(ValueError, match="resample_returns must be timezone-aware"):
        mn.resample_returns(pd.Series(values, index=utc.tz_localize(None)), freq="1D")
    # daily bins are UTC days whatever zone the stamps arrive in
    same = mn.resample_returns(pd.Series(values, index=ny), freq="1D")
    pd.testing.assert_series_equal(same, mn.resample_returns(pd.Series(values, index=utc), freq="1D"))


# --------------------------------------------------------------------------- degenerate series
def test_ffn_346_constant_series_has_no_finite_sharpe() -> None:
    """A constant series has zero dispersion: its Sharpe is +inf (positive mean), never 7.3e16.

    https://github.com/pmorissette/ffn/issues/346 (pull request): 250 returns of 0.001 have a
    pandas sample standard deviation of 2.17e-19 (rounding residue), so ffn reported a Sharpe of
    7.306e16. The dispersion here is exactly zero, for any dtype and scale, next to a varying
    column that keeps its correct value, and also when the constant arises as ``r - rf`` with a
    per-period risk-free Series. (This library reports +inf / -inf for a positive / negative
    constant mean and NaN for zero; ffn chose NaN for all three. Either way, never a number a
    ranking would put on top.)
    """
    const = np.full(250, 0.001)
    assert mn.sharpe_ratio(const, periods_per_year=252) == np.inf
    assert mn.sharpe_ratio(-const, periods_per_year=252) == -np.inf
    assert np.isnan(mn.sharpe_ratio(np.zeros(250), periods_per_year=252))
    for scale in (1e-12, 1.0, 1e6):
        assert mn.sharpe_ratio(const * scale, periods_per_year=252) == np.inf
    rng = np.random.default_rng(346)
    vary = rng.normal(0.001, 0.01, 250)
    frame = pd.DataFrame({"flat": pd.array(const, dtype="Float64"), "vary": vary})
    got = mn.sharpe_ratio(frame, periods_per_year=252)
    assert got["flat"] == np.inf
    assert got["vary"] == pytest.approx(_raw_sharpe(list(vary)) * math.sqrt(252), rel=1e-12)
    rf = pd.Series(rng.uniform(0.0, 1e-4, 250))
    excess_const = mn.sharpe_ratio(0.001 + rf, periods_per_year=252, risk_free=rf, risk_free_unit="period")
    assert excess_const == np.inf
    for f in (mn.probabilistic_sharpe_ratio, mn.sharpe_standard_error, mn.min_track_record_length):
        assert np.isnan(f(const))  # skewness and kurtosis of a constant are undefined


def test_empyrical_40_nans_are_skipped_not_zero_filled() -> None:
    """A missing return is missing: it is skipped, not replaced by a 0 % period.

    https://github.com/quantopian/empyrical/issues/40 : empyrical replaced NaN by 0 (``cum_returns``
    and everything built on it), which "might not alert us to certain data errors". Zero-filling
    moves both the mean and the deviation: for ``[0.01, NaN, 0.03, -0.01, 0.02]`` the Sharpe of the
    four present values is ``0.0125 / 0.017078 = 0.7319`` per period, while the zero-filled five
    give ``0.01 / 0.015811 = 0.6325``. The gap is also counted (``n_missing``) in the table.
    """
    r = [0.01, np.nan, 0.03, -0.01, 0.02]
    present = [0.01, 0.03, -0.01, 0.02]
    assert mn.sharpe_ratio(r, periods_per_year=1) == pytest.approx(_raw_sharpe(present), rel=1e-12)
    assert _raw_sharpe(present) == pytest.approx(0.7319250547, rel=1e-9)
    assert _raw_sharpe([0.01, 0.0, 0.03, -0.01, 0.02]) == pytest.approx(0.6324555320, rel=1e-9)
    table = mn.normalized_table(returns=pd.DataFrame({"A": r}), periods_per_year=1)
    assert (table.loc[0, "n_obs"], table.loc[0, "n_missing"]) == (4, 1)


def test_ffn_327_nan_padding_does_not_move_dsr() -> None:
    """DSR counts the observations it uses: NaN padding anywhere changes nothing.

    https://github.com/pmorissette/ffn/issues/327 (pull request): a seeded 250-day series had DSR
    0.9062; adding 250 NaNs (leading, trailing or internal) gave 0.9689, because ``len(returns)``
    (500) entered ``sqrt(n - 1)`` while the moments skipped the NaNs. Expected value, computed
    with scipy from the 250 present values: ``Phi((SR - SR0) * sqrt(n - 1) / sqrt(1 - g3 SR +
    (g4 - 1) / 4 SR**2))`` with ``SR0`` the expected maximum Sharpe of the trials.
    """
    rng = np.random.default_rng(327)
    r = rng.normal(0.0008, 0.01, 250)
    n_trials, var = 10, 0.002
    sr = r.mean() / r.std(ddof=1)
    g3, g4 = skew(r), kurtosis(r, fisher=False)
    gamma = 0.5772156649015329
    sr0 = math.sqrt(var) * (
        (1 - gamma) * norm.ppf(1 - 1 / n_trials) + gamma * norm.ppf(1 - 1 / (n_trials * math.e))
    )
    want = norm.cdf((sr - sr0) * math.sqrt(249) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2))
    pad = np.full(250, np.nan)
    internal = np.full(500, np.nan)
    internal[::2] = r
    for padded in (r, np.concatenate([pad, r]), np.concatenate([r, pad]), internal):
        got = mn.deflated_sharpe_ratio(padded, n_trials=n_trials, trials_sharpe_variance=var)
        assert got == pytest.approx(want, rel=1e-10)
        assert mn.probabilistic_sharpe_ratio(padded) == pytest.approx(
            mn.probabilistic_sharpe_ratio(r), rel=1e-12
        )


# --------------------------------------------------------------------------- silent data loss
def test_alphalens_390_every_skipped_row_is_counted() -> None:
    """Nothing is dropped without a count, and bad rows raise instead of vanishing.

    https://github.com/quantopian/alphalens/issues/390 : "Dropped 45.5% entries from factor data"
    (the loss surfaced only when it crossed ``max_loss``). Here every period a metric skips is
    reported per column: ``n_obs`` present values used and ``n_missing`` NaN gaps between the
    column's first and last value; leading and trailing NaN (before a listing, after a delisting)
    are outside its span, so ``n_obs + n_missing = last - first + 1``. A trade with a missing PnL
    is not dropped from the returns either: it raises, naming the row and field.
    """
    a = [np.nan, np.nan, 0.01, np.nan, 0.02, np.nan, np.nan, -0.01, 0.0, np.nan]  # span rows 2..8
    b = [0.01, 0.02, -0.01, 0.0, 0.01, 0.02, 0.03, -0.02, 0.01, 0.0]
    idx = pd.date_range("2024-01-01", periods=10, freq="D", tz="UTC")
    table = mn.normalized_table(returns=pd.DataFrame({"A": a, "B": b}, index=idx))
    assert table[["n_obs", "n_missing"]].to_numpy().tolist() == [[4, 3], [10, 0]]
    assert table.loc[0, "start"] == idx[2] and table.loc[0, "end"] == idx[8]
    trades = pd.DataFrame(
        {
            "symbol": ["BTC", "BTC", "ETH"],
            "closed_at": pd.to_datetime(
                ["2024-01-01 10:00", "2024-01-02 10:00", "2024-01-02 11:00"], utc=True
            ),
            "pnl_usd": [10.0, np.nan, 3.0],
            "size_usd": [1000.0, 1000.0, 300.0],
        }
    )
    with pytest.raises(ValueError, match=r"field 'pnl_usd' must be finite; row 1 has nan"):
        trade_returns(trades)
