"""Hyperparameters of the RL sizing pilot: one dataclass, one line of documentation per field.

The same dataclass feeds :class:`~research.rl_sizer.env.SizingEnv`, the agents, the runner and the
A/B evaluation, and is parsed straight into their command lines (``--kelly-fraction 0.5`` sets
:attr:`PilotConfig.kelly_fraction`), in the spirit of cleanrl's ``Args`` dataclass.

Examples
--------
>>> cfg = PilotConfig(kelly_fraction=0.5)
>>> cfg.kelly_fraction, cfg.max_gross_leverage
(0.5, 5.0)
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import itertools
import math
from dataclasses import dataclass, fields
from typing import Any, Literal

RewardKind = Literal["log_growth", "calculator"]
REWARD_KINDS: tuple[RewardKind, ...] = ("log_growth", "calculator")
SignalKind = Literal["model", "momentum"]
SIGNAL_KINDS: tuple[SignalKind, ...] = ("model", "momentum")


@dataclass(frozen=True, kw_only=True)
class PilotConfig:
    """Every knob of the pilot. Field docstrings are shown by ``--help``."""

    # ------------------------------------------------------------------ account / env
    kelly_fraction: float = 0.5
    """Base size as a fraction of the full Kelly stake (half Kelly: multipliers 0.5..2 span quarter to full Kelly)."""
    payoff_ratio: float = 1.0
    """Win/loss ratio b of a trade's barriers, used in Kelly's f = (p (b + 1) - 1) / b."""
    max_position_leverage: float = 3.0
    """Cap on one position's notional as a multiple of equity (the position cap)."""
    max_gross_leverage: float = 5.0
    """Cap on the notional of all open positions together as a multiple of equity."""
    cost_bps: float = 5.0
    """Trading cost per side in basis points of notional (fees plus slippage)."""
    drawdown_stop: float = 0.5
    """Drawdown (fraction of peak equity) that ends a training episode; 1.0 disables the rule."""
    episode_length: int = 256
    """Trades per training episode (a random window of the trade list; synthetic draws fresh ones)."""
    reward: RewardKind = "log_growth"
    """Reward: 'log_growth' (log of the account's growth per trade) or 'calculator' (execution.reward_calculator)."""
    n_actions: int = 9
    """Size of the multiplier grid of the Discrete wrapper used by DQN (odd, so Kelly is on it)."""

    # ------------------------------------------------------------------ signals from bars
    signal: SignalKind = "model"
    """Trade source on bars: 'model' (walk-forward reference SignalModel) or 'momentum' (plain z-score); synthetic ignores it."""
    barrier_k: float = 2.0
    """Barrier distance of a bar trade in units of sigma * sqrt(horizon) (triple barrier)."""
    horizon_bars: int = 12
    """Maximum holding time of a bar trade, in bars (time barrier)."""
    momentum_bars: int = 12
    """Look-back of the reference momentum signal, in bars."""
    z_threshold: float = 1.0
    """Absolute momentum z-score needed to propose a trade."""
    min_gap_bars: int = 3
    """Minimum bars between two trades proposed on the same symbol."""
    model_min_confidence: float = 0.52
    """Calibrated confidence max(p, 1 - p) the reference model needs to propose a trade (signal 'model')."""
    model_horizon: int = 1
    """Label horizon of the reference model in bars (1: next-bar direction, the model as shipped)."""
    model_min_train_bars: int = 360
    """Bars from the first bar to the first walk-forward training time of the model."""
    model_retrain_bars: int = 168
    """Bars between two walk-forward refits of the model; each block is scored by the model fitted before it."""

    # ------------------------------------------------------------------ learning
    train_frac: float = 0.6
    """Fraction of the trade timeline used for training; the rest is the held-out test period."""
    learning_rate: float = 1e-3
    """Adam learning rate of PPO and DQN."""
    gamma: float = 0.5
    """Discount: a size affects the future only through equity and open exposure, a trade or two ahead."""
    n_steps: int = 512
    """PPO rollout length per update."""
    batch_size: int = 128
    """Minibatch size of PPO and DQN."""
    ent_coef: float = 0.0
    """PPO entropy bonus."""
    log_std_init: float = -1.2
    """PPO initial log std of the Gaussian policy (exp(-1.2) = 0.3; SB3's 0 under-bets, see docs)."""
    net_width: int = 64
    """Width of the two hidden layers of the policy and value networks."""
    dqn_buffer_size: int = 50_000
    """DQN replay buffer size."""
    dqn_learning_starts: int = 500
    """DQN steps collected before the first update."""
    dqn_exploration_fraction: float = 0.3
    """Fraction of DQN training over which epsilon decays from 1 to its final value."""
    table_conf_buckets: int = 5
    """Confidence buckets of the calibrated-Kelly table (quantiles of the training confidences)."""
    table_prior_strength: float = 20.0
    """Pseudo-trades pulling a table cell's win rate towards its claimed confidence."""
    torch_threads: int = 1
    """torch.set_num_threads for training (1: the machine is shared)."""

    def __post_init__(self) -> None:
        def positive(name: str) -> None:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(
                    f"The '{name}' field of PilotConfig must be a finite number > 0. Got {value!r} instead."
                )

        for name in (
            "kelly_fraction", "payoff_ratio", "max_position_leverage", "max_gross_leverage",
            "barrier_k", "learning_rate", "table_prior_strength",
        ):  # fmt: skip
            positive(name)
        for name in ("episode_length", "horizon_bars", "momentum_bars", "min_gap_bars", "n_steps", "batch_size",
                     "dqn_buffer_size", "table_conf_buckets", "torch_threads", "model_horizon",
                     "model_min_train_bars", "model_retrain_bars"):  # fmt: skip
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(
                    f"The '{name}' field of PilotConfig must be an int >= 1. Got {value!r} instead."
                )
        if not (isinstance(self.n_actions, int) and self.n_actions >= 3 and self.n_actions % 2 == 1):
            raise ValueError(
                f"The 'n_actions' field of PilotConfig must be an odd int >= 3. Got {self.n_actions!r} instead."
            )
        if not (0.0 <= self.cost_bps < 1000.0):
            raise ValueError(
                f"The 'cost_bps' field of PilotConfig must be in [0, 1000). Got {self.cost_bps!r} instead."
            )
        if not (0.0 < self.drawdown_stop <= 1.0):
            raise ValueError(
                f"The 'drawdown_stop' field of PilotConfig must be in (0, 1]. Got {self.drawdown_stop!r} instead."
            )
        if not (0.0 < self.train_frac < 1.0):
            raise ValueError(
                f"The 'train_frac' field of PilotConfig must be in (0, 1). Got {self.train_frac!r} instead."
            )
        if not (0.0 <= self.gamma <= 1.0):
            raise ValueError(
                f"The 'gamma' field of PilotConfig must be in [0, 1]. Got {self.gamma!r} instead."
            )
        if self.reward not in REWARD_KINDS:
            raise ValueError(
                f"The 'reward' field of PilotConfig must be one of {', '.join(REWARD_KINDS)}. Got {self.reward!r} instead."
            )
        if self.signal not in SIGNAL_KINDS:
            raise ValueError(
                f"The 'signal' field of PilotConfig must be one of {', '.join(SIGNAL_KINDS)}. Got {self.signal!r} instead."
            )
        if not (
            isinstance(self.model_min_confidence, (int, float)) and 0.5 <= self.model_min_confidence < 1.0
        ):
            raise ValueError(
                "The 'model_min_confidence' field of PilotConfig must be in [0.5, 1). "
                f"Got {self.model_min_confidence!r} instead."
            )
        if self.max_position_leverage > self.max_gross_leverage:
            raise ValueError(
                "The 'max_position_leverage' field of PilotConfig must be <= 'max_gross_leverage'. "
                f"Got {self.max_position_leverage!r} > {self.max_gross_leverage!r} instead."
            )

    def replace(self, **changes: Any) -> PilotConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def field_docs(cls: type = PilotConfig) -> dict[str, str]:
    """The one-line docstring of every field, read from the class source (attribute docstrings)."""
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = nxt.value.value.strip()
    return docs


def add_config_arguments(parser: argparse.ArgumentParser, defaults: PilotConfig | None = None) -> None:
    """Add one ``--field-name`` option per :class:`PilotConfig` field, with its docstring as help."""
    base = defaults or PilotConfig()
    docs = field_docs()
    group = parser.add_argument_group("pilot configuration (PilotConfig)")
    for f in fields(PilotConfig):
        default = getattr(base, f.name)
        kind: Any = type(default)
        choices = {"reward": REWARD_KINDS, "signal": SIGNAL_KINDS}.get(f.name)
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f"cfg_{f.name}",
            type=kind,
            default=default,
            choices=choices,
            help=f"{docs.get(f.name, '')} (default: {default})",
        )


def config_from_args(args: argparse.Namespace) -> PilotConfig:
    """Build the :class:`PilotConfig` from options added by :func:`add_config_arguments`."""
    values = {
        f.name: getattr(args, f"cfg_{f.name}") for f in fields(PilotConfig) if hasattr(args, f"cfg_{f.name}")
    }
    return PilotConfig(**values)
