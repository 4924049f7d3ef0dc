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
from ml.drift_stats import (
    accuracy_bank_weights,
    calibration_bank_weights,
    cusum_path,
    ks_statistic,
    shape_z,
)
from ml.drift_thresholds import DEFAULT_THRESHOLDS, ThresholdConfig, compute_thresholds


def feed(det: DriftDetector, c: np.ndarray, y: np.ndarray) -> DriftDetector:
    for ci, yi in zip(c.tolist(), y.tolist()):
        det.update(ci, yi)
    return det


# -- pinned detections (river style: seeded streams, exact indices) ---------------------------------


@pytest.mark.parametrize(
    ("scenario", "seed", "kind", "statistic", "index"),
    [
        (accuracy_drop, 0, "accuracy_drift", "accuracy_cusum", 1190),
        (accuracy_drop, 1, "accuracy_drift", "accuracy_cusum", 1014),
        (accuracy_drop, 2, "accuracy_drift", "accuracy_cusum", 1169),
        (calibration_break, 0, "calibration_drift", "calibration_cusum", 1058),
        (calibration_break, 1, "accuracy_drift", "accuracy_cusum", 1022),
        (calibration_break, 2, "calibration_drift", "calibration_cusum", 1073),
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


def _crossings(path: np.ndarray, h: float) -> list[int | None]:
    """1-based trade at which each member (column) first exceeds ``h``; None if never."""
    return [int(np.argmax(col > h)) + 1 if (col > h).any() else None for col in path.T]


@pytest.mark.parametrize(
    ("scenario", "seed", "accuracy", "calibration"),
    [
        (accuracy_drop, 0, [1190, 1192], [1392, 1372, 1405]),
        (accuracy_drop, 1, [1022, 1014], [1022, 1022, 1043]),
        (accuracy_drop, 2, [1169, 1169], [1301, 1224, 1301]),
        (calibration_break, 0, [1127, 1127], [1058, 1060, 1058]),
        (calibration_break, 1, [1028, 1022], [1028, 1028, 1038]),
        (calibration_break, 2, [1074, 1074], [1073, 1074, 1074]),
        (confidence_shift, 0, [None, None], [None, None, None]),
        (confidence_shift, 1, [None, None], [None, None, None]),
        (confidence_shift, 2, [None, None], [None, None, None]),
    ],
)
def test_each_member_of_both_banks_crosses_at_the_pinned_trade(scenario, seed, accuracy, calibration) -> None:
    """Every CUSUM in the banks, computed independently with ml.drift_stats, crosses its bank's
    threshold at a pinned trade (None: never within 2,000 trades); the detector's outcome alarm
    is the first crossing of either bank (unless the high-confidence rule fired earlier)."""
    c, y = scenario(2000, change_at=1000, seed=seed)
    th, cfg = DEFAULT_THRESHOLDS, DEFAULT_THRESHOLDS.config
    acc = cusum_path(accuracy_bank_weights(c, y, cfg.accuracy_drops), axis=0)
    cal = cusum_path(
        calibration_bank_weights(c, y, cfg.calibration_intercepts, cfg.calibration_slopes), axis=0
    )
    assert _crossings(acc, th.accuracy_cusum) == accuracy
    assert _crossings(cal, th.calibration_cusum) == calibration
    det = feed(DriftDetector(), c, y)
    outcome = [r for r in det.detections if r.kind != "distribution_shift"]
    first = min([x for x in accuracy + calibration if x is not None], default=None)
    if first is None:
        assert all(r.statistic == "high_conf_win_rate" for r in outcome)
        return
    assert outcome and outcome[0].n_trades <= first
    if outcome[0].statistic != "high_conf_win_rate":
        assert outcome[0].n_trades == first
        bank = accuracy if outcome[0].statistic == "accuracy_cusum" else calibration
        assert first in bank


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


def test_a_shortfall_only_in_high_confidence_trades_is_calibration_drift() -> None:
    # trades at 0.6 stay calibrated, trades at 0.9 win half the time: the shortfall sits in the
    # high-confidence trades (shape z far below -2), which is over-confidence
    rng = np.random.default_rng(5)
    det = DriftDetector()
    for i in range(400):
        c = 0.6 if i % 2 else 0.9
        det.update(c, bool(rng.random() < (0.6 if i % 2 else 0.5)))
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
    """Budget: at most 1 % of 5,000-trade calibrated streams raise any alarm (seeded: 2 of 150; at
    a true 1 % five or more of 150 would have probability 0.02 %)."""
    alarms = [
        seed
        for seed in range(150)
        if feed(DriftDetector(), *stable_stream(5000, seed=1000 + seed)).drift_detected
    ]
    assert len(alarms) <= 4, alarms


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


def test_banks_match_hand_computed_values() -> None:
    """Each member's CUSUM by hand: W = y log(q/p) + (1-y) log((1-q)/(1-p)), S = max(0, S + W)."""
    det = DriftDetector()
    cfg = det.thresholds_.config
    acc = [0.0] * len(cfg.accuracy_drops)
    cal = [0.0] * len(cfg.calibration_slopes)
    for c, y in [(0.75, 0), (0.75, 0), (0.75, 1), (0.6, 1), (0.95, 0), (0.6, 1)]:
        for k, d in enumerate(cfg.accuracy_drops):
            q = c - d
            w = math.log(q / c) if y else math.log((1 - q) / (1 - c))
            acc[k] = max(0.0, acc[k] + w)
        for k, (a, b) in enumerate(zip(cfg.calibration_intercepts, cfg.calibration_slopes)):
            q = 1.0 / (1.0 + math.exp(-(a + b * math.log(c / (1 - c)))))
            w = math.log(q / c) if y else math.log((1 - q) / (1 - c))
            cal[k] = max(0.0, cal[k] + w)
        det.update(c, bool(y))
        assert det.accuracy_cusum == pytest.approx(max(acc), abs=1e-12)
        assert det.calibration_cusum == pytest.approx(max(cal), abs=1e-12)
        assert list(det.bank().values()) == pytest.approx(acc + cal, abs=1e-12)
    # the 0.15 member after two losses at 0.75: 2 log(0.4 / 0.25)
    assert 2 * math.log(0.4 / 0.25) == pytest.approx(0.940007, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 400))
def test_streaming_statistics_equal_vectorized_ones(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.0, 1.0, n)
    y = rng.random(n) < c * rng.uniform(0.5, 1.0)
    det = DriftDetector(window=50, check_every=25, reference_size=100, thresholds=SMALL_THRESHOLDS)
    feed(det, c, y)
    cfg = SMALL_THRESHOLDS.config
    acc = cusum_path(accuracy_bank_weights(c, y, cfg.accuracy_drops), axis=0)
    cal = cusum_path(
        calibration_bank_weights(c, y, cfg.calibration_intercepts, cfg.calibration_slopes), axis=0
    )
    assert det.accuracy_cusum == pytest.approx(acc[-1].max(), rel=1e-9, abs=1e-9)
    assert det.calibration_cusum == pytest.approx(cal[-1].max(), rel=1e-9, abs=1e-9)
    assert det.accuracy_cusum >= 0.0 and det.calibration_cusum >= 0.0
    check = det.last_check
    if n < 25:
        assert check is None
        return
    assert check is not None
    m = (n // 25) * 25
    pw, yw = c[max(0, m - 50) : m], y[max(0, m - 50) : m]
    assert check.accuracy_cusum == pytest.approx(acc[m - 1].max(), rel=1e-9, abs=1e-9)
    assert check.calibration_cusum == pytest.approx(cal[m - 1].max(), rel=1e-9, abs=1e-9)
    assert check.accuracy_cusum_max >= check.accuracy_cusum
    sz = shape_z(pw, yw, 0.8)
    assert (math.isnan(sz) and math.isnan(check.shape_z)) or check.shape_z == pytest.approx(sz, rel=1e-9)
    if m >= 150:
        ref = np.sort(np.clip(c[:100], 0.01, 0.99))
        assert check.ks_d == pytest.approx(ks_statistic(ref, np.clip(pw, 0.01, 0.99)))
    else:
        assert math.isnan(check.ks_d)


SMALL_THRESHOLDS = compute_thresholds(
    ThresholdConfig(window=50, check_every=25, reference_size=100, horizon=500),
    n_sims=200,
    seed=3,
    power_streams=0,
)


# -- API ----------------------------------------------------------------------------------------------


def test_update_returns_self_and_reset_forgets_everything() -> None:
    det = DriftDetector()
    assert det.update(0.7, True) is det
    feed(det, *accuracy_drop(2000, change_at=500, seed=4))
    assert det.drift_detected and det.n_trades == 2001
    det.reset()
    assert not det.drift_detected and det.drift is None and det.detections == ()
    assert det.n_trades == 0 and det.last_check is None
    assert det.accuracy_cusum == 0.0 and det.calibration_cusum == 0.0
    # after reset the reference is rebuilt from the new model's confidences
    feed(det, *stable_stream(1500, seed=9, lo=0.8, hi=1.0))
    assert not det.drift_detected


def test_default_detector_uses_the_precomputed_table() -> None:
    det = DriftDetector()
    assert det.thresholds_ is DEFAULT_THRESHOLDS
    assert det.thresholds_.accuracy_cusum == pytest.approx(10.8352, abs=1e-4)
    assert det.thresholds_.calibration_cusum == pytest.approx(13.1580, abs=1e-4)


def test_check_stats_record_thresholds() -> None:
    det = feed(DriftDetector(), *stable_stream(600, seed=1))
    check = det.last_check
    assert check is not None and check.n_trades == 600
    assert check.accuracy_threshold == DEFAULT_THRESHOLDS.accuracy_cusum
    assert check.calibration_threshold == DEFAULT_THRESHOLDS.calibration_cusum
    assert check.ks_threshold == DEFAULT_THRESHOLDS.ks_d
    assert check.high_conf_threshold == 0.6
    assert 0 < check.high_conf_count <= 50
    assert math.isfinite(check.ks_d)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 1}, "'window' parameter of DriftDetector"),
        ({"check_every": 2.5}, "'check_every' parameter of DriftDetector"),
        ({"accuracy_drops": (0.1, 1.5)}, "'accuracy_drops' of ThresholdConfig"),
        ({"calibration_slopes": (0.2,)}, "of equal length"),
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
