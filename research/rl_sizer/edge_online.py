"""Online learning of the edge sizer from ``rl.feedback``: refit every 50 trades, checkpoint every 100.

:class:`EdgeLearner` is fed one feedback event at a time by the trainer's consume loop
(``OnlineTrainer.observe`` passes every event on). It keeps the closed trades' states and outcomes,
refits :class:`~research.rl_sizer.edge_sizer.EdgeSizer` on them every ``refit_every`` trades, writes
an atomic checkpoint (:mod:`research.rl_sizer.checkpoints`: the fitted model *and* the trades it
was fitted on, so a restart refits from the same data) every ``checkpoint_every`` trades, and logs
TensorBoard scalars (learned edge slope per regime, trades, multiplier at a reference state).

Outcome per unit risk
    A feedback event carries the position's return ``pnl_pct`` (percent of its notional, after
    fees) but not its stop distance. The edge model wants the net return per unit risk ``y`` on the
    scale of the claimed edge ``p (b + 1) - 1`` (wins ``+b``, losses ``-1``). The learner takes the
    unit of risk as the mean absolute return of the trades seen (``risk_unit_``), which for
    barrier exits is the barrier distance, so ``y = pnl_pct / risk_unit_``. Costs are in
    ``pnl_pct``, so the model learns the *net* edge and its prior is the claim without costs.

Multiplier
    Online there is no env to tune the global fraction through, so the learner sizes at
    ``fraction = kelly_fraction`` (the governor's base fraction): the multiplier is the learned
    full-Kelly stake over the claim's, ``f(x) / f*(p)``, clamped to [0.5, 2.0] -- 1.0 while the
    learned edge equals the claim, and the lower clamp (with ``no_edge``) where it is <= 0.
    Before ``min_trades`` trades the model is not served (the governor stays on static Kelly).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from infra.validate import check_int
from research.rl_sizer.edge_sizer import EdgeSizer

if TYPE_CHECKING:
    from infra.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class EdgeLearnerConfig:
    """Parameters of :class:`EdgeLearner`."""

    refit_every: int = 50
    """Trades between two refits."""
    checkpoint_every: int = 100
    """Trades between two checkpoints (a multiple of ``refit_every``)."""
    min_trades: int = 100
    """Trades before the first fit is considered valid for serving."""
    window: int = 20_000
    """Most recent trades kept and fitted on."""
    kelly_fraction: float = 0.5
    """The governor's base fraction of Kelly."""
    payoff_ratio: float = 1.0
    """The governor's payoff ratio ``b``."""
    prior_strength: float = 20.0
    """Pseudo-trades of the prior on each term of the edge model."""
    min_multiplier: float = 0.5
    """Lower clamp."""
    max_multiplier: float = 2.0
    """Upper clamp."""

    def __post_init__(self) -> None:
        for name in ("refit_every", "checkpoint_every", "min_trades", "window"):
            check_int(getattr(self, name), param=name, func="EdgeLearnerConfig", minimum=1)
        if self.checkpoint_every % self.refit_every:
            raise ValueError(
                "The 'checkpoint_every' parameter of EdgeLearnerConfig must be a multiple of 'refit_every' "
                f"({self.refit_every}). Got {self.checkpoint_every!r} instead."
            )


