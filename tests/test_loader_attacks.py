"""Bad files of every kind get a :class:`DataValidationError` naming file, row and field.

Each case here once produced a raw pandas/pyarrow traceback or was accepted silently (issue 22,
item 6: 14 of 79 bad files failed that way). The hypothesis tests feed random bytes and random
CSV shapes and allow no exception but the loader's own.
"""

from __future__ import annotations

import contextlib
import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.loaders import DataValidationError, load_bars, load_trades
from tests.test_loaders import GOOD_TRADE, bar_rows, write_csv

BAR_HEADER = "timestamp,open,high,low,close,volume\n"


def _trades_parquet(path: Path, **columns: object) -> Path:
    rows = [dict(GOOD_TRADE, order_id=f"o-{i}") for i in range(3)]
    df = pd.DataFrame(rows)
    for k, v in columns.items():
        df[k] = v
    df.to_parquet(path)
    return path


def _refused(path: Path, loader=load_trades, *, row: int | None = None, field: str | None = None) -> str:
    with pytest.raises(DataValidationError) as info:
        loader(path)
    err = info.value
    assert err.file == str(path)
    assert str(path) in str(err)
    if row is not None:
        assert err.row == row, str(err)
    if field is not None:
        assert err.field == field, str(err)
    return str(err)


# ------------------------------------------------------------------ unreadable files
def test_non_utf8_csv_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "bars.csv"
    p.write_bytes(
        (BAR_HEADER + "2025-03-01T00:00:00Z,10,11,9,10.5,5\n").encode() + b"2025-03-01T01:00\xff,1,1,1,1,1\n"
    )
    msg = _refused(p, load_bars, row=3)
    assert "not UTF-8" in msg and "0xff" in msg


def test_binary_file_named_csv(tmp_path: Path) -> None:
    p = tmp_path / "trades.csv"
    p.write_bytes(b"order_id,symbol\n\x00\x01\x02\x89PNG")
    assert "binary" in _refused(p, row=2)


def test_ragged_row_names_its_line(tmp_path: Path) -> None:
    p = tmp_path / "bars.csv"
    p.write_text(
        BAR_HEADER + "2025-03-01T00:00:00Z,10,11,9,10.5,5\n2025-03-01T01:00:00Z,10,11,9,10.5,5,7,8\n"
    )
    msg = _refused(p, load_bars, row=3)
    assert "ragged" in msg


def test_broken_quote(tmp_path: Path) -> None:
    p = tmp_path / "trades.csv"
    header = ",".join(GOOD_TRADE)
    p.write_text(header + "\n" + '"o-1,BTCUSDT,r,LONG,2025-03-01T10:00:00Z\n')
    msg = _refused(p)
    assert "quoted" in msg or "malformed" in msg


def test_corrupt_and_empty_parquet(tmp_path: Path) -> None:
    good = _trades_parquet(tmp_path / "good.parquet")
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    assert "Parquet" in _refused(corrupt)
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    assert "Parquet" in _refused(empty)


def test_directory_named_csv(tmp_path: Path) -> None:
    d = tmp_path / "x.csv"
    d.mkdir()
    assert "not a regular file" in _refused(d)


def test_epoch_of_inf(tmp_path: Path) -> None:
    p = tmp_path / "bars.csv"
    p.write_text("open_time,open,high,low,close,volume\n1700000000000,10,11,9,10.5,5\ninf,10,11,9,10.5,5\n")
    _refused(p, load_bars, row=3, field="open_time")


def test_epoch_out_of_range(tmp_path: Path) -> None:
    p = tmp_path / "bars.csv"
    p.write_text("open_time,open,high,low,close,volume\n1700000000000,10,11,9,10.5,5\n9e18,10,11,9,10.5,5\n")
    _refused(p, load_bars, field="open_time")


# ------------------------------------------------------------------ accepted silently before
def test_all_null_order_id_parquet_is_refused_not_replayed_as_nan(tmp_path: Path) -> None:
    p = _trades_parquet(tmp_path / "t.parquet", order_id=[None, None, None])
    assert "missing" in _refused(p, row=1, field="order_id")


def test_one_null_order_id_parquet(tmp_path: Path) -> None:
    p = _trades_parquet(tmp_path / "t.parquet", order_id=["a", None, "c"])
    _refused(p, row=2, field="order_id")


