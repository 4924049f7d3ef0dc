"""Run one episode of a sizer on a :class:`SizingEnv` and summarise it.

The per-trade *account returns* ``r_t`` (PnL of trade ``t`` over equity at its entry) are the
series every metric is computed from: Sharpe (:func:`execution.metrics_normalizer.sharpe_ratio`
annualized with the trade set's trades per year), log growth ``sum(log(1 + r_t))`` and maximum
drawdown (:func:`execution.metrics_normalizer.max_drawdown`, a negative fraction).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from execution.metrics_normalizer import max_drawdown, sharpe_ratio
from research.rl_sizer.env import SizingEnv

if TYPE_CHECKING:
    from research.rl_sizer.agents import Sizer


@dataclass(frozen=True)
class EpisodeResult:
    """One episode: per-trade account returns, multipliers, rewards, and its summary."""

    returns: np.ndarray
    multipliers: np.ndarray
    rewards: np.ndarray
    terminated: bool
    periods_per_year: float
    window: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, float]:
        """reward (sum), sharpe, log_growth, max_drawdown, mean_multiplier, trades, final_equity."""
        return summarize(self.returns, self.multipliers, self.rewards, self.periods_per_year)


def summarize(
    returns: np.ndarray, multipliers: np.ndarray, rewards: np.ndarray, periods_per_year: float
) -> dict[str, float]:
    """Metrics of one series of per-trade account returns (see the module docstring)."""
    r = np.asarray(returns, dtype=np.float64)
    return {
        "reward": float(np.sum(rewards)),
        "sharpe": float(sharpe_ratio(r, periods_per_year=periods_per_year)) if len(r) >= 2 else float("nan"),
        "log_growth": float(np.sum(np.log1p(r))),
        "max_drawdown": float(max_drawdown(r)) if len(r) else float("nan"),
        "mean_multiplier": float(np.mean(multipliers)) if len(multipliers) else float("nan"),
        "trades": float(len(r)),
        "final_equity": float(np.prod(1.0 + r)),
    }


def run_episode(
    env: SizingEnv,
    sizer: Sizer,
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    deterministic: bool = True,
) -> EpisodeResult:
    """Roll ``sizer`` through one episode of ``env`` (reset with ``seed`` and ``options``)."""
    obs, _ = env.reset(seed=seed, options=options)
    rets: list[float] = []
    mults: list[float] = []
    rews: list[float] = []
    terminated = False
    while True:
        action = sizer.act(obs, deterministic=deterministic)
        obs, reward, terminated, truncated, info = env.step(action)
        rets.append(info["account_return"])
        mults.append(info["multiplier"])
        rews.append(float(reward))
        if terminated or truncated:
            break
    ep = env.episode_trades
    ppy = ep.periods_per_year if ep is not None else 8760.0
    window = ep.take(slice(0, len(rets))).window() if ep is not None else {}
    return EpisodeResult(np.asarray(rets), np.asarray(mults), np.asarray(rews), terminated, ppy, window)
