from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infra.loaders import load_bars, validate_bars, validate_trades
from scripts.demo import main as demo_main
from scripts.demo_data import ROUTES, DemoConfig, generate
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def demo() -> object:
    return generate(DemoConfig(seed=11))


def test_shape_of_default_demo(demo) -> None:  # type: ignore[no-untyped-def]
    assert demo.trades["symbol"].nunique() >= 8
    assert demo.trades["route"].nunique() >= 3
    assert len(demo.trades) > 1000
    assert demo.trades["order_id"].is_unique


def test_trades_meet_the_contract_and_stay_inside_their_bars(demo) -> None:  # type: ignore[no-untyped-def]
    trades = validate_trades(demo.trades)
    validate_bars(demo.bars, file="<demo bars>")
    bars = demo.bars.set_index(["symbol", "ts"])
    freq = pd.Timedelta(hours=1)
    entry_bar = bars.loc[list(zip(trades["symbol"], trades["opened_at"].dt.floor(freq)))]
    exit_bar = bars.loc[list(zip(trades["symbol"], trades["closed_at"].dt.floor(freq)))]
    eps = 1e-9
    assert (trades["entry_price"].to_numpy() >= entry_bar["low"].to_numpy() - eps).all()
    assert (trades["entry_price"].to_numpy() <= entry_bar["high"].to_numpy() + eps).all()
    assert (trades["exit_price"].to_numpy() >= exit_bar["low"].to_numpy() - eps).all()
    assert (trades["exit_price"].to_numpy() <= exit_bar["high"].to_numpy() + eps).all()
    sign = np.where(trades["side"] == "LONG", 1.0, -1.0)
    expected = (
        trades["size_usd"] * sign * (trades["exit_price"] / trades["entry_price"] - 1) - trades["fees_usd"]
    )
    np.testing.assert_allclose(trades["pnl_usd"], expected, atol=1e-3)
    # no two trades of one symbol overlap
    for _, g in trades.sort_values("opened_at").groupby("symbol"):
        assert (g["opened_at"].iloc[1:].to_numpy() > g["closed_at"].iloc[:-1].to_numpy()).all()


def test_max_adverse_matches_a_direct_scan(demo) -> None:  # type: ignore[no-untyped-def]
    t = demo.trades.iloc[::97]
    for _, row in t.iterrows():
        b = demo.bars[(demo.bars["symbol"] == row["symbol"])]
        held = b[(b["ts"] >= row["opened_at"].floor("h")) & (b["ts"] <= row["closed_at"].floor("h"))]
        if row["side"] == "LONG":
            worst = max(0.0, (row["entry_price"] - held["low"].min()) / row["entry_price"] * 100)
        else:
            worst = max(0.0, (held["high"].max() - row["entry_price"]) / row["entry_price"] * 100)
        assert row["max_adverse_pct"] == pytest.approx(worst, abs=1e-3)


def test_signal_is_calibrated_then_degrades(demo) -> None:  # type: ignore[no-untyped-def]
    s = demo.signals
    early, late = s[s["ts"] < demo.change_ts], s[s["ts"] >= demo.change_ts]
    assert abs(early["won"].mean() - early["confidence"].mean()) < 0.04
    assert late["confidence"].mean() - late["won"].mean() > 0.08
    assert set(s["order_id"]) == set(demo.trades["order_id"])


def test_unhealthy_route_is_visible(demo) -> None:  # type: ignore[no-untyped-def]
    o = demo.orders
    slip = o[o["status"] == "FILLED"].groupby("route")["slippage_bps"].mean()
    fail = o.assign(bad=o["status"] != "FILLED").groupby("route")["bad"].mean()
    bad = next(r.name for r in ROUTES if r.slippage_bps > 3 * r.expected_slippage_bps)
    assert slip.idxmax() == bad and fail.idxmax() == bad
    assert slip[bad] > 3 * slip.drop(bad).max()


def test_same_seed_same_bytes_different_seed_differs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outs = []
    for run, seed in (("a", 3), ("b", 3), ("c", 4)):
        monkeypatch.setenv("LOGS_DIR", str(tmp_path / run))
        assert demo_main(["--seed", str(seed), "--data-only", "--quiet"]) == 0
        outs.append(
            {
                f: (tmp_path / run / "data" / f"{f}.parquet").read_bytes()
                for f in ("bars", "trades", "signals", "orders")
            }
        )
    assert outs[0] == outs[1]
    assert outs[0]["trades"] != outs[2]["trades"]


