"""Tear sheet computation: hand-computed daily returns, drawdowns, calendars, IS/OOS spans, and every
key metric against the metrics library on independently computed returns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from execution import metrics_normalizer as mn
from execution.return_tables import drawdown_table, monthly_returns, yearly_returns
from execution.tear_sheet import (
    KEY_METRICS,
    Promotion,
    assign_spans,
    benchmark_returns,
    build_tear_sheet,
    daily_book,
    peak_notional,
    promotions_from_events,
)
from execution.trade_stats import trade_stats

UTC = "UTC"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


def trades_frame(rows: list[tuple[str, str, str, str, float, float]]) -> pd.DataFrame:
    """rows: (symbol, route, opened_at, closed_at, pnl, size)."""
    return pd.DataFrame(
        {
            "symbol": [r[0] for r in rows],
            "route": [r[1] for r in rows],
            "opened_at": pd.to_datetime([r[2] for r in rows], utc=True, format="ISO8601"),
            "closed_at": pd.to_datetime([r[3] for r in rows], utc=True, format="ISO8601"),
            "pnl_usd": [r[4] for r in rows],
            "size_usd": [r[5] for r in rows],
        }
    )


def test_daily_returns_compound_per_trade_returns_on_realised_equity() -> None:
    t = trades_frame(
        [
            ("A", "x", "2024-01-01 08:00", "2024-01-01 10:00", 100.0, 500.0),
            ("A", "x", "2024-01-01 09:00", "2024-01-01 20:00", -50.0, 500.0),
            ("B", "x", "2024-01-02 09:00", "2024-01-03 01:00", -105.0, 800.0),
        ]
    )
    book = daily_book(t, initial_equity=1000.0)
    # day 1: equity 1000 -> 1100 -> 1050: (1 + 100/1000) * (1 - 50/1100) - 1 = 0.05 = 50 / 1000
    # day 2: no close: 0.0; day 3: -105 / 1050 = -0.1
    assert book.returns.index.tolist() == [ts("2024-01-01"), ts("2024-01-02"), ts("2024-01-03")]
    assert book.returns.tolist() == pytest.approx([0.05, 0.0, -0.1], abs=1e-15)
    assert book.equity.tolist() == [1050.0, 1050.0, 945.0]
    # compounded daily returns give final equity / initial equity exactly
    assert np.prod(1 + book.returns.to_numpy()) == pytest.approx(945.0 / 1000.0, rel=1e-15)
    # default base: peak notional open at once (500 + 500 on day 1; 800 alone later)
    assert peak_notional(t) == 1000.0
    assert daily_book(t).initial_equity == 1000.0


def test_ruin_is_an_error_naming_the_day() -> None:
    t = trades_frame([("A", "x", "2024-01-01", "2024-01-02 03:00", -2000.0, 1000.0)])
    with pytest.raises(ValueError, match=r"equity falls to -1,000.00 USD on 2024-01-02"):
        daily_book(t, initial_equity=1000.0)


def test_drawdown_table_matches_hand_computation() -> None:
    idx = pd.date_range("2024-01-01", periods=7, freq="D", tz=UTC)
    r = pd.Series([0.10, -0.10, -0.10, 0.30, 0.05, -0.20, 0.10], index=idx)
    # wealth 1.1, .99, .891, 1.1583, 1.216215, .972972, 1.0702692; peaks 1.1 1.1 1.1 1.1583 1.216215 ...
    table = drawdown_table(r)
    assert list(table.columns) == ["start", "trough", "recovery", "depth", "days"]
    assert len(table) == 2
    deep, second = table.iloc[0], table.iloc[1]
    assert (deep.start, deep.trough) == (ts("2024-01-06"), ts("2024-01-06"))
    assert pd.isna(deep.recovery) and deep.days == 2  # still under water on the last day
    assert deep.depth == pytest.approx(0.972972 / 1.216215 - 1, abs=1e-12)  # -0.2
    assert (second.start, second.trough, second.recovery) == (
        ts("2024-01-02"),
        ts("2024-01-03"),
        ts("2024-01-04"),
    )
    assert second.depth == pytest.approx(0.891 / 1.1 - 1, abs=1e-12) and second.days == 2  # -0.19
    assert float(mn.max_drawdown(r)) == pytest.approx(deep.depth, abs=1e-15)
    # a first-day loss is a drawdown from the starting equity
    first = drawdown_table(pd.Series([-0.1, 0.2], index=idx[:2]))
    assert first.iloc[0].start == idx[0] and first.iloc[0].recovery == idx[1] and first.iloc[0].days == 1


def test_monthly_and_yearly_returns_match_hand_computation() -> None:
    idx = pd.date_range("2023-12-31", "2024-03-01", freq="D", tz=UTC)
    r = pd.Series(0.0, index=idx)
    r[ts("2023-12-31")] = 0.5
    r[ts("2024-01-30")], r[ts("2024-01-31")] = 0.10, -0.05  # Jan: 1.1 * 0.95 - 1 = 0.045
    r[ts("2024-02-01")], r[ts("2024-02-29")] = 0.20, -0.50  # Feb: 1.2 * 0.5 - 1 = -0.4
    r[ts("2024-03-01")] = 0.03
    m = monthly_returns(r)
    assert list(m.columns) == list(range(1, 13)) and list(m.index) == [2023, 2024]
    assert m.loc[2023, 12] == pytest.approx(0.5, abs=1e-12)
    assert m.loc[2024, 1] == pytest.approx(0.045, abs=1e-12)
    assert m.loc[2024, 2] == pytest.approx(-0.4, abs=1e-12)
    assert m.loc[2024, 3] == pytest.approx(0.03, abs=1e-12)
    assert m.loc[2024, 4:].isna().all() and m.loc[2023, :11].isna().all()
    y = yearly_returns(r, r * 0.0)
    assert y.loc[2024, "strategy"] == pytest.approx(1.045 * 0.6 * 1.03 - 1, abs=1e-12)
    assert (y["benchmark"] == 0.0).all()


def test_a_trade_closed_late_on_the_31st_counts_in_its_month() -> None:
    t = trades_frame(
        [
            ("A", "x", "2024-01-31 10:00", "2024-01-31 23:59:59", 10.0, 100.0),
            ("A", "x", "2024-02-01 00:00", "2024-02-01 00:00:01", -5.0, 100.0),
        ]
    )
    m = monthly_returns(daily_book(t, initial_equity=100.0).returns)
    assert m.loc[2024, 1] == pytest.approx(0.1) and m.loc[2024, 2] == pytest.approx(-5 / 110)


def test_benchmark_is_buy_and_hold_of_daily_closes() -> None:
    # hourly bars: the 23:00 bar closes at midnight and is the day's last price
    bars = pd.DataFrame(
        {
            "symbol": "BTCUSDT",
            "ts": pd.to_datetime(
                [
                    "2024-01-01 22:00",
                    "2024-01-01 23:00",
                    "2024-01-02 22:00",
                    "2024-01-02 23:00",
                    "2024-01-03 12:00",
                ],
                utc=True,
            ),
            "close": [90.0, 100.0, 105.0, 110.0, 99.0],
        }
    )
    days = pd.date_range("2024-01-02", periods=3, freq="D", tz=UTC)
    b = benchmark_returns(bars, "BTCUSDT", days)
    assert b.tolist() == pytest.approx([0.1, 99 / 110 - 1, 0.0], abs=1e-15)
    first = benchmark_returns(bars, "BTCUSDT", pd.date_range("2024-01-01", periods=1, freq="D", tz=UTC))
    assert math.isnan(first.iloc[0])  # no price on the day before the first day


# --------------------------------------------------------------------------- model versions
def test_each_trade_belongs_to_the_version_live_when_it_opened() -> None:
    events = [
        {"action": "promote", "version": "v1", "at": "2025-01-10T00:00:00Z", "note": ""},
        {"action": "promote", "version": "v2", "at": "2025-01-20T00:00:00Z", "note": ""},
        {"action": "rollback", "version": "v1", "from": "v2", "at": "2025-01-25T00:00:00Z", "note": ""},
    ]
    promos = promotions_from_events(reversed(events))  # order of the events does not matter
    assert [p.version for p in promos] == ["v1", "v2", "v1"]
    t = trades_frame(
        [
            ("A", "x", "2025-01-09 23:59", "2025-01-10 05:00", 10.0, 100.0),  # opened before v1: span 0
            ("A", "x", "2025-01-10 00:00", "2025-01-10 06:00", -4.0, 100.0),  # opened at the promotion: v1
            (
                "A",
                "y",
                "2025-01-19 12:00",
                "2025-01-22 00:00",
                6.0,
                100.0,
            ),  # opened under v1, closed under v2
            ("B", "x", "2025-01-20 00:00:01", "2025-01-21 00:00", 3.0, 100.0),  # v2
            ("B", "x", "2025-01-26 00:00", "2025-01-27 00:00", -1.0, 100.0),  # v1 again (rollback)
        ]
    )
    assert assign_spans(t["opened_at"], promos).tolist() == [0, 1, 1, 2, 3]
    sheet = build_tear_sheet(t, initial_equity=1000.0, promotions=promos)
    labels = list(sheet.span_metrics.columns)
    assert labels == [
        "before v1",
        "v1 (from 2025-01-10 00:00)",
        "v2 (from 2025-01-20 00:00)",
        "v1 (from 2025-01-25 00:00)",
    ]
    assert sheet.span_metrics.loc["n_trades"].tolist() == [1, 2, 1, 1]
    # span v1's PnL -4 (day 01-10) and +6 (day 01-22), each over the book's equity of the day before
    v1 = sheet.span_returns[labels[1]].dropna()
    assert v1.index[0] == ts("2025-01-10") and v1.index[-1] == ts("2025-01-22")
    assert v1[ts("2025-01-10")] == pytest.approx(-4 / 1000.0, abs=1e-15)  # day 01-09 closed nothing
    assert v1[ts("2025-01-22")] == pytest.approx(6 / (1000 + 10 - 4 + 3), abs=1e-15)
    # the spans' contributions add up to the book's daily return
    total = sheet.span_returns.fillna(0.0).sum(axis=1)
    np.testing.assert_allclose(total.to_numpy(), sheet.returns.to_numpy(), atol=1e-15)
    assert sheet.span_metrics.loc["hit_rate", labels[1]] == pytest.approx(0.5)


# --------------------------------------------------------------------------- key metrics vs the library
def _random_trades(seed: int, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    opened = ts("2024-01-01") + pd.to_timedelta(rng.uniform(0, 200 * 86400, n), unit="s")
    hold = pd.to_timedelta(rng.uniform(600, 3 * 86400, n), unit="s")
    return pd.DataFrame(
        {
            "symbol": rng.choice(["BTCUSDT", "ETHUSDT", "SOLUSDT"], n),
            "route": rng.choice(["r1", "r2"], n),
            "opened_at": opened,
            "closed_at": opened + hold,
            "pnl_usd": np.round(rng.normal(3.0, 40.0, n), 2),
            "size_usd": rng.choice([500.0, 1000.0, 2000.0], n),
        }
    )


def _independent_daily(trades: pd.DataFrame, equity0: float) -> pd.Series:
    """Per-trade returns on realised equity compounded day by day with a plain loop."""
    first = trades["opened_at"].min().floor("D")
    last = trades["closed_at"].max().floor("D")
    days = pd.date_range(first, last, freq="D")
    equity = equity0
    out = []
    by_day = trades.sort_values("closed_at").groupby(trades["closed_at"].dt.floor("D"))
    groups = {k: g for k, g in by_day}
    for d in days:
        growth = 1.0
        for pnl in groups[d]["pnl_usd"] if d in groups else []:
            growth *= 1.0 + pnl / equity
            equity += pnl
        out.append(growth - 1.0)
    return pd.Series(out, index=days)


def test_every_key_metric_equals_the_metrics_library_value() -> None:
    trades = _random_trades(11)
    bars = pd.DataFrame(
        {
            "symbol": "BTCUSDT",
            "ts": pd.date_range("2023-12-25", "2024-08-01", freq="6h", tz=UTC),
        }
    )
    bars["close"] = 100.0 * np.exp(np.cumsum(np.random.default_rng(2).normal(0, 0.01, len(bars))))
    sheet = build_tear_sheet(trades, bars, initial_equity=20_000.0)
    r = _independent_daily(trades, 20_000.0)
    np.testing.assert_allclose(sheet.returns.to_numpy(), r.to_numpy(), rtol=0, atol=1e-14)
    x = r.to_numpy()
    ppy = 365.0
    # trials: the (symbol, route) streams' daily Sharpes (per period), as documented
    streams = mn.trade_returns(trades, by=("symbol", "route"))
    sr = np.asarray(mn.sharpe_ratio(streams, periods_per_year=1.0), dtype=float)
    var = float(np.var(sr, ddof=1))
    fills = trade_stats(trades, by=()).iloc[0]
    total = float(np.prod(1 + x) - 1)
    cagr = (1 + total) ** (ppy / len(x)) - 1
    mdd = float(mn.max_drawdown(x))
    want = {
        "days": len(x),
        "n_trades": len(trades),
        "total_return": total,
        "cagr": cagr,
        "ann_return": mn.annual_return(x, periods_per_year=ppy),
        "ann_volatility": mn.annual_volatility(x, periods_per_year=ppy),
        "sharpe": mn.sharpe_ratio(x, periods_per_year=ppy),
        "sharpe_se": mn.sharpe_standard_error(x, periods_per_year=ppy),
        "psr": mn.probabilistic_sharpe_ratio(x),
        "dsr": mn.deflated_sharpe_ratio(x, n_trials=6, trials_sharpe_variance=var),
        "n_trials": 6,
        "min_trl_days": mn.min_track_record_length(x),
        "sortino": mn.sortino_ratio(x, periods_per_year=ppy),
        "max_drawdown": mdd,
        "max_drawdown_days": int(drawdown_table(r, top=10_000)["days"].max()),
        "calmar": cagr / abs(mdd),
        "daily_hit_rate": mn.hit_rate(x),
        "hit_rate": fills.win_rate,
        "payoff_ratio": fills.payoff_ratio,
        "profit_factor": fills.profit_factor,
        "expectancy_usd": fills.expectancy_usd,
        "expectancy_per_risk": fills.expectancy_per_risk,
        "kelly": fills.kelly,
    }
    got = sheet.metrics["strategy"]
    assert set(want) | {"start", "end"} == {name for name, _ in KEY_METRICS}
    for name, value in want.items():
        assert float(got[name]) == pytest.approx(float(value), rel=1e-12, abs=1e-15), name
    assert got["start"] == r.index[0] and got["end"] == r.index[-1]
    # the benchmark column is the same metrics on buy-and-hold returns
    b = sheet.benchmark
    assert b is not None and sheet.benchmark_symbol == "BTCUSDT"
    assert float(sheet.metrics.loc["sharpe", "benchmark"]) == pytest.approx(
        float(mn.sharpe_ratio(b.to_numpy(), periods_per_year=ppy)), rel=1e-12
    )
    # rolling statistics are the library's, beta is cov / var over the window
    w = sheet.rolling_window
    np.testing.assert_allclose(
        sheet.rolling["sharpe"].to_numpy(),
        mn.rolling_sharpe_ratio(x, window=w, periods_per_year=ppy),
        equal_nan=True,
    )
    se = mn.rolling_sharpe_standard_error(x, window=w, periods_per_year=ppy)
    np.testing.assert_allclose(
        sheet.rolling["sharpe_upper"] - sheet.rolling["sharpe"], 1.96 * se, equal_nan=True
    )
    xb = b.to_numpy()[-w:]
    beta = np.cov(x[-w:], xb, ddof=1)[0, 1] / np.var(xb, ddof=1)
    assert sheet.rolling["beta"].iloc[-1] == pytest.approx(beta, rel=1e-9)


def test_bad_arguments_are_named() -> None:
    t = _random_trades(1, 20)
    with pytest.raises(ValueError, match="rolling_window"):
        build_tear_sheet(t, rolling_window=1)
    with pytest.raises(ValueError, match="lacks required column"):
        build_tear_sheet(t.drop(columns="route"))
    with pytest.raises(ValueError, match="no trades"):
        build_tear_sheet(t.iloc[:0])
    with pytest.raises(ValueError, match="timezone-naive"):
        promotions_from_events([{"action": "promote", "version": "v", "at": "2025-01-01T00:00:00"}])
    assert Promotion(ts("2025-01-01"), "v").action == "promote"
