"""Router Health curves: PnL per key and period, the rolling hit rate, the top keys and the Sharpe band.

The definitions (period labels, wins, the confidence haircut, the band) are in the docstring of
:mod:`execution.router_health`, which assembles these pieces into the tab's view.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from execution.metrics_normalizer import rolling_sharpe_ratio, rolling_sharpe_standard_error
from execution.router_health_inputs import (
    PAIR_SEP,
    CurveBy,
    DoctorConfidence,
    check_by,
    check_trade_columns,
    haircut_pnl,
    periods_per_year_for,
)
from infra.validate import check_int, check_real

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
