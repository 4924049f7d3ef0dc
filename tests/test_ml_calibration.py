"""Calibration metrics pinned to hand-computed values, closed forms and invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.calibration import (
    brier_score,
    calibration_in_the_large,
    calibration_over_time,
    ece_null_distribution,
    expected_calibration_error,
    reliability_bins,
)

Y = [1, 0, 1, 1]
P = [0.9, 0.2, 0.6, 0.4]


def test_brier_hand_computed() -> None:
    # (0.1^2 + 0.2^2 + 0.4^2 + 0.6^2) / 4 = (0.01 + 0.04 + 0.16 + 0.36) / 4
    assert brier_score(Y, P) == pytest.approx(0.1425, abs=1e-15)
    assert brier_score([1, 0], [1.0, 0.0]) == 0.0
    assert brier_score([1, 0], [0.5, 0.5]) == pytest.approx(0.25)


def test_ece_hand_computed_two_bins() -> None:
    # bin (0, 0.5]: p = 0.2, 0.4 -> mean 0.3, observed 1/2 -> |0.2| * 2/4 = 0.1
    # bin (0.5, 1]: p = 0.9, 0.6 -> mean 0.75, observed 1 -> |0.25| * 2/4 = 0.125
    assert expected_calibration_error(Y, P, n_bins=2) == pytest.approx(0.225, abs=1e-15)


def test_ece_hand_computed_five_bins() -> None:
    # bins of width 0.2: 0.2 -> (0, 0.2] (edge belongs to the lower bin); 0.4 -> (0.2, 0.4];
    # 0.6 -> (0.4, 0.6]; 0.9 -> (0.8, 1]. Each bin holds one row: ECE = mean |y - p|
    expected = (abs(1 - 0.9) + abs(0 - 0.2) + abs(1 - 0.6) + abs(1 - 0.4)) / 4  # 0.325
    assert expected_calibration_error(Y, P, n_bins=5) == pytest.approx(expected, abs=1e-15)


def test_reliability_table_hand_computed() -> None:
    t = reliability_bins(Y, P, n_bins=2)
    assert t["count"].tolist() == [2.0, 2.0]
    np.testing.assert_allclose(t["mean_prob"], [0.3, 0.75], atol=1e-15)
    np.testing.assert_allclose(t["observed"], [0.5, 1.0], atol=1e-15)
    np.testing.assert_allclose(t["gap"], [0.2, 0.25], atol=1e-15)
    empty = reliability_bins(Y, P, n_bins=4)
    assert empty["count"].tolist() == [1.0, 1.0, 1.0, 1.0]
    # top-label bins (0.5, 0.6], (0.6, 0.7], ...: 0.7 sits on an edge and belongs to the lower bin
    top = reliability_bins([1, 0, 1, 1], [0.5, 0.55, 0.7, 0.95], n_bins=5, value_range=(0.5, 1.0))
    assert top["count"].tolist() == [2.0, 1.0, 0.0, 0.0, 1.0]
    assert top["observed"].iloc[0] == 0.5
    assert np.isnan(top["observed"].iloc[2])
    for edge in (0.3, 0.6, 0.7, 0.9):
        t10 = reliability_bins([1], [edge], n_bins=10)
        assert t10["bin_upper"][t10["count"] == 1].item() == edge


def test_calibration_in_the_large_hand_computed() -> None:
    c = calibration_in_the_large(Y, P)
    assert c.n == 4
    assert c.mean_outcome == pytest.approx(0.75)
    assert c.mean_prob == pytest.approx(0.525)
    assert c.gap == pytest.approx(0.225)
    # sum p(1-p) = 0.09 + 0.16 + 0.24 + 0.24 = 0.73
    assert c.se == pytest.approx(np.sqrt(0.73) / 4, abs=1e-15)
    assert c.z == pytest.approx(0.225 / (np.sqrt(0.73) / 4))


def test_calibrated_model_has_ece_near_zero() -> None:
    rng = np.random.default_rng(1)
    p = rng.random(100_000)
    y = rng.random(100_000) < p
    ece = expected_calibration_error(y, p, n_bins=10)
    # each bin holds ~10k rows: sampling noise of the observed rate is ~0.004
    assert ece < 0.01
    citl = calibration_in_the_large(y, p)
    assert abs(citl.z) < 4


def test_overconfident_model_shows_the_expected_gap() -> None:
    # confidence c ~ U(0.5, 1) but the signal is right with probability 0.5 + 0.5 (c - 0.5):
    # the gap c - P(right) = 0.5 (c - 0.5) has mean 0.5 * 0.25 = 0.125 and the same sign in every
    # bin, so ECE -> 0.125 and calibration-in-the-large -> -0.125.
    rng = np.random.default_rng(2)
    c = 0.5 + 0.5 * rng.random(200_000)
    right = rng.random(200_000) < 0.5 + 0.5 * (c - 0.5)
    ece = expected_calibration_error(right, c, n_bins=10, value_range=(0.5, 1.0))
    assert ece == pytest.approx(0.125, abs=0.005)
    citl = calibration_in_the_large(right, c)
    assert citl.gap == pytest.approx(-0.125, abs=0.005)
    assert citl.z < -50


def test_ece_null_distribution_matches_calibrated_samples() -> None:
    rng = np.random.default_rng(3)
    p = 0.5 + 0.4 * rng.random(2000)
    null = ece_null_distribution(p, n_bins=10, value_range=(0.5, 1.0), n_sim=400, random_state=0)
    assert null.shape == (400,)
    assert np.all(np.diff(null) >= 0)
    q95 = np.quantile(null, 0.95)
    # fresh calibrated outcomes fall below the 95% level about 95% of the time
    below = [
        expected_calibration_error(rng.random(p.size) < p, p, n_bins=10, value_range=(0.5, 1.0)) <= q95
        for _ in range(200)
    ]
    assert 0.88 <= np.mean(below) <= 0.995
    # an over-confident model on the same confidences is far above it
    worse = rng.random(p.size) < 0.5 + 0.3 * (p - 0.5)
    assert expected_calibration_error(worse, p, n_bins=10, value_range=(0.5, 1.0)) > 3 * q95


def test_calibration_over_time_equals_per_bucket_scalars() -> None:
    rng = np.random.default_rng(4)
    ts = pd.date_range("2025-01-01", periods=96, freq="1h", tz="UTC")
    p = rng.random(96)
    y = rng.random(96) < p
    out = calibration_over_time(ts, y, p, freq="1D", n_bins=5)
    assert len(out) == 4
    assert out["n"].tolist() == [24, 24, 24, 24]
    for i, row in out.iterrows():
        sl = slice(24 * i, 24 * (i + 1))
        assert row["brier"] == pytest.approx(brier_score(y[sl], p[sl]), abs=1e-12)
        assert row["ece"] == pytest.approx(expected_calibration_error(y[sl], p[sl], n_bins=5), abs=1e-12)
        assert row["mean_outcome"] == pytest.approx(np.mean(y[sl]))
    assert str(out["bucket_start"].dt.tz) == "UTC"


def test_empty_input_gives_nan() -> None:
    assert np.isnan(brier_score([], []))
    assert np.isnan(expected_calibration_error([], []))
    assert calibration_in_the_large([], []).n == 0
    assert reliability_bins([], [], n_bins=3)["count"].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("y", "p", "match"),
    [
        ([1, 2], [0.5, 0.5], "'outcome' parameter of brier_score must hold only 0/1"),
        ([1, 0], [0.5, 1.5], "'prob' parameter of brier_score must hold finite probabilities"),
        ([1, 0], [0.5, np.nan], "'prob' parameter of brier_score"),
        ([1, 0, 1], [0.5, 0.5], "must have the same length"),
    ],
)
def test_bad_input_names_the_parameter(y: list[float], p: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        brier_score(y, p)


def test_bad_bins_and_range() -> None:
    with pytest.raises(
        ValueError, match="'n_bins' parameter of expected_calibration_error must be an int >= 1"
    ):
        expected_calibration_error([1], [0.5], n_bins=0)
    with pytest.raises(ValueError, match="'value_range'"):
        reliability_bins([1], [0.5], value_range=(0.6, 0.5))
    with pytest.raises(ValueError, match="must lie inside value_range"):
        reliability_bins([1], [0.3], value_range=(0.5, 1.0))


probs = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(probs, st.integers(0, 2**31 - 1), st.integers(1, 15))
def test_invariants(p_list: list[float], seed: int, n_bins: int) -> None:
    p = np.asarray(p_list)
    y = np.random.default_rng(seed).random(p.size) < 0.5
    ece = expected_calibration_error(y, p, n_bins=n_bins)
    assert 0.0 <= ece <= 1.0 + 1e-12
    assert 0.0 <= brier_score(y, p) <= 1.0
    perm = np.random.default_rng(seed + 1).permutation(p.size)
    assert expected_calibration_error(y[perm], p[perm], n_bins=n_bins) == pytest.approx(ece, abs=1e-12)
    # one bin: ECE is the absolute calibration-in-the-large gap
    assert expected_calibration_error(y, p, n_bins=1) == pytest.approx(
        abs(calibration_in_the_large(y, p).gap), abs=1e-12
    )
    # ECE is the count-weighted mean absolute gap of the reliability table
    t = reliability_bins(y, p, n_bins=n_bins)
    filled = t[t["count"] > 0]
    assert (filled["count"] * filled["gap"].abs()).sum() / p.size == pytest.approx(ece, abs=1e-12)
    # for a binary model the Brier score of P(up) against y equals that of the top-label
    # confidence max(p, 1-p) against "the predicted direction was right"
    conf = np.maximum(p, 1.0 - p)
    correct = y == (p >= 0.5)
    assert brier_score(correct, conf) == pytest.approx(brier_score(y, p), abs=1e-12)


def test_ece_null_groups_and_normal_approximation() -> None:
    rng = np.random.default_rng(5)
    p = 0.5 + 0.3 * rng.random(3000)
    single = ece_null_distribution(p, n_bins=10, value_range=(0.5, 1.0), n_sim=100, random_state=9)
    one_group = ece_null_distribution(
        p, n_bins=10, value_range=(0.5, 1.0), n_sim=100, random_state=9, groups=np.zeros(3000, dtype=int)
    )
    np.testing.assert_array_equal(one_group[0], single)
    # per-group nulls: each group's distribution matches a separate simulation of that group
    codes = np.repeat([0, 1, 2], 1000)
    grouped = ece_null_distribution(
        p, n_bins=10, value_range=(0.5, 1.0), n_sim=400, random_state=1, groups=codes
    )
    assert grouped.shape == (3, 400)
    for g in range(3):
        alone = ece_null_distribution(
            p[codes == g], n_bins=10, value_range=(0.5, 1.0), n_sim=400, random_state=2
        )
        assert np.median(grouped[g]) == pytest.approx(np.median(alone), rel=0.1)
    # the normal law for well-filled bins gives the same alarm level as full simulation
    exact = ece_null_distribution(p, n_bins=10, value_range=(0.5, 1.0), n_sim=400, random_state=3)
    approx = ece_null_distribution(
        p, n_bins=10, value_range=(0.5, 1.0), n_sim=400, random_state=3, normal_min_count=100
    )
    assert np.quantile(approx, 0.95) == pytest.approx(np.quantile(exact, 0.95), rel=0.1)
    with pytest.raises(ValueError, match="'groups' parameter of ece_null_distribution"):
        ece_null_distribution(p, groups=np.full(3000, -1))
    with pytest.raises(ValueError, match="'normal_min_count'"):
        ece_null_distribution(p, normal_min_count=0)
