"""Feedback bridge against a real redis-server: exactly-once under duplicates, crashes and outages."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from execution.feedback_bridge import FeedbackBridge
from infra.bus import TOPIC_EXECUTION, TOPIC_FEEDBACK, TOPIC_POSITION, Bus, connect_bus
from sim.replay import replay, trade_events
from tests.feedback_fixtures import expected_feedback, make_trades
from tests.redis_server import RedisServer, redis_server  # noqa: F401

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parent.parent
N = 1000


def feedback_ids(bus: Bus) -> list[str]:
    return [str(e["order_id"]) for e in bus.events(TOPIC_FEEDBACK)]


def wait_for(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def start_bridge(url: str, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "execution.feedback_bridge", "--bus", url, "--consumer", "c1", "--block-ms", "100",
           "--reclaim-idle-ms", "1000", "--log-level", "WARNING", *extra]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_duplicates_and_out_of_order_yield_exactly_one_feedback_per_trade(redis_server: RedisServer) -> None:  # noqa: F811
    trades = make_trades(N, seed=11)
    items = trade_events(
        trades,
        updates_per_trade=2,
        duplicate_rate=0.1,
        shuffle_window=60,
        malformed=6,
        late_executions=0.05,
        seed=5,
    )
    bus = connect_bus(redis_server.url, environ={})
    replay(bus, items)
    replay(bus, items[: len(items) // 3])  # a producer that replays: deduped by event_id, malformed re-sent
    bridge = FeedbackBridge(bus, count=50, block_ms=50)
    bridge.run(until_idle=True)
    fb = bus.events(TOPIC_FEEDBACK)
    ids = [str(e["order_id"]) for e in fb]
    assert len(ids) == N and len(set(ids)) == N
    expected = expected_feedback(trades)
    for e in fb:
        for key, value in expected[e["order_id"]].items():
            assert e[key] == pytest.approx(value, rel=1e-9, abs=1e-9)
    assert bridge.stats.parked > 0 and bridge.stats.unparked == bridge.stats.parked  # late executions
    dead = bus.dead_letters(TOPIC_EXECUTION) + bus.dead_letters(TOPIC_POSITION)
    resent_raw = sum(1 for _, e in items[: len(items) // 3] if isinstance(e, str))  # invalid ones go out raw
    assert len(dead) == 6 + resent_raw
    prefixes = ("JSON is malformed", "Expected `object`, got `array`",
                "Object missing required field `order_id`", "Invalid enum value 'DONE' - at `$.status`",
                "Expected `float` > 0.0 - at `$.size_usd`")  # fmt: skip
    assert all(d.reason.startswith(prefixes) for d in dead), [d.reason for d in dead]
    assert all(d.raw for d in dead) and all(d.reason for d in dead)
    assert bus.pending(TOPIC_EXECUTION, "feedback-bridge") == 0
    assert bus.pending(TOPIC_POSITION, "feedback-bridge") == 0
    assert bridge.open_trades() == {} and bridge.parked_updates() == {}


def test_sigkill_at_random_points_loses_and_doubles_nothing(redis_server: RedisServer) -> None:  # noqa: F811
    trades = make_trades(N, seed=12)
    items = trade_events(
        trades, updates_per_trade=2, duplicate_rate=0.05, shuffle_window=60, late_executions=0.05, seed=6
    )
    bus = connect_bus(redis_server.url, environ={})
    cut = [0, len(items) // 4, len(items) // 2, 3 * len(items) // 4, len(items)]
    chunks = [items[a:b] for a, b in itertools.pairwise(cut)]
    rng = random.Random(3)
    kills = 0
    topics = (TOPIC_EXECUTION, TOPIC_POSITION)
    progress: list[tuple[int, int]] = []  # (feedback so far, messages not yet acknowledged) at each kill
    for chunk in chunks:
        replay(bus, chunk)
        before = bus.length(TOPIC_FEEDBACK)
        proc = start_bridge(redis_server.url, "--count", "20")
        # kill at a random point inside this chunk's work, chosen by progress rather than by time,
        # so the kill interrupts work however fast the machine is (a timed sleep let a quiet
        # machine finish the whole chunk first)
        target = before + rng.randint(1, N // len(chunks) // 2)
        wait_for(lambda: bus.length(TOPIC_FEEDBACK) >= target, 30, "the restarted bridge to make progress")  # noqa: B023
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        kills += 1
        unfinished = sum(
            (bus.lag(t, "feedback-bridge") or 0) + bus.pending(t, "feedback-bridge") for t in topics
        )
        progress.append((bus.length(TOPIC_FEEDBACK), unfinished))
    proc = start_bridge(redis_server.url, "--count", "20", "--until-idle")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()
    ids = feedback_ids(bus)
    assert kills == 4
    print("feedback and unfinished messages at each kill:", progress)
    # the kills interrupted real work: progress was made and work was left over. On a fast, quiet
    # machine the bridge can finish a chunk between the progress poll and the SIGKILL (CI saw 2 of
    # 4 kills with work left), so at least one interrupted kill is required, not three.
    assert progress[-1][0] > 0 and sum(1 for _, left in progress if left > 0) >= 1
    assert len(ids) == N, f"{len(ids)} feedback entries for {N} trades"
    assert len(set(ids)) == N
    # open-trade state (worst excursion, open time) survived the kills: every number is right
    expected = expected_feedback(trades)
    for e in bus.events(TOPIC_FEEDBACK):
        for key, value in expected[e["order_id"]].items():
            assert e[key] == pytest.approx(value, rel=1e-9, abs=1e-9), (e["order_id"], key)
    assert bus.pending(TOPIC_EXECUTION, "feedback-bridge") == 0
    assert bus.pending(TOPIC_POSITION, "feedback-bridge") == 0


def test_redis_outage_delays_but_loses_nothing(redis_server: RedisServer) -> None:  # noqa: F811
    trades = make_trades(400, seed=13)
    items = trade_events(trades, updates_per_trade=2, shuffle_window=20, seed=7)
    half = len(items) // 2
    bus = connect_bus(
        redis_server.url, environ={}, retry_deadline_s=1.0, socket_timeout=1.0, connect_timeout=0.3
    )
    replay(bus, items[:half])
    bridge = FeedbackBridge(bus, count=20, block_ms=100)
    stop = threading.Event()
    worker = threading.Thread(target=bridge.run, kwargs={"stop": stop}, daemon=True)
    worker.start()
    time.sleep(0.3)
    redis_server.stop()
    time.sleep(3.0)  # the bridge keeps retrying with backoff
    assert worker.is_alive()
    redis_server.start()
    replay(bus, items[half:])
    try:
        wait_for(lambda: bus.length(TOPIC_FEEDBACK) >= 400, 30, "400 feedback events")
        time.sleep(0.3)
    finally:
        stop.set()
        worker.join(timeout=10)
    ids = feedback_ids(bus)
    assert len(ids) == 400 and len(set(ids)) == 400
    assert not worker.is_alive()


def test_sigterm_shuts_down_gracefully(redis_server: RedisServer) -> None:  # noqa: F811
    proc = start_bridge(redis_server.url, "--log-level", "INFO")
    bus = connect_bus(redis_server.url, environ={})
    wait_for(lambda: bus.groups(TOPIC_POSITION) != [], 15, "the bridge's consumer group")
    replay(bus, trade_events(make_trades(20, seed=1)))
    wait_for(lambda: bus.length(TOPIC_FEEDBACK) == 20, 15, "20 feedback events")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert b"finishing the current batch" in out and b"feedback bridge stopped" in out
