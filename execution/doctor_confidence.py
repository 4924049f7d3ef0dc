"""Route health: per symbol and route execution quality and the doctor's confidence in [0, 1].

Pure computation over order attempts (``orders.parquet``: order_id, ts, symbol, route, status
FILLED/REJECTED/ERROR, expected_price, fill_price, slippage_bps, expected_slippage_bps,
latency_ms) and, optionally, closed trades (for the recent drawdown). Frames in, frames out; no
files and no wall clock: "recent" is measured back from the newest order timestamp in the data.

Confidence formula (documented in ``docs/doctor.md``)
-----------------------------------------------------
For one ``(symbol, route)`` with ``n`` order attempts in the lookback window:

- failure rate ``f = (rejected + errored) / n``;
- excess slippage ``e = max(0, mean(slippage_bps - expected_slippage_bps))`` over the filled
  orders, in basis points (paying less than expected is not rewarded beyond 0);
- recent drawdown ``d``: the maximum drawdown of the cumulative sum of trade returns
  ``pnl_usd / size_usd`` of the route's trades closed in the window (a fraction of notional,
  ``>= 0``; 0 without trades);
- penalty ``p = f / f0 + e / e0 + d / d0`` with scales ``f0 = 0.10``, ``e0 = 10 bps``,
  ``d0 = 0.25``: each scale is the amount of that defect that alone multiplies the confidence by
  ``1/e`` (about 0.37);
- quality ``q = exp(-p)`` in (0, 1]: 1 for a route that always fills at the expected slippage
  with no drawdown, and strictly decreasing in each defect;
- shrinkage towards a neutral prior for small samples: ``c = w q + (1 - w) c0`` with
  ``w = n / (n + n0)``, ``n0 = 10`` attempts and ``c0 = 0.5``, so a route with no attempts has
  confidence 0.5 ("unknown") and the measured quality dominates once ``n >> n0``.

A symbol's confidence is the attempt-weighted mean of its routes' confidences
``sum_r n_r c_r / sum_r n_r``: the confidence that an order of that symbol, routed as its flow
currently is, executes well. Both are in [0, 1] by construction (convex combinations of numbers
in [0, 1]).

Examples
--------
>>> import pandas as pd
>>> orders = pd.DataFrame({
...     "ts": pd.to_datetime(["2025-01-01"] * 4, utc=True), "symbol": ["BTC"] * 4,
...     "route": ["a"] * 4, "status": ["FILLED", "FILLED", "FILLED", "REJECTED"],
...     "slippage_bps": [1.0, 1.0, 1.0, float("nan")], "expected_slippage_bps": [1.0] * 4})
>>> t = route_health_table(orders)
>>> round(float(t.loc[0, "quality"]), 6) == round(math.exp(-0.25 / 0.10), 6)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

ORDER_COLUMNS = ("ts", "symbol", "route", "status", "slippage_bps", "expected_slippage_bps")
STATUSES = ("FILLED", "REJECTED", "ERROR")
PAIR_SEP = "|"

TABLE_COLUMNS = [
    "symbol", "route", "n_orders", "n_filled", "n_rejected", "n_errors", "failure_rate",
    "mean_slippage_bps", "mean_expected_slippage_bps", "excess_slippage_bps", "latency_ms_p50",
    "n_trades", "recent_drawdown", "penalty", "quality", "confidence",
]  # fmt: skip
"""Columns of :func:`route_health_table`, in order."""


@dataclass(frozen=True, kw_only=True)
class RouteHealthConfig:
    """Scales of the doctor-confidence formula (see the module docstring)."""

    lookback: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(days=30))
    """Window back from the newest order timestamp that counts as recent."""
    failure_scale: float = 0.10
    """``f0``: failure rate that alone multiplies the confidence by 1/e."""
    excess_slippage_scale_bps: float = 10.0
    """``e0``: excess slippage (bps) that alone multiplies the confidence by 1/e."""
    drawdown_scale: float = 0.25
    """``d0``: recent drawdown (fraction of notional) that alone multiplies it by 1/e."""
    prior_attempts: float = 10.0
    """``n0``: attempts at which measured quality and prior weigh equally."""
    prior_confidence: float = 0.5
    """``c0``: confidence of a route with no attempts."""

    def __post_init__(self) -> None:
        if not isinstance(self.lookback, pd.Timedelta) or self.lookback <= pd.Timedelta(0):
            raise ValueError(
                f"The 'lookback' of RouteHealthConfig must be a positive pd.Timedelta. Got {self.lookback!r} instead."
            )
        for name in ("failure_scale", "excess_slippage_scale_bps", "drawdown_scale"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(
                    f"The '{name}' of RouteHealthConfig must be a number > 0. Got {v!r} instead."
                )
        if not (math.isfinite(self.prior_attempts) and self.prior_attempts >= 0):
            raise ValueError(
                f"The 'prior_attempts' of RouteHealthConfig must be >= 0. Got {self.prior_attempts!r} instead."
            )
        if not 0.0 <= self.prior_confidence <= 1.0:
            raise ValueError(
                f"The 'prior_confidence' of RouteHealthConfig must be in [0, 1]. Got {self.prior_confidence!r} instead."
            )


def confidence_from(
    *,
    n: float,
    failure_rate: float,
    excess_slippage_bps: float,
    drawdown: float,
    config: RouteHealthConfig | None = None,
) -> tuple[float, float, float]:
    """``(penalty, quality, confidence)`` for one route from its defects (module formula).

    Examples
    --------
    >>> p, q, c = confidence_from(n=20, failure_rate=0.1, excess_slippage_bps=0.0, drawdown=0.0)
    >>> round(p, 6), round(q, 6), round(c, 6)
    (1.0, 0.367879, 0.41192)
    """
    cfg = config or RouteHealthConfig()
    for name, v in (("failure_rate", failure_rate), ("drawdown", drawdown), ("n", n)):
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(
                f"The '{name}' parameter of confidence_from must be a finite number >= 0. Got {v!r}."
            )
    if failure_rate > 1:
        raise ValueError(
            f"The 'failure_rate' parameter of confidence_from must be in [0, 1]. Got {failure_rate!r}."
        )
    e = 0.0 if not math.isfinite(excess_slippage_bps) else max(0.0, excess_slippage_bps)
    penalty = (
        failure_rate / cfg.failure_scale + e / cfg.excess_slippage_scale_bps + drawdown / cfg.drawdown_scale
    )
    quality = math.exp(-penalty)
    w = n / (n + cfg.prior_attempts) if (n + cfg.prior_attempts) > 0 else 0.0
    confidence = w * quality + (1.0 - w) * cfg.prior_confidence
    return penalty, quality, min(1.0, max(0.0, confidence))


def max_drawdown_of_returns(returns: np.ndarray) -> float:
    """Largest fall of ``cumsum(returns)`` from its running peak (starting at 0), as a number >= 0.

    Examples
    --------
    >>> max_drawdown_of_returns(np.array([0.1, -0.05, -0.1, 0.2]))
    0.15000000000000002
    """
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return 0.0
    equity = np.concatenate([[0.0], np.cumsum(r)])
    return float(np.max(np.maximum.accumulate(equity) - equity))


def _check_orders(orders: pd.DataFrame) -> None:
    if not isinstance(orders, pd.DataFrame):
        raise TypeError(
            f"The 'orders' parameter of route_health_table must be a DataFrame. Got {type(orders).__name__} instead."
        )
    missing = [c for c in ORDER_COLUMNS if c not in orders.columns]
    if missing:
        raise ValueError(
            f"The 'orders' parameter of route_health_table is missing column(s) {missing}; "
            f"it has {list(orders.columns)}."
        )
    if len(orders) and not isinstance(orders["ts"].dtype, pd.DatetimeTZDtype):
        raise ValueError(
            f"The 'ts' column of 'orders' must be timezone-aware UTC timestamps. Got {orders['ts'].dtype} instead."
        )
    bad = sorted(set(orders["status"].astype(str)) - set(STATUSES))
    if bad:
        raise ValueError(
            f"The 'status' column of 'orders' must be one of {list(STATUSES)}. Got {bad} instead."
        )


def route_health_table(
    orders: pd.DataFrame,
    trades: pd.DataFrame | None = None,
    *,
    config: RouteHealthConfig | None = None,
) -> pd.DataFrame:
    """One row per ``(symbol, route)`` with fill quality, slippage, drawdown and confidence.

    Parameters
    ----------
    orders : DataFrame
        Order attempts with at least :data:`ORDER_COLUMNS` (``latency_ms`` optional).
    trades : DataFrame, optional
        Closed trades with ``symbol``, ``route``, ``closed_at``, ``pnl_usd``, ``size_usd``; their
        recent drawdown enters the penalty. Without it the drawdown term is 0.
    config : RouteHealthConfig, optional
        Lookback and scales of the formula.

    Returns
    -------
    DataFrame
        Columns :data:`TABLE_COLUMNS`, sorted by symbol and route. Empty (with those columns) for
        empty ``orders``.
    """
    cfg = config or RouteHealthConfig()
    _check_orders(orders)
    if len(orders) == 0:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    end = orders["ts"].max()
    start = end - cfg.lookback
    recent = orders.loc[orders["ts"] > start]
    dd: dict[tuple[str, str], tuple[int, float]] = {}
    if trades is not None and len(trades):
        need = [c for c in ("symbol", "route", "closed_at", "pnl_usd", "size_usd") if c not in trades.columns]
        if need:
            raise ValueError(f"The 'trades' parameter of route_health_table is missing column(s) {need}.")
        tr = trades.loc[(trades["closed_at"] > start) & (trades["closed_at"] <= end)].sort_values("closed_at")
        size = tr["size_usd"].to_numpy(dtype=float)
        ret = np.divide(
            tr["pnl_usd"].to_numpy(dtype=float), size, out=np.full(len(tr), np.nan), where=size > 0
        )
        tr = tr.assign(_ret=ret)
        for (sym, route), g in tr.groupby(["symbol", "route"], sort=False):
            dd[(str(sym), str(route))] = (len(g), max_drawdown_of_returns(g["_ret"].to_numpy()))
    rows = []
    for (sym, route), g in recent.groupby(["symbol", "route"], sort=True):
        status = g["status"].astype(str)
        n = len(g)
        n_filled = int((status == "FILLED").sum())
        n_rej = int((status == "REJECTED").sum())
        n_err = int((status == "ERROR").sum())
        filled = g.loc[status == "FILLED"]
        slip = filled["slippage_bps"].to_numpy(dtype=float)
        exp_slip = filled["expected_slippage_bps"].to_numpy(dtype=float)
        ok = np.isfinite(slip) & np.isfinite(exp_slip)
        mean_slip = float(slip[ok].mean()) if ok.any() else math.nan
        mean_exp = float(exp_slip[ok].mean()) if ok.any() else math.nan
        excess = float((slip[ok] - exp_slip[ok]).mean()) if ok.any() else math.nan
        lat = g["latency_ms"].to_numpy(dtype=float) if "latency_ms" in g.columns else np.array([])
        lat = lat[np.isfinite(lat)]
        n_tr, drawdown = dd.get((str(sym), str(route)), (0, 0.0))
        failure = (n_rej + n_err) / n
        penalty, quality, conf = confidence_from(
            n=n, failure_rate=failure, excess_slippage_bps=excess, drawdown=drawdown, config=cfg
        )
        rows.append(
            [str(sym), str(route), n, n_filled, n_rej, n_err, failure, mean_slip, mean_exp, excess,
             float(np.median(lat)) if lat.size else math.nan, n_tr, drawdown, penalty, quality, conf]
        )  # fmt: skip
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def symbol_confidence(table: pd.DataFrame) -> dict[str, float]:
    """Attempt-weighted mean of route confidences per symbol (see the module docstring)."""
    out: dict[str, float] = {}
    for sym, g in table.groupby("symbol", sort=True):
        n = g["n_orders"].to_numpy(dtype=float)
        c = g["confidence"].to_numpy(dtype=float)
        out[str(sym)] = float(np.sum(n * c) / np.sum(n)) if np.sum(n) > 0 else math.nan
    return out


def route_confidence(table: pd.DataFrame) -> dict[str, float]:
    """``{"SYMBOL|route": confidence}`` for every row of a :func:`route_health_table`."""
    return {
        f"{s}{PAIR_SEP}{r}": float(c)
        for s, r, c in zip(table["symbol"], table["route"], table["confidence"], strict=True)
    }
