"""The sizers a sweep can run: how each is built, tuned and searched (:data:`SIZERS`).

:func:`register_sizer` adds one (tests register their own); :class:`FixedSizer` plays the
multipliers of a sizer that picks one per trade from the trade list (the edge sizer) in the env,
so every sizer is scored by the same rollout in :mod:`research.rl_sizer.sweep`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from research.rl_sizer.agents import Sizer, make_sizer
from research.rl_sizer.config import PilotConfig
from research.rl_sizer.env import SizingEnv, action_from_multiplier
from research.rl_sizer.signals import TradeSet


@dataclass(frozen=True)
class SizerSpec:
    """How the sweep builds and tunes one sizer."""

    name: str
    trains: bool
    """True: trained for ``train_steps`` on the training period; False: fitted or static."""
    factory: Callable[[PilotConfig, int], Sizer] | None = None
    """``(config, seed) -> Sizer``; None uses :func:`research.rl_sizer.agents.make_sizer`."""
    search_space: Mapping[str, tuple[str, float, float]] = field(default_factory=dict)
    """``{parameter: (kind, low, high)}`` with kind ``float``, ``log`` or ``int`` (``--search``)."""
    multipliers: Callable[[PilotConfig, Mapping[str, Any], TradeSet, TradeSet], np.ndarray] | None = None
    """For sizers that pick one multiplier per trade from the trade list (``(config, extra params,
    train, test) -> multipliers of the test trades``) instead of acting in the env."""
    extra_params: tuple[str, ...] = ()
    """Hyperparameters that are not :class:`PilotConfig` fields, passed to :attr:`multipliers`."""

    def build(self, config: PilotConfig, seed: int) -> Sizer:
        if self.factory is not None:
            return self.factory(config, seed)
        return make_sizer(self.name, config, seed=seed)


SIZERS: dict[str, SizerSpec] = {}


def register_sizer(spec: SizerSpec) -> SizerSpec:
    """Add (or replace) a sizer in :data:`SIZERS`; returns it."""
    SIZERS[spec.name] = spec
    return spec


register_sizer(SizerSpec("kelly", trains=False, search_space={"kelly_fraction": ("float", 0.1, 1.0)}))
register_sizer(
    SizerSpec(
        "table",
        trains=False,
        search_space={"table_prior_strength": ("log", 1.0, 200.0), "table_conf_buckets": ("int", 2, 10)},
    )
)
register_sizer(
    SizerSpec(
        "ppo",
        trains=True,
        search_space={
            "learning_rate": ("log", 1e-4, 3e-3),
            "gamma": ("float", 0.0, 0.99),
            "log_std_init": ("float", -2.5, 0.0),
            "ent_coef": ("log", 1e-5, 1e-2),
        },
    )
)
register_sizer(SizerSpec("dqn", trains=True, search_space={"learning_rate": ("log", 1e-4, 3e-3)}))


def _edge_multipliers(
    config: PilotConfig, extra: Mapping[str, Any], train: TradeSet, test: TradeSet
) -> np.ndarray:
    """The edge sizer (:mod:`research.rl_sizer.edge_sizer`): fitted and fraction-tuned on ``train``."""
    from research.rl_sizer.edge_sizer import EdgeSizer

    kw = {"prior_strength": float(extra["edge_prior_strength"])} if "edge_prior_strength" in extra else {}
    model = EdgeSizer.from_config(config, **kw).fit_trades(train, config)
    return np.asarray(model.trade_multipliers(test, config), dtype=np.float64)


register_sizer(
    SizerSpec(
        "edge",
        trains=False,
        multipliers=_edge_multipliers,
        extra_params=("edge_prior_strength",),
        search_space={"kelly_fraction": ("float", 0.1, 1.0), "edge_prior_strength": ("log", 1.0, 200.0)},
    )
)


def extra_param_names() -> set[str]:
    """Hyperparameters of registered sizers that are not :class:`PilotConfig` fields."""
    return {name for spec in SIZERS.values() for name in spec.extra_params}


class FixedSizer(Sizer):
    """Plays precomputed multipliers, one per step, in the env (for :attr:`SizerSpec.multipliers`)."""

    name = "fixed"

    def __init__(self, multipliers: np.ndarray) -> None:
        super().__init__()
        self._actions = action_from_multiplier(np.asarray(multipliers, dtype=np.float64)).astype(np.float32)
        self._k = 0

    def learn(self, env: SizingEnv, total_timesteps: int = 0) -> FixedSizer:
        return self

    def act(self, obs: np.ndarray, *, deterministic: bool = True) -> np.ndarray:
        a = self._actions[self._k : self._k + 1]
        self._k += 1
        return a

    def save(self, path: str | Path) -> Path:
        raise NotImplementedError("precomputed multipliers are not a saved sizer")
