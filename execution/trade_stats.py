"""Trade statistics from fills (closed round trips), not from a returns series.

Profit factor, payoff ratio, streaks and the Kelly fraction are properties of TRADES. Computed
from a daily returns series (quantstats #493, https://github.com/ranaroussi/quantstats/issues/493)
they mix several trades into one day, count flat days as trades and lose the holding time, so
they are wrong whenever a day holds more or fewer than one trade. This module computes them from
the closed-trade log (DESIGN.md contract), one row per group, fully vectorised (``np.bincount``
over group codes and one ``np.lexsort`` for the streaks; no Python loop over groups).

Definitions (per group; ``pnl`` = ``pnl_usd`` after fees, ``size`` = ``size_usd`` > 0,
``ret = pnl / size`` the return on the position's notional, i.e. PnL per unit of risk):

* a trade is a **win** when ``pnl > 0``, a **loss** when ``pnl < 0``; ``pnl == 0`` is a scratch
  (flat) trade: it counts in ``n_trades`` and the expectancies, not in the win rate;
* ``win_rate = n_wins / (n_wins + n_losses)`` (NaN without decisive trades), the same rule as
  :func:`execution.metrics.basic.hit_rate`;
* ``avg_win_usd = mean(pnl | win)``, ``avg_loss_usd = mean(-pnl | loss)`` (a positive number);
* ``payoff_ratio = avg_win_usd / avg_loss_usd``; ``payoff_ratio_per_risk`` the same on ``ret``;
* ``profit_factor = sum(pnl | win) / sum(-pnl | loss)``;
* ``expectancy_usd = mean(pnl)`` over all trades; ``expectancy_per_risk = mean(ret)``;
* ``avg_hold_hours = mean(closed_at - opened_at)`` in hours;
* ``max_win_streak`` / ``max_loss_streak``: the longest run of consecutive wins / losses in
  CLOSING order (``closed_at``, then ``opened_at``, then input order for ties); a scratch trade
  ends both kinds of run;
* ``kelly = p - (1 - p) / b`` with ``p = win_rate`` and ``b = payoff_ratio_per_risk``: the
  classic Kelly fraction of a bet that wins ``b`` units per unit lost (Kelly 1956; Thorp, "The
  Kelly criterion in blackjack, sports betting and the stock market", 2006, eq. 2.3). ``b`` is
  taken per unit of risk because trades of different sizes are different bets: the fraction is
  of capital put at risk per trade, in units of the average loss on notional. Scratch trades do
  not change it: maximising ``p log(1 + b f) + q log(1 - f)`` (a scratch has ``log 1 = 0``) gives
  ``f = p' - (1 - p') / b`` with ``p' = p / (p + q)``, which is ``win_rate``.

Edge cases, chosen to agree with :func:`execution.metrics.basic.profit_factor` (``+inf`` when
there are gains and no losses) and kept consistent across the ratios:

=====================  ==============  ===============  ==================
group has              payoff ratios   profit_factor    kelly
=====================  ==============  ===============  ==================
wins and losses        finite > 0      finite > 0       finite
wins, no losses        ``+inf``        ``+inf``         1.0 (p = 1)
losses, no wins        0.0             0.0              ``-inf`` (p = 0, b = 0)
only scratch trades    NaN             NaN              NaN
=====================  ==============  ===============  ==================

``avg_win_usd`` is NaN without wins and ``avg_loss_usd`` NaN without losses; the streaks are 0
then. Infinite values are shown as ``inf`` by the dashboard and written as ``inf`` to CSV.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

STAT_COLUMNS = [
    "n_trades", "n_wins", "n_losses", "n_scratch", "win_rate", "avg_win_usd", "avg_loss_usd",
    "payoff_ratio", "payoff_ratio_per_risk", "profit_factor", "expectancy_usd", "expectancy_per_risk",
    "kelly", "avg_hold_hours", "max_win_streak", "max_loss_streak", "pnl_usd", "gross_profit_usd",
    "gross_loss_usd",
]  # fmt: skip
"""Statistic columns of :func:`trade_stats`, after the key columns."""

ALL = "(all)"
"""Key value of the aggregate rows of :func:`trade_stats_levels`."""

_FUNC = "trade_stats"
_REQUIRED = ("opened_at", "closed_at", "pnl_usd", "size_usd")


def _fail(message: str) -> ValueError:
    return ValueError(f"{_FUNC}: {message}")


def _keys(by: Any) -> tuple[str, ...]:
    keys = (by,) if isinstance(by, str) else tuple(by)
    if not all(isinstance(k, str) for k in keys):
        raise ValueError(
            f"The 'by' parameter of {_FUNC} must be a column name or a tuple of column names such as "
            f"('symbol', 'route'), or () for the whole book. Got {by!r} instead."
        )
    return keys


def _times_ns(trades: pd.DataFrame, name: str) -> np.ndarray:
    col = trades[name]
    if not isinstance(col.dtype, pd.DatetimeTZDtype):
        raise _fail(f"field '{name}' must be timezone-aware UTC timestamps. Got dtype {col.dtype} instead.")
    idx = pd.DatetimeIndex(col).tz_convert("UTC").as_unit("ns")
    if idx.hasnans:
        raise _fail(f"field '{name}' is missing at row {int(np.flatnonzero(idx.isna())[0])}.")
    return np.asarray(idx.asi8)


def _finite(trades: pd.DataFrame, name: str) -> np.ndarray:
    try:
        values = trades[name].to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise _fail(f"field '{name}' must be numeric. Got dtype {trades[name].dtype}.") from exc
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise _fail(f"field '{name}' must be finite; row {int(bad[0])} has {float(values[bad[0]])!r}.")
    return values


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with ``x / 0 = +inf`` for ``x > 0`` and ``0 / 0 = NaN`` (both >= 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(num / den, dtype=float)


class Fills:
    """A validated trade log, reusable for several groupings (validation and closing order done once).

    Parameters
    ----------
    trades : DataFrame
        Closed trades with ``opened_at``, ``closed_at`` (tz-aware), ``pnl_usd``, ``size_usd`` (> 0)
        and the ``keys`` columns.
    keys : tuple of str
        Columns that :meth:`stats` may group by (checked for presence here).
    """

    def __init__(self, trades: pd.DataFrame, keys: tuple[str, ...] = ()) -> None:
        if not isinstance(trades, pd.DataFrame):
            raise ValueError(
                f"The 'trades' parameter of {_FUNC} must be a DataFrame. Got {type(trades).__name__}."
            )
        missing = [c for c in (*keys, *_REQUIRED) if c not in trades.columns]
        if missing:
            raise _fail(
                f"the trades frame lacks required column(s) {missing}; it has {list(trades.columns)}."
            )
        opened = _times_ns(trades, "opened_at")
        closed = _times_ns(trades, "closed_at")
        pnl = _finite(trades, "pnl_usd")
        size = _finite(trades, "size_usd")
        nonpos = np.flatnonzero(size <= 0)
        if nonpos.size:
            raise _fail(f"field 'size_usd' must be > 0; row {int(nonpos[0])} has {float(size[nonpos[0]])!r}.")
        early = np.flatnonzero(closed < opened)
        if early.size:
            raise _fail(f"row {int(early[0])} closed before it opened (closed_at < opened_at).")
        d_closed, d_opened = np.diff(closed), np.diff(opened)
        if ((d_closed > 0) | ((d_closed == 0) & (d_opened >= 0))).all():
            order = np.arange(len(closed))  # already in closing order (the usual trade log)
        else:
            order = np.lexsort((opened, closed))  # stable: input order breaks the remaining ties
        self.trades = trades
        self.n = len(trades)
        self.time_order = order
        ret = pnl / size
        win, loss = pnl > 0, pnl < 0
        self.sign = np.sign(pnl).astype(np.int8)
        # one column per per-trade quantity summed by group (see _SUMS), gathered in closing order once
        columns = (np.ones(self.n), win, loss, np.where(win, pnl, 0.0), np.where(loss, -pnl, 0.0),
                   np.where(win, ret, 0.0), np.where(loss, -ret, 0.0), pnl, ret,
                   (closed - opened).astype(float) / 3.6e12)  # fmt: skip
        self.weights = np.stack([np.asarray(c, dtype=float)[order] for c in columns])  # (quantity, trade)
        self._factorized: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _factorize(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self._factorized:
            codes, uniq = pd.factorize(self.trades[name], sort=True, use_na_sentinel=True)
            if (codes < 0).any():
                raise _fail(f"field '{name}' is missing at row {int(np.flatnonzero(codes < 0)[0])}.")
            self._factorized[name] = (np.asarray(codes, dtype=np.int64), np.asarray(uniq, dtype=object))
        return self._factorized[name]

    def codes(self, by: str | tuple[str, ...]) -> tuple[np.ndarray, pd.DataFrame]:
        """Group code per trade (groups sorted by key values) and the key values per group."""
        keys = _keys(by)
        if not keys:
            return np.zeros(self.n, dtype=np.int64), pd.DataFrame(index=range(1))
        missing = [c for c in keys if c not in self.trades.columns]
        if missing:
            raise _fail(
                f"the trades frame lacks required column(s) {missing}; it has {list(self.trades.columns)}."
            )
        combo = np.zeros(self.n, dtype=np.int64)
        uniques: list[np.ndarray] = []
        for name in keys:
            codes, uniq = self._factorize(name)
            combo = combo * len(uniq) + codes
            uniques.append(uniq)
        group, combos = pd.factorize(combo, sort=True)
        rem = np.asarray(combos, dtype=np.int64)
        values: dict[str, np.ndarray] = {}
        for name, uniq in zip(reversed(keys), reversed(uniques)):
            values[name] = uniq[rem % len(uniq)]
            rem = rem // len(uniq)
        return np.asarray(group, dtype=np.int64), pd.DataFrame({name: values[name] for name in keys})

    def stats(self, by: str | tuple[str, ...] = ("symbol", "route")) -> pd.DataFrame:
        """:func:`trade_stats` of this log grouped by ``by``."""
        return self.stats_by_codes(*self.codes(by))

    def stats_by_codes(self, codes: np.ndarray, key_frame: pd.DataFrame) -> pd.DataFrame:
        """Statistics per group given each trade's group code (``0 <= code < len(key_frame)``).

        Groups without trades get zero counts and NaN statistics.
        """
        return _stats(self, np.asarray(codes, dtype=np.int64), key_frame)


_SUMS = (
    "n",
    "n_wins",
    "n_losses",
    "gross_profit",
    "gross_loss",
    "gain_risk",
    "loss_risk",
    "pnl",
    "ret",
    "hold",
)


def trade_stats(trades: pd.DataFrame, *, by: str | tuple[str, ...] = ("symbol", "route")) -> pd.DataFrame:
    """Trade-level statistics per group of closed trades (see the module docstring for definitions).

    Parameters
    ----------
    trades : DataFrame
        Closed trades with ``opened_at``, ``closed_at`` (tz-aware), ``pnl_usd``, ``size_usd``
        (> 0) and the ``by`` columns.
    by : str or tuple of str, default ('symbol', 'route')
        Group columns; ``()`` gives one row for the whole book.

    Returns
    -------
    DataFrame
        The ``by`` columns (sorted) followed by :data:`STAT_COLUMNS`, one row per group that has
        trades (one row, all counts 0 and statistics NaN, for an empty book with ``by=()``).

    Examples
    --------
    >>> t = pd.DataFrame({
    ...     "opened_at": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 02:00"], utc=True),
    ...     "closed_at": pd.to_datetime(["2024-01-01 02:00", "2024-01-01 03:00", "2024-01-01 06:00"], utc=True),
    ...     "pnl_usd": [30.0, -10.0, 20.0], "size_usd": [1000.0, 1000.0, 1000.0]})
    >>> s = trade_stats(t, by=()).iloc[0]
    >>> float(s.win_rate), float(s.payoff_ratio), float(s.profit_factor), float(s.avg_hold_hours)
    (0.6666666666666666, 2.5, 5.0, 2.6666666666666665)
    >>> round(float(s.kelly), 6), int(s.max_win_streak), int(s.max_loss_streak)
    (0.533333, 1, 1)
    """
    keys = _keys(by)
    return Fills(trades, keys).stats(keys)


def _stats(fills: Fills, codes: np.ndarray, key_frame: pd.DataFrame) -> pd.DataFrame:
    n_groups = len(key_frame)
    # the trades in closing order, stably regrouped (int16 codes: numpy's stable sort is a radix sort)
    order = np.arange(fills.n)
    grp = codes[fills.time_order]
    if n_groups > 1:
        small = grp.astype(np.int16) if n_groups <= np.iinfo(np.int16).max else grp
        order = np.argsort(small, kind="stable")
        grp = grp[order]
    sums = np.zeros((n_groups, len(_SUMS)))
    max_win = np.zeros(n_groups, dtype=np.int64)
    max_loss = np.zeros(n_groups, dtype=np.int64)
    if fills.n:
        first = np.flatnonzero(np.r_[True, grp[1:] != grp[:-1]])
        weights = fills.weights if n_groups <= 1 else np.take(fills.weights, order, axis=1)
        sums[grp[first]] = np.add.reduceat(weights, first, axis=1).T  # contiguous rows: fast reduceat
        # streaks: run lengths of equal signs within a group
        sign = fills.sign[fills.time_order[order]]
        new_run = np.ones(fills.n, dtype=bool)
        new_run[1:] = (sign[1:] != sign[:-1]) | (grp[1:] != grp[:-1])
        starts = np.flatnonzero(new_run)
        lengths = np.diff(np.append(starts, fills.n))
        run_sign, run_grp = sign[starts], grp[starts]
        np.maximum.at(max_win, run_grp[run_sign > 0], lengths[run_sign > 0])
        np.maximum.at(max_loss, run_grp[run_sign < 0], lengths[run_sign < 0])
    total = dict(zip(_SUMS, sums.T))
    n, n_wins, n_losses = total["n"], total["n_wins"], total["n_losses"]
    gross_profit, gross_loss = total["gross_profit"], total["gross_loss"]
    decisive = n_wins + n_losses

    win_rate = _ratio(n_wins, decisive)
    avg_win = _ratio(gross_profit, n_wins)
    avg_loss = _ratio(gross_loss, n_losses)
    avg_win_risk = _ratio(total["gain_risk"], n_wins)
    avg_loss_risk = _ratio(total["loss_risk"], n_losses)
    # payoff ratios: +inf without losses, 0.0 without wins, NaN without decisive trades
    edge = np.where(n_losses == 0, np.where(n_wins > 0, np.inf, np.nan), np.where(n_wins == 0, 0.0, 1.0))
    both = (n_wins > 0) & (n_losses > 0)
    payoff_usd = np.where(both, _ratio(avg_win, avg_loss), edge)
    payoff_risk = np.where(both, _ratio(avg_win_risk, avg_loss_risk), edge)
    profit_factor = _ratio(gross_profit, gross_loss)
    with np.errstate(divide="ignore", invalid="ignore"):
        kelly = np.where(
            n_losses == 0,
            np.where(n_wins > 0, 1.0, np.nan),
            np.where(n_wins == 0, -np.inf, win_rate - (1.0 - win_rate) / payoff_risk),
        )

    out = key_frame.reset_index(drop=True)
    stats: dict[str, np.ndarray] = {
        "n_trades": n.astype(np.int64),
        "n_wins": n_wins.astype(np.int64),
        "n_losses": n_losses.astype(np.int64),
        "n_scratch": (n - decisive).astype(np.int64),
        "win_rate": win_rate,
        "avg_win_usd": avg_win,
        "avg_loss_usd": avg_loss,
        "payoff_ratio": payoff_usd,
        "payoff_ratio_per_risk": payoff_risk,
        "profit_factor": profit_factor,
        "expectancy_usd": _ratio(total["pnl"], n),
        "expectancy_per_risk": _ratio(total["ret"], n),
        "kelly": kelly,
        "avg_hold_hours": _ratio(total["hold"], n),
        "max_win_streak": max_win,
        "max_loss_streak": max_loss,
        "pnl_usd": total["pnl"],
        "gross_profit_usd": gross_profit,
        "gross_loss_usd": gross_loss,
    }
    for name in STAT_COLUMNS:
        out[name] = stats[name]
    return out


def trade_stats_levels(trades: pd.DataFrame | Fills) -> pd.DataFrame:
    """:func:`trade_stats` per (symbol, route), per symbol, per route and for the whole book.

    One frame with ``symbol`` and ``route`` columns; aggregate rows carry :data:`ALL` in the
    aggregated key (``(all), (all)`` is the whole book, listed first, then per symbol over all
    routes, per route over all symbols, then every (symbol, route)). Accepts a :class:`Fills`
    to reuse its validation.
    """
    fills = trades if isinstance(trades, Fills) else Fills(trades, ("symbol", "route"))
    book = fills.stats(())
    book.insert(0, "route", ALL)
    book.insert(0, "symbol", ALL)
    per_symbol = fills.stats("symbol")
    per_symbol.insert(1, "route", ALL)
    per_route = fills.stats("route")
    per_route.insert(0, "symbol", ALL)
    pairs = fills.stats(("symbol", "route"))
    frames = [f for f in (book, per_symbol, per_route, pairs) if len(f)]
    return pd.concat(frames, ignore_index=True)
