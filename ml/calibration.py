"""Calibration metrics for binary probability forecasts: pure functions over arrays.

Every function takes ``outcome`` (0/1 or bool, shape ``(n,)``) and ``prob`` (the forecast
probability that ``outcome == 1``, in [0, 1], shape ``(n,)``). Two readings are common and both
work unchanged:

* class probability: ``outcome = y`` (price went up) and ``prob = P(up)``;
* top-label confidence (Guo et al. 2017): ``outcome = correct`` (the predicted direction was
  right, e.g. the signal log's ``won``) and ``prob = confidence = max(p, 1 - p)``.

The Brier score is identical under both readings for a binary model; ECE and the reliability
bins are not (top-label bins live on [0.5, 1]).

References
----------
* G. W. Brier, "Verification of forecasts expressed in terms of probability", Monthly Weather
  Review 78 (1950).
* M. P. Naeini, G. Cooper, M. Hauskrecht, "Obtaining well calibrated probabilities using
  Bayesian binning", AAAI 2015 (expected calibration error).
* C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, "On calibration of modern neural networks",
  ICML 2017 (reliability diagrams, top-label ECE).
* D. R. Cox, "Two further applications of a model for binary regression", Biometrika 45 (1958)
  (calibration-in-the-large).

Empty input gives NaN (or empty tables); malformed input raises ``ValueError`` naming the
parameter.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

ArrayLike = npt.ArrayLike

__all__ = [
    "CalibrationInTheLarge",
    "brier_score",
    "calibration_in_the_large",
    "calibration_over_time",
    "ece_null_distribution",
    "expected_calibration_error",
    "reliability_bins",
]


def _check(
    outcome: ArrayLike, prob: ArrayLike, func: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    y = np.asarray(outcome)
    p = np.asarray(prob, dtype=np.float64)
    if y.ndim != 1 or p.ndim != 1:
        raise ValueError(
            f"The 'outcome' and 'prob' parameters of {func} must be 1-d. "
            f"Got shapes {y.shape} and {p.shape} instead."
        )
    if y.shape != p.shape:
        raise ValueError(
            f"The 'outcome' and 'prob' parameters of {func} must have the same length. "
            f"Got {y.shape[0]} and {p.shape[0]} instead."
        )
    if y.dtype == bool:
        yf = y.astype(np.float64)
    else:
        yf = y.astype(np.float64)
        bad = ~np.isin(yf, (0.0, 1.0))
        if bad.any():
            raise ValueError(
                f"The 'outcome' parameter of {func} must hold only 0/1 or booleans. "
                f"Got {y[np.flatnonzero(bad)[0]]!r} instead."
            )
    bad_p = ~(np.isfinite(p) & (p >= 0.0) & (p <= 1.0))
    if bad_p.any():
        raise ValueError(
            f"The 'prob' parameter of {func} must hold finite probabilities in [0, 1]. "
            f"Got {p[np.flatnonzero(bad_p)[0]]!r} instead."
        )
    return yf, p


def _edges(n_bins: int, value_range: tuple[float, float], func: str) -> npt.NDArray[np.float64]:
    if not isinstance(n_bins, int | np.integer) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"The 'n_bins' parameter of {func} must be an int >= 1. Got {n_bins!r} instead.")
    lo, hi = float(value_range[0]), float(value_range[1])
    if not (0.0 <= lo < hi <= 1.0):
        raise ValueError(
            f"The 'value_range' parameter of {func} must be (lo, hi) with 0 <= lo < hi <= 1. "
            f"Got {value_range!r} instead."
        )
    # rounded so that an edge written as a decimal (0.3, 0.7) is the same float as the literal
    return np.round(np.linspace(lo, hi, int(n_bins) + 1), 12)


def _bin_index(p: npt.NDArray[np.float64], edges: npt.NDArray[np.float64], func: str) -> npt.NDArray[np.intp]:
    out = (p < edges[0]) | (p > edges[-1])
    if out.any():
        raise ValueError(
            f"The 'prob' parameter of {func} must lie inside value_range [{edges[0]}, {edges[-1]}]. "
            f"Got {p[np.flatnonzero(out)[0]]!r} instead."
        )
    # bins are (lo, hi]; the first bin also holds its lower edge
    return np.searchsorted(edges[1:-1], p, side="left")


def brier_score(outcome: ArrayLike, prob: ArrayLike) -> float:
    """Mean squared difference between forecast and outcome (Brier 1950).

    ``BS = (1/n) sum_i (p_i - y_i)^2``; 0 is perfect, 0.25 is a constant 0.5 forecast.

    Examples
    --------
    >>> round(brier_score([1, 0, 1, 1], [0.9, 0.2, 0.6, 0.4]), 12)
    0.1425
    """
    y, p = _check(outcome, prob, "brier_score")
    if y.size == 0:
        return float("nan")
    return float(np.mean((p - y) ** 2))


def reliability_bins(
    outcome: ArrayLike,
    prob: ArrayLike,
    *,
    n_bins: int = 10,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> pd.DataFrame:
    """Equal-width reliability table: per bin the count, mean forecast and observed frequency.

    Bins split ``value_range`` into ``n_bins`` equal intervals ``(lo, hi]`` (the first one also
    holds ``lo``); a probability on an edge belongs to the lower bin. Use ``value_range=(0.5, 1.0)`` for top-label confidences.

    Returns
    -------
    DataFrame
        One row per bin, empty bins included: ``bin_lower``, ``bin_upper``, ``count``,
        ``mean_prob`` (NaN when empty), ``observed`` (frequency of ``outcome == 1``, NaN when
        empty) and ``gap = observed - mean_prob``.

    Examples
    --------
    >>> t = reliability_bins([1, 0, 1, 1], [0.9, 0.2, 0.6, 0.4], n_bins=2)
    >>> t[["count", "mean_prob", "observed"]].to_numpy().tolist()
    [[2.0, 0.30000000000000004, 0.5], [2.0, 0.75, 1.0]]
    """
    y, p = _check(outcome, prob, "reliability_bins")
    edges = _edges(n_bins, value_range, "reliability_bins")
    idx = _bin_index(p, edges, "reliability_bins")
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(count > 0, sum_p / count, np.nan)
        observed = np.where(count > 0, sum_y / count, np.nan)
    return pd.DataFrame(
        {
            "bin_lower": edges[:-1],
            "bin_upper": edges[1:],
            "count": count,
            "mean_prob": mean_p,
            "observed": observed,
            "gap": observed - mean_p,
        }
    )


def expected_calibration_error(
    outcome: ArrayLike,
    prob: ArrayLike,
    *,
    n_bins: int = 10,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> float:
    """Expected calibration error over equal-width bins (Naeini et al. 2015; Guo et al. 2017).

    ``ECE = sum_b (n_b / n) |observed_b - mean_prob_b|`` with the bins of
    :func:`reliability_bins`. It is biased upwards on small samples (see
    :func:`ece_null_distribution` for what a calibrated model would show).

    Examples
    --------
    >>> round(expected_calibration_error([1, 0, 1, 1], [0.9, 0.2, 0.6, 0.4], n_bins=2), 12)
    0.225
    """
    y, p = _check(outcome, prob, "expected_calibration_error")
    edges = _edges(n_bins, value_range, "expected_calibration_error")
    if y.size == 0:
        return float("nan")
    idx = _bin_index(p, edges, "expected_calibration_error")
    gap_sum = np.bincount(idx, weights=y - p, minlength=n_bins)  # n_b * (observed_b - mean_b)
    return float(np.abs(gap_sum).sum() / y.size)


class CalibrationInTheLarge(NamedTuple):
    """Mean outcome minus mean forecast, with its standard error under calibration."""

    n: int
    mean_outcome: float
    mean_prob: float
    gap: float
    """``mean_outcome - mean_prob``: negative means over-confident (for top-label confidence)."""
    se: float
    """``sqrt(sum p_i (1 - p_i)) / n``: the SE of ``gap`` if outcomes are Bernoulli(p_i)."""
    z: float
    """``gap / se``; approximately N(0, 1) for a calibrated forecast."""


def calibration_in_the_large(outcome: ArrayLike, prob: ArrayLike) -> CalibrationInTheLarge:
    """Calibration-in-the-large: does the forecast get the base rate right? (Cox 1958).

    Under the null hypothesis that each outcome is an independent Bernoulli(p_i),
    ``E[y_i - p_i] = 0`` and ``Var(sum_i (y_i - p_i)) = sum_i p_i (1 - p_i)``, so the mean gap
    has standard error ``sqrt(sum_i p_i (1 - p_i)) / n`` and ``z = gap / se`` is approximately
    standard normal (central limit theorem). ``se`` is 0 (and ``z`` NaN) when every ``p_i`` is
    0 or 1.

    Examples
    --------
    >>> c = calibration_in_the_large([1, 0, 1, 1], [0.9, 0.2, 0.6, 0.4])
    >>> round(c.gap, 12), round(c.se, 12)
    (0.225, 0.213600093633)
    """
    y, p = _check(outcome, prob, "calibration_in_the_large")
    n = int(y.size)
    if n == 0:
        nan = float("nan")
        return CalibrationInTheLarge(0, nan, nan, nan, nan, nan)
    mean_y, mean_p = float(y.mean()), float(p.mean())
    gap = mean_y - mean_p
    se = float(np.sqrt(np.sum(p * (1.0 - p))) / n)
    z = gap / se if se > 0 else float("nan")
    return CalibrationInTheLarge(n, mean_y, mean_p, gap, se, z)


def ece_null_distribution(
    prob: ArrayLike,
    *,
    n_bins: int = 10,
    value_range: tuple[float, float] = (0.0, 1.0),
    n_sim: int = 200,
    random_state: int | np.random.Generator | None = None,
    groups: ArrayLike | None = None,
    normal_min_count: int | None = None,
) -> npt.NDArray[np.float64]:
    """ECE values a perfectly calibrated model with these forecasts would show.

    Draws ``n_sim`` outcome vectors ``y ~ Bernoulli(prob)`` and returns their ECEs, sorted. Its
    upper quantiles are the principled alarm level for an observed ECE on the same forecasts:
    the raw ECE of a calibrated model is not zero on finite samples (each bin's observed rate
    carries binomial noise), and the bias grows as samples shrink.

    Parameters
    ----------
    groups
        Optional integer codes ``0..G-1`` per row (e.g. time buckets). Then the result has shape
        ``(G, n_sim)``: each group's own ECE under the same simulated outcomes, one call for
        all groups. Without it the shape is ``(n_sim,)``.
    normal_min_count
        ``None`` (default): every outcome is simulated. An int ``m``: a bin holding at least
        ``m`` rows has its sum ``S_b = sum_i (y_i - p_i)`` drawn from the normal law
        ``N(0, sum_i p_i (1 - p_i))`` instead (central limit theorem; the cost then no longer
        grows with the number of rows); smaller bins are still simulated exactly.

    Examples
    --------
    >>> null = ece_null_distribution([0.7] * 100, n_bins=10, n_sim=50, random_state=0)
    >>> null.shape, bool(null.min() >= 0.0)
    ((50,), True)
    """
    p = np.asarray(prob, dtype=np.float64)
    _check(np.zeros(p.shape, dtype=bool), p, "ece_null_distribution")
    edges = _edges(n_bins, value_range, "ece_null_distribution")
    if not isinstance(n_sim, int) or n_sim < 1:
        raise ValueError(
            f"The 'n_sim' parameter of ece_null_distribution must be an int >= 1. Got {n_sim!r} instead."
        )
    if groups is None:
        codes = np.zeros(p.size, dtype=np.intp)
    else:
        codes = np.asarray(groups)
        if codes.shape != p.shape or (codes.size and (codes.dtype.kind not in "iu" or codes.min() < 0)):
            raise ValueError(
                "The 'groups' parameter of ece_null_distribution must hold one non-negative integer code "
                f"per probability. Got shape {codes.shape} and dtype {codes.dtype} instead."
            )
        codes = codes.astype(np.intp)
    n_groups = int(codes.max()) + 1 if codes.size else 1
    if p.size == 0:
        empty = np.full((n_groups, n_sim), np.nan)
        return empty[0] if groups is None else empty
    if normal_min_count is not None and (not isinstance(normal_min_count, int) or normal_min_count < 1):
        raise ValueError(
            "The 'normal_min_count' parameter of ece_null_distribution must be None or an int >= 1. "
            f"Got {normal_min_count!r} instead."
        )
    rng = np.random.default_rng(random_state)
    cell = codes * n_bins + _bin_index(p, edges, "ece_null_distribution")
    n_cells = n_groups * n_bins
    count = np.bincount(codes, minlength=n_groups).astype(np.float64)
    cell_count = np.bincount(cell, minlength=n_cells)
    big = cell_count >= (normal_min_count if normal_min_count is not None else np.iinfo(np.int64).max)
    cell_sd = np.sqrt(np.bincount(cell, weights=p * (1.0 - p), minlength=n_cells))
    exact = ~big[cell]  # rows simulated one by one
    p_ex, cell_ex = p[exact], cell[exact]
    out = np.empty((n_sim, n_groups))
    chunk = max(1, 2_000_000 // max(p_ex.size, 1))  # bounded memory: at most ~2M draws at once
    for s0 in range(0, n_sim, chunk):
        k = min(chunk, n_sim - s0)
        sums = np.zeros((k, n_cells))
        if p_ex.size:
            diff = (rng.random((k, p_ex.size)) < p_ex) - p_ex  # (k, n_exact): y - p per simulation
            flat = (np.arange(k)[:, None] * n_cells + cell_ex[None, :]).ravel()
            sums = np.bincount(flat, weights=diff.ravel(), minlength=k * n_cells).reshape(k, n_cells)
        if big.any():
            sums[:, big] = rng.standard_normal((k, int(big.sum()))) * cell_sd[big]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s0 : s0 + k] = np.abs(sums).reshape(k, n_groups, n_bins).sum(axis=2) / count
    res = np.sort(out.T, axis=1)
    return res[0] if groups is None else res


def calibration_over_time(
    ts: ArrayLike,
    outcome: ArrayLike,
    prob: ArrayLike,
    *,
    freq: str = "1D",
    n_bins: int = 10,
    value_range: tuple[float, float] = (0.0, 1.0),
    min_count: int = 1,
) -> pd.DataFrame:
    """Brier score, ECE and base rates per time bucket.

    Rows are grouped by ``ts`` floored to ``freq`` (a pandas offset alias such as ``"1D"``);
    time is data, so a replay gives the same table.

    Returns
    -------
    DataFrame
        ``bucket_start`` (UTC), ``n``, ``brier``, ``ece``, ``mean_prob``, ``mean_outcome``;
        buckets with fewer than ``min_count`` rows are dropped.
    """
    y, p = _check(outcome, prob, "calibration_over_time")
    t = pd.DatetimeIndex(
        pd.to_datetime(ts if isinstance(ts, pd.Series | pd.Index) else np.asarray(ts), utc=True)
    )
    if len(t) != y.size:
        raise ValueError(
            "The 'ts' parameter of calibration_over_time must have one timestamp per outcome. "
            f"Got {len(t)} timestamps for {y.size} outcomes instead."
        )
    edges = _edges(n_bins, value_range, "calibration_over_time")
    cols = ["bucket_start", "n", "brier", "ece", "mean_prob", "mean_outcome"]
    if y.size == 0:
        return pd.DataFrame(columns=cols)
    idx = _bin_index(p, edges, "calibration_over_time")
    bucket = t.floor(freq)
    codes, uniques = pd.factorize(bucket, sort=True)
    n_b = len(uniques)
    count = np.bincount(codes, minlength=n_b).astype(np.float64)
    sq = np.bincount(codes, weights=(p - y) ** 2, minlength=n_b)
    gap = np.bincount(codes * n_bins + idx, weights=y - p, minlength=n_b * n_bins).reshape(n_b, n_bins)
    out = pd.DataFrame(
        {
            "bucket_start": uniques,
            "n": count.astype(np.int64),
            "brier": sq / count,
            "ece": np.abs(gap).sum(axis=1) / count,
            "mean_prob": np.bincount(codes, weights=p, minlength=n_b) / count,
            "mean_outcome": np.bincount(codes, weights=y, minlength=n_b) / count,
        }
    )
    return out[out["n"] >= min_count].reset_index(drop=True)
