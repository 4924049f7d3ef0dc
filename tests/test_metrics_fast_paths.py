"""DataFrame and Series inputs take the array path: no per-column Python work, same numbers.

Also the float edge (issue 22 item 12): returns near 1e308 give no warnings and correct ratios.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution import metrics_normalizer as mn

PPY = 252
W = 5

FULL: dict[str, Callable[[Any], Any]] = {
    "sharpe": lambda r: mn.sharpe_ratio(r, periods_per_year=PPY),
    "sharpe_rf": lambda r: mn.sharpe_ratio(
        r, periods_per_year=PPY, risk_free=0.0001, risk_free_unit="period"
    ),
    "sortino": lambda r: mn.sortino_ratio(r, periods_per_year=PPY),
    "sortino_target": lambda r: mn.sortino_ratio(r, periods_per_year=PPY, target=0.0002),
    "vol": lambda r: mn.annual_volatility(r, periods_per_year=PPY),
    "ann_return": lambda r: mn.annual_return(r, periods_per_year=PPY),
    "downside": lambda r: mn.downside_deviation(r, periods_per_year=PPY),
    "max_drawdown": mn.max_drawdown,
    "hit_rate": mn.hit_rate,
    "profit_factor": mn.profit_factor,
    "sharpe_se": mn.sharpe_standard_error,
    "psr": mn.probabilistic_sharpe_ratio,
    "dsr": lambda r: mn.deflated_sharpe_ratio(r, n_trials=5, trials_sharpe_variance=0.01),
    "min_trl": mn.min_track_record_length,
    "lo": lambda r: mn.lo_sharpe_ratio(r, periods_per_year=PPY),
}
ROLLING: dict[str, Callable[[Any], Any]] = {
    "rolling_sharpe": lambda r: mn.rolling_sharpe_ratio(r, window=W, periods_per_year=PPY),
    "rolling_sortino": lambda r: mn.rolling_sortino_ratio(r, window=W, periods_per_year=PPY),
    "rolling_vol": lambda r: mn.rolling_annual_volatility(r, window=W, periods_per_year=PPY),
    "rolling_se": lambda r: mn.rolling_sharpe_standard_error(r, window=W, periods_per_year=PPY),
    "vol_scale": lambda r: mn.volatility_scale(r, target_annual_vol=0.1, periods_per_year=PPY),
}
SCALE_FREE = ("sharpe", "sortino", "hit_rate", "profit_factor", "sharpe_se", "psr", "dsr", "min_trl", "lo")


def _frame(n_rows: int, n_cols: int, seed: int = 0, nan: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0005, 0.02, (n_rows, n_cols))
    if nan:
        x[rng.random(x.shape) < 0.05] = np.nan
    return pd.DataFrame(x, columns=[f"S{i}" for i in range(n_cols)])


class _Counter:
    def __init__(self) -> None:
        self.calls = 0


@pytest.mark.parametrize("nan", [False, True])
def test_no_per_column_python_work_on_10000_columns(monkeypatch: pytest.MonkeyPatch, nan: bool) -> None:
    """Every metric on a 10,000-column DataFrame makes the same number of pandas calls as on 10 columns.

    The issue measured 500 ``DataFrame.__getitem__`` calls per Sharpe on a 500-column frame (a dtype
    check per column). Counting calls (not wall time) makes the test immune to machine load:
    ``DataFrame.__getitem__``, ``Series.__getitem__`` and ``is_numeric_dtype`` are wrapped with
    counters, and each metric must make exactly as many calls on 10,000 columns as on 10.
    """
    getitem = _Counter()
    dtype_checks = _Counter()
    frame_getitem, series_getitem = pd.DataFrame.__getitem__, pd.Series.__getitem__
    is_numeric = pd.api.types.is_numeric_dtype

    def count_frame(self: pd.DataFrame, key: Any) -> Any:
        getitem.calls += 1
        return frame_getitem(self, key)

    def count_series(self: pd.Series, key: Any) -> Any:
        getitem.calls += 1
        return series_getitem(self, key)

    def count_dtype(arr_or_dtype: Any) -> bool:
        dtype_checks.calls += 1
        return is_numeric(arr_or_dtype)

    monkeypatch.setattr(pd.DataFrame, "__getitem__", count_frame)
    monkeypatch.setattr(pd.Series, "__getitem__", count_series)
    monkeypatch.setattr(pd.api.types, "is_numeric_dtype", count_dtype)
    small, big = _frame(30, 10, nan=nan), _frame(30, 10_000, nan=nan)
    funcs = {**FULL, **ROLLING, "table": lambda r: mn.normalized_table(returns=r, periods_per_year=PPY)}
    for name, f in funcs.items():
        counts = []
        for frame in (small, big):
            getitem.calls = dtype_checks.calls = 0
            f(frame)
            counts.append((getitem.calls, dtype_checks.calls))
        assert counts[0] == counts[1], (
            f"{name}: (getitem, dtype checks) {counts[0]} on 10 columns, {counts[1]} on 10,000"
        )
        assert counts[1][1] <= 2, f"{name}: {counts[1][1]} dtype checks for one float64 dtype"


@pytest.mark.parametrize("nan", [False, True])
def test_dataframe_series_and_array_paths_agree(nan: bool) -> None:
    """The same numbers whatever container holds them (a frame's values are column-major)."""
    df = _frame(80, 7, seed=3, nan=nan)
    x = df.to_numpy().copy(order="C")
    for name, f in {**FULL, **ROLLING}.items():
        got_df, got_x = np.asarray(f(df), dtype=float), np.asarray(f(x), dtype=float)
        np.testing.assert_allclose(got_df, got_x, rtol=1e-13, atol=1e-15, err_msg=name)
        for j in (0, 4):
            got_s = np.asarray(f(df[f"S{j}"]), dtype=float)
            want = got_x[j] if got_x.ndim == 1 else got_x[:, j]
            np.testing.assert_allclose(got_s, want, rtol=1e-13, atol=1e-15, err_msg=name)


def test_inputs_are_not_modified() -> None:
    """A float64 frame's values are used as a view, so no metric may write into them."""
    df = _frame(40, 3, nan=True)
    before = df.copy()
    arr = df.to_numpy().copy()
    arr_before = arr.copy()
    for f in {**FULL, **ROLLING}.values():
        f(df)
        f(arr)
    pd.testing.assert_frame_equal(df, before)
    np.testing.assert_array_equal(arr, arr_before)


def test_nullable_and_integer_columns() -> None:
    """Nullable Float64 (pd.NA) and int columns are converted once; pd.NA counts as missing."""
    df = pd.DataFrame(
        {
            "a": pd.array([0.01, None, -0.02, 0.03, 0.01], dtype="Float64"),
            "b": np.array([1, -2, 3, 0, 1], dtype=np.int64),
        }
    )
    got = mn.sharpe_ratio(df, periods_per_year=1)
    a = np.array([0.01, -0.02, 0.03, 0.01])
    b = np.array([1.0, -2.0, 3.0, 0.0, 1.0])
    assert got["a"] == pytest.approx(a.mean() / a.std(ddof=1), rel=1e-14)
    assert got["b"] == pytest.approx(b.mean() / b.std(ddof=1), rel=1e-14)


def test_bad_dtype_names_the_column() -> None:
    df = _frame(5, 4)
    df.insert(2, "label", ["x"] * 5)
    with pytest.raises(
        ValueError, match=r"sharpe_ratio must hold numbers\. Column 'label' has dtype (object|str) instead"
    ):
        mn.sharpe_ratio(df, periods_per_year=PPY)


def _two_pass_sharpe(x: np.ndarray) -> np.ndarray:
    """Reference: the textbook two-pass mean and sample standard deviation, per column."""
    mean = x.mean(axis=0)
    std = np.sqrt(((x - mean) ** 2).sum(axis=0) / (x.shape[0] - 1))
    return np.asarray(mean / std * math.sqrt(PPY))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**32 - 1),
    st.sampled_from([0.0, 1e-3, 1.0, 1e3, 1e6]),
)
def test_one_pass_sharpe_matches_two_pass(seed: int, offset_in_sd: float) -> None:
    """The one-pass Sharpe agrees with the two-pass reference to 1e-12 relative.

    ``offset_in_sd`` moves the mean that many standard deviations from zero: up to 4 the one-pass
    formula is used (its cancellation costs at most a factor 17 of rounding); beyond, the columns
    are recomputed with the compensated two-pass algorithm, so the agreement must hold throughout.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.01, (300, 6)) + offset_in_sd * 0.01
    np.testing.assert_allclose(mn.sharpe_ratio(x, periods_per_year=PPY), _two_pass_sharpe(x), rtol=1e-12)
    np.testing.assert_allclose(
        mn.annual_volatility(x, periods_per_year=PPY), x.std(axis=0, ddof=1) * math.sqrt(PPY), rtol=1e-12
    )


# --------------------------------------------------------------------------- the float edge
def test_sortino_near_float_max_is_correct_and_silent() -> None:
    """Issue 22 item 12: ``[1e308, -1e308, 1e308]`` gave Sortino 0.0 and overflow warnings.

    Derivation (target 0, 365 periods a year): mean = 1e308 / 3; the downside deviation over all
    periods is ``sqrt((1e308)**2 / 3) = 1e308 / sqrt(3)``; Sortino = ``(1/3) / (1/sqrt(3)) *
    sqrt(365) = sqrt(365 / 3) = 11.0303...``. Squaring 1e308 overflows to inf, which is why the
    old code returned ``finite / inf = 0``. Sharpe: deviations from the mean are (2, -4, 2) e308 / 3,
    so ``std = sqrt((4 + 16 + 4) / 9 / 2) e308 = sqrt(4/3) e308`` and Sharpe =
    ``(1/3) / sqrt(4/3) * sqrt(365) = sqrt(365 / 12)``.
    """
    r = np.array([1e308, -1e308, 1e308])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mn.sortino_ratio(r, periods_per_year=365) == pytest.approx(math.sqrt(365 / 3), rel=1e-14)
        assert mn.sharpe_ratio(r, periods_per_year=365) == pytest.approx(math.sqrt(365 / 12), rel=1e-14)
        # profit factor (1e308 + 1e308) / 1e308 = 2, hit rate 2 / 3
        assert mn.profit_factor(r) == pytest.approx(2.0, rel=1e-15)
        assert mn.hit_rate(r) == pytest.approx(2 / 3)
        # the volatility itself is sqrt(4/3) e308 * sqrt(365): beyond float64, honestly inf
        assert mn.annual_volatility(r, periods_per_year=365) == np.inf


@pytest.mark.parametrize("exponent", [-1000, -600, -200, 200, 600, 1000])
def test_scale_free_metrics_unchanged_by_extreme_powers_of_two(exponent: int) -> None:
    """Sharpe, Sortino, PSR, ... are scale-free: multiplying by 2**k (exact) changes nothing, silently.

    Without rescaling, squares overflow above ~1e154 and fourth powers above ~1e77 (or underflow
    below ~1e-77), which gave NaN, 0.0 and 3-11 RuntimeWarnings per call.
    """
    df = _frame(60, 4, seed=11, nan=True)
    scaled = df * 2.0**exponent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in SCALE_FREE:
            np.testing.assert_allclose(FULL[name](scaled), FULL[name](df), rtol=1e-12, err_msg=name)
        for name in ("rolling_sharpe", "rolling_sortino", "rolling_se"):
            np.testing.assert_allclose(ROLLING[name](scaled), ROLLING[name](df), rtol=1e-11, err_msg=name)
        vol = mn.annual_volatility(scaled, periods_per_year=PPY)
        np.testing.assert_allclose(
            vol, mn.annual_volatility(df, periods_per_year=PPY) * 2.0**exponent, rtol=1e-12
        )
        table = mn.normalized_table(returns=scaled, periods_per_year=PPY)
        ref = mn.normalized_table(returns=df, periods_per_year=PPY)
        for col in ("sharpe", "sortino", "psr", "dsr", "sharpe_lo", "min_trl"):
            np.testing.assert_allclose(table[col], ref[col], rtol=1e-12, err_msg=col)


def test_max_drawdown_when_wealth_overflows() -> None:
    """Wealth beyond float64 is handled in log space, without warnings.

    ``[1e200, 1e200, -0.5]``: wealth 1e200, then ~1e400 (beyond float64, the old code gave
    inf / inf = NaN), then half of it: the drawdown is exactly -0.5.
    ``[1e300, -0.9, 1e10]``: peak 1e300 after the first period, then 1e299: drawdown -0.9; the
    third period sets a new peak, so the answer stays -0.9.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mn.max_drawdown([1e200, 1e200, -0.5]) == pytest.approx(-0.5, rel=1e-12)
        assert mn.max_drawdown([1e300, -0.9, 1e10]) == pytest.approx(-0.9, rel=1e-12)


