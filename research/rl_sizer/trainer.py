"""Online PPO trainer: ``rl.feedback`` in, policy updates, checkpoints and TensorBoard out.

Why this file is long: the trainer is one service (the consumer handler, the batch update,
checkpoints and its ``main()``); the PPO mathematics is in :mod:`research.rl_sizer.ppo_sizer`.

``python -m research.rl_sizer.trainer [--bus URL] [--once]`` consumes ``rl.feedback`` as one
consumer of the ``ppo-trainer`` group. Every feedback event becomes a transition
``(state, multiplier_used, log_prob, policy_reward)``; every ``update_every`` (50) trades the
sizer makes one PPO update; every ``checkpoint_every`` (100) trades it writes an atomic checkpoint
(weights + metadata with step, trades seen, reward stats and SHA-256) and moves the ``latest``
pointer that live sizing loads (:mod:`research.rl_sizer.serving`). Losses, rewards and multipliers
go to TensorBoard under ``settings.research_dir / "tensorboard" / "ppo_sizer"``.

Legacy policy reward (``reward='shaped'``)
    The bridge's reward is per unit of position (it starts from ``pnl_pct``), so it does not
    depend on the multiplier. The multiplier scales the position, so the sizer learns from the
    reward of the position as sized, with a mean-variance risk term::

        u = m R - (risk_aversion / 2) (m R)^2

    whose expected value is maximised at ``m* = E[R | s] / (risk_aversion E[R^2 | s])`` (then
    clamped to [0.5, 2.0]): larger where the state predicts a reliable edge, smaller where it
    predicts losses or noise. ``u`` is the second-order expansion of a log-utility when
    ``risk_aversion = 1`` and ``R`` is a fraction.

Log-probabilities
    PPO needs ``log p_old(a | s)`` of the policy that chose ``a``. An event that carries
    ``behaviour_logp`` (a governor that sampled its multiplier records it in
    ``trade.execution.res``) or an entry of :attr:`OnlineTrainer.behaviour_log_probs` supplies it;
    an event without one is not a PPO sample (it still counts as a trade and feeds the edge
    learner). Evaluating a deterministic live multiplier under the current policy instead treats
    off-policy data as on-policy: on the synthetic regimes the targets 1.0 / 0.5 / 1.6 became
    0.79 / 1.25 / 0.53 (issue 20); ``require_behaviour_logp=False`` keeps that legacy behaviour.

PPO reward
    ``reward='log_growth'`` (default): :func:`log_growth_reward`, the account log growth of the
    sized trade minus that of the Kelly-sized trade. ``'shaped'``: the legacy policy reward
    below on the bridge's shaped per-position reward.

Exactly-once learning across restarts
    Messages are acknowledged only after the checkpoint that includes them has been written
    (``checkpoint_every`` must be a multiple of ``update_every``, so the buffer is empty then). A
    trainer killed between checkpoints resumes from the latest checkpoint and re-reads its pending
    messages, which are exactly the trades after it; the order ids of the last checkpoint window
    are kept in its metadata, so a crash between checkpoint and acknowledgement does not learn a
    trade twice. Beyond that, the order ids of the last ``learned_ids_kept`` (20,000) trades learned
    are kept in memory and in every checkpoint (``learned_order_ids``), and an order among them is
    not learned again: a Redis restarted from an older snapshot re-delivers entries already learned
    and acknowledged, and a consumer under a new name reclaims its predecessor's (the fault bench
    measured all 200 trades of a rollback learned twice before). The edge learner dedupes on the
    same window, so both count the same trades and checkpoint together.

In ``ENV=prod`` moving ``latest`` is a production write and needs ``ALLOW_PROD_WRITE=1``.
"""

from __future__ import annotations

import argparse
import logging
import math
import socket
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from infra.bus import TOPIC_FEEDBACK, Bus, Commit, Consumer, Message, connect_bus, stop_on_signals
from infra.cli import run_cli
from infra.prom import observe_feedback
from infra.validate import check_choice, check_int, check_real

