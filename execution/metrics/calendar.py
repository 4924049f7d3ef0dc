"""How many bars make a year: ``periods_per_year`` for crypto (24/7) and equity (session) calendars."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from execution.metrics.core import as_panel, check_choice

CALENDARS = ("crypto", "equity")
_DAY_S = 86_400.0
_CRYPTO_YEAR_S = 365.0 * _DAY_S
_EQUITY_SESSIONS = 252.0
_EQUITY_SESSION_S = 6.5 * 3600.0
_UNIT_S = {
    "s": 1.0, "sec": 1.0, "second": 1.0,
    "m": 60.0, "min": 60.0, "t": 60.0, "minute": 60.0,
    "h": 3600.0, "hour": 3600.0,
    "d": _DAY_S, "day": _DAY_S, "b": _DAY_S,
    "w": 7 * _DAY_S, "week": 7 * _DAY_S,
}  # fmt: skip
_MONTH_UNITS = ("M", "ME", "MS", "BM", "BME", "BMS", "mo", "month")
_YEAR_UNITS = ("Y", "YE", "YS", "A", "y", "year")
_FREQ_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)?\s*([A-Za-z]+)\s*$")


def _from_seconds(seconds: float, calendar: str) -> float:
    if calendar == "crypto":
        return _CRYPTO_YEAR_S / seconds
    if seconds < _DAY_S:  # intraday equity bars: 252 sessions of 6.5 hours
        return _EQUITY_SESSIONS * _EQUITY_SESSION_S / seconds
    # daily and longer equity bars count sessions (a trading week is 5 sessions)
    days = seconds / _DAY_S
    if days < 7:
        return _EQUITY_SESSIONS / days
    return 52.0 / (days / 7.0)


def _parse_text(text: str, calendar: str, func: str) -> float:
    m = _FREQ_RE.match(text)
    if m is None:
        raise ValueError(
            f"The 'index_or_frequency' parameter of {func} must be a frequency such as '5m', '5min', '1h', "
            f"'1D', '1W' or '1M'. Got {text!r} instead."
        )
    count = float(m.group(1)) if m.group(1) else 1.0
    unit = m.group(2)
    if count <= 0:
        raise ValueError(
            f"The 'index_or_frequency' parameter of {func} must be a positive frequency. Got {text!r}."
        )
    if unit in _MONTH_UNITS:
        return 12.0 / count
    if unit in _YEAR_UNITS:
        return 1.0 / count
    key = unit.lower()
    if key.endswith("s") and key[:-1] in _UNIT_S and key not in _UNIT_S:
        key = key[:-1]
    if key not in _UNIT_S:
        raise ValueError(
            f"The 'index_or_frequency' parameter of {func} has an unknown unit {unit!r} in {text!r}; "
            "use s, m/min, h, D, W, M (month) or Y."
        )
    return _from_seconds(count * _UNIT_S[key], calendar)


def periods_per_year(index_or_frequency: Any, *, calendar: str = "crypto") -> float:
    """Number of bars in a year for a bar frequency under a trading calendar.

    Parameters
    ----------
    index_or_frequency : str, pandas.Timedelta, datetime.timedelta, pandas.DatetimeIndex or Series of timestamps
        The bar size: a frequency string (Binance style ``'5m'``, ``'1h'``, ``'1d'``, ``'1w'``,
        ``'1M'`` = month, or pandas style ``'5min'``, ``'1h'``, ``'1D'``, ``'W'``, ``'ME'``), a
        timedelta, or timestamps whose median spacing is the bar size.
    calendar : {'crypto', 'equity'}, default 'crypto'
        ``'crypto'`` trades 365 days x 24 hours: a year holds ``365 * 86400 / bar_seconds`` bars
        (daily 365, hourly 8,760, 5-minute 105,120, weekly 365 / 7). ``'equity'`` trades 252
        sessions of 6.5 hours: intraday bars give ``252 * 6.5 h / bar`` (hourly 1,638, 5-minute
        19,656, not 252 x 288); daily bars 252 (n-day bars 252 / n), weekly 52. Monthly bars are 12
        and yearly 1 in both calendars.

    Returns
    -------
    float
        Bars per year.

    Examples
    --------
    >>> periods_per_year("1h")
    8760.0
    >>> periods_per_year("5m", calendar="equity")
    19656.0
    """
    func = "periods_per_year"
    check_choice(calendar, param="calendar", func=func, choices=CALENDARS)
    value = index_or_frequency
    if isinstance(value, str):
        return _parse_text(value, calendar, func)
    if isinstance(value, pd.Series | pd.Index) and not isinstance(value, pd.DatetimeIndex):
        value = as_utc_index(value, func=func, param="index_or_frequency", allow_naive=True)
    if isinstance(value, pd.DatetimeIndex):
        stamps = np.unique(value.dropna().as_unit("ns").asi8)
        if stamps.size < 2:
            raise ValueError(
                f"The 'index_or_frequency' parameter of {func} needs at least two distinct timestamps to infer "
                f"a bar size. Got {stamps.size}."
            )
        seconds = float(np.median(np.diff(stamps))) / 1e9
        days = seconds / _DAY_S
        # calendar periods of unequal length: month-end stamps are 28-31 days apart, quarters 89-92
        for low, high, per_year in ((28.0, 31.0, 12.0), (89.0, 92.0, 4.0), (365.0, 366.0, 1.0)):
            if low <= days <= high:
                return per_year
        return _from_seconds(seconds, calendar)
    try:
        delta = pd.Timedelta(value)
    except (TypeError, ValueError):
        delta = None
    if delta is None or isinstance(value, bool | int | float) or pd.isna(delta) or delta <= pd.Timedelta(0):
        raise ValueError(
            f"The 'index_or_frequency' parameter of {func} must be a frequency string, a positive timedelta or "
            f"a DatetimeIndex. Got {value!r} ({type(value).__name__}) instead."
        )
    return _from_seconds(delta.total_seconds(), calendar)


def as_utc_index(values: Any, *, func: str, param: str, allow_naive: bool = False) -> pd.DatetimeIndex:
    """Timestamps as a UTC ``DatetimeIndex``, whatever timezones they arrive in.

    Timestamps in several timezones (an object index built by concatenating a New York and a UTC
    source) are converted to the same instants in UTC. Timezone-naive timestamps are ambiguous:
    they raise unless ``allow_naive`` (then they are returned as they are, naive, for uses that
    only need spacings); a MIX of naive and aware timestamps always raises, naming the position.
    """
    if isinstance(values, pd.DatetimeIndex):
        index = values
    else:
        seq = list(values)
        aware = [getattr(v, "tzinfo", None) is not None for v in seq]
        present = [not (v is None or v is pd.NaT or (isinstance(v, float) and np.isnan(v))) for v in seq]
        if any(aware) and not all(a for a, p in zip(aware, present) if p):
            first_naive = next(i for i, (a, p) in enumerate(zip(aware, present)) if p and not a)
            raise ValueError(
                f"The '{param}' parameter of {func} mixes timezone-aware and timezone-naive timestamps "
                f"(position {first_naive} is naive: {seq[first_naive]!r}). Localize every timestamp first."
            )
        try:
            index = pd.DatetimeIndex(pd.to_datetime(seq, utc=any(aware)))
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"The '{param}' parameter of {func} must hold timestamps. Got {type(values).__name__} that "
                f"could not be read as timestamps ({exc})."
            ) from exc
    if index.tz is None:
        if allow_naive:
            return index
        raise ValueError(
            f"The '{param}' parameter of {func} must be timezone-aware (e.g. UTC). Got timezone-naive timestamps "
            "instead; localize them with tz_localize."
        )
    return index.tz_convert("UTC")


def resample_returns(returns: Any, *, freq: str) -> Any:
    """Compound per-period returns into coarser bins (e.g. 5-minute returns into daily ones).

    ``R_bin = prod(1 + r_t) - 1`` over the bin's present values: returns of one capital base
    compound; they do not add. Two intraday returns of +5 % and -5 % make a day of
    ``1.05 * 0.95 - 1 = -0.25 %``, not 0 % (the bug of nautilus_trader's daily bins, PR #4141).
    Bins are UTC calendar bins (``[start, start + freq)``, labelled by their start), so the index
    must be timezone-aware; timestamps in several timezones are converted to UTC first. A bin with
    no present value is NaN.

    Parameters
    ----------
    returns : Series or DataFrame
        Simple returns on a timezone-aware DatetimeIndex (or timestamps in several timezones).
    freq : str
        A pandas frequency for the bins, e.g. ``'1D'``, ``'1h'``, ``'W'``.

    Returns
    -------
    Series or DataFrame on the bin starts (UTC).

    Examples
    --------
    >>> idx = pd.to_datetime(["2024-01-01 10:00", "2024-01-01 15:00", "2024-01-02 09:00"], utc=True)
    >>> resample_returns(pd.Series([0.05, -0.05, 0.01], index=idx), freq="1D").round(6).tolist()
    [-0.0025, 0.01]
    """
    func = "resample_returns"
    if not isinstance(returns, pd.Series | pd.DataFrame):
        raise ValueError(
            f"The 'returns' parameter of {func} must be a Series or DataFrame on timestamps. "
            f"Got {type(returns).__name__} instead."
        )
    try:
        pd.tseries.frequencies.to_offset(freq)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"The 'freq' parameter of {func} must be a pandas frequency such as '1D' or '1h'. Got {freq!r} instead."
        ) from exc
    panel = as_panel(returns, func=func)
    index = as_utc_index(returns.index, func=func, param="returns")
    growth = 1.0 + panel.unscaled()
    frame = pd.DataFrame(growth, index=index)
    binned = frame.resample(freq).prod(min_count=1) - 1.0
    if isinstance(returns, pd.Series):
        return pd.Series(binned.iloc[:, 0].to_numpy(), index=binned.index, name=returns.name)
    binned.columns = returns.columns
    return binned
