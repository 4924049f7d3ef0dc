"""Feedback bridge on the in-process bus: known answers, parking, duplicates, restarts, demo step."""

from __future__ import annotations

import copy
import datetime as dt
import math
from pathlib import Path

import pandas as pd
import pytest

from execution.feedback_bridge import FeedbackBridge
from infra.bus import TOPIC_EXECUTION, TOPIC_FEEDBACK, TOPIC_POSITION, MemoryBus, new_event
from scripts.demo_steps.feedback import demo_step
from sim.replay import replay, trade_events
from tests.feedback_fixtures import expected_feedback, make_trades

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def execution(oid: str, minute: int = 0, **kw: object) -> dict[str, object]:
    payload = {"order_id": oid, "symbol": "BTCUSDT", "side": "LONG", "entry_price": 100.0, "size_usd": 1000.0,
               "confidence": 0.9, "multiplier_used": 1.5, "state": [0.9, 0.01, 1.0], **kw}  # fmt: skip
    return new_event(
        TOPIC_EXECUTION, payload, ts=T0 + dt.timedelta(minutes=minute), event_id=f"{oid}:x{minute}"
    )


def update(
    oid: str, minute: int, pnl: float, *, closed: bool = False, eid: str | None = None
) -> dict[str, object]:
    payload = {"order_id": oid, "status": "CLOSED" if closed else "OPEN",
               "unrealized_pnl_usd": 0.0 if closed else pnl}  # fmt: skip
    if closed:
        payload["realized_pnl_usd"] = pnl
    return new_event(
        TOPIC_POSITION, payload, ts=T0 + dt.timedelta(minutes=minute), event_id=eid or f"{oid}:{minute}"
    )


def test_one_trade_hand_computed() -> None:
    bus = MemoryBus()
    bus.publish(TOPIC_EXECUTION, execution("a"))
    bus.publish(TOPIC_POSITION, update("a", 30, -25.0))  # worst: -2.5% of 1000
    bus.publish(TOPIC_POSITION, update("a", 60, -10.0))
    bus.publish(TOPIC_POSITION, update("a", 120, -12.0, closed=True))
    FeedbackBridge(bus, block_ms=0).run(until_idle=True)
    [fb] = bus.events(TOPIC_FEEDBACK)
    # pnl -1.2%, drawdown 2.5% (> 2: -0.2*1.2), confidence 0.9 on a loss (-0.5*1.2) -> -1.2 - 0.24 - 0.6
    assert fb["order_id"] == "a" and fb["symbol"] == "BTCUSDT"
    assert fb["pnl_usd"] == -12.0
    assert fb["pnl_pct"] == pytest.approx(-1.2)
    assert fb["duration_mins"] == 120.0
    assert fb["max_drawdown_pct"] == pytest.approx(2.5)
    assert fb["reward"] == pytest.approx(-2.04)
    assert fb["sharpe_contribution"] == pytest.approx(-1.2 / math.sqrt(2))
    assert (fb["confidence"], fb["multiplier_used"], fb["state"]) == (0.9, 1.5, [0.9, 0.01, 1.0])
    assert fb["ts"] == "2025-01-01T02:00:00Z" and fb["event_id"] == "fb-a"


def test_updates_before_execution_are_parked_then_applied() -> None:
    bus = MemoryBus()
    bus.publish(TOPIC_POSITION, update("p", 10, -30.0))
    bus.publish(TOPIC_POSITION, update("p", 20, 5.0, closed=True))
    bridge = FeedbackBridge(bus, block_ms=0)
    bridge.run(until_idle=True)
    assert bus.events(TOPIC_FEEDBACK) == []
    assert set(bridge.parked_updates()["p"]) == {"p:10", "p:20"}
    assert bridge.stats.parked == 2
    bus.publish(TOPIC_EXECUTION, execution("p"))
    bridge.run(until_idle=True)
    [fb] = bus.events(TOPIC_FEEDBACK)
    assert fb["max_drawdown_pct"] == pytest.approx(3.0)
    assert fb["pnl_pct"] == pytest.approx(0.5)
    assert bridge.parked_updates() == {} and bridge.open_trades() == {}


