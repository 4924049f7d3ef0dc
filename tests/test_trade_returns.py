"""trade_returns: closed trades -> wide per-period returns on notional."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from execution.trade_returns import trade_returns


def _trades(rows: list[tuple[str, str, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": [r[0] for r in rows],
            "route": [r[1] for r in rows],
            "closed_at": pd.to_datetime([r[2] for r in rows], utc=True),
            "pnl_usd": [r[3] for r in rows],
            "size_usd": [r[4] for r in rows],
        }
    )


HAND = _trades(
    [
        ("BTCUSDT", "binance_direct", "2024-01-01 10:00", 20.0, 1000.0),  # +2 %
        ("BTCUSDT", "okx_smart", "2024-01-01 23:59", -5.0, 500.0),  # -1 %, same day
        ("BTCUSDT", "binance_direct", "2024-01-04 00:00", 30.0, 1000.0),  # midnight: ends day 01-04
        ("ETHUSDT", "okx_smart", "2024-01-02 12:00", 3.0, 300.0),  # +1 %
        ("ETHUSDT", "okx_smart", "2024-01-03 12:00", -6.0, 200.0),  # -3 %
    ]
)


def test_hand_computed_daily_frame() -> None:
    got = trade_returns(HAND)
    idx = pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04"], tz="UTC", name="period_end")
    want = pd.DataFrame(
        {"BTCUSDT": [0.01, 0.0, 0.03], "ETHUSDT": [np.nan, 0.01, -0.03]}, index=idx
    )  # BTC: 2 % - 1 % on day 1, nothing on day 2 (inside its span: 0.0), 3 % at midnight 01-04
    pd.testing.assert_frame_equal(got, want, check_names=False, check_freq=False, atol=1e-15)
    assert str(got.index.tz) == "UTC"


def test_by_symbol_and_route_labels_and_span() -> None:
    got = trade_returns(HAND, by=("symbol", "route"))
    assert list(got.columns) == ["BTCUSDT|binance_direct", "BTCUSDT|okx_smart", "ETHUSDT|okx_smart"]
    np.testing.assert_allclose(got["BTCUSDT|binance_direct"], [0.02, 0.0, 0.03])
    np.testing.assert_allclose(got["BTCUSDT|okx_smart"], [-0.01, np.nan, np.nan])  # NaN after its last trade
    np.testing.assert_allclose(got["ETHUSDT|okx_smart"], [np.nan, 0.01, -0.03])


def test_hourly_frequency_and_non_utc_input() -> None:
    t = HAND.copy()
    t["closed_at"] = t["closed_at"].dt.tz_convert("Asia/Tokyo")  # same instants, other zone
    got = trade_returns(t, freq="1h")
    assert got.index[0] == pd.Timestamp("2024-01-01 10:00", tz="UTC")  # 10:00 closes the 09-10 hour
    assert got.loc[pd.Timestamp("2024-01-02 00:00", tz="UTC"), "BTCUSDT"] == pytest.approx(-0.01)
    assert got["BTCUSDT"].sum() == pytest.approx(0.04)
    assert (got.index.to_series().diff().dropna() == pd.Timedelta(hours=1)).all()


def test_matches_groupby_reference_on_random_trades() -> None:
    rng = np.random.default_rng(5)
    n = 50_000
    syms = np.array([f"S{i:02d}" for i in range(40)])
    t = pd.DataFrame(
        {
            "symbol": syms[rng.integers(0, 40, n)],
            "closed_at": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 200 * 86400, n), unit="s"),
            "pnl_usd": rng.normal(0, 10, n),
            "size_usd": rng.uniform(100, 1000, n),
        }
    )
    got = trade_returns(t)
    ref = (
        t.assign(period=t["closed_at"].dt.ceil("1D"), r=t["pnl_usd"] / t["size_usd"])
        .groupby(["period", "symbol"])["r"]
        .sum()
        .unstack()
    )
    full = pd.date_range(ref.index.min(), ref.index.max(), freq="1D")
    ref = ref.reindex(full)
    for col in ref.columns:  # 0.0 inside the active span, NaN outside
        s = ref[col]
        first, last = s.first_valid_index(), s.last_valid_index()
        ref.loc[first:last, col] = s.loc[first:last].fillna(0.0)
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-12, atol=1e-15)
    assert list(got.columns) == sorted(syms)


def test_million_trades_five_hundred_symbols_is_fast() -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    syms = np.array([f"S{i:03d}" for i in range(500)])
    t = pd.DataFrame(
        {
            "symbol": syms[rng.integers(0, 500, n)],
            "closed_at": pd.Timestamp("2021-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 3 * 365 * 86400, n), unit="s"),
            "pnl_usd": rng.normal(0, 10, n),
            "size_usd": rng.uniform(100, 1000, n),
        }
    )
    t0 = time.perf_counter()
    got = trade_returns(t)
    elapsed = time.perf_counter() - t0
    assert got.shape == (1095, 500)
    assert np.isclose(np.nansum(got.to_numpy()), (t["pnl_usd"] / t["size_usd"]).sum())
    assert elapsed < 5.0, f"trade_returns took {elapsed:.2f} s (target about 1 s; CPU is shared)"


def test_empty_frame_gives_empty_result() -> None:
    got = trade_returns(HAND.iloc[:0])
    assert got.shape == (0, 0)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.drop(columns=["size_usd"]), "lacks required column(s) ['size_usd']"),
        (lambda t: t.assign(closed_at=t["closed_at"].dt.tz_localize(None)), "must be timezone-aware UTC"),
        (lambda t: t.assign(size_usd=[1000.0, 0.0, 1.0, 1.0, 1.0]), "'size_usd' must be > 0; row 1 has 0.0"),
        (lambda t: t.assign(pnl_usd=[1.0, np.nan, 1.0, 1.0, 1.0]), "'pnl_usd' must be finite; row 1"),
        (lambda t: t.assign(symbol=["A", None, "B", "B", "B"]), "field 'symbol' is missing at row 1"),
    ],
)
def test_bad_trades_raise(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError) as info:
        trade_returns(mutate(HAND))
    assert message in str(info.value)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="'freq' parameter of trade_returns must be a fixed frequency"):
        trade_returns(HAND, freq="1M")
    with pytest.raises(ValueError, match="'by' parameter of trade_returns"):
        trade_returns(HAND, by=())
    with pytest.raises(ValueError, match="lacks required column"):
        trade_returns(HAND, by=("symbol", "venue"))
