"""Router Health inputs: the trade-log checks, the parameters and the doctor's confidence weights.

Both engines of Router Health take the same inputs: :func:`execution.router_health.router_health_view`
(pandas, over a trades frame) and :func:`execution.fill_store.router_health_view_duckdb` (DuckDB,
over a Parquet fill log). The date filter (:class:`TradeWindow`) and the display options
(:class:`ViewOptions`) are checked here once, so the two cannot drift apart in what they accept
or in how the lookback window is anchored. :class:`DoctorConfidence` turns the doctor artifact
into PnL weights and :func:`haircut_pnl` applies them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from infra.validate import check_choice, check_int, param_error

CurveBy = Literal["symbol", "route", "pair"]
CURVE_BY: tuple[CurveBy, ...] = ("symbol", "route", "pair")
PAIR_SEP = "|"
REQUIRED_COLUMNS = ("symbol", "route", "closed_at", "pnl_usd", "size_usd")
YEAR = pd.Timedelta(days=365)


# --------------------------------------------------------------------------- checks
def check_trade_columns(trades: pd.DataFrame, func: str, columns: Sequence[str] = REQUIRED_COLUMNS) -> None:
    """``trades`` is a DataFrame holding ``columns``, with ``closed_at`` as UTC timestamps."""
    if not isinstance(trades, pd.DataFrame):
        raise TypeError(
            f"The 'trades' parameter of {func} must be a pandas DataFrame. Got {type(trades).__name__} instead."
        )
    missing = [c for c in columns if c not in trades.columns]
    if missing:
        raise ValueError(
            f"The 'trades' parameter of {func} is missing column(s) {missing}; it has {list(trades.columns)}."
        )
    if "closed_at" in columns and not isinstance(trades["closed_at"].dtype, pd.DatetimeTZDtype):
        raise ValueError(
            f"The 'closed_at' column of 'trades' in {func} must be timezone-aware UTC timestamps. "
            f"Got dtype {trades['closed_at'].dtype} instead."
        )


def check_by(by: Any, func: str) -> CurveBy:
    """``by`` as one of :data:`CURVE_BY`."""
    return check_choice(by, param="by", func=func, choices=CURVE_BY)


def utc_bound(value: Any, name: str, func: str) -> pd.Timestamp | None:
    """A date or timestamp as a UTC ``Timestamp`` (naive values are taken as UTC); None stays None."""
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise param_error(name, func, "a timestamp or date", value) from None
    if ts is pd.NaT:
        raise param_error(name, func, "a timestamp or date", pd.NaT)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def periods_per_year_for(freq: str) -> float:
    """Periods per year for a 24/7 (crypto) calendar: ``365 days / freq``.

    >>> periods_per_year_for("1D"), periods_per_year_for("1h")
    (365.0, 8760.0)
    """
    func = "periods_per_year_for"
    try:
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq).nanos, unit="ns")
    except (TypeError, ValueError):
        raise param_error("freq", func, "a fixed pandas frequency such as '1D' or '1h'", freq) from None
    if step <= pd.Timedelta(0):
        raise param_error("freq", func, "positive", freq)
    return float(YEAR / step)


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class TradeWindow:
    """The date filter: ``start <= closed_at < end``, and the last ``lookback_days`` whole UTC days.

    Build it with :meth:`of`, which checks the values and names the calling function.
    """

    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    lookback_days: int | None = None

    @classmethod
    def of(cls, start: Any, end: Any, lookback_days: Any, *, func: str) -> TradeWindow:
        """Checked window: UTC bounds with ``end > start``, ``lookback_days`` an int >= 1 or None.

        >>> TradeWindow.of("2024-01-01", None, 7, func="f").start
        Timestamp('2024-01-01 00:00:00+0000', tz='UTC')
        """
        start_ts, end_ts = utc_bound(start, "start", func), utc_bound(end, "end", func)
        if start_ts is not None and end_ts is not None and end_ts <= start_ts:
            raise param_error("end", func, f"after 'start' ({start_ts})", end_ts)
        days = lookback_days
        if days is not None and (
            isinstance(days, bool) or not isinstance(days, numbers.Integral) or days < 1
        ):
            raise param_error("lookback_days", func, "an int >= 1 or None", days)
        return cls(start_ts, end_ts, None if days is None else int(days))

    def lookback_start(self, latest: pd.Timestamp | None) -> pd.Timestamp | None:
        """First instant kept by ``lookback_days`` (None without a lookback or without trades).

        The window ends at ``end`` or, without it, at the end of the UTC day of ``latest`` (the
        newest ``closed_at`` of the whole log, before the symbol and route filters, so the window
        does not move with the selection).

        >>> w = TradeWindow(lookback_days=2)
        >>> w.lookback_start(pd.Timestamp("2024-01-10 12:00", tz="UTC"))
        Timestamp('2024-01-09 00:00:00+0000', tz='UTC')
        """
        if self.lookback_days is None or (self.end is None and (latest is None or latest is pd.NaT)):
            return None
        anchor = self.end if self.end is not None else latest.floor("1D") + pd.Timedelta(days=1)  # type: ignore[union-attr]
        return anchor - pd.Timedelta(days=self.lookback_days)


@dataclass(frozen=True)
class ViewOptions:
    """What the Router Health tab draws: ``top_n`` keys, the rolling window, the table's rows."""

    top_n: int = 10
    rolling_window_days: int = 30
    table_by_route: bool = False

    @classmethod
    def of(cls, top_n: Any, rolling_window_days: Any, table_by_route: bool, *, func: str) -> ViewOptions:
        """Checked options: ``top_n`` an int >= 1, ``rolling_window_days`` an int >= 2."""
        return cls(
            check_int(top_n, param="top_n", func=func, minimum=1),
            check_int(rolling_window_days, param="rolling_window_days", func=func, minimum=2),
            bool(table_by_route),
        )

    def window_periods(self, periods_per_year: float) -> int:
        """The rolling window in periods (at least 2).

        >>> ViewOptions(rolling_window_days=30).window_periods(8760.0)
        720
        """
        return max(2, round(self.rolling_window_days * periods_per_year / 365.0))


