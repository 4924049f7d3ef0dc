"""Online PPO position sizer: a Beta policy over the sizing multiplier in [0.5, 2.0].

Why this file is long: the Beta policy, the clipped PPO update, the running normaliser and the
checkpoint state are one learner, and this docstring carries the derivation.

Each closed trade is one decision: the state is known when the position is opened, the action is
the sizing multiplier, and the reward arrives when the trade closes. There is no next state that
the multiplier influences, so every transition is a one-step episode (a contextual bandit); the
return of a transition is its reward and the advantage is ``A = r - V(s)`` (GAE with
``gamma = 0``, Schulman et al. 2016, reduces to exactly this).

Policy
    An MLP maps the (running-normalised) state to ``alpha, beta = 1 + softplus(.)`` of a Beta
    distribution on ``u in (0, 1)``; the multiplier is ``m = low + (high - low) u``. The density of
    ``m`` is ``p(m) = Beta(u; alpha, beta) / (high - low)`` (change of variables), so
    ``log p(m) = log Beta(u; alpha, beta) - log(high - low)``. A Beta is bounded by construction:
    no clipping of actions, no probability mass piled on the bounds (Chou et al. 2017, "Improving
    Stochastic Policy Gradients in Continuous Control ... using the Beta Distribution").
    ``alpha, beta > 1`` keeps the density unimodal. The untrained policy is a fixed Beta with mean
    multiplier 1.0 (static Kelly) in every state (:meth:`PPOSizer._init_policy_head`). States are
    scaled by a running mean and variance with a variance floor (:class:`RunningNorm`). :meth:`PPOSizer.get_multiplier` returns the
    mean ``low + (high - low) alpha / (alpha + beta)`` (deterministic, for serving);
    :meth:`PPOSizer.sample` draws from the distribution (exploration) and returns the log-prob.

Update (Schulman et al. 2017, "Proximal Policy Optimization Algorithms", eq. 7 and 9)
    * old log-probabilities are those of the *behaviour* policy, stored when the action was taken
      (``Batch.log_probs``; the governor records them in ``trade.execution.res`` as
      ``behaviour_logp``); the new ones are recomputed from the current network in every epoch
      and minibatch. Evaluating a deterministic live multiplier under the current policy instead
      (as the trainer once did) treats off-policy data as on-policy and can move the policy the
      wrong way;
    * at most ``epochs`` passes, stopped early once the approximate KL ``mean((r - 1) - log r)``
      of a minibatch exceeds ``target_kl`` (as in stable-baselines3 and cleanrl): ten passes over
      50 noisy transitions otherwise take the largest clipped step on noise;
    * ``ratio = exp(new - old)``; policy loss ``-mean(min(ratio A, clip(ratio, 1 - eps, 1 + eps) A))``
      with ``eps = 0.2``;
    * value loss ``0.5 * mean((V_theta(s) - R)^2)`` on the *current* critic's predictions, so the
      critic gets a gradient (the original sketch used values computed before the update);
    * advantages are normalised by :func:`normalize_advantages`, which leaves a batch of one (or a
      constant batch) finite;
    * loss ``= policy + vf_coef * value - ent_coef * entropy``; gradients clipped to
      ``max_grad_norm`` in global L2 norm.

Examples
--------
>>> import numpy as np
>>> sizer = PPOSizer(state_dim=3, seed=0)
>>> m = sizer.get_multiplier(np.array([0.7, 0.01, 1.0]))
>>> 0.5 <= m <= 2.0
True
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.distributions import Beta

from infra.validate import check_int, check_real

MULT_LOW = 0.5
MULT_HIGH = 2.0
_U_EPS = 1e-6
"""Actions at the exact bounds are moved this far inside (the Beta density is 0 or inf there)."""


@dataclass(frozen=True, kw_only=True)
class PPOConfig:
    """Hyperparameters of :class:`PPOSizer`."""

    hidden: int = 64
    """Width of the two hidden layers of the actor and of the critic."""
    lr: float = 3e-3
    """Adam learning rate (actor and critic)."""
    clip_eps: float = 0.2
    """PPO clipping range epsilon."""
    epochs: int = 4
    """Passes over each batch per update (at most: see ``target_kl``)."""
    target_kl: float | None = 0.02
    """Stop the epochs of an update once the approximate KL to the behaviour policy exceeds this (None: never)."""
    init_mean_multiplier: float = 1.0
    """Mean multiplier of the untrained policy (1.0: static Kelly)."""
    init_concentration: float = 6.0
    """``alpha + beta`` of the untrained policy's Beta (6: multiplier s.d. about 0.27 around 1.0)."""
    norm_var_floor: float = 1e-2
    """Floor of the state normaliser's variance (a feature constant so far must not map to +-10 later)."""
    minibatch_size: int = 50
    """Transitions per gradient step (the whole batch of 50 by default)."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.001
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Global L2 norm the gradients are clipped to."""
    low: float = MULT_LOW
    """Smallest multiplier."""
    high: float = MULT_HIGH
    """Largest multiplier."""

    def __post_init__(self) -> None:
        for name in ("hidden", "epochs", "minibatch_size"):
            check_int(getattr(self, name), param=name, func="PPOConfig", minimum=1)
        for name in ("lr", "clip_eps", "max_grad_norm", "norm_var_floor"):
            check_real(getattr(self, name), param=name, func="PPOConfig", positive=True)
        for name in ("vf_coef", "ent_coef"):
            check_real(getattr(self, name), param=name, func="PPOConfig", minimum=0.0)
        if self.target_kl is not None:
            check_real(self.target_kl, param="target_kl", func="PPOConfig", positive=True)
        if not (self.low < self.init_mean_multiplier < self.high):
            raise ValueError(
                f"The 'init_mean_multiplier' parameter of PPOConfig must lie in (low, high). Got {self.init_mean_multiplier!r}."
            )
        if not (math.isfinite(self.init_concentration) and self.init_concentration > 2.0):
            raise ValueError(
                f"The 'init_concentration' parameter of PPOConfig must be > 2. Got {self.init_concentration!r} instead."
            )
        if not (0 < self.low < self.high):
            raise ValueError(
                f"The 'low' and 'high' parameters of PPOConfig must satisfy 0 < low < high. "
                f"Got low={self.low!r}, high={self.high!r} instead."
            )


