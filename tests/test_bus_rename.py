"""A restart under a new consumer name gives the right reward (issue 22, item 4), real redis-server.

The trade: size 100 USD, confidence 0.5; OPEN updates -5 USD at minute 10 and -1 USD at minute 20;
closed at minute 30 with +0.5 USD. Its drawdown is 5% (the -5 update), so the reward is
base 0.5 - duration 0.2 * 30/1440 * 0.5 - drawdown 0.2 * 0.5 = 0.397917. The bridge that read the
-5 update was killed before its commit, so that update is pending under the old consumer name.
A bridge restarted under a new name used to close the trade from the updates it saw (drawdown
1.0, reward 0.4979) and ignore the older update once reclaimed.
"""

from __future__ import annotations

import datetime as dt

import pytest

from execution.feedback_bridge import FeedbackBridge
from infra.bus import TOPIC_EXECUTION, TOPIC_FEEDBACK, TOPIC_POSITION, Bus, connect_bus, new_event
from tests.redis_server import redis_server, redis_url  # noqa: F401

pytestmark = pytest.mark.redis
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
GROUP = "feedback-bridge"


def _execution() -> dict[str, object]:
    payload = {"order_id": "o1", "symbol": "BTCUSDT", "side": "LONG", "entry_price": 100.0, "size_usd": 100.0,
               "confidence": 0.5, "multiplier_used": 1.0, "state": [0.5]}  # fmt: skip
    return new_event(TOPIC_EXECUTION, payload, ts=T0, event_id="o1:exec")


def _update(minute: int, pnl: float, closed: bool = False) -> dict[str, object]:
    payload: dict[str, object] = {"order_id": "o1", "status": "CLOSED" if closed else "OPEN",
                                  "unrealized_pnl_usd": 0.0 if closed else pnl}  # fmt: skip
    if closed:
        payload["realized_pnl_usd"] = pnl
    return new_event(TOPIC_POSITION, payload, ts=T0 + dt.timedelta(minutes=minute), event_id=f"o1:{minute}")


def _killed_reader(bus: Bus) -> None:
    """What a bridge killed between its read and its commit leaves: entries pending under its name."""
    got = bus.read([TOPIC_EXECUTION, TOPIC_POSITION], GROUP, "bridge-old", count=100, block_ms=10)
    assert got


@pytest.mark.parametrize("execution_committed", [False, True])
@pytest.mark.parametrize("name", ["bridge-old", "bridge-new"])
def test_restart_under_any_name_counts_every_earlier_update(
    redis_url: str,  # noqa: F811
    name: str,
    execution_committed: bool,
) -> None:
    bus = connect_bus(redis_url, environ={})
    for t in (TOPIC_EXECUTION, TOPIC_POSITION):
        bus.ensure_group(t, GROUP)
    bus.publish(TOPIC_EXECUTION, _execution())
    if execution_committed:  # the old bridge opened the trade and committed it before the kill
        FeedbackBridge(bus, consumer="bridge-old", block_ms=0).run(until_idle=True)
    bus.publish(TOPIC_POSITION, _update(10, -5.0))
    _killed_reader(bus)
    bus.publish(TOPIC_POSITION, _update(20, -1.0))
    bus.publish(TOPIC_POSITION, _update(30, 0.5, closed=True))

    first = FeedbackBridge(bus, consumer=name, block_ms=0, reclaim_idle_ms=600_000)  # no reclaim yet
    first.run(until_idle=True)
    if name == "bridge-new":  # the -5 update is still pending under the old name: no close yet
        assert bus.length(TOPIC_FEEDBACK) == 0
        assert first.stats.deferred == (1 if execution_committed else 0)  # else parked: no execution
    bridge = FeedbackBridge(bus, consumer=name, block_ms=0, reclaim_idle_ms=0)  # a restart; reclaims now
    bridge.run(until_idle=True)
    [fb] = bus.events(TOPIC_FEEDBACK)
    assert fb["max_drawdown_pct"] == pytest.approx(5.0, abs=1e-12)
    assert fb["reward"] == pytest.approx(0.5 - 0.2 * 30 / 1440 * 0.5 - 0.1, abs=1e-12)
    assert round(fb["reward"], 4) == 0.3979
    assert fb["duration_mins"] == 30.0
    assert bus.pending(TOPIC_POSITION, GROUP) == 0 and bus.pending(TOPIC_EXECUTION, GROUP) == 0
    assert bridge.open_trades() == {} and bridge.parked_updates() == {}
    bus.close()