def test_duplicates_and_late_events_publish_nothing_new() -> None:
    bus = MemoryBus()
    bus.publish(TOPIC_EXECUTION, execution("d"))
    bus.publish(TOPIC_EXECUTION, execution("d", minute=1))  # a second execution for the same order
    bus.publish(TOPIC_POSITION, update("d", 5, 3.0, closed=True))
    bus.publish(TOPIC_POSITION, update("d", 5, 3.0, closed=True, eid="resent"))
    bus.publish(TOPIC_POSITION, update("d", 6, -50.0))  # late update after the close
    bridge = FeedbackBridge(bus, block_ms=0)
    bridge.run(until_idle=True)
    bus.publish(TOPIC_EXECUTION, execution("d", minute=9))  # replayed much later
    bridge.run(until_idle=True)
    assert [e["order_id"] for e in bus.events(TOPIC_FEEDBACK)] == ["d"]
    assert bridge.stats.duplicates == 4
    assert bridge.open_trades() == {} and bridge.parked_updates() == {}


def test_tracks_by_order_id_not_symbol_and_side() -> None:
    bus = MemoryBus()
    bus.publish(TOPIC_EXECUTION, execution("x1", size_usd=1000.0))
    bus.publish(TOPIC_EXECUTION, execution("x2", size_usd=2000.0))
    bus.publish(TOPIC_POSITION, update("x2", 5, 20.0, closed=True))
    bus.publish(TOPIC_POSITION, update("x1", 6, -20.0, closed=True))
    FeedbackBridge(bus, block_ms=0).run(until_idle=True)
    got = {e["order_id"]: e["pnl_pct"] for e in bus.events(TOPIC_FEEDBACK)}
    assert got == {"x2": pytest.approx(1.0), "x1": pytest.approx(-2.0)}


@pytest.mark.parametrize("count", [3, 500])
def test_replayed_log_gives_exactly_one_correct_feedback_per_trade(count: int) -> None:
    trades = make_trades(300, seed=4)
    items = trade_events(
        trades, updates_per_trade=3, duplicate_rate=0.1, shuffle_window=40, malformed=5, seed=2
    )
    bus = MemoryBus()
    replay(bus, items)
    bridge = FeedbackBridge(bus, count=count, block_ms=0)
    bridge.run(until_idle=True)
    fb = bus.events(TOPIC_FEEDBACK)
    assert sorted(e["order_id"] for e in fb) == sorted(trades["order_id"])
    expected = expected_feedback(trades)
    for e in fb:
        want = expected[e["order_id"]]
        for key, value in want.items():
            assert e[key] == pytest.approx(value, rel=1e-9, abs=1e-9), (e["order_id"], key)
    dead = bus.dead_letters(TOPIC_EXECUTION) + bus.dead_letters(TOPIC_POSITION)
    assert len(dead) == 5 and all(d.reason for d in dead)
    assert bridge.stats.dead_lettered == 5 and bridge.stats.closed == 300
    if count == 3:
        assert bridge.stats.parked > 0  # small batches: executions do arrive after their updates


def test_state_survives_a_new_bridge_instance() -> None:
    bus = MemoryBus()
    bus.publish(TOPIC_EXECUTION, execution("r"))
    bus.publish(TOPIC_POSITION, update("r", 10, -40.0))
    FeedbackBridge(bus, block_ms=0, consumer="one").run(until_idle=True)
    bus.publish(TOPIC_POSITION, update("r", 20, 1.0, closed=True))
    FeedbackBridge(bus, block_ms=0, consumer="two").run(until_idle=True)
    [fb] = bus.events(TOPIC_FEEDBACK)
    assert fb["max_drawdown_pct"] == pytest.approx(4.0)


