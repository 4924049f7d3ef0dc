"""Loaders for bars and closed trades (CSV or Parquet) with validation that names file, row and field.

Bars come out as ``symbol, ts, open, high, low, close, volume`` with ``ts`` a timezone-aware UTC
timestamp (bar open time), sorted by symbol then time. Accepted inputs:

* generic OHLCV with a header and a timestamp column named ``ts``, ``timestamp``, ``time``,
  ``date``, ``datetime`` or ``open_time`` (ISO strings or epoch numbers; naive times are UTC);
* Binance kline CSVs, with or without their header row (``open_time`` in epoch ms or us);
* the ``../shared/data/binance_usdm`` export (``timestamp`` ISO 8601 with ``Z``).

The symbol comes from a ``symbol`` column, the ``symbol=`` argument, or the file name
(``BTC_USDT_USDT-1h-futures.csv`` -> ``BTCUSDT``, ``BTCUSDT-1h-2024-01.csv`` -> ``BTCUSDT``).

Reading the files and parsing their fields (with file, line and field in every error) is
:mod:`infra.table_io`; this module holds the bar and trade contracts.

Closed trades follow DESIGN.md's contract (one row per round trip, unique ``order_id``).
``max_adverse_pct`` is the worst excursion against the entry price during the trade, in percent,
as a non-negative number (2.5 means the position was 2.5 % under water at its worst).

Row numbers in errors are file line numbers for CSV (the header is line 1) and 1-based row
numbers for Parquet.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from infra.errors import DataValidationError
from infra.table_io import (
    line_of,
    parse_numeric,
    parse_timestamps,
    read_table,
    scalar,
)

BAR_COLUMNS = ["symbol", "ts", "open", "high", "low", "close", "volume"]
PRICE_COLUMNS = ["open", "high", "low", "close"]
TS_CANDIDATES = ("ts", "timestamp", "time", "date", "datetime", "open_time")
TRADE_COLUMNS = [
    "order_id", "symbol", "route", "side", "opened_at", "closed_at", "entry_price",
    "exit_price", "size_usd", "fees_usd", "pnl_usd", "confidence", "multiplier",
    "max_adverse_pct",
]  # fmt: skip
TRADE_NUMERIC = [
    "entry_price", "exit_price", "size_usd", "fees_usd", "pnl_usd", "confidence",
    "multiplier", "max_adverse_pct",
]  # fmt: skip
SIDES = ("LONG", "SHORT")
# Names shown in the dashboard, the doctor and logs: a strict pattern and length keep markup
# (markdown links/images, HTML, newlines) out of every view, whatever a view forgets to escape.
NAME_PATTERNS = {
    "symbol": re.compile(r"[A-Z0-9][A-Z0-9._:/-]{0,31}"),
    "route": re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"),
}
NAME_RULES = {
    "symbol": "1-32 characters A-Z, 0-9, '.', '_', ':', '/' or '-' (e.g. BTC/USDT:USDT), starting with a letter or digit",
    "route": "1-64 characters A-Z, a-z, 0-9, '.', '_' or '-', starting with a letter or digit",
}


def symbol_from_filename(path: str | os.PathLike[str]) -> str:
    """Infer a symbol from a file name: ``BTC_USDT_USDT-1h-futures.csv`` -> ``BTCUSDT``."""
    stem = Path(path).name.split(".")[0]
    head = re.split(r"[-\s]", stem)[0]
    parts = [p for p in head.split("_") if p]
    if len(parts) >= 2:
        return (parts[0] + parts[1]).upper()
    return head.upper()


# --------------------------------------------------------------------------- bars
def load_bars(path: str | os.PathLike[str], *, symbol: str | None = None) -> pd.DataFrame:
    """Load one bar file into the canonical bar frame (see the module docstring).

    Raises
    ------
    DataValidationError
        Missing columns, unparseable numbers or timestamps, non-positive or inconsistent
        prices, negative volume, unsorted or duplicate timestamps; the message names the file,
        row and field.

    Examples
    --------
    >>> bars = load_bars("data/sample/binance_usdm/BTC_USDT_USDT-1h-futures.csv")
    >>> bars.attrs["bar_freq"], bars["symbol"].iloc[0], str(bars["ts"].dt.tz)
    (Timedelta('0 days 01:00:00'), 'BTCUSDT', 'UTC')
    """
    p = Path(path)
    file = str(p)
    df, first_line = read_table(p)
    df.columns = [str(c).strip().lower() for c in df.columns]
    ts_col = next((c for c in TS_CANDIDATES if c in df.columns), "")
    missing = [c for c in [*PRICE_COLUMNS, "volume"] if c not in df.columns]
    if not ts_col:
        missing = ["timestamp (one of " + ", ".join(TS_CANDIDATES) + ")", *missing]
    if missing:
        raise DataValidationError(f"missing column(s): {', '.join(missing)}", file=file, field=missing[0])
    if len(df) == 0:
        raise DataValidationError("file has a header but no rows", file=file)
    out = pd.DataFrame(index=df.index)
    if "symbol" in df.columns:
        out["symbol"] = df["symbol"].astype(str).str.strip().str.upper()
    else:
        out["symbol"] = symbol or symbol_from_filename(p)
    out["ts"] = parse_timestamps(df[ts_col], field=ts_col, file=file, first_line=first_line)
    for col in [*PRICE_COLUMNS, "volume"]:
        out[col] = parse_numeric(df, col, file=file, first_line=first_line)
    validate_bars(out, file=file, first_line=first_line)
    out = out.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
    out.attrs["bar_freq"] = infer_bar_frequency(out)
    out.attrs["source"] = file
    return out


def check_names(df: pd.DataFrame, columns: Sequence[str], *, file: str, first_line: int = 2) -> None:
    """Refuse a ``symbol``/``route`` value that does not match :data:`NAME_PATTERNS` (one per name).

    >>> check_names(pd.DataFrame({"symbol": ["BTCUSDT", "![x](http://e.vil)"]}), ["symbol"], file="t.csv")
    Traceback (most recent call last):
    ...
    infra.errors.DataValidationError: t.csv, row 3: field 'symbol' must be 1-32 characters A-Z, 0-9, '.', '_', ':', '/' or '-' (e.g. BTC/USDT:USDT), starting with a letter or digit, got '![x](http://e.vil)'
    """
    for col in columns:
        pattern = NAME_PATTERNS[col]
        values = df[col].to_numpy()
        uniques, first = np.unique(values.astype(str), return_index=True)  # each name checked once
        for name, i in zip(uniques.tolist(), first.tolist()):
            if pattern.fullmatch(name) is None:
                shown = name if len(name) <= 80 else name[:80] + "..."
                raise DataValidationError(
                    f"field '{col}' must be {NAME_RULES[col]}, got {shown!r}",
                    file=file, row=line_of(first_line, int(i)), field=col, value=shown,
                )  # fmt: skip


def validate_bars(df: pd.DataFrame, *, file: str, first_line: int = 2) -> None:
    """Check symbols, prices, volume and per-symbol timestamp order of a canonical bar frame."""
    check_names(df, ["symbol"], file=file, first_line=first_line)
    for col in PRICE_COLUMNS:
        bad = np.flatnonzero(df[col].to_numpy() <= 0)
        if bad.size:
            i = int(bad[0])
            raise DataValidationError(
                f"field '{col}' must be a positive price, got {scalar(df[col].iloc[i])!r}",
                file=file, row=line_of(first_line, i), field=col, value=df[col].iloc[i],
            )  # fmt: skip
    o, h, lo, c = (df[k].to_numpy() for k in PRICE_COLUMNS)
    tol = 1e-9 * np.maximum(np.abs(h), 1.0)
    bad = np.flatnonzero((h + tol < np.maximum(o, c)) | (lo - tol > np.minimum(o, c)) | (h < lo))
    if bad.size:
        i = int(bad[0])
        raise DataValidationError(
            f"inconsistent prices: high {scalar(h[i])!r} / low {scalar(lo[i])!r} do not contain open {scalar(o[i])!r} "
            f"and close {scalar(c[i])!r}",
            file=file, row=line_of(first_line, i), field="high", value=h[i],
        )  # fmt: skip
    bad = np.flatnonzero(df["volume"].to_numpy() < 0)
    if bad.size:
        i = int(bad[0])
        raise DataValidationError(
            f"field 'volume' must be >= 0, got {scalar(df['volume'].iloc[i])!r}",
            file=file, row=line_of(first_line, i), field="volume", value=df["volume"].iloc[i],
        )  # fmt: skip
    ts = df["ts"].to_numpy(dtype="datetime64[ns]").astype("int64")
    sym = df["symbol"].to_numpy()
    same = sym[1:] == sym[:-1]
    diff = np.diff(ts)
    for kind, mask in (("duplicate", same & (diff == 0)), ("unsorted", same & (diff < 0))):
        bad = np.flatnonzero(mask)
        if bad.size:
            i = int(bad[0]) + 1
            raise DataValidationError(
                f"{kind} timestamp {df['ts'].iloc[i].isoformat()} for symbol {sym[i]} "
                f"(previous row has {df['ts'].iloc[i - 1].isoformat()}); bars must be strictly "
                "increasing in time",
                file=file, row=line_of(first_line, i), field="ts", value=str(df["ts"].iloc[i]),
            )  # fmt: skip


def infer_bar_frequency(bars: pd.DataFrame) -> pd.Timedelta:
    """The bar spacing: the most common time step within symbols.

    Raises ``ValueError`` when no symbol has two bars.
    """
    ts = bars["ts"].to_numpy(dtype="datetime64[ns]").astype("int64")
    sym = bars["symbol"].to_numpy()
    order = np.lexsort((ts, sym))
    ts, sym = ts[order], sym[order]
    d = np.diff(ts)[sym[1:] == sym[:-1]]
    d = d[d > 0]
    if d.size == 0:
        raise ValueError("cannot infer the bar frequency: need at least two bars of one symbol")
    values, counts = np.unique(d, return_counts=True)
    return pd.Timedelta(int(values[np.argmax(counts)]), unit="ns")


def load_bars_many(paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """Load and concatenate several bar files; all must share one bar frequency."""
    frames = [load_bars(p) for p in paths]
    if not frames:
        raise ValueError("The 'paths' parameter of load_bars_many must name at least one file. Got none.")
    freqs = {f.attrs["bar_freq"] for f in frames}
    if len(freqs) > 1:
        detail = ", ".join(f"{f.attrs['source']}={f.attrs['bar_freq']}" for f in frames)
        raise ValueError(f"bar files have different frequencies: {detail}")
    out = pd.concat(frames, ignore_index=True).sort_values(["symbol", "ts"], kind="stable")
    dup = out.duplicated(["symbol", "ts"])
    if dup.any():
        row = out[dup].iloc[0]
        raise ValueError(f"symbol {row['symbol']} appears in more than one file at {row['ts']}")
    out = out.reset_index(drop=True)
    out.attrs["bar_freq"] = freqs.pop()
    out.attrs["source"] = ",".join(str(f.attrs["source"]) for f in frames)
    return out


# --------------------------------------------------------------------------- trades
def load_trades(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Load a closed-trade log (CSV or Parquet) and validate it against the contract.

    Extra columns are kept. ``side`` is upper-cased; ``opened_at``/``closed_at`` become UTC.
    The frame is sorted by ``closed_at`` (then ``order_id``).

    Raises
    ------
    DataValidationError
        Missing columns, duplicate ``order_id``, unparseable numbers or timestamps, bad
        ``side``, non-positive prices or sizes, ``closed_at`` before ``opened_at``,
        ``confidence`` outside [0, 1], negative fees or ``max_adverse_pct``.
    """
    p = Path(path)
    df, first_line = read_table(p)
    return validate_trades(df, file=str(p), first_line=first_line)


