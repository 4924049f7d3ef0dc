"""Sizers behind one interface: PPO and DQN (stable-baselines3), static Kelly, calibrated-Kelly table.

Every sizer maps a :class:`~research.rl_sizer.env.SizingEnv` observation to the env's normalized
Box action (``a`` in [-1, 1], multiplier ``2**a``), so all four are evaluated on the same env:

* ``learn(env, total_timesteps)`` fits the sizer and returns ``self``;
* ``act(obs, deterministic=True)`` returns the action(s), shape ``(1,)`` or ``(n, 1)``;
* ``save(path)`` writes it and returns the path; ``load_sizer(path)`` reads any of them back.

torch and stable-baselines3 are imported inside the SB3 sizer only, so importing this module is
cheap for the baselines.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Literal

import numpy as np

from infra.artifacts import atomic_write_text
from infra.validate import check_choice
from research.rl_sizer.config import PilotConfig
from research.rl_sizer.env import (
    MAX_MULTIPLIER,
    MIN_MULTIPLIER,
    DiscreteSizingWrapper,
    SizingEnv,
    action_from_multiplier,
    kelly_fraction,
)
from research.rl_sizer.signals import TradeSet, synthetic_trades

AgentName = Literal["ppo", "dqn", "kelly", "table"]
AGENTS: tuple[AgentName, ...] = ("ppo", "dqn", "kelly", "table")
TABLE_SYNTHETIC_TRADES = 20_000


class Sizer(ABC):
    """The interface shared by all sizers (see the module docstring)."""

    name: str = "sizer"

    def __init__(self, config: PilotConfig | None = None, *, seed: int = 0) -> None:
        self.config = config or PilotConfig()
        self.seed = seed

    @abstractmethod
    def learn(self, env: SizingEnv, total_timesteps: int = 0) -> Sizer:
        """Fit on ``env`` and return ``self``."""

    @abstractmethod
    def act(self, obs: np.ndarray, *, deterministic: bool = True) -> np.ndarray:
        """Normalized action(s) in [-1, 1] for one observation ``(5,)`` or a batch ``(n, 5)``."""

    @abstractmethod
    def save(self, path: str | Path) -> Path:
        """Write the sizer to ``path`` (a directory) and return it."""

    def _write_meta(self, path: Path, extra: dict[str, Any]) -> None:
        path.mkdir(parents=True, exist_ok=True)
        meta = {"kind": self.name, "seed": self.seed, "config": self.config.__dict__, **extra}
        atomic_write_text(path / "sizer.json", json.dumps(meta, indent=1, sort_keys=True))


def _shape_actions(a: np.ndarray, obs: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32).reshape(-1, 1)
    return a[0] if np.ndim(obs) == 1 else a


class KellySizer(Sizer):
    """Static Kelly: multiplier 1 on every trade (action 0)."""

    name = "kelly"

    def learn(self, env: SizingEnv, total_timesteps: int = 0) -> KellySizer:
        return self

    def act(self, obs: np.ndarray, *, deterministic: bool = True) -> np.ndarray:
        n = 1 if np.ndim(obs) == 1 else len(obs)
        return _shape_actions(np.zeros(n), obs)

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        self._write_meta(p, {})
        return p


class TableSizer(Sizer):
    """Calibrated Kelly: Kelly on the win rate observed per (confidence bucket, regime) cell.

    Fitting (on the training trades): confidence buckets are quantiles of the training
    confidences; in each cell with ``n`` trades, ``w`` wins (``outcome_r > 0``) and mean claimed
    confidence ``pbar``, the calibrated win rate is the posterior mean under a Beta prior centred
    on the claim, ``q = (w + k pbar) / (n + k)`` (``k = table_prior_strength``), so a thin cell
    trusts the claim. A trade with claimed ``p`` in that cell gets ``p_cal = p + (q - pbar)`` and
    the multiplier ``f*(p_cal) / f*(p)`` (Kelly on the calibrated probability over Kelly on the
    claim), clipped to [0.5, 2] like every other sizer.

    Attributes
    ----------
    edges_ : ndarray
        Inner bucket edges (``table_conf_buckets - 1`` values).
    shift_ : ndarray, shape (buckets, regimes)
        ``q - pbar`` per cell.
    counts_ : ndarray, shape (buckets, regimes)
        Training trades per cell.
    """

    name = "table"

    def fit_trades(self, trades: TradeSet) -> TableSizer:
        """Fit the table on ``trades`` and return ``self``."""
        if len(trades) < 1:
            raise ValueError("TableSizer.fit_trades needs at least one trade. Got 0 instead.")
        nb = self.config.table_conf_buckets
        qs = np.quantile(trades.confidence, np.linspace(0, 1, nb + 1)[1:-1]) if nb > 1 else np.empty(0)
        self.edges_ = np.asarray(qs, dtype=np.float64)
        nr = max(trades.n_regimes, int(trades.regime.max()) + 1)
        b = np.searchsorted(self.edges_, trades.confidence, side="right")
        g = trades.regime.astype(np.int64)
        win = (trades.outcome_r > 0).astype(np.float64)
        n = np.zeros((nb, nr))
        w = np.zeros((nb, nr))
        psum = np.zeros((nb, nr))
        np.add.at(n, (b, g), 1.0)
        np.add.at(w, (b, g), win)
        np.add.at(psum, (b, g), trades.confidence)
        k = self.config.table_prior_strength
        pbar = np.divide(psum, n, out=np.full_like(psum, 0.5), where=n > 0)
        q = (w + k * pbar) / (n + k)
        self.shift_ = q - pbar
        self.counts_ = n
        return self

    def learn(self, env: SizingEnv, total_timesteps: int = 0) -> TableSizer:
        trades = env.trades
        if trades is None:  # synthetic env: fit on fresh draws of the same process
            n = total_timesteps or TABLE_SYNTHETIC_TRADES
            trades = synthetic_trades(n, rng=np.random.default_rng(self.seed))
        return self.fit_trades(trades)

    def multiplier(self, confidence: np.ndarray, regime: np.ndarray) -> np.ndarray:
        """Multipliers for trades with these claimed confidences and regimes."""
        if not hasattr(self, "shift_"):
            raise RuntimeError("TableSizer is not fitted yet: call learn() or fit_trades() first.")
        conf = np.asarray(confidence, dtype=np.float64)
        b = np.searchsorted(self.edges_, conf, side="right")
        g = np.clip(np.asarray(regime).round().astype(np.int64), 0, self.shift_.shape[1] - 1)
        p_cal = np.clip(conf + self.shift_[b, g], 0.0, 1.0)
        pay = self.config.payoff_ratio
        f_claim = kelly_fraction(conf, pay)
        f_cal = kelly_fraction(p_cal, pay)
        ratio = np.divide(f_cal, f_claim, out=np.ones_like(f_cal), where=f_claim > 0)
        return np.clip(ratio, MIN_MULTIPLIER, MAX_MULTIPLIER)

    def act(self, obs: np.ndarray, *, deterministic: bool = True) -> np.ndarray:
        o = np.atleast_2d(np.asarray(obs, dtype=np.float64))
        return _shape_actions(action_from_multiplier(self.multiplier(o[:, 0], o[:, 2])), obs)

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        self._write_meta(
            p, {"edges": self.edges_.tolist(), "shift": self.shift_.tolist(), "counts": self.counts_.tolist()}
        )
        return p


class SB3Sizer(Sizer):
    """PPO (Box actions) or DQN (the :class:`DiscreteSizingWrapper` grid) from stable-baselines3.

    PPO's Gaussian policy starts with ``log_std_init = config.log_std_init`` (-1.2, std 0.3)
    instead of SB3's 0 (std 1). Why: with ``m = 2**a`` and ``a ~ N(mu, s^2)`` the expected log
    growth of a bet is about ``E[m] x - E[m^2] y`` (``x``: edge, ``y``: half the variance of a
    unit bet); ``E[m] = 2**mu e^{c/2}`` and ``E[m^2] = 4**mu e^{2c}`` with ``c = (s ln 2)^2``, so the
    best median multiplier ``2**mu`` is the noise-free optimum times ``e^{-1.5 c}``: 0.49 at
    ``s = 1`` (the policy learns to halve its bets to limit the damage of its own exploration
    noise; a third of the samples are also clipped at the bounds) and 0.94 at ``s = 0.3``.
    """

    def __init__(
        self, algo: Literal["ppo", "dqn"], config: PilotConfig | None = None, *, seed: int = 0
    ) -> None:
        check_choice(algo, param="algo", func="SB3Sizer", choices=("ppo", "dqn"))
        super().__init__(config, seed=seed)
        self.name = algo
        self.model: Any = None
        self._grid = np.linspace(-1.0, 1.0, self.config.n_actions).astype(np.float32)

    def _wrap(self, env: SizingEnv) -> Any:
        return DiscreteSizingWrapper(env, self.config.n_actions) if self.name == "dqn" else env

    def _build(self, env: Any) -> Any:
        cfg = self.config
        width = [cfg.net_width, cfg.net_width]
        if self.name == "ppo":
            from stable_baselines3 import PPO

            return PPO(
                "MlpPolicy",
                env,
                learning_rate=cfg.learning_rate,
                n_steps=cfg.n_steps,
                batch_size=cfg.batch_size,
                gamma=cfg.gamma,
                ent_coef=cfg.ent_coef,
                policy_kwargs={"log_std_init": cfg.log_std_init, "net_arch": {"pi": width, "vf": width}},
                seed=self.seed,
                device="cpu",
                verbose=0,
            )
        from stable_baselines3 import DQN

        return DQN(
            "MlpPolicy",
            env,
            learning_rate=cfg.learning_rate,
            buffer_size=cfg.dqn_buffer_size,
            learning_starts=cfg.dqn_learning_starts,
            batch_size=cfg.batch_size,
            gamma=cfg.gamma,
            exploration_fraction=cfg.dqn_exploration_fraction,
            target_update_interval=500,
            train_freq=4,
            policy_kwargs={"net_arch": width},
            seed=self.seed,
            device="cpu",
            verbose=0,
        )

    def learn(self, env: SizingEnv, total_timesteps: int = 0) -> SB3Sizer:
        """Train for ``total_timesteps`` more env steps (continuing a loaded or trained model)."""
        import torch

        torch.set_num_threads(self.config.torch_threads)
        wrapped = self._wrap(env)
        if self.model is None:
            self.model = self._build(wrapped)
            reset = True
        else:
            self.model.set_env(wrapped)
            reset = False
        if total_timesteps > 0:
            self.model.learn(total_timesteps=int(total_timesteps), reset_num_timesteps=reset)
        return self

    @property
    def num_timesteps(self) -> int:
        """Env steps trained so far (0 before the first learn)."""
        return 0 if self.model is None else int(self.model.num_timesteps)

    def act(self, obs: np.ndarray, *, deterministic: bool = True) -> np.ndarray:
        if self.model is None:
            raise RuntimeError(f"{self.name} sizer has no model yet: call learn() or load_sizer() first.")
        a, _ = self.model.predict(np.asarray(obs, dtype=np.float32), deterministic=deterministic)
        if self.name == "dqn":
            a = self._grid[np.asarray(a, dtype=np.int64)]
        return _shape_actions(np.clip(a, -1.0, 1.0), obs)

    def save(self, path: str | Path) -> Path:
        if self.model is None:
            raise RuntimeError(f"{self.name} sizer has no model to save: call learn() first.")
        p = Path(path)
        self._write_meta(p, {"num_timesteps": self.num_timesteps})
        tmp = p / "model.tmp.zip"
        self.model.save(str(tmp))
        tmp.replace(p / "model.zip")  # atomic: a reader never sees half a checkpoint
        return p


def make_sizer(name: str, config: PilotConfig | None = None, *, seed: int = 0) -> Sizer:
    """A fresh sizer by name: ``ppo``, ``dqn``, ``kelly`` or ``table``."""
    if name == "kelly":
        return KellySizer(config, seed=seed)
    if name == "table":
        return TableSizer(config, seed=seed)
    if name in ("ppo", "dqn"):
        return SB3Sizer(name, config, seed=seed)  # type: ignore[arg-type]
    raise ValueError(
        f"The 'name' parameter of make_sizer must be one of {', '.join(AGENTS)}. Got {name!r} instead."
    )


def load_sizer(path: str | Path) -> Sizer:
    """Read a sizer written by ``save``."""
    p = Path(path)
    meta_path = p / "sizer.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{p} is not a saved sizer: {meta_path.name} is missing.")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    config = PilotConfig(**meta["config"])
    sizer = make_sizer(meta["kind"], config, seed=int(meta.get("seed", 0)))
    if isinstance(sizer, TableSizer):
        sizer.edges_ = np.asarray(meta["edges"], dtype=np.float64)
        sizer.shift_ = np.asarray(meta["shift"], dtype=np.float64)
        sizer.counts_ = np.asarray(meta["counts"], dtype=np.float64)
    elif isinstance(sizer, SB3Sizer):
        if sizer.name == "ppo":
            from stable_baselines3 import PPO as Algo
        else:
            from stable_baselines3 import DQN as Algo  # type: ignore[assignment]
        sizer.model = Algo.load(str(p / "model.zip"), device="cpu")
    return sizer