def test_real_bars_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGS_DIR", str(tmp_path))
    paths = [str(p) for p in sorted(SAMPLE.glob("*1h-futures.csv"))]
    assert demo_main(["--bars", *paths, "--data-only", "--quiet"]) == 0
    trades = validate_trades(pd.read_parquet(tmp_path / "data" / "trades.parquet"))
    real = load_bars(SAMPLE / "BTC_USDT_USDT-1h-futures.csv")
    assert set(trades["symbol"]) == {"BTCUSDT", "ETHUSDT"}
    btc = trades[trades["symbol"] == "BTCUSDT"]
    assert btc["opened_at"].min() >= real["ts"].min() and btc["closed_at"].max() <= real[
        "ts"
    ].max() + pd.Timedelta(hours=1)
    assert len(trades) > 100
    # driven by the reference model's walk-forward signals, not by a signal that knows the outcome
    signals = pd.read_parquet(tmp_path / "data" / "signals.parquet")
    assert signals["model_version"].str.startswith("sig-").all()
    assert "demo-signal-v1" not in set(trades["model_version"])
    # trades start only once the first walk-forward model exists (330 bars after the first bar)
    assert trades["opened_at"].min() >= real["ts"].min() + pd.Timedelta(hours=330)
    # an honest model on 30 days of hourly bars is near a coin flip: not right as often as it claims
    assert abs(signals["won"].mean() - 0.5) < 0.15
    assert signals["confidence"].max() < 0.75
    from infra.artifacts import read_artifact_file

    summary = read_artifact_file(tmp_path / "cache" / "demo_data.json").data
    assert "reference model" in summary["signal_source"]


def test_model_signals_set_side_and_confidence_at_the_bar_before_entry() -> None:
    """Hand-made forecasts: P(up) 0.7 on BTC's bars from the 100th on, 0.2 on ETH's, none before."""
    base = generate(DemoConfig(seed=3, n_symbols=2, n_bars=400))
    bars = base.bars
    rows = bars.groupby("symbol").cumcount() >= 100
    sig = bars.loc[rows, ["symbol", "ts"]].assign(
        p_up=np.where(bars.loc[rows, "symbol"] == "BTCUSDT", 0.7, 0.2), model_version="m-1"
    )
    data = generate(DemoConfig(seed=3, n_symbols=2, n_bars=400), bars=bars, model_signals=sig)
    t = data.trades
    assert len(t) > 10
    btc, eth = t[t["symbol"] == "BTCUSDT"], t[t["symbol"] == "ETHUSDT"]
    assert (btc["side"] == "LONG").all() and (btc["confidence"] == 0.7).all()
    assert (eth["side"] == "SHORT").all() and (eth["confidence"] == 0.8).all()
    assert (t["model_version"] == "m-1").all()
    # the first forecast is at the close of bar 100: the first entry is at bar 101 or later
    first_ok = bars[rows].groupby("symbol")["ts"].min()
    for sym, g in t.groupby("symbol"):
        assert g["opened_at"].min() > first_ok[sym] + pd.Timedelta(minutes=59)
    # the signal log agrees with the trades
    assert set(data.signals["action"][data.signals["symbol"] == "BTCUSDT"]) == {"BUY"}
    with pytest.raises(
        ValueError, match=r"'model_signals' parameter of generate is missing column\(s\) \['p_up'\]"
    ):
        generate(
            DemoConfig(seed=3, n_symbols=2, n_bars=400), bars=bars, model_signals=sig.drop(columns="p_up")
        )


def test_bad_bars_file_is_reported_without_touching_existing_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOGS_DIR", str(tmp_path))
    assert demo_main(["--data-only", "--quiet"]) == 0
    before = (tmp_path / "data" / "trades.parquet").read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,open,high,low,close,volume\n2025-01-01T00:00:00Z,1,2,0.5,abc,3\n")
    assert demo_main(["--bars", str(bad), "--data-only", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bad.csv, row 2: field 'close' has an unparseable or missing number 'abc'" in err
    assert (tmp_path / "data" / "trades.parquet").read_bytes() == before