def test_demo_step_writes_feedback_artifact(tmp_path: Path) -> None:
    from infra.settings import load_settings
    from infra.store import open_store
    from scripts.pipeline import DemoContext

    settings = load_settings({"LOGS_DIR": str(tmp_path / "logs"), "ENV": "dev"})
    data = tmp_path / "data"
    data.mkdir()
    trades = make_trades(200, seed=9)
    trades.to_parquet(data / "trades.parquet")
    ctx = DemoContext(
        settings=settings, store=open_store(settings), data_dir=data, seed=7, scale="default", real_bars=False
    )
    message = demo_step(ctx)
    assert message.startswith("200 feedback events from 200 trades")
    result = ctx.store.read("feedback")
    assert result.ok, result.message
    report = result.data
    assert report["counts"]["closed"] == 200 and report["counts"]["tracked"] == 200
    assert report["counts"]["dead_lettered"] == 0 and report["trades_in_log"] == 200
    rewards = [e["reward"] for e in ctx.bus.events(TOPIC_FEEDBACK)]
    assert report["reward"]["mean"] == pytest.approx(sum(rewards) / 200)
    assert report["cumulative"]["reward"][-1] == pytest.approx(sum(rewards))
    assert sum(report["reward"]["histogram"]["counts"]) == 200
    assert pd.Series(report["cumulative"]["closed_at"]).is_monotonic_increasing


@pytest.mark.parametrize("parked", [False, True])
def test_a_close_whose_feedback_cannot_be_computed_is_dead_lettered_not_retried_forever(parked: bool) -> None:
    # size 5e-324 is a valid size (> 0) but a 1 USD PnL on it is an infinite percentage: the
    # reward calculator refuses it. The close is dead-lettered with the reason, the trade ends,
    # and the other trade in the same batch still gets its feedback.
    bus = MemoryBus()
    tiny = [execution("tiny", size_usd=5e-324), update("tiny", 10, 1.0, closed=True)]
    for event in reversed(tiny) if parked else tiny:
        bus.publish(TOPIC_EXECUTION if event["schema"] == TOPIC_EXECUTION else TOPIC_POSITION, event)
    bus.publish(TOPIC_EXECUTION, execution("ok"))
    bus.publish(TOPIC_POSITION, update("ok", 30, 10.0, closed=True))
    bridge = FeedbackBridge(bus, block_ms=0, count=1 if parked else 100)
    bridge.run(until_idle=True)
    assert [e["order_id"] for e in bus.events(TOPIC_FEEDBACK)] == ["ok"]
    [dead] = bus.dead_letters(TOPIC_POSITION)
    assert dead.reason == (
        "cannot compute the feedback of order 'tiny': "
        "The 'pnl_pct' argument of compute_reward must be a finite number. Got inf instead."
    )
    assert bridge.stats.dead_lettered == 1
    assert bus.pending(TOPIC_POSITION, bridge.group) == 0 and bus.pending(TOPIC_EXECUTION, bridge.group) == 0
    assert bridge.open_trades() == {} and bridge.parked_updates() == {}
    bridge.run(until_idle=True)  # nothing left to retry
    assert len(bus.dead_letters(TOPIC_POSITION)) == 1


def test_bridge_reads_without_copies_and_leaves_the_stored_events_untouched() -> None:
    trades = make_trades(50, seed=5)
    bus = MemoryBus()
    replay(bus, trade_events(trades, updates_per_trade=2, shuffle_window=10, late_executions=0.2, seed=1))
    before = {t: copy.deepcopy(bus.events(t)) for t in (TOPIC_EXECUTION, TOPIC_POSITION)}
    bridge = FeedbackBridge(bus, block_ms=0, count=7)
    bridge.run(until_idle=True)
    assert bridge.stats.closed == 50 and bridge.stats.parked > 0
    assert {t: bus.events(t) for t in before} == before


