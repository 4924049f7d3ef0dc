"""Event bus semantics, identical on the in-process and the Redis Streams backends."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from infra.event_schemas import validate_event
from infra.eventbus import (
    TOPIC_FEEDBACK,
    TOPIC_POSITION,
    Bus,
    BusUnavailableError,
    MemoryBus,
    Message,
    OncePublish,
    connect_bus,
    dead_letter_topic,
    new_event,
    utc_iso,
    utc_iso_of,
)
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
    assert [m.event["n"] for m in a] == [0, 1, 2]  # type: ignore[index]
    assert [m.event["n"] for m in b] == [3, 4]  # type: ignore[index]
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
    out = new_event(TOPIC_FEEDBACK, {"order_id": "o1"}, ts=T0, event_id="fb-o1")
    for _ in range(2):  # a retried commit changes nothing more
        bus.commit(
            "g",
            ack=[msg],
            publish_once=[OncePublish(TOPIC_FEEDBACK, out, "rl.feedback:o1")],
            marks=["m1"],
            state_set={"ns": {"o1": "state"}},
        )
    assert bus.length(TOPIC_FEEDBACK) == 1
    assert bus.pending(TOPIC, "g") == 0
    assert bus.seen(["rl.feedback:o1", "m1", "nope"]) == [True, True, False]
    assert bus.state_get("ns", ["o1", "o2"]) == {"o1": "state"}
    bus.commit("g", state_delete={"ns": ["o1"]})
    assert bus.state_all("ns") == {}


def test_consume_validates_dedupes_retries_and_dead_letters(bus: Bus) -> None:
    bus.publish(TOPIC_POSITION, update("o1", "u1"))
    bus.publish(TOPIC_POSITION, update("o1", "u1b", status="DONE"))  # invalid
    bus.publish_raw(TOPIC_POSITION, "{not json")
    bus.publish_raw(TOPIC_POSITION, '{"event_id": "u1", "ts": "2025-01-01T00:00:00Z", "schema": '
                    '"trade.position.update", "order_id": "o1", "status": "OPEN", "unrealized_pnl_usd": -1.0}')  # fmt: skip
    bus.publish(TOPIC_POSITION, update("o2", "u2"))
    seen: list[str] = []
    calls = {"o2": 0}

    def handler(msg: Message) -> None:
        assert msg.event is not None
        oid = msg.event["order_id"]
        if oid == "o2":
            calls["o2"] += 1
            raise RuntimeError("boom")
        seen.append(msg.event["event_id"])

    stats = bus.consume(TOPIC_POSITION, "g", "c", handler, block_ms=10, until_idle=True)
    assert seen == ["u1"]  # the raw copy of u1 is a duplicate by event_id
    assert (stats.handled, stats.duplicates, stats.dead_lettered, stats.failed) == (1, 1, 2, 1)
    assert bus.pending(TOPIC_POSITION, "g") == 1  # o2 failed: still pending
    for _ in range(6):  # redelivered after idle, dead-lettered after max_deliveries
        bus.consume(
            TOPIC_POSITION,
            "g",
            "c",
            handler,
            block_ms=10,
            until_idle=True,
            max_idle_ms_reclaim=0,
            max_deliveries=3,
        )
    assert bus.pending(TOPIC_POSITION, "g") == 0
    dead = bus.dead_letters(TOPIC_POSITION)
    reasons = [d.reason for d in dead]
    assert reasons[0] == "field 'status' must be one of ['CLOSED', 'OPEN']; got 'DONE'"
    assert reasons[1].startswith("payload is not valid JSON")
    assert dead[1].raw == "{not json"
    assert reasons[2].startswith("handler failed: delivered 4 times")
    assert json.loads(dead[2].raw) == update("o2", "u2")  # the original payload, whatever its spacing
    assert calls["o2"] == 3
    assert bus.length(dead_letter_topic(TOPIC_POSITION)) == 3


def test_memory_bus_trims_to_maxlen() -> None:
    bus = MemoryBus(maxlen=3)
    for i in range(5):
        bus.publish(TOPIC, ev(i))
    assert [e["n"] for e in bus.events(TOPIC)] == [2, 3, 4]
    bus.ensure_group(TOPIC, "g")
    assert [m.event["n"] for m in bus.read([TOPIC], "g", "c", block_ms=0)] == [2, 3, 4]  # type: ignore[index]


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
    assert [m.event["n"] for m in got if m.event] == [2, 3]
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
        BusUnavailableError, match=r"^XADD rl\.feedback: Redis at redis://127\.0\.0\.1:\d+/0 unreachable"
    ):
        bus.publish(TOPIC_FEEDBACK, {"event_id": "x"})
    assert time.monotonic() - t0 < 3.0
    assert bus.ping() is False


def test_redis_bus_from_env_reads_variables() -> None:
    from infra.redis_bus import RedisBus

    b = RedisBus.from_env(
        "redis://127.0.0.1:1/0", environ={"EVENTBUS_MAXLEN": "500", "EVENTBUS_SOCKET_TIMEOUT_S": "3"}
    )
    assert (b.maxlen, b.socket_timeout) == (500, 3.0)
    with pytest.raises(ValueError, match="EVENTBUS_RETRY_DEADLINE_S must be a number > 0"):
        RedisBus.from_env("redis://127.0.0.1:1/0", environ={"EVENTBUS_RETRY_DEADLINE_S": "-1"})


VALID = {
    "trade.execution.res": {"order_id": "o", "symbol": "BTCUSDT", "side": "LONG", "entry_price": 1.0,
                            "size_usd": 10.0, "confidence": 0.5, "multiplier_used": 1.0, "state": [0.1]},
    "trade.position.update": {"order_id": "o", "status": "CLOSED", "unrealized_pnl_usd": 0.0, "realized_pnl_usd": 1.0},
    "trade.signal.v5": {"symbol": "BTCUSDT", "action": "BUY", "confidence": 0.6, "model_version": "v5"},
    "model.retrain.trigger": {"trigger_id": "t", "model": "m", "reason": "drift", "priority": "high"},
}  # fmt: skip


@pytest.mark.parametrize("topic", sorted(VALID))
def test_schemas_accept_valid_events(topic: str) -> None:
    assert validate_event(topic, new_event(topic, VALID[topic], ts=T0)) is None


@pytest.mark.parametrize(
    ("topic", "change", "reason"),
    [
        ("trade.execution.res", {"size_usd": 0.0}, "field 'size_usd' must be a number > 0; got 0.0"),
        ("trade.execution.res", {"confidence": 1.2}, "field 'confidence' must be a number <= 1; got 1.2"),
        (
            "trade.execution.res",
            {"state": [1.0, float("nan")]},
            "field 'state' must be a list of finite numbers",
        ),
        ("trade.execution.res", {"side": "BUY"}, "field 'side' must be one of ['LONG', 'SHORT']; got 'BUY'"),
        ("trade.position.update", {"realized_pnl_usd": None}, "missing required field 'realized_pnl_usd'"),
        (
            "trade.position.update",
            {"unrealized_pnl_usd": "3"},
            "field 'unrealized_pnl_usd' must be a finite number",
        ),
        ("model.retrain.trigger", {"priority": True}, "field 'priority' must be an integer or a string"),
    ],
)
def test_schemas_reject_with_reason(topic: str, change: dict[str, object], reason: str) -> None:
    event = new_event(topic, {**VALID[topic], **change}, ts=T0)
    assert (validate_event(topic, event) or "").startswith(reason)


def test_schema_envelope_checks() -> None:
    good = new_event(TOPIC_POSITION, VALID[TOPIC_POSITION], ts=T0)
    assert (
        validate_event(TOPIC_FEEDBACK, good)
        == "field 'schema' must be 'rl.feedback'; got 'trade.position.update'"
    )
    assert validate_event(TOPIC_POSITION, {**good, "ts": "2025-01-01T00:00:00"}) == (
        "field 'ts' must be an ISO 8601 timestamp with a timezone; got '2025-01-01T00:00:00'"
    )
    assert validate_event(TOPIC_POSITION, None) == "event must be a JSON object; got NoneType"


@settings(max_examples=500, deadline=None)
@given(
    st.datetimes(
        min_value=dt.datetime(1971, 1, 2),
        max_value=dt.datetime(2999, 12, 30),
        timezones=st.sampled_from(
            [dt.UTC, dt.timezone(dt.timedelta(hours=2)), dt.timezone(dt.timedelta(hours=-5, minutes=-30))]
        ),
    ),
    st.sampled_from(["auto", "seconds", "milliseconds", "microseconds", "minutes"]),
    st.sampled_from(["T", " "]),
    st.booleans(),
)
@example(dt.datetime(2025, 1, 1, tzinfo=dt.UTC), "microseconds", "T", True)  # .000000Z: not canonical
@example(dt.datetime(2025, 1, 1, 0, 0, 0, 5, tzinfo=dt.UTC), "auto", "T", True)  # .000005Z: canonical
@example(dt.datetime(2025, 1, 1, 0, 0, 0, 5, tzinfo=dt.UTC), "milliseconds", "T", True)  # .000Z
@example(dt.datetime(2025, 1, 1, 3, tzinfo=dt.timezone(dt.timedelta(hours=2))), "auto", "T", False)
def test_utc_iso_of_reuses_the_text_only_when_it_is_the_canonical_form(
    ts: dt.datetime, timespec: str, sep: str, zulu: bool
) -> None:
    text = ts.isoformat(sep=sep, timespec=timespec)
    if zulu:
        text = text.replace("+00:00", "Z")
    parsed = dt.datetime.fromisoformat(text)
    assert utc_iso_of(text, parsed) == utc_iso(parsed)