def validate_trades(df: pd.DataFrame, *, file: str = "<frame>", first_line: int = 2) -> pd.DataFrame:
    """Validate and normalise a closed-trade frame (see :func:`load_trades`)."""
    df = df.copy()
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in TRADE_COLUMNS if c not in df.columns]
    if missing:
        raise DataValidationError(f"missing column(s): {', '.join(missing)}", file=file, field=missing[0])
    oid = _order_ids(df["order_id"], file=file, first_line=first_line)
    dup = oid.duplicated(keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        j = int(np.flatnonzero((oid == oid.iloc[i]).to_numpy())[0])
        raise DataValidationError(
            f"duplicate order_id {oid.iloc[i]!r} (first seen at row {line_of(first_line, j)})",
            file=file, row=line_of(first_line, i), field="order_id", value=oid.iloc[i],
        )  # fmt: skip
    df["order_id"] = oid
    for col in ("symbol", "route"):
        df[col] = _names(df[col], field=col, file=file, first_line=first_line)
    df["symbol"] = df["symbol"].str.upper()
    check_names(df, ["symbol", "route"], file=file, first_line=first_line)
    side = df["side"].astype(str).str.strip().str.upper()
    bad = np.flatnonzero(~side.isin(SIDES).to_numpy())
    if bad.size:
        i = int(bad[0])
        raise DataValidationError(
            f"field 'side' must be LONG or SHORT, got {scalar(df['side'].iloc[i])!r}",
            file=file, row=line_of(first_line, i), field="side", value=df["side"].iloc[i],
        )  # fmt: skip
    df["side"] = side
    for col in ("opened_at", "closed_at"):
        df[col] = parse_timestamps(df[col], field=col, file=file, first_line=first_line)
    for col in TRADE_NUMERIC:
        df[col] = parse_numeric(df, col, file=file, first_line=first_line)
    checks: Sequence[tuple[str, np.ndarray, str]] = (
        ("entry_price", df["entry_price"].to_numpy() <= 0, "must be a positive price"),
        ("exit_price", df["exit_price"].to_numpy() <= 0, "must be a positive price"),
        ("size_usd", df["size_usd"].to_numpy() <= 0, "must be > 0"),
        ("fees_usd", df["fees_usd"].to_numpy() < 0, "must be >= 0"),
        (
            "confidence",
            (df["confidence"].to_numpy() < 0) | (df["confidence"].to_numpy() > 1),
            "must be in [0, 1]",
        ),
        ("multiplier", df["multiplier"].to_numpy() <= 0, "must be > 0"),
        ("max_adverse_pct", df["max_adverse_pct"].to_numpy() < 0, "must be >= 0 (percent against entry)"),
        ("closed_at", (df["closed_at"] < df["opened_at"]).to_numpy(), "must not be before opened_at"),
    )
    for col, mask, what in checks:
        bad = np.flatnonzero(mask)
        if bad.size:
            i = int(bad[0])
            raise DataValidationError(
                f"field '{col}' {what}, got {scalar(df[col].iloc[i])!r}",
                file=file, row=line_of(first_line, i), field=col, value=df[col].iloc[i],
            )  # fmt: skip
    return df.sort_values(["closed_at", "order_id"], kind="stable").reset_index(drop=True)


def _order_ids(raw: pd.Series, *, file: str, first_line: int) -> pd.Series:
    """Order ids as text: nulls refused (never replayed as ``"nan"``), integers kept integral
    (``1``, not ``"1.0"``), bytes and non-integral floats refused."""
    null = np.flatnonzero(raw.isna().to_numpy())
    if null.size:
        i = int(null[0])
        raise DataValidationError(
            "field 'order_id' is missing (null)", file=file, row=line_of(first_line, i), field="order_id",
            value=None,
        )  # fmt: skip
    if pd.api.types.is_bool_dtype(raw):
        raise DataValidationError(
            "field 'order_id' must be text or an integer, got booleans", file=file, row=first_line,
            field="order_id", value=scalar(raw.iloc[0]),
        )  # fmt: skip
    if pd.api.types.is_float_dtype(raw):
        values = raw.to_numpy(dtype=float)
        frac = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
        if frac.size:
            i = int(frac[0])
            raise DataValidationError(
                f"field 'order_id' must be text or an integer, got {scalar(values[i])!r}",
                file=file, row=line_of(first_line, i), field="order_id", value=scalar(values[i]),
            )  # fmt: skip
        oid = pd.Series([str(int(v)) for v in values], index=raw.index, dtype=object)
    elif pd.api.types.is_integer_dtype(raw):
        oid = raw.astype("int64").astype(str)
    else:
        odd = np.flatnonzero(
            raw.map(lambda v: not isinstance(v, (str, int)) or isinstance(v, bool)).to_numpy()
        )
        if odd.size:
            i = int(odd[0])
            raise DataValidationError(
                f"field 'order_id' must be text or an integer, got {type(raw.iloc[i]).__name__}",
                file=file, row=line_of(first_line, i), field="order_id", value=raw.iloc[i],
            )  # fmt: skip
        oid = raw.astype(str).str.strip()
    empty = np.flatnonzero((oid == "").to_numpy())
    if empty.size:
        raise DataValidationError(
            "field 'order_id' is empty", file=file, row=line_of(first_line, int(empty[0])), field="order_id",
            value="",
        )  # fmt: skip
    return oid


def _names(raw: pd.Series, *, field: str, file: str, first_line: int) -> pd.Series:
    """Symbols and routes as stripped text: nulls and non-text refused (the pattern: :func:`check_names`)."""
    null = np.flatnonzero(raw.isna().to_numpy())
    if null.size:
        i = int(null[0])
        raise DataValidationError(
            f"field '{field}' is missing (null)",
            file=file,
            row=line_of(first_line, i),
            field=field,
            value=None,
        )
    text = raw.map(lambda v: v if isinstance(v, str) else str(v) if isinstance(v, int) else None)
    kind = np.flatnonzero(text.isna().to_numpy())
    if kind.size:
        i = int(kind[0])
        raise DataValidationError(
            f"field '{field}' must be text, got {type(raw.iloc[i]).__name__}",
            file=file, row=line_of(first_line, i), field=field, value=raw.iloc[i],
        )  # fmt: skip
    return text.astype(str).str.strip()  # the pattern: check_names, once per distinct name


def read_frame(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV or Parquet file the platform wrote itself (no contract validation)."""
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(p)
    return pd.read_csv(p)
