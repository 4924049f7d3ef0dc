"""Event bus semantics, identical on the in-process and the Redis Streams backends."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator

import pytest

from infra.bus import (
    TOPIC_POSITION,
    Bus,
    BusUnavailableError,
    Consumer,
    MemoryBus,
    Message,
    OncePublish,
    connect_bus,
    dead_letter_topic,
    each_message,
    new_event,
)
from infra.bus.base import Commit
from infra.contracts.events import EventError
from tests.redis_server import free_port, redis_server  # noqa: F401

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
TOPIC = "test.topic"


def ev(i: int, **extra: object) -> dict[str, object]:
    return new_event(TOPIC, {"n": i, **extra}, ts=T0 + dt.timedelta(seconds=i), event_id=f"e{i}")


def update(oid: str, event_id: str, **fields: object) -> dict[str, object]:
    payload = {"order_id": oid, "status": "OPEN", "unrealized_pnl_usd": -1.0, **fields}
    return new_event(TOPIC_POSITION, payload, ts=T0, event_id=event_id)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    if request.param == "memory":
        yield MemoryBus()
        return
    server = request.getfixturevalue("redis_server")
    b = connect_bus(server.url, environ={})
    yield b
    b.close()


def test_publish_dedupes_by_event_id(bus: Bus) -> None:
    first = bus.publish(TOPIC, ev(1))
    assert bus.publish(TOPIC, ev(1)) == first
    bus.publish(TOPIC, ev(2))
    assert [e["n"] for e in bus.events(TOPIC)] == [1, 2]
    assert bus.publish_many([(TOPIC, ev(2)), (TOPIC, ev(3))])[1] != first
    assert bus.length(TOPIC) == 3


def test_group_delivers_each_entry_once_and_tracks_pending_and_lag(bus: Bus) -> None:
    for i in range(5):
        bus.publish(TOPIC, ev(i))
    bus.ensure_group(TOPIC, "g")
    assert bus.lag(TOPIC, "g") == 5
    a = bus.read([TOPIC], "g", "a", count=3, block_ms=10)
    b = bus.read([TOPIC], "g", "b", count=10, block_ms=10)
    assert [m.data()["n"] for m in a] == [0, 1, 2]  # type: ignore[index]
    assert [m.data()["n"] for m in b] == [3, 4]  # type: ignore[index]
    assert bus.read([TOPIC], "g", "b", count=10, block_ms=10) == []
    assert bus.pending(TOPIC, "g") == 5
    assert bus.lag(TOPIC, "g") == 0
    bus.ack(TOPIC, "g", [m.id for m in a])
    assert bus.pending(TOPIC, "g") == 2
    # another group sees everything again
    bus.ensure_group(TOPIC, "other")
    assert len(bus.read([TOPIC], "other", "x", count=10, block_ms=10)) == 5
    info = {g.name: g for g in bus.groups(TOPIC)}
    assert info["g"].pending == 2 and info["g"].consumers == 2


def test_restart_rereads_own_pending_and_reclaim_takes_over(bus: Bus) -> None:
    for i in range(3):
        bus.publish(TOPIC, ev(i))
    bus.ensure_group(TOPIC, "g")
    got = bus.read([TOPIC], "g", "dead", count=10, block_ms=10)
    assert len(got) == 3
    again = bus.read([TOPIC], "g", "dead", count=10, pending=True)
    assert [m.id for m in again] == [m.id for m in got]
    assert bus.reclaim(TOPIC, "g", "alive", min_idle_ms=60_000) == []  # not idle long enough
    time.sleep(0.05)
    taken = bus.reclaim(TOPIC, "g", "alive", min_idle_ms=20)
    assert [m.id for m in taken] == [m.id for m in got]
    assert all(m.deliveries >= 2 for m in taken)
    assert bus.read([TOPIC], "g", "dead", count=10, pending=True) == []
    assert len(bus.read([TOPIC], "g", "alive", count=10, pending=True)) == 3


def test_commit_is_atomic_and_idempotent(bus: Bus) -> None:
    bus.publish(TOPIC, ev(0))
    bus.ensure_group(TOPIC, "g")
    [msg] = bus.read([TOPIC], "g", "c", count=10, block_ms=10)
    out = new_event("out.topic", {"order_id": "o1"}, ts=T0, event_id="fb-o1")
    for _ in range(2):  # a retried commit changes nothing more
        bus.commit(
            "g",
            ack=[msg],
            publish_once=[OncePublish("out.topic", out, "rl.feedback:o1")],
            marks=["m1"],
            state_set={"ns": {"o1": "state"}},
        )
    assert bus.length("out.topic") == 1
    assert bus.pending(TOPIC, "g") == 0
    assert bus.seen(["rl.feedback:o1", "m1", "nope"]) == [True, True, False]
    assert bus.state_get("ns", ["o1", "o2"]) == {"o1": "state"}
    bus.commit("g", state_delete={"ns": ["o1"]})
    assert bus.state_all("ns") == {}


def test_publish_refuses_an_event_that_breaks_its_contract(bus: Bus) -> None:
    with pytest.raises(EventError, match=r"Invalid enum value 'DONE' - at `\$\.status`"):
        bus.publish(TOPIC_POSITION, update("o1", "u1", status="DONE"))
    assert bus.length(TOPIC_POSITION) == 0


def test_consumer_validates_dedupes_retries_and_dead_letters(bus: Bus) -> None:
    bus.publish(TOPIC_POSITION, update("o1", "u1"))
    bus.publish_raw(TOPIC_POSITION, json.dumps(update("o1", "u1b", status="DONE")))  # invalid
    bus.publish_raw(TOPIC_POSITION, "{not json")
    bus.publish_raw(TOPIC_POSITION, '{"event_id": "u1", "ts": "2025-01-01T00:00:00Z", "schema": '
                    '"trade.position.update", "order_id": "o1", "status": "OPEN", "unrealized_pnl_usd": -1.0}')  # fmt: skip
    bus.publish(TOPIC_POSITION, update("o2", "u2"))
    seen: list[str] = []
    calls = {"o2": 0}

    def handler(msg: Message) -> None:
        if msg.event.order_id == "o2":
            calls["o2"] += 1
            raise RuntimeError("boom")
        seen.append(msg.event.event_id)

    def loop(**kw: int) -> Consumer:
        return Consumer(bus, [TOPIC_POSITION], "g", "c", each_message(bus, "g", handler), block_ms=10, **kw)

    stats = loop().run(until_idle=True)
    assert seen == ["u1"]  # the raw copy of u1 is a duplicate by event_id: acked, not handled again
    assert (stats.handled, stats.dead_lettered, stats.failed) == (2, 2, 1)
    assert bus.pending(TOPIC_POSITION, "g") == 1  # o2 failed: still pending
    for _ in range(6):  # redelivered after idle, dead-lettered after max_deliveries
        loop(reclaim_idle_ms=0, max_deliveries=3).run(until_idle=True)
    assert bus.pending(TOPIC_POSITION, "g") == 0
    dead = bus.dead_letters(TOPIC_POSITION)
    reasons = [d.reason for d in dead]
    assert reasons[0] == "Invalid enum value 'DONE' - at `$.status`"
    assert reasons[1].startswith("JSON is malformed")
    assert dead[1].raw == "{not json"
    assert reasons[2].startswith("handler failed: delivered 4 times")
    assert json.loads(dead[2].raw) == update("o2", "u2")  # the original payload, whatever its spacing
    assert calls["o2"] == 3
    assert bus.length(dead_letter_topic(TOPIC_POSITION)) == 3


def test_a_batch_handler_that_raises_is_retried_one_by_one(bus: Bus) -> None:
    for i in range(5):
        bus.publish(TOPIC_POSITION, update(f"o{i}", f"u{i}"))
    handled: list[str] = []

    def handler(batch: list[Message]) -> Commit:
        if any(m.event.order_id == "o2" for m in batch):
            raise RuntimeError("o2 breaks the handler")
        handled.extend(m.event.order_id for m in batch)
        return Commit(ack=list(batch))

    stats = Consumer(bus, [TOPIC_POSITION], "g", "c", handler, block_ms=10).run(until_idle=True)
    assert handled == ["o0", "o1", "o3", "o4"]
    assert (stats.handled, stats.failed) == (4, 1)
    assert bus.pending(TOPIC_POSITION, "g") == 1


def test_held_messages_are_not_handed_over_again_and_acked_later(bus: Bus) -> None:
    for i in range(4):
        bus.publish(TOPIC_POSITION, update(f"o{i}", f"u{i}"))
    held: list[Message] = []
    seen: list[str] = []

    def handler(batch: list[Message]) -> Commit:  # acknowledges in pairs, like a checkpointing trainer
        out = Commit()
        for m in batch:
            seen.append(m.event.order_id)
            held.append(m)
            if len(held) == 2:
                out.ack.extend(held)
                held.clear()
        return out

    c = Consumer(bus, [TOPIC_POSITION], "g", "c", handler, count=3, block_ms=10, reclaim_idle_ms=0)
    c.run(until_idle=True)
    assert seen == ["o0", "o1", "o2", "o3"]  # nothing twice, though o2 stayed pending across reads
    assert bus.pending(TOPIC_POSITION, "g") == 0 and c.held == set()


def test_poison_payloads_are_dead_lettered_with_a_reason(bus: Bus) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    bus.publish_raw(TOPIC_POSITION, '{"event_id":"d","x":' + deep + "}")
    bus.publish_raw(TOPIC_POSITION, b'{"event_id":"\xff"}')
    bus.publish_raw(TOPIC_POSITION, "x" * 100_000)
    bus.publish(TOPIC_POSITION, update("ok", "u-ok"))
    got: list[str] = []
    stats = Consumer(
        bus,
        [TOPIC_POSITION],
        "g",
        "c",
        each_message(bus, "g", lambda m: got.append(m.event.order_id)),
        block_ms=10,
    ).run(until_idle=True)
    assert got == ["ok"] and stats.dead_lettered == 3
    dead = bus.dead_letters(TOPIC_POSITION)
    assert [d.reason.split(":")[0] for d in dead] == [
        "payload nested too deeply to decode (recursion limit)",
        "payload is not valid UTF-8",
        "JSON is malformed",
    ]
    assert dead[0].raw.endswith("[truncated: 200,021 bytes in total, first 65,536 kept]")
    assert len(dead[2].raw) < 66_000


def test_memory_bus_trims_to_maxlen() -> None:
    bus = MemoryBus(maxlen=3)
    for i in range(5):
        bus.publish(TOPIC, ev(i))
    assert [e["n"] for e in bus.events(TOPIC)] == [2, 3, 4]
    bus.ensure_group(TOPIC, "g")
    assert [m.data()["n"] for m in bus.read([TOPIC], "g", "c", block_ms=0)] == [2, 3, 4]  # type: ignore[index]


def test_memory_pending_is_in_entry_order_and_acks_take_either_id_form() -> None:
    bus = MemoryBus(maxlen=11)
    for i in range(14):  # trims 3: ids run 4-0 .. 14-0, past the point where text order breaks
        bus.publish(TOPIC, ev(i))
    bus.ensure_group(TOPIC, "g")
    got = bus.read([TOPIC], "g", "a", count=20, block_ms=0)
    assert [m.id for m in got] == [f"{i}-0" for i in range(4, 15)]
    assert [m.id for m in bus.read([TOPIC], "g", "a", count=20, pending=True)] == [m.id for m in got]
    taken = bus.reclaim(TOPIC, "g", "b", min_idle_ms=0, count=3)
    assert [m.id for m in taken] == ["4-0", "5-0", "6-0"]
    bus.ack(TOPIC, "g", ["4", "5-0", "10"])  # "10" is "10-0", as XACK reads it
    assert bus.pending(TOPIC, "g") == 8
    assert [m.id for m in bus.read([TOPIC], "g", "b", count=20, pending=True)] == ["6-0"]


def test_memory_read_blocks_until_publish_or_timeout() -> None:
    import threading

    bus = MemoryBus()
    bus.ensure_group(TOPIC, "g")
    t0 = time.monotonic()
    assert bus.read([TOPIC], "g", "c", block_ms=50) == []
    assert time.monotonic() - t0 >= 0.045
    threading.Timer(0.05, lambda: bus.publish(TOPIC, ev(1))).start()
    assert len(bus.read([TOPIC], "g", "c", block_ms=2000)) == 1
    # a once-publish inside a commit wakes a blocked reader too (one notification per commit)
    once = [OncePublish(TOPIC, ev(i), f"k{i}") for i in (2, 3)]
    threading.Timer(0.05, lambda: bus.commit("other", publish_once=once)).start()
    t0 = time.monotonic()
    got = bus.read([TOPIC], "g", "c", block_ms=5000)
    assert [m.data()["n"] for m in got if m.data()] == [2, 3]
    assert time.monotonic() - t0 < 2.0


def test_connect_bus_urls() -> None:
    assert isinstance(connect_bus("memory://"), MemoryBus)
    assert isinstance(connect_bus(environ={}), MemoryBus)
    with pytest.raises(ValueError, match="'url' argument of connect_bus"):
        connect_bus("kafka://x")


@pytest.mark.redis
def test_dead_redis_fails_fast_with_operation_name() -> None:
    bus = connect_bus(
        f"redis://127.0.0.1:{free_port()}/0",
        environ={},
        retry_deadline_s=0.5,
        connect_timeout=0.2,
        backoff_cap_s=0.1,
    )
    t0 = time.monotonic()
    with pytest.raises(
        BusUnavailableError, match=r"^XADD test\.topic: Redis at redis://127\.0\.0\.1:\d+/0 unreachable"
    ):
        bus.publish(TOPIC, ev(1))
    assert time.monotonic() - t0 < 3.0
    assert bus.ping() is False


def test_redis_bus_from_env_reads_variables() -> None:
    from infra.bus.redis_streams import RedisBus

    b = RedisBus.from_env(
        "redis://127.0.0.1:1/0", environ={"EVENTBUS_MAXLEN": "500", "EVENTBUS_SOCKET_TIMEOUT_S": "3"}
    )
    assert (b.maxlen, b.socket_timeout) == (500, 3.0)
    with pytest.raises(ValueError, match="EVENTBUS_RETRY_DEADLINE_S must be a number > 0"):
        RedisBus.from_env("redis://127.0.0.1:1/0", environ={"EVENTBUS_RETRY_DEADLINE_S": "-1"})