def test_integer_order_ids_stay_integral(tmp_path: Path) -> None:
    ints = load_trades(_trades_parquet(tmp_path / "i.parquet", order_id=[1, 2, 3]))
    assert sorted(ints["order_id"]) == ["1", "2", "3"]
    floats = load_trades(_trades_parquet(tmp_path / "f.parquet", order_id=[1.0, 2.0, 3.0]))
    assert sorted(floats["order_id"]) == ["1", "2", "3"]
    _refused(_trades_parquet(tmp_path / "g.parquet", order_id=[1.0, 2.5, 3.0]), row=2, field="order_id")


def test_boolean_and_bytes_prices_refused(tmp_path: Path) -> None:
    _refused(_trades_parquet(tmp_path / "b.parquet", entry_price=[True, False, True]), field="entry_price")
    _refused(
        _trades_parquet(tmp_path / "y.parquet", exit_price=[b"1", b"2", b"3"]), row=1, field="exit_price"
    )


def test_empty_symbol_refused(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "t.csv", [GOOD_TRADE, dict(GOOD_TRADE, order_id="o-2", symbol="  ")])
    assert "got ''" in _refused(p, row=3, field="symbol")


def test_huge_values_refused(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "t.csv", [dict(GOOD_TRADE, pnl_usd="1e308")])
    assert "implausibly large" in _refused(p, row=2, field="pnl_usd")


@pytest.mark.parametrize(
    "symbol",
    ["B" * 3000, "BTC\nUSDT", "![x](http://127.0.0.1:9/steal)", "[click](javascript:alert(1))", "<b>BTC</b>"],
)
def test_symbols_that_could_inject_or_flood_are_refused(tmp_path: Path, symbol: str) -> None:
    p = tmp_path / "t.parquet"
    pd.DataFrame([dict(GOOD_TRADE, symbol=symbol)]).to_parquet(p)
    msg = _refused(p, row=1, field="symbol")
    assert len(msg) < 400  # a 3,000-character name is cut in the message


def test_markdown_route_refused(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "t.csv", [dict(GOOD_TRADE, route="![img](http://127.0.0.1:9/x.png)")])
    _refused(p, row=2, field="route")


def test_ordinary_names_still_load(tmp_path: Path) -> None:
    rows = [
        dict(GOOD_TRADE, order_id="a", symbol="BTC/USDT:USDT", route="binance_direct"),
        dict(GOOD_TRADE, order_id="b", symbol="eth-perp", route="okx.v5"),
    ]
    df = load_trades(write_csv(tmp_path / "t.csv", rows))
    assert sorted(df["symbol"]) == ["BTC/USDT:USDT", "ETH-PERP"]


# ------------------------------------------------------------------ nothing but our error
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".parquet"]))
def test_random_bytes_never_escape_the_loader(tmp_path: Path, data: bytes, suffix: str) -> None:
    p = tmp_path / f"random{suffix}"
    p.write_bytes(data)
    for loader in (load_trades, load_bars):
        with contextlib.suppress(DataValidationError):
            loader(p)


_cell = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "nan", "inf", "-1", "0", "1e308", "2025-03-01T10:00:00Z", "LONG", "1700000000000"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.lists(
        st.sampled_from([*GOOD_TRADE, "timestamp", "open", "high", "low", "close", "volume", "x"]),
        max_size=16,
    ),
    rows=st.lists(st.lists(_cell, max_size=18), max_size=6),
)
def test_random_csv_shapes_never_escape_the_loader(
    tmp_path: Path, header: list[str], rows: list[list[str]]
) -> None:
    p = tmp_path / "shape.csv"
    with open(p, "w", newline="", encoding="utf-8", errors="surrogatepass") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    for loader in (load_trades, load_bars):
        try:
            out = loader(p)
        except (DataValidationError, UnicodeEncodeError):
            continue
        assert len(out) > 0
        if loader is load_trades:
            assert np.isfinite(out["pnl_usd"].to_numpy()).all()


def test_good_bars_still_load(tmp_path: Path) -> None:
    assert len(load_bars(write_csv(tmp_path / "b.csv", bar_rows()))) == 4
