from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from infra.loaders import (
    DataValidationError,
    infer_bar_frequency,
    load_bars,
    load_bars_many,
    load_trades,
    symbol_from_filename,
)
from tests.conftest import SAMPLE

GOOD_TRADE = {
    "order_id": "o-1",
    "symbol": "btcusdt",
    "route": "binance_direct",
    "side": "long",
    "opened_at": "2025-03-01T10:00:00Z",
    "closed_at": "2025-03-01T12:30:00Z",
    "entry_price": "100.0",
    "exit_price": "101.0",
    "size_usd": "1000",
    "fees_usd": "0.5",
    "pnl_usd": "9.5",
    "confidence": "0.7",
    "multiplier": "1.0",
    "max_adverse_pct": "0.4",
}


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def bar_rows(n: int = 4) -> list[dict[str, str]]:
    return [
        {
            "timestamp": f"2025-03-01T0{i}:00:00Z",
            "open": "10",
            "high": "11",
            "low": "9",
            "close": "10.5",
            "volume": "5",
        }
        for i in range(n)
    ]


# ---------------------------------------------------------------- bars: good inputs
def test_shared_binance_export_loads() -> None:
    bars = load_bars(SAMPLE / "BTC_USDT_USDT-1h-futures.csv")
    assert list(bars.columns) == ["symbol", "ts", "open", "high", "low", "close", "volume"]
    assert len(bars) == 719
    assert bars["symbol"].unique().tolist() == ["BTCUSDT"]
    assert str(bars["ts"].dt.tz) == "UTC"
    assert bars["ts"].iloc[0] == pd.Timestamp("2025-03-06T11:00:00Z")
    assert bars.attrs["bar_freq"] == pd.Timedelta(hours=1)
    assert bars.loc[0, ["open", "high", "low", "close"]].tolist() == [91250.0, 91563.0, 90953.1, 91319.2]


def test_five_minute_files_and_many() -> None:
    bars = load_bars_many(sorted(SAMPLE.glob("*5m-futures.csv")))
    assert sorted(bars["symbol"].unique()) == ["BTCUSDT", "ETHUSDT"]
    assert bars.attrs["bar_freq"] == pd.Timedelta(minutes=5)
    assert len(bars) == 2 * 10_906


def test_mixed_frequencies_are_refused() -> None:
    with pytest.raises(ValueError, match="different frequencies"):
        load_bars_many([SAMPLE / "BTC_USDT_USDT-1h-futures.csv", SAMPLE / "ETH_USDT_USDT-5m-futures.csv"])


def test_binance_kline_without_header(tmp_path: Path) -> None:
    lines = [
        f"{1735689600000 + i * 60_000},100.0,101.0,99.0,100.5,12.0,{1735689659999 + i * 60_000},1200,10,6,600,0"
        for i in range(3)
    ]
    p = tmp_path / "BTCUSDT-1m-2025-01.csv"
    p.write_text("\n".join(lines) + "\n")
    bars = load_bars(p)
    assert bars["symbol"].iloc[0] == "BTCUSDT"
    assert bars["ts"].iloc[0] == pd.Timestamp("2025-01-01T00:00:00Z")
    assert bars.attrs["bar_freq"] == pd.Timedelta(minutes=1)


def test_binance_kline_with_header_and_microseconds(tmp_path: Path) -> None:
    p = tmp_path / "ETHUSDT-1h-2025-01.csv"
    rows = [
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"
    ]
    rows += [f"{(1735689600 + i * 3600) * 1_000_000},1,2,0.5,1.5,3,0,0,0,0,0,0" for i in range(3)]
    p.write_text("\n".join(rows) + "\n")
    bars = load_bars(p)
    assert bars["ts"].iloc[2] == pd.Timestamp("2025-01-01T02:00:00Z")


