"""Replay tool: event contents, degradations under a seed, CLI into a real Redis."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from infra.bus import TOPIC_EXECUTION, TOPIC_POSITION, MemoryBus, connect_bus
from infra.contracts.events import validate_event
from sim.replay import replay, trade_events
from tests.feedback_fixtures import make_trades
from tests.redis_server import RedisServer, redis_server  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


def test_events_of_one_trade_carry_its_numbers() -> None:
    trades = make_trades(1, seed=2)
    t = trades.iloc[0]
    items = trade_events(trades, updates_per_trade=3)
    assert [(topic, e["event_id"]) for topic, e in items] == [  # type: ignore[index]
        (TOPIC_EXECUTION, "o-00000:exec"),
        (TOPIC_POSITION, "o-00000:upd0"),
        (TOPIC_POSITION, "o-00000:upd1"),
        (TOPIC_POSITION, "o-00000:upd2"),
        (TOPIC_POSITION, "o-00000:close"),
    ]
    for topic, e in items:
        assert validate_event(topic, e) is None  # type: ignore[arg-type]
    ex, u0, u1, u2, close = (e for _, e in items)
    assert ex["size_usd"] == t.size_usd and ex["multiplier_used"] == t.multiplier  # type: ignore[index]
    assert ex["state"] == [t.confidence, t.volatility, float(t.regime)]  # type: ignore[index]
    worst = -t.max_adverse_pct / 100 * t.size_usd
    assert u1["unrealized_pnl_usd"] == pytest.approx(worst)  # type: ignore[index]
    assert min(u0["unrealized_pnl_usd"], u2["unrealized_pnl_usd"]) >= worst  # type: ignore[index]
    assert close["realized_pnl_usd"] == t.pnl_usd and close["status"] == "CLOSED"  # type: ignore[index]
    assert close["ts"] == t.closed_at.isoformat().replace("+00:00", "Z")  # type: ignore[index]


def test_degradations_are_seeded_and_bounded() -> None:
    trades = make_trades(200, seed=3)
    clean = trade_events(trades, updates_per_trade=2)
    a = trade_events(trades, updates_per_trade=2, duplicate_rate=0.1, shuffle_window=10, malformed=4, seed=1)
    b = trade_events(trades, updates_per_trade=2, duplicate_rate=0.1, shuffle_window=10, malformed=4, seed=1)
    assert a == b
    assert len(a) == len(clean) + round(0.1 * len(clean)) + 4
    assert (
        sum(isinstance(e, str) or "event_id" not in e or str(e["event_id"]).startswith("bad-") for _, e in a)
        == 4
    )
    dups = [e for _, e in a if isinstance(e, dict) and ":dup" in str(e["event_id"])]
    assert len(dups) == round(0.1 * len(clean))
    originals = {e["event_id"]: e for _, e in clean}  # type: ignore[index]
    for d in dups:
        orig = originals[str(d["event_id"]).split(":dup")[0]]
        assert {k: v for k, v in d.items() if k != "event_id"} == {
            k: v for k, v in orig.items() if k != "event_id"
        }
    # each order's position updates keep their order; executions move at most about the window
    seq: dict[str, list[str]] = defaultdict(list)
    for topic, e in a:
        if (
            topic == TOPIC_POSITION
            and isinstance(e, dict)
            and "order_id" in e
            and not str(e["event_id"]).startswith("bad")
        ):
            seq[str(e["order_id"])].append(str(e["event_id"]).split(":dup")[0])
    for oid, ids in seq.items():
        assert ids == sorted(ids, key=lambda x: (x.endswith("close"), x)), oid
    clean_pos = {e["event_id"]: i for i, (_, e) in enumerate(clean)}  # type: ignore[index]
    kept = [(t, e) for t, e in a if isinstance(e, dict) and e.get("event_id") in clean_pos]
    moved = [abs(rank - clean_pos[e["event_id"]]) for rank, (t, e) in enumerate(kept) if t == TOPIC_EXECUTION]
    assert max(moved) <= 10  # rank among the original events moves by at most the window
    assert max(moved) > 0


def test_late_executions_come_last() -> None:
    trades = make_trades(100, seed=5)
    items = trade_events(trades, late_executions=0.1, seed=2)
    tail = items[-10:]
    assert all(t == TOPIC_EXECUTION for t, _ in tail)
    late = {e["order_id"] for _, e in tail}  # type: ignore[index]
    first_close = {e["order_id"]: i for i, (t, e) in enumerate(items) if isinstance(e, dict) and e["event_id"].endswith("close")}  # type: ignore[index]  # fmt: skip
    assert all(first_close[o] < len(items) - 10 for o in late)


def test_bad_arguments() -> None:
    trades = make_trades(3)
    with pytest.raises(ValueError, match="'duplicate_rate' argument of trade_events"):
        trade_events(trades, duplicate_rate=1.5)
    with pytest.raises(ValueError, match="'updates_per_trade' argument of trade_events"):
        trade_events(trades, updates_per_trade=-1)


def test_replay_into_memory_bus_counts() -> None:
    bus = MemoryBus()
    stats = replay(bus, trade_events(make_trades(10), malformed=2, seed=1))
    assert stats.raw + stats.events == 10 * 4 + 2
    assert bus.length(TOPIC_EXECUTION) + bus.length(TOPIC_POSITION) == 42


@pytest.mark.redis
def test_cli_replays_into_redis_idempotently(tmp_path: Path, redis_server: RedisServer) -> None:  # noqa: F811
    path = tmp_path / "trades.csv"
    make_trades(50, seed=8).to_csv(path, index=False)
    cmd = [
        sys.executable,
        "-m",
        "sim.replay",
        "--bus",
        redis_server.url,
        "--trades",
        str(path),
        "--updates",
        "1",
    ]
    for _ in range(2):  # deterministic event ids: the second run publishes nothing new
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True).stdout
        assert "replayed 50 trades as 150 events" in out
    bus = connect_bus(redis_server.url, environ={})
    assert bus.length(TOPIC_EXECUTION) == 50 and bus.length(TOPIC_POSITION) == 100