class EdgeLearner:
    """Learns the edge sizer from feedback events (module docstring).

    Parameters
    ----------
    config : EdgeLearnerConfig
    checkpoint_dir : Path or None
        Where checkpoints go (None: none).
    tensorboard_dir : Path or None
        TensorBoard log dir (None: none).
    settings : Settings or None
        Checked with :func:`infra.safety.require_prod_write` before a checkpoint is promoted.
    """

    name = "edge"

    def __init__(
        self,
        *,
        config: EdgeLearnerConfig | None = None,
        checkpoint_dir: Path | None = None,
        tensorboard_dir: Path | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.config = config or EdgeLearnerConfig()
        self.checkpoint_dir = checkpoint_dir
        self.settings = settings
        self.trades_seen = 0
        self.refits = 0
        self.sizer: EdgeSizer | None = None
        self.risk_unit_: float = float("nan")
        w = self.config.window  # the newest `window` trades: the oldest leaves as a new one comes in
        self._x: deque[list[float]] = deque(maxlen=w)
        self._pnl: deque[float] = deque(maxlen=w)
        self._seen_ids: deque[str] = deque(maxlen=w)
        self._ids: set[str] = set()
        self._writer: Any = None
        if tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(tensorboard_dir))

    # ------------------------------------------------------------------ learning
    def observe(self, event: Mapping[str, Any]) -> bool:
        """Add one ``rl.feedback`` event; refit and checkpoint when due. Returns True after a refit."""
        oid = str(event.get("order_id", ""))
        try:
            state = [float(v) for v in event["state"]]
            pnl = float(event["pnl_pct"])
            conf = float(event["confidence"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"rl.feedback {oid!r} is not usable by the edge learner: {type(exc).__name__}: {exc}"
            ) from exc
        if len(state) < 3:
            raise ValueError(
                f"The 'state' of rl.feedback {oid!r} must be [confidence, volatility, regime, ...]. Got {state!r}."
            )
        x = state[:3]
        _ = conf  # validated above: the claim the governor sized from is state[0]
        if oid and oid in self._ids:  # redelivered after a restart: learned once only
            return False
        if not (all(math.isfinite(v) for v in x) and math.isfinite(pnl)):
            raise ValueError(f"rl.feedback {oid!r} has a non-finite state or pnl_pct: {x!r}, {pnl!r}.")
        if len(self._seen_ids) == self._seen_ids.maxlen:  # O(1) per trade, not a rebuild of the id set
            self._ids.discard(self._seen_ids[0])
        self._x.append(x)
        self._pnl.append(pnl)
        self._seen_ids.append(oid)
        self._ids.add(oid)
        self.trades_seen += 1
        refit = False
        if self.trades_seen % self.config.refit_every == 0:
            self.refit()
            refit = True
        if self.checkpoint_dir is not None and self.trades_seen % self.config.checkpoint_every == 0:
            self.checkpoint()
        return refit

    def refit(self) -> EdgeSizer:
        """Fit the edge sizer on the kept trades."""
        x = np.asarray(self._x, dtype=np.float64)
        pnl = np.asarray(self._pnl, dtype=np.float64)
        scale = float(np.mean(np.abs(pnl))) if len(pnl) else 0.0
        self.risk_unit_ = scale if scale > 0 else 1.0
        cfg = self.config
        sizer = EdgeSizer(
            payoff_ratio=cfg.payoff_ratio, kelly_fraction=cfg.kelly_fraction, prior_strength=cfg.prior_strength,
            min_multiplier=cfg.min_multiplier, max_multiplier=cfg.max_multiplier, fraction=cfg.kelly_fraction,
            n_regimes=max(int(np.rint(x[:, 2]).max()) + 1, 1) if len(x) else 1,
        )  # fmt: skip
        self.sizer = sizer.fit(x, pnl / self.risk_unit_)
        self.refits += 1
        if self._writer is not None:
            slope = sizer.coef_[0] + sizer.coef_[1 : 1 + sizer.n_regimes_]
            for g, v in enumerate(slope):
                self._writer.add_scalar(f"edge/calibration_slope_regime{g}", 1.0 + float(v), self.trades_seen)
            self._writer.add_scalar("edge/trades", len(x), self.trades_seen)
            self._writer.add_scalar("edge/risk_unit_pct", self.risk_unit_, self.trades_seen)
            mu = sizer.predict(x[-self.config.refit_every :])
            self._writer.add_scalar("edge/mean_learned_edge_recent", float(mu.mean()), self.trades_seen)
            self._writer.add_scalar("edge/share_no_edge_recent", float(np.mean(mu <= 0)), self.trades_seen)
            self._writer.flush()
        return sizer

    @property
    def ready(self) -> bool:
        """Whether the model has seen ``min_trades`` trades (valid for serving)."""
        return self.sizer is not None and self.sizer.n_trades_ >= self.config.min_trades

    def policy(self) -> EdgePolicy | None:
        """The current model as a governor policy, or None before ``min_trades``."""
        return EdgePolicy(self.sizer) if self.ready and self.sizer is not None else None

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: config, counters, kept trades and the fitted model."""
        return {
            "kind": "edge",
            "config": asdict(self.config),
            "trades_seen": self.trades_seen,
            "refits": self.refits,
            "risk_unit": self.risk_unit_,
            "x": list(self._x),
            "pnl_pct": list(self._pnl),
            "order_ids": list(self._seen_ids),
            "model": self.sizer.to_dict() if self.sizer is not None else None,
        }

    def checkpoint(self) -> Path:
        """Atomic checkpoint (model + trades) and ``latest`` moved to it (a production write in prod)."""
        if self.checkpoint_dir is None:
            raise ValueError("EdgeLearner.checkpoint needs a 'checkpoint_dir'. Got None.")
        if self.settings is not None:
            from infra.safety import require_prod_write

            require_prod_write(self.settings, "the edge sizer checkpoint that live sizing loads")
        from research.rl_sizer.checkpoints import write_checkpoint

        payload = msgspec.json.encode(self.state_dict())  # 4 ms for a full window; json.dumps: 27 ms
        meta = {"kind": "edge", "trades_seen": self.trades_seen, "refits": self.refits, "valid": self.ready}
        path = write_checkpoint(self.checkpoint_dir, step=self.trades_seen, payload=payload, meta=meta)
        log.info("edge learner: checkpoint %s (%d trades)", path, self.trades_seen)
        return path

    @classmethod
    def from_state(cls, state: Mapping[str, Any], **kwargs: Any) -> EdgeLearner:
        """Rebuild a learner from :meth:`state_dict` output."""
        if state.get("kind") != "edge":
            raise ValueError(f"not an edge learner state (kind {state.get('kind')!r})")
        learner = cls(config=EdgeLearnerConfig(**state["config"]), **kwargs)
        learner.trades_seen = int(state["trades_seen"])
        learner.refits = int(state["refits"])
        risk = state["risk_unit"]  # JSON has no NaN: a learner that never refitted stores null
        learner.risk_unit_ = float("nan") if risk is None else float(risk)
        learner._x.extend(list(map(float, r)) for r in state["x"])
        learner._pnl.extend(float(v) for v in state["pnl_pct"])
        learner._seen_ids.extend(str(v) for v in state["order_ids"])
        learner._ids = set(learner._seen_ids)
        if state.get("model") is not None:
            learner.sizer = EdgeSizer.from_dict(state["model"])
        return learner

    @classmethod
    def resume(cls, checkpoint_dir: Path, **kwargs: Any) -> EdgeLearner:
        """The learner of the latest checkpoint in ``checkpoint_dir``, or a fresh one."""
        from research.rl_sizer.checkpoints import CheckpointError, load_checkpoint

        try:
            ckpt = load_checkpoint(checkpoint_dir)
            return cls.from_state(msgspec.json.decode(ckpt.payload), checkpoint_dir=checkpoint_dir, **kwargs)
        except (CheckpointError, ValueError, KeyError) as exc:
            log.info("edge learner: starting fresh (%s)", exc)
            return cls(checkpoint_dir=checkpoint_dir, **kwargs)

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class EdgePolicy:
    """A fitted :class:`EdgeSizer` as the governor's policy: ``get_multiplier`` and ``explain``."""

    name = "edge"

    def __init__(self, sizer: EdgeSizer) -> None:
        self.sizer = sizer

    def get_multiplier(self, state: Sequence[float] | np.ndarray) -> float:
        return self.sizer.get_multiplier(np.asarray(state, dtype=np.float64)[:3])

    def explain(self, state: Sequence[float] | np.ndarray) -> dict[str, Any]:
        return self.sizer.explain(np.asarray(state, dtype=np.float64)[:3])


def load_edge_policy(directory: Path) -> tuple[EdgePolicy | None, str]:
    """Load and hash-verify the latest edge checkpoint; ``(policy, message)`` or ``(None, why not)``.

    A checkpoint fitted on fewer than ``min_trades`` trades is not valid for serving.
    """
    from research.rl_sizer.checkpoints import CheckpointError, load_checkpoint

    try:
        ckpt = load_checkpoint(directory)
    except CheckpointError as exc:
        return None, str(exc)
    try:
        learner = EdgeLearner.from_state(msgspec.json.decode(ckpt.payload))
    except (ValueError, KeyError, TypeError) as exc:
        return None, f"checkpoint {ckpt.path} is not an edge sizer: {type(exc).__name__}: {exc}"
    policy = learner.policy()
    if policy is None:
        return None, (
            f"checkpoint {ckpt.path} was fitted on {learner.trades_seen} trades, fewer than the "
            f"{learner.config.min_trades} needed"
        )
    return policy, f"loaded {ckpt.path} (edge sizer, {learner.trades_seen} trades)"
