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
    rolling_sharpe_ratio,
    rolling_sharpe_standard_error,
)
from execution.router_health_inputs import (
    CURVE_BY,
    PAIR_SEP,
    REQUIRED_COLUMNS,
    CurveBy,
    DoctorConfidence,
    TradeWindow,
    ViewOptions,
    check_by,
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
from infra.validate import check_int, check_real

__all__ = [  # the public face the dashboard reads; the inputs and the table live beside it
    "CURVE_BY",
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


# --------------------------------------------------------------------------- curves
CURVE_COLUMNS = (
    "key", "ts", "pnl_usd", "pnl_weighted_usd", "cum_pnl_usd", "cum_pnl_weighted_usd", "n_trades", "n_wins",
)  # fmt: skip
"""Columns of :func:`pnl_curves` (the view adds ``hit_rate``)."""
BAND_COLUMNS = ("key", "ts", "sharpe", "se", "lo", "hi")
"""Columns of :func:`rolling_sharpe_band`."""


def _group_columns(by: CurveBy) -> list[str]:
    return ["symbol"] if by == "symbol" else ["route"] if by == "route" else ["symbol", "route"]


def pnl_curves(
    trades: pd.DataFrame,
    *,
    by: CurveBy = "symbol",
    confidence: DoctorConfidence | None = None,
    freq: str = "1D",
    keys: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-period and cumulative PnL per key, raw and confidence-weighted, with win counts.

    Parameters
    ----------
    trades
        Closed trades with ``symbol``, ``route``, ``closed_at`` (UTC) and ``pnl_usd``.
    by
        ``"symbol"``, ``"route"`` (all symbols of a route together) or ``"pair"``
        (``"SYMBOL|route"``).
    confidence
        Doctor confidence; ``None`` weighs every trade 1.0. Per-symbol curves use the symbol's
        weight, per-route and per-pair curves the pair's (see the module docstring).
    freq
        Period length (a fixed pandas frequency), one point per key and period with trades.
    keys
        Keep only these keys (after grouping), e.g. the top-N by :func:`top_keys`.

    Returns
    -------
    pandas.DataFrame
        Long frame sorted by ``key`` then ``ts``, with columns ``key``, ``ts`` (period end,
        UTC), ``pnl_usd``, ``pnl_weighted_usd`` (per period), ``cum_pnl_usd``,
        ``cum_pnl_weighted_usd``, ``n_trades``, ``n_wins``.
    """
    func = "pnl_curves"
    by = check_by(by, func)
    check_trade_columns(trades, func, ("symbol", "route", "closed_at", "pnl_usd"))
    periods_per_year_for(freq)  # validates freq
    conf = confidence if confidence is not None else DoctorConfidence()
    pnl = trades["pnl_usd"].to_numpy(dtype=float)
    key_codes, names, weights = _keys_and_weights(trades, by, conf)
    ns = pd.DatetimeIndex(trades["closed_at"]).as_unit("ns").asi8
    if keys is not None:
        rows = np.isin(names, np.asarray(list(keys), dtype=object))[key_codes]
        key_codes, pnl, weights, ns = key_codes[rows], pnl[rows], weights[rows], ns[rows]
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq).nanos, unit="ns").value
    base = pd.DataFrame(
        {
            "k": key_codes,
            "t": -((-ns) // step) * step,  # ceil: right-closed periods labelled by their end
            "pnl_usd": pnl,
            "pnl_weighted_usd": haircut_pnl(pnl, weights),
            "n_trades": np.ones(len(pnl), dtype=np.int64),
            "n_wins": (pnl > 0).astype(np.int64),
        }
    )
    cols = ["pnl_usd", "pnl_weighted_usd", "n_trades", "n_wins"]
    agg = base.groupby(["k", "t"], sort=False)[cols].sum().reset_index()
    key = names[agg["k"].to_numpy()] if len(agg) else np.zeros(0, dtype=object)
    out = pd.DataFrame({"key": key, "ts": pd.to_datetime(agg["t"].to_numpy(), unit="ns", utc=True)}).join(
        agg[cols]
    )
    out = out.sort_values(["key", "ts"], kind="stable").reset_index(drop=True)
    grouped = out.groupby("key", sort=False)
    out["cum_pnl_usd"] = grouped["pnl_usd"].cumsum()
    out["cum_pnl_weighted_usd"] = grouped["pnl_weighted_usd"].cumsum()
    return out[["key", "ts", *cols[:2], "cum_pnl_usd", "cum_pnl_weighted_usd", *cols[2:]]]


def _keys_and_weights(
    trades: pd.DataFrame, by: CurveBy, conf: DoctorConfidence
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-trade key codes, the key names (object array) and per-trade weights."""
    sym_codes, sym_uniques = pd.factorize(trades["symbol"], sort=False)
    sym_names = np.asarray(sym_uniques, dtype=object)
    if by == "symbol":
        sym_w = np.array([conf.weight(str(s)) for s in sym_names], dtype=float)
        return sym_codes, sym_names, sym_w[sym_codes] if len(sym_codes) else np.zeros(0)
    route_codes, route_uniques = pd.factorize(trades["route"], sort=False)
    route_names = np.asarray(route_uniques, dtype=object)
    n_routes = max(len(route_names), 1)
    pairs, pair_codes = np.unique(sym_codes.astype(np.int64) * n_routes + route_codes, return_inverse=True)
    pair_sym, pair_route = sym_names[pairs // n_routes], route_names[pairs % n_routes]
    pair_w = np.array([conf.weight(str(s), str(r)) for s, r in zip(pair_sym, pair_route)], dtype=float)
    weights = pair_w[pair_codes] if len(pair_codes) else np.zeros(0)
    if by == "route":
        return route_codes, route_names, weights
    names = np.array([f"{s}{PAIR_SEP}{r}" for s, r in zip(pair_sym, pair_route)], dtype=object)
    return pair_codes.astype(np.intp), names, weights


def rolling_hit_rate(curves: pd.DataFrame, *, window_days: int) -> pd.Series:
    """Rolling hit rate per key over the last ``window_days`` days of a :func:`pnl_curves` frame.

    Parameters
    ----------
    curves
        Output of :func:`pnl_curves` (needs ``key``, ``ts``, ``n_trades``, ``n_wins``).
    window_days
        Window length in days: the value at ``ts`` pools the periods with labels in
        ``(ts - window_days, ts]``.

    Returns
    -------
    pandas.Series
        Pooled wins / trades in the window, aligned with ``curves.index``, in [0, 1].

    Examples
    --------
    >>> c = pd.DataFrame({"key": ["A"] * 3,
    ...     "ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-04"], utc=True),
    ...     "n_trades": [2, 2, 4], "n_wins": [2, 0, 1]})
    >>> rolling_hit_rate(c, window_days=2).tolist()
    [1.0, 0.5, 0.25]
    """
    check_int(window_days, param="window_days", func="rolling_hit_rate", minimum=1)
    missing = [c for c in ("key", "ts", "n_trades", "n_wins") if c not in curves.columns]
    if missing:
        raise ValueError(f"The 'curves' parameter of rolling_hit_rate is missing column(s) {missing}.")
    if curves.empty:
        return pd.Series(np.nan, index=curves.index, dtype=float, name="hit_rate")
    ordered = curves.sort_values(["key", "ts"], kind="stable")
    t = pd.DatetimeIndex(ordered["ts"]).as_unit("ns").asi8
    n = ordered["n_trades"].to_numpy(dtype=float)
    wins = ordered["n_wins"].to_numpy(dtype=float)
    width = pd.Timedelta(days=int(window_days)).value
    rate = np.empty(len(ordered))
    codes = pd.factorize(ordered["key"], sort=False)[0]
    bounds = np.flatnonzero(np.diff(codes)) + 1  # rows where a new key starts (keys are contiguous)
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(ordered)]):
        tk = t[lo:hi]
        first = np.searchsorted(tk, tk - width, side="right")  # first label inside (t - window, t]
        cn = np.r_[0.0, np.cumsum(n[lo:hi])]
        cw = np.r_[0.0, np.cumsum(wins[lo:hi])]
        idx = np.arange(hi - lo)
        rate[lo:hi] = (cw[idx + 1] - cw[first]) / (cn[idx + 1] - cn[first])
    return pd.Series(rate, index=ordered.index, name="hit_rate").reindex(curves.index)


def top_keys(trades: pd.DataFrame, *, by: CurveBy = "symbol", n: int = 10) -> list[str]:
    """The ``n`` keys with the largest absolute total PnL, largest first (ties by name).

    >>> t = pd.DataFrame({"symbol": ["A", "B", "C", "A"], "route": ["x", "x", "y", "y"],
    ...     "pnl_usd": [1.0, -5.0, 2.0, 0.5]})
    >>> top_keys(t, n=2), top_keys(t, by="route", n=5)
    (['B', 'C'], ['x', 'y'])
    """
    by = check_by(by, "top_keys")
    check_int(n, param="n", func="top_keys", minimum=1)
    check_trade_columns(trades, "top_keys", ("symbol", "route", "pnl_usd"))
    totals = trades.groupby(_group_columns(by), sort=False, observed=True)["pnl_usd"].sum()
    if by == "pair":
        names = [f"{s}{PAIR_SEP}{r}" for s, r in totals.index]
    else:
        names = [str(k) for k in totals.index]
    ranked = sorted(zip(names, np.abs(totals.to_numpy(dtype=float))), key=lambda kv: (-kv[1], kv[0]))
    return [k for k, _ in ranked[: int(n)]]


# --------------------------------------------------------------------------- Sharpe band
def rolling_sharpe_band(
    returns: pd.DataFrame, *, window: int, periods_per_year: float, z: float = 1.96
) -> pd.DataFrame:
    """Rolling annualised Sharpe ratio with a ``+- z`` standard-error band, as a long frame.

    Parameters
    ----------
    returns
        Wide per-period returns (columns = keys), e.g. from
        :func:`execution.trade_returns.trade_returns`.
    window
        Rolling window in periods.
    periods_per_year
        Annualisation factor of ``returns``.
    z
        Band half-width in standard errors (1.96: two-sided 95 % under normality of the
        estimator).

    Returns
    -------
    pandas.DataFrame
        Columns ``key``, ``ts``, ``sharpe``, ``se``, ``lo``, ``hi``; rows where the rolling
        Sharpe is undefined (too few observations, zero variance, outside the key's span) are
        dropped.
    """
    check_real(z, param="z", func="rolling_sharpe_band", positive=True)
    sharpe = rolling_sharpe_ratio(returns, window=window, periods_per_year=periods_per_year)
    se = rolling_sharpe_standard_error(returns, window=window, periods_per_year=periods_per_year)
    long = pd.DataFrame(
        {
            "sharpe": pd.DataFrame(sharpe).stack(future_stack=True),
            "se": pd.DataFrame(se).stack(future_stack=True),
        }
    )
    long.index.names = ["ts", "key"]
    long = long.reset_index()
    long = long[np.isfinite(long["sharpe"].to_numpy(dtype=float))]
    long["lo"] = long["sharpe"] - z * long["se"]
    long["hi"] = long["sharpe"] + z * long["se"]
    return long.sort_values(["key", "ts"], kind="stable").reset_index(drop=True)[list(BAND_COLUMNS)]


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
