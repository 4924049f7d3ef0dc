"""Candidate-versus-current validation of a retrained model: paired differences with bootstrap CIs.

Both models score the *same* out-of-sample rows; each metric is compared as ``candidate -
current`` on those rows, with a moving-block bootstrap over bar timestamps (Kuensch 1989): all
rows of one bar stay together and ``block_bars`` consecutive bars are resampled as a unit, so the
serial and cross-symbol dependence of the rows is kept inside each block. The same resampled
bars serve both models, which is what makes the difference *paired*.

Metrics (top-label reading of :mod:`ml.calibration`: ``c = max(p, 1 - p)``, ``correct = (p >=
0.5) == y``):

* ``brier``: ``mean((p - y)^2)`` (Brier 1950). Lower is better.
* ``ece``: ``sum_b (n_b / n) |hits_b / n_b - conf_b / n_b| = (1/n) sum_b |hits_b - conf_b|`` over
  ``n_bins`` equal bins of ``c`` on [0.5, 1] (Naeini et al. 2015; Guo et al. 2017). The second
  form needs only per-bin sums, so each bootstrap replicate is a weighted sum of per-bar totals.
  Lower is better.
* ``hit_rate_high``: share of correct signals among rows with ``c >= high_confidence``. Higher is
  better. NaN when a model (or a replicate) has no such row.

Decision (:func:`decide`): promote only when every rule holds, otherwise reject with the reasons:

1. the upper CI bound of the Brier difference is below ``-min_brier_gain`` (better with
   confidence, by the margin);
2. the ECE difference (point estimate) is at most ``max_ece_increase``;
3. the high-confidence hit-rate difference (point estimate) is at least ``-max_hit_rate_drop``
   (skipped when either model has fewer than ``min_high_conf_rows`` high-confidence rows).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
METRICS = ("brier", "ece", "hit_rate_high")


@dataclass(frozen=True, kw_only=True)
class ValidationConfig:
    """How a candidate is compared with the current model."""

    n_bins: int = 10
    """Equal-width confidence bins on [0.5, 1] for the ECE."""
    high_confidence: float = 0.55
    """Confidence at or above which a signal counts as high-confidence."""
    n_boot: int = 400
    """Bootstrap replicates."""
    block_bars: int = 24
    """Consecutive bar timestamps per bootstrap block."""
    ci_level: float = 0.95
    """Two-sided level of the percentile intervals."""
    min_brier_gain: float = 0.0
    """Margin: the Brier CI's upper bound must be below ``-min_brier_gain``."""
    max_ece_increase: float = 0.01
    """The candidate's ECE may exceed the current one by at most this much."""
    max_hit_rate_drop: float = 0.02
    """The candidate's high-confidence hit rate may fall short by at most this much."""
    min_high_conf_rows: int = 30
    """Fewer high-confidence rows than this (either model): the hit-rate rule is skipped."""
    random_state: int = 0
    """Seed of the bootstrap."""

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("n_bins", isinstance(self.n_bins, int) and self.n_bins >= 1, "an int >= 1"),
            ("high_confidence", 0.5 <= self.high_confidence < 1.0, "a float in [0.5, 1)"),
            ("n_boot", isinstance(self.n_boot, int) and self.n_boot >= 50, "an int >= 50"),
            ("block_bars", isinstance(self.block_bars, int) and self.block_bars >= 1, "an int >= 1"),
            ("ci_level", 0.5 < self.ci_level < 1.0, "a float in (0.5, 1)"),
            ("min_brier_gain", self.min_brier_gain >= 0.0, "a float >= 0"),
            ("max_ece_increase", self.max_ece_increase >= 0.0, "a float >= 0"),
            ("max_hit_rate_drop", self.max_hit_rate_drop >= 0.0, "a float >= 0"),
            (
                "min_high_conf_rows",
                isinstance(self.min_high_conf_rows, int) and self.min_high_conf_rows >= 1,
                "an int >= 1",
            ),
        ]
        for name, ok, what in checks:
            if not ok:
                raise ValueError(
                    f"The '{name}' parameter of ValidationConfig must be {what}. Got {getattr(self, name)!r} instead."
                )


