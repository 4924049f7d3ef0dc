"""Volatility targeting and composite factor scores across symbols."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from execution.metrics.basic import annual_volatility
from execution.metrics.core import as_panel, check_choice, check_int, check_real, shape_out
from execution.metrics.rolling import rolling_annual_volatility


def volatility_scale(
    returns: Any,
    *,
    target_annual_vol: float,
    periods_per_year: float,
    window: int | None = None,
    max_leverage: float | None = None,
) -> Any:
    """Scale returns (or PnL) so that their annualised volatility is ``target_annual_vol``.

    ``scaled_t = r_t * target_annual_vol / vol_t``, where ``vol_t`` is the annualised volatility
    (``std`` with ddof=1 times ``sqrt(periods_per_year)``):

    * ``window=None`` (default): the full-sample volatility of each column, so every column of the
      result has exactly the target volatility. This uses the whole sample (look-ahead) and is
      meant for comparing symbols after the fact.
    * ``window=n``: the trailing ``n``-period volatility known at the END of the PREVIOUS period
      (no look-ahead), as a live volatility-targeting rule would use. The first ``n`` rows are NaN.

    Works the same on PnL in USD (then ``target_annual_vol`` is in USD per year).

    Parameters
    ----------
    returns : array-like, Series or DataFrame
    target_annual_vol : float
        Target annualised volatility (> 0), e.g. 0.10 for 10 %.
    periods_per_year : float
    window : int, optional
        Trailing window (>= 2) for the causal variant.
    max_leverage : float, optional
        Cap on the scale factor ``target / vol`` (> 0).

    Returns
    -------
    Same shape as ``returns``; NaN where the volatility is zero or undefined.

    Examples
    --------
    >>> r = np.array([0.01, -0.02, 0.03, 0.0])
    >>> s = volatility_scale(r, target_annual_vol=0.1, periods_per_year=252)
    >>> round(float(annual_volatility(s, periods_per_year=252)), 12)
    0.1
    """
    func = "volatility_scale"
    target = check_real(target_annual_vol, param="target_annual_vol", func=func, positive=True)
    ppy = check_real(periods_per_year, param="periods_per_year", func=func, positive=True)
    cap = (
        None
        if max_leverage is None
        else check_real(max_leverage, param="max_leverage", func=func, positive=True)
    )
    panel = as_panel(returns, func=func)
    x = panel.values
    if window is None:
        vol = np.asarray(annual_volatility(x, periods_per_year=ppy), dtype=float)[None, :]
    else:
        w = check_int(window, param="window", func=func, minimum=2)
        roll = np.asarray(rolling_annual_volatility(x, window=w, periods_per_year=ppy), dtype=float)
        vol = np.vstack([np.full((1, x.shape[1]), np.nan), roll[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(vol > 0, target / vol, np.nan)
    if cap is not None:
        scale = np.minimum(scale, cap)
    return shape_out(panel, x * scale)


def factor_score(
    metrics: pd.DataFrame,
    weights: Mapping[str, float],
    *,
    method: str = "zscore",
) -> pd.Series:
    """Composite score per row (symbol) from several metrics normalised across rows.

    Each weighted metric column is normalised across the rows, then combined as
    ``score = sum_i w_i * norm_i / sum_i |w_i|`` over the metrics available for the row.

    * ``method='zscore'``: ``(x - mean) / std`` across rows (ddof=0); a column with no spread
      normalises to 0.
    * ``method='rank'``: percentile rank mapped to [-1, 1] (``2 * (rank - 1) / (n - 1) - 1``,
      ties averaged); robust to outliers and to infinite values.

    A positive weight rewards high values and a negative weight rewards low ones. Give
    ``max_drawdown`` (a negative fraction) a positive weight to reward shallow drawdowns.
    Non-finite values (NaN, and +/-inf for ``zscore``) count as missing: the row's score is the
    weighted mean over its other metrics, and NaN when none is available.

    Parameters
    ----------
    metrics : DataFrame
        One row per symbol, e.g. :func:`normalized_table`'s output.
    weights : mapping of column name to float
        Explicit weights; at least one non-zero.
    method : {'zscore', 'rank'}, default 'zscore'

    Returns
    -------
    Series named ``'score'`` on the metrics' index.

    Examples
    --------
    >>> m = pd.DataFrame({"sharpe": [1.0, 2.0, 3.0], "max_drawdown": [-0.3, -0.1, -0.2]})
    >>> factor_score(m, {"sharpe": 1.0, "max_drawdown": 1.0}, method="rank").tolist()
    [-1.0, 0.5, 0.5]
    """
    func = "factor_score"
    check_choice(method, param="method", func=func, choices=("zscore", "rank"))
    if not isinstance(metrics, pd.DataFrame):
        raise ValueError(
            f"The 'metrics' parameter of {func} must be a DataFrame. Got {type(metrics).__name__}."
        )
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError(
            f"The 'weights' parameter of {func} must be a non-empty mapping of column to weight."
        )
    names = list(weights)
    missing = [n for n in names if n not in metrics.columns]
    if missing:
        raise ValueError(
            f"The 'weights' parameter of {func} names column(s) {missing} that are not in metrics "
            f"(columns: {list(metrics.columns)})."
        )
    w = np.array([check_real(weights[n], param=f"weights[{n!r}]", func=func) for n in names])
    if not np.any(w != 0):
        raise ValueError(
            f"The 'weights' parameter of {func} must have at least one non-zero weight. Got {weights}."
        )
    x = metrics[names].to_numpy(dtype=float, na_value=np.nan)
    if method == "zscore":
        x = np.where(np.isfinite(x), x, np.nan)
        present = ~np.isnan(x)
        cnt = present.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(present, x, 0.0).sum(axis=0) / cnt
            dev = np.where(present, x - mean, 0.0)
            std = np.sqrt((dev * dev).sum(axis=0) / cnt)
            norm = np.where(std > 0, dev / np.where(std > 0, std, 1.0), 0.0)
        norm = np.where(present, norm, np.nan)
    else:
        ranks = pd.DataFrame(x).rank(axis=0, method="average", na_option="keep").to_numpy(dtype=float)
        cnt = (~np.isnan(ranks)).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            norm = np.where(cnt > 1, 2.0 * (ranks - 1.0) / (cnt - 1.0) - 1.0, 0.0)
        norm = np.where(np.isnan(ranks), np.nan, norm)
    avail = ~np.isnan(norm)
    num = np.where(avail, norm * w, 0.0).sum(axis=1)
    den = np.where(avail, np.abs(w), 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(den > 0, num / den, np.nan)
    return pd.Series(score, index=metrics.index, name="score")