def test_generic_parquet_with_symbol_column(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "symbol": ["b", "a", "a"],
            "ts": pd.to_datetime(["2025-01-01T00:00", "2025-01-01T00:00", "2025-01-01T01:00"]),  # naive = UTC
            "open": [1.0, 2.0, 2.0],
            "high": [1.0, 2.0, 2.0],
            "low": [1.0, 2.0, 2.0],
            "close": [1.0, 2.0, 2.0],
            "volume": [0.0, 1.0, 1.0],
        }
    )
    p = tmp_path / "bars.parquet"
    df.to_parquet(p)
    bars = load_bars(p)
    assert bars["symbol"].tolist() == ["A", "A", "B"]  # sorted by symbol, then time
    assert str(bars["ts"].dt.tz) == "UTC"


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("BTC_USDT_USDT-1h-futures.csv", "BTCUSDT"),
        ("ETHUSDT-5m-2024-01.csv", "ETHUSDT"),
        ("sol.parquet", "SOL"),
    ],
)
def test_symbol_from_filename(name: str, symbol: str) -> None:
    assert symbol_from_filename(name) == symbol


# ---------------------------------------------------------------- bars: bad inputs
@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda r: r.__setitem__(2, {**r[2], "close": "abc"}),
            r"bars\.csv, row 4: field 'close' has an unparseable or missing number 'abc'",
        ),
        (
            lambda r: r.__setitem__(1, {**r[1], "low": "-1"}),
            r"bars\.csv, row 3: field 'low' must be a positive price, got -1\.0",
        ),
        (lambda r: r.__setitem__(1, {**r[1], "high": "9.5"}), r"row 3: inconsistent prices"),
        (lambda r: r.__setitem__(3, {**r[3], "volume": "-2"}), r"row 5: field 'volume' must be >= 0"),
        (lambda r: r.__setitem__(2, dict(r[1])), r"row 4: duplicate timestamp 2025-03-01T01:00:00\+00:00"),
        (
            lambda r: r.__setitem__(2, {**r[2], "timestamp": "2025-03-01T00:30:00Z"}),
            r"row 4: unsorted timestamp",
        ),
        (
            lambda r: r.__setitem__(0, {**r[0], "timestamp": "not-a-time"}),
            r"row 2: field 'timestamp' has an unparseable timestamp 'not-a-time'",
        ),
        (
            lambda r: r.__setitem__(1, {**r[1], "open": ""}),
            r"row 3: field 'open' has an unparseable or missing number ''",
        ),
    ],
)
def test_bad_bars_name_file_row_field(tmp_path: Path, mutate, match: str) -> None:  # type: ignore[no-untyped-def]
    rows = bar_rows()
    mutate(rows)
    p = write_csv(tmp_path / "bars.csv", rows)
    with pytest.raises(DataValidationError, match=match) as info:
        load_bars(p)
    assert info.value.file == str(p)


def test_missing_columns(tmp_path: Path) -> None:
    rows = [{k: v for k, v in r.items() if k != "volume"} for r in bar_rows()]
    with pytest.raises(DataValidationError, match=r"missing column\(s\): volume"):
        load_bars(write_csv(tmp_path / "x.csv", rows))
    rows = [{k: v for k, v in r.items() if k != "timestamp"} for r in bar_rows()]
    with pytest.raises(DataValidationError, match=r"missing column\(s\): timestamp"):
        load_bars(write_csv(tmp_path / "y.csv", rows))


def test_missing_file_and_bad_type(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="file does not exist"):
        load_bars(tmp_path / "nope.csv")
    (tmp_path / "bars.xlsx").write_text("x")
    with pytest.raises(DataValidationError, match="unsupported file type"):
        load_bars(tmp_path / "bars.xlsx")


def test_infer_frequency_needs_two_bars() -> None:
    df = pd.DataFrame({"symbol": ["A"], "ts": [pd.Timestamp("2025-01-01", tz="UTC")]})
    with pytest.raises(ValueError, match="at least two bars"):
        infer_bar_frequency(df)


# ---------------------------------------------------------------- trades
def test_good_trades_normalised(tmp_path: Path) -> None:
    rows = [
        GOOD_TRADE,
        {**GOOD_TRADE, "order_id": "o-2", "side": "SHORT", "closed_at": "2025-03-01T11:00:00+00:00"},
    ]
    t = load_trades(write_csv(tmp_path / "t.csv", rows))
    assert t["order_id"].tolist() == ["o-2", "o-1"]  # sorted by closed_at
    assert t["side"].tolist() == ["SHORT", "LONG"] and t["symbol"].iloc[0] == "BTCUSDT"
    assert str(t["closed_at"].dt.tz) == "UTC" and t["pnl_usd"].dtype == float


