"""DriftDetector: pinned detection indices, labels, false alarms, and agreement with the
vectorized statistics of ml.drift_stats."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.drift import DriftDetector
from ml.drift_scenarios import accuracy_drop, calibration_break, confidence_shift, stable_stream
from ml.drift_stats import cusum_path, cusum_weights, ks_statistic, shape_z, spiegelhalter_z
from ml.drift_thresholds import DEFAULT_THRESHOLDS, ThresholdConfig, compute_thresholds


def feed(det: DriftDetector, c: np.ndarray, y: np.ndarray) -> DriftDetector:
    for ci, yi in zip(c.tolist(), y.tolist()):
        det.update(ci, yi)
    return det


# -- pinned detections (river style: seeded streams, exact indices) ---------------------------------


@pytest.mark.parametrize(
    ("scenario", "seed", "kind", "statistic", "index"),
    [
        (accuracy_drop, 0, "accuracy_drift", "cusum", 1190),
        (accuracy_drop, 1, "accuracy_drift", "cusum", 1043),
        (accuracy_drop, 2, "accuracy_drift", "cusum", 1177),
        (calibration_break, 0, "calibration_drift", "spiegelhalter_z", 1100),
        (calibration_break, 1, "calibration_drift", "cusum", 1043),
        (calibration_break, 2, "calibration_drift", "spiegelhalter_z", 1100),
        (confidence_shift, 0, "distribution_shift", "ks_d", 1100),
        (confidence_shift, 1, "distribution_shift", "ks_d", 1100),
        (confidence_shift, 2, "distribution_shift", "ks_d", 1100),
    ],
)
def test_detection_index_and_label_on_seeded_streams(scenario, seed, kind, statistic, index) -> None:
    c, y = scenario(2000, change_at=1000, seed=seed)
    det = feed(DriftDetector(), c, y)
    assert det.drift_detected
    first = det.detections[0]
    assert (first.kind, first.statistic, first.n_trades) == (kind, statistic, index)
    assert first.value > first.threshold
    assert len(det.detections) == 1  # one kind per scenario, nothing else


def test_detection_happens_on_the_trade_that_crosses() -> None:
    c, y = accuracy_drop(2000, change_at=1000, seed=0)
    det = DriftDetector()
    for i, (ci, yi) in enumerate(zip(c.tolist(), y.tolist()), start=1):
        det.update(ci, yi)
        if i < 1190:
            assert not det.drift_detected, i
    assert det.drift is not None and det.drift.n_trades == 1190


def test_no_detection_before_the_change_point() -> None:
    for seed in range(5):
        c, y = accuracy_drop(1000, change_at=1000, seed=seed)  # change never happens
        assert not feed(DriftDetector(), c, y).drift_detected


# -- labels -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "kind"),
    [(accuracy_drop, "accuracy_drift"), (calibration_break, "calibration_drift")],
)
def test_outcome_drifts_are_labelled_by_where_the_shortfall_is(scenario, kind) -> None:
    labels = []
    for seed in range(10, 30):
        det = feed(DriftDetector(), *scenario(1600, change_at=1000, seed=seed))
        assert det.drift is not None, seed
        labels.append(det.drift.kind)
    assert labels.count(kind) >= 18, labels  # measured label accuracy ~96% (bench_drift)


def test_pure_confidence_shift_is_distribution_shift_only() -> None:
    for seed in range(20):
        for lo, hi in ((0.5, 0.75), (0.75, 1.0)):
            det = feed(DriftDetector(), *confidence_shift(3000, change_at=1000, seed=seed, lo=lo, hi=hi))
            kinds = [r.kind for r in det.detections]
            assert kinds == ["distribution_shift"], (seed, lo, kinds)
            assert det.drift is not None and det.drift.kind == "distribution_shift"


def test_high_confidence_rule_labels_calibration_drift() -> None:
    # every trade at 0.9 winning half the time: the plan's rule (win rate < 60 % over the last
    # 50 trades above 0.8) and the outcome statistics all point at calibration
    rng = np.random.default_rng(5)
    det = DriftDetector()
    for _ in range(200):
        det.update(0.9, bool(rng.random() < 0.5))
    assert det.drift is not None and det.drift.kind == "calibration_drift"


def test_drift_prefers_the_most_severe_kind() -> None:
    c1, y1 = confidence_shift(1400, change_at=1000, seed=3)
    det = feed(DriftDetector(), c1, y1)
    assert det.drift is not None and det.drift.kind == "distribution_shift"
    rng = np.random.default_rng(3)
    for _ in range(600):
        det.update(0.9, bool(rng.random() < 0.4))
    assert [r.kind for r in det.detections] == ["distribution_shift", "calibration_drift"]
    assert det.drift.kind == "calibration_drift"


# -- false alarms --------------------------------------------------------------------------------------


def test_false_alarm_rate_on_long_stable_streams() -> None:
    """Target: at most 1 % of 5,000-trade calibrated streams raise any alarm (seeded: 1 of 150)."""
    alarms = [
        seed
        for seed in range(150)
        if feed(DriftDetector(), *stable_stream(5000, seed=1000 + seed)).drift_detected
    ]
    assert len(alarms) <= 1, alarms


@pytest.mark.slow
def test_false_alarm_rate_on_many_long_stable_streams() -> None:
    alarms = sum(
        feed(DriftDetector(), *stable_stream(5000, seed=50_000 + s)).drift_detected for s in range(1000)
    )
    assert alarms <= 12  # 1 % target; binomial 95 % upper bound for 1000 streams at 0.7 %


def test_calibrated_model_with_other_confidence_mixes_stays_quiet() -> None:
    for lo, hi in ((0.5, 0.6), (0.85, 1.0)):
        alarms = [
            s
            for s in range(40)
            if feed(DriftDetector(), *stable_stream(5000, seed=s, lo=lo, hi=hi)).drift_detected
        ]
        assert len(alarms) <= 1, (lo, hi, alarms)


# -- agreement with the reference statistics ----------------------------------------------------------


def test_cusum_matches_hand_computed_values() -> None:
    det = DriftDetector()
    expected = []
    s = 0.0
    for c, y in [(0.75, 0), (0.75, 0), (0.75, 1), (0.6, 1), (0.6, 1), (0.6, 1)]:
        # Steiner et al.: W = y log R - log(1 - p + R p), R = 0.5
        w = y * math.log(0.5) - math.log(1 - c + 0.5 * c)
        s = max(0.0, s + w)
        expected.append(s)
        det.update(c, bool(y))
        assert det.cusum == pytest.approx(s, abs=1e-12)
    assert expected[:3] == pytest.approx([0.470004, 0.940007, 0.716864], abs=1e-6)
    assert expected[-1] == 0.0


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 400))
def test_streaming_statistics_equal_vectorized_ones(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.0, 1.0, n)
    y = rng.random(n) < c * rng.uniform(0.5, 1.0)
    det = DriftDetector(window=50, check_every=25, reference_size=100, thresholds=SMALL_THRESHOLDS)
    feed(det, c, y)
    path = cusum_path(cusum_weights(c, y, 0.5))
    assert det.cusum == pytest.approx(path[-1], rel=1e-9, abs=1e-9)
    assert det.cusum >= 0.0
    check = det.last_check
    if n < 25:
        assert check is None
        return
    assert check is not None
    m = (n // 25) * 25
    pw, yw = c[max(0, m - 50) : m], y[max(0, m - 50) : m]
    if m >= 50:
        assert check.spiegelhalter_z == pytest.approx(float(spiegelhalter_z(pw, yw)), rel=1e-9, abs=1e-9)
    sz = shape_z(pw, yw, 0.8)
    assert (math.isnan(sz) and math.isnan(check.shape_z)) or check.shape_z == pytest.approx(sz, rel=1e-9)
    if m >= 150:
        ref = np.sort(np.clip(c[:100], 0.01, 0.99))
        assert check.ks_d == pytest.approx(ks_statistic(ref, np.clip(pw, 0.01, 0.99)))
    else:
        assert math.isnan(check.ks_d)


SMALL_THRESHOLDS = compute_thresholds(
    ThresholdConfig(window=50, check_every=25, reference_size=100, horizon=500), n_sims=200, seed=3
)


# -- API ----------------------------------------------------------------------------------------------


def test_update_returns_self_and_reset_forgets_everything() -> None:
    det = DriftDetector()
    assert det.update(0.7, True) is det
    feed(det, *accuracy_drop(2000, change_at=500, seed=4))
    assert det.drift_detected and det.n_trades == 2001
    det.reset()
    assert not det.drift_detected and det.drift is None and det.detections == ()
    assert det.n_trades == 0 and det.cusum == 0.0 and det.last_check is None
    # after reset the reference is rebuilt from the new model's confidences
    feed(det, *stable_stream(1500, seed=9, lo=0.8, hi=1.0))
    assert not det.drift_detected


def test_default_detector_uses_the_precomputed_table() -> None:
    det = DriftDetector()
    assert det.thresholds_ is DEFAULT_THRESHOLDS
    assert det.thresholds_.cusum == pytest.approx(10.8429, abs=1e-4)


def test_check_stats_record_thresholds() -> None:
    det = feed(DriftDetector(), *stable_stream(600, seed=1))
    check = det.last_check
    assert check is not None and check.n_trades == 600
    assert check.cusum_threshold == DEFAULT_THRESHOLDS.cusum
    assert check.spiegelhalter_threshold == DEFAULT_THRESHOLDS.spiegelhalter_z
    assert check.ks_threshold == DEFAULT_THRESHOLDS.ks_d
    assert check.high_conf_threshold == 0.6
    assert 0 < check.high_conf_count <= 50
    assert math.isfinite(check.ks_d)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 1}, "'window' parameter of DriftDetector"),
        ({"check_every": 2.5}, "'check_every' parameter of DriftDetector"),
        ({"odds_ratio": 1.5}, "'odds_ratio' parameter of DriftDetector"),
        ({"high_confidence_min_count": 80}, "'high_confidence_min_count' parameter"),
        ({"shape_z": 0.0}, "'shape_z' parameter of DriftDetector"),
        ({"window": 50, "thresholds": DEFAULT_THRESHOLDS}, "window=100"),
    ],
)
def test_bad_parameters_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DriftDetector(**kwargs)


@pytest.mark.parametrize("bad", [-0.1, 1.2, math.nan])
def test_bad_confidence_raises(bad: float) -> None:
    with pytest.raises(ValueError, match=r"'confidence' passed to DriftDetector\.update must be in \[0, 1\]"):
        DriftDetector().update(bad, True)
