"""Poison messages never stop a consumer (issue 22, item 1), against a real redis-server.

A deeply nested JSON payload (the decoder's recursion limit), a 400-digit integer and invalid
UTF-8 are written straight into the streams ahead of good traffic. Each must land in the topic's
dead-letter stream with a reason, and everything behind it must flow: the feedback bridge
publishes all 50 trades, the trainer learns all 50 feedback events, the retrain worker handles
the good trigger.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from execution.feedback_bridge import FeedbackBridge
from infra.artifacts import ArtifactStore
from infra.bus import TOPIC_EXECUTION, TOPIC_FEEDBACK, TOPIC_RETRAIN, connect_bus, new_event
from ml.retrain_worker import GROUP, RetrainWorker
from research.rl_sizer.ppo_sizer import PPOSizer
from research.rl_sizer.trainer import OnlineTrainer
from sim.replay import replay, trade_events
from tests.feedback_fixtures import make_trades
from tests.redis_server import redis_server, redis_url  # noqa: F401

pytestmark = pytest.mark.redis

DEEP = b'{"event_id":"deep","payload":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
TS = "2025-01-01T00:00:00Z"


def _poison(topic: str, number_field: str) -> list[bytes]:
    big = b"1" + b"0" * 399
    return [
        DEEP,
        b'{"event_id":"big","ts":"%s","schema":"%s","%s":%s}'
        % (TS.encode(), topic.encode(), number_field.encode(), big),
        b'{"event_id":"\xff\xfe\xfd","ts":"%s","schema":"%s"}' % (TS.encode(), topic.encode()),
    ]


def _xadd_raw(url: str, topic: str, payloads: list[bytes]) -> None:
    client = redis.Redis.from_url(url)  # bytes in, bytes out: the payload reaches Redis untouched
    for p in payloads:
        client.xadd(topic, {"event": p})
    client.close()


def _reasons(bus: object, topic: str) -> list[str]:
    return [d.reason for d in bus.dead_letters(topic)]  # type: ignore[attr-defined]


def test_poison_ahead_of_50_trades_is_dead_lettered_and_the_trades_flow(redis_url: str) -> None:  # noqa: F811
    _xadd_raw(redis_url, TOPIC_EXECUTION, _poison(TOPIC_EXECUTION, "size_usd"))
    _xadd_raw(redis_url, TOPIC_FEEDBACK, _poison(TOPIC_FEEDBACK, "reward"))
    bus = connect_bus(redis_url, environ={})
    trades = make_trades(50, seed=11)
    replay(bus, trade_events(trades, updates_per_trade=1, seed=11))

    stats = FeedbackBridge(bus, consumer="b1", block_ms=0).run(until_idle=True)
    assert stats.closed == 50
    fb_ids = sorted(str(e["order_id"]) for e in bus.events(TOPIC_FEEDBACK) if "order_id" in e)
    assert fb_ids == sorted(trades["order_id"])
    reasons = _reasons(bus, TOPIC_EXECUTION)
    assert len(reasons) == 3, reasons
    assert any("nest" in r.lower() or "recursion" in r.lower() for r in reasons), reasons
    assert any("size_usd" in r for r in reasons), reasons
    assert any("utf-8" in r.lower() for r in reasons), reasons
    assert bus.pending(TOPIC_EXECUTION, "feedback-bridge") == 0

    trainer = OnlineTrainer(PPOSizer(3, seed=0))
    assert trainer.run(bus, block_ms=0, until_idle=True) == 50
    reasons = _reasons(bus, TOPIC_FEEDBACK)
    assert len(reasons) == 3, reasons
    assert any("reward" in r for r in reasons), reasons
    bus.close()


def test_poison_triggers_do_not_stop_the_retrain_worker(redis_url: str, tmp_path: Path) -> None:  # noqa: F811
    from tests.test_retrain_worker import bar_ts, registry_with_stale, stream, trigger

    _xadd_raw(redis_url, TOPIC_RETRAIN, _poison(TOPIC_RETRAIN, "priority"))
    bus = connect_bus(redis_url, environ={})
    at = bar_ts(1000)
    good = new_event(TOPIC_RETRAIN, trigger("t-ghost", at, "ghost"), ts=at.to_pydatetime())
    bus.publish(TOPIC_RETRAIN, good)
    reg = registry_with_stale(tmp_path / "models")
    worker = RetrainWorker.with_store_log(registry=reg, bars=stream, store=ArtifactStore(tmp_path / "c"))
    assert worker.consume(bus, once=True, block_ms=10) == 1
    assert [j["outcome"] for j in worker.log.jobs] == ["rejected"]
    assert len(_reasons(bus, TOPIC_RETRAIN)) == 3
    assert bus.pending(TOPIC_RETRAIN, GROUP) == 0
    bus.close()
