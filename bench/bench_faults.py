"""Fault injection: the feedback bridge against a real redis-server through the failures of issue 22.

``.venv/bin/python -m bench.bench_faults [--trades N] [--seed S]``

Each scenario replays a synthetic trade log (with duplicates and shuffling), runs the bridge as
its own process (``python -m execution.feedback_bridge``), injects one kind of fault, waits until
the bridge is idle, and prints per scenario: trades sent, feedback published, lost (trades
without feedback), duplicated (feedback entries beyond one per trade) and wrong rewards
(feedback whose reward or drawdown differs from the value computed from the trade log).
Target: 0 lost, 0 duplicated, 0 wrong in every scenario.

Scenarios: poison messages of every kind; kill -9 of the bridge at random points; Redis kill -9
with an append-only file; Redis restarted from an older RDB snapshot; a bridge outage longer
than the stream cap; a restart under a new consumer name after kill -9.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import redis

from infra.bus import TOPIC_EXECUTION, TOPIC_FEEDBACK, TOPIC_POSITION, Bus, connect_bus
from sim.replay import replay, trade_events
from tests.feedback_fixtures import expected_feedback, make_trades
from tests.redis_server import RedisServer
from tests.test_bus_rollback import SnapshotRedis

ROOT = Path(__file__).resolve().parent.parent
POISON = [
    b'{"event_id":"deep","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"event_id":"big","ts":"2025-01-01T00:00:00Z","schema":"trade.execution.res","size_usd":1'
    + b"0" * 400
    + b"}",
    b'{"event_id":"\xff\xfe","ts":"2025-01-01T00:00:00Z"}',
    b"{not json",
    b"[1, 2, 3]",
    b"x" * 2_000_000,
]


class Bridge:
    """The bridge as its own process, stopped by PID."""

    def __init__(self, url: str, consumer: str = "bridge-a", env: dict[str, str] | None = None) -> None:
        self.url, self.consumer, self.env = url, consumer, env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, consumer: str | None = None) -> None:
        self.consumer = consumer or self.consumer
        cmd = [sys.executable, "-m", "execution.feedback_bridge", "--bus", self.url, "--consumer", self.consumer,
               "--block-ms", "100", "--count", "200", "--reclaim-idle-ms", "1000", "--log-level", "ERROR"]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT), "EVENTBUS_RETRY_DEADLINE_S": "3", **self.env}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None


def wait_for(bus: Bus, n: int, timeout_s: float = 120.0) -> None:
    """Until ``n`` distinct trades have feedback and the bridge's group has nothing pending."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            got = {e.get("order_id") for e in bus.events(TOPIC_FEEDBACK)}
            idle = all(bus.pending(t, "feedback-bridge") == 0 and not bus.lag(t, "feedback-bridge")
                       for t in (TOPIC_EXECUTION, TOPIC_POSITION))  # fmt: skip
            if len(got) >= n and idle:
                return
        except Exception:
            pass
        time.sleep(0.2)


def score(bus: Bus, trades: pd.DataFrame) -> dict[str, int]:
    fb = bus.events(TOPIC_FEEDBACK)
    ids = [str(e["order_id"]) for e in fb]
    want = expected_feedback(trades)
    wrong = 0
    for e in fb:
        exp = want.get(str(e["order_id"]))
        if exp is None or any(abs(float(e[k]) - v) > 1e-9 * max(1.0, abs(v)) for k, v in exp.items()):
            wrong += 1
    return {
        "sent": len(trades),
        "published": len(set(ids)),
        "lost": len(set(trades["order_id"]) - set(ids)),
        "duplicated": len(ids) - len(set(ids)),
        "wrong": wrong,
    }


def _items(trades: pd.DataFrame, seed: int) -> list[Any]:
    return trade_events(trades, updates_per_trade=2, duplicate_rate=0.05, shuffle_window=40, seed=seed)


def scenario_poison(tmp: Path, n: int, seed: int) -> dict[str, int]:
    server = RedisServer(tmp / "poison").start()
    try:
        trades = make_trades(n, seed=seed)
        raw = redis.Redis.from_url(server.url)
        for p in POISON:
            for t in (TOPIC_EXECUTION, TOPIC_POSITION):
                raw.xadd(t, {"event": p})
        bus = connect_bus(server.url, environ={})
        replay(bus, _items(trades, seed))
        for p in POISON:  # behind the trades too
            raw.xadd(TOPIC_POSITION, {"event": p})
        bridge = Bridge(server.url)
        bridge.start()
        wait_for(bus, n)
        bridge.stop()
        return score(bus, trades)
    finally:
        server.stop()


