"""Thresholds for the drift detector, set by simulating calibrated models.

A threshold is the ``1 - alpha`` quantile of the largest value a statistic reaches over a horizon
of ``horizon`` trades when the model *is* calibrated (every trade wins with the probability its
confidence claims). Taking the maximum over the horizon (every trade for the CUSUM banks) makes
``alpha`` the probability of *any* false alarm in ``horizon`` trades, so repeated checking is
accounted for exactly rather than per check.

Each outcome statistic is a *bank* of CUSUMs over a grid of alternatives (the change size is
unknown), and the bank alarms when its largest member crosses one threshold: the maximum over the
grid is part of the simulated statistic, so the grid costs no extra false alarms.

* accuracy: the win probability fell by ``d`` for ``d`` in ``accuracy_drops``;
* calibration: the calibration line ``logit q = a + b logit p`` moved to one of the
  ``(calibration_intercepts[k], calibration_slopes[k])`` (``b < 1``: over-confidence).

The null distribution depends on the mix of confidences (trades near 0.5 carry little
information, trades near 1 give rare large jumps). The threshold is therefore the largest of the
quantiles over a *family* of confidence distributions (:data:`CONFIDENCE_FAMILY`), so the
false-alarm rate is at most ``alpha`` for each member of the family.

The distribution-shift test needs no simulation: the two-sample KS statistic is distribution-free
under the null, and its critical value is Kolmogorov's limit at ``alpha / m`` (Bonferroni over the
``m = horizon // check_every`` checks in a horizon). The three alphas share one budget (their sum,
an upper bound on the chance of any false alarm by the union bound): 1 % per 5,000 trades, an
average run length near 500,000 trades.

:func:`compute_thresholds` also simulates the *power* of the thresholds it sets (expected delay
to catch a 0.15 accuracy drop and a calibration break), stored with them so the Drift tab can say
what "no drift" means.

:data:`DEFAULT_THRESHOLDS` is the table for the detector's default configuration, produced by
``compute_thresholds(ThresholdConfig(), n_sims=DEFAULT_N_SIMS, seed=DEFAULT_SEED)``; the slow test
``tests/test_drift_thresholds.py::test_default_table_matches_simulation`` recomputes it, and a fast
test checks the tabled thresholds' false-alarm rates on fresh simulated streams. Regenerate with
``python -m ml.drift_thresholds``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from ml.drift_stats import (
    FloatArray,
    accuracy_bank_weights,
    calibration_bank_weights,
    clip_confidence,
    ks_critical_value,
)

Sampler = Callable[[np.random.Generator, tuple[int, ...]], FloatArray]
WeightFn = Callable[[FloatArray, FloatArray], FloatArray]


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

DEFAULT_N_SIMS = 10_000
DEFAULT_SEED = 20_240_601
POWER_STREAMS = 4_000
"""Streams per scenario of the power simulation stored with the thresholds."""
POWER_HORIZON = 1_000
"""Trades after the change the power simulation follows."""


@dataclass(frozen=True, kw_only=True)
class ThresholdConfig:
    """What the thresholds depend on (the detector's defaults)."""

    accuracy_drops: tuple[float, ...] = (0.12, 0.2)
    """Alternatives of the accuracy bank: the win probability fell by each of these."""
    calibration_intercepts: tuple[float, ...] = (0.3, 0.0, 0.5)
    calibration_slopes: tuple[float, ...] = (0.0, 0.3, 0.2)
    """Alternatives of the calibration bank: ``logit q = a + b logit p`` for each pair ``(a, b)``."""
    window: int = 100
    """Trades in the recent KS sample (and the labelling window)."""
    check_every: int = 100
    """Trades between windowed checks."""
    reference_size: int = 500
    """Trades in the frozen reference window of confidences (KS)."""
    horizon: int = 5_000
    """Trades over which each ``alpha`` is the probability of any false alarm."""
    alpha_accuracy: float = 0.0075
    alpha_calibration: float = 0.002
    alpha_distribution: float = 0.0005

    def __post_init__(self) -> None:
        if not self.accuracy_drops or not all(0.0 < d < 1.0 for d in self.accuracy_drops):
            raise ValueError(
                "The 'accuracy_drops' of ThresholdConfig must be a non-empty tuple of values in (0, 1). "
                f"Got {self.accuracy_drops!r} instead."
            )
        if not self.calibration_slopes or len(self.calibration_intercepts) != len(self.calibration_slopes):
            raise ValueError(
                "The 'calibration_intercepts' and 'calibration_slopes' of ThresholdConfig must be "
                f"non-empty and of equal length. Got {self.calibration_intercepts!r} and "
                f"{self.calibration_slopes!r} instead."
            )
        if not all(0.0 <= b < 1.0 for b in self.calibration_slopes):
            raise ValueError(
                "The 'calibration_slopes' of ThresholdConfig must be in [0, 1) (over-confidence). "
                f"Got {self.calibration_slopes!r} instead."
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

    @property
    def alpha_total(self) -> float:
        """The shared false-alarm budget per ``horizon`` trades (union bound)."""
        return self.alpha_accuracy + self.alpha_calibration + self.alpha_distribution

    def accuracy_weights(self, p: FloatArray, y: FloatArray) -> FloatArray:
        return accuracy_bank_weights(p, y, self.accuracy_drops)

    def calibration_weights(self, p: FloatArray, y: FloatArray) -> FloatArray:
        return calibration_bank_weights(p, y, self.calibration_intercepts, self.calibration_slopes)


@dataclass(frozen=True, kw_only=True)
class DriftThresholds:
    """Thresholds of the three tests, with where they came from and what they can catch."""

    accuracy_cusum: float
    """Alarm when the largest CUSUM of the accuracy bank exceeds this."""
    calibration_cusum: float
    """Alarm when the largest CUSUM of the calibration bank exceeds this."""
    ks_d: float
    """Alarm when the KS distance of recent confidences to the reference exceeds this."""
    config: ThresholdConfig
    n_sims: int
    seed: int
    power: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Per scenario (``accuracy_drop_0.15``, ``calibration_break``): ``median_delay``,
    ``mean_delay`` and ``p_within_100/200/500`` of the two outcome banks together (see
    :func:`simulate_power`)."""


def _sims_in_chunks(n_sims: int, chunk: int) -> list[int]:
    return [min(chunk, n_sims - i) for i in range(0, n_sims, chunk)]


def simulate_bank_max(
    sampler: Sampler, weights: WeightFn, *, horizon: int, n_sims: int, rng: np.random.Generator
) -> FloatArray:
    """Largest value of a CUSUM bank (max over members and trades) over ``horizon`` trades, for
    ``n_sims`` calibrated streams whose confidences come from ``sampler``."""
    out = np.empty(n_sims)
    start = 0
    for n_c in _sims_in_chunks(n_sims, 10_000):
        s: FloatArray | None = None
        s_max: FloatArray | None = None
        step = 200
        for t0 in range(0, horizon, step):
            n_t = min(step, horizon - t0)
            p = clip_confidence(sampler(rng, (n_t, n_c)))
            y = (rng.random((n_t, n_c)) < p).astype(np.float64)
            w = weights(p, y)
            if s is None or s_max is None:
                s, s_max = np.zeros(w.shape[1:]), np.zeros(w.shape[1:])
            for t in range(n_t):  # max over trades of each member; the max over members at the end
                s += w[t]
                np.maximum(s, 0.0, out=s)
                np.maximum(s_max, s, out=s_max)
        if s_max is None:  # only when no trade was simulated: a horizon of 0
            raise ValueError(f"The simulation horizon must be >= 1 trade. Got {horizon!r} instead.")
        out[start : start + n_c] = s_max.max(axis=1)
        start += n_c
    return out


def first_crossing(weights: FloatArray, threshold: float, *, start: FloatArray | None = None) -> FloatArray:
    """Index (0-based, along axis 0) where a CUSUM bank's largest member first exceeds ``threshold``.

    ``weights`` has shape ``(trades, streams, members)``; ``start`` the banks' values before the
    first trade (default 0). Returns a float array with ``inf`` for streams that never cross.
    """
    n_t, n_s = weights.shape[:2]
    s = np.zeros(weights.shape[1:]) if start is None else np.array(start, dtype=np.float64)
    first = np.full(n_s, np.inf)
    for t in range(n_t):
        s += weights[t]
        np.maximum(s, 0.0, out=s)
        hit = (s.max(axis=1) > threshold) & np.isinf(first)
        first[hit] = t
    return first


def _delay_summary(delays: FloatArray) -> dict[str, float]:
    return {
        "median_delay": float(np.median(delays)),
        "mean_delay": float(np.mean(np.minimum(delays, POWER_HORIZON))),
        "p_within_100": float(np.mean(delays < 100)),
        "p_within_200": float(np.mean(delays < 200)),
        "p_within_500": float(np.mean(delays < 500)),
    }


def simulate_power(
    config: ThresholdConfig,
    accuracy_cusum: float,
    calibration_cusum: float,
    *,
    n_streams: int = POWER_STREAMS,
    seed: int = DEFAULT_SEED,
) -> dict[str, dict[str, float]]:
    """Delay of the two outcome banks together (the first to cross) after a change.

    Scenarios (confidences ``U[0.5, 1]``, the banks at zero at the change, so these are delays
    for a change that meets a quiet chart): ``accuracy_drop_0.15`` (every trade wins with
    ``p - 0.15``) and ``calibration_break`` (trades above 0.80 win half the time). A delay of
    ``k`` means the alarm came with the ``(k + 1)``-th trade after the change; streams that never
    alarm within :data:`POWER_HORIZON` count as ``inf`` (the median may be ``inf``).
    """
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, float]] = {}
    for name in ("accuracy_drop_0.15", "calibration_break"):
        c = clip_confidence(rng.uniform(0.5, 1.0, (POWER_HORIZON, n_streams)))
        if name == "calibration_break":
            p_true = np.where(c > 0.8, 0.5, c)
        else:
            p_true = c - 0.15
        y = (rng.random(c.shape) < p_true).astype(np.float64)
        d_acc = first_crossing(config.accuracy_weights(c, y), accuracy_cusum)
        d_cal = first_crossing(config.calibration_weights(c, y), calibration_cusum)
        out[name] = _delay_summary(np.minimum(d_acc, d_cal))
    return out


def _upper_quantile(x: FloatArray, alpha: float) -> float:
    return float(np.quantile(x, 1.0 - alpha, method="higher"))


def compute_thresholds(
    config: ThresholdConfig | None = None,
    *,
    n_sims: int = DEFAULT_N_SIMS,
    seed: int = DEFAULT_SEED,
    family: dict[str, Sampler] | None = None,
    power_streams: int = POWER_STREAMS,
) -> DriftThresholds:
    """Simulate calibrated streams and return the thresholds for ``config``.

    Parameters
    ----------
    config
        The detector configuration (default :class:`ThresholdConfig`).
    n_sims
        Simulated streams per family member and bank; with ``alpha = 0.002`` the default
        10,000 leaves about 20 streams beyond the threshold (75 at ``alpha = 0.0075``). Takes
        about 3 minutes of CPU.
    seed
        Seed of the simulation (thresholds are reproducible).
    family
        Confidence distributions (default :data:`CONFIDENCE_FAMILY`); the threshold is the
        maximum of the per-distribution quantiles.
    power_streams
        Streams per scenario of :func:`simulate_power` (0: skip the power simulation).

    Examples
    --------
    >>> cfg = ThresholdConfig(horizon=200, window=50, check_every=50, reference_size=100)
    >>> th = compute_thresholds(cfg, n_sims=500, seed=1, power_streams=0)
    >>> 0.0 < th.accuracy_cusum < 20.0 and 0.0 < th.calibration_cusum < 20.0
    True
    """
    cfg = config or ThresholdConfig()
    if not isinstance(n_sims, int) or n_sims < 100:
        raise ValueError(
            f"The 'n_sims' parameter of compute_thresholds must be an int >= 100. Got {n_sims!r}."
        )
    fam = family or CONFIDENCE_FAMILY
    seeds = np.random.SeedSequence(seed).spawn(2 * len(fam))
    acc_q: list[float] = []
    cal_q: list[float] = []
    for i, sampler in enumerate(fam.values()):
        for k, (weights, alpha, qs) in enumerate(
            (
                (cfg.accuracy_weights, cfg.alpha_accuracy, acc_q),
                (cfg.calibration_weights, cfg.alpha_calibration, cal_q),
            )
        ):
            m = simulate_bank_max(
                sampler,
                weights,
                horizon=cfg.horizon,
                n_sims=n_sims,
                rng=np.random.default_rng(seeds[2 * i + k]),
            )
            qs.append(_upper_quantile(m, alpha))
    ks_d = ks_critical_value(cfg.alpha_distribution / cfg.n_checks, cfg.reference_size, cfg.window)
    h_acc, h_cal = max(acc_q), max(cal_q)
    power = simulate_power(cfg, h_acc, h_cal, n_streams=power_streams, seed=seed) if power_streams else {}
    return DriftThresholds(
        accuracy_cusum=h_acc,
        calibration_cusum=h_cal,
        ks_d=ks_d,
        config=cfg,
        n_sims=n_sims,
        seed=seed,
        power=power,
    )


# Produced by `python -m ml.drift_thresholds` (see the module docstring); do not edit by hand.
DEFAULT_THRESHOLDS = DriftThresholds(
    accuracy_cusum=10.835207872892289,
    calibration_cusum=13.157968567348696,
    ks_d=0.27062231222347694,
    config=ThresholdConfig(),
    n_sims=DEFAULT_N_SIMS,
    seed=DEFAULT_SEED,
    power={
        "accuracy_drop_0.15": {
            "median_delay": 120.0,
            "mean_delay": 130.1325,
            "p_within_100": 0.375,
            "p_within_200": 0.855,
            "p_within_500": 1.0,
        },
        "calibration_break": {
            "median_delay": 50.0,
            "mean_delay": 54.027,
            "p_within_100": 0.9415,
            "p_within_200": 1.0,
            "p_within_500": 1.0,
        },
    },
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ml.drift_thresholds", description="Recompute the drift detector's default thresholds."
    )
    parser.add_argument("--n-sims", type=int, default=DEFAULT_N_SIMS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    th = compute_thresholds(ThresholdConfig(), n_sims=args.n_sims, seed=args.seed)
    print(f"accuracy_cusum={th.accuracy_cusum!r},")
    print(f"calibration_cusum={th.calibration_cusum!r},")
    print(f"ks_d={th.ks_d!r},")
    print(f"power={th.power!r},")
    print(asdict(th.config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
