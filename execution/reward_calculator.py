"""Reward for one closed trade, as the RL sizer learns it.

The reward starts from the trade's PnL in percent of its size, scaled (``base``), and then
applies the plan's components:

========================  =========================================================================
component                 amount (every amount is >= 0; penalties are subtracted, the bonus added)
========================  =========================================================================
duration penalty          winners only (``base > 0``): ``|base| * duration_penalty_max *
                          min(duration_mins / duration_full_mins, 1)`` -- up to 20% after a day
drawdown penalty          ``|base| * drawdown_penalty`` when ``max_drawdown_pct >
                          drawdown_threshold_pct`` (the trade went more than 2% against entry)
confidence penalty        losses only (``base < 0``) taken at ``confidence > confidence_threshold``
                          (0.80): ``|base| * confidence_penalty``
Sharpe bonus              ``|base| * sharpe_bonus`` when the trade's Sharpe contribution
                          exceeds ``sharpe_threshold`` (1.0)
========================  =========================================================================

``reward = base - duration - drawdown - confidence + sharpe``.

Why subtraction of non-negative amounts
    The plan's sketch multiplies the reward by 0.8 (drawdown) and 0.5 (confidence). On a
    *negative* reward that multiplication moves it towards zero, i.e. the "penalty" *raises* the
    reward of a bad trade. Writing every penalty as ``-(fraction * |base|)`` and the bonus as
    ``+(fraction * |base|)`` gives the two laws for every sign: a penalty never raises a reward
    and a bonus never lowers it. For winners the result equals the plan's multiplicative form
    (``base * (1 - fraction)``); for losers it is its mirror image (``base * (1 + fraction)``).

Sharpe contribution and its duration floor
    A single trade has no return series, so its Sharpe contribution is the z-score of its return
    against a random walk of reference volatility ``sharpe_ref_vol_pct`` (percent per
    square-root hour) over the holding time:
    ``pnl_pct / (sharpe_ref_vol_pct * sqrt(max(duration_mins, min_duration_mins) / 60))``.
    Without the floor a trade closed after a few seconds would get an unbounded ratio; with
    ``min_duration_mins = 15`` the ratio is at most ``2 * |pnl_pct| / sharpe_ref_vol_pct``.

Monotonicity in PnL
    For ``pnl_pct > 0`` the reward is ``base * (1 - d - w [+ b])`` with ``d + w < 1`` (enforced by
    :class:`RewardParams`); for ``pnl_pct < 0`` it is ``base * (1 + w + c)``; both factors are
    positive, the bonus only switches on as PnL grows, so the reward is non-decreasing in PnL.

The thresholds come from the plan (2% drawdown, 0.80 confidence, Sharpe 1.0, 20% after a day);
the penalty sizes 0.2 and 0.5 are the plan's multipliers 0.8 and 0.5 read as fractions of
``|base|``; the bonus size 0.2 and the Sharpe reference volatility are this module's choices.

Examples
--------
>>> compute_reward(pnl_pct=2.0, duration_mins=720.0, max_drawdown_pct=0.5, confidence=0.6)
1.8
>>> compute_reward(pnl_pct=-2.0, duration_mins=60.0, max_drawdown_pct=3.0, confidence=0.9)
-3.4
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "DEFAULT_REWARD_PARAMS",
    "RewardBreakdown",
    "RewardParams",
    "compute_reward",
    "compute_reward_breakdown",
    "trade_sharpe",
]


def _check_fraction(name: str, value: float, *, upper: float = 1.0) -> None:
    if not (isinstance(value, (int, float)) and 0.0 <= value < upper):
        raise ValueError(
            f"The '{name}' parameter of RewardParams must be in [0, {upper}). Got {value!r} instead."
        )


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(
            f"The '{name}' parameter of RewardParams must be a finite number > 0. Got {value!r} instead."
        )


@dataclass(frozen=True, kw_only=True)
class RewardParams:
    """Thresholds and sizes of the reward components (plan defaults)."""

    pnl_scale: float = 1.0
    """Reward units per percent of PnL."""
    duration_penalty_max: float = 0.20
    """Largest duration penalty on a winner, as a fraction of ``|base|`` (20%)."""
    duration_full_mins: float = 1440.0
    """Holding time at which the duration penalty reaches its maximum (one day), minutes."""
    drawdown_threshold_pct: float = 2.0
    """Worst excursion against entry, in percent, above which the drawdown penalty applies."""
    drawdown_penalty: float = 0.20
    """Drawdown penalty as a fraction of ``|base|`` (the plan's x0.8)."""
    confidence_threshold: float = 0.80
    """Model confidence above which a loss is penalised."""
    confidence_penalty: float = 0.50
    """Confidence-alignment penalty as a fraction of ``|base|`` (the plan's x0.5)."""
    sharpe_threshold: float = 1.0
    """Sharpe contribution above which the bonus applies."""
    sharpe_bonus: float = 0.20
    """Sharpe bonus as a fraction of ``|base|``."""
    sharpe_ref_vol_pct: float = 1.0
    """Reference volatility of the Sharpe z-score, percent per square-root hour."""
    min_duration_mins: float = 15.0
    """Floor on the holding time used by the Sharpe term, minutes (keeps it bounded)."""

    def __post_init__(self) -> None:
        _check_positive("pnl_scale", self.pnl_scale)
        _check_fraction("duration_penalty_max", self.duration_penalty_max)
        _check_positive("duration_full_mins", self.duration_full_mins)
        _check_fraction("drawdown_penalty", self.drawdown_penalty)
        _check_fraction("confidence_penalty", self.confidence_penalty, upper=math.inf)
        _check_fraction("sharpe_bonus", self.sharpe_bonus, upper=math.inf)
        _check_positive("sharpe_ref_vol_pct", self.sharpe_ref_vol_pct)
        _check_positive("min_duration_mins", self.min_duration_mins)
        for name in ("drawdown_threshold_pct", "confidence_threshold", "sharpe_threshold"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ValueError(
                    f"The '{name}' parameter of RewardParams must be finite. Got {value!r} instead."
                )
        if self.duration_penalty_max + self.drawdown_penalty >= 1.0:
            raise ValueError(
                "RewardParams needs duration_penalty_max + drawdown_penalty < 1 so that a winner keeps a "
                f"positive reward (monotone in PnL). Got {self.duration_penalty_max} + {self.drawdown_penalty}."
            )


DEFAULT_REWARD_PARAMS = RewardParams()


class RewardBreakdown(NamedTuple):
    """Each component of one reward; ``reward = base - penalties + sharpe_bonus``."""

    base: float
    duration_penalty: float
    drawdown_penalty: float
    confidence_penalty: float
    sharpe_bonus: float
    sharpe_contribution: float
    reward: float

    def as_dict(self) -> dict[str, float]:
        return self._asdict()


def _check(pnl_pct: float, duration_mins: float, max_drawdown_pct: float, confidence: float) -> None:
    """Raise for the first argument that is not a finite number in its range."""
    _require("pnl_pct", pnl_pct)
    _require("duration_mins", duration_mins, lo=0.0)
    _require("max_drawdown_pct", max_drawdown_pct, lo=0.0)
    _require("confidence", confidence, lo=0.0, hi=1.0)


def _require(name: str, value: float, *, lo: float = -math.inf, hi: float = math.inf) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
        bounds = "a finite number" if lo == -math.inf else f"a finite number in [{lo}, {hi}]"
        raise ValueError(f"The '{name}' argument of compute_reward must be {bounds}. Got {value!r} instead.")


def trade_sharpe(
    pnl_pct: float, duration_mins: float, *, params: RewardParams = DEFAULT_REWARD_PARAMS
) -> float:
    """Sharpe contribution of one trade: its return as a z-score over the floored holding time.

    ``pnl_pct / (sharpe_ref_vol_pct * sqrt(max(duration_mins, min_duration_mins) / 60))``.

    Examples
    --------
    >>> trade_sharpe(2.0, 240.0)   # 2% in 4 hours at 1%/sqrt(h): 2 / (1 * 2)
    1.0
    >>> trade_sharpe(1.0, 0.001)   # floored at 15 minutes: 1 / sqrt(0.25)
    2.0
    """
    hours = max(duration_mins, params.min_duration_mins) / 60.0
    return pnl_pct / (params.sharpe_ref_vol_pct * math.sqrt(hours))


def compute_reward_breakdown(
    *,
    pnl_pct: float,
    duration_mins: float,
    max_drawdown_pct: float,
    confidence: float,
    params: RewardParams = DEFAULT_REWARD_PARAMS,
) -> RewardBreakdown:
    """Reward of one closed trade with every component (see the module docstring).

    Parameters
    ----------
    pnl_pct : float
        Realised PnL in percent of the position size (``2.0`` means +2%).
    duration_mins : float
        Holding time in minutes (>= 0), from the event timestamps.
    max_drawdown_pct : float
        Worst excursion against entry in percent (>= 0).
    confidence : float
        The model's confidence in [0, 1].
    params : RewardParams
        Thresholds and sizes; the plan's values by default.

    Returns
    -------
    RewardBreakdown

    Examples
    --------
    >>> b = compute_reward_breakdown(pnl_pct=-1.0, duration_mins=30, max_drawdown_pct=2.5, confidence=0.9)
    >>> (b.base, b.drawdown_penalty, b.confidence_penalty, b.reward)
    (-1.0, 0.2, 0.5, -1.7)
    """
    _check(pnl_pct, duration_mins, max_drawdown_pct, confidence)
    p = params
    base = pnl_pct * p.pnl_scale
    size = abs(base)
    duration = 0.0
    if base > 0:
        duration = size * p.duration_penalty_max * min(duration_mins / p.duration_full_mins, 1.0)
    drawdown = size * p.drawdown_penalty if max_drawdown_pct > p.drawdown_threshold_pct else 0.0
    conf = size * p.confidence_penalty if (base < 0 and confidence > p.confidence_threshold) else 0.0
    sharpe = trade_sharpe(pnl_pct, duration_mins, params=p)
    bonus = size * p.sharpe_bonus if sharpe > p.sharpe_threshold else 0.0
    reward = base - duration - drawdown - conf + bonus
    return RewardBreakdown(base, duration, drawdown, conf, bonus, sharpe, reward)


def compute_reward(
    *,
    pnl_pct: float,
    duration_mins: float,
    max_drawdown_pct: float,
    confidence: float,
    params: RewardParams = DEFAULT_REWARD_PARAMS,
) -> float:
    """Reward of one closed trade (the ``reward`` of :func:`compute_reward_breakdown`).

    Same arguments and errors as :func:`compute_reward_breakdown`.

    Examples
    --------
    >>> compute_reward(pnl_pct=1.0, duration_mins=60.0, max_drawdown_pct=0.0, confidence=0.5)
    0.9916666666666667
    """
    return compute_reward_breakdown(
        pnl_pct=pnl_pct,
        duration_mins=duration_mins,
        max_drawdown_pct=max_drawdown_pct,
        confidence=confidence,
        params=params,
    ).reward
