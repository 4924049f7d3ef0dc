"""normalized_table, volatility_scale and factor_score; plus a real-data run on Binance futures bars."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from execution import metrics_normalizer as mn
from execution.trade_returns import trade_returns

COLUMNS = [c for c in mn.TABLE_COLUMNS if c != "route"]
DATA = Path(__file__).resolve().parents[1] / "data" / "sample" / "binance_usdm"


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    rng = np.random.default_rng(42)
    idx = pd.date_range("2023-01-01", periods=500, freq="D", tz="UTC")
    x = rng.normal([0.002, 0.0, -0.001, 0.001], 0.02, size=(500, 4))
    frame = pd.DataFrame(x, index=idx, columns=["SOL", "BTC", "ETH", "XRP"])
    frame.iloc[:200, 2] = np.nan  # ETH starts later
    return frame


@pytest.fixture(scope="module")
def trades() -> pd.DataFrame:
    rng = np.random.default_rng(9)
    n = 3000
    return pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(n)],
            "symbol": rng.choice(["BTCUSDT", "ETHUSDT", "SOLUSDT"], n),
            "route": rng.choice(["binance_direct", "okx_smart", "bybit_legacy"], n),
            "closed_at": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 120 * 86400, n), unit="s"),
            "pnl_usd": rng.normal(2.0, 20.0, n),
            "size_usd": rng.uniform(200.0, 2000.0, n),
        }
    )


def test_table_from_returns_matches_the_individual_functions(daily: pd.DataFrame) -> None:
    t = mn.normalized_table(returns=daily)
    assert list(t.columns) == COLUMNS
    assert list(t["symbol"]) == ["BTC", "ETH", "SOL", "XRP"]  # sorted
    x = daily[["BTC", "ETH", "SOL", "XRP"]]
    ppy = 365.0  # inferred from the daily index, crypto calendar
    assert (t["periods_per_year"] == ppy).all()
    np.testing.assert_array_equal(t["n_obs"], [500, 300, 500, 500])
    assert t["n_trades"].isna().all() and t["pnl_usd"].isna().all()
    assert t.loc[1, "start"] == pd.Timestamp("2023-07-20", tz="UTC")
    assert (t["end"] == daily.index[-1]).all()
    assert t.loc[0, "lookback_days"] == 499.0
    checks = {
        "sharpe": mn.sharpe_ratio(x, periods_per_year=ppy),
        "sortino": mn.sortino_ratio(x, periods_per_year=ppy),
        "ann_vol": mn.annual_volatility(x, periods_per_year=ppy),
        "ann_return": mn.annual_return(x, periods_per_year=ppy),
        "max_drawdown": mn.max_drawdown(x),
        "hit_rate": mn.hit_rate(x),
        "profit_factor": mn.profit_factor(x),
        "sharpe_lo": mn.lo_sharpe_ratio(x, periods_per_year=ppy),
        "sharpe_se": mn.sharpe_standard_error(x),
        "psr": mn.probabilistic_sharpe_ratio(x),
        "min_trl": mn.min_track_record_length(x),
    }
    for name, want in checks.items():
        np.testing.assert_allclose(t[name].to_numpy(), want.to_numpy(), rtol=1e-12, err_msg=name)


def test_table_dsr_defaults_to_rows_as_trials_and_cross_sectional_variance(daily: pd.DataFrame) -> None:
    t = mn.normalized_table(returns=daily)
    cols = [daily[c].dropna().to_numpy() for c in t["symbol"]]
    srs = np.array([c.mean() / c.std(ddof=1) for c in cols])
    v, n = srs.var(ddof=1), len(cols)
    emc = 0.5772156649015329
    sr0 = math.sqrt(v) * ((1 - emc) * stats.norm.ppf(1 - 1 / n) + emc * stats.norm.ppf(1 - 1 / (n * math.e)))
    for row, c in zip(t.itertuples(), cols):
        sr = c.mean() / c.std(ddof=1)
        g3, g4 = stats.skew(c), stats.kurtosis(c, fisher=False)
        want = stats.norm.cdf(
            (sr - sr0) * math.sqrt(len(c) - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
        )
        assert row.dsr == pytest.approx(want, rel=1e-10)
    more = mn.normalized_table(returns=daily, n_trials=100)
    assert (more["dsr"] < t["dsr"]).all()  # more trials, a higher bar
    one = mn.normalized_table(returns=daily[["BTC"]])
    assert one.loc[0, "dsr"] == pytest.approx(one.loc[0, "psr"])  # one strategy: nothing to deflate


def test_lookback_restricts_to_trailing_window(daily: pd.DataFrame) -> None:
    t = mn.normalized_table(returns=daily, lookback_days=90)
    assert (t["n_obs"] == 90).all()
    assert (t["lookback_days"] == 90.0).all()
    assert (t["start"] == daily.index[-90]).all()
    want = mn.sharpe_ratio(daily.iloc[-90:], periods_per_year=365)
    np.testing.assert_allclose(t.set_index("symbol")["sharpe"], want[t["symbol"]].to_numpy(), rtol=1e-12)


def test_table_from_trades(trades: pd.DataFrame) -> None:
    t = mn.normalized_table(trades)
    assert list(t.columns) == COLUMNS
    assert list(t["symbol"]) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    counts = trades.groupby("symbol").size()
    np.testing.assert_array_equal(t["n_trades"], counts.to_numpy())
    np.testing.assert_allclose(t["pnl_usd"], trades.groupby("symbol")["pnl_usd"].sum().to_numpy(), rtol=1e-12)
    daily = trade_returns(trades)
    same = mn.normalized_table(returns=daily)
    for col in ("n_obs", "sharpe", "sortino", "psr", "dsr", "max_drawdown", "start", "end"):
        np.testing.assert_array_equal(t[col].to_numpy(), same[col].to_numpy())
    assert (t["periods_per_year"] == 365.0).all()


def test_table_by_route_from_trades_and_returns(trades: pd.DataFrame) -> None:
    t = mn.normalized_table(trades, by_route=True, lookback_days=30)
    assert list(t.columns) == mn.TABLE_COLUMNS
    assert len(t) == 9
    assert list(t[["symbol", "route"]].itertuples(index=False, name=None))[:3] == [
        ("BTCUSDT", "binance_direct"),
        ("BTCUSDT", "bybit_legacy"),
        ("BTCUSDT", "okx_smart"),
    ]
    last = trade_returns(trades).index.max()
    window = trades[trades["closed_at"].dt.ceil("1D") > last - pd.Timedelta(days=30)]
    want = window.groupby(["symbol", "route"]).size().to_numpy()
    np.testing.assert_array_equal(t["n_trades"], want)
    wide = trade_returns(trades, by=("symbol", "route"))
    from_returns = mn.normalized_table(returns=wide, by_route=True, lookback_days=30)
    np.testing.assert_array_equal(from_returns["sharpe"], t["sharpe"])
    multi = wide.copy()
    multi.columns = pd.MultiIndex.from_tuples([tuple(c.split("|")) for c in wide.columns])
    np.testing.assert_array_equal(
        mn.normalized_table(returns=multi, by_route=True, lookback_days=30)["psr"], t["psr"]
    )


def test_table_errors(daily: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"needs exactly one of 'trades' or 'returns'\. Got neither"):
        mn.normalized_table()
    with pytest.raises(ValueError, match="'periods_per_year' parameter of normalized_table is required"):
        mn.normalized_table(returns=daily.reset_index(drop=True))
    with pytest.raises(
        ValueError, match="'lookback_days' parameter of normalized_table must be a finite number > 0"
    ):
        mn.normalized_table(returns=daily, lookback_days=0)
    with pytest.raises(ValueError, match="columns labelled 'SYMBOL\\|route'"):
        mn.normalized_table(returns=daily, by_route=True)
    with pytest.raises(ValueError, match="'n_trials' parameter of normalized_table must be an int >= 1"):
        mn.normalized_table(returns=daily, n_trials=0)
    t = mn.normalized_table(returns=daily.reset_index(drop=True), periods_per_year=252)
    assert t["start"].isna().all() and (t["periods_per_year"] == 252).all()


# --------------------------------------------------------------------------- scaling and scores
def test_volatility_scale_full_sample_and_causal() -> None:
    rng = np.random.default_rng(1)
    x = pd.DataFrame({"a": rng.normal(0, 0.01, 300), "b": rng.normal(0, 0.05, 300)})
    full = mn.volatility_scale(x, target_annual_vol=0.2, periods_per_year=365)
    np.testing.assert_allclose(mn.annual_volatility(full, periods_per_year=365), [0.2, 0.2], rtol=1e-12)
    causal = mn.volatility_scale(x, target_annual_vol=0.2, periods_per_year=365, window=20)
    assert causal.iloc[:20].isna().all().all()
    t = 100  # uses the vol of rows 80..99 only: no look-ahead
    want = x.iloc[t] * 0.2 / (x.iloc[t - 20 : t].std() * math.sqrt(365))
    np.testing.assert_allclose(causal.iloc[t], want, rtol=1e-10)
    capped = mn.volatility_scale(x, target_annual_vol=0.2, periods_per_year=365, max_leverage=1.0)
    np.testing.assert_allclose(
        capped["b"], x["b"] * min(1.0, 0.2 / (x["b"].std() * math.sqrt(365))), rtol=1e-12
    )
    assert np.isnan(mn.volatility_scale(np.zeros(5), target_annual_vol=0.1, periods_per_year=1)).all()


def test_factor_score_handles_missing_and_infinite_values() -> None:
    m = pd.DataFrame({"sharpe": [1.0, np.nan, 3.0, 2.0], "sortino": [np.inf, 1.0, 2.0, 0.5]})
    z = mn.factor_score(m, {"sharpe": 1.0, "sortino": 1.0})
    assert z.name == "score" and len(z) == 4
    # row 1 has no sharpe: its score is its sortino z-score alone; row 0's inf sortino is missing
    sortino_z = (np.array([1.0, 2.0, 0.5]) - np.mean([1.0, 2.0, 0.5])) / np.std([1.0, 2.0, 0.5])
    assert z[1] == pytest.approx(sortino_z[0])
    assert z[0] == pytest.approx(-math.sqrt(1.5))
    r = mn.factor_score(m, {"sharpe": 1.0, "sortino": 1.0}, method="rank")
    assert r[0] == pytest.approx((-1.0 + 1.0) / 2)  # lowest sharpe, highest (inf) sortino
    only_sortino = mn.factor_score(m, {"sharpe": 0.0, "sortino": 2.0})
    assert np.isnan(only_sortino[0]) and only_sortino[1:].notna().all()  # row 0 has no usable metric
    with pytest.raises(ValueError, match="at least one non-zero weight"):
        mn.factor_score(m, {"sharpe": 0.0})


# --------------------------------------------------------------------------- real data
@pytest.mark.parametrize(("interval", "ppy"), [("1h", 365 * 24), ("5m", 365 * 288)])
def test_real_binance_bars(interval: str, ppy: int) -> None:
    from infra.loaders import load_bars_many

    paths = sorted(DATA.glob(f"*-{interval}-futures.csv"))
    assert len(paths) == 2, f"sample bars missing under {DATA}"
    bars = load_bars_many(paths)
    close = bars.pivot(index="ts", columns="symbol", values="close").sort_index()
    returns = close.pct_change().iloc[1:]
    assert mn.periods_per_year(returns.index) == ppy
    assert mn.periods_per_year(interval) == ppy
    t = mn.normalized_table(returns=returns)
    assert list(t["symbol"]) == ["BTCUSDT", "ETHUSDT"]
    assert (t["periods_per_year"] == ppy).all()
    assert (t["n_obs"] == returns.notna().sum().to_numpy()).all()
    # crypto majors: annualised volatility between 20 % and 200 %, drawdowns within (-1, 0)
    assert ((t["ann_vol"] > 0.2) & (t["ann_vol"] < 2.0)).all()
    assert ((t["max_drawdown"] < 0) & (t["max_drawdown"] > -1)).all()
    assert ((t["psr"] >= 0) & (t["psr"] <= 1)).all()
    np.testing.assert_allclose(
        t["sharpe"], mn.sharpe_ratio(returns, periods_per_year=ppy).to_numpy(), rtol=1e-12
    )
    np.testing.assert_allclose(
        t["sharpe_se"] * math.sqrt(ppy),
        mn.sharpe_standard_error(returns, periods_per_year=ppy).to_numpy(),
        rtol=1e-12,
    )
    w = 24 if interval == "1h" else 288
    roll = mn.rolling_sharpe_ratio(returns, window=w, periods_per_year=ppy)
    band = mn.rolling_sharpe_standard_error(returns, window=w, periods_per_year=ppy)
    assert roll.shape == band.shape == returns.shape
    ref = returns.rolling(w).mean() / returns.rolling(w).std() * math.sqrt(ppy)
    np.testing.assert_allclose(roll.to_numpy(), ref.to_numpy(), rtol=1e-7)
    assert (band.iloc[w:].dropna() > 0).all().all()
