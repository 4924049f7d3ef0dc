"""The drift detector's test statistics as pure, vectorized functions.

Both :class:`ml.drift.DriftDetector` (one stream, at run time) and :mod:`ml.drift_thresholds`
(many simulated streams, to set thresholds) call these, so the thresholds are computed for
exactly the statistic the detector evaluates.

Every statistic tests the stream against what a *calibrated* model would produce: given the
confidence ``p`` the model claimed for a trade, a calibrated model wins with probability ``p``.

References
----------
* S. H. Steiner, R. J. Cook, V. T. Farewell, T. Treasure, "Monitoring surgical performance using
  risk-adjusted cumulative sum charts", Biostatistics 1(4) (2000) 441-452 (the risk-adjusted
  Bernoulli CUSUM: weights ``W = y log R - log(1 - p + R p)``).
* D. J. Spiegelhalter, "Probabilistic prediction in patient management and clinical trials",
  Statistics in Medicine 5 (1986) 421-433 (the z statistic of the Brier score).
* A. N. Kolmogorov (1933), N. V. Smirnov (1948): the two-sample Kolmogorov-Smirnov statistic and
  its limiting distribution ``P(sqrt(n_e) D > x) -> Q_KS(x)``, ``n_e = n m / (n + m)``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

P_CLIP = 0.01
"""Confidences are clipped into ``[P_CLIP, 1 - P_CLIP]`` so no single trade has infinite weight."""


def clip_confidence(p: npt.ArrayLike) -> FloatArray:
    """Clip confidences into ``[P_CLIP, 1 - P_CLIP]`` (element-wise, float64)."""
    return np.clip(np.asarray(p, dtype=np.float64), P_CLIP, 1.0 - P_CLIP)


def cusum_weights(p: npt.ArrayLike, y: npt.ArrayLike, odds_ratio: float) -> FloatArray:
    """Risk-adjusted Bernoulli CUSUM weights (Steiner et al. 2000).

    The log-likelihood ratio of outcome ``y`` under "the odds of winning are ``odds_ratio``
    times what the model claimed" against "the model is calibrated" is

    ``W = y log R - log(1 - p + R p)``.

    For ``R < 1`` the chart ``S_t = max(0, S_{t-1} + W_t)`` climbs when trades lose more often than
    their confidences say. Under calibration ``E[W] = -KL(p || p_R) < 0``.

    Examples
    --------
    >>> w = cusum_weights([0.75, 0.75], [1, 0], 0.5)
    >>> [round(float(v), 6) for v in w]   # log(0.5/0.625), -log(0.625)
    [-0.223144, 0.470004]
    """
    pc = clip_confidence(p)
    yc = np.asarray(y, dtype=np.float64)
    return yc * math.log(odds_ratio) - np.log1p((odds_ratio - 1.0) * pc)


def cusum_path(weights: npt.ArrayLike) -> FloatArray:
    """The CUSUM ``S_t = max(0, S_{t-1} + W_t)`` along the last axis, ``S_0 = 0``."""
    w = np.asarray(weights, dtype=np.float64)
    out = np.empty_like(w)
    s = np.zeros(w.shape[:-1])
    for t in range(w.shape[-1]):
        s = np.maximum(s + w[..., t], 0.0)
        out[..., t] = s
    return out


def spiegelhalter_z(p: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
    """Spiegelhalter's z for the Brier score, over the last axis.

    With ``B = sum (y - p)^2`` and a calibrated model, ``E[B] = sum p (1 - p)`` and
    ``B - E[B] = sum (y - p)(1 - 2p)`` with variance ``sum (1 - 2p)^2 p (1 - p)``, so

    ``z = sum (y - p)(1 - 2p) / sqrt(sum (1 - 2p)^2 p (1 - p))``.

    Large positive ``z``: the forecasts are worse than a calibrated model's. Trades at ``p = 0.5``
    carry no information; ``z = 0`` when every weight is zero.

    Examples
    --------
    >>> round(float(spiegelhalter_z([0.9, 0.9, 0.2], [0, 1, 0])), 6)
    1.250926
    """
    pc = clip_confidence(p)
    yc = np.asarray(y, dtype=np.float64)
    a = 1.0 - 2.0 * pc
    num = np.sum((yc - pc) * a, axis=-1)
    var = np.sum(a * a * pc * (1.0 - pc), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0.0, num / np.sqrt(np.where(var > 0.0, var, 1.0)), 0.0)
    return np.asarray(z, dtype=np.float64)


def ks_statistic(reference_sorted: npt.ArrayLike, sample: npt.ArrayLike) -> float:
    """Two-sample Kolmogorov-Smirnov ``D = sup |F_ref - F_sample|``.

    ``reference_sorted`` must be sorted ascending (the detector sorts its frozen reference once).

    Examples
    --------
    >>> ks_statistic([0.1, 0.2, 0.3, 0.4], [0.35, 0.45])
    0.75
    """
    ref = np.asarray(reference_sorted, dtype=np.float64)
    smp = np.sort(np.asarray(sample, dtype=np.float64))
    # Between sample points F_sample is flat and F_ref rises, so the supremum is attained at a
    # sample point, from the right or from the left: 4 searches over the sample, not the union.
    n, m = ref.size, smp.size
    d_right = np.abs(
        np.searchsorted(ref, smp, side="right") / n - np.searchsorted(smp, smp, side="right") / m
    )
    d_left = np.abs(np.searchsorted(ref, smp, side="left") / n - np.searchsorted(smp, smp, side="left") / m)
    return float(max(d_right.max(), d_left.max()))


def ks_critical_value(alpha: float, n_reference: int, n_sample: int) -> float:
    """Critical ``D`` at level ``alpha`` from Kolmogorov's limiting law.

    ``D_crit = Q_KS^{-1}(alpha) / sqrt(n_e)`` with ``n_e = n m / (n + m)``. For the sizes used here
    (``n_e`` about 80) the limit is close to the exact law and slightly conservative; a test in
    ``tests/test_drift_thresholds.py`` checks the false-alarm rate by simulation.

    Examples
    --------
    >>> round(ks_critical_value(0.05, 500, 100), 4)
    0.1488
    """
    from scipy.special import kolmogi

    n_e = n_reference * n_sample / (n_reference + n_sample)
    return float(kolmogi(alpha)) / math.sqrt(n_e)


def shape_z(p: npt.ArrayLike, y: npt.ArrayLike, cut: float) -> float:
    """z of the difference in mean residual ``y - p`` between trades above and at-or-below ``cut``.

    Used to *label* an outcome alarm: an accuracy drop lowers the win probability by about the
    same amount at every confidence (difference near 0); a calibration break concentrates the
    shortfall in high-confidence trades (difference clearly negative). Under the null of a
    common shortfall the difference has variance ``sum_hi p(1-p)/n_hi^2 + sum_lo p(1-p)/n_lo^2``
    (to first order). NaN when either group is empty.

    Examples
    --------
    >>> round(shape_z([0.9, 0.9, 0.6, 0.6], [0, 0, 1, 0], 0.8), 4)
    -1.9695
    """
    pc = clip_confidence(p)
    yc = np.asarray(y, dtype=np.float64)
    hi = pc > cut
    n_hi, n_lo = int(hi.sum()), int((~hi).sum())
    if n_hi == 0 or n_lo == 0:
        return math.nan
    r = yc - pc
    v = pc * (1.0 - pc)
    diff = r[hi].mean() - r[~hi].mean()
    se = math.sqrt(v[hi].sum() / n_hi**2 + v[~hi].sum() / n_lo**2)
    return float(diff / se) if se > 0 else math.nan