if TYPE_CHECKING:
    from infra.prom import Metrics
    from infra.settings import Settings
    from research.rl_sizer.ppo_sizer import PPOSizer, UpdateResult

log = logging.getLogger(__name__)

DEFAULT_GROUP = "ppo-trainer"
MAX_DELIVERIES = 100
"""Deliveries after which the consumer loop dead-letters an rl.feedback entry. The trainer holds
its entries until the checkpoint that includes them (every 100 trades), and each restart before
it delivers them again: the loop's default of 5 dead-lettered good trades after 6 restarts inside
one checkpoint window (the fault bench's kill -9 scenario lost 45 of 200 so). 100 restarts still
end a crash loop on a message that kills the process."""


@dataclass(frozen=True, kw_only=True)
class TrainerConfig:
    """Trainer parameters."""

    update_every: int = 50
    """Trades per PPO update."""
    checkpoint_every: int = 100
    """Trades per checkpoint (a multiple of ``update_every``)."""
    risk_aversion: float = 0.1
    """Coefficient of the variance term of the policy reward."""
    state_dim: int = 3
    """Length of the feedback state vector ([confidence, volatility, regime])."""
    seed: int = 0
    """Seed of a fresh sizer."""
    reward: str = "log_growth"
    """PPO reward: 'log_growth' (account log growth of the sized trade minus Kelly's) or 'shaped' (legacy)."""
    kelly_fraction: float = 0.5
    """The governor's base fraction of Kelly (to rebuild the account return of a trade)."""
    payoff_ratio: float = 1.0
    """The governor's payoff ratio b."""
    max_position_pct: float = 10.0
    """The governor's position cap, percent of equity."""
    require_behaviour_logp: bool = True
    """Learn PPO only from events whose behaviour log-probability was recorded (no sample without it)."""
    learned_ids_kept: int = 20_000
    """Order ids of the most recent trades learned, kept in memory and in every checkpoint's
    ``learned_order_ids`` (as many as the edge learner's window)."""

    def __post_init__(self) -> None:
        for name in ("update_every", "checkpoint_every", "state_dim", "learned_ids_kept"):
            check_int(getattr(self, name), param=name, func="TrainerConfig", minimum=1)
        if self.checkpoint_every % self.update_every:
            raise ValueError(
                "The 'checkpoint_every' parameter of TrainerConfig must be a multiple of 'update_every' "
                f"({self.update_every}). Got {self.checkpoint_every!r} instead."
            )
        check_choice(self.reward, param="reward", func="TrainerConfig", choices=("log_growth", "shaped"))
        if not (0 < self.kelly_fraction <= 1 and self.payoff_ratio > 0 and 0 < self.max_position_pct <= 100):
            raise ValueError(
                "TrainerConfig needs 0 < kelly_fraction <= 1, payoff_ratio > 0 and 0 < max_position_pct <= 100. "
                f"Got {self.kelly_fraction!r}, {self.payoff_ratio!r}, {self.max_position_pct!r} instead."
            )
        check_real(self.risk_aversion, param="risk_aversion", func="TrainerConfig", minimum=0.0)


def policy_reward(reward: float, multiplier: float, risk_aversion: float) -> float:
    """``m R - (risk_aversion / 2) (m R)^2`` (see the module docstring).

    Examples
    --------
    >>> policy_reward(2.0, 1.5, 0.1)
    2.55
    """
    x = multiplier * reward
    return x - 0.5 * risk_aversion * x * x


