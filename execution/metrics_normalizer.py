"""The Sharpe normalisation engine: comparable, honest performance numbers per symbol and route.

A raw Sharpe from 30 days of 5-minute bars and one from 3 years of daily bars are not
comparable, and the best Sharpe among many tried strategies is inflated. This module is the
public entry point of the metrics library: it re-exports every metric and builds
:func:`normalized_table`, one row per symbol (and route) with raw and normalised metrics, the
lookback used and the number of observations. See ``docs/metrics.md``.

The functions live in the package :mod:`execution.metrics`, one module per concept:
``core`` (input checks, shared helpers), ``basic`` (full-sample metrics), ``rolling``,
``inference`` (standard error, PSR, DSR, MinTRL, Lo), ``calendar`` (``periods_per_year``),
``scaling`` (volatility targeting, factor scores); and ``execution.trade_returns``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from execution.metrics.basic import (
    annual_return,
    annual_volatility,
    downside_deviation,
    hit_rate,
    max_drawdown,
    profit_factor,
    sharpe_ratio,
    sortino_ratio,
)
from execution.metrics.calendar import CALENDARS, as_utc_index, periods_per_year, resample_returns
from execution.metrics.core import Panel, as_panel, check_choice, check_int, check_real
from execution.metrics.inference import (
    _psr,
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    lo_sharpe_ratio,
    min_track_record_length,
    probabilistic_sharpe_ratio,
    sharpe_standard_error,
    sharpe_stats,
)
from execution.metrics.rolling import (
    rolling_annual_volatility,
    rolling_sharpe_ratio,
    rolling_sharpe_standard_error,
    rolling_sortino_ratio,
)
from execution.metrics.scaling import factor_score, volatility_scale
from execution.trade_returns import trade_return_panel, trade_returns

__all__ = [
    "TABLE_COLUMNS",
    "annual_return",
    "annual_volatility",
    "deflated_sharpe_ratio",
    "downside_deviation",
    "expected_maximum_sharpe",
    "factor_score",
    "hit_rate",
    "lo_sharpe_ratio",
    "max_drawdown",
    "min_track_record_length",
    "normalized_table",
    "periods_per_year",
    "probabilistic_sharpe_ratio",
    "profit_factor",
    "resample_returns",
    "rolling_annual_volatility",
    "rolling_sharpe_ratio",
    "rolling_sharpe_standard_error",
    "rolling_sortino_ratio",
    "rolling_volatility",
    "sharpe_ratio",
    "sharpe_standard_error",
    "sortino_ratio",
    "trade_returns",
    "volatility_scale",
]

rolling_volatility = rolling_annual_volatility
"""Alias of :func:`rolling_annual_volatility`."""

TABLE_COLUMNS = [
    "symbol", "route", "n_obs", "n_missing", "n_trades", "start", "end", "lookback_days", "periods_per_year",
    "pnl_usd", "ann_return", "ann_vol", "sharpe", "sharpe_lo", "sortino", "max_drawdown",
    "hit_rate", "profit_factor", "sharpe_se", "psr", "dsr", "min_trl",
]  # fmt: skip
"""Column order of :func:`normalized_table` (``route`` only when ``by_route=True``)."""

_FUNC = "normalized_table"


def _split_route_columns(columns: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(columns, pd.MultiIndex) and columns.nlevels == 2:
        return (np.asarray(columns.get_level_values(0), dtype=object),
                np.asarray(columns.get_level_values(1), dtype=object))  # fmt: skip
    labels = pd.Series(np.asarray(columns.astype(str), dtype=object), dtype=object)
    has_bar = labels.str.contains("|", regex=False).to_numpy(dtype=bool)
    if not has_bar.all():
        raise ValueError(
            f"The 'returns' parameter of {_FUNC} needs columns labelled 'SYMBOL|route' (or a 2-level "
            f"MultiIndex) when by_route=True. Got column {labels.iloc[int(np.argmin(has_bar))]!r}."
        )
    parts = labels.str.split("|", n=1, expand=True)
    return np.asarray(parts[0], dtype=object), np.asarray(parts[1], dtype=object)


def _as_frame(returns: Any) -> pd.DataFrame:
    if isinstance(returns, pd.DataFrame):
        return returns
    if isinstance(returns, pd.Series):
        return returns.to_frame(name=returns.name if returns.name is not None else "returns")
    panel = as_panel(returns, func=_FUNC)
    return pd.DataFrame(
        panel.values, columns=pd.Index("col" + pd.RangeIndex(panel.values.shape[1]).astype(str))
    )


def normalized_table(
    trades: pd.DataFrame | None = None,
    *,
    returns: pd.DataFrame | pd.Series | None = None,
    by_route: bool = False,
    periods_per_year: float | None = None,
    calendar: str = "crypto",
    n_trials: int | None = None,
    lookback_days: float | None = None,
) -> pd.DataFrame:
    """One row per symbol (and route) with raw and normalised performance metrics.

    Parameters
    ----------
    trades : DataFrame, optional
        Closed trades (DESIGN.md contract). Turned into daily returns on notional with
        :func:`~execution.trade_returns.trade_returns` (equal capital per trade; 0.0 on days
        inside a key's active span without a closed trade), annualised with
        ``periods_per_year('1D', calendar=calendar)`` (365 for crypto) unless given.
    returns : DataFrame or Series, optional
        Per-period returns instead of trades, one column per symbol (``'SYMBOL|route'`` labels or
        a 2-level MultiIndex when ``by_route``). ``periods_per_year`` defaults to the one inferred
        from a DatetimeIndex; it is required otherwise.
    by_route : bool, default False
        One row per (symbol, route) instead of per symbol.
    periods_per_year : float, optional
        Overrides the annualisation factor.
    calendar : {'crypto', 'equity'}, default 'crypto'
    n_trials : int, optional
        Number of strategies tried, for the DSR. Defaults to the number of rows compared.
    lookback_days : float, optional
        Use only the trailing window of this many days ending at the last timestamp of the whole
        table (rows ``ts > last - lookback_days``); needs a DatetimeIndex.

    Returns
    -------
    DataFrame
        Columns exactly :data:`TABLE_COLUMNS` (without ``route`` unless ``by_route``), sorted by
        symbol (and route):

        ``n_obs`` present periods used; ``n_missing`` periods between the column's first and last
        value that hold no value (NaN gaps, skipped by every metric: nothing is dropped silently);
        ``n_trades`` trades closed in the window (NaN from
        returns); ``start``/``end`` first and last period with a value; ``lookback_days`` the
        argument when given, else ``end - start`` in days; ``periods_per_year`` used;
        ``pnl_usd`` summed PnL in the window (NaN from returns); ``ann_return`` arithmetic mean
        x periods_per_year; ``ann_vol``; ``sharpe`` annualised; ``sharpe_lo`` the Lo (2002)
        autocorrelation-adjusted annual Sharpe (AR(1) lag structure); ``sortino`` (target 0);
        ``max_drawdown`` of compounded returns; ``hit_rate``; ``profit_factor``; ``sharpe_se``
        the Mertens standard error of the PER-PERIOD Sharpe (multiply by
        ``sqrt(periods_per_year)`` for the annual one); ``psr`` P(true Sharpe > 0); ``dsr`` the
        deflated Sharpe ratio with ``n_trials`` (default: number of rows) and trials' Sharpe
        variance = the cross-sectional variance (ddof=1) of the rows' per-period Sharpes;
        ``min_trl`` the minimum track record length in periods for 95 % confidence that the
        Sharpe is > 0.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> idx = pd.date_range("2024-01-01", periods=400, freq="D", tz="UTC")
    >>> r = pd.DataFrame(rng.normal(0.001, 0.02, (400, 2)), index=idx, columns=["BTC", "ETH"])
    >>> t = normalized_table(returns=r)
    >>> t[["symbol", "n_obs", "periods_per_year"]].to_dict("records")[0]
    {'symbol': 'BTC', 'n_obs': 400, 'periods_per_year': 365.0}
    """
    check_choice(calendar, param="calendar", func=_FUNC, choices=CALENDARS)
    if (trades is None) == (returns is None):
        raise ValueError(
            f"{_FUNC} needs exactly one of 'trades' or 'returns'. Got {'both' if trades is not None else 'neither'}."
        )
    if not isinstance(by_route, bool):
        raise ValueError(f"The 'by_route' parameter of {_FUNC} must be a bool. Got {by_route!r} instead.")
    ppy_arg = (
        None
        if periods_per_year is None
        else check_real(periods_per_year, param="periods_per_year", func=_FUNC, positive=True)
    )
    look = (
        None
        if lookback_days is None
        else check_real(lookback_days, param="lookback_days", func=_FUNC, positive=True)
    )
    trials = None if n_trials is None else check_int(n_trials, param="n_trials", func=_FUNC, minimum=1)

    trade_rows: np.ndarray | None = None
    trade_cols: np.ndarray | None = None
    pnl: np.ndarray | None = None
    if trades is not None:
        by: str | tuple[str, ...] = ("symbol", "route") if by_route else "symbol"
        frame, keys, trade_rows, trade_cols = trade_return_panel(trades, by=by, freq="1D")
        pnl = trades["pnl_usd"].to_numpy(dtype=float)
        symbols = np.asarray(keys["symbol"], dtype=object)
        routes = np.asarray(keys["route"], dtype=object) if by_route else None
        ppy = ppy_arg if ppy_arg is not None else periods_per_year_of("1D", calendar)
    else:
        frame = _as_frame(returns)
        if isinstance(frame.index, pd.DatetimeIndex) and frame.index.tz is not None:
            frame = frame.set_axis(frame.index.tz_convert("UTC"), axis=0)
        elif frame.index.dtype == object and len(frame.index) and isinstance(frame.index[0], pd.Timestamp):
            # timestamps in several timezones (e.g. two sources concatenated): the same instants in UTC
            frame = frame.set_axis(as_utc_index(frame.index, func=_FUNC, param="returns"), axis=0)
        if by_route:
            symbols, routes = _split_route_columns(frame.columns)
        else:
            symbols, routes = np.asarray(frame.columns.astype(str), dtype=object), None
        if ppy_arg is not None:
            ppy = ppy_arg
        elif isinstance(frame.index, pd.DatetimeIndex) and len(frame.index) >= 2:
            ppy = periods_per_year_of(frame.index, calendar)
        else:
            raise ValueError(
                f"The 'periods_per_year' parameter of {_FUNC} is required when 'returns' has no DatetimeIndex "
                "to infer the bar size from."
            )

    index = frame.index
    keep = np.ones(len(index), dtype=bool)
    if look is not None:
        if not isinstance(index, pd.DatetimeIndex):
            raise ValueError(f"The 'lookback_days' parameter of {_FUNC} needs returns with a DatetimeIndex.")
        if len(index):
            keep = np.asarray(index > index.max() - pd.Timedelta(days=look))
    panel = as_panel(frame.iloc[keep], func=_FUNC, param="returns")
    table = _metrics_block(panel, ppy, trials)
    present = ~np.isnan(panel.values)
    n_obs = present.sum(axis=0)
    k = panel.values.shape[1]
    has = n_obs > 0
    first = np.where(has, present.argmax(axis=0), 0)
    last = np.where(has, len(present) - 1 - present[::-1].argmax(axis=0), 0) if len(present) else first
    # periods between a column's first and last value that hold no value: skipped by every metric
    n_missing = np.where(has, last - first + 1 - n_obs, 0)
    if isinstance(index, pd.DatetimeIndex) and k:
        sub_index = index[keep]
        start = pd.Series(sub_index[first]).where(has)
        end = pd.Series(sub_index[last]).where(has)
        span = ((end - start).dt.total_seconds() / 86400.0).to_numpy(dtype=float)
    else:
        start = end = pd.Series([pd.NaT] * k)
        span = np.full(k, np.nan)
    n_trades = np.full(k, np.nan)
    pnl_usd = np.full(k, np.nan)
    if trade_rows is not None and trade_cols is not None and pnl is not None:
        in_window = keep[trade_rows]
        n_trades = np.bincount(trade_cols[in_window], minlength=k).astype(float)
        pnl_usd = np.bincount(trade_cols[in_window], weights=pnl[in_window], minlength=k)
    out = pd.DataFrame({"symbol": symbols})
    if by_route and routes is not None:
        out["route"] = routes
    out["n_obs"] = n_obs.astype(int)
    out["n_missing"] = n_missing.astype(int)
    out["n_trades"] = n_trades
    out["start"] = start.to_numpy()
    out["end"] = end.to_numpy()
    out["lookback_days"] = np.full(k, look) if look is not None else span
    out["periods_per_year"] = float(ppy)
    out["pnl_usd"] = pnl_usd
    for name, values in table.items():
        out[name] = values
    sort_by = ["symbol", "route"] if by_route else ["symbol"]
    out = out.sort_values(sort_by, kind="stable").reset_index(drop=True)
    return out[[c for c in TABLE_COLUMNS if c in out.columns]]


def periods_per_year_of(index_or_frequency: Any, calendar: str) -> float:
    """Module-level alias used inside :func:`normalized_table`, whose argument shadows the name."""
    return periods_per_year(index_or_frequency, calendar=calendar)


def _metrics_block(panel: Panel, ppy: float, n_trials: int | None) -> dict[str, np.ndarray]:
    """All per-column metrics of the table on one prepared panel (each a length-k array)."""
    x = panel.unscaled()  # the functions below rescale extreme columns themselves
    st = sharpe_stats(panel)
    k = x.shape[1]
    if k == 0:
        names = ["ann_return", "ann_vol", "sharpe", "sharpe_lo", "sortino", "max_drawdown", "hit_rate",
                 "profit_factor", "sharpe_se", "psr", "dsr", "min_trl"]  # fmt: skip
        return {n: np.zeros(0) for n in names}
    finite_sr = st.sr[np.isfinite(st.sr)]
    trials = n_trials if n_trials is not None else k
    var = float(np.var(finite_sr, ddof=1)) if finite_sr.size >= 2 else np.nan
    if trials == 1:
        dsr = _psr(st, 0.0)
    elif np.isfinite(var):
        dsr = _psr(st, expected_maximum_sharpe(trials, var))
    else:
        dsr = np.full(k, np.nan)
    return {
        "ann_return": np.asarray(annual_return(x, periods_per_year=ppy)),
        "ann_vol": np.asarray(annual_volatility(x, periods_per_year=ppy)),
        "sharpe": np.asarray(sharpe_ratio(x, periods_per_year=ppy)),
        "sharpe_lo": np.asarray(lo_sharpe_ratio(x, periods_per_year=ppy)),
        "sortino": np.asarray(sortino_ratio(x, periods_per_year=ppy)),
        "max_drawdown": np.asarray(max_drawdown(x)),
        "hit_rate": np.asarray(hit_rate(x)),
        "profit_factor": np.asarray(profit_factor(x)),
        "sharpe_se": np.asarray(sharpe_standard_error(x)),
        "psr": _psr(st, 0.0),
        "dsr": dsr,
        "min_trl": np.asarray(min_track_record_length(x)),
    }