def test_bridge_cli_imports_neither_pandas_nor_numpy() -> None:
    """The bridge is a long-running service: a small heap and a fast start (pandas alone is 55k objects)."""
    import subprocess
    import sys

    code = "import sys, execution.feedback_bridge; print(sorted({'pandas', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_orphan_updates_are_bounded_by_count_and_by_event_time() -> None:
    bus = MemoryBus()
    for i in range(5):  # updates of orders that never execute, oldest first
        bus.publish(TOPIC_POSITION, update(f"orphan{i}", i, -1.0))
    bridge = FeedbackBridge(bus, block_ms=0, max_parked_orders=2)
    bridge.run(until_idle=True)
    assert set(bridge.parked_updates()) == {"orphan4"}  # bound 2 exceeded: cut to 90% of it (1)
    assert bridge.stats.orphans == 4
    dead = bus.dead_letters(TOPIC_POSITION)
    assert [d.message_id for d in dead] == [f"parked:orphan{i}:{i}" for i in range(4)]
    assert (
        dead[0].reason
        == "orphan: more than 2 orders waited for their execution; order 'orphan0' waited longest"
    )

    # by event time: 2 days after the newest event, an order's parked updates are orphans
    late = T0 + dt.timedelta(days=3)
    for i in range(60):
        bus.publish(TOPIC_EXECUTION, {**execution(f"t{i}"), "ts": late.isoformat()})
    aged = FeedbackBridge(bus, block_ms=0, count=1, consumer="bridge-1")
    aged.run(until_idle=True)
    assert aged.parked_updates() == {} and aged.stats.orphans == 1
    assert bus.dead_letters(TOPIC_POSITION)[-1].reason == (
        "orphan: no execution for order 'orphan4' within 2 days, 0:00:00 of event time"
    )


def test_the_behaviour_log_probability_travels_from_execution_to_feedback() -> None:
    bus = MemoryBus()
    bus.publish(TOPIC_EXECUTION, execution("s", behaviour_logp=-0.4055))  # log(2/3): a sampled multiplier
    bus.publish(TOPIC_POSITION, update("s", 30, 5.0, closed=True))
    bus.publish(TOPIC_EXECUTION, execution("d"))  # a deterministic one carries none
    bus.publish(TOPIC_POSITION, update("d", 30, 5.0, closed=True))
    FeedbackBridge(bus, block_ms=0).run(until_idle=True)
    got = {e["order_id"]: e.get("behaviour_logp") for e in bus.events(TOPIC_FEEDBACK)}
    assert got == {"s": -0.4055, "d": None}


def test_drawdown_of_a_trade_never_under_water_is_plus_zero() -> None:
    """Issue 22 item 12: ``max_drawdown_pct`` was sometimes published as ``-0.0``."""
    bus = MemoryBus()
    bus.publish(TOPIC_EXECUTION, execution("z"))
    bus.publish(TOPIC_POSITION, update("z", 30, 0.0))
    bus.publish(TOPIC_POSITION, update("z", 60, 5.0, closed=True))
    FeedbackBridge(bus, block_ms=0).run(until_idle=True)
    [fb] = bus.events(TOPIC_FEEDBACK)
    assert fb["max_drawdown_pct"] == 0.0 and math.copysign(1.0, fb["max_drawdown_pct"]) == 1.0


def test_the_published_order_cache_is_bounded_and_redis_style_truth_still_dedupes() -> None:
    bus = MemoryBus()
    bridge = FeedbackBridge(bus, block_ms=0)
    bridge.done_cache_size = 3
    for i in range(6):
        bus.publish(TOPIC_EXECUTION, execution(f"c{i}", minute=i))
        bus.publish(TOPIC_POSITION, update(f"c{i}", i + 5, 2.0, closed=True))
    bridge.run(until_idle=True)
    assert len(bus.events(TOPIC_FEEDBACK)) == 6
    # the oldest orders left the in-memory cache ...
    bus.publish(TOPIC_EXECUTION, execution("c7", minute=7))  # an unknown order makes the bridge look up
    bus.publish(TOPIC_POSITION, update("c7", 12, 1.0, closed=True))
    bridge.run(until_idle=True)
    # trimmed at each lookup, so at most the bound plus the closes of one batch
    assert len(bridge._done) <= 3 + 1 and "c0" not in bridge._done
    # ... yet a late duplicate of the oldest is still recognised (the bus's feedback key is the truth)
    bus.publish(TOPIC_EXECUTION, execution("c0", minute=30))
    bus.publish(TOPIC_POSITION, update("c0", 35, 9.0, closed=True, eid="c0-resent"))
    bridge.run(until_idle=True)
    assert [e["order_id"] for e in bus.events(TOPIC_FEEDBACK)].count("c0") == 1
    assert len(bus.events(TOPIC_FEEDBACK)) == 7 and bridge.open_trades() == {}