# --------------------------------------------------------------------------- doctor confidence
def _confidence_map(raw: Any, key: str) -> dict[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(
            f"The doctor artifact's '{key}' must be a mapping of name to a number in [0, 1]. "
            f"Got {type(raw).__name__} instead."
        )
    out: dict[str, float] = {}
    for name, value in raw.items():
        try:
            w = float(value)
        except (TypeError, ValueError):
            w = math.nan
        if not (0.0 <= w <= 1.0):  # also rejects NaN
            raise ValueError(
                f"The doctor artifact's '{key}[{name!r}]' must be a number in [0, 1]. Got {value!r} instead."
            )
        out[str(name)] = w
    return out


@dataclass(frozen=True)
class DoctorConfidence:
    """The doctor's confidence per symbol and per ``SYMBOL|route`` pair, used as PnL weights.

    Attributes
    ----------
    symbol
        ``{symbol: weight in [0, 1]}``.
    route
        ``{"SYMBOL|route": weight in [0, 1]}``; overrides the symbol weight for that pair.
    available
        False when no doctor artifact exists: every weight is then the documented default 1.0.
    """

    symbol: Mapping[str, float] = field(default_factory=dict)
    route: Mapping[str, float] = field(default_factory=dict)
    available: bool = False

    @classmethod
    def from_data(cls, data: Any) -> DoctorConfidence:
        """Parse the doctor artifact's ``data`` (``symbol_confidence``, ``route_confidence``).

        Raises
        ------
        ValueError
            ``data`` is not a mapping, or a weight is not a number in [0, 1].
        """
        if not isinstance(data, Mapping):
            raise ValueError(
                f"The doctor artifact's data must be a mapping with 'symbol_confidence'. "
                f"Got {type(data).__name__} instead."
            )
        return cls(
            symbol=_confidence_map(data.get("symbol_confidence"), "symbol_confidence"),
            route=_confidence_map(data.get("route_confidence"), "route_confidence"),
            available=True,
        )

    def weight(self, symbol: str, route: str | None = None) -> float:
        """Weight of ``symbol`` (or of the pair ``symbol|route`` when ``route`` is given).

        >>> c = DoctorConfidence({"BTC": 0.5}, {"BTC|okx": 0.2}, True)
        >>> c.weight("BTC"), c.weight("BTC", "okx"), c.weight("BTC", "bybit"), c.weight("ETH")
        (0.5, 0.2, 0.5, 1.0)
        """
        if route is not None:
            w = self.route.get(f"{symbol}{PAIR_SEP}{route}")
            if w is not None:
                return w
        return self.symbol.get(symbol, 1.0)

    def unknown_symbols(self, symbols: Sequence[str]) -> list[str]:
        """Symbols among ``symbols`` that have no doctor confidence (weighted with 1.0)."""
        return [s for s in symbols if s not in self.symbol]

    def as_key(self) -> tuple[tuple[tuple[str, float], ...], tuple[tuple[str, float], ...], bool]:
        """A hashable, order-independent form (for cache keys)."""
        return (tuple(sorted(self.symbol.items())), tuple(sorted(self.route.items())), self.available)


def haircut_pnl(pnl: Any, confidence: Any) -> np.ndarray:
    """Confidence-weighted PnL: ``pnl - (1 - confidence) * |pnl|`` element-wise.

    A gain keeps the trusted share ``confidence * pnl``; a loss is enlarged to
    ``(2 - confidence) * pnl``. For every ``pnl`` the result is non-decreasing in ``confidence``
    and never above ``pnl``, so a route the doctor distrusts can only look worse than its raw PnL,
    never better (plain multiplication by the confidence shrank losses toward zero).

    >>> haircut_pnl([10.0, -4.0, 0.0], [0.5, 0.5, 0.0]).tolist()
    [5.0, -6.0, 0.0]
    """
    p = np.asarray(pnl, dtype=float)
    w = np.asarray(confidence, dtype=float)
    return p - (1.0 - w) * np.abs(p)