def test_rolling_matches_per_window_two_pass_across_chunks() -> None:
    """Rolling Sharpe and volatility equal a per-window two-pass reference to 1e-12 (Sortino 1e-11).



    512 columns x 16-row windows: the block combination runs in 4 chunks of 16 blocks (the
    chunking depends on ``window * columns``), so chunk boundaries are crossed. Half the columns
    sit 1,000 standard deviations from zero (the case the block anchors exist for); NaNs make
    their windows NaN (pandas' ``rolling(window)`` rule).
    """
    rng = np.random.default_rng(16)
    w, n, k = 16, 800, 512
    x = rng.normal(0.0005, 0.02, (n, k))
    x[:, ::2] += 20.0
    x[rng.random(x.shape) < 0.002] = np.nan
    win = np.lib.stride_tricks.sliding_window_view(x, w, axis=0)  # (n - w + 1, k, w)
    mean = win.mean(axis=2)
    std = np.sqrt(((win - mean[..., None]) ** 2).sum(axis=2) / (w - 1))
    down = np.sqrt((np.minimum(win, 0.0) ** 2).mean(axis=2))
    with np.errstate(divide="ignore"):  # windows with no loss have an infinite Sortino
        want_sr = np.vstack([np.full((w - 1, k), np.nan), mean / std * math.sqrt(PPY)])
        want_vol = np.vstack([np.full((w - 1, k), np.nan), std * math.sqrt(PPY)])
        want_so = np.vstack([np.full((w - 1, k), np.nan), mean / down * math.sqrt(PPY)])
    # relative where the ratio is not near zero; near zero the mean's rounding is absolute
    # (about 1e-15 of the spread), hence atol 1e-12 on the ratios
    got_sr = mn.rolling_sharpe_ratio(x, window=w, periods_per_year=PPY)
    np.testing.assert_allclose(got_sr, want_sr, rtol=1e-12, atol=1e-12)
    got_vol = mn.rolling_annual_volatility(x, window=w, periods_per_year=PPY)
    np.testing.assert_allclose(got_vol, want_vol, rtol=1e-12)
    got_so = mn.rolling_sortino_ratio(x, window=w, periods_per_year=PPY)
    # the downside sum of squares is a difference of block prefix sums: a window holding one
    # small loss in a block of large ones keeps ~eps * (block sum / window sum) relative: 4e-12 here
    np.testing.assert_allclose(got_so, want_so, rtol=1e-11, atol=1e-12)
