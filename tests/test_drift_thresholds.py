"""Threshold simulation and the statistics it simulates, against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ml.drift_stats import (
    accuracy_bank_weights,
    calibration_bank_weights,
    cusum_path,
    ks_critical_value,
    ks_statistic,
    shape_z,
)
from ml.drift_thresholds import (
    CONFIDENCE_FAMILY,
    DEFAULT_N_SIMS,
    DEFAULT_SEED,
    DEFAULT_THRESHOLDS,
    ThresholdConfig,
    compute_thresholds,
    first_crossing,
    simulate_bank_max,
    simulate_power,
)

# -- statistics vs independent formulas --------------------------------------------------------------


def test_bank_weights_are_bernoulli_log_likelihood_ratios() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.3, 0.95, 200)
    y = rng.random(200) < 0.5
    drops = [0.05, 0.15, 0.25]
    w = accuracy_bank_weights(p, y, drops)
    assert w.shape == (200, 3)
    for k, d in enumerate(drops):
        q = np.maximum(p - d, 0.01)
        llr = np.where(y, np.log(q / p), np.log((1 - q) / (1 - p)))
        np.testing.assert_allclose(w[:, k], llr, rtol=1e-12, atol=1e-12)
    a, b = [0.3, 0.0, -0.5], [0.0, 0.3, 0.8]
    w = calibration_bank_weights(p, y, a, b)
    for k in range(3):
        q = 1 / (1 + ((1 - p) / p) ** b[k] * math.exp(-a[k]))  # sigmoid(a + b logit p)
        llr = np.where(y, np.log(q / p), np.log((1 - q) / (1 - p)))
        np.testing.assert_allclose(w[:, k], llr, rtol=1e-10, atol=1e-12)
    # the calibrated line (a = 0, b = 1) is no alternative at all: zero weight
    np.testing.assert_allclose(calibration_bank_weights(p, y, [0.0], [1.0]), 0.0, atol=1e-12)


def test_bank_weights_have_negative_drift_under_calibration_and_positive_after_the_change() -> None:
    """E[W] = -KL(p || q) under calibration and +KL(q || p) under the alternative (exact sums)."""
    p = np.linspace(0.5, 0.99, 50)
    for d in (0.08, 0.15, 0.25):
        q = np.maximum(p - d, 0.01)
        w1 = accuracy_bank_weights(p, np.ones(50), [d])[:, 0]
        w0 = accuracy_bank_weights(p, np.zeros(50), [d])[:, 0]
        assert np.all(p * w1 + (1 - p) * w0 < 0)
        assert np.all(q * w1 + (1 - q) * w0 > 0)


def test_cusum_path_hand_values() -> None:
    np.testing.assert_allclose(cusum_path([0.5, -1.0, 2.0, -0.5, 0.25]), [0.5, 0.0, 2.0, 1.5, 1.75])
    # vectorized over leading axes, or along another axis
    np.testing.assert_allclose(cusum_path(np.array([[1.0, -2.0], [-1.0, 3.0]])), [[1.0, 0.0], [0.0, 3.0]])
    np.testing.assert_allclose(
        cusum_path(np.array([[1.0, -1.0], [-2.0, 3.0]]), axis=0), [[1.0, 0.0], [0.0, 3.0]]
    )


def test_first_crossing_is_the_first_index_above_the_threshold() -> None:
    # (trades, 1 stream, 2 members); member paths [1, 2, 3, 0] and [0.5, 1, 4, 4]
    w = np.array([[[1.0, 0.5]], [[1.0, 0.5]], [[1.0, 3.0]], [[-5.0, 0.0]]])
    assert first_crossing(w, 2.5).tolist() == [2.0]
    assert first_crossing(w, 1.5).tolist() == [1.0]
    assert np.isinf(first_crossing(w, 10.0)).all()


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
    """Fresh seeds, independent of the table's: at the tabled thresholds, calibrated streams of
    the family alarm at most alpha (+ 3 standard errors) of the time, and the thresholds are not
    wildly conservative either."""
    th, cfg = DEFAULT_THRESHOLDS, DEFAULT_THRESHOLDS.config
    n = 2000

    def bound(alpha: float) -> float:
        return alpha + 3 * math.sqrt(alpha * (1 - alpha) / n)

    for name in ("uniform(0.5, 1.0)", "uniform(0.8, 1.0)"):
        for weights, h, alpha in (
            (cfg.accuracy_weights, th.accuracy_cusum, cfg.alpha_accuracy),
            (cfg.calibration_weights, th.calibration_cusum, cfg.alpha_calibration),
        ):
            m = simulate_bank_max(
                CONFIDENCE_FAMILY[name], weights, horizon=cfg.horizon, n_sims=n, rng=np.random.default_rng(99)
            )
            assert np.mean(m > h) <= bound(alpha), name
            assert np.mean(m > h / 2) > 0.05, name


def test_power_is_the_delay_of_the_first_bank_to_cross() -> None:
    cfg = ThresholdConfig()
    power = simulate_power(cfg, 1e9, 1e9, n_streams=200, seed=1)  # thresholds nobody crosses
    assert power["accuracy_drop_0.15"]["p_within_500"] == 0.0
    assert math.isinf(power["calibration_break"]["median_delay"])
    low = simulate_power(cfg, 1e-9, 1e9, n_streams=200, seed=1)  # the first positive weight alarms
    assert low["accuracy_drop_0.15"]["p_within_100"] == 1.0
    assert low["accuracy_drop_0.15"]["median_delay"] < 5
    tabled = DEFAULT_THRESHOLDS.power
    assert set(tabled) == {"accuracy_drop_0.15", "calibration_break"}
    assert tabled["calibration_break"]["median_delay"] < tabled["accuracy_drop_0.15"]["median_delay"]


def test_simulation_is_reproducible_and_reacts_to_alpha() -> None:
    cfg = ThresholdConfig(window=50, check_every=50, reference_size=100, horizon=1000)
    a = compute_thresholds(cfg, n_sims=400, seed=5, power_streams=0)
    b = compute_thresholds(cfg, n_sims=400, seed=5, power_streams=0)
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
        power_streams=0,
    )
    assert looser.accuracy_cusum < a.accuracy_cusum and looser.calibration_cusum < a.calibration_cusum
    assert a.ks_d == pytest.approx(ks_critical_value(0.0005 / 20, 100, 50))


@pytest.mark.slow
def test_default_table_matches_simulation() -> None:
    th = compute_thresholds(ThresholdConfig(), n_sims=DEFAULT_N_SIMS, seed=DEFAULT_SEED)
    assert th == DEFAULT_THRESHOLDS


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"accuracy_drops": ()}, "'accuracy_drops' of ThresholdConfig"),
        ({"calibration_slopes": (1.2, 0.0, 0.0)}, "'calibration_slopes' of ThresholdConfig"),
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
