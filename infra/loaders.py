"""Loaders for bars and closed trades (CSV or Parquet) with validation that names file, row and field.

Why this file is long: bars and trades share the reading and error-naming machinery (file, row and
field in every message); the two loaders are short, the shared parsing is most of the file.

Bars come out as ``symbol, ts, open, high, low, close, volume`` with ``ts`` a timezone-aware UTC
timestamp (bar open time), sorted by symbol then time. Accepted inputs:

* generic OHLCV with a header and a timestamp column named ``ts``, ``timestamp``, ``time``,
  ``date``, ``datetime`` or ``open_time`` (ISO strings or epoch numbers; naive times are UTC);
* Binance kline CSVs, with or without their header row (``open_time`` in epoch ms or us);
* the ``../shared/data/binance_usdm`` export (``timestamp`` ISO 8601 with ``Z``).

The symbol comes from a ``symbol`` column, the ``symbol=`` argument, or the file name
(``BTC_USDT_USDT-1h-futures.csv`` -> ``BTCUSDT``, ``BTCUSDT-1h-2024-01.csv`` -> ``BTCUSDT``).

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
from typing import Any, Literal

import numpy as np
import pandas as pd

from infra.errors import DataValidationError

BAR_COLUMNS = ["symbol", "ts", "open", "high", "low", "close", "volume"]
PRICE_COLUMNS = ["open", "high", "low", "close"]
TS_CANDIDATES = ("ts", "timestamp", "time", "date", "datetime", "open_time")
KLINE_COLUMNS = [
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
]  # fmt: skip
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


# --------------------------------------------------------------------------- reading
def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_table(path: Path) -> tuple[pd.DataFrame, int]:
    """Read CSV or Parquet as strings-or-numbers; return the frame and the line of its first row.

    Every way a file can fail to parse (not a file, not UTF-8, a ragged row, a broken quote, a
    corrupt or empty Parquet file) becomes a :class:`DataValidationError` naming the file and,
    where the parser knows it, the line.
    """
    if not path.exists():
        raise DataValidationError("file does not exist", file=str(path))
    if not path.is_file():
        raise DataValidationError("is not a regular file (a directory?)", file=str(path))
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path), 1
    if suffix not in (".csv", ".txt", ".gz"):
        raise DataValidationError(
            f"unsupported file type {suffix!r}: expected .csv or .parquet", file=str(path)
        )
    if suffix != ".gz":
        _check_text(path)
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline().strip()
    except UnicodeDecodeError:
        raise _utf8_error(path) from None
    except (OSError, EOFError) as exc:
        raise DataValidationError(f"cannot be read ({_one_line(exc)})", file=str(path)) from None
    if not first:
        raise DataValidationError("file is empty", file=str(path))
    fields = first.split(",")
    try:
        if _is_number(fields[0]) and len(fields) >= 6:  # headerless Binance kline
            names = KLINE_COLUMNS[: len(fields)] + [
                f"extra_{i}" for i in range(len(fields) - len(KLINE_COLUMNS))
            ]
            return _read_csv(path, header=None, names=names), 1
        return _read_csv(path), 2
    except DataValidationError:
        raise
    except UnicodeDecodeError:
        raise _utf8_error(path) from None
    except (ValueError, OSError, EOFError, pd.errors.ParserError) as exc:
        raise DataValidationError(f"cannot be parsed as CSV: {_one_line(exc)}", file=str(path)) from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


_LINE_RE = re.compile(r"line (\d+)")


def _read_csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    """``pd.read_csv`` as strings, strict about ragged rows and broken quotes (the C parser)."""
    try:
        return pd.read_csv(
            path, dtype=str, keep_default_na=False, encoding="utf-8", on_bad_lines="error", **kwargs
        )
    except pd.errors.ParserError as exc:
        text = _one_line(exc)
        m = _LINE_RE.search(text)
        row = int(m.group(1)) if m else None
        what = "a ragged row (wrong number of fields)" if "fields" in text else "a malformed row"
        if "EOF inside string" in text or "quot" in text.lower():
            what = "an unterminated quoted field"
        raise DataValidationError(f"{what}: {text}", file=str(path), row=row) from None
    except pd.errors.EmptyDataError:
        raise DataValidationError("file is empty", file=str(path)) from None


def _check_text(path: Path, *, sample: int = 1 << 16) -> None:
    """Refuse binary files up front (a NUL byte in the first 64 KiB), naming the line."""
    with open(path, "rb") as fh:
        head = fh.read(sample)
    if b"\x00" in head:
        line = head[: head.index(b"\x00")].count(b"\n") + 1
        raise DataValidationError("is binary, not CSV text (NUL byte)", file=str(path), row=line)


def _utf8_error(path: Path) -> DataValidationError:
    """Name the line and byte of the first invalid UTF-8 sequence (read only after a failure)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return DataValidationError(
            f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            file=str(path), row=line,
        )  # fmt: skip
    return DataValidationError("is not UTF-8 text", file=str(path))


