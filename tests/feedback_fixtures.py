"""Synthetic closed-trade logs for the event-bus, bridge and replay tests (known answers)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from execution.reward_calculator import compute_reward


def make_trades(n: int, *, seed: int = 0) -> pd.DataFrame:
    """``n`` closed trades obeying the contract; ``max_adverse_pct >= the loss at close``."""
    rng = np.random.default_rng(seed)
    opened = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(
        np.sort(rng.integers(0, 90 * 24 * 60, n)), unit="min"
    )
    dur = pd.to_timedelta(rng.integers(1, 3 * 24 * 60, n), unit="min")
    size = rng.uniform(500, 5000, n).round(2)
    pnl_pct = rng.normal(0.1, 2.0, n)
    adverse = np.maximum(np.abs(rng.normal(1.0, 1.5, n)), np.maximum(-pnl_pct, 0.0))
    entry = rng.uniform(10, 100, n)
    side = np.where(rng.random(n) < 0.5, "LONG", "SHORT")
    sign = np.where(side == "LONG", 1.0, -1.0)
    return pd.DataFrame(
        {
            "order_id": [f"o-{i:05d}" for i in range(n)],
            "symbol": rng.choice(["BTCUSDT", "ETHUSDT", "SOLUSDT"], n),
            "route": "binance_direct",
            "side": side,
            "opened_at": opened,
            "closed_at": opened + dur,
            "entry_price": entry,
            "exit_price": entry * (1 + sign * pnl_pct / 100),
            "size_usd": size,
            "fees_usd": 0.0,
            "pnl_usd": size * pnl_pct / 100,
            "confidence": rng.uniform(0.5, 0.99, n),
            "multiplier": rng.uniform(0.5, 2.0, n),
            "max_adverse_pct": adverse,
            "volatility": rng.uniform(0.001, 0.02, n),
            "regime": rng.integers(0, 3, n),
        }
    )


def expected_feedback(trades: pd.DataFrame) -> dict[str, dict[str, float]]:
    """What the bridge must publish per order, computed straight from the trade log."""
    out: dict[str, dict[str, float]] = {}
    for r in trades.itertuples(index=False):
        pnl_pct = r.pnl_usd / r.size_usd * 100
        dur = (r.closed_at - r.opened_at).total_seconds() / 60
        dd = max(r.max_adverse_pct, -pnl_pct, 0.0)
        out[r.order_id] = {
            "pnl_usd": r.pnl_usd,
            "pnl_pct": pnl_pct,
            "duration_mins": dur,
            "max_drawdown_pct": dd,
            "reward": compute_reward(
                pnl_pct=pnl_pct, duration_mins=dur, max_drawdown_pct=dd, confidence=r.confidence
            ),
            "confidence": r.confidence,
            "multiplier_used": r.multiplier,
        }
    return out
