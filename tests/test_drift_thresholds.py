"""Threshold simulation and the statistics it simulates, against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ml.drift_stats import (
    cusum_path,
    cusum_weights,
    ks_critical_value,
    ks_statistic,
    shape_z,
    spiegelhalter_z,
)
from ml.drift_thresholds import (
    CONFIDENCE_FAMILY,
    DEFAULT_N_SIMS,
    DEFAULT_SEED,
    DEFAULT_THRESHOLDS,
    ThresholdConfig,
    compute_thresholds,
    simulate_cusum_max,
    simulate_spiegelhalter_max,
)

# -- statistics vs independent formulas --------------------------------------------------------------


def test_cusum_weight_is_the_log_likelihood_ratio() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.95, 200)
    y = rng.random(200) < 0.5
    for r in (0.3, 0.5, 0.8):
        p1 = r * p / (1 - p + r * p)  # odds multiplied by r
        llr = np.where(y, np.log(p1 / p), np.log((1 - p1) / (1 - p)))
        np.testing.assert_allclose(cusum_weights(p, y, r), llr, rtol=1e-12, atol=1e-12)


def test_cusum_path_hand_values() -> None:
    np.testing.assert_allclose(cusum_path([0.5, -1.0, 2.0, -0.5, 0.25]), [0.5, 0.0, 2.0, 1.5, 1.75])
    # vectorized over leading axes
    np.testing.assert_allclose(cusum_path(np.array([[1.0, -2.0], [-1.0, 3.0]])), [[1.0, 0.0], [0.0, 3.0]])


def test_spiegelhalter_z_from_the_brier_score() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, 300)
    y = (rng.random(300) < p).astype(float)
    brier = np.sum((y - p) ** 2)
    expected = np.sum(p * (1 - p))
    var = np.sum((1 - 2 * p) ** 2 * p * (1 - p))
    assert float(spiegelhalter_z(p, y)) == pytest.approx((brier - expected) / math.sqrt(var), rel=1e-10)
    assert float(spiegelhalter_z([0.5, 0.5], [1, 0])) == 0.0  # no information at 0.5


def test_ks_statistic_matches_scipy() -> None:
    rng = np.random.default_rng(2)
    for _ in range(20):
        a = rng.uniform(0, 1, 500)
        b = rng.beta(2, 3, 100)
        assert ks_statistic(np.sort(a), b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    for _ in range(300):  # ties (confidences are often rounded) and tiny samples
        a = np.round(rng.uniform(0, 1, rng.integers(1, 40)), 1)
        b = np.round(rng.uniform(0, 1, rng.integers(1, 15)), 1)
        assert ks_statistic(np.sort(a), b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)


def test_ks_critical_value_matches_kolmogorov_law_and_holds_its_level() -> None:
    assert ks_critical_value(0.05, 500, 100) == pytest.approx(
        stats.kstwobign.isf(0.05) / math.sqrt(500 * 100 / 600), rel=1e-9
    )
    assert stats.kstwobign.isf(0.05) == pytest.approx(1.358099, abs=1e-6)
    rng = np.random.default_rng(3)
    crit = ks_critical_value(0.05, 500, 100)
    rejections = sum(ks_statistic(np.sort(rng.random(500)), rng.random(100)) > crit for _ in range(2000))
    assert 0.025 <= rejections / 2000 <= 0.06  # the limit law is close and slightly conservative here


def test_shape_z_is_zero_for_a_uniform_shortfall_in_expectation() -> None:
    rng = np.random.default_rng(4)
    zs = []
    for _ in range(400):
        p = rng.uniform(0.5, 1.0, 100)
        y = rng.random(100) < p - 0.15
        zs.append(shape_z(p, y, 0.8))
    assert abs(np.mean(zs)) < 0.2 and 0.8 < np.std(zs) < 1.25
    assert math.isnan(shape_z([0.6, 0.7], [1, 0], 0.8))


# -- the simulation and the table ---------------------------------------------------------------------


def test_table_thresholds_hold_their_false_alarm_rates_on_fresh_streams() -> None:
    """Fresh seeds, independent of the table's: at the tabled thresholds, the family members that
    set them (the CUSUM's worst case U[0.5, 0.7], z's worst case U[0.8, 1]) alarm at most alpha
    (+ 3 standard errors) of the time, and the demo-like mix too."""
    th, cfg = DEFAULT_THRESHOLDS, DEFAULT_THRESHOLDS.config
    n = 2000

    def bound(alpha: float) -> float:
        return alpha + 3 * math.sqrt(alpha * (1 - alpha) / n)

    for name in ("uniform(0.5, 0.7)", "uniform(0.5, 1.0)"):
        c_max = simulate_cusum_max(
            CONFIDENCE_FAMILY[name],
            odds_ratio=cfg.odds_ratio,
            horizon=cfg.horizon,
            n_sims=n,
            rng=np.random.default_rng(99),
        )
        assert np.mean(c_max > th.cusum) <= bound(cfg.alpha_accuracy), name
    # not wildly conservative either: at half the threshold, alarms are common
    assert np.mean(c_max > th.cusum / 2) > 0.2
    z_max = simulate_spiegelhalter_max(
        CONFIDENCE_FAMILY["uniform(0.8, 1.0)"],
        window=cfg.window,
        check_every=cfg.check_every,
        horizon=cfg.horizon,
        n_sims=n,
        rng=np.random.default_rng(98),
    )
    assert np.mean(z_max > th.spiegelhalter_z) <= bound(cfg.alpha_calibration)
    assert np.mean(z_max > th.spiegelhalter_z - 1.5) > 5 * cfg.alpha_calibration


def test_simulation_is_reproducible_and_reacts_to_alpha() -> None:
    cfg = ThresholdConfig(window=50, check_every=50, reference_size=100, horizon=1000)
    a = compute_thresholds(cfg, n_sims=400, seed=5)
    b = compute_thresholds(cfg, n_sims=400, seed=5)
    assert a == b
    looser = compute_thresholds(
        ThresholdConfig(
            window=50,
            check_every=50,
            reference_size=100,
            horizon=1000,
            alpha_accuracy=0.2,
            alpha_calibration=0.2,
        ),
        n_sims=400,
        seed=5,
    )
    assert looser.cusum < a.cusum and looser.spiegelhalter_z < a.spiegelhalter_z
    assert a.ks_d == pytest.approx(ks_critical_value(0.002 / 20, 100, 50))


@pytest.mark.slow
def test_default_table_matches_simulation() -> None:
    th = compute_thresholds(ThresholdConfig(), n_sims=DEFAULT_N_SIMS, seed=DEFAULT_SEED)
    assert th == DEFAULT_THRESHOLDS


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"odds_ratio": 1.0}, "'odds_ratio' of ThresholdConfig"),
        ({"window": 1}, "'window' of ThresholdConfig"),
        ({"alpha_accuracy": 0.0}, "'alpha_accuracy' of ThresholdConfig"),
        ({"horizon": 50}, "'horizon' of ThresholdConfig"),
    ],
)
def test_bad_config(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ThresholdConfig(**kwargs)


def test_bad_n_sims() -> None:
    with pytest.raises(ValueError, match="'n_sims' parameter of compute_thresholds"):
        compute_thresholds(n_sims=10)
