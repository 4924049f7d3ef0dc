"""Full-sample return metrics: Sharpe, Sortino, downside deviation, volatility, drawdown, hit rate.

Conventions (shared with empyrical-reloaded where its definitions match):

* returns are simple, non-cumulative, one row per period; ``periods_per_year`` annualises
  (see :func:`execution.metrics.calendar.periods_per_year`);
* NaN is skipped per column; a column with too few present values gives NaN;
* a constant column has zero dispersion exactly: ratios over it are ``+inf`` / ``-inf`` for a
  positive / negative numerator and NaN for a zero numerator, never a huge finite number.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from execution.metrics.core import (
    Panel,
    as_panel,
    check_real,
    column_moments,
    reduce_out,
    risk_free_per_period,
)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(num / den, dtype=float)


def _unscale(panel: Panel, value: np.ndarray) -> np.ndarray:
    """A result in the units of the rescaled values back in the input's units (may overflow to inf)."""
    if panel.scale is None:
        return value
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(value * panel.scale, dtype=float)


def _sharpe_parts(panel: Panel, risk_free: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-period excess mean, sample std (ddof=1) and present counts."""
    mom = column_moments(panel)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(mom.m2 / (mom.count - 1))
    mean = mom.mean - panel.per_column(risk_free)
    short = mom.count < 2
    std[short] = np.nan
    return mean, std, mom.count


def sharpe_ratio(
    returns: Any, *, periods_per_year: float, risk_free: Any = 0.0, risk_free_unit: str | None = None
) -> Any:
    """Annualised Sharpe ratio: mean excess return over its sample standard deviation.

    ``SR = mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods_per_year)`` with ``rf`` per period.

    Parameters
    ----------
    returns : array-like, Series or DataFrame
        Simple per-period returns; 2-D input is one column per symbol.
    periods_per_year : float
        Periods in a year (> 0), e.g. 365 for daily crypto, 252 for daily equities.
    risk_free : float, or one rate per period (array or Series on the returns' index), default 0.0
        The risk-free rate as a fraction in (-1, 1), in the unit named by ``risk_free_unit``.
    risk_free_unit : {'period', 'annual'}, required when ``risk_free`` is not zero
        ``'annual'`` rates are de-compounded to ``(1 + rf) ** (1 / periods_per_year) - 1`` per
        period. There is no default: an annual rate read as a per-period one is the most common
        Sharpe bug in the peer libraries (see :func:`~execution.metrics.core.risk_free_per_period`).
        A constant rate and a Series of that same rate give the same Sharpe.

    Returns
    -------
    float, ndarray or Series
        NaN with fewer than two present values; +/-inf (or NaN for a zero mean) for a constant column.

    Examples
    --------
    >>> round(sharpe_ratio([0.01, 0.02, -0.01, 0.03], periods_per_year=252), 6)
    11.61895
    >>> round(sharpe_ratio([0.01, 0.02, -0.01, 0.03], periods_per_year=252, risk_free=0.05, risk_free_unit="annual"), 6)
    11.438967
    """
    func = "sharpe_ratio"
    ppy = check_real(periods_per_year, param="periods_per_year", func=func, positive=True)
    panel = as_panel(returns, func=func)
    rf = risk_free_per_period(risk_free, risk_free_unit, periods_per_year=ppy, func=func, panel=panel)
    if isinstance(rf, np.ndarray):  # one rate per period: the dispersion is that of the excess returns
        with np.errstate(over="ignore", invalid="ignore"):
            excess = as_panel(panel.unscaled() - rf[:, None], func=func)
        mean, std, _ = _sharpe_parts(excess, 0.0)
    else:
        mean, std, _ = _sharpe_parts(panel, rf)
    return reduce_out(panel, _ratio(mean, std) * np.sqrt(ppy), name="sharpe")


def annual_volatility(returns: Any, *, periods_per_year: float) -> Any:
    """Annualised volatility: ``std(r, ddof=1) * sqrt(periods_per_year)``.

    NaN with fewer than two present values; exactly 0.0 for a constant column.

    Examples
    --------
    >>> round(annual_volatility([0.01, 0.02, -0.01, 0.03], periods_per_year=252), 6)
    0.271109
    """
    func = "annual_volatility"
    ppy = check_real(periods_per_year, param="periods_per_year", func=func, positive=True)
    panel = as_panel(returns, func=func)
    _, std, _ = _sharpe_parts(panel, 0.0)
    return reduce_out(panel, _unscale(panel, std * np.sqrt(ppy)), name="ann_vol")


def annual_return(returns: Any, *, periods_per_year: float) -> Any:
    """Arithmetic annualised return: ``mean(r) * periods_per_year``.

    This is the numerator of the annualised Sharpe ratio, not the compounded growth rate
    (empyrical's ``annual_return`` is the CAGR). NaN for a column with no present values.

    Examples
    --------
    >>> round(annual_return([0.01, 0.02, -0.01, 0.03], periods_per_year=252), 6)
    3.15
    """
    func = "annual_return"
    ppy = check_real(periods_per_year, param="periods_per_year", func=func, positive=True)
    panel = as_panel(returns, func=func)
    mom = column_moments(panel)
    return reduce_out(panel, _unscale(panel, mom.mean * ppy), name="ann_return")


def _downside(panel: Panel, target: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-period target downside deviation (in the units of ``panel.values``) and present counts."""
    x = panel.values
    # one temporary only: large fresh allocations cost more than the arithmetic here
    if target == 0.0:
        below = np.minimum(x, 0.0)
    else:
        below = np.subtract(x, panel.per_column(target))
        np.minimum(below, 0.0, out=below)
    if panel.has_nan:
        present = ~np.isnan(x)
        count = present.sum(axis=0).astype(float)
        below[~present] = 0.0
    else:
        count = np.full(x.shape[1], float(x.shape[0]))
    with np.errstate(invalid="ignore", divide="ignore"):
        dd = np.sqrt(np.einsum("ij,ij->j", below, below) / count)
    return dd, count


def downside_deviation(returns: Any, *, periods_per_year: float, target: float = 0.0) -> Any:
    """Annualised target downside deviation (Sortino & Price 1994).

    ``DD = sqrt(mean(min(r - target, 0)**2)) * sqrt(periods_per_year)``, the mean taken over ALL
    present periods (those above target contribute zero), not only the losing ones.

    Parameters
    ----------
    returns : array-like, Series or DataFrame
    periods_per_year : float
    target : float, default 0.0
        Minimum acceptable return per period.

    Returns
    -------
    float, ndarray or Series
        NaN for a column with no present values; 0.0 when no period falls below target.

    Examples
    --------
    >>> round(downside_deviation([0.01, 0.02, -0.01, 0.03], periods_per_year=252), 6)
    0.079373
    """
    func = "downside_deviation"
    ppy = check_real(periods_per_year, param="periods_per_year", func=func, positive=True)
    tgt = check_real(target, param="target", func=func)
    panel = as_panel(returns, func=func)
    dd, _ = _downside(panel, tgt)
    return reduce_out(panel, _unscale(panel, dd * np.sqrt(ppy)), name="downside_deviation")


def sortino_ratio(returns: Any, *, periods_per_year: float, target: float = 0.0) -> Any:
    """Annualised Sortino ratio: ``mean(r - target) / DD * sqrt(periods_per_year)``.

    ``DD`` is the per-period target downside deviation of :func:`downside_deviation` (over all
    periods). Matches empyrical's ``sortino_ratio(returns, required_return=target)``.

    Returns
    -------
    float, ndarray or Series
        NaN with fewer than two present values; ``+inf`` when no period is below target and the
        mean excess is positive; NaN when the mean excess is zero and nothing is below target.

    Examples
    --------
    >>> round(sortino_ratio([0.01, 0.02, -0.01, 0.03], periods_per_year=252), 6)
    39.68627
    """
    func = "sortino_ratio"
    ppy = check_real(periods_per_year, param="periods_per_year", func=func, positive=True)
    tgt = check_real(target, param="target", func=func)
    panel = as_panel(returns, func=func)
    dd, count = _downside(panel, tgt)
    x = panel.values
    tgt_v = np.broadcast_to(panel.per_column(tgt), count.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.where(np.isnan(x), 0.0, x).sum(axis=0) if panel.has_nan else x.sum(axis=0)
        excess = total / count - tgt_v
    # nothing below target: excess >= 0, and exactly 0 only if every value equals the target
    excess[(dd == 0) & (panel.hi == tgt_v)] = 0.0
    out = _ratio(excess, dd) * np.sqrt(ppy)
    out[count < 2] = np.nan
    return reduce_out(panel, out, name="sortino")


def _log_space_drawdown(x: np.ndarray) -> np.ndarray:
    """Maximum drawdown of columns whose compounded wealth overflows float64.

    Wealth ``W_t = prod(1 + r)`` is kept as a sign ``s_t = prod(sign(1 + r))`` and a log magnitude
    ``L_t = sum(log|1 + r|)``; the running peak ``max(1, max W_s)`` has log ``P_t = max(0, max of
    L_s over s <= t with s_s > 0)``, and ``W_t / peak_t = s_t * exp(L_t - P_t)`` never overflows
    while wealth is positive (``L_t <= P_t``). Same definition as :func:`max_drawdown`.
    """
    g = 1.0 + x
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        log_mag = np.cumsum(np.log(np.abs(g)), axis=0)
        sign = np.cumprod(np.sign(g), axis=0)
        peak = np.maximum.accumulate(np.where(sign > 0, log_mag, -np.inf), axis=0)
        np.maximum(peak, 0.0, out=peak)
        ratio = sign * np.exp(log_mag - peak)
        ratio = np.where(sign == 0, 0.0, ratio)
    return np.asarray(np.minimum(ratio.min(axis=0) - 1.0, 0.0), dtype=float)


def max_drawdown(returns: Any) -> Any:
    """Maximum drawdown of compounded wealth, as a negative fraction (or 0.0).

    Wealth starts at 1 and grows as ``prod(1 + r)``; the starting value counts as a peak, so a
    first-period loss of 10 % is a drawdown of -0.1 (as in empyrical). NaN periods leave wealth
    unchanged. NaN for a column with no present values.

    Examples
    --------
    >>> round(max_drawdown([0.1, -0.2, 0.05, -0.1]), 6)
    -0.244
    """
    func = "max_drawdown"
    panel = as_panel(returns, func=func)
    x = panel.unscaled()
    if x.shape[0] == 0:
        return reduce_out(panel, np.full(x.shape[1], np.nan), name="max_drawdown")
    wealth = np.add(x, 1.0)  # growth factors, then wealth in place (two full-size buffers in all)
    if panel.has_nan:
        wealth[np.isnan(x)] = 1.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        np.cumprod(wealth, axis=0, out=wealth)
        peak = np.maximum.accumulate(wealth, axis=0)
        np.maximum(peak, 1.0, out=peak)
        np.divide(wealth, peak, out=peak)
    out = np.minimum(peak.min(axis=0) - 1.0, 0.0)
    overflow = ~np.isfinite(wealth[-1]) | np.isnan(out)
    if overflow.any():  # wealth beyond the float range: redo those columns in log space
        cols = np.flatnonzero(overflow)
        out[cols] = _log_space_drawdown(np.where(np.isnan(x[:, cols]), 0.0, x[:, cols]))
    if panel.has_nan:
        out[np.isnan(x).all(axis=0)] = np.nan
    return reduce_out(panel, out, name="max_drawdown")


def hit_rate(returns: Any) -> Any:
    """Share of winning periods among non-zero ones: ``#(r > 0) / #(r != 0)``.

    Zero and NaN periods are ignored; NaN when a column has no non-zero return.

    Examples
    --------
    >>> hit_rate([0.01, 0.0, -0.02, 0.03])
    0.6666666666666666
    """
    panel = as_panel(returns, func="hit_rate")
    x = panel.values
    wins = (x > 0).sum(axis=0)
    losses = (x < 0).sum(axis=0)
    return reduce_out(panel, _ratio(wins.astype(float), (wins + losses).astype(float)), name="hit_rate")


def profit_factor(returns: Any) -> Any:
    """Gross gains over gross losses: ``sum(r[r > 0]) / -sum(r[r < 0])``.

    ``+inf`` when there are gains and no losses, 0.0 with losses and no gains, NaN when every
    present return is zero (or none is present). Works on returns or on PnL.

    Examples
    --------
    >>> round(profit_factor([0.03, -0.01, 0.01, -0.02]), 6)
    1.333333
    """
    panel = as_panel(returns, func="profit_factor")
    x = np.nan_to_num(panel.values, nan=0.0)
    gains = np.where(x > 0, x, 0.0).sum(axis=0)
    losses = np.where(x < 0, -x, 0.0).sum(axis=0)  # +0.0 when there are none, so gains / 0 is +inf
    return reduce_out(panel, _ratio(gains, losses), name="profit_factor")