def test_trades_parquet(tmp_path: Path) -> None:
    p = tmp_path / "t.parquet"
    pd.DataFrame([GOOD_TRADE]).to_parquet(p)
    assert load_trades(p)["order_id"].tolist() == ["o-1"]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"order_id": "o-1"}, r"t\.csv, row 3: duplicate order_id 'o-1' \(first seen at row 2\)"),
        ({"side": "FLAT"}, r"row 3: field 'side' must be LONG or SHORT, got 'FLAT'"),
        ({"entry_price": "0"}, r"row 3: field 'entry_price' must be a positive price"),
        ({"size_usd": "ten"}, r"row 3: field 'size_usd' has an unparseable or missing number 'ten'"),
        ({"confidence": "1.2"}, r"row 3: field 'confidence' must be in \[0, 1\]"),
        ({"closed_at": "2025-03-01T09:00:00Z"}, r"row 3: field 'closed_at' must not be before opened_at"),
        ({"opened_at": "soon"}, r"row 3: field 'opened_at' has an unparseable timestamp 'soon'"),
        ({"fees_usd": "-1"}, r"row 3: field 'fees_usd' must be >= 0"),
        ({"max_adverse_pct": "-0.1"}, r"row 3: field 'max_adverse_pct' must be >= 0"),
        ({"pnl_usd": "inf"}, r"row 3: field 'pnl_usd' must be finite"),
    ],
)
def test_bad_trades(tmp_path: Path, change: dict[str, str], match: str) -> None:
    rows = [GOOD_TRADE, {**GOOD_TRADE, "order_id": "o-2", **change}]
    with pytest.raises(DataValidationError, match=match):
        load_trades(write_csv(tmp_path / "t.csv", rows))


def test_trades_missing_columns(tmp_path: Path) -> None:
    row = {k: v for k, v in GOOD_TRADE.items() if k not in ("route", "multiplier")}
    with pytest.raises(DataValidationError, match=r"missing column\(s\): route, multiplier") as info:
        load_trades(write_csv(tmp_path / "t.csv", [row]))
    assert info.value.field == "route"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("symbol", "![x](http://127.0.0.1:9/p.png)"),
        ("symbol", "[click](http://e.vil)"),
        ("symbol", "BTC\nUSDT"),
        ("symbol", "A" * 33),
        ("symbol", "<img src=x>"),
        ("route", "okx smart"),
        ("route", "a|b"),
        ("route", "r" * 65),
        ("route", "![r](http://e.vil)"),
    ],
)
def test_symbols_and_routes_with_markup_or_too_long_are_refused(
    tmp_path: Path, field: str, value: str
) -> None:
    """Issue 22 item 7: names reach the dashboard; only a plain pattern of bounded length passes."""
    rows = [GOOD_TRADE, {**GOOD_TRADE, "order_id": "o-2", field: value}]
    p = tmp_path / "t.parquet"
    pd.DataFrame(rows).to_parquet(p)
    with pytest.raises(DataValidationError, match=rf"t\.parquet, row 2: field '{field}' must be 1-") as info:
        load_trades(p)
    assert info.value.field == field


def test_plain_symbols_and_routes_pass(tmp_path: Path) -> None:
    rows = [
        GOOD_TRADE,
        {**GOOD_TRADE, "order_id": "o-2", "symbol": "1000pepe-usdt.p", "route": "OKX_smart-2"},
    ]
    t = load_trades(write_csv(tmp_path / "t.csv", rows))
    assert sorted(t["symbol"]) == ["1000PEPE-USDT.P", "BTCUSDT"]


def test_bar_file_with_a_markup_symbol_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "b.csv"
    p.write_text("symbol,ts,open,high,low,close,volume\n[x](http://e.vil),2025-01-01T00:00:00Z,1,1,1,1,1\n")
    with pytest.raises(DataValidationError, match=r"b\.csv, row 2: field 'symbol' must be 1-32"):
        load_bars(p)