def log_growth_reward(
    pnl_pct: float,
    confidence: float,
    multiplier: float,
    *,
    kelly_fraction: float = 0.5,
    payoff_ratio: float = 1.0,
    max_position_pct: float = 10.0,
) -> float:
    """Account log growth of the trade as sized minus as sized by static Kelly.

    The governor stakes ``s(m) = min(m k, cap)`` of equity with ``k = kelly_fraction * max(f*, 0)``
    and ``f* = (p (b + 1) - 1) / b``; a position returning ``pnl_pct`` percent moves the account by
    ``s(m) pnl_pct / 100``. The reward is ``log(1 + s(m) x) - log(1 + s(1) x)``: what the
    multiplier added to the account's log growth (Kelly 1956: the growth-optimal criterion), zero
    for the Kelly size itself, and measured in the same units for every trade.

    >>> round(log_growth_reward(2.0, 0.6, 1.5, max_position_pct=25.0), 10) == round(math.log1p(0.15 * 0.02) - math.log1p(0.1 * 0.02), 10)
    True
    >>> log_growth_reward(2.0, 0.6, 1.0)
    0.0
    """
    f = (confidence * (payoff_ratio + 1.0) - 1.0) / payoff_ratio
    k = kelly_fraction * max(f, 0.0)
    cap = max_position_pct / 100.0
    x = pnl_pct / 100.0
    return math.log1p(max(min(multiplier * k, cap) * x, -0.99)) - math.log1p(max(min(k, cap) * x, -0.99))


@dataclass
class TrainerHistory:
    """Per-trade and per-update series (kept for the demo artifact and tests)."""

    order_ids: list[str] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    policy_rewards: list[float] = field(default_factory=list)
    multipliers_used: list[float] = field(default_factory=list)
    updates: list[dict[str, float]] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)