def _read_parquet(path: Path) -> pd.DataFrame:
    """Read a Parquet file; a corrupt, empty or unreadable one names itself."""
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...: all mean "not a readable file"
        raise DataValidationError(
            f"cannot be read as Parquet ({type(exc).__name__}: {_one_line(exc)})", file=str(path)
        ) from None


def _py(value: Any) -> Any:
    """NumPy scalar -> Python scalar, so messages read ``-1.0`` rather than ``np.float64(-1.0)``."""
    return value.item() if isinstance(value, np.generic) else value


def _row(first_line: int, i: int) -> int:
    return first_line + int(i)


def symbol_from_filename(path: str | os.PathLike[str]) -> str:
    """Infer a symbol from a file name: ``BTC_USDT_USDT-1h-futures.csv`` -> ``BTCUSDT``."""
    stem = Path(path).name.split(".")[0]
    head = re.split(r"[-\s]", stem)[0]
    parts = [p for p in head.split("_") if p]
    if len(parts) >= 2:
        return (parts[0] + parts[1]).upper()
    return head.upper()


MAX_ABS_VALUE = 1e15
"""Largest magnitude accepted for any price, size or USD amount: 1e15 is a thousand trillion; a
value above it is a unit error or garbage (1e308 once passed silently and overflowed sums)."""