def scenario_kill_bridge(tmp: Path, n: int, seed: int, kills: int = 8) -> dict[str, int]:
    server = RedisServer(tmp / "kill").start()
    rng = random.Random(seed)
    try:
        trades = make_trades(n, seed=seed)
        bus = connect_bus(server.url, environ={})
        bridge = Bridge(server.url)
        bridge.start()
        items = _items(trades, seed)
        chunk = max(1, len(items) // kills)
        for i in range(0, len(items), chunk):
            replay(bus, items[i : i + chunk])
            time.sleep(rng.uniform(0.05, 0.6))
            bridge.kill()  # at a random point of its work
            bridge.start()
        wait_for(bus, n)
        bridge.stop()
        return score(bus, trades)
    finally:
        server.stop()


def scenario_kill_redis(tmp: Path, n: int, seed: int, kills: int = 3) -> dict[str, int]:
    server = RedisServer(tmp / "aof").start()  # appendfsync always
    try:
        trades = make_trades(n, seed=seed)
        bus = connect_bus(server.url, environ={}, retry_deadline_s=30.0)
        bridge = Bridge(server.url)
        bridge.start()
        items = _items(trades, seed)
        chunk = max(1, len(items) // kills)
        for i in range(0, len(items), chunk):
            replay(bus, items[i : i + chunk])
            time.sleep(0.3)
            server.kill()
            time.sleep(0.5)
            server.start()
        wait_for(bus, n)
        bridge.stop()
        return score(bus, trades)
    finally:
        server.stop()


def scenario_old_snapshot(tmp: Path, n: int, seed: int) -> dict[str, int]:
    server = SnapshotRedis(tmp / "rdb")
    server.start()
    try:
        trades = make_trades(n, seed=seed)
        items = _items(trades, seed)
        bus = connect_bus(server.url, environ={}, retry_deadline_s=30.0)
        bridge = Bridge(server.url)
        bridge.start()
        half = len(items) // 2
        replay(bus, items[:half])
        time.sleep(2.0)
        bus.client.save()  # type: ignore[attr-defined]
        shutil.copy(server.workdir / "dump.rdb", tmp / "old.rdb")
        replay(bus, items[half:])
        wait_for(bus, n)
        server.kill()
        shutil.copy(tmp / "old.rdb", server.workdir / "dump.rdb")
        server.start()  # back in time; the running bridge must notice
        replay(bus, items)  # the producer re-sends what Redis lost
        wait_for(bus, n)
        bridge.stop()
        return score(bus, trades)
    finally:
        server.kill()


def scenario_outage_past_the_cap(tmp: Path, n: int, seed: int) -> dict[str, int]:
    server = RedisServer(tmp / "cap").start()
    cap = max(100, n // 4)  # far less than the 5 events per trade that arrive during the outage
    try:
        trades = make_trades(n, seed=seed)
        env = {"EVENTBUS_MAXLEN": str(cap)}
        bus = connect_bus(server.url, environ=env)
        bridge = Bridge(server.url, env=env)
        bridge.start()
        time.sleep(1.5)
        bridge.kill()  # down while everything arrives
        replay(bus, _items(trades, seed))
        bridge.start()
        wait_for(bus, n)
        bridge.stop()
        return score(bus, trades)
    finally:
        server.stop()


def scenario_new_name(tmp: Path, n: int, seed: int, kills: int = 4) -> dict[str, int]:
    server = RedisServer(tmp / "rename").start()
    rng = random.Random(seed)
    try:
        trades = make_trades(n, seed=seed)
        bus = connect_bus(server.url, environ={})
        bridge = Bridge(server.url)
        bridge.start(consumer="bridge-0")
        items = _items(trades, seed)
        chunk = max(1, len(items) // kills)
        for k, i in enumerate(range(0, len(items), chunk)):
            replay(bus, items[i : i + chunk])
            time.sleep(rng.uniform(0.05, 0.5))
            bridge.kill()
            bridge.start(consumer=f"bridge-{k + 1}")  # a new host name each time
        wait_for(bus, n)
        bridge.stop()
        return score(bus, trades)
    finally:
        server.stop()


SCENARIOS: dict[str, Callable[[Path, int, int], dict[str, int]]] = {
    "poison messages": scenario_poison,
    "kill -9 of the bridge": scenario_kill_bridge,
    "Redis kill -9 (AOF)": scenario_kill_redis,
    "Redis back from an older RDB": scenario_old_snapshot,
    "outage past the stream cap": scenario_outage_past_the_cap,
    "restart under new names": scenario_new_name,
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_faults")
    parser.add_argument("--trades", type=int, default=1000, help="trades per scenario")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=None, help="run the scenarios whose name contains this")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        print("bench_faults: skipped (no redis-server binary)")
        return 0
    failed = 0
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        for name, run in SCENARIOS.items():
            if args.only and args.only not in name:
                continue
            t0 = time.monotonic()
            r = run(Path(tmp) / name.replace(" ", "_"), args.trades, args.seed)
            ok = r["lost"] == r["duplicated"] == r["wrong"] == 0
            failed += not ok
            print(f"{name:32s} sent {r['sent']:>6,}  published {r['published']:>6,}  lost {r['lost']}  "
                  f"duplicated {r['duplicated']}  wrong {r['wrong']}  ({time.monotonic() - t0:.0f} s) "
                  f"{'OK' if ok else 'FAIL'}", flush=True)  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