class OnlineTrainer:
    """Learns the PPO sizer from feedback events (see the module docstring).

    Parameters
    ----------
    sizer : PPOSizer
    config : TrainerConfig
    checkpoint_dir : Path or None
        Where checkpoints go; None disables them (and acknowledges after each update instead).
    tensorboard_dir : Path or None
        TensorBoard log dir; None disables it.
    metrics : Metrics or None
        Prometheus metrics to update.
    settings : Settings or None
        Checked with :func:`infra.safety.require_prod_write` before ``latest`` moves.
    trades_seen : int
        Trades already learned (from the checkpoint resumed).
    skip_order_ids : iterable of str
        Order ids already learned in the resumed checkpoint's window.
    keep_history : bool
        Record :attr:`history` (per trade; the demo uses it).
    edge : EdgeLearner or None
        The edge-sizer learner (:class:`research.rl_sizer.edge_online.EdgeLearner`); every event
        :meth:`observe` sees is passed to its ``observe`` (it refits and checkpoints on its own
        cadence, 50 / 100 trades, in step with this trainer's).
    """

    def __init__(
        self,
        sizer: PPOSizer,
        *,
        config: TrainerConfig | None = None,
        checkpoint_dir: Path | None = None,
        tensorboard_dir: Path | None = None,
        metrics: Metrics | None = None,
        settings: Settings | None = None,
        trades_seen: int = 0,
        skip_order_ids: Sequence[str] = (),
        learned_order_ids: Sequence[str] = (),
        keep_history: bool = True,
        edge: Any = None,
    ) -> None:
        self.sizer = sizer
        self.config = config or TrainerConfig()
        self.checkpoint_dir = checkpoint_dir
        self.metrics = metrics
        self.settings = settings
        self.trades_seen = trades_seen
        self.keep_history = keep_history
        self.history = TrainerHistory()
        self.behaviour_log_probs: dict[str, float] = {}
        """Log-probs recorded at action time by a sampling governor, keyed by order id."""
        self.skipped_no_logp = 0
        """Feedback events not used by PPO because no behaviour log-probability came with them."""
        self.edge: Any = edge
        """The edge-sizer learner (:class:`research.rl_sizer.edge_online.EdgeLearner`) fed the same events, or None."""
        self._skip = set(skip_order_ids)
        self._window: list[str] = []
        self.learned_order_ids: deque[str] = deque(learned_order_ids, maxlen=self.config.learned_ids_kept)
        """Order ids of the last ``learned_ids_kept`` trades learned, oldest first (checkpointed)."""
        self._learned_ids = set(self.learned_order_ids)
        self._unacked: list[Message] = []
        self._learned = 0
        """Delivered messages learned from but not yet covered by a checkpoint (acked after it)."""
        self._buf_s: list[list[float]] = []
        self._buf_a: list[float] = []
        self._buf_lp: list[float] = []
        self._buf_r: list[float] = []
        self._recent: deque[float] = deque(maxlen=100)
        self._tb_block: list[tuple[float, float, float]] = []
        self._reward_sum = 0.0
        self._reward_sq = 0.0
        self._reward_n = 0
        self._writer: Any = None
        if tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(tensorboard_dir))

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def resume(
        cls, checkpoint_dir: Path, *, config: TrainerConfig | None = None, **kwargs: Any
    ) -> OnlineTrainer:
        """A trainer continuing from the latest checkpoint in ``checkpoint_dir`` (or a fresh sizer)."""
        from research.rl_sizer.checkpoints import CheckpointError
        from research.rl_sizer.ppo_sizer import PPOSizer

        cfg = config or TrainerConfig()
        try:
            sizer, meta = PPOSizer.load(checkpoint_dir)
        except CheckpointError as exc:
            log.info("trainer: starting a fresh policy (%s)", exc)
            return cls(
                PPOSizer(cfg.state_dim, seed=cfg.seed), config=cfg, checkpoint_dir=checkpoint_dir, **kwargs
            )
        log.info("trainer: resumed from %s at %d trades", meta.get("sha256", "")[:12], meta["trades_seen"])
        trainer = cls(
            sizer,
            config=cfg,
            checkpoint_dir=checkpoint_dir,
            trades_seen=int(meta["trades_seen"]),
            skip_order_ids=list(meta.get("window_order_ids", [])),
            learned_order_ids=[str(v) for v in meta.get("learned_order_ids", [])],
            **kwargs,
        )
        rs = meta.get("reward_stats", {})
        trainer._reward_n = int(rs.get("count", 0))
        trainer._reward_sum = float(rs.get("sum", 0.0))
        trainer._reward_sq = float(rs.get("sum_sq", 0.0))
        return trainer

    # -- learning -------------------------------------------------------------------------------
    def observe(self, event: Mapping[str, Any]) -> UpdateResult | None:
        """Add one feedback event; update and checkpoint when due. Returns the update's losses, if any."""
        oid = str(event["order_id"])
        if oid in self._skip:  # checkpoints written before learned_order_ids existed
            self._skip.discard(oid)
            return None
        if oid in self._learned_ids:  # delivered again (a Redis rollback, a reclaim): learned once
            return None
        state = [float(x) for x in event["state"]]
        if len(state) != self.config.state_dim:
            raise ValueError(
                f"The 'state' of rl.feedback {oid} must have {self.config.state_dim} entries. Got {len(state)}."
            )
        lo, hi = self.sizer.config.low, self.sizer.config.high
        m = min(max(float(event["multiplier_used"]), lo), hi)
        lp = self._behaviour_logp(event, oid)
        if lp is None and not self.config.require_behaviour_logp:  # legacy: treats the action as on-policy
            lp = float(self.sizer.log_prob(np.asarray(state), m)[0])
        r = float(event["reward"])
        cfg = self.config
        if cfg.reward == "log_growth":
            u = log_growth_reward(float(event["pnl_pct"]), float(event["confidence"]), m,
                                  kelly_fraction=cfg.kelly_fraction, payoff_ratio=cfg.payoff_ratio,
                                  max_position_pct=cfg.max_position_pct)  # fmt: skip
        else:
            u = policy_reward(r, m, cfg.risk_aversion)
        if lp is None:
            if not self.skipped_no_logp:
                # INFO when the edge learner (the live policy) learns from it: the normal case when
                # the governor sizes with the edge sizer; WARNING when nothing learns from it
                log.log(
                    logging.INFO if self.edge is not None else logging.WARNING,
                    "trainer: rl.feedback %s carries no behaviour_logp: not a PPO sample (the governor must "
                    "sample with explore=True and the bridge copy behaviour_logp into rl.feedback)%s", oid,
                    "; such events still feed the edge learner" if self.edge is not None else "",
                )  # fmt: skip
            self.skipped_no_logp += 1  # no behaviour log-probability: no PPO sample
        else:
            self._buf_s.append(state)
            self._buf_a.append(m)
            self._buf_lp.append(float(lp))
            self._buf_r.append(u)
        if self.edge is not None:
            self.edge.observe(event)
        self._window.append(oid)
        if len(self.learned_order_ids) == self.learned_order_ids.maxlen:
            self._learned_ids.discard(self.learned_order_ids[0])
        self.learned_order_ids.append(oid)
        self._learned_ids.add(oid)
        self.trades_seen += 1
        self._recent.append(r)
        self._reward_n += 1
        self._reward_sum += r
        self._reward_sq += r * r
        if self.metrics is not None:
            self.metrics.rl_rewards_total.inc()
            self.metrics.rl_reward_avg.set(float(np.mean(self._recent)))
            observe_feedback(self.metrics, event)
        if self.keep_history:
            h = self.history
            h.order_ids.append(oid)
            h.rewards.append(r)
            h.policy_rewards.append(u)
            h.multipliers_used.append(m)
        if self._writer is not None:  # means per block of update_every trades: per-trade scalars grew the
            # event files by ~33 MB per 180,000 trades in the hour soak, for as long as the service ran
            self._tb_block.append((r, u, m))
            if len(self._tb_block) >= self.config.update_every:
                means = np.mean(np.asarray(self._tb_block, dtype=np.float64), axis=0)
                for name, v in zip(("reward", "policy_reward", "multiplier_used"), means, strict=True):
                    self._writer.add_scalar(f"feedback/{name}_mean", float(v), self.trades_seen)
                self._tb_block.clear()
        result = None
        # one update per update_every trades (on the samples that carry a behaviour log-prob), so
        # the buffer is empty at every checkpoint, which the exactly-once acknowledgement needs
        if self.trades_seen % self.config.update_every == 0 and self._buf_a:
            result = self._update()
        if self.checkpoint_dir is not None and self.trades_seen % self.config.checkpoint_every == 0:
            self.checkpoint()
        return result

    def _behaviour_logp(self, event: Mapping[str, Any], oid: str) -> float | None:
        """The behaviour policy's log-probability of the action: the event's ``behaviour_logp``
        (``log_prob`` in older events), else one recorded in :attr:`behaviour_log_probs`."""
        recorded = self.behaviour_log_probs.pop(oid, None)
        for key in ("behaviour_logp", "log_prob"):
            v = event.get(key)
            if v is not None:
                v = float(v)
                if not math.isfinite(v):
                    raise ValueError(f"The '{key}' of rl.feedback {oid} must be finite. Got {v!r}.")
                return v
        return recorded

    def _update(self) -> UpdateResult:
        from research.rl_sizer.ppo_sizer import Batch

        batch = Batch(
            np.asarray(self._buf_s),
            np.asarray(self._buf_a),
            np.asarray(self._buf_lp),
            np.asarray(self._buf_r),
        )
        res = self.sizer.update(batch)
        self._buf_s, self._buf_a, self._buf_lp, self._buf_r = [], [], [], []
        step = self.sizer.stats.updates
        if self.keep_history:
            self.history.updates.append({"update": step, "trades_seen": self.trades_seen, **asdict(res)})
        if self.metrics is not None:
            self.metrics.rl_training_steps.inc()
            self.metrics.rl_policy_loss.set(res.policy_loss)
            self.metrics.rl_value_loss.set(res.value_loss)
            self.metrics.rl_multiplier_suggested.observe(self.sizer.get_multiplier(batch.states[-1]))
        if self._writer is not None:
            for k, v in asdict(res).items():
                self._writer.add_scalar(f"ppo/{k}", v, step)
            self._writer.flush()
        log.info(
            "trainer: update %d after %d trades: policy_loss=%.4f value_loss=%.4f entropy=%.3f kl=%.4f",
            step,
            self.trades_seen,
            res.policy_loss,
            res.value_loss,
            res.entropy,
            res.approx_kl,
        )
        return res

    def reward_stats(self) -> dict[str, float]:
        """Count, sum, sum of squares, mean and std of every feedback reward learned."""
        n = self._reward_n
        mean = self._reward_sum / n if n else math.nan
        var = self._reward_sq / n - mean * mean if n else math.nan
        return {
            "count": n,
            "sum": self._reward_sum,
            "sum_sq": self._reward_sq,
            "mean": mean,
            "std": math.sqrt(max(var, 0.0)) if n else math.nan,
        }

    def checkpoint(self) -> Path:
        """Write a checkpoint of the current policy and promote it (a production write in prod)."""
        if self.checkpoint_dir is None:
            raise ValueError("OnlineTrainer.checkpoint needs a 'checkpoint_dir'. Got None.")
        if self.settings is not None:
            from infra.safety import require_prod_write

            require_prod_write(self.settings, "the PPO sizer checkpoint that live sizing loads")
        path = self.sizer.save(
            self.checkpoint_dir,
            step=self.trades_seen,
            meta={
                "trades_seen": self.trades_seen,
                "reward_stats": self.reward_stats(),
                "window_order_ids": self._window,
                "learned_order_ids": list(self.learned_order_ids),
                "config": asdict(self.config),
            },
        )
        self._window = []
        if self.keep_history:
            self.history.checkpoints.append(path.name)
        log.info("trainer: checkpoint %s (%d trades)", path, self.trades_seen)
        return path

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # -- the bus loop ---------------------------------------------------------------------------
    def handle(self, batch: Sequence[Message]) -> Commit:
        """Consumer-loop handler: learn each feedback event; acknowledge what a checkpoint holds.

        Messages are acknowledged once the checkpoint that includes them is written (without a
        checkpoint directory: after each PPO update); until then the loop keeps them pending and
        does not hand them over again. An event the sizer cannot use (e.g. a state of the wrong
        length) is dead-lettered with the reason.
        """
        out = Commit()
        unacked = self._unacked
        for msg in batch:
            try:
                self.observe(msgspec.to_builtins(msg.event))
            except ValueError as exc:  # e.g. a state of the wrong length: unusable, park it
                out.dead.append((msg, str(exc)))
                continue
            self._learned += 1
            unacked.append(msg)
            if self.checkpoint_dir is None:
                if not self._buf_a:
                    out.ack.extend(unacked)
                    unacked.clear()
            elif self.trades_seen % self.config.checkpoint_every == 0:
                out.ack.extend(unacked)
                unacked.clear()
        return out

    def run(
        self,
        bus: Bus,
        *,
        group: str = DEFAULT_GROUP,
        consumer: str = "trainer-1",
        count: int = 100,
        block_ms: int = 500,
        reclaim_idle_ms: int = 600_000,
        stop: threading.Event | None = None,
        until_idle: bool = False,
        max_deliveries: int = MAX_DELIVERIES,
    ) -> int:
        """Consume ``rl.feedback`` until ``stop`` is set (or until idle); returns trades learned.

        Runs the bus's consumer loop (:class:`infra.bus.Consumer`): invalid events go to the
        dead-letter stream with the reason, Redis outages are waited out.
        """
        self._learned = 0
        loop = Consumer(
            bus,
            [TOPIC_FEEDBACK],
            group,
            consumer,
            self.handle,
            count=count,
            block_ms=block_ms,
            reclaim_idle_ms=reclaim_idle_ms,
            max_deliveries=max_deliveries,
        )
        loop.held.update((m.topic, m.id) for m in self._unacked)
        loop.run(stop=stop, until_idle=until_idle)
        return self._learned