@dataclass(frozen=True)
class MetricComparison:
    """One metric for both models and the paired difference ``candidate - current`` with its CI."""

    name: str
    current: float
    candidate: float
    diff: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()
        }


@dataclass(frozen=True)
class Validation:
    """The comparison of a candidate with the current model on one out-of-sample window."""

    n_rows: int
    n_bars: int
    n_high_current: int
    n_high_candidate: int
    metrics: dict[str, MetricComparison]
    promote: bool
    reasons: tuple[str, ...]
    """Why it was rejected (empty when promoted)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_rows": self.n_rows,
            "n_bars": self.n_bars,
            "n_high_current": self.n_high_current,
            "n_high_candidate": self.n_high_candidate,
            "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
            "promote": self.promote,
            "reasons": list(self.reasons),
        }


def _per_bar(ts: pd.Series, y: FloatArray, p: FloatArray, cfg: ValidationConfig) -> FloatArray:
    """Per-bar totals: [n, sq_err, high_n, high_hits, bin hits (n_bins), bin conf (n_bins)]."""
    codes, _ = pd.factorize(ts, sort=True)
    n_t = int(codes.max()) + 1
    c = np.maximum(p, 1.0 - p)
    correct = ((p >= 0.5) == (y == 1.0)).astype(np.float64)
    edges = np.round(np.linspace(0.5, 1.0, cfg.n_bins + 1), 12)
    b = np.searchsorted(edges[1:-1], c, side="left")  # bins (lo, hi], first one holds 0.5
    high = (c >= cfg.high_confidence).astype(np.float64)
    cols = [np.ones_like(p), (p - y) ** 2, high, high * correct]
    out = np.zeros((n_t, 4 + 2 * cfg.n_bins))
    for j, v in enumerate(cols):
        np.add.at(out[:, j], codes, v)
    np.add.at(out, (codes, 4 + b), correct)
    np.add.at(out, (codes, 4 + cfg.n_bins + b), c)
    return out


def _metrics(tot: FloatArray, n_bins: int) -> FloatArray:
    """Metrics from (replicates, columns) totals: columns brier, ece, hit_rate_high."""
    n = tot[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        brier = tot[:, 1] / n
        ece = np.abs(tot[:, 4 : 4 + n_bins] - tot[:, 4 + n_bins :]).sum(axis=1) / n
        hit = np.where(tot[:, 2] > 0, tot[:, 3] / tot[:, 2], np.nan)
    return np.column_stack([brier, ece, hit])


def block_bootstrap_weights(n_bars: int, *, block: int, n_boot: int, rng: np.random.Generator) -> FloatArray:
    """How often each bar is drawn in each replicate of a moving-block bootstrap (``(n_boot, n_bars)``).

    Each replicate concatenates ``ceil(n_bars / block)`` blocks of ``block`` consecutive bars
    with uniform starts in ``[0, n_bars - block]`` and keeps the first ``n_bars`` bars drawn.
    """
    block = min(block, n_bars)
    k = -(-n_bars // block)
    starts = rng.integers(0, n_bars - block + 1, size=(n_boot, k))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(n_boot, -1)[:, :n_bars]
    w = np.zeros((n_boot, n_bars))
    np.add.at(w, (np.repeat(np.arange(n_boot), n_bars), idx.ravel()), 1.0)
    return w


def compare(
    ts: pd.Series | npt.ArrayLike,
    y: npt.ArrayLike,
    p_current: npt.ArrayLike,
    p_candidate: npt.ArrayLike,
    config: ValidationConfig | None = None,
) -> Validation:
    """Compare two forecasts ``P(up)`` of the same rows (``ts`` groups rows into bars).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> q = rng.uniform(0.2, 0.8, 2000); y = (rng.random(2000) < q).astype(float)
    >>> stale = 1.0 - q  # learned the relation with the wrong sign
    >>> v = compare(np.arange(2000) // 4, y, stale, q)
    >>> v.promote, v.metrics["brier"].ci_high < 0, v.metrics["hit_rate_high"].diff > 0
    (True, True, True)
    >>> compare(np.arange(2000) // 4, y, q, q).reasons[0][:26]
    'Brier not better by the ma'
    """
    cfg = config or ValidationConfig()
    yv = np.asarray(y, dtype=np.float64)
    pc = np.asarray(p_current, dtype=np.float64)
    pn = np.asarray(p_candidate, dtype=np.float64)
    tsv = pd.Series(np.asarray(ts))
    if not (len(yv) == len(pc) == len(pn) == len(tsv)) or len(yv) == 0:
        raise ValueError(
            "The 'ts', 'y', 'p_current' and 'p_candidate' parameters of compare must be non-empty and of "
            f"equal length. Got {len(tsv)}, {len(yv)}, {len(pc)} and {len(pn)} instead."
        )
    if not np.isin(yv, (0.0, 1.0)).all():
        raise ValueError("The 'y' parameter of compare must hold only 0/1 outcomes.")
    for name, arr in (("p_current", pc), ("p_candidate", pn)):
        if not (np.isfinite(arr).all() and (arr >= 0).all() and (arr <= 1).all()):
            raise ValueError(f"The '{name}' parameter of compare must hold probabilities in [0, 1].")
    per_cur = _per_bar(tsv, yv, pc, cfg)
    per_new = _per_bar(tsv, yv, pn, cfg)
    point_cur = _metrics(per_cur.sum(axis=0, keepdims=True), cfg.n_bins)[0]
    point_new = _metrics(per_new.sum(axis=0, keepdims=True), cfg.n_bins)[0]
    w = block_bootstrap_weights(
        len(per_cur), block=cfg.block_bars, n_boot=cfg.n_boot, rng=np.random.default_rng(cfg.random_state)
    )
    boot = _metrics(w @ per_new, cfg.n_bins) - _metrics(w @ per_cur, cfg.n_bins)
    alpha = (1.0 - cfg.ci_level) / 2.0
    metrics: dict[str, MetricComparison] = {}
    for j, name in enumerate(METRICS):
        col = boot[:, j][np.isfinite(boot[:, j])]
        lo, hi = np.quantile(col, [alpha, 1.0 - alpha]) if col.size else (np.nan, np.nan)
        metrics[name] = MetricComparison(
            name,
            float(point_cur[j]),
            float(point_new[j]),
            float(point_new[j] - point_cur[j]),
            float(lo),
            float(hi),
        )
    n_hi_cur, n_hi_new = int(per_cur[:, 2].sum()), int(per_new[:, 2].sum())
    reasons = decide(metrics, n_hi_cur, n_hi_new, cfg)
    return Validation(len(yv), len(per_cur), n_hi_cur, n_hi_new, metrics, not reasons, tuple(reasons))


def decide(
    metrics: dict[str, MetricComparison], n_high_current: int, n_high_candidate: int, cfg: ValidationConfig
) -> list[str]:
    """Reasons to reject (empty list: promote); the rules are in the module docstring."""
    reasons = []
    b = metrics["brier"]
    if not b.ci_high < -cfg.min_brier_gain:
        reasons.append(
            f"Brier not better by the margin: diff {b.diff:+.5f}, {cfg.ci_level:.0%} CI "
            f"[{b.ci_low:+.5f}, {b.ci_high:+.5f}] must lie below {-cfg.min_brier_gain:+.5f}"
        )
    e = metrics["ece"]
    if not e.diff <= cfg.max_ece_increase:
        reasons.append(
            f"ECE worse: {e.candidate:.4f} vs {e.current:.4f} (diff {e.diff:+.4f} > {cfg.max_ece_increase:.4f})"
        )
    h = metrics["hit_rate_high"]
    if (
        min(n_high_current, n_high_candidate) >= cfg.min_high_conf_rows
        and not h.diff >= -cfg.max_hit_rate_drop
    ):
        reasons.append(
            f"high-confidence hit rate worse: {h.candidate:.3f} vs {h.current:.3f} "
            f"(diff {h.diff:+.3f} < {-cfg.max_hit_rate_drop:+.3f})"
        )
    return reasons
