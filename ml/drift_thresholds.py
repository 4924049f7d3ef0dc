"""Thresholds for the drift detector, set by simulating calibrated models.

A threshold is the ``1 - alpha`` quantile of the largest value a statistic reaches over a horizon
of ``horizon`` trades when the model *is* calibrated (every trade wins with the probability its
confidence claims). Taking the maximum over the horizon (every trade for the CUSUM, every check
for the windowed z) makes ``alpha`` the probability of *any* false alarm in ``horizon`` trades, so
repeated checking is accounted for exactly rather than per check.

The null distribution of both outcome statistics depends on the mix of confidences (trades near
0.5 carry little information, trades near 1 give rare large jumps). The threshold is therefore the
largest of the quantiles over a *family* of confidence distributions (:data:`CONFIDENCE_FAMILY`),
so the false-alarm rate is at most ``alpha`` for each member of the family.

The distribution-shift test needs no simulation: the two-sample KS statistic is distribution-free
under the null, and its critical value is Kolmogorov's limit at ``alpha / m`` (Bonferroni over the
``m = horizon // check_every`` checks in a horizon).

:data:`DEFAULT_THRESHOLDS` is the table for the detector's default configuration, produced by
``compute_thresholds(ThresholdConfig(), n_sims=DEFAULT_N_SIMS, seed=DEFAULT_SEED)``; the slow test
``tests/test_drift_thresholds.py::test_default_table_matches_simulation`` recomputes it, and a fast
test checks the tabled thresholds' false-alarm rates on fresh simulated streams. Regenerate with
``python -m ml.drift_thresholds``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from ml.drift_stats import FloatArray, clip_confidence, cusum_weights, ks_critical_value

Sampler = Callable[[np.random.Generator, tuple[int, ...]], FloatArray]


def _uniform(lo: float, hi: float) -> Sampler:
    def draw(rng: np.random.Generator, shape: tuple[int, ...]) -> FloatArray:
        return rng.uniform(lo, hi, shape)

    return draw


def _demo_beta(rng: np.random.Generator, shape: tuple[int, ...]) -> FloatArray:
    return 0.5 + 0.48 * rng.beta(2.0, 2.5, shape)


CONFIDENCE_FAMILY: dict[str, Sampler] = {
    "uniform(0.5, 1.0)": _uniform(0.5, 1.0),
    "uniform(0.5, 0.7)": _uniform(0.5, 0.7),
    "uniform(0.65, 0.9)": _uniform(0.65, 0.9),
    "uniform(0.8, 1.0)": _uniform(0.8, 1.0),
    "0.5 + 0.48 beta(2, 2.5)": _demo_beta,
}
"""Confidence distributions of calibrated models the thresholds must hold for."""

DEFAULT_N_SIMS = 20_000
DEFAULT_SEED = 20_240_601


@dataclass(frozen=True, kw_only=True)
class ThresholdConfig:
    """What the thresholds depend on (the detector's defaults)."""

    odds_ratio: float = 0.5
    """Alternative of the accuracy CUSUM: the odds of winning fall to this multiple."""
    window: int = 100
    """Trades in the calibration window (Spiegelhalter z) and the recent KS sample."""
    check_every: int = 100
    """Trades between windowed checks."""
    reference_size: int = 500
    """Trades in the frozen reference window of confidences (KS)."""
    horizon: int = 5_000
    """Trades over which each ``alpha`` is the probability of any false alarm."""
    alpha_accuracy: float = 0.004
    alpha_calibration: float = 0.003
    alpha_distribution: float = 0.002

    def __post_init__(self) -> None:
        if not (0.0 < self.odds_ratio < 1.0):
            raise ValueError(
                f"The 'odds_ratio' of ThresholdConfig must be in (0, 1). Got {self.odds_ratio!r} instead."
            )
        for name in ("window", "check_every", "reference_size", "horizon"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 2:
                raise ValueError(
                    f"The '{name}' of ThresholdConfig must be an int >= 2. Got {value!r} instead."
                )
        for name in ("alpha_accuracy", "alpha_calibration", "alpha_distribution"):
            value = getattr(self, name)
            if not (0.0 < value < 1.0):
                raise ValueError(f"The '{name}' of ThresholdConfig must be in (0, 1). Got {value!r} instead.")
        if self.horizon < self.window:
            raise ValueError(
                f"The 'horizon' of ThresholdConfig must be >= window ({self.window}). "
                f"Got {self.horizon!r} instead."
            )

    @property
    def n_checks(self) -> int:
        """Windowed checks in one horizon (used for the Bonferroni split of the KS test)."""
        return max(1, self.horizon // self.check_every)


@dataclass(frozen=True, kw_only=True)
class DriftThresholds:
    """Thresholds of the three tests, with where they came from."""

    cusum: float
    """Alarm when the accuracy CUSUM exceeds this."""
    spiegelhalter_z: float
    """Alarm when Spiegelhalter's z over the last ``window`` trades exceeds this."""
    ks_d: float
    """Alarm when the KS distance of recent confidences to the reference exceeds this."""
    config: ThresholdConfig
    n_sims: int
    seed: int


def _sims_in_chunks(n_sims: int, chunk: int) -> list[int]:
    return [min(chunk, n_sims - i) for i in range(0, n_sims, chunk)]


def simulate_cusum_max(
    sampler: Sampler, *, odds_ratio: float, horizon: int, n_sims: int, rng: np.random.Generator
) -> FloatArray:
    """Largest value of the accuracy CUSUM over ``horizon`` trades, for ``n_sims`` calibrated streams."""
    s = np.zeros(n_sims)
    s_max = np.zeros(n_sims)
    step = 250
    for t0 in range(0, horizon, step):
        n_t = min(step, horizon - t0)
        p = sampler(rng, (n_t, n_sims))
        y = rng.random((n_t, n_sims)) < p
        w = cusum_weights(p, y, odds_ratio)
        for t in range(n_t):
            s += w[t]
            np.maximum(s, 0.0, out=s)
            np.maximum(s_max, s, out=s_max)
    return s_max


def simulate_spiegelhalter_max(
    sampler: Sampler,
    *,
    window: int,
    check_every: int,
    horizon: int,
    n_sims: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Largest Spiegelhalter z over the checks in ``horizon`` trades, for calibrated streams.

    Checks happen after trade ``n = k * check_every`` once ``n >= window``, on trades
    ``n - window .. n - 1``, as in :class:`ml.drift.DriftDetector`.
    """
    checks = np.array([n for n in range(check_every, horizon + 1, check_every) if n >= window])
    out = np.full(n_sims, -np.inf)
    if checks.size == 0:
        return out
    start = 0
    for n_c in _sims_in_chunks(n_sims, 1_000):
        p_raw = sampler(rng, (n_c, horizon))
        y = (rng.random((n_c, horizon)) < p_raw).astype(np.float64)
        p = clip_confidence(p_raw)
        a = 1.0 - 2.0 * p
        num = np.concatenate([np.zeros((n_c, 1)), np.cumsum((y - p) * a, axis=1)], axis=1)
        var = np.concatenate([np.zeros((n_c, 1)), np.cumsum(a * a * p * (1.0 - p), axis=1)], axis=1)
        wnum = num[:, checks] - num[:, checks - window]
        wvar = var[:, checks] - var[:, checks - window]
        z = np.where(wvar > 0, wnum / np.sqrt(np.where(wvar > 0, wvar, 1.0)), 0.0)
        out[start : start + n_c] = z.max(axis=1)
        start += n_c
    return out


def _upper_quantile(x: FloatArray, alpha: float) -> float:
    return float(np.quantile(x, 1.0 - alpha, method="higher"))


def compute_thresholds(
    config: ThresholdConfig | None = None,
    *,
    n_sims: int = DEFAULT_N_SIMS,
    seed: int = DEFAULT_SEED,
    family: dict[str, Sampler] | None = None,
) -> DriftThresholds:
    """Simulate calibrated streams and return the thresholds for ``config``.

    Parameters
    ----------
    config
        The detector configuration (default :class:`ThresholdConfig`).
    n_sims
        Simulated streams per family member and statistic; with ``alpha = 0.004`` the default
        20,000 leaves about 80 streams beyond the threshold (relative error of the tail rate about
        11 %). Takes about 40 s of CPU time (minutes on a loaded machine).
    seed
        Seed of the simulation (thresholds are reproducible).
    family
        Confidence distributions (default :data:`CONFIDENCE_FAMILY`); the threshold is the
        maximum of the per-distribution quantiles.

    Examples
    --------
    >>> cfg = ThresholdConfig(horizon=200, window=50, check_every=50, reference_size=100)
    >>> th = compute_thresholds(cfg, n_sims=500, seed=1)
    >>> 0.0 < th.cusum < 20.0 and 0.0 < th.spiegelhalter_z < 10.0
    True
    """
    cfg = config or ThresholdConfig()
    if not isinstance(n_sims, int) or n_sims < 100:
        raise ValueError(
            f"The 'n_sims' parameter of compute_thresholds must be an int >= 100. Got {n_sims!r}."
        )
    fam = family or CONFIDENCE_FAMILY
    seeds = np.random.SeedSequence(seed).spawn(2 * len(fam))
    cusum_q: list[float] = []
    z_q: list[float] = []
    for i, sampler in enumerate(fam.values()):
        c_max = simulate_cusum_max(
            sampler,
            odds_ratio=cfg.odds_ratio,
            horizon=cfg.horizon,
            n_sims=n_sims,
            rng=np.random.default_rng(seeds[2 * i]),
        )
        z_max = simulate_spiegelhalter_max(
            sampler,
            window=cfg.window,
            check_every=cfg.check_every,
            horizon=cfg.horizon,
            n_sims=n_sims,
            rng=np.random.default_rng(seeds[2 * i + 1]),
        )
        cusum_q.append(_upper_quantile(c_max, cfg.alpha_accuracy))
        z_q.append(_upper_quantile(z_max, cfg.alpha_calibration))
    ks_d = ks_critical_value(cfg.alpha_distribution / cfg.n_checks, cfg.reference_size, cfg.window)
    return DriftThresholds(
        cusum=max(cusum_q),
        spiegelhalter_z=max(z_q),
        ks_d=ks_d,
        config=cfg,
        n_sims=n_sims,
        seed=seed,
    )


# Produced by `python -m ml.drift_thresholds` (see the module docstring); do not edit by hand.
DEFAULT_THRESHOLDS = DriftThresholds(
    cusum=10.842886278509615,
    spiegelhalter_z=4.391928492307058,
    ks_d=0.2547914239264376,
    config=ThresholdConfig(),
    n_sims=DEFAULT_N_SIMS,
    seed=DEFAULT_SEED,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ml.drift_thresholds", description="Recompute the drift detector's default thresholds."
    )
    parser.add_argument("--n-sims", type=int, default=DEFAULT_N_SIMS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    th = compute_thresholds(ThresholdConfig(), n_sims=args.n_sims, seed=args.seed)
    print(f"cusum={th.cusum!r}")
    print(f"spiegelhalter_z={th.spiegelhalter_z!r}")
    print(f"ks_d={th.ks_d!r}")
    print(asdict(th.config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
