"""Invariances (hypothesis), input-shape agreement, edge cases and error messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from execution import metrics_normalizer as mn

# returns on a 1e-6 grid in [-0.5, 0.5]: realistic, and no subnormals that rescaling would flush to 0
RETURN = st.integers(min_value=-500_000, max_value=500_000).map(lambda i: i / 1e6)
returns_1d = hnp.arrays(
    np.float64,
    st.integers(min_value=5, max_value=60),
    elements=RETURN,
).filter(lambda a: np.ptp(a) > 1e-6)
returns_2d = hnp.arrays(
    np.float64,
    st.tuples(st.integers(min_value=5, max_value=40), st.integers(min_value=2, max_value=5)),
    elements=RETURN,
).filter(lambda a: bool((np.ptp(a, axis=0) > 1e-6).all()))
FAST = settings(max_examples=60, deadline=None)


@FAST
@given(returns_1d, RETURN)
def test_sortino_unchanged_when_returns_and_target_shift_together(r: np.ndarray, shift: float) -> None:
    target = 0.0000015  # half a grid step: no return sits on the target, before or after shifting
    base = mn.sortino_ratio(r, periods_per_year=252, target=target)
    moved = mn.sortino_ratio(r + shift, periods_per_year=252, target=target + shift)
    down = mn.downside_deviation(r, periods_per_year=252, target=target)
    moved_down = mn.downside_deviation(r + shift, periods_per_year=252, target=target + shift)
    assert moved_down == pytest.approx(down, rel=1e-6, abs=1e-12)
    if np.isfinite(base):
        assert moved == pytest.approx(base, rel=1e-6, abs=1e-9)
    else:  # nothing below target in either case
        assert base == moved == np.inf


@FAST
@given(returns_1d, st.floats(min_value=1e-3, max_value=1e3))
def test_sharpe_and_lo_unchanged_by_positive_scaling(r: np.ndarray, scale: float) -> None:
    for f in (
        lambda x: mn.sharpe_ratio(x, periods_per_year=365),
        lambda x: mn.lo_sharpe_ratio(x, periods_per_year=365),
        mn.probabilistic_sharpe_ratio,
        mn.sharpe_standard_error,
    ):
        assert f(r * scale) == pytest.approx(f(r), rel=1e-7, abs=1e-12)
    roll = mn.rolling_sharpe_ratio(r, window=5, periods_per_year=365)
    np.testing.assert_allclose(
        mn.rolling_sharpe_ratio(r * scale, window=5, periods_per_year=365), roll, rtol=1e-6, atol=1e-12
    )  # atol: a window whose mean cancels to 0.0 at one scale gives 8e-16 at another


@FAST
@given(returns_2d, st.randoms(use_true_random=False))
def test_column_order_does_not_matter(x: np.ndarray, rnd) -> None:  # type: ignore[no-untyped-def]
    perm = list(range(x.shape[1]))
    rnd.shuffle(perm)
    for f in (
        lambda a: mn.sharpe_ratio(a, periods_per_year=252),
        lambda a: mn.sortino_ratio(a, periods_per_year=252),
        mn.max_drawdown,
        mn.probabilistic_sharpe_ratio,
        lambda a: mn.lo_sharpe_ratio(a, periods_per_year=252),
    ):
        # equal up to summation-order rounding (numpy may group SIMD lanes differently)
        np.testing.assert_allclose(f(x[:, perm]), f(x)[perm], rtol=1e-12, atol=1e-15)
    roll = mn.rolling_sharpe_ratio(x, window=4, periods_per_year=252)
    np.testing.assert_allclose(
        mn.rolling_sharpe_ratio(x[:, perm], window=4, periods_per_year=252),
        roll[:, perm],
        rtol=1e-12,
        atol=1e-15,
    )


@FAST
@given(returns_1d)
def test_ndarray_series_dataframe_agree(r: np.ndarray) -> None:
    idx = pd.date_range("2024-01-01", periods=len(r), freq="D", tz="UTC")
    s = pd.Series(r, index=idx, name="BTC")
    df = pd.DataFrame({"BTC": r, "ETH": r[::-1]}, index=idx)
    two_d = np.column_stack([r, r[::-1]])
    for f in (
        lambda a: mn.sharpe_ratio(a, periods_per_year=365),
        lambda a: mn.sortino_ratio(a, periods_per_year=365),
        lambda a: mn.annual_volatility(a, periods_per_year=365),
        mn.max_drawdown,
        mn.hit_rate,
        mn.profit_factor,
        mn.sharpe_standard_error,
        mn.probabilistic_sharpe_ratio,
        mn.min_track_record_length,
    ):
        a, b, c, d = f(r), f(s), f(df), f(two_d)
        assert isinstance(a, float) and isinstance(b, float)
        assert isinstance(c, pd.Series) and list(c.index) == ["BTC", "ETH"]
        assert isinstance(d, np.ndarray) and d.shape == (2,)
        assert a == b  # same values, same code path
        # 1-D and 2-D reductions may sum in a different order: equal up to rounding. The absolute
        # term matters when a mean nearly cancels (hypothesis found a Sharpe of -0.0023 whose mean
        # is 8.6e-6 of returns of size 0.1-0.4: the orders then differ by ~3e-15 absolute).
        np.testing.assert_allclose([c["BTC"], d[0]], [a, a], rtol=1e-12, atol=1e-13)
    roll = mn.rolling_sortino_ratio(r, window=3, periods_per_year=365)
    roll_s = mn.rolling_sortino_ratio(s, window=3, periods_per_year=365)
    roll_df = mn.rolling_sortino_ratio(df, window=3, periods_per_year=365)
    assert isinstance(roll, np.ndarray) and roll.shape == r.shape
    assert isinstance(roll_s, pd.Series) and roll_s.index.equals(idx) and roll_s.name == "BTC"
    np.testing.assert_array_equal(roll, roll_s.to_numpy())
    np.testing.assert_allclose(roll_df["BTC"].to_numpy(), roll, rtol=1e-12, atol=1e-15)


def test_nan_is_skipped_per_column() -> None:
    r = np.array([0.01, np.nan, 0.02, -0.01, np.nan, 0.03])
    clean = [0.01, 0.02, -0.01, 0.03]
    assert mn.sharpe_ratio(r, periods_per_year=252) == pytest.approx(
        mn.sharpe_ratio(clean, periods_per_year=252)
    )
    assert mn.sortino_ratio(r, periods_per_year=252) == pytest.approx(
        mn.sortino_ratio(clean, periods_per_year=252)
    )
    assert mn.max_drawdown(r) == pytest.approx(mn.max_drawdown(clean))
    assert mn.probabilistic_sharpe_ratio(r) == pytest.approx(mn.probabilistic_sharpe_ratio(clean))
    assert np.isnan(mn.sharpe_ratio([np.nan, np.nan], periods_per_year=252))
    assert np.isnan(mn.max_drawdown([np.nan, np.nan]))


# --------------------------------------------------------------------------- edge cases
@pytest.mark.parametrize(("value", "expected"), [(0.01, np.inf), (-0.01, -np.inf), (0.0, np.nan)])
def test_constant_series_give_inf_or_nan_never_huge_finite(value: float, expected: float) -> None:
    r = np.full(50, value)
    # 0.1 + 0.2 style values whose mean is not exactly representable must still be "constant"
    odd = np.full(37, 0.1 + 0.2) * np.sign(value) if value else r
    for x in (r, odd):
        got = mn.sharpe_ratio(x, periods_per_year=252)
        assert got == expected or (np.isnan(expected) and np.isnan(got))
        roll = mn.rolling_sharpe_ratio(x, window=10, periods_per_year=252)[9:]
        assert np.all(roll == expected) or (np.isnan(expected) and np.isnan(roll).all())
    assert mn.annual_volatility(r, periods_per_year=252) == 0.0
    assert np.isnan(mn.sharpe_standard_error(r))
    assert np.isnan(mn.probabilistic_sharpe_ratio(r))
    assert np.isnan(mn.min_track_record_length(r))
    assert np.isnan(mn.rolling_sharpe_standard_error(r, window=10, periods_per_year=252)).all()


def test_constant_positive_series_sortino_is_inf() -> None:
    assert mn.sortino_ratio(np.full(10, 0.01), periods_per_year=252) == np.inf
    assert np.isnan(mn.sortino_ratio(np.zeros(10), periods_per_year=252))
    roll = mn.rolling_sortino_ratio(np.full(10, 0.01), window=3, periods_per_year=252)
    assert np.isnan(roll[:2]).all() and (roll[2:] == np.inf).all()


def test_constant_window_inside_a_level_shift_is_detected() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(1000.0, 1.0, 300)
    x[100:200] = 5.0
    roll = mn.rolling_sharpe_ratio(x, window=20, periods_per_year=1)
    assert (roll[119:200] == np.inf).all()


@pytest.mark.parametrize("n", [0, 1])
def test_too_short_series_give_nan(n: int) -> None:
    r = np.full(n, 0.01)
    assert np.isnan(mn.sharpe_ratio(r, periods_per_year=252))
    assert np.isnan(mn.sortino_ratio(r, periods_per_year=252))
    assert np.isnan(mn.annual_volatility(r, periods_per_year=252))
    assert np.isnan(mn.sharpe_standard_error(r))
    assert np.isnan(mn.probabilistic_sharpe_ratio(r))
    assert np.isnan(mn.lo_sharpe_ratio(r, periods_per_year=252))
    assert mn.rolling_sharpe_ratio(r, window=5, periods_per_year=252).shape == (n,)
    frame = pd.DataFrame({"a": r, "b": r})
    assert mn.sharpe_ratio(frame, periods_per_year=252).isna().all()


def test_rolling_shorter_than_window_is_all_nan() -> None:
    out = mn.rolling_sharpe_ratio([0.01, 0.02, -0.01], window=5, periods_per_year=252)
    assert out.shape == (3,) and np.isnan(out).all()


def test_profit_factor_and_hit_rate_edge_cases() -> None:
    assert mn.profit_factor([0.01, 0.0, 0.02]) == np.inf  # gains, no losses
    assert mn.profit_factor([0.01]) == np.inf
    assert mn.profit_factor([-0.01, 0.0]) == 0.0
    assert np.isnan(mn.profit_factor([0.0, 0.0]))
    assert np.isnan(mn.hit_rate([0.0, np.nan]))
    assert mn.max_drawdown([0.01, 0.02]) == 0.0


def test_mintrl_is_inf_when_sharpe_below_benchmark() -> None:
    r = [0.01, -0.02, -0.03, 0.005, -0.01]
    assert mn.min_track_record_length(r) == np.inf
    assert mn.min_track_record_length(r, benchmark_sharpe=-5.0) > 1.0


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: mn.rolling_sharpe_ratio([0.1, 0.2], window=0, periods_per_year=252),
            "The 'window' parameter of rolling_sharpe_ratio must be an int >= 2. Got 0 instead.",
        ),
        (
            lambda: mn.rolling_sortino_ratio([0.1, 0.2], window=1, periods_per_year=252),
            "The 'window' parameter of rolling_sortino_ratio must be an int >= 2. Got 1 instead.",
        ),
        (
            lambda: mn.rolling_annual_volatility([0.1], window=2.5, periods_per_year=252),
            "The 'window' parameter of rolling_annual_volatility must be an int >= 2. Got 2.5 instead.",
        ),
        (
            lambda: mn.sharpe_ratio([0.1, 0.2], periods_per_year=0),
            "The 'periods_per_year' parameter of sharpe_ratio must be a finite number > 0. Got 0 instead.",
        ),
        (
            lambda: mn.sortino_ratio([0.1, 0.2], periods_per_year=-252),
            "The 'periods_per_year' parameter of sortino_ratio must be a finite number > 0. Got -252 instead.",
        ),
        (
            lambda: mn.sharpe_ratio([0.1, 0.2], periods_per_year="252"),
            "The 'periods_per_year' parameter of sharpe_ratio must be a finite number > 0. Got '252' instead.",
        ),
        (
            lambda: mn.sortino_ratio([0.1, 0.2], periods_per_year=252, target="0"),
            "The 'target' parameter of sortino_ratio must be a finite number. Got '0' instead.",
        ),
        (
            lambda: mn.rolling_sharpe_ratio([0.1, 0.2], window="5", periods_per_year=252),
            "The 'window' parameter of rolling_sharpe_ratio must be an int >= 2. Got '5' instead.",
        ),
        (
            lambda: mn.sharpe_ratio("0.1", periods_per_year=252),
            "The 'returns' parameter of sharpe_ratio must be a 1-D or 2-D array",
        ),
        (
            lambda: mn.max_drawdown(["a", "b"]),
            "The 'returns' parameter of max_drawdown must hold numbers",
        ),
        (
            lambda: mn.sharpe_ratio(pd.DataFrame({"x": ["a", "b"]}), periods_per_year=1),
            "Column 'x' has dtype",
        ),
        (
            lambda: mn.sharpe_ratio([0.1, np.inf], periods_per_year=252),
            "must not contain infinite values. Got inf at row 1.",
        ),
        (
            lambda: mn.deflated_sharpe_ratio([0.1, 0.2], n_trials=0, trials_sharpe_variance=0.1),
            "The 'n_trials' parameter of expected_maximum_sharpe must be an int >= 1. Got 0 instead.",
        ),
        (
            lambda: mn.deflated_sharpe_ratio([0.1, 0.2], n_trials=3, trials_sharpe_variance=-1.0),
            "The 'trials_sharpe_variance' parameter of expected_maximum_sharpe must be a finite number >= 0.",
        ),
        (
            lambda: mn.min_track_record_length([0.1, 0.2], alpha=1.5),
            "The 'alpha' parameter of min_track_record_length must be a finite number in (0, 1). Got 1.5 instead.",
        ),
        (
            lambda: mn.periods_per_year("1h", calendar="nyse"),
            "The 'calendar' parameter of periods_per_year must be one of ['crypto', 'equity']. Got 'nyse'",
        ),
        (lambda: mn.periods_per_year("5 parsecs"), "unknown unit 'parsecs'"),
        (lambda: mn.periods_per_year(3600), "must be a frequency string, a positive timedelta"),
        (
            lambda: mn.lo_sharpe_ratio([0.1, 0.2, 0.3], periods_per_year=12, method="full"),
            "The 'method' parameter of lo_sharpe_ratio must be one of ['ar1', 'truncated']. Got 'full'",
        ),
        (
            lambda: mn.volatility_scale([0.1, 0.2], target_annual_vol=0, periods_per_year=252),
            "The 'target_annual_vol' parameter of volatility_scale must be a finite number > 0. Got 0",
        ),
        (
            lambda: mn.factor_score(pd.DataFrame({"a": [1.0]}), {"b": 1.0}),
            "names column(s) ['b'] that are not in metrics",
        ),
        (
            lambda: mn.rolling_sharpe_ratio(np.zeros((2, 2, 2)), window=2, periods_per_year=1),
            "Got 3 dimensions",
        ),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_parameter(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


def test_bool_is_not_a_number() -> None:
    with pytest.raises(ValueError, match="'periods_per_year' parameter of sharpe_ratio"):
        mn.sharpe_ratio([0.1, 0.2, 0.3], periods_per_year=True)
    with pytest.raises(ValueError, match="'window' parameter"):
        mn.rolling_sharpe_ratio([0.1, 0.2, 0.3], window=True, periods_per_year=1)
