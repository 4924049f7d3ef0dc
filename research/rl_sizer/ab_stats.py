"""Paired A/B statistics: per-column metrics of return paths, a circular block bootstrap, and the
paired difference of a sizer against a baseline with its interval (pure; used by the A/B jobs)."""

from __future__ import annotations

import math

import numpy as np

from execution.metrics_normalizer import max_drawdown, sharpe_ratio

METRICS = ("sharpe", "log_growth", "max_drawdown")


def _metric_columns(x: np.ndarray, metric: str, ppy: float) -> np.ndarray:
    """``metric`` of every column of ``x`` (shape ``(T, B)``)."""
    if metric == "sharpe":
        return np.asarray(sharpe_ratio(x, periods_per_year=ppy), dtype=np.float64)
    if metric == "log_growth":
        return np.log1p(x).sum(axis=0)
    if metric == "max_drawdown":
        return np.asarray(max_drawdown(x), dtype=np.float64)
    raise ValueError(f"The 'metric' parameter must be one of {', '.join(METRICS)}. Got {metric!r} instead.")


def block_indices(t: int, *, n_boot: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """``(t, n_boot)`` indices of a circular moving-block bootstrap with blocks of ``block``."""
    if t < 1 or block < 1:
        raise ValueError(f"block_indices needs t >= 1 and block >= 1. Got t={t}, block={block} instead.")
    n_blocks = math.ceil(t / block)
    starts = rng.integers(0, t, size=(n_blocks, n_boot))
    idx = (starts[:, None, :] + np.arange(block)[None, :, None]) % t
    return idx.reshape(n_blocks * block, n_boot)[:t]


def paired_difference(
    sizer: np.ndarray,
    base: np.ndarray,
    *,
    metric: str,
    periods_per_year: float,
    n_boot: int = 1000,
    block: int | None = None,
    rng: np.random.Generator,
) -> tuple[float, float, float]:
    """Seed-averaged ``metric(sizer) - metric(base)`` and its 95% block-bootstrap interval.

    Parameters
    ----------
    sizer, base
        Per-trade returns, shape ``(seeds, T)``; a 1-D ``base`` is broadcast to every seed.
    """
    a = np.atleast_2d(np.asarray(sizer, dtype=np.float64))
    b = np.asarray(base, dtype=np.float64)
    b = np.broadcast_to(np.atleast_2d(b), a.shape)
    t = a.shape[1]
    point = float(np.mean([_metric_columns(a[s][:, None], metric, periods_per_year)[0]
                           - _metric_columns(b[s][:, None], metric, periods_per_year)[0]
                           for s in range(a.shape[0])]))  # fmt: skip
    if t < 3 or n_boot < 1:
        return point, float("nan"), float("nan")
    idx = block_indices(t, n_boot=n_boot, block=block or math.ceil(t ** (1 / 3)), rng=rng)
    diffs = np.zeros(n_boot)
    for s in range(a.shape[0]):
        diffs += _metric_columns(a[s][idx], metric, periods_per_year) - _metric_columns(
            b[s][idx], metric, periods_per_year
        )
    diffs /= a.shape[0]
    lo, hi = np.nanpercentile(diffs, [2.5, 97.5])
    return point, float(lo), float(hi)
