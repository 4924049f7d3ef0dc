"""Redis restarted from an older snapshot (issue 22, item 2), against a real redis-server.

The bridge keeps running across the restart. The commits after the snapshot are lost (the feedback,
its once-keys, the acknowledgements, the open-trade state), the producer re-sends what Redis lost,
and the group re-delivers. A bridge that trusted its in-memory set of finished orders dropped the
re-delivered trades as duplicates (76 of 200 lost in the issue); the consumer loop now sees its
commit counter behind and handles the rollback as a restart.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from execution.feedback_bridge import FeedbackBridge
from infra.bus import TOPIC_FEEDBACK, connect_bus
from sim.replay import replay, trade_events
from tests.feedback_fixtures import expected_feedback, make_trades
from tests.redis_server import free_port, redis_binary

pytestmark = pytest.mark.redis


class SnapshotRedis:
    """redis-server with RDB persistence only (``SAVE`` on demand), stopped by PID."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
               "--save", "", "--appendonly", "no", "--dbfilename", "dump.rdb"]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_timeout=0.2).ping():
                    return
            except redis.exceptions.RedisError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def snapshot_redis(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = SnapshotRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()


def test_restart_from_an_older_snapshot_loses_no_trade(snapshot_redis: SnapshotRedis, tmp_path: Path) -> None:
    trades = make_trades(200, seed=8)
    items = trade_events(trades, updates_per_trade=1, seed=8)
    first = [it for it in items if int(str(it[1]["order_id"])[2:]) < 100]  # type: ignore[index]
    bus = connect_bus(snapshot_redis.url, environ={}, retry_deadline_s=5.0)
    bridge = FeedbackBridge(bus, consumer="b", block_ms=0)
    replay(bus, first)
    assert bridge.run(until_idle=True).closed == 100
    bus.client.save()  # the snapshot: 100 trades in, 100 feedback out
    shutil.copy(snapshot_redis.workdir / "dump.rdb", tmp_path / "old.rdb")
    replay(bus, items)  # the other 100 (the first 100 are deduped by event id)
    assert bridge.run(until_idle=True).closed == 200
    assert bus.length(TOPIC_FEEDBACK) == 200

    snapshot_redis.kill()  # crash, and come back from the older snapshot
    shutil.copy(tmp_path / "old.rdb", snapshot_redis.workdir / "dump.rdb")
    snapshot_redis.start()
    assert bus.length(TOPIC_FEEDBACK) == 100
    replay(bus, items)  # the producer re-sends what Redis lost
    bridge.run(until_idle=True)  # the same process: its caches say all 200 are done
    fb = bus.events(TOPIC_FEEDBACK)
    ids = sorted(str(e["order_id"]) for e in fb)
    assert ids == sorted(trades["order_id"])  # 200 of 200, none twice
    want = expected_feedback(trades)
    for e in fb:
        for key, value in want[e["order_id"]].items():
            assert e[key] == pytest.approx(value, rel=1e-9, abs=1e-9)
    assert bridge.loop.stats.rollbacks == 1
    bus.close()