@dataclass
class Batch:
    """Transitions collected with the policy that stored ``log_probs``.

    Attributes
    ----------
    states : ndarray, shape (n, state_dim)
    actions : ndarray, shape (n,)
        Multipliers taken, in ``[low, high]``.
    log_probs : ndarray, shape (n,)
        ``log p(action | state)`` under the policy at action time.
    rewards : ndarray, shape (n,)
    """

    states: np.ndarray
    actions: np.ndarray
    log_probs: np.ndarray
    rewards: np.ndarray

    def __post_init__(self) -> None:
        self.states = np.atleast_2d(np.asarray(self.states, dtype=np.float64))
        self.actions = np.asarray(self.actions, dtype=np.float64).reshape(-1)
        self.log_probs = np.asarray(self.log_probs, dtype=np.float64).reshape(-1)
        self.rewards = np.asarray(self.rewards, dtype=np.float64).reshape(-1)
        n = self.states.shape[0]
        for name in ("actions", "log_probs", "rewards"):
            if getattr(self, name).shape[0] != n:
                raise ValueError(
                    f"Batch.{name} must have one entry per state ({n}). Got {getattr(self, name).shape[0]} instead."
                )
        for name in ("states", "actions", "log_probs", "rewards"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise ValueError(f"Batch.{name} must be finite. Got a NaN or inf value.")
        if n == 0:
            raise ValueError("A Batch must hold at least one transition. Got 0.")

    def __len__(self) -> int:
        return int(self.states.shape[0])


@dataclass(frozen=True)
class UpdateResult:
    """Losses of one :meth:`PPOSizer.update` (means over its gradient steps)."""

    policy_loss: float
    value_loss: float
    entropy: float
    approx_kl: float
    clip_fraction: float
    grad_steps: int


def normalize_advantages(adv: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(A - mean) / (std + eps)`` for two or more advantages; a single advantage is returned as is.

    With one transition the mean-centred advantage is 0 and the standard deviation undefined;
    centring would erase the only learning signal, so it is kept unscaled. A constant batch of two
    or more becomes all zeros (``std = 0``, the ``eps`` keeps it finite). ``std`` is the population
    standard deviation (``ddof=0``).

    Examples
    --------
    >>> normalize_advantages(torch.tensor([3.0])).tolist()
    [3.0]
    >>> [round(v, 4) for v in normalize_advantages(torch.tensor([1.0, 3.0])).tolist()]
    [-1.0, 1.0]
    """
    if adv.numel() < 2:
        return adv.clone()
    return (adv - adv.mean()) / (adv.std(unbiased=False) + eps)


def clipped_surrogate(
    new_log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, clip_eps: float
) -> torch.Tensor:
    """PPO policy loss ``-mean(min(ratio A, clip(ratio, 1 - eps, 1 + eps) A))``, ``ratio = exp(new - old)``.

    Schulman et al. (2017), eq. 7 (negated, to be minimised).
    """
    ratio = torch.exp(new_log_probs - old_log_probs)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    return -torch.min(unclipped, clipped).mean()


class RunningNorm:
    """Running mean and variance of the states (Chan et al. parallel update), for input scaling."""

    def __init__(self, dim: int, *, var_floor: float = 1e-2) -> None:
        self.mean = np.zeros(dim)
        self.var = np.ones(dim)
        self.count = 0.0
        self.var_floor = var_floor
        """The variance used to scale is at least this: a feature that was constant in the data
        seen so far (variance 0) would otherwise map a later change of 0.01 to the +-10 clip."""

    def update(self, x: np.ndarray) -> None:
        x = np.atleast_2d(x)
        n = x.shape[0]
        b_mean, b_var = x.mean(axis=0), x.var(axis=0)
        if self.count == 0:
            self.mean, self.var, self.count = b_mean, b_var, float(n)
            return
        tot = self.count + n
        delta = b_mean - self.mean
        m2 = self.var * self.count + b_var * n + delta**2 * self.count * n / tot
        self.mean = self.mean + delta * n / tot
        self.var = m2 / tot
        self.count = tot

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.mean) / np.sqrt(np.maximum(self.var, self.var_floor)), -10.0, 10.0)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "var": self.var.tolist(), "count": self.count}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.mean = np.asarray(d["mean"], dtype=np.float64)
        self.var = np.asarray(d["var"], dtype=np.float64)
        self.count = float(d["count"])


def _mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inp, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, out)
    )


@dataclass
class _Stats:
    updates: int = 0
    transitions: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


class PPOSizer:
    """PPO over a Beta-distributed sizing multiplier (see the module docstring).

    Parameters
    ----------
    state_dim : int
        Length of the state vector (3 for the bridge's ``[confidence, volatility, regime]``).
    config : PPOConfig
        Hyperparameters.
    seed : int or None
        Seeds the network initialisation and :meth:`sample`.
    """

    name = "ppo"
    """The governor shows this as the decision's source."""

    def __init__(self, state_dim: int, *, config: PPOConfig | None = None, seed: int | None = None) -> None:
        check_int(state_dim, param="state_dim", func="PPOSizer", minimum=1)
        self.state_dim = state_dim
        self.config = config or PPOConfig()
        self.seed = seed
        gen = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % 2**31)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            self.actor = _mlp(state_dim, self.config.hidden, 2)
            self.critic = _mlp(state_dim, self.config.hidden, 1)
            self._init_policy_head()
        self._gen = gen
        self._rng = np.random.default_rng(seed)
        """Draws of :meth:`sample` (reproducible under ``seed``)."""
        self.optimizer = torch.optim.Adam(
            list(self.actor.parameters()) + list(self.critic.parameters()), lr=self.config.lr, fused=True
        )
        self.norm = RunningNorm(state_dim, var_floor=self.config.norm_var_floor)
        self.stats = _Stats()

    def _init_policy_head(self) -> None:
        """Zero the actor's last weights and set its bias so the untrained policy is a fixed Beta
        with mean multiplier ``init_mean_multiplier`` (1.0: static Kelly) in every state.

        ``E[m] = low + (high - low) alpha / (alpha + beta)``, so with ``u0 = (m0 - low) / (high - low)``
        and concentration ``kappa = alpha + beta``: ``alpha = u0 kappa``, ``beta = (1 - u0) kappa``;
        ``alpha = 1 + softplus(b)`` gives the bias ``b = log(exp(alpha - 1) - 1)``. (With the default
        initialisation both concentrations were about 1.69, a mean of 1.25.)
        """
        cfg = self.config
        u0 = (cfg.init_mean_multiplier - cfg.low) / (cfg.high - cfg.low)
        kappa = cfg.init_concentration
        alpha, beta = max(u0 * kappa, 1.0 + 1e-3), max((1.0 - u0) * kappa, 1.0 + 1e-3)
        last = self.actor[-1]
        if not isinstance(last, nn.Linear):  # cannot happen with _mlp; keeps the types honest
            raise TypeError(f"the actor's last layer must be nn.Linear, got {type(last).__name__}")
        with torch.no_grad():
            last.weight.zero_()
            last.bias.copy_(
                torch.tensor([math.log(math.expm1(alpha - 1.0)), math.log(math.expm1(beta - 1.0))])
            )

    # -- distribution ---------------------------------------------------------------------------
    def _inputs(self, states: np.ndarray) -> torch.Tensor:
        s = np.atleast_2d(np.asarray(states, dtype=np.float64))
        if s.shape[1] != self.state_dim or not np.all(np.isfinite(s)):
            raise ValueError(
                f"The 'state' of PPOSizer must be a finite vector of length {self.state_dim}. Got {states!r} instead."
            )
        return torch.as_tensor(self.norm(s), dtype=torch.float32)

    def distribution(self, x: torch.Tensor) -> Beta:
        """Beta distribution on ``u in (0, 1)`` for normalised inputs ``x`` (shape (n, state_dim))."""
        raw = self.actor(x)
        conc = 1.0 + nn.functional.softplus(raw)
        return Beta(conc[:, 0], conc[:, 1])

    def to_unit(self, actions: torch.Tensor) -> torch.Tensor:
        """Map multipliers onto ``(0, 1)`` (bounds moved inside by ``1e-6``)."""
        span = self.config.high - self.config.low
        return torch.clamp((actions - self.config.low) / span, _U_EPS, 1.0 - _U_EPS)

    def log_prob_tensor(self, x: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``log p(m | s) = log Beta(u; alpha, beta) - log(high - low)`` for normalised inputs."""
        dist = self.distribution(x)
        return dist.log_prob(self.to_unit(actions)) - math.log(self.config.high - self.config.low)

    def log_prob(self, state: np.ndarray, action: float | np.ndarray) -> np.ndarray:
        """Log-density of multiplier(s) ``action`` in state(s) ``state`` under the current policy."""
        x = self._inputs(state)
        a = torch.as_tensor(np.atleast_1d(np.asarray(action, dtype=np.float64)), dtype=torch.float32)
        with torch.no_grad():
            return self.log_prob_tensor(x, a).double().numpy()

    # -- acting ---------------------------------------------------------------------------------
    def get_multiplier(self, state: np.ndarray) -> float:
        """Deterministic multiplier for serving: the mean ``low + (high - low) alpha / (alpha + beta)``."""
        with torch.no_grad():
            d = self.distribution(self._inputs(state))
            u = float(d.mean[0])
        return self.config.low + (self.config.high - self.config.low) * u

    def sample(self, state: np.ndarray) -> tuple[float, float]:
        """Draw an exploratory multiplier; returns ``(multiplier, log_prob)`` (store the log-prob)."""
        with torch.no_grad():
            x = self._inputs(state)
            d = self.distribution(x)
            draw = float(self._rng.beta(float(d.concentration1[0]), float(d.concentration0[0])))
            draw = min(max(draw, _U_EPS), 1.0 - _U_EPS)
            m = self.config.low + (self.config.high - self.config.low) * draw
            lp = float(self.log_prob_tensor(x, torch.tensor([m], dtype=torch.float32))[0])
        return m, lp

    def sample_many(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised :meth:`sample` over the rows of ``states``: ``(multipliers, log_probs)``."""
        with torch.no_grad():
            x = self._inputs(states)
            d = self.distribution(x)
            draw = self._rng.beta(d.concentration1.double().numpy(), d.concentration0.double().numpy())
            draw = np.clip(draw, _U_EPS, 1.0 - _U_EPS)
            m = self.config.low + (self.config.high - self.config.low) * draw
            lp = self.log_prob_tensor(x, torch.as_tensor(m, dtype=torch.float32)).double().numpy()
        return m, lp

    def value(self, state: np.ndarray) -> np.ndarray:
        """Critic's estimate of the expected reward in state(s)."""
        with torch.no_grad():
            return self.critic(self._inputs(state)).squeeze(-1).double().numpy()

    # -- learning -------------------------------------------------------------------------------
    def update(self, batch: Batch) -> UpdateResult:
        """One PPO update on ``batch`` (collected with the log-probs it carries); returns the losses.

        The state normaliser is updated *after* the gradient steps, so the inputs used here are
        the ones the stored log-probs were computed with.
        """
        cfg = self.config
        x = self._inputs(batch.states)
        acts = torch.as_tensor(batch.actions, dtype=torch.float32)
        old_lp = torch.as_tensor(batch.log_probs, dtype=torch.float32)
        returns = torch.as_tensor(batch.rewards, dtype=torch.float32)
        with torch.no_grad():
            adv = normalize_advantages(returns - self.critic(x).squeeze(-1))
        n = len(batch)
        mb = min(cfg.minibatch_size, n)
        units = self.to_unit(acts)
        log_span = math.log(cfg.high - cfg.low)
        params = list(self.actor.parameters()) + list(self.critic.parameters())
        rows: list[torch.Tensor] = []
        stopped = False
        for _ in range(cfg.epochs):
            if stopped:
                break
            # one minibatch covering the batch needs no shuffling (the default: 50 of 50)
            perm = torch.randperm(n, generator=self._gen) if mb < n else None
            for start in range(0, n, mb):
                idx = perm[start : start + mb] if perm is not None else slice(None)
                xi, ui, old_i, adv_i, ret_i = x[idx], units[idx], old_lp[idx], adv[idx], returns[idx]
                dist = self.distribution(xi)
                new_lp = dist.log_prob(ui) - log_span
                p_loss = clipped_surrogate(new_lp, old_i, adv_i, cfg.clip_eps)
                v_loss = 0.5 * ((self.critic(xi).squeeze(-1) - ret_i) ** 2).mean()
                entropy = dist.entropy().mean()
                loss = p_loss + cfg.vf_coef * v_loss - cfg.ent_coef * entropy
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(params, cfg.max_grad_norm, foreach=True)
                self.optimizer.step()
                with torch.no_grad():
                    log_ratio = new_lp - old_i
                    ratio_m1 = log_ratio.exp() - 1
                    rows.append(
                        torch.stack(
                            [
                                p_loss.detach(),
                                v_loss.detach(),
                                entropy.detach(),
                                (ratio_m1 - log_ratio).mean(),
                                (ratio_m1.abs() > cfg.clip_eps).float().mean(),
                            ]
                        )
                    )
                    # approximate KL(behaviour || new) of the minibatch, (r - 1) - log r (Schulman
                    # 2020, "Approximating KL divergence"); stop the update once it exceeds the target
                    if cfg.target_kl is not None and float(rows[-1][3]) > cfg.target_kl:
                        stopped = True
                        break
        means = torch.stack(rows).mean(dim=0).tolist()
        steps = len(rows)
        self.norm.update(batch.states)
        self.stats.updates += 1
        self.stats.transitions += n
        p_mean, v_mean, ent_mean, kl_mean, clip_mean = means
        res = UpdateResult(p_mean, v_mean, ent_mean, kl_mean, clip_mean, steps)
        self.stats.history.append({k: float(v) for k, v in asdict(res).items()})
        return res

    # -- persistence ----------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Serialise weights, optimiser, normaliser and config (``torch.save`` to bytes)."""
        buf = io.BytesIO()
        torch.save(
            {
                "state_dim": self.state_dim,
                "config": asdict(self.config),
                "actor": self.actor.state_dict(),
                "critic": self.critic.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "norm": self.norm.state_dict(),
                "updates": self.stats.updates,
                "transitions": self.stats.transitions,
            },
            buf,
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, payload: bytes, *, seed: int | None = None) -> PPOSizer:
        """Rebuild a sizer from :meth:`to_bytes` output (``weights_only`` unpickling)."""
        d = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        sizer = cls(int(d["state_dim"]), config=PPOConfig(**d["config"]), seed=seed)
        sizer.actor.load_state_dict(d["actor"])
        sizer.critic.load_state_dict(d["critic"])
        sizer.optimizer.load_state_dict(d["optimizer"])
        sizer.norm.load_state_dict(d["norm"])
        sizer.stats.updates = int(d["updates"])
        sizer.stats.transitions = int(d["transitions"])
        return sizer

    def save(
        self, directory: Path, *, step: int, meta: dict[str, Any] | None = None, promote: bool = True
    ) -> Path:
        """Atomic checkpoint under ``directory`` (see :mod:`research.rl_sizer.checkpoints`)."""
        from research.rl_sizer.checkpoints import write_checkpoint

        info = {"updates": self.stats.updates, "transitions": self.stats.transitions, **(meta or {})}
        return write_checkpoint(directory, step=step, payload=self.to_bytes(), meta=info, promote=promote)

    @classmethod
    def load(cls, directory: Path, name: str | None = None) -> tuple[PPOSizer, dict[str, Any]]:
        """Load the checkpoint ``latest`` names (or ``name``) after verifying its SHA-256.

        Raises :class:`research.rl_sizer.checkpoints.CheckpointError` when it cannot.
        """
        from research.rl_sizer.checkpoints import load_checkpoint

        ckpt = load_checkpoint(directory, name)
        return cls.from_bytes(ckpt.payload), ckpt.meta
