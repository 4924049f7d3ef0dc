"""Known values for every metric, to 8 decimals.

The expected numbers were computed by hand-written exact arithmetic (Python ``fractions`` for
means, variances, drawdowns and ratios; 40-digit ``mpmath`` for square roots, moments, the normal
CDF/quantile and Lo's explicit lag sum), independently of the library:

A = [0.01, 0.02, -0.01, 0.03]: mean 0.0125, sample variance 0.000875 / 3, per-period Sharpe
0.0125 / 0.0170782513 = 0.7319250547; downside sqrt(0.0001 / 4) = 0.005 (all four periods);
wealth 1.01, 1.0302, 1.019898, 1.05049494 -> max drawdown -0.01; gains 0.06 / losses 0.01 = 6.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from execution import metrics_normalizer as mn

A = [0.01, 0.02, -0.01, 0.03]
B = [0.01, -0.02, 0.03, 0.0]
C = [0.01, 0.012, 0.015, 0.02, 0.018, 0.03, 0.025, -0.005]
PPY = 252

# (series, {metric: expected}) with metric computed at periods_per_year=252 where relevant
KNOWN = {
    "A": (A, {
        "sharpe": 11.6189500386223, "vol": 0.271108834234519, "ann_return": 3.15,
        "downside": 0.0793725393319377, "sortino": 39.6862696659689, "mdd": -0.01,
        "hit": 0.75, "pf": 6.0, "se": 0.690747683577848, "psr": 0.855339595352712,
        "psr_b": 0.819862732586145, "mintrl": 8.22905310255668, "dsr": 0.797198742746592,
        "lo12": 5.16053836410337,
    }),
    "B": (B, {
        "sharpe": 3.81293345581346, "vol": 0.330454232837166, "ann_return": 1.26,
        "downside": 0.158745078663875, "sortino": 7.93725393319377, "mdd": -0.02,
        "hit": 2 / 3, "pf": 2.0, "se": 0.580887104826823, "psr": 0.660376946559917,
        "psr_b": 0.595354819224122, "mintrl": 48.4724153207748, "dsr": 0.556627538977345,
        "lo12": 1.71590837992816,
    }),
    "C": (C, {
        "sharpe": 23.3501745943029, "vol": 0.1686282894416, "ann_return": 3.9375,
        "downside": 0.0280624304008046, "sortino": 140.312152004023, "mdd": -0.005,
        "hit": 0.875, "pf": 26.0, "se": 0.658147078859452, "psr": 0.987289530893161,
        "psr_b": 0.981374552610845, "mintrl": 4.79156709872778, "dsr": 0.977016605822202,
        "lo12": 5.0608962602972,
    }),
}  # fmt: skip

FUNCS = {
    "sharpe": lambda r: mn.sharpe_ratio(r, periods_per_year=PPY),
    "vol": lambda r: mn.annual_volatility(r, periods_per_year=PPY),
    "ann_return": lambda r: mn.annual_return(r, periods_per_year=PPY),
    "downside": lambda r: mn.downside_deviation(r, periods_per_year=PPY),
    "sortino": lambda r: mn.sortino_ratio(r, periods_per_year=PPY),
    "mdd": mn.max_drawdown,
    "hit": mn.hit_rate,
    "pf": mn.profit_factor,
    "se": mn.sharpe_standard_error,
    "psr": mn.probabilistic_sharpe_ratio,
    "psr_b": lambda r: mn.probabilistic_sharpe_ratio(r, benchmark_sharpe=0.1),
    "mintrl": mn.min_track_record_length,
    "dsr": lambda r: mn.deflated_sharpe_ratio(r, n_trials=10, trials_sharpe_variance=0.01),
    "lo12": lambda r: mn.lo_sharpe_ratio(r, periods_per_year=12),
}

CASES = [(name, metric) for name, (_, table) in KNOWN.items() for metric in table]


@pytest.mark.parametrize(("series", "metric"), CASES)
def test_known_value_1d(series: str, metric: str) -> None:
    returns, table = KNOWN[series]
    got = FUNCS[metric](returns)
    assert isinstance(got, float)
    np.testing.assert_almost_equal(got, table[metric], decimal=8)


@pytest.mark.parametrize("metric", list(FUNCS))
def test_known_values_as_dataframe_columns(metric: str) -> None:
    """All three series side by side (different lengths, NaN-padded) give the same table."""
    frame = pd.DataFrame({name: pd.Series(values) for name, (values, _) in KNOWN.items()})
    got = FUNCS[metric](frame)
    assert isinstance(got, pd.Series)
    assert list(got.index) == ["A", "B", "C"]
    expected = [KNOWN[name][1][metric] for name in ("A", "B", "C")]
    np.testing.assert_almost_equal(got.to_numpy(), expected, decimal=8)


def test_expected_maximum_sharpe_known_value() -> None:
    # sqrt(0.01) * ((1 - g) * Phi^-1(0.9) + g * Phi^-1(1 - 1/(10e))), 40-digit mpmath
    np.testing.assert_almost_equal(mn.expected_maximum_sharpe(10, 0.01), 0.157459830134575, decimal=8)
    assert mn.expected_maximum_sharpe(1, 0.04) == 0.0


def test_rolling_known_values() -> None:
    r = [0.01, 0.03, 0.02, 0.04]
    # window [0.01, 0.03]: mean 0.02, std 0.0141421356 -> 1.41421356; [0.03, 0.02]: 0.025 / 0.00707107
    np.testing.assert_almost_equal(
        mn.rolling_sharpe_ratio(r, window=2, periods_per_year=1),
        [np.nan, np.sqrt(2), 0.025 / np.sqrt(0.00005), 0.03 / np.sqrt(0.0002)],
        decimal=8,
    )
    np.testing.assert_almost_equal(
        mn.rolling_annual_volatility(r, window=3, periods_per_year=4),
        [np.nan, np.nan, 0.02, 0.02],
        decimal=8,
    )
    # Sortino windows of [0.02, -0.01, 0.03]: [0.02,-0.01] mean 0.005, DD sqrt(0.0001/2)
    np.testing.assert_almost_equal(
        mn.rolling_sortino_ratio([0.02, -0.01, 0.03], window=2, periods_per_year=1),
        [np.nan, 0.005 / np.sqrt(0.00005), 0.01 / np.sqrt(0.00005)],
        decimal=8,
    )


def test_rolling_standard_error_known_value() -> None:
    # windows of B: [0.01, -0.02, 0.03] and [-0.02, 0.03, 0.0], mpmath: 0.7321548007500, 0.6966090349354
    got = mn.rolling_sharpe_standard_error(B, window=3, periods_per_year=4)
    np.testing.assert_almost_equal(got, [np.nan, np.nan, 2 * 0.73215480075, 2 * 0.69660903493535], decimal=8)


def test_periods_per_year_known_values() -> None:
    ppy = mn.periods_per_year
    assert ppy("1D") == 365.0
    assert ppy("1h") == 365 * 24
    assert ppy("5m") == 365 * 288
    assert ppy("5min") == 365 * 288
    assert ppy("1D", calendar="equity") == 252.0
    assert ppy("1h", calendar="equity") == 252 * 6.5
    assert ppy("5m", calendar="equity") == 252 * 78  # 6.5 h of 5-minute bars, not 288 a day
    assert ppy("1W") == 365 / 7 and ppy("1w", calendar="equity") == 52.0
    assert ppy("1M") == 12.0 and ppy("ME", calendar="equity") == 12.0
    assert ppy(pd.Timedelta(minutes=15)) == 365 * 96
    idx = pd.date_range("2024-01-01", periods=50, freq="4h", tz="UTC")
    assert ppy(idx) == 365 * 6


def test_factor_score_known_values() -> None:
    m = pd.DataFrame({"sharpe": [1.0, 2.0, 3.0], "max_drawdown": [-0.3, -0.1, -0.2]}, index=["a", "b", "c"])
    # z-scores (ddof=0): sharpe [-1.2247, 0, 1.2247], drawdown [-1.2247, 1.2247, 0]; weights 2:1
    z = np.sqrt(1.5)
    expected = [(-2 * z - z) / 3, (0 + z) / 3, (2 * z + 0) / 3]
    got = mn.factor_score(m, {"sharpe": 2.0, "max_drawdown": 1.0})
    np.testing.assert_almost_equal(got.to_numpy(), expected, decimal=8)
    assert list(got.index) == ["a", "b", "c"]
    ranks = mn.factor_score(m, {"sharpe": 1.0, "max_drawdown": -1.0}, method="rank")
    np.testing.assert_almost_equal(ranks.to_numpy(), [0.0, -0.5, 0.5], decimal=8)
