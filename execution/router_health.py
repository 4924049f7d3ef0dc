"""Router Health 2.0: per-symbol and per-route PnL curves, hit rates and Sharpe bands.

Pure computation over the closed-trade log (DESIGN.md contract): frames in, frames out; no
files, no clock, no Streamlit. The dashboard tab (:mod:`dashboard.router_health`) caches and
draws what :func:`router_health_view` returns.

Definitions
-----------
- **Period**: as in :func:`execution.trade_returns.trade_returns`, periods of ``freq`` (default
  one UTC day) are right-closed and labelled by their END on an epoch-anchored grid: a trade
  closed at 2024-01-01 13:00 is in the point 2024-01-02 00:00. The cumulative PnL at label ``t``
  is therefore the PnL of every trade closed at or before ``t``, and the curves line up with the
  Sharpe series computed from ``trade_returns``.
- **Win**: a trade with ``pnl_usd > 0`` (a flat trade is not a win). Hit rate = wins / trades.
- **Rolling hit rate** at period ``t``: wins / trades over the trades closed in the time window
  ``(t - window, t]`` of period labels, i.e. the last ``window`` periods including ``t``. It is
  the pooled ratio of counts, not the mean of per-period ratios, so a busy day weighs more.
- **Confidence-weighted PnL** (a haircut, :func:`haircut_pnl`): each trade's
  ``pnl - (1 - w) * |pnl|`` with the doctor's confidence ``w`` in [0, 1] for its symbol
  (per-symbol curves) or for its ``SYMBOL|route`` pair (per-route and per-pair curves, falling
  back to the symbol's confidence). A gain shrinks to ``w * pnl``, a loss grows to
  ``(2 - w) * pnl``: lower confidence never makes a trade, a route or a symbol look better
  (multiplying by ``w`` did, for losers: it pulled a distrusted route's loss toward zero). A key
  the doctor does not know gets ``w = 1`` (no haircut); :attr:`DoctorConfidence.available` is
  False when there is no doctor artifact at all.
- **Sharpe band**: the rolling annualised Sharpe ratio ``SR`` over ``window`` periods and
  ``SR +- z * SE(SR)`` with the standard error of
  :func:`execution.metrics_normalizer.rolling_sharpe_standard_error` (Mertens 2002, skew and
  kurtosis adjusted), ``z = 1.96`` for a two-sided 95 % band.
- **Annualisation**: crypto trades 24/7, so ``periods_per_year = 365 days / freq``.

Examples
--------
>>> import pandas as pd
>>> trades = pd.DataFrame({
...     "symbol": ["BTC", "BTC", "ETH"], "route": ["a", "b", "a"],
...     "closed_at": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 11:00",
...                                  "2024-01-02 12:00"], utc=True),
...     "pnl_usd": [10.0, -4.0, 3.0], "size_usd": [100.0, 100.0, 50.0]})
>>> conf = DoctorConfidence.from_data({"symbol_confidence": {"BTC": 0.5}})
>>> c = pnl_curves(trades, by="symbol", confidence=conf)
>>> c[["key", "cum_pnl_usd", "cum_pnl_weighted_usd"]].to_numpy().tolist()
[['BTC', 10.0, 5.0], ['BTC', 6.0, -1.0], ['ETH', 3.0, 3.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from execution.metrics_normalizer import (
    normalized_table,
)
from execution.router_health_curves import (
    BAND_COLUMNS,
    CURVE_COLUMNS,
    pnl_curves,
    rolling_hit_rate,
    rolling_sharpe_band,
    top_keys,
)
from execution.router_health_inputs import (
    CURVE_BY,
    PAIR_SEP,
    REQUIRED_COLUMNS,
    CurveBy,
    DoctorConfidence,
    TradeWindow,
    ViewOptions,
    check_trade_columns,
    haircut_pnl,
    periods_per_year_for,
)
from execution.router_health_table import (
    MIN_OBS,
    RATIO_COLUMNS,
    STATISTICS_COLUMNS,
    band_window_days,
    statistics_table,
)
from execution.trade_returns import trade_returns

__all__ = [  # the public face the dashboard reads; the inputs and the table live beside it
    "BAND_COLUMNS",
    "CURVE_BY",
    "CURVE_COLUMNS",
    "MIN_OBS",
    "PAIR_SEP",
    "RATIO_COLUMNS",
    "REQUIRED_COLUMNS",
    "STATISTICS_COLUMNS",
    "CurveBy",
    "DoctorConfidence",
    "RouterHealthView",
    "band_window_days",
    "filter_trades",
    "haircut_pnl",
    "periods_per_year_for",
    "pnl_curves",
    "rolling_hit_rate",
    "rolling_sharpe_band",
    "router_health_view",
    "sharpe_keys",
    "statistics_table",
    "top_keys",
]


# --------------------------------------------------------------------------- filters
def filter_trades(
    trades: pd.DataFrame,
    *,
    symbols: Sequence[str] | None = None,
    routes: Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    lookback_days: int | None = None,
) -> pd.DataFrame:
    """Keep the trades matching every given filter (``None`` means no filter on that field).

    Parameters
    ----------
    trades
        Closed trades with at least ``symbol``, ``route``, ``closed_at`` (UTC).
    symbols, routes
        Keep only these symbols / routes. An empty sequence keeps nothing.
    start, end
        Keep trades with ``start <= closed_at < end`` (``end`` is exclusive; pass the day after
        the last calendar day wanted). Naive values are taken as UTC.
    lookback_days
        Keep only the last ``lookback_days`` whole UTC days ending at ``end``, or, when ``end``
        is None, ending with the day of the latest ``closed_at`` in ``trades`` (before the symbol
        and route filters, so the window does not move with the selection).

    Returns
    -------
    pandas.DataFrame
        A row subset of ``trades`` in the same order and with the same columns.

    Examples
    --------
    >>> t = pd.DataFrame({"symbol": ["A", "B", "A"], "route": ["x", "x", "y"],
    ...     "closed_at": pd.to_datetime(["2024-01-01 00:00", "2024-01-05 00:00", "2024-01-10 12:00"], utc=True)})
    >>> filter_trades(t, lookback_days=6).index.tolist()
    [1, 2]
    >>> filter_trades(t, symbols=["A"], end="2024-01-10").index.tolist()
    [0]
    """
    func = "filter_trades"
    check_trade_columns(trades, func, ("symbol", "route", "closed_at"))
    window = TradeWindow.of(start, end, lookback_days, func=func)
    closed = trades["closed_at"]
    mask = np.ones(len(trades), dtype=bool)
    if symbols is not None:
        mask &= trades["symbol"].isin(list(symbols)).to_numpy()
    if routes is not None:
        mask &= trades["route"].isin(list(routes)).to_numpy()
    if window.start is not None:
        mask &= (closed >= window.start).to_numpy()
    if window.end is not None:
        mask &= (closed < window.end).to_numpy()
    lo = window.lookback_start(closed.max() if len(trades) else None)
    if lo is not None:
        mask &= (closed >= lo).to_numpy()
    return trades[mask]


# --------------------------------------------------------------------------- the whole tab
@dataclass(frozen=True)
class RouterHealthView:
    """Everything the Router Health tab draws, for one set of filters (small frames only)."""

    n_trades_total: int
    """Trades in the log before filtering."""
    n_trades: int
    """Trades left after the filters."""
    start: pd.Timestamp | None
    """First and last ``closed_at`` after filtering (None when nothing is left)."""
    end: pd.Timestamp | None
    table: pd.DataFrame
    """:func:`execution.metrics_normalizer.normalized_table` of the filtered trades; the DSR
    counts every symbol (or pair) passing the route and date filters as a trial, whichever
    symbols are selected."""
    symbol_curves: pd.DataFrame
    """:func:`pnl_curves` by symbol for :attr:`plotted_symbols`, plus ``hit_rate``."""
    route_curves: pd.DataFrame
    """:func:`pnl_curves` by route (all filtered symbols together) for :attr:`plotted_routes`,
    plus ``hit_rate``."""
    sharpe: pd.DataFrame
    """:func:`rolling_sharpe_band` for each plotted symbol and each of its ``SYMBOL|route`` pairs."""
    sharpe_keys: list[str]
    """Keys with a defined rolling Sharpe: plotted symbols (largest |PnL| first), then pairs."""
    plotted_symbols: list[str]
    """The top-N symbols by absolute PnL among the filtered trades, largest first."""
    plotted_routes: list[str]
    """The top-N routes by absolute PnL among the filtered trades, largest first."""
    unweighted_symbols: list[str]
    """Filtered symbols without a doctor confidence (weighted 1.0)."""
    periods_per_year: float
    rolling_window_days: int

    @classmethod
    def empty(
        cls, *, n_trades_total: int, periods_per_year: float, rolling_window_days: int
    ) -> RouterHealthView:
        """The view when the filters leave no trade: empty frames with the usual columns."""
        curves = pd.DataFrame(columns=[*CURVE_COLUMNS, "hit_rate"])
        return cls(
            n_trades_total=n_trades_total, n_trades=0, start=None, end=None, table=pd.DataFrame(),
            symbol_curves=curves, route_curves=curves.copy(), sharpe=pd.DataFrame(columns=list(BAND_COLUMNS)),
            sharpe_keys=[], plotted_symbols=[], plotted_routes=[], unweighted_symbols=[],
            periods_per_year=periods_per_year, rolling_window_days=rolling_window_days,
        )  # fmt: skip


def sharpe_keys(plotted: Sequence[str], band: pd.DataFrame) -> list[str]:
    """Keys of ``band`` in drawing order: the plotted symbols with a Sharpe (in ``plotted``
    order), then every ``SYMBOL|route`` pair, sorted.

    >>> sharpe_keys(["B", "A"], pd.DataFrame({"key": ["A", "A|x", "B|y", "C"]}))
    ['A', 'A|x', 'B|y']
    """
    with_band = set(band["key"].unique())
    return [k for k in plotted if k in with_band] + sorted(k for k in with_band if PAIR_SEP in k)


def router_health_view(
    trades: pd.DataFrame,
    *,
    symbols: Sequence[str] | None = None,
    routes: Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    lookback_days: int | None = None,
    confidence: DoctorConfidence | None = None,
    top_n: int = 10,
    rolling_window_days: int = 30,
    table_by_route: bool = False,
    freq: str = "1D",
) -> RouterHealthView:
    """Filter the trades and compute every curve and table the Router Health tab shows.

    Parameters
    ----------
    trades
        Closed trades (DESIGN.md contract; needs ``symbol``, ``route``, ``closed_at``,
        ``pnl_usd``, ``size_usd`` and what ``normalized_table`` reads).
    symbols, routes, start, end, lookback_days
        Filters, see :func:`filter_trades`; they apply to the table and to every curve.
    confidence
        Doctor confidence (``None``: weight 1.0 everywhere).
    top_n
        Number of symbols, and of routes, drawn (largest absolute PnL first); the table keeps
        every symbol.
    rolling_window_days
        Window of the rolling hit rate and the rolling Sharpe, in days (Sharpe: in periods of
        ``freq``, converted from days).
    table_by_route
        One table row per ``SYMBOL|route`` pair instead of per symbol.
    freq
        Period of the returns and curve points.

    Returns
    -------
    RouterHealthView
    """
    func = "router_health_view"
    check_trade_columns(trades, func)
    opts = ViewOptions.of(top_n, rolling_window_days, table_by_route, func=func)
    ppy = periods_per_year_for(freq)
    conf = confidence if confidence is not None else DoctorConfidence()
    view = filter_trades(
        trades, symbols=symbols, routes=routes, start=start, end=end, lookback_days=lookback_days
    )
    if view.empty:
        return RouterHealthView.empty(
            n_trades_total=len(trades), periods_per_year=ppy, rolling_window_days=opts.rolling_window_days
        )
    plotted = top_keys(view, by="symbol", n=opts.top_n)
    sym_curves = pnl_curves(view, by="symbol", confidence=conf, freq=freq, keys=plotted)
    sym_curves["hit_rate"] = rolling_hit_rate(sym_curves, window_days=opts.rolling_window_days)
    plotted_routes = top_keys(view, by="route", n=opts.top_n)
    route_curves = pnl_curves(view, by="route", confidence=conf, freq=freq, keys=plotted_routes)
    route_curves["hit_rate"] = rolling_hit_rate(route_curves, window_days=opts.rolling_window_days)

    plotted_trades = view[view["symbol"].isin(plotted)]
    returns = pd.concat(
        [
            trade_returns(plotted_trades, by="symbol", freq=freq),
            trade_returns(plotted_trades, by=("symbol", "route"), freq=freq),
        ],
        axis=1,
    )
    band = rolling_sharpe_band(returns, window=opts.window_periods(ppy), periods_per_year=ppy)

    # Daily returns on notional, crypto calendar. The table is computed over every symbol that
    # passes the other filters and then cut to the selected symbols, so the deflated Sharpe
    # keeps counting every symbol of the book as a trial: picking the two best symbols does not
    # shrink the multiple-testing correction.
    universe = (
        view
        if symbols is None
        else filter_trades(trades, routes=routes, start=start, end=end, lookback_days=lookback_days)
    )
    table = normalized_table(universe, by_route=opts.table_by_route, calendar="crypto")
    if symbols is not None:
        table = table[table["symbol"].isin(list(symbols))].reset_index(drop=True)
    present = sorted(str(s) for s in view["symbol"].unique())
    return RouterHealthView(
        n_trades_total=len(trades),
        n_trades=len(view),
        start=view["closed_at"].min(),
        end=view["closed_at"].max(),
        table=table,
        symbol_curves=sym_curves,
        route_curves=route_curves,
        sharpe=band,
        sharpe_keys=sharpe_keys(plotted, band),
        plotted_symbols=plotted,
        plotted_routes=plotted_routes,
        unweighted_symbols=conf.unknown_symbols(present),
        periods_per_year=ppy,
        rolling_window_days=opts.rolling_window_days,
    )
