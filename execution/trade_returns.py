"""Per-period returns from a closed-trade log, one column per symbol (or symbol and route).

Each closed trade contributes its return on notional, ``pnl_usd / size_usd``, to the period in
which it CLOSED. Summing those per period treats every trade as an equal, fixed slice of
capital (equal capital per trade, no compounding within a period): a day with a +2 % and a -1 %
trade returns +1 %. That is the return series a per-trade Sharpe should be computed from when
position sizes differ; it is not the account's equity curve.

Periods are right-closed and labelled by their END in UTC: with ``freq='1D'`` a trade closed at
2024-01-01 13:00 belongs to the row 2024-01-02 00:00, and one closed exactly at midnight
2024-01-02 00:00 belongs to that same row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

_REQUIRED = ("closed_at", "pnl_usd", "size_usd")


def _fail(message: str) -> ValueError:
    return ValueError(f"trade_returns: {message}")


def _freq_ns(freq: Any) -> int:
    try:
        delta = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"The 'freq' parameter of trade_returns must be a fixed frequency such as '1D', '1h' or '5min'. "
            f"Got {freq!r} instead."
        ) from exc
    if delta <= pd.Timedelta(0):
        raise ValueError(f"The 'freq' parameter of trade_returns must be positive. Got {freq!r} instead.")
    return int(delta.value)


def _keys(by: str | tuple[str, ...]) -> tuple[str, ...]:
    keys = (by,) if isinstance(by, str) else tuple(by)
    if not keys or not all(isinstance(k, str) for k in keys):
        raise ValueError(
            f"The 'by' parameter of trade_returns must be a column name or a tuple of column names such as "
            f"('symbol', 'route'). Got {by!r} instead."
        )
    return keys


def _closed_ns(trades: pd.DataFrame) -> np.ndarray:
    col = trades["closed_at"]
    if not isinstance(col.dtype, pd.DatetimeTZDtype):
        raise _fail(
            f"field 'closed_at' must be timezone-aware UTC timestamps (the closed-trade contract). "
            f"Got dtype {col.dtype} instead."
        )
    idx = pd.DatetimeIndex(col).tz_convert("UTC").as_unit("ns")
    if idx.hasnans:
        row = int(np.flatnonzero(idx.isna())[0])
        raise _fail(f"field 'closed_at' is missing at row {row}.")
    return np.asarray(idx.asi8)


def _numeric(trades: pd.DataFrame, name: str) -> np.ndarray:
    try:
        values = trades[name].to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise _fail(f"field '{name}' must be numeric. Got dtype {trades[name].dtype}.") from exc
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise _fail(f"field '{name}' must be finite; row {int(bad[0])} has {float(values[bad[0]])!r}.")
    return values


def trade_return_panel(
    trades: pd.DataFrame, *, by: str | tuple[str, ...] = "symbol", freq: str = "1D"
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """:func:`trade_returns` plus the key table and each trade's (row, column) position.

    Returns the wide frame, a frame of the key values per column (one column per ``by`` name,
    in the wide frame's column order), and for every trade its row and column index in the wide
    frame. :func:`execution.metrics_normalizer.normalized_table` uses the positions to count trades
    and sum PnL without a second grouping.
    """
    keys = _keys(by)
    if not isinstance(trades, pd.DataFrame):
        raise ValueError(
            f"The 'trades' parameter of trade_returns must be a DataFrame. Got {type(trades).__name__}."
        )
    missing = [c for c in (*keys, *_REQUIRED) if c not in trades.columns]
    if missing:
        raise _fail(f"the trades frame lacks required column(s) {missing}; it has {list(trades.columns)}.")
    step = _freq_ns(freq)
    closed = _closed_ns(trades)
    pnl = _numeric(trades, "pnl_usd")
    size = _numeric(trades, "size_usd")
    nonpos = np.flatnonzero(size <= 0)
    if nonpos.size:
        raise _fail(f"field 'size_usd' must be > 0; row {int(nonpos[0])} has {float(size[nonpos[0]])!r}.")
    # combined key codes: factorize each key column, then the combination (sorted labels)
    combo = np.zeros(len(trades), dtype=np.int64)
    uniques: list[np.ndarray] = []
    for name in keys:
        codes, uniq = pd.factorize(trades[name], sort=True, use_na_sentinel=True)
        if (codes < 0).any():
            raise _fail(f"field '{name}' is missing at row {int(np.flatnonzero(codes < 0)[0])}.")
        combo = combo * len(uniq) + codes
        uniques.append(np.asarray(uniq, dtype=object))
    col_codes, combos = pd.factorize(combo, sort=True)
    key_values: dict[str, np.ndarray] = {}
    rem = np.asarray(combos, dtype=np.int64)
    for name, uniq in zip(reversed(keys), reversed(uniques)):
        key_values[name] = uniq[rem % len(uniq)]
        rem = rem // len(uniq)
    key_frame = pd.DataFrame({name: key_values[name] for name in keys})
    labels = key_frame[keys[0]].astype(str)
    for name in keys[1:]:
        labels = labels + "|" + key_frame[name].astype(str)
    n_cols = len(combos)
    # right-closed periods labelled by their end: ceil to the frequency grid (epoch-anchored)
    period = -((-closed) // step) * step
    if len(trades) == 0:
        frame = pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="period_end"), columns=pd.Index([]))
        return frame, key_frame, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    first = int(period.min())
    row = (period - first) // step
    n_rows = int(row.max()) + 1
    flat = row * n_cols + col_codes
    sums = np.bincount(flat, weights=pnl / size, minlength=n_rows * n_cols).reshape(n_rows, n_cols)
    counts = np.bincount(flat, minlength=n_rows * n_cols).reshape(n_rows, n_cols)
    occupied = counts > 0
    first_row = occupied.argmax(axis=0)
    last_row = n_rows - 1 - occupied[::-1].argmax(axis=0)
    rows = np.arange(n_rows)[:, None]
    values = np.where((rows >= first_row) & (rows <= last_row), sums, np.nan)
    index = pd.DatetimeIndex(first + step * np.arange(n_rows, dtype=np.int64), tz="UTC", name="period_end")
    index = index.as_unit(pd.DatetimeIndex(trades["closed_at"]).unit)  # keep the input's resolution
    frame = pd.DataFrame(values, index=index, columns=pd.Index(labels.to_numpy(), name="|".join(keys)))
    return frame, key_frame, row, col_codes


def trade_returns(
    trades: pd.DataFrame, *, by: str | tuple[str, ...] = "symbol", freq: str = "1D"
) -> pd.DataFrame:
    """Wide per-period returns from closed trades: one column per key, indexed by UTC period end.

    Parameters
    ----------
    trades : DataFrame
        Closed trades (DESIGN.md contract); uses ``closed_at`` (tz-aware, converted to UTC),
        ``pnl_usd``, ``size_usd`` (> 0) and the ``by`` columns.
    by : str or tuple of str, default 'symbol'
        Key column(s). ``('symbol', 'route')`` gives columns labelled ``'SYMBOL|route'``.
    freq : str, default '1D'
        A fixed period length ('1D', '1h', '5min', ...). Periods are right-closed, labelled by
        their end, on a grid anchored at the Unix epoch (daily periods end at 00:00 UTC).

    Returns
    -------
    DataFrame
        Rows: every period end from the first to the last trade of any key. Values: the sum of
        ``pnl_usd / size_usd`` over the key's trades closed in the period (return on notional,
        equal capital per trade); 0.0 for periods inside the key's active span (from its first to
        its last closed trade) with no trade; NaN outside that span. Columns are sorted.

    Examples
    --------
    >>> t = pd.DataFrame({
    ...     "symbol": ["BTC", "BTC", "ETH"],
    ...     "closed_at": pd.to_datetime(["2024-01-01 10:00", "2024-01-03 09:00", "2024-01-02 12:00"], utc=True),
    ...     "pnl_usd": [10.0, -5.0, 3.0], "size_usd": [1000.0, 500.0, 300.0]})
    >>> trade_returns(t)  # doctest: +NORMALIZE_WHITESPACE
    symbol                      BTC   ETH
    period_end
    2024-01-02 00:00:00+00:00  0.01   NaN
    2024-01-03 00:00:00+00:00  0.00  0.01
    2024-01-04 00:00:00+00:00 -0.01   NaN
    """
    return trade_return_panel(trades, by=by, freq=freq)[0]
