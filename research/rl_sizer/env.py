"""``SizingEnv``: choose a multiplier on the Kelly size of each proposed trade.

Pure computation (DESIGN.md layer 2): arrays in, numbers out; no files, no clock.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium import spaces

from research.rl_sizer.config import PilotConfig
from research.rl_sizer.signals import TradeSet, synthetic_trades, trades_for

LN2 = math.log(2.0)
MIN_MULTIPLIER = 0.5
MAX_MULTIPLIER = 2.0
OBS_NAMES = ("confidence", "volatility", "regime", "exposure", "drawdown")


def multiplier_from_action(a: float) -> float:
    """Map a normalized action in [-1, 1] to a multiplier ``2**a`` in [0.5, 2.0] (clipped).

    The map is symmetric in log space: ``a = 0`` is Kelly (1.0), ``a = -1`` half, ``a = +1``
    double, so a zero-mean Gaussian policy starts at Kelly and halving costs as much action as
    doubling.

    >>> multiplier_from_action(0.0), multiplier_from_action(-1.0), multiplier_from_action(7.0)
    (1.0, 0.5, 2.0)
    """
    a = -1.0 if a < -1.0 else (1.0 if a > 1.0 else a)
    return math.exp(a * LN2)


def action_from_multiplier(m: float | np.ndarray) -> np.ndarray:
    """Inverse of :func:`multiplier_from_action` (multipliers outside [0.5, 2] are clipped first)."""
    m_arr = np.clip(np.asarray(m, dtype=np.float64), MIN_MULTIPLIER, MAX_MULTIPLIER)
    return np.log2(m_arr).astype(np.float32)


def kelly_fraction(p: np.ndarray | float, payoff_ratio: float = 1.0) -> np.ndarray:
    """Kelly's fraction of equity to stake on a bet won with probability ``p`` at odds ``b``.

    ``f* = (p (b + 1) - 1) / b`` maximises the expected log growth ``p log(1 + b f) +
    (1 - p) log(1 - f)`` (Kelly 1956; Thorp 2006, eq. 2.2); negative values become 0 (no bet).

    >>> [round(float(kelly_fraction(p, b)), 6) for p, b in ((0.6, 1.0), (0.6, 2.0), (0.4, 1.0))]
    [0.2, 0.4, 0.0]
    """
    p_arr = np.asarray(p, dtype=np.float64)
    return np.maximum(0.0, (p_arr * (payoff_ratio + 1.0) - 1.0) / payoff_ratio)


class SizingEnv(gym.Env[np.ndarray, np.ndarray]):
    """Size each proposed trade as a multiplier on its Kelly stake; the account is path dependent.

    Each step is one trade proposed by the signal source (:mod:`research.rl_sizer.signals`),
    in entry-time order. The base stake is ``kelly_fraction * f*(confidence)`` of equity at risk
    (:func:`kelly_fraction`); the action scales it by a multiplier ``m`` in [0.5, 2]. The stake
    ``s = m * base`` becomes a notional of ``s / d`` (``d``: the trade's stop distance), capped at
    ``max_position_leverage`` x equity and at what is left under ``max_gross_leverage`` given the
    positions still open. The trade's account return is
    ``notional * (outcome_r * d - 2 * cost_bps / 1e4)`` (as a fraction of equity); it is booked
    into equity when the trade exits, so exposure and drawdown (and the next sizes, which are a
    fraction of equity) depend on earlier actions.

    Parameters
    ----------
    trades
        A fixed :class:`TradeSet` (episodes are windows of it).
    bars
        Price bars (``infra.loaders.load_bars`` format); trades come from
        :func:`~research.rl_sizer.signals.trades_for` (``config.signal`` picks the model or
        momentum source). Ignored when ``trades`` is given.
    config
        :class:`~research.rl_sizer.config.PilotConfig` (sizing, caps, costs, episode length, reward).
    terminate_on_drawdown
        Whether ``config.drawdown_stop`` ends the episode (evaluation switches it off so that all
        sizers trade identical trades).

    With neither ``trades`` nor ``bars`` the env draws ``episode_length`` fresh synthetic trades
    at every reset (:func:`~research.rl_sizer.signals.synthetic_trades`).

    Spaces
    ------
    Observation: ``Box(5,)`` float32, at the entry of the trade to size:

    ====  ===========  ==========  ==============================================================
    idx   name         range       meaning
    ====  ===========  ==========  ==============================================================
    0     confidence   [0, 1]      the signal's claimed win probability
    1     volatility   [0, inf)    annualized volatility known at entry
    2     regime       [0, R-1]    regime label known at entry
    3     exposure     [0, G]      notional of open positions / equity (G = max_gross_leverage)
    4     drawdown     [0, 1]      1 - equity / peak equity (realized)
    ====  ===========  ==========  ==============================================================

    Nothing else is added: the Kelly base size is a function of the confidence, and the trade's
    stop distance is ``barrier_k * sigma * sqrt(horizon)``, i.e. carried by the volatility.

    Action: ``Box(-1, 1, (1,))`` float32, mapped to ``m = 2**a`` (:func:`multiplier_from_action`);
    values outside [-1, 1] are clipped. :class:`DiscreteSizingWrapper` exposes a grid for DQN.

    Reward
    ------
    ``'log_growth'`` (default): ``log(1 + account return of this trade)``. Kelly sizing maximises
    the expected logarithm of wealth (Kelly 1956), so this reward makes Kelly the optimum when the
    signal is calibrated, and punishes over-betting (the log is concave) where raw PnL would
    teach maximum leverage. The outcome is credited to the action that caused it (it is known
    once the trade exits); summed over an episode it equals ``log(final / initial equity)``
    when trades do not overlap and differs from it only by the interaction of overlapping
    trades otherwise.

    ``'calculator'``: :func:`execution.reward_calculator.compute_reward` with ``pnl_pct`` the
    *account-level* return of the trade in percent (so the multiplier changes it),
    ``duration_mins`` the holding time, ``max_drawdown_pct`` the trade's adverse excursion
    times its leverage, and the trade's confidence.

    Episode end
    -----------
    Terminated when realized drawdown reaches ``config.drawdown_stop`` (if
    ``terminate_on_drawdown``) or equity falls to 1% of its start (with the drawdown stop off only
    when equity reaches 0, so evaluation series have equal length). Truncated after the last trade
    of the episode (``episode_length`` trades, or the rest of the trade set).

    ``info`` carries ``multiplier``, ``account_return``, ``equity`` (realized), ``trade_index``.

    Examples
    --------
    >>> env = SizingEnv()
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, obs.dtype
    ((5,), dtype('float32'))
    >>> obs, r, terminated, truncated, info = env.step(np.zeros(1, dtype=np.float32))
    >>> info["multiplier"]
    1.0
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium convention

    def __init__(
        self,
        *,
        trades: TradeSet | None = None,
        bars: pd.DataFrame | None = None,
        config: PilotConfig | None = None,
        terminate_on_drawdown: bool = True,
    ) -> None:
        super().__init__()
        self.config = cfg = config or PilotConfig()
        if trades is None and bars is not None:
            trades = trades_for(bars, cfg)
        if trades is not None and len(trades) < 1:
            raise ValueError(
                "The 'trades' parameter of SizingEnv must hold at least one trade. Got 0 instead."
            )
        self.trades = trades
        self.terminate_on_drawdown = terminate_on_drawdown
        self.n_regimes = trades.n_regimes if trades is not None else 3
        self.observation_space = spaces.Box(
            low=np.zeros(5, dtype=np.float32),
            high=np.array([1.0, np.inf, self.n_regimes - 1, cfg.max_gross_leverage, 1.0], dtype=np.float32),
            dtype=np.float32,
        )
        self.action_space = spaces.Box(low=-1.0, high=1.0, shape=(1,), dtype=np.float32)
        self._reward_fn: Callable[..., float] | None = None
        if cfg.reward == "calculator":
            from execution.reward_calculator import compute_reward  # lazy: optional dependency

            self._reward_fn = compute_reward
        self._cost = 2.0 * cfg.cost_bps / 1e4
        self._max_gross = cfg.max_gross_leverage
        self._max_pos = cfg.max_position_leverage
        self._dd_stop = cfg.drawdown_stop if terminate_on_drawdown else math.inf
        self._floor = 0.01 if terminate_on_drawdown else 0.0
        self._episode: TradeSet | None = None
        self._n = 0
        self._i = 0

    # ------------------------------------------------------------------ episode setup
    def _episode_trades(self, options: dict[str, Any] | None) -> TradeSet:
        opts = options or {}
        length = opts.get("length", self.config.episode_length)
        if self.trades is None:
            return synthetic_trades(int(length), rng=self.np_random)
        n = len(self.trades)
        if length is None or length >= n:
            return self.trades
        if "start" in opts:
            start = int(opts["start"])
            if not 0 <= start < n:
                raise ValueError(f"reset option 'start' must be in [0, {n}). Got {start!r} instead.")
        else:
            start = int(self.np_random.integers(0, n - int(length) + 1))
        return self.trades.take(slice(start, start + int(length)))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode. ``options``: ``length`` (trades; ``None`` = all) and ``start`` (index)."""
        super().reset(seed=seed)
        ep = self._episode_trades(options)
        self._episode = ep
        cfg = self.config
        base = cfg.kelly_fraction * kelly_fraction(ep.confidence, cfg.payoff_ratio)
        # everything step() needs, as Python lists: scalar indexing of lists is the fastest path
        self._conf = ep.confidence.astype(np.float32).tolist()
        self._vol = ep.volatility.astype(np.float32).tolist()
        self._reg = ep.regime.astype(np.float32).tolist()
        self._base = base.tolist()
        self._d = ep.barrier.tolist()
        self._move = (ep.outcome_r * ep.barrier - self._cost).tolist()  # per unit notional, net of costs
        self._entry = ep.entry_ns.tolist()
        self._exit = ep.exit_ns.tolist()
        self._mae = ep.mae_pct.tolist()
        self._hold_min = ((ep.exit_ns - ep.entry_ns) / 6e10).tolist()
        self._n = len(ep)
        self._i = 0
        self._equity = 1.0
        self._peak = 1.0
        self._open_notional = 0.0
        self._open: list[tuple[int, int, float, float]] = []  # (exit_ns, seq, notional, pnl)
        return self._obs(0), {"trade_index": 0, "equity": 1.0}

    def _obs(self, i: int) -> np.ndarray:
        exposure = self._open_notional / self._equity if self._equity > 0 else 0.0
        # open notional is a running sum of non-negative notionals: clamp its float residue at 0
        exposure = min(max(exposure, 0.0), self.config.max_gross_leverage)
        dd = 1.0 - self._equity / self._peak
        return np.array(
            [self._conf[i], self._vol[i], self._reg[i], exposure, min(max(dd, 0.0), 1.0)], dtype=np.float32
        )

    def _realize_until(self, t: int) -> None:
        """Book every open trade that exits at or before time ``t``."""
        heap = self._open
        while heap and heap[0][0] <= t:
            _, _, notional, pnl = heapq.heappop(heap)
            self._equity += pnl
            self._open_notional -= notional
            if self._equity > self._peak:
                self._peak = self._equity
        if not heap:
            self._open_notional = 0.0  # no float residue once flat

    # ------------------------------------------------------------------ step
    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Size the current trade, advance to the next one (see the class docstring)."""
        i = self._i
        if i >= self._n:
            raise RuntimeError("SizingEnv.step() needs reset() first (no episode, or the episode ended).")
        a = (
            action.item()
            if isinstance(action, np.ndarray) and action.size == 1
            else float(np.ravel(action)[0])
        )
        if not -1.0 <= a <= 1.0:  # scalar math only below: this is the hot path
            if a != a:
                raise ValueError(
                    f"The 'action' of SizingEnv.step must be a finite number. Got {a!r} instead."
                )
            a = -1.0 if a < -1.0 else 1.0
        m = math.exp(a * LN2)
        equity = self._equity
        room = self._max_gross - self._open_notional / equity
        lev = m * self._base[i] / self._d[i]
        if lev > self._max_pos:
            lev = self._max_pos
        if lev > room:
            lev = room if room > 0.0 else 0.0
        ret = lev * self._move[i]
        if ret < -0.99:
            ret = -0.99
        if lev > 0.0:
            heapq.heappush(self._open, (self._exit[i], i, lev * equity, ret * equity))
            self._open_notional += lev * equity
        if self._reward_fn is None:
            reward = math.log1p(ret)
        else:
            reward = float(
                self._reward_fn(
                    pnl_pct=ret * 100.0,
                    duration_mins=self._hold_min[i],
                    max_drawdown_pct=lev * self._mae[i],
                    confidence=self._conf[i],
                )
            )
        j = i + 1
        self._i = j
        truncated = j >= self._n
        heap = self._open
        t_next = 2**62 if truncated else self._entry[j]
        if heap and heap[0][0] <= t_next:
            self._realize_until(t_next)
        equity = self._equity
        dd = 1.0 - equity / self._peak
        # with the drawdown stop off (evaluation) only a wiped-out account ends the episode, so the
        # compared series have equal length; 1% of the start equity ends a training episode
        terminated = equity <= self._floor or dd >= self._dd_stop
        obs = self._obs(i if truncated else j)
        info = {"multiplier": m, "account_return": ret, "equity": equity, "trade_index": i}
        return obs, reward, terminated, truncated and not terminated, info

    # ------------------------------------------------------------------ helpers
    @property
    def episode_trades(self) -> TradeSet | None:
        """The trades of the current episode (after :meth:`reset`)."""
        return self._episode


class DiscreteSizingWrapper(gym.ActionWrapper[np.ndarray, np.int64, np.ndarray]):
    """A ``Discrete(n)`` grid of multipliers ``2**linspace(-1, 1, n)`` for value-based agents (DQN).

    ``n`` is odd, so the middle action is Kelly (multiplier 1).

    >>> w = DiscreteSizingWrapper(SizingEnv(), n=5)
    >>> [round(multiplier_from_action(float(w.action(k)[0])), 3) for k in range(5)]
    [0.5, 0.707, 1.0, 1.414, 2.0]
    """

    def __init__(self, env: gym.Env[np.ndarray, np.ndarray], n: int = 9) -> None:
        super().__init__(env)
        if not (isinstance(n, int) and n >= 3 and n % 2 == 1):
            raise ValueError(
                f"The 'n' parameter of DiscreteSizingWrapper must be an odd int >= 3. Got {n!r} instead."
            )
        self.grid = np.linspace(-1.0, 1.0, n).astype(np.float32)
        self.action_space = spaces.Discrete(n)

    def action(self, action: np.int64 | int) -> np.ndarray:
        """Grid index -> normalized Box action."""
        return self.grid[int(action)].reshape(1)
