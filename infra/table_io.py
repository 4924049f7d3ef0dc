"""Reading tables from CSV and Parquet files and parsing their fields, naming file, line and field.

Every way a file can fail (missing, binary, not UTF-8, a ragged row, a broken quote, a corrupt
Parquet file) and every bad field (an unparseable or infinite number, an impossible or mixed-unit
epoch timestamp) becomes an :class:`~infra.errors.DataValidationError` that says where. The
loaders of :mod:`infra.loaders` build the bar and trade contracts on top of these.

Line numbers are file lines for CSV (the header is line 1) and 1-based rows for Parquet.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from infra.errors import DataValidationError

KLINE_COLUMNS = [
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
]  # fmt: skip
"""Columns of a Binance kline CSV, for files without a header row."""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_table(path: Path) -> tuple[pd.DataFrame, int]:
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
        raise DataValidationError(f"cannot be read ({one_line(exc)})", file=str(path)) from None
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
        raise DataValidationError(f"cannot be parsed as CSV: {one_line(exc)}", file=str(path)) from None


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


_LINE_RE = re.compile(r"line (\d+)")


def _read_csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    """``pd.read_csv`` as strings, strict about ragged rows and broken quotes (the C parser)."""
    try:
        return pd.read_csv(
            path, dtype=str, keep_default_na=False, encoding="utf-8", on_bad_lines="error", **kwargs
        )
    except pd.errors.ParserError as exc:
        text = one_line(exc)
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
            f"cannot be read as Parquet ({type(exc).__name__}: {one_line(exc)})", file=str(path)
        ) from None


def scalar(value: Any) -> Any:
    """NumPy scalar -> Python scalar, so messages read ``-1.0`` rather than ``np.float64(-1.0)``."""
    return value.item() if isinstance(value, np.generic) else value


def line_of(first_line: int, i: int) -> int:
    """File line (CSV) or row (Parquet) of the frame's ``i``-th row."""
    return first_line + int(i)


MAX_ABS_VALUE = 1e15
"""Largest magnitude accepted for any price, size or USD amount: 1e15 is a thousand trillion; a
value above it is a unit error or garbage (1e308 once passed silently and overflowed sums)."""


def parse_numeric(df: pd.DataFrame, col: str, *, file: str, first_line: int) -> np.ndarray:
    raw = df[col]
    if pd.api.types.is_bool_dtype(raw):
        raise DataValidationError(
            f"field '{col}' must be a number, got booleans", file=file, row=first_line, field=col,
            value=scalar(raw.iloc[0]) if len(raw) else None,
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
                file=file, row=line_of(first_line, i), field=col, value=raw.iloc[i],
            )  # fmt: skip
        values = pd.to_numeric(raw.astype(str).str.strip(), errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(np.isnan(values))  # missing, unparseable, or a literal "nan": all refused
    if bad.size:
        i = int(bad[0])
        value = raw.iloc[i]
        raise DataValidationError(
            f"field '{col}' has an unparseable or missing number {shorten(value)!r}",
            file=file, row=line_of(first_line, i), field=col, value=value,
        )  # fmt: skip
    inf = np.flatnonzero(~np.isfinite(values))
    if inf.size:
        i = int(inf[0])
        raise DataValidationError(
            f"field '{col}' must be finite, got {scalar(raw.iloc[i])!r}",
            file=file, row=line_of(first_line, i), field=col, value=raw.iloc[i],
        )  # fmt: skip
    huge = np.flatnonzero(np.abs(values) > MAX_ABS_VALUE)
    if huge.size:
        i = int(huge[0])
        raise DataValidationError(
            f"field '{col}' is implausibly large ({values[i]:.3g}; the limit is {MAX_ABS_VALUE:.0e})",
            file=file, row=line_of(first_line, i), field=col, value=scalar(values[i]),
        )  # fmt: skip
    return values


def shorten(value: Any, n: int = 80) -> Any:
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
                    f"field '{field}' has an impossible epoch timestamp {scalar(raw.iloc[i])!r}",
                    file=file, row=line_of(first_line, i), field=field, value=raw.iloc[i],
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
                    f"field '{field}' has an epoch timestamp {scalar(raw.iloc[i])!r} in a different unit "
                    "(s/ms/us/ns, by magnitude) from the rest of the column",
                    file=file, row=line_of(first_line, i), field=field, value=raw.iloc[i],
                )  # fmt: skip
            unit: Literal["s", "ms", "us", "ns"] = ("s", "ms", "us", "ns")[unit_cls]
            try:
                out = pd.to_datetime(as_num.astype("int64"), unit=unit, utc=True)
            except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
                i = int(np.argmax(np.abs(nums)))
                raise DataValidationError(
                    f"field '{field}' has an epoch timestamp out of range {scalar(raw.iloc[i])!r}",
                    file=file, row=line_of(first_line, i), field=field, value=raw.iloc[i],
                ) from None  # fmt: skip
        else:
            out = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
            if out.isna().any():
                out = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
    bad = np.flatnonzero(out.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise DataValidationError(
            f"field '{field}' has an unparseable timestamp {scalar(raw.iloc[i])!r}",
            file=file, row=line_of(first_line, i), field=field, value=raw.iloc[i],
        )  # fmt: skip
    return pd.Series(pd.DatetimeIndex(out).tz_convert("UTC"), index=raw.index, name=raw.name)
