"""Seeded synthetic trade streams for testing and benchmarking drift detectors.

Each function returns ``(confidence, won)`` arrays of length ``n``: confidences drawn uniformly
from ``[0.5, 1.0]`` (top-label confidences of a two-way signal) and outcomes drawn from the
*true* win probability, which equals the confidence (a calibrated model) before ``change_at``.

Scenarios (the issue's benchmark):

* :func:`stable_stream`: calibrated throughout.
* :func:`accuracy_drop`: after ``change_at`` every trade wins with probability ``c - drop``.
* :func:`calibration_break`: after ``change_at`` trades with confidence above ``cut`` win with
  probability ``broken_win_rate``; the rest stay calibrated.
* :func:`confidence_shift`: after ``change_at`` confidences come from ``[lo, hi]`` instead, and
  the model stays calibrated (a pure distribution shift).

Examples
--------
>>> c, y = accuracy_drop(1000, change_at=600, seed=3)
>>> c.shape, y.dtype.name
((1000,), 'bool')
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Stream = tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]


def _check(n: int, change_at: int) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"The 'n' parameter must be an int >= 1. Got {n!r} instead.")
    if not isinstance(change_at, int) or not (0 <= change_at <= n):
        raise ValueError(
            f"The 'change_at' parameter must be an int in [0, n={n}]. Got {change_at!r} instead."
        )


def stable_stream(n: int, *, seed: int | np.random.Generator, lo: float = 0.5, hi: float = 1.0) -> Stream:
    """A calibrated model: ``c ~ U[lo, hi]``, ``won ~ Bernoulli(c)``."""
    _check(n, 0)
    rng = np.random.default_rng(seed)
    c = rng.uniform(lo, hi, n)
    return c, rng.random(n) < c


def accuracy_drop(n: int, *, change_at: int, seed: int | np.random.Generator, drop: float = 0.15) -> Stream:
    """Calibrated until ``change_at``; afterwards the win probability is ``c - drop``."""
    _check(n, change_at)
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.5, 1.0, n)
    p = c.copy()
    p[change_at:] -= drop
    return c, rng.random(n) < p


def calibration_break(
    n: int,
    *,
    change_at: int,
    seed: int | np.random.Generator,
    cut: float = 0.8,
    broken_win_rate: float = 0.5,
) -> Stream:
    """Calibrated until ``change_at``; afterwards trades with ``c > cut`` win at ``broken_win_rate``."""
    _check(n, change_at)
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.5, 1.0, n)
    p = c.copy()
    tail = p[change_at:]
    tail[c[change_at:] > cut] = broken_win_rate
    return c, rng.random(n) < p


def confidence_shift(
    n: int, *, change_at: int, seed: int | np.random.Generator, lo: float = 0.5, hi: float = 0.75
) -> Stream:
    """Confidences move from ``U[0.5, 1]`` to ``U[lo, hi]`` at ``change_at``; always calibrated."""
    _check(n, change_at)
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.5, 1.0, n)
    c[change_at:] = rng.uniform(lo, hi, n - change_at)
    return c, rng.random(n) < c