def _parse_numeric(df: pd.DataFrame, col: str, *, file: str, first_line: int) -> np.ndarray:
    raw = df[col]
    if pd.api.types.is_bool_dtype(raw):
        raise DataValidationError(
            f"field '{col}' must be a number, got booleans", file=file, row=first_line, field=col,
            value=_py(raw.iloc[0]) if len(raw) else None,
        )  # fmt: skip
    if pd.api.types.is_numeric_dtype(raw):
        values = raw.to_numpy(dtype=float, na_value=np.nan)
    else:
        kinds = raw.map(type)
        odd = np.flatnonzero(kinds.isin([bytes, bytearray, bool, np.bool_]).to_numpy())
        if odd.size:
            i = int(odd[0])
            raise DataValidationError(
                f"field '{col}' must be a number, got {type(raw.iloc[i]).__name__} {raw.iloc[i]!r:.60}",
                file=file, row=_row(first_line, i), field=col, value=raw.iloc[i],
            )  # fmt: skip
        values = pd.to_numeric(raw.astype(str).str.strip(), errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(np.isnan(values))  # missing, unparseable, or a literal "nan": all refused
    if bad.size:
        i = int(bad[0])
        value = raw.iloc[i]
        raise DataValidationError(
            f"field '{col}' has an unparseable or missing number {_short(value)!r}",
            file=file, row=_row(first_line, i), field=col, value=value,
        )  # fmt: skip
    inf = np.flatnonzero(~np.isfinite(values))
    if inf.size:
        i = int(inf[0])
        raise DataValidationError(
            f"field '{col}' must be finite, got {_py(raw.iloc[i])!r}",
            file=file, row=_row(first_line, i), field=col, value=raw.iloc[i],
        )  # fmt: skip
    huge = np.flatnonzero(np.abs(values) > MAX_ABS_VALUE)
    if huge.size:
        i = int(huge[0])
        raise DataValidationError(
            f"field '{col}' is implausibly large ({values[i]:.3g}; the limit is {MAX_ABS_VALUE:.0e})",
            file=file, row=_row(first_line, i), field=col, value=_py(values[i]),
        )  # fmt: skip
    return values


def _short(value: Any, n: int = 80) -> Any:
    """A value cut to ``n`` characters for a message (a 3,000-character field must not flood it)."""
    return value[:n] + "..." if isinstance(value, str) and len(value) > n else value


def parse_timestamps(raw: pd.Series, *, field: str, file: str, first_line: int) -> pd.Series:
    """Parse ISO strings or epoch numbers (s, ms, us or ns, by magnitude) into UTC timestamps."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        out = raw.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(raw):
        out = raw.dt.tz_localize("UTC")
    else:
        text = raw.astype(str).str.strip()
        as_num = pd.to_numeric(text, errors="coerce")
        if len(text) and as_num.notna().all():
            nums = as_num.to_numpy(dtype=float)
            odd = np.flatnonzero(~np.isfinite(nums) | (np.abs(nums) > 9e18))
            if odd.size:
                i = int(odd[0])
                raise DataValidationError(
                    f"field '{field}' has an impossible epoch timestamp {_py(raw.iloc[i])!r}",
                    file=file, row=_row(first_line, i), field=field, value=raw.iloc[i],
                )  # fmt: skip
            # The unit follows the magnitude (s < 1e11 <= ms < 1e14 <= us < 1e17 <= ns); a column
            # mixing units would silently put some rows in 1970, so every row must agree.
            mag = np.abs(nums)
            cls = (mag >= 1e11).astype(int) + (mag >= 1e14) + (mag >= 1e17)
            unit_cls = int(np.median(cls))
            odd = np.flatnonzero(cls != unit_cls)
            if odd.size:
                i = int(odd[0])
                raise DataValidationError(
                    f"field '{field}' has an epoch timestamp {_py(raw.iloc[i])!r} in a different unit "
                    "(s/ms/us/ns, by magnitude) from the rest of the column",
                    file=file, row=_row(first_line, i), field=field, value=raw.iloc[i],
                )  # fmt: skip
            unit: Literal["s", "ms", "us", "ns"] = ("s", "ms", "us", "ns")[unit_cls]
            try:
                out = pd.to_datetime(as_num.astype("int64"), unit=unit, utc=True)
            except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
                i = int(np.argmax(np.abs(nums)))
                raise DataValidationError(
                    f"field '{field}' has an epoch timestamp out of range {_py(raw.iloc[i])!r}",
                    file=file, row=_row(first_line, i), field=field, value=raw.iloc[i],
                ) from None  # fmt: skip
        else:
            out = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
            if out.isna().any():
                out = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
    bad = np.flatnonzero(out.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise DataValidationError(
            f"field '{field}' has an unparseable timestamp {_py(raw.iloc[i])!r}",
            file=file, row=_row(first_line, i), field=field, value=raw.iloc[i],
        )  # fmt: skip
    return pd.Series(pd.DatetimeIndex(out).tz_convert("UTC"), index=raw.index, name=raw.name)


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
    df, first_line = _read_table(p)
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
        out[col] = _parse_numeric(df, col, file=file, first_line=first_line)
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
                    file=file, row=_row(first_line, int(i)), field=col, value=shown,
                )  # fmt: skip


def validate_bars(df: pd.DataFrame, *, file: str, first_line: int = 2) -> None:
    """Check symbols, prices, volume and per-symbol timestamp order of a canonical bar frame."""
    check_names(df, ["symbol"], file=file, first_line=first_line)
    for col in PRICE_COLUMNS:
        bad = np.flatnonzero(df[col].to_numpy() <= 0)
        if bad.size:
            i = int(bad[0])
            raise DataValidationError(
                f"field '{col}' must be a positive price, got {_py(df[col].iloc[i])!r}",
                file=file, row=_row(first_line, i), field=col, value=df[col].iloc[i],
            )  # fmt: skip
    o, h, lo, c = (df[k].to_numpy() for k in PRICE_COLUMNS)
    tol = 1e-9 * np.maximum(np.abs(h), 1.0)
    bad = np.flatnonzero((h + tol < np.maximum(o, c)) | (lo - tol > np.minimum(o, c)) | (h < lo))
    if bad.size:
        i = int(bad[0])
        raise DataValidationError(
            f"inconsistent prices: high {_py(h[i])!r} / low {_py(lo[i])!r} do not contain open {_py(o[i])!r} "
            f"and close {_py(c[i])!r}",
            file=file, row=_row(first_line, i), field="high", value=h[i],
        )  # fmt: skip
    bad = np.flatnonzero(df["volume"].to_numpy() < 0)
    if bad.size:
        i = int(bad[0])
        raise DataValidationError(
            f"field 'volume' must be >= 0, got {_py(df['volume'].iloc[i])!r}",
            file=file, row=_row(first_line, i), field="volume", value=df["volume"].iloc[i],
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
                file=file, row=_row(first_line, i), field="ts", value=str(df["ts"].iloc[i]),
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
    df, first_line = _read_table(p)
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
            f"duplicate order_id {oid.iloc[i]!r} (first seen at row {_row(first_line, j)})",
            file=file, row=_row(first_line, i), field="order_id", value=oid.iloc[i],
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
            f"field 'side' must be LONG or SHORT, got {_py(df['side'].iloc[i])!r}",
            file=file, row=_row(first_line, i), field="side", value=df["side"].iloc[i],
        )  # fmt: skip
    df["side"] = side
    for col in ("opened_at", "closed_at"):
        df[col] = parse_timestamps(df[col], field=col, file=file, first_line=first_line)
    for col in TRADE_NUMERIC:
        df[col] = _parse_numeric(df, col, file=file, first_line=first_line)
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
                f"field '{col}' {what}, got {_py(df[col].iloc[i])!r}",
                file=file, row=_row(first_line, i), field=col, value=df[col].iloc[i],
            )  # fmt: skip
    return df.sort_values(["closed_at", "order_id"], kind="stable").reset_index(drop=True)


def _order_ids(raw: pd.Series, *, file: str, first_line: int) -> pd.Series:
    """Order ids as text: nulls refused (never replayed as ``"nan"``), integers kept integral
    (``1``, not ``"1.0"``), bytes and non-integral floats refused."""
    null = np.flatnonzero(raw.isna().to_numpy())
    if null.size:
        i = int(null[0])
        raise DataValidationError(
            "field 'order_id' is missing (null)", file=file, row=_row(first_line, i), field="order_id",
            value=None,
        )  # fmt: skip
    if pd.api.types.is_bool_dtype(raw):
        raise DataValidationError(
            "field 'order_id' must be text or an integer, got booleans", file=file, row=first_line,
            field="order_id", value=_py(raw.iloc[0]),
        )  # fmt: skip
    if pd.api.types.is_float_dtype(raw):
        values = raw.to_numpy(dtype=float)
        frac = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
        if frac.size:
            i = int(frac[0])
            raise DataValidationError(
                f"field 'order_id' must be text or an integer, got {_py(values[i])!r}",
                file=file, row=_row(first_line, i), field="order_id", value=_py(values[i]),
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
                file=file, row=_row(first_line, i), field="order_id", value=raw.iloc[i],
            )  # fmt: skip
        oid = raw.astype(str).str.strip()
    empty = np.flatnonzero((oid == "").to_numpy())
    if empty.size:
        raise DataValidationError(
            "field 'order_id' is empty", file=file, row=_row(first_line, int(empty[0])), field="order_id",
            value="",
        )  # fmt: skip
    return oid


def _names(raw: pd.Series, *, field: str, file: str, first_line: int) -> pd.Series:
    """Symbols and routes as stripped text: nulls and non-text refused (the pattern: :func:`check_names`)."""
    null = np.flatnonzero(raw.isna().to_numpy())
    if null.size:
        i = int(null[0])
        raise DataValidationError(
            f"field '{field}' is missing (null)", file=file, row=_row(first_line, i), field=field, value=None
        )
    text = raw.map(lambda v: v if isinstance(v, str) else str(v) if isinstance(v, int) else None)
    kind = np.flatnonzero(text.isna().to_numpy())
    if kind.size:
        i = int(kind[0])
        raise DataValidationError(
            f"field '{field}' must be text, got {type(raw.iloc[i]).__name__}",
            file=file, row=_row(first_line, i), field=field, value=raw.iloc[i],
        )  # fmt: skip
    return text.astype(str).str.strip()  # the pattern: check_names, once per distinct name


def read_frame(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV or Parquet file the platform wrote itself (no contract validation)."""
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(p)
    return pd.read_csv(p)
