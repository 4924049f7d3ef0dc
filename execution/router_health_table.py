"""The Router Health statistics table as a trader reads it (errors in the units of their values).

:func:`statistics_table` rewrites :func:`execution.metrics_normalizer.normalized_table` for the
tab; :func:`band_window_days` picks the rolling window the tab offers first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from infra.validate import check_int

MIN_OBS = 30
"""Fewer daily observations than this and a row's ratios are flagged as too few to read: with
n = 30 the standard error of an annualised daily Sharpe is about sqrt(365 / 30) = 3.5, so a
smaller sample cannot tell a Sharpe of 3 from 0 (Lo 2002, eq. 7 under IID returns)."""
RATIO_COLUMNS = (
    "sharpe", "sharpe_ci_low", "sharpe_ci_high", "sharpe_se_ann", "sharpe_autocorr_adj", "sortino",
    "psr", "dsr", "min_trl_days", "hit_rate", "profit_factor", "max_drawdown", "ann_return", "ann_vol",
)  # fmt: skip
STATISTICS_COLUMNS = (
    "symbol", "route", "n_obs", "few_obs", "n_trades", "start", "end", "lookback_days", "pnl_usd",
    *RATIO_COLUMNS, "periods_per_year",
)  # fmt: skip


def statistics_table(table: pd.DataFrame, *, min_obs: int = MIN_OBS, z: float = 1.96) -> pd.DataFrame:
    """The :func:`~execution.metrics_normalizer.normalized_table` as a trader reads it.

    Every error and bound is in the units of the value beside it:

    - ``sharpe_se_ann`` = ``sharpe_se * sqrt(periods_per_year)``: the table's ``sharpe_se`` is the
      standard error of the PER-PERIOD Sharpe (Mertens 2002), and the annualised Sharpe is the
      per-period one times ``sqrt(periods_per_year)``, so its standard error scales by the same
      factor (a per-period 0.113 beside an annual 4.4 read as a t-statistic of 40).
    - ``sharpe_ci_low``/``sharpe_ci_high`` = ``sharpe -+ z * sharpe_se_ann``, the two-sided
      95 % interval for ``z = 1.96``.
    - ``sharpe_autocorr_adj`` is Lo's (2002) autocorrelation-adjusted annual Sharpe (the table's
      ``sharpe_lo``): a different estimate of the same number, not a lower bound; it is above
      ``sharpe`` when returns are negatively autocorrelated.
    - ``min_trl_days``: minimum track record length in days (periods of one day); infinite when
      the Sharpe is not positive (no track record proves a Sharpe > 0 then) and given as NaN,
      which the dashboard shows as "never".
    - ``few_obs`` is True when ``n_obs < min_obs``: the ratios of such a row are noise.

    Examples
    --------
    >>> import math
    >>> t = pd.DataFrame({"symbol": ["A"], "n_obs": [400], "sharpe": [2.0], "sharpe_se": [0.05],
    ...                   "sharpe_lo": [2.1], "min_trl": [math.inf], "periods_per_year": [400.0]})
    >>> r = statistics_table(t).iloc[0]
    >>> float(r["sharpe_se_ann"]), round(float(r["sharpe_ci_low"]), 4), bool(r["few_obs"]), float(r["min_trl_days"])
    (1.0, 0.04, False, nan)
    """
    check_int(min_obs, param="min_obs", func="statistics_table", minimum=1)
    out = table.copy()
    if out.empty:
        return out.reindex(
            columns=[c for c in STATISTICS_COLUMNS if c != "route" or "route" in table.columns]
        )
    ppy = out["periods_per_year"].to_numpy(dtype=float)
    se_ann = out["sharpe_se"].to_numpy(dtype=float) * np.sqrt(ppy)
    sharpe = out["sharpe"].to_numpy(dtype=float)
    out["sharpe_se_ann"] = se_ann
    out["sharpe_ci_low"] = sharpe - z * se_ann
    out["sharpe_ci_high"] = sharpe + z * se_ann
    out["sharpe_autocorr_adj"] = out["sharpe_lo"]
    trl = out["min_trl"].to_numpy(dtype=float) * (365.0 / ppy)  # periods -> days
    out["min_trl_days"] = np.where(np.isfinite(trl), trl, np.nan)
    out["few_obs"] = out["n_obs"].to_numpy(dtype=float) < min_obs
    cols = [c for c in STATISTICS_COLUMNS if c in out.columns]
    return out[cols].reset_index(drop=True)


def band_window_days(
    span_days: float, windows: Sequence[int], *, preferred: int = 30, min_points: int = 10
) -> int:
    """The rolling window to offer first: ``preferred`` when it leaves ``min_points`` points.

    A ``w``-day window over ``span_days`` days of data has ``span_days - w + 1`` full windows,
    one point each. Thirty days of bars and a 30-day window give one point: a chart of a dot.
    Returns the largest window not above ``preferred`` with at least ``min_points`` points, else
    the shortest window.

    >>> band_window_days(90, (7, 14, 30, 60)), band_window_days(30, (7, 14, 30, 60)), band_window_days(5, (7, 14))
    (30, 14, 7)
    """
    ok = [w for w in windows if w <= preferred and span_days - w + 1 >= min_points]
    return max(ok) if ok else min(windows)
