"""The learning loop on the demo data, in memory: signals -> governor -> paper execution -> bridge -> trainer.

The demo trades (oldest first) are the signals with their outcomes: each has the model's
confidence, the bar volatility and the regime at entry (the state ``[confidence, volatility,
regime]``), and the price path of the round trip. The first ``train_share`` of them are traded
online in chunks of 50:

1. the governor sizes each trade: half Kelly from the confidence times a multiplier *sampled* from
   the current PPO policy (exploration; the log-probability is kept for the trainer);
2. paper execution: the trade's price path with that size (PnL and fees scale with the size);
3. the chunk is replayed as execution / position-update / close events into a private
   :class:`~infra.bus.MemoryBus`; the :class:`~execution.feedback_bridge.FeedbackBridge`
   turns them into ``rl.feedback``;
4. the :class:`~research.rl_sizer.trainer.OnlineTrainer` consumes the feedback (one PPO update per
   50 trades, a checkpoint per 100 under ``research_dir/checkpoints/ppo_sizer_demo``).

The remaining trades are the hold-out: the same trades are sized once with static Kelly and once
with the trained policy (deterministic multiplier), and the per-trade account returns
``size_pct / 100 * pnl_pct / 100`` are compared with :func:`execution.metrics_normalizer.sharpe_ratio`
(``periods_per_year`` = hold-out trades per year of its time span).
"""

from __future__ import annotations

import logging
import math
import shutil
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from scripts.demo_context import DemoContext

log = logging.getLogger(__name__)

EQUITY_USD = 100_000.0
CHUNK = 50


def _finite_or_none(x: float) -> float | None:
    """``x`` as a float, or ``None`` when NaN/inf (e.g. a zero-variance Sharpe): the contract's "undefined"."""
    v = float(x)
    return v if math.isfinite(v) else None


def _states(trades: pd.DataFrame) -> np.ndarray:
    cols = []
    for name in ("confidence", "volatility", "regime"):
        col = trades[name] if name in trades else pd.Series(0.0, index=trades.index)
        cols.append(pd.to_numeric(col, errors="coerce").fillna(0.0).to_numpy(float))
    return np.column_stack(cols)


def _histogram(values: np.ndarray, bins: int = 30) -> dict[str, list[float]]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"edges": [], "counts": []}
    counts, edges = np.histogram(v, bins=bins)
    return {"edges": edges.tolist(), "counts": counts.astype(float).tolist()}


