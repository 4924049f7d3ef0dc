"""Reward calculator: hand-computed components, the two laws, monotonicity, the Sharpe floor."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution.reward_calculator import (
    DEFAULT_REWARD_PARAMS,
    RewardParams,
    compute_reward,
    compute_reward_breakdown,
    trade_sharpe,
)

P = DEFAULT_REWARD_PARAMS


def reward(
    pnl: float, dur: float = 60.0, dd: float = 0.0, conf: float = 0.5, params: RewardParams = P
) -> float:
    return compute_reward(pnl_pct=pnl, duration_mins=dur, max_drawdown_pct=dd, confidence=conf, params=params)


def test_duration_penalty_hand_computed() -> None:
    # 0.5% in 60 min: sharpe 0.5 (no bonus); penalty 0.5 * 0.2 * 60/1440
    b = compute_reward_breakdown(pnl_pct=0.5, duration_mins=60, max_drawdown_pct=0, confidence=0.5)
    assert b.duration_penalty == pytest.approx(0.5 * 0.2 * 60 / 1440, rel=1e-12)
    assert b.reward == pytest.approx(0.49583333333333335, rel=1e-12)
    # capped at 20% after a day; a loser gets no duration penalty
    assert reward(1.0, dur=2880) == pytest.approx(0.8, rel=1e-12)
    assert (
        compute_reward_breakdown(
            pnl_pct=-1, duration_mins=2880, max_drawdown_pct=0, confidence=0.5
        ).duration_penalty
        == 0.0
    )


def test_drawdown_penalty_hand_computed() -> None:
    assert reward(-1.0, dd=2.0) == pytest.approx(-1.0)  # not *more* than 2%
    assert reward(-1.0, dd=2.01) == pytest.approx(-1.2)
    assert reward(1.0, dur=1440, dd=3.0) == pytest.approx(1.0 - 0.2 - 0.2)


def test_confidence_penalty_hand_computed() -> None:
    assert reward(-1.0, conf=0.80) == pytest.approx(-1.0)  # strictly above 0.80
    assert reward(-1.0, conf=0.81) == pytest.approx(-1.5)
    assert reward(-1.0, dd=3.0, conf=0.9) == pytest.approx(-1.7)
    b = compute_reward_breakdown(pnl_pct=0.5, duration_mins=60, max_drawdown_pct=0, confidence=0.99)
    assert b.confidence_penalty == 0.0  # winners are never penalised for confidence


def test_sharpe_bonus_hand_computed() -> None:
    assert trade_sharpe(2.0, 240.0) == pytest.approx(1.0)
    assert (
        compute_reward_breakdown(
            pnl_pct=2.0, duration_mins=240, max_drawdown_pct=0, confidence=0.5
        ).sharpe_bonus
        == 0.0
    )
    b = compute_reward_breakdown(pnl_pct=2.1, duration_mins=240, max_drawdown_pct=0, confidence=0.5)
    assert b.sharpe_contribution == pytest.approx(1.05)
    assert b.sharpe_bonus == pytest.approx(0.42)
    assert b.duration_penalty == pytest.approx(2.1 * 0.2 * 240 / 1440)
    assert b.reward == pytest.approx(2.1 - 0.07 + 0.42)


def test_sharpe_duration_floor() -> None:
    assert trade_sharpe(1.0, 0.0) == pytest.approx(2.0)  # 1 / sqrt(15/60)
    assert trade_sharpe(1.0, 1e-12) == trade_sharpe(1.0, 15.0)
    assert math.isfinite(reward(5.0, dur=0.0))


def test_plan_multiplier_bug_is_absent() -> None:
    # the sketch's reward *= 0.8 on a -1 loss gives -0.8 (raised); ours lowers it
    assert reward(-1.0, dd=3.0) < reward(-1.0, dd=1.0)
    assert reward(-1.0, conf=0.95) < reward(-1.0, conf=0.5)


pnl_s = st.floats(-50, 50, allow_nan=False)
dur_s = st.floats(0, 10_000, allow_nan=False)
dd_s = st.floats(0, 30, allow_nan=False)
conf_s = st.floats(0, 1, allow_nan=False)
params_s = st.builds(
    RewardParams,
    pnl_scale=st.floats(0.01, 100),
    duration_penalty_max=st.floats(0, 0.49),
    drawdown_penalty=st.floats(0, 0.49),
    confidence_penalty=st.floats(0, 5),
    sharpe_bonus=st.floats(0, 5),
    min_duration_mins=st.floats(0.1, 120),
)


@settings(max_examples=300, deadline=None)
@given(pnl=pnl_s, dur=dur_s, dd=dd_s, conf=conf_s, params=params_s)
def test_penalty_never_raises_bonus_never_lowers(
    pnl: float, dur: float, dd: float, conf: float, params: RewardParams
) -> None:
    r = reward(pnl, dur, dd, conf, params)
    for name in ("duration_penalty_max", "drawdown_penalty", "confidence_penalty"):
        without = reward(pnl, dur, dd, conf, dataclasses.replace(params, **{name: 0.0}))
        assert r <= without + 1e-12 * max(1.0, abs(without)), name
    no_bonus = reward(pnl, dur, dd, conf, dataclasses.replace(params, sharpe_bonus=0.0))
    assert r >= no_bonus - 1e-12 * max(1.0, abs(no_bonus))
    b = compute_reward_breakdown(
        pnl_pct=pnl, duration_mins=dur, max_drawdown_pct=dd, confidence=conf, params=params
    )
    assert min(b.duration_penalty, b.drawdown_penalty, b.confidence_penalty, b.sharpe_bonus) >= 0.0
    assert b.sharpe_contribution == trade_sharpe(pnl, dur, params=params)  # the documented term, exactly
    assert type(b).__name__ == "RewardBreakdown" and b._fields[-1] == "reward"
    assert b.reward == pytest.approx(r, rel=1e-12, abs=1e-12)
    assert b.reward == pytest.approx(
        b.base - b.duration_penalty - b.drawdown_penalty - b.confidence_penalty + b.sharpe_bonus,
        rel=1e-12,
        abs=1e-12,
    )


@settings(max_examples=300, deadline=None)
@given(pnl=pnl_s, dur=dur_s, dd=dd_s, conf=conf_s, params=params_s)
def test_crossing_a_threshold_never_helps(
    pnl: float, dur: float, dd: float, conf: float, params: RewardParams
) -> None:
    assert reward(pnl, dur, max(dd, 2.5), conf, params) <= reward(pnl, dur, min(dd, 1.5), conf, params)
    assert reward(pnl, dur, dd, max(conf, 0.9), params) <= reward(pnl, dur, dd, min(conf, 0.7), params)


@settings(max_examples=500, deadline=None)
@given(a=pnl_s, b=pnl_s, dur=dur_s, dd=dd_s, conf=conf_s, params=params_s)
def test_monotone_in_pnl(
    a: float, b: float, dur: float, dd: float, conf: float, params: RewardParams
) -> None:
    lo, hi = min(a, b), max(a, b)
    assert reward(lo, dur, dd, conf, params) <= reward(hi, dur, dd, conf, params) + 1e-12


@given(dur=st.floats(0, 1e-3), pnl=pnl_s)
def test_sharpe_bounded_near_zero_duration(dur: float, pnl: float) -> None:
    assert abs(trade_sharpe(pnl, dur)) <= 2 * abs(pnl) + 1e-12


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"pnl_pct": math.nan}, "pnl_pct"),
        ({"duration_mins": -1.0}, "duration_mins"),
        ({"max_drawdown_pct": -0.1}, "max_drawdown_pct"),
        ({"confidence": 1.5}, "confidence"),
        ({"pnl_pct": math.inf}, "pnl_pct"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict[str, float], name: str) -> None:
    args = {"pnl_pct": 1.0, "duration_mins": 10.0, "max_drawdown_pct": 0.0, "confidence": 0.5, **kwargs}
    with pytest.raises(ValueError, match=f"'{name}' argument of compute_reward"):
        compute_reward(**args)
    with pytest.raises(ValueError, match=f"'{name}'"):
        compute_reward_breakdown(**args)


def test_bad_params() -> None:
    with pytest.raises(ValueError, match="'drawdown_penalty'"):
        RewardParams(drawdown_penalty=-0.1)
    with pytest.raises(ValueError, match="duration_penalty_max \\+ drawdown_penalty < 1"):
        RewardParams(duration_penalty_max=0.6, drawdown_penalty=0.5)
    with pytest.raises(ValueError, match="'min_duration_mins'"):
        RewardParams(min_duration_mins=0.0)


def test_integers_and_bounds_are_accepted() -> None:
    """The one-test fast path takes finite floats; ints and exact bounds take the slow path, same answer."""
    assert compute_reward(pnl_pct=2, duration_mins=0, max_drawdown_pct=0, confidence=1) == compute_reward(
        pnl_pct=2.0, duration_mins=0.0, max_drawdown_pct=0.0, confidence=1.0
    )
    b = compute_reward_breakdown(pnl_pct=-1, duration_mins=30, max_drawdown_pct=3, confidence=1)
    assert b == compute_reward_breakdown(
        pnl_pct=-1.0, duration_mins=30.0, max_drawdown_pct=3.0, confidence=1.0
    )
    with pytest.raises(ValueError, match="'confidence' argument"):
        compute_reward_breakdown(pnl_pct=1.0, duration_mins=1.0, max_drawdown_pct=0.0, confidence=True + 1.0)