def service_trainer(
    settings: Settings, *, checkpoint_dir: Path | None = None, tensorboard: bool = True, metrics: Any = None
) -> OnlineTrainer:
    """The trainer the service runs: PPO (the baseline) and the edge learner, both resumed.

    The edge sizer (the default live policy) learns from the same stream; its checkpoints are what
    ``python -m research.rl_sizer.serving --policy edge`` (and :mod:`sim.paper`) load. A service
    runs for weeks, so it keeps no per-trade history (``keep_history=False``): in the one-hour
    soak that history grew the trainer's RSS by ~30 MB per 180,000 trades.
    """
    from research.rl_sizer.edge_online import EdgeLearner
    from research.rl_sizer.serving import checkpoint_dir as ppo_dir
    from research.rl_sizer.serving import edge_checkpoint_dir

    board = settings.research_dir / "tensorboard"
    edge = EdgeLearner.resume(
        edge_checkpoint_dir(settings),
        settings=settings,
        tensorboard_dir=board / "edge_sizer" if tensorboard else None,
    )
    return OnlineTrainer.resume(
        checkpoint_dir or ppo_dir(settings),
        metrics=metrics,
        settings=settings,
        tensorboard_dir=board / "ppo_sizer" if tensorboard else None,
        edge=edge,
        keep_history=False,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: consume ``rl.feedback`` until SIGTERM/SIGINT (or until idle with ``--once``)."""
    import torch

    from infra.prom import make_metrics, start_service_metrics
    from infra.safety import require_prod_write
    from infra.settings import load_settings

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(
        prog="python -m research.rl_sizer.trainer", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--bus", default=None, help="bus URL (default: EVENTBUS_URL, else memory://)")
    parser.add_argument("--once", action="store_true", help="exit when no feedback is left")
    parser.add_argument("--group", default=DEFAULT_GROUP, help="consumer group (default %(default)s)")
    parser.add_argument("--consumer", default=f"trainer-{socket.gethostname()}", help="stable consumer name")
    parser.add_argument(
        "--reclaim-idle-ms", type=int, default=600_000,
        help="take over other consumers' entries pending longer than this (default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--checkpoint-dir", type=Path, default=None, help="default: RESEARCH_DIR/checkpoints/ppo_sizer"
    )
    parser.add_argument(
        "--metrics-port", type=int, default=None, help="/metrics port (default METRICS_PORT; -1: off)"
    )
    parser.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = load_settings()
    require_prod_write(settings, "the PPO sizer checkpoint that live sizing loads")
    url = args.bus or settings.eventbus_url
    bus = connect_bus(url)
    metrics = make_metrics()
    port = settings.metrics_port if args.metrics_port is None else args.metrics_port
    server = start_service_metrics(
        metrics, "trainer", bus=bus, topics=(TOPIC_FEEDBACK,), settings=settings, port=port
    )
    trainer = service_trainer(
        settings, checkpoint_dir=args.checkpoint_dir, tensorboard=not args.no_tensorboard, metrics=metrics
    )
    edge = trainer.edge
    stop = stop_on_signals("trainer")
    log.info("trainer: consuming %s as %s/%s on %s", TOPIC_FEEDBACK, args.group, args.consumer, url)
    n = trainer.run(bus, group=args.group, consumer=args.consumer, stop=stop, until_idle=args.once,
                    reclaim_idle_ms=args.reclaim_idle_ms)  # fmt: skip
    log.info("trainer stopped: %d trades learned, %d seen in total", n, trainer.trades_seen)
    trainer.close()
    if edge is not None:
        edge.close()
    if server is not None:
        server.shutdown()
    bus.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="python -m research.rl_sizer.trainer"))