def holdout_returns(
    trades: pd.DataFrame, states: np.ndarray, governor: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-trade account returns, sizes (% of equity) and multipliers of ``governor`` on ``trades``."""
    pnl_frac = (trades["pnl_usd"] / trades["size_usd"]).to_numpy(float)
    sizes = np.empty(len(trades))
    mults = np.empty(len(trades))
    for i, (conf, s) in enumerate(zip(trades["confidence"].to_numpy(float), states, strict=True)):
        d = governor.size(confidence=float(conf), state=s)
        sizes[i], mults[i] = d.size_pct, d.multiplier
    return sizes / 100.0 * pnl_frac, sizes, mults


class _Constant:
    """A constant multiplier as a governor policy."""

    name = "const"

    def __init__(self, m: float) -> None:
        self.m = m

    def get_multiplier(self, state: Any) -> float:
        return self.m


CONST_GRID = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0)


def best_constant_multiplier(trades: pd.DataFrame, states: np.ndarray, gcfg: Any) -> float:
    """The constant multiplier with the highest log growth on ``trades`` (the training trades)."""
    from execution.governor import Governor

    scores = {}
    for m in CONST_GRID:
        r, _, _ = holdout_returns(trades, states, Governor(gcfg, policy=_Constant(m)))
        scores[m] = float(np.log1p(r).sum())
    return max(scores, key=lambda k: scores[k])


def _terciles(x: np.ndarray) -> np.ndarray:
    return np.quantile(x, [1 / 3, 2 / 3]) if len(x) else np.array([0.5, 0.5])


def holdout_growth(returns: dict[str, np.ndarray], *, seed: int, n_boot: int = 1000) -> dict[str, Any]:
    """Cumulative hold-out log growth per policy and each policy's difference to Kelly with a 95%
    moving-block bootstrap interval (blocks of ``ceil(T^(1/3))`` trades, Kunsch 1989); the band of
    the cumulative difference at trade ``t`` is ``+-1.96 sqrt(t) sd(d)`` (independent trades)."""
    from research.rl_sizer.ab_stats import block_indices

    logs = {k: np.log1p(np.asarray(v, dtype=np.float64)) for k, v in returns.items()}
    t = len(logs["kelly"])
    out: dict[str, Any] = {"trade": list(range(1, t + 1)), "cumulative": {}, "diff": {}, "final": {}}
    idx = block_indices(
        t, n_boot=n_boot, block=max(1, math.ceil(t ** (1 / 3))), rng=np.random.default_rng(seed)
    )
    for k, lg in logs.items():
        out["cumulative"][k] = np.cumsum(lg).tolist()
        out["final"][k] = float(lg.sum())
        if k == "kelly":
            continue
        d = lg - logs["kelly"]
        boots = d[idx].sum(axis=0)
        lo, hi = np.percentile(boots, [2.5, 97.5])
        sd = float(d.std(ddof=1)) if t > 1 else 0.0
        band = 1.96 * sd * np.sqrt(np.arange(1, t + 1))
        out["diff"][k] = {"total": float(d.sum()), "ci": [float(lo), float(hi)],
                          "per_1k": float(d.mean() * 1000.0), "band": band.tolist()}  # fmt: skip
    parts = []
    for k, v in out["diff"].items():
        lo, hi = v["ci"]
        sig = "above Kelly" if lo > 0 else ("below Kelly" if hi < 0 else "no difference from Kelly shown")
        parts.append(f"{k.upper()} {v['total']:+.4f} [{lo:+.4f}, {hi:+.4f}] ({sig})")
    out["verdict"] = (
        f"Hold-out log growth vs static Kelly on {t} trades (95% block bootstrap): " + "; ".join(parts) + "."
    )
    return out


def bucket_table(
    trades: pd.DataFrame,
    states: np.ndarray,
    gcfg: Any,
    *,
    edge_policy: Any,
    ppo: Any,
    const: float,
    conf_edges: np.ndarray,
) -> list[dict[str, Any]]:
    """Per (regime x confidence tercile) bucket of the hold-out trades: the learned edge and its
    s.e. at the bucket's mean state, the multiplier each policy chooses there, and the hindsight
    best multiplier of the bucket's hold-out trades (an upper bound: it sees the outcomes)."""
    from execution.governor import Governor

    regime = np.rint(states[:, 2]).astype(int)
    cb = np.searchsorted(conf_edges, states[:, 0], side="right")
    rows = []
    for g in np.unique(regime):
        for c in range(len(conf_edges) + 1):
            sel = (regime == g) & (cb == c)
            if not sel.any():
                continue
            mean_state = states[sel].mean(axis=0)
            mean_state[2] = g
            row: dict[str, Any] = {"regime": int(g), "confidence_bucket": int(c),
                                   "confidence": float(mean_state[0]), "trades": int(sel.sum())}  # fmt: skip
            if edge_policy is not None:
                info = edge_policy.explain(mean_state)
                row.update(edge=info["edge"], edge_se=info["edge_se"], no_edge=info["no_edge"],
                           edge_multiplier=edge_policy.get_multiplier(mean_state))  # fmt: skip
            row["ppo_multiplier"] = float(ppo.get_multiplier(mean_state))
            row["const_multiplier"] = const
            row["kelly_multiplier"] = 1.0
            sub = trades[sel].reset_index(drop=True)
            best, best_score = 1.0, -math.inf
            for m in CONST_GRID:
                r, _, _ = holdout_returns(sub, states[sel], Governor(gcfg, policy=_Constant(m)))
                score = float(np.log1p(r).sum())
                if score > best_score:
                    best, best_score = m, score
            row["hindsight_best_multiplier"] = best
            rows.append(row)
    return rows


def run_learning_demo(ctx: DemoContext, *, train_share: float = 0.7, max_trades: int = 3000) -> str:
    """Run the loop (module docstring) and write the ``learning_loop`` artifact; returns a summary line."""
    import torch

    from execution.feedback_bridge import FeedbackBridge
    from execution.governor import Governor, GovernorConfig
    from execution.metrics_normalizer import sharpe_ratio
    from infra.bus import MemoryBus
    from infra.loaders import load_trades
    from research.rl_sizer.edge_online import EdgeLearner, EdgeLearnerConfig
    from research.rl_sizer.ppo_sizer import PPOSizer
    from research.rl_sizer.trainer import OnlineTrainer, TrainerConfig
    from sim.replay import replay, trade_events

    torch.set_num_threads(1)
    trades = load_trades(ctx.trades_path).sort_values("opened_at", kind="stable").reset_index(drop=True)
    trades = trades.iloc[:max_trades]
    n = len(trades)
    split = int(n * train_share)
    if split < CHUNK or n - split < 10:
        raise ValueError(
            f"the learning-loop demo needs at least {CHUNK + 10} trades; {ctx.trades_path} has {n}"
        )
    states = _states(trades)
    gcfg = GovernorConfig(kelly_fraction=0.5, max_position_pct=25.0)
    quiet = logging.getLogger("execution.governor")
    old_level = quiet.level
    quiet.setLevel(logging.WARNING)  # one line per decision is for live sizing, not 1,000 demo trades

    ckdir = ctx.settings.research_dir / "checkpoints" / "ppo_sizer_demo"
    edge_dir = ctx.settings.research_dir / "checkpoints" / "edge_sizer_demo"
    shutil.rmtree(ckdir, ignore_errors=True)
    shutil.rmtree(edge_dir, ignore_errors=True)
    sizer = PPOSizer(3, seed=ctx.seed)
    edge = EdgeLearner(
        config=EdgeLearnerConfig(kelly_fraction=gcfg.kelly_fraction, payoff_ratio=gcfg.payoff_ratio),
        checkpoint_dir=edge_dir,
        tensorboard_dir=ctx.settings.research_dir / "tensorboard" / "edge_sizer_demo",
        settings=ctx.settings,
    )
    trainer = OnlineTrainer(
        sizer,
        config=TrainerConfig(
            seed=ctx.seed, kelly_fraction=gcfg.kelly_fraction, max_position_pct=gcfg.max_position_pct
        ),
        checkpoint_dir=ckdir,
        tensorboard_dir=ctx.settings.research_dir / "tensorboard" / "ppo_sizer_demo",
        settings=ctx.settings,
        edge=edge,
    )
    bus = MemoryBus()
    bridge = FeedbackBridge(bus, consumer="learning-demo", block_ms=0)
    # the governor samples the PPO policy being trained and records each draw's behaviour log-prob
    # (live, SizingDecision.execution_fields() puts it into trade.execution.res as behaviour_logp)
    governor = Governor(
        GovernorConfig(
            kelly_fraction=gcfg.kelly_fraction, max_position_pct=gcfg.max_position_pct, explore=True
        ),
        policy=sizer,
        policy_info="demo: sampling the PPO policy being trained",
    )
    suggested: dict[str, float] = {}
    skipped = 0
    try:
        for start in range(0, split, CHUNK):
            chunk = trades.iloc[start : min(start + CHUNK, split)].copy()
            sizes = np.empty(len(chunk))
            mults = np.empty(len(chunk))
            for i, (oid, conf) in enumerate(zip(chunk["order_id"], chunk["confidence"], strict=True)):
                s = states[start + i]
                suggested[str(oid)] = sizer.get_multiplier(s)
                d = governor.size(confidence=float(conf), state=s)
                sizes[i], mults[i] = d.size_pct, d.multiplier
                if d.behaviour_logp is not None:
                    trainer.behaviour_log_probs[str(oid)] = d.behaviour_logp
            scale = EQUITY_USD * sizes / 100.0 / chunk["size_usd"].to_numpy(float)
            chunk["size_usd"] = EQUITY_USD * sizes / 100.0
            chunk["pnl_usd"] = chunk["pnl_usd"].to_numpy(float) * scale
            chunk["fees_usd"] = chunk["fees_usd"].to_numpy(float) * scale
            chunk["multiplier"] = mults
            taken = chunk[chunk["size_usd"] > 0]  # no edge, no position: nothing to learn from
            skipped += len(chunk) - len(taken)
            replay(bus, trade_events(taken, updates_per_trade=1, seed=ctx.seed))
            bridge.run(until_idle=True)
            trainer.run(bus, consumer="learning-demo", block_ms=0, until_idle=True)
    finally:
        trainer.close()
        edge.close()
        quiet.setLevel(old_level)

    hold = trades.iloc[split:].reset_index(drop=True)
    hs = states[split:]
    train_rows = trades.iloc[:split].reset_index(drop=True)
    quiet.setLevel(logging.ERROR)  # the baseline is static on purpose: no fallback warning
    try:
        static = Governor(gcfg, policy_info="static Kelly baseline")
        rl = Governor(gcfg, policy=sizer, policy_info="trained PPO policy (deterministic)")
        r_before, size_before, _ = holdout_returns(hold, hs, static)
        r_after, size_after, m_after = holdout_returns(hold, hs, rl)
        const_m = best_constant_multiplier(train_rows, states[:split], gcfg)
        r_const, _, _ = holdout_returns(hold, hs, Governor(gcfg, policy=_Constant(const_m)))
        edge_policy = edge.policy()
        if edge_policy is not None:
            r_edge, _, m_edge = holdout_returns(hold, hs, Governor(gcfg, policy=edge_policy))
        else:
            r_edge, m_edge = r_before, np.ones(len(hold))
    finally:
        quiet.setLevel(old_level)
    span_days = max((hold["closed_at"].max() - hold["opened_at"].min()).total_seconds() / 86400.0, 1.0)
    ppy = len(hold) / span_days * 365.0
    h = trainer.history
    rewards = np.asarray(h.rewards)
    data: dict[str, Any] = {
        "summary": {
            "trades": n,
            "train_trades": split,
            "holdout_trades": len(hold),
            "skipped_no_edge": skipped,
            "feedback_learned": len(h.rewards),
            "updates": sizer.stats.updates,
            "checkpoints": h.checkpoints,
            "checkpoint_dir": str(ckdir),
            "equity_usd": EQUITY_USD,
            "governor": {k: v for k, v in governor.status().items() if k != "config"},
            "governor_config": governor.status()["config"],
            "risk_aversion": trainer.config.risk_aversion,
        },
        "reward_distribution": _histogram(rewards),
        "cumulative_reward": {
            "trade": list(range(1, len(rewards) + 1)),
            "reward": np.cumsum(rewards).tolist(),
            "policy_reward": np.cumsum(h.policy_rewards).tolist(),
        },
        "losses": h.updates,
        "multipliers": {
            "order_id": h.order_ids,
            "used": h.multipliers_used,
            "suggested": [suggested.get(o, float("nan")) for o in h.order_ids],
        },
        "sharpe": {
            "before": _finite_or_none(sharpe_ratio(r_before, periods_per_year=ppy)),  # None: undefined
            "after": _finite_or_none(sharpe_ratio(r_after, periods_per_year=ppy)),
            "periods_per_year": ppy,
            "n_trades": len(hold),
            "from": hold["opened_at"].min().isoformat(),
            "to": hold["closed_at"].max().isoformat(),
            "mean_size_pct_before": float(size_before.mean()),
            "mean_size_pct_after": float(size_after.mean()),
            "mean_multiplier_after": float(m_after.mean()),
            "total_return_before": float(r_before.sum()),
            "total_return_after": float(r_after.sum()),
        },
    }
    growth = holdout_growth(
        {"kelly": r_before, "const": r_const, "edge": r_edge, "ppo": r_after}, seed=ctx.seed
    )
    data["summary"]["edge"] = {
        "trades_seen": edge.trades_seen,
        "refits": edge.refits,
        "valid": edge.ready,
        "risk_unit_pct": edge.risk_unit_,
        "checkpoint_dir": str(edge_dir),
        "best_constant": const_m,
        "mean_multiplier_holdout": float(np.mean(m_edge)),
        "ppo_samples_skipped_no_logp": trainer.skipped_no_logp,
    }
    data["holdout_growth"] = growth
    data["buckets"] = bucket_table(
        hold,
        hs,
        gcfg,
        edge_policy=edge_policy,
        ppo=sizer,
        const=const_m,
        conf_edges=_terciles(states[:split, 0]),
    )
    data["verdict"] = growth["verdict"]
    ctx.store.write("learning_loop", data, source="research.rl_sizer.trainer")
    sh = {k: "n/a" if data["sharpe"][k] is None else f"{data['sharpe'][k]:.2f}" for k in ("before", "after")}
    lg = growth["final"]
    return (
        f"{len(h.rewards)} feedback events learned in {sizer.stats.updates} PPO updates and "
        f"{edge.refits} edge refits; hold-out log growth on {len(hold)} trades: Kelly {lg['kelly']:+.4f}, "
        f"edge {lg['edge']:+.4f}, PPO {lg['ppo']:+.4f}; Sharpe {sh['before']} static -> {sh['after']} PPO"
    )
