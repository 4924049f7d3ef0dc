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
  Bernoulli CUSUM: each trade's weight is conditional on its own predicted probability).
* E. S. Page, "Continuous inspection schemes", Biometrika 41 (1954) 100-115; G. Lorden,
  "Procedures for reacting to a change in distribution", Ann. Math. Statist. 42 (1971) 1897-1908
  (the CUSUM of log-likelihood ratios; a bank of them over a grid of alternatives with one
  threshold is the discretised generalised likelihood ratio CUSUM).
* D. R. Cox, "Two further applications of a model for binary regression", Biometrika 45 (1958)
  562-565 (the recalibration line ``logit q = a + b logit p``).
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


def accuracy_bank_weights(p: npt.ArrayLike, y: npt.ArrayLike, drops: npt.ArrayLike) -> FloatArray:
    """Log-likelihood ratios of "the win probability fell by ``d``" against "calibrated", per ``d``.

    Under the alternative a trade claimed at ``p`` wins with ``q = max(p - d, P_CLIP)``; the
    Bernoulli log-likelihood ratio of outcome ``y`` is

    ``W = y log(q / p) + (1 - y) log((1 - q) / (1 - p))``.

    Under calibration ``E[W] = -KL(p || q) < 0``; after a drop of exactly ``d``,
    ``E[W] = KL(q || p) > 0`` (Lorden 1971; Page 1954 for the CUSUM). The last axis of the result
    runs over ``drops``.

    Examples
    --------
    >>> w = accuracy_bank_weights([0.75, 0.75], [1, 0], [0.15])
    >>> [round(float(v), 6) for v in w[:, 0]]   # log(0.6/0.75), log(0.4/0.25)
    [-0.223144, 0.470004]
    """
    pc = clip_confidence(p)[..., None]
    yc = np.asarray(y, dtype=np.float64)[..., None]
    q = np.maximum(pc - np.asarray(drops, dtype=np.float64), P_CLIP)
    return np.asarray(
        yc * (np.log(q) - np.log(pc)) + (1.0 - yc) * (np.log1p(-q) - np.log1p(-pc)), dtype=np.float64
    )


def calibration_bank_weights(
    p: npt.ArrayLike, y: npt.ArrayLike, intercepts: npt.ArrayLike, slopes: npt.ArrayLike
) -> FloatArray:
    """Log-likelihood ratios of a broken calibration curve against "calibrated", per alternative.

    The alternative is a recalibration line in logit space (Cox 1958):
    ``logit q = a + b logit p``; ``a = 0, b = 1`` is calibrated, ``b < 1`` is over-confidence
    (high-confidence trades win less than claimed, ``b = 0`` wins at ``sigmoid(a)`` whatever the
    claim). With ``log q = -log(1 + e^{-z})``, ``log(1 - q) = -log(1 + e^{z})``, ``z = a + b logit p``:

    ``W = y (log q - log p) + (1 - y) (log(1 - q) - log(1 - p))``.

    The last axis runs over the pairs ``(intercepts[k], slopes[k])``.

    Examples
    --------
    >>> w = calibration_bank_weights([0.9, 0.9], [1, 0], [0.0], [0.0])
    >>> [round(float(v), 6) for v in w[:, 0]]   # log(0.5/0.9), log(0.5/0.1)
    [-0.587787, 1.609438]
    """
    pc = clip_confidence(p)[..., None]
    yc = np.asarray(y, dtype=np.float64)[..., None]
    z = np.asarray(intercepts, dtype=np.float64) + np.asarray(slopes, dtype=np.float64) * np.log(
        pc / (1.0 - pc)
    )
    log_q, log_1q = -np.logaddexp(0.0, -z), -np.logaddexp(0.0, z)
    return np.asarray(yc * (log_q - np.log(pc)) + (1.0 - yc) * (log_1q - np.log1p(-pc)), dtype=np.float64)


def cusum_path(weights: npt.ArrayLike, axis: int = -1) -> FloatArray:
    """The CUSUM ``S_t = max(0, S_{t-1} + W_t)`` along ``axis`` (default the last), ``S_0 = 0``.

    Examples
    --------
    >>> cusum_path([1.0, -2.0, 0.5, 0.25]).tolist()
    [1.0, 0.0, 0.5, 0.75]
    """
    w = np.moveaxis(np.asarray(weights, dtype=np.float64), axis, -1)
    out = np.empty_like(w)
    s = np.zeros(w.shape[:-1])
    for t in range(w.shape[-1]):
        s = np.maximum(s + w[..., t], 0.0)
        out[..., t] = s
    return np.moveaxis(out, -1, axis)


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
