"""Paired comparison metrics agree with ml.calibration; the block bootstrap draws whole bars."""

from __future__ import annotations

import numpy as np
import pytest

from ml.calibration import brier_score, expected_calibration_error
from ml.retrain_validation import ValidationConfig, block_bootstrap_weights, compare


def test_point_metrics_match_the_calibration_module() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    y = (rng.random(n) < 0.5).astype(float)
    p1, p2 = rng.uniform(0.05, 0.95, n), rng.uniform(0.3, 0.7, n)
    v = compare(np.arange(n) // 5, y, p1, p2, ValidationConfig(high_confidence=0.65))
    for p, side in ((p1, "current"), (p2, "candidate")):
        c = np.maximum(p, 1 - p)
        hit = (p >= 0.5) == (y == 1)
        assert getattr(v.metrics["brier"], side) == pytest.approx(brier_score(y, p), abs=1e-12)
        ece = expected_calibration_error(hit, c, value_range=(0.5, 1.0))
        assert getattr(v.metrics["ece"], side) == pytest.approx(ece, abs=1e-12)
        assert getattr(v.metrics["hit_rate_high"], side) == pytest.approx(hit[c >= 0.65].mean(), abs=1e-12)
    b = v.metrics["brier"]
    assert b.diff == pytest.approx(b.candidate - b.current) and b.ci_low <= b.diff <= b.ci_high
    assert v.n_bars == n // 5


def test_identical_forecasts_are_never_promoted() -> None:
    rng = np.random.default_rng(4)
    q = rng.uniform(0.2, 0.8, 2000)
    y = (rng.random(2000) < q).astype(float)
    v = compare(np.arange(2000) // 4, y, q, q)
    assert not v.promote and v.metrics["brier"].ci_high == 0.0


def test_block_bootstrap_weights_keep_the_sample_size() -> None:
    w = block_bootstrap_weights(103, block=10, n_boot=200, rng=np.random.default_rng(0))
    assert w.shape == (200, 103) and (w.sum(axis=1) == 103).all()
    assert abs(w.mean() - 1.0) < 0.1


def test_bad_input_names_the_parameter() -> None:
    with pytest.raises(ValueError, match="'n_boot' parameter of ValidationConfig"):
        ValidationConfig(n_boot=3)
    with pytest.raises(ValueError, match="equal length"):
        compare([1, 2], [0, 1], [0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="'p_candidate'"):
        compare([1, 2], [0, 1], [0.5, 0.5], [0.5, 1.5])
