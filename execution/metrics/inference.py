"""How sure is a Sharpe ratio: Mertens standard error, PSR, DSR, MinTRL and Lo's annualisation.

All Sharpe ratios in this module are PER PERIOD (``mean / std`` of the per-period returns, not
annualised) unless a function says otherwise, because that is the unit of the published
formulas. With ``T`` present observations, per-period Sharpe ``SR`` (std with ddof=1), sample
skewness ``g3 = m3 / m2**1.5`` and NON-excess kurtosis ``g4 = m4 / m2**2`` (population moments
about the mean; a normal distribution has ``g4 = 3``):

* Mertens (2002), in the form of Bailey & Lopez de Prado (2012, eq. 4/7):
  ``Var(SR) = (1 - g3 * SR + (g4 - 1) / 4 * SR**2) / (T - 1)``. The quadratic is never negative
  because ``g4 >= 1 + g3**2`` for any sample.
* PSR (Bailey & Lopez de Prado 2012): ``PSR(SR*) = Phi((SR - SR*) / sqrt(Var(SR)))``.
* DSR (Bailey & Lopez de Prado 2014): PSR against the expected maximum Sharpe of ``N``
  independent trials with cross-sectional Sharpe variance ``V``:
  ``SR0 = sqrt(V) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e)))`` with
  Euler-Mascheroni ``gamma``; ``SR0 = 0`` for ``N = 1``.
* MinTRL (Bailey & Lopez de Prado 2012, eq. 11):
  ``1 + (1 - g3 * SR + (g4 - 1) / 4 * SR**2) * (Phi^-1(1 - alpha) / (SR - SR*))**2`` periods.
* Lo (2002): the annual Sharpe of autocorrelated returns is ``eta(q) * SR`` with
  ``eta(q) = q / sqrt(q + 2 * sum_{k=1}^{q-1} (q - k) * rho_k)`` and ``q`` periods per year.

Too few observations (T < 2 for the Sharpe, T < 3 for anything that needs the lag-1
autocorrelation) give NaN; a constant column gives NaN (skewness and kurtosis are undefined).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from execution.metrics.basic import sharpe_ratio  # noqa: F401  (used in the lo_sharpe_ratio example)
from execution.metrics.core import (
    Panel,
    as_panel,
    check_choice,
    check_int,
    check_real,
    column_moments,
    reduce_out,
)

EULER_GAMMA = 0.5772156649015329


@dataclass(frozen=True)
class SharpeStats:
    """Per-column inputs of the published formulas (per-period units)."""

    n: np.ndarray
    sr: np.ndarray
    skew: np.ndarray
    kurt: np.ndarray

    @property
    def variance_term(self) -> np.ndarray:
        """``1 - g3 * SR + (g4 - 1) / 4 * SR**2``, the Mertens numerator (NaN where undefined)."""
        return 1.0 - self.skew * self.sr + (self.kurt - 1.0) / 4.0 * self.sr**2


def sharpe_stats(panel: Panel) -> SharpeStats:
    """Per-period Sharpe, skewness and non-excess kurtosis per column (NaN where undefined)."""
    mom = column_moments(panel, order=4)
    if mom.m3 is None or mom.m4 is None:  # order=4 computes them; a raise survives python -O
        raise RuntimeError("column_moments(order=4) returned no third or fourth moment")
    n = mom.count
    with np.errstate(invalid="ignore", divide="ignore"):
        sr = mom.mean / np.sqrt(mom.m2 / (n - 1))
        var = mom.m2 / n
        skew = (mom.m3 / n) / var**1.5
        kurt = (mom.m4 / n) / var**2
    undefined = (n < 2) | mom.constant | (mom.m2 <= 0)
    sr = np.where(undefined, np.nan, sr)
    skew = np.where(undefined, np.nan, skew)
    kurt = np.where(undefined, np.nan, kurt)
    return SharpeStats(n=n, sr=sr, skew=skew, kurt=kurt)


def sharpe_standard_error(returns: Any, *, periods_per_year: float | None = None) -> Any:
    """Standard error of the Sharpe ratio estimate with skewness and kurtosis (Mertens 2002).

    ``SE = sqrt((1 - g3 * SR + (g4 - 1) / 4 * SR**2) / (T - 1))`` with the per-period ``SR``.

    Parameters
    ----------
    returns : array-like, Series or DataFrame
    periods_per_year : float, optional
        None (default): the SE of the PER-PERIOD Sharpe (the unit of PSR, DSR and MinTRL).
        A number: the SE of the ANNUALISED Sharpe, ``sqrt(periods_per_year)`` times larger (the
        unit of :func:`~execution.metrics.basic.sharpe_ratio`).

    Returns
    -------
    float, ndarray or Series
        NaN with fewer than two observations or a constant column.

    Examples
    --------
    >>> round(sharpe_standard_error([0.01, -0.02, 0.03, 0.0]), 6)
    0.580887
    """
    func = "sharpe_standard_error"
    panel = as_panel(returns, func=func)
    st = sharpe_stats(panel)
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.maximum(st.variance_term, 0.0) / (st.n - 1))
    se = np.where(np.isnan(st.sr), np.nan, se)
    if periods_per_year is not None:
        se = se * np.sqrt(check_real(periods_per_year, param="periods_per_year", func=func, positive=True))
    return reduce_out(panel, se, name="sharpe_se")


def _psr(st: SharpeStats, benchmark: np.ndarray | float) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (st.sr - benchmark) * np.sqrt(st.n - 1) / np.sqrt(np.maximum(st.variance_term, 0.0))
    return np.asarray(ndtr(z), dtype=float)


def probabilistic_sharpe_ratio(returns: Any, *, benchmark_sharpe: float = 0.0) -> Any:
    """Probability that the true Sharpe exceeds ``benchmark_sharpe`` (Bailey & Lopez de Prado 2012).

    ``PSR = Phi((SR - SR*) * sqrt(T - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 * SR**2))``.

    Parameters
    ----------
    returns : array-like, Series or DataFrame
    benchmark_sharpe : float, default 0.0
        ``SR*`` in PER-PERIOD units (divide an annual Sharpe by ``sqrt(periods_per_year)``).

    Returns
    -------
    float, ndarray or Series
        In [0, 1]; NaN with fewer than two observations or a constant column.

    Examples
    --------
    >>> round(probabilistic_sharpe_ratio([0.01, -0.02, 0.03, 0.0]), 6)
    0.660377
    """
    func = "probabilistic_sharpe_ratio"
    bench = check_real(benchmark_sharpe, param="benchmark_sharpe", func=func)
    panel = as_panel(returns, func=func)
    st = sharpe_stats(panel)
    return reduce_out(panel, _psr(st, bench), name="psr")


def expected_maximum_sharpe(n_trials: int, trials_sharpe_variance: float) -> float:
    """Expected maximum of ``n_trials`` per-period Sharpe estimates under the null of no skill.

    ``SR0 = sqrt(V) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e)))``
    (Bailey & Lopez de Prado 2014, eq. 2 via the false strategy theorem); 0.0 when ``N = 1``.

    Examples
    --------
    >>> round(expected_maximum_sharpe(10, 0.01), 6)
    0.15746
    """
    func = "expected_maximum_sharpe"
    n = check_int(n_trials, param="n_trials", func=func, minimum=1)
    var = check_real(trials_sharpe_variance, param="trials_sharpe_variance", func=func, minimum=0.0)
    if n == 1:
        return 0.0
    z = (1.0 - EULER_GAMMA) * ndtri(1.0 - 1.0 / n) + EULER_GAMMA * ndtri(1.0 - 1.0 / (n * np.e))
    return float(np.sqrt(var) * z)


def deflated_sharpe_ratio(returns: Any, *, n_trials: int, trials_sharpe_variance: float) -> Any:
    """PSR against the Sharpe expected from the best of ``n_trials`` unskilled trials (DSR).

    Bailey & Lopez de Prado (2014): ``DSR = PSR(SR0)`` with ``SR0`` from
    :func:`expected_maximum_sharpe`. A high Sharpe found among many tried strategies is inflated;
    DSR is the probability that it is still positive after that selection.

    Parameters
    ----------
    returns : array-like, Series or DataFrame
        The returns of the selected strategy (or of each column).
    n_trials : int
        Number of independent strategies tried (>= 1).
    trials_sharpe_variance : float
        Variance across the trials of their PER-PERIOD Sharpe estimates (>= 0).

    Examples
    --------
    >>> round(deflated_sharpe_ratio([0.01, -0.02, 0.03, 0.0], n_trials=10, trials_sharpe_variance=0.01), 6)
    0.556628
    """
    func = "deflated_sharpe_ratio"
    sr0 = expected_maximum_sharpe(n_trials, trials_sharpe_variance)
    panel = as_panel(returns, func=func)
    return reduce_out(panel, _psr(sharpe_stats(panel), sr0), name="dsr")


def min_track_record_length(returns: Any, *, benchmark_sharpe: float = 0.0, alpha: float = 0.05) -> Any:
    """Minimum number of periods for the Sharpe to beat ``benchmark_sharpe`` at confidence ``1 - alpha``.

    ``MinTRL = 1 + (1 - g3 * SR + (g4 - 1) / 4 * SR**2) * (Phi^-1(1 - alpha) / (SR - SR*))**2``
    (Bailey & Lopez de Prado 2012), in periods of the input (divide by ``periods_per_year`` for
    years). ``+inf`` when ``SR <= SR*`` (no track record is long enough).

    Parameters
    ----------
    returns : array-like, Series or DataFrame
    benchmark_sharpe : float, default 0.0
        ``SR*`` per period.
    alpha : float, default 0.05
        Significance level, in (0, 1).

    Examples
    --------
    >>> round(min_track_record_length([0.01, -0.02, 0.03, 0.0]), 4)
    48.4724
    """
    func = "min_track_record_length"
    bench = check_real(benchmark_sharpe, param="benchmark_sharpe", func=func)
    a = check_real(alpha, param="alpha", func=func, positive=True, maximum=1.0, exclusive_max=True)
    panel = as_panel(returns, func=func)
    st = sharpe_stats(panel)
    z = ndtri(1.0 - a)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 1.0 + st.variance_term * (z / (st.sr - bench)) ** 2
    out = np.where(st.sr <= bench, np.inf, out)
    out = np.where(np.isnan(st.sr), np.nan, out)
    return reduce_out(panel, out, name="min_trl")


# --------------------------------------------------------------------------- Lo (2002)
def autocorrelation(panel: Panel, max_lag: int) -> np.ndarray:
    """Sample autocorrelations ``rho_1 .. rho_max_lag`` per column, shape ``(max_lag, k)``.

    ``rho_k = sum_t d_t d_{t-k} / sum_t d_t**2`` with ``d`` deviations from the column mean
    (the standard ACF estimator); pairs with a NaN on either side are skipped.
    """
    mom = column_moments(panel)
    d = np.where(np.isnan(panel.values), 0.0, panel.values - mom.mean)
    den = np.einsum("ij,ij->j", d, d)
    out = np.full((max_lag, d.shape[1]), np.nan)
    for lag in range(1, max_lag + 1):  # loop over lags, vectorised over columns
        if lag < d.shape[0]:
            with np.errstate(invalid="ignore", divide="ignore"):
                out[lag - 1] = np.einsum("ij,ij->j", d[lag:], d[:-lag]) / den
    return out


def lo_eta(rho: np.ndarray, q: int, *, method: str = "ar1") -> np.ndarray:
    """Lo's scale factor ``eta(q)`` from autocorrelations ``rho`` (shape ``(L, k)``).

    ``method='ar1'`` uses ``rho_k = rho_1**k`` and the closed form
    ``sum_{k=1}^{q-1} (q - k) rho**k = rho / (1 - rho) * ((q - 1) - rho * (1 - rho**(q - 1)) / (1 - rho))``;
    ``method='truncated'`` uses the ``L`` estimated lags and sets ``rho_k = 0`` beyond them.
    """
    if method == "ar1":
        r = np.clip(rho[0], -1.0 + 1e-12, 1.0 - 1e-12)
        with np.errstate(invalid="ignore", over="ignore"):
            s = r / (1.0 - r) * ((q - 1) - r * (1.0 - r ** (q - 1)) / (1.0 - r))
    else:
        lags = np.arange(1, rho.shape[0] + 1)
        w = np.clip(q - lags, 0, None).astype(float)
        s = np.einsum("l,lk->k", w, rho)
    denom = q + 2.0 * s
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, q / np.sqrt(np.where(denom > 0, denom, 1.0)), np.nan)


def newey_west_lags(n_obs: int) -> int:
    """Newey & West (1994) automatic lag count ``floor(4 * (T / 100) ** (2/9))``, at least 1."""
    return max(1, int(np.floor(4.0 * (n_obs / 100.0) ** (2.0 / 9.0))))


def lo_sharpe_ratio(
    returns: Any, *, periods_per_year: float, method: str = "ar1", max_lag: int | None = None
) -> Any:
    """Annual Sharpe ratio corrected for serial correlation (Lo 2002).

    ``SR_annual = eta(q) * SR`` with ``q = round(periods_per_year)`` and
    ``eta(q) = q / sqrt(q + 2 * sum_{k=1}^{q-1} (q - k) * rho_k)``. For uncorrelated returns
    ``eta(q) = sqrt(q)`` and the result equals :func:`~execution.metrics.basic.sharpe_ratio`;
    positive autocorrelation (smoothed or stale marks) lowers it, negative raises it.

    Summing all ``q - 1`` sample autocorrelations (a year of daily lags) is noise-dominated and
    can even make the variance negative. Two truncated lag structures are offered:

    * ``'ar1'`` (default): ``rho_k = rho_1 ** k``, the AR(1) closed form; one well-estimated
      parameter, and the variance term is always positive.
    * ``'truncated'``: the sample ``rho_1 .. rho_L`` with ``L = max_lag`` (default the Newey-West
      rule ``floor(4 * (T / 100) ** (2/9))``), ``rho_k = 0`` beyond; NaN if the variance term is
      not positive.

    Parameters
    ----------
    returns : array-like, Series or DataFrame
    periods_per_year : float
        ``q``, rounded to the nearest integer (>= 1).
    method : {'ar1', 'truncated'}, default 'ar1'
    max_lag : int, optional
        Lags for ``'truncated'`` (>= 1).

    Returns
    -------
    float, ndarray or Series
        NaN with fewer than three observations or a constant column.

    Examples
    --------
    >>> r = [0.01, 0.02, 0.015, 0.03, 0.025]  # rho_1 = 0 exactly: same as sharpe_ratio
    >>> round(lo_sharpe_ratio(r, periods_per_year=12), 4), round(sharpe_ratio(r, periods_per_year=12), 4)
    (8.7636, 8.7636)
    """
    func = "lo_sharpe_ratio"
    ppy = check_real(periods_per_year, param="periods_per_year", func=func, positive=True)
    check_choice(method, param="method", func=func, choices=("ar1", "truncated"))
    panel = as_panel(returns, func=func)
    st = sharpe_stats(panel)
    q = max(1, round(ppy))
    if method == "ar1":
        lags = 1
    elif max_lag is None:
        lags = newey_west_lags(int(np.nanmax(st.n)) if st.n.size else 0)
    else:
        lags = check_int(max_lag, param="max_lag", func=func, minimum=1)
    lags = max(1, min(lags, max(q - 1, 1)))
    rho = autocorrelation(panel, lags)
    eta = lo_eta(rho, q, method=method) if q > 1 else np.ones(panel.values.shape[1])
    out = np.where(st.n < 3, np.nan, st.sr * eta)
    return reduce_out(panel, out, name="sharpe_lo")
