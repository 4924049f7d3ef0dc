"""How many bars make a year: ``periods_per_year`` for crypto (24/7) and equity (session) calendars."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from execution.metrics_core import check_choice

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
    if isinstance(value, pd.Series):
        value = pd.DatetimeIndex(value)
    if isinstance(value, pd.DatetimeIndex):
        stamps = np.unique(value.dropna().as_unit("ns").asi8)
        if stamps.size < 2:
            raise ValueError(
                f"The 'index_or_frequency' parameter of {func} needs at least two distinct timestamps to infer "
                f"a bar size. Got {stamps.size}."
            )
        seconds = float(np.median(np.diff(stamps))) / 1e9
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
