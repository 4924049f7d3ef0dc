"""Demo step: feedback (moved from execution.feedback_bridge: no demo code in a service)."""

from __future__ import annotations

from dataclasses import asdict

from execution.feedback_bridge import FeedbackBridge
from scripts.demo_context import DemoContext


def demo_step(ctx: DemoContext) -> str:
    """Replay the demo trades through the bridge on the in-memory bus; write the ``feedback`` artifact."""
    from execution.feedback_report import feedback_report
    from infra.loaders import load_trades
    from sim.replay import replay, trade_events

    trades = load_trades(ctx.trades_path)
    events = trade_events(
        trades,
        updates_per_trade=2,
        duplicate_rate=0.02,
        shuffle_window=32,
        late_executions=0.02,
        seed=ctx.seed,
    )
    replay(ctx.bus, events)
    bridge = FeedbackBridge(ctx.bus, consumer="demo", keep_rewards=True, block_ms=0, count=200)
    stats = bridge.run(until_idle=True)
    report = feedback_report(
        bridge.feedback,
        stats=stats.as_dict(),
        trades_in_log=len(trades),
        open_trades=len(bridge.open_trades()),
        parked_orders=len(bridge.parked_updates()),
        params=asdict(bridge.params),
    )
    ctx.store.write("feedback", report, source="execution.feedback_bridge")
    return (
        f"{stats.closed} feedback events from {len(trades)} trades; tracked {stats.tracked}, "
        f"parked {stats.parked}, duplicates {stats.duplicates}, dead-lettered {stats.dead_lettered}; "
        f"mean reward {report['reward']['mean']:.3f}"
    )
