"""Drawdowns and calendar tables of a daily return series (compounded, UTC calendar).

:func:`underwater` and :func:`drawdown_table` measure wealth against its running peak;
:func:`monthly_returns`, :func:`yearly_returns`, :func:`period_returns` and
:func:`return_quantiles` compound the returns over calendar periods. Used by the tear sheet
(:mod:`execution.tear_sheet`) and its report.

Examples
--------
>>> import pandas as pd
>>> r = pd.Series([0.1, -0.5, 0.2, 1.0], index=pd.date_range("2024-01-30", periods=4, tz="UTC"))
>>> underwater(r).round(2).tolist()
[0.0, -0.5, -0.4, 0.0]
>>> drawdown_table(r)[["depth", "days"]].to_numpy().tolist()
[[-0.5, 2.0]]
>>> monthly_returns(r).loc[2024, [1, 2]].round(2).tolist()
[-0.45, 1.4]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
"""Quantiles of :func:`return_quantiles`."""


def underwater(returns: pd.Series) -> pd.Series:
    """Drawdown of compounded wealth from its running peak (the start, wealth 1, counts as a peak)."""
    wealth = np.cumprod(1.0 + returns.to_numpy(dtype=float))
    peak = np.maximum.accumulate(np.maximum(wealth, 1.0))
    return pd.Series(wealth / peak - 1.0, index=returns.index, name="drawdown")


DRAWDOWN_COLUMNS = ["start", "trough", "recovery", "depth", "days"]


def drawdown_table(returns: pd.Series, top: int = 10) -> pd.DataFrame:
    """The ``top`` deepest drawdowns: start, trough, recovery, depth and days under water.

    A drawdown is a maximal run of days with wealth below its running peak. ``start`` = its first
    day under water (the peak is the day before); ``trough`` = the day of its lowest wealth;
    ``recovery`` = the first day back at the peak (NaT when not recovered by the last day);
    ``depth`` = ``wealth(trough) / peak - 1`` (negative); ``days`` = the number of days under
    water, i.e. ``recovery - start`` in days, or ``last day - start + 1`` when not recovered.
    Sorted deepest first (ties: earlier first).
    """
    u = underwater(returns).to_numpy()
    under = u < 0
    idx = pd.DatetimeIndex(returns.index)
    if not under.any():
        return pd.DataFrame({c: pd.Series(dtype=float) for c in DRAWDOWN_COLUMNS})
    edges = np.diff(np.r_[0, under.astype(np.int8), 0])
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)  # exclusive: the recovery day, or len(u) when not recovered
    run = np.cumsum(edges[:-1] == 1) - 1
    pos = np.flatnonzero(under)
    order = np.lexsort((pos, u[pos], run[pos]))  # per run: lowest drawdown first, earliest on ties
    first_in_run = np.r_[True, run[pos][order][1:] != run[pos][order][:-1]]
    trough = pos[order][first_in_run]
    recovered = ends < len(u)
    table = pd.DataFrame(
        {
            "start": idx[starts],
            "trough": idx[trough],
            "recovery": pd.Series(idx[np.minimum(ends, len(u) - 1)]).where(recovered).to_numpy(),
            "depth": u[trough],
            "days": (ends - starts).astype(np.int64),
        }
    )
    table = table.sort_values(["depth", "start"], kind="stable").head(top).reset_index(drop=True)
    return table


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded return of each UTC calendar month: rows = years, columns = months 1..12 (NaN outside the data)."""
    r = returns.dropna()
    days = pd.DatetimeIndex(r.index)
    growth = (1.0 + r).groupby([days.year, days.month]).prod() - 1.0
    growth.index.names = ["year", "month"]
    table = growth.unstack("month").reindex(columns=range(1, 13))
    table.columns.name = "month"
    return table


def yearly_returns(returns: pd.Series, benchmark: pd.Series | None = None) -> pd.DataFrame:
    """Compounded return of each UTC calendar year, with the benchmark's beside it when given."""
    r = returns.dropna()
    out = pd.DataFrame({"strategy": (1.0 + r).groupby(pd.DatetimeIndex(r.index).year).prod() - 1.0})
    if benchmark is not None:
        b = benchmark.dropna()
        out["benchmark"] = (1.0 + b).groupby(pd.DatetimeIndex(b.index).year).prod() - 1.0
    out.index.name = "year"
    return out


def period_returns(returns: pd.Series, freq: str) -> pd.Series:
    """Compounded returns over calendar periods (``'W'`` weeks ending Sunday, ``'ME'`` months, ...)."""
    r = returns.dropna()
    return (1.0 + r).resample(freq).prod() - 1.0


def return_quantiles(returns: pd.Series) -> pd.DataFrame:
    """Quantiles of daily, weekly, monthly and yearly compounded returns (columns = quantiles)."""
    rows = {
        "daily": returns.dropna(),
        "weekly": period_returns(returns, "W"),
        "monthly": period_returns(returns, "ME"),
        "yearly": period_returns(returns, "YE"),
    }
    table = pd.DataFrame({k: v.quantile(list(QUANTILES)) for k, v in rows.items()}).T
    table.columns = [f"q{int(q * 100):02d}" for q in QUANTILES]
    return table
