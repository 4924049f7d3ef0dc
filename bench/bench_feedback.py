"""Benchmark of the reward calculator and the feedback bridge.

``.venv/bin/python -m bench.bench_feedback [--trades N] [--redis-url URL]``

Prints, against the targets of issues 8 and 21:

* reward calculation per trade in CPU time (target <= 10 us), next to the plan's multiplicative sketch;
* bridge throughput over the in-memory bus (target >= 25,000 trades/s) and through Redis on
  loopback (target >= 10,000 trades/s); a trade is an execution, one OPEN update and a close.
  In-process figures are also given per CPU-second (``time.process_time``), which sharing the
  machine inflates far less than wall time; each is the median of several runs on fresh buses
  (this machine's speed varies by +-30% from run to run);
* execution-to-feedback latency through Redis, p50/p99 (target p99 <= 50 ms): a publisher sends
  trades at a steady rate while the bridge runs in its own process; latency is the time from the
  close event's ``XADD`` to the ``rl.feedback`` entry being readable.

Without ``--redis-url`` a throwaway ``redis-server`` is started on a free loopback port (skipped
when the binary is missing). The CPU may be shared with other jobs: figures are indicative.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from execution.feedback_bridge import FeedbackBridge
from execution.reward_calculator import compute_reward, compute_reward_breakdown
from infra.bus import TOPIC_EXECUTION, TOPIC_FEEDBACK, Bus, MemoryBus, connect_bus
from infra.contracts.events import decode_event
from sim.replay import replay, trade_events
from tests.feedback_fixtures import make_trades

ROOT = Path(__file__).resolve().parent.parent


def plan_sketch_reward(
    pnl_pct: float, duration_mins: float, max_drawdown_pct: float, confidence: float
) -> float:
    """The plan's multiplicative sketch (wrong for losses), kept only as a speed peer."""
    reward = pnl_pct
    if pnl_pct > 0:
        reward *= 1 - 0.2 * min(duration_mins / 1440, 1)
    if max_drawdown_pct > 2:
        reward *= 0.8
    if pnl_pct < 0 and confidence > 0.8:
        reward *= 0.5
    sharpe = pnl_pct / math.sqrt(max(duration_mins, 1e-9) / 60)
    if sharpe > 1:
        reward *= 1.2
    return reward


def bench_reward(n: int = 200_000) -> None:
    rng = random.Random(0)
    rows = [(rng.gauss(0, 2), rng.uniform(0, 3000), abs(rng.gauss(1, 1.5)), rng.random()) for _ in range(n)]
    t0 = time.process_time()
    for p, d, m, c in rows:
        compute_reward(pnl_pct=p, duration_mins=d, max_drawdown_pct=m, confidence=c)
    fast = (time.process_time() - t0) / n * 1e6
    t0 = time.process_time()
    for p, d, m, c in rows:
        compute_reward_breakdown(pnl_pct=p, duration_mins=d, max_drawdown_pct=m, confidence=c)
    full = (time.process_time() - t0) / n * 1e6
    t0 = time.process_time()
    for p, d, m, c in rows:
        plan_sketch_reward(p, d, m, c)
    sketch = (time.process_time() - t0) / n * 1e6
    print(f"reward: compute_reward {fast:.2f} us/trade, breakdown {full:.2f} us/trade "
          f"(target <= 10 us: {10 / fast:.1f}x headroom); plan sketch (no validation) {sketch:.2f} us "
          f"-> ours {fast / sketch:.2f}x its cost")  # fmt: skip


class _GcTimer:
    """Wall time spent in CPython's cyclic collector inside a ``with`` block (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def _watch(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start

    def __enter__(self) -> _GcTimer:
        gc.callbacks.append(self._watch)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self._watch)


def _timed_runs(
    items: list[Any],
    n: int,
    repeats: int,
    fresh_bus: Callable[[], Bus],
    block_ms: int,
    gc_timer: _GcTimer | None = None,
) -> tuple[float, float, float]:
    """Median wall and CPU seconds of ``repeats`` bridge runs over ``items``, and the best wall.

    ``gc_timer`` adds up the collector's time inside the timed runs.
    """
    walls, cpus = [], []
    for _ in range(repeats):
        bus = fresh_bus()
        replay(bus, items)
        bridge = FeedbackBridge(bus, block_ms=block_ms, count=1000)
        gc.collect()
        with gc_timer or nullcontext():
            t0, c0 = time.perf_counter(), time.process_time()
            bridge.run(until_idle=True)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        assert bus.length(TOPIC_FEEDBACK) == n
    return float(np.median(walls)), float(np.median(cpus)), min(walls)


def bench_bridge_memory(n: int, repeats: int = 5) -> None:
    """In-memory bridge throughput (median of ``repeats`` runs on fresh buses)."""
    items = trade_events(make_trades(n, seed=1), updates_per_trade=1, seed=1)
    runs: list[float] = []
    walls: list[float] = []
    timer = _GcTimer()
    for _ in range(repeats):
        wall, cpu, _ = _timed_runs(items, n, 1, lambda: MemoryBus(maxlen=10 * n), 0, gc_timer=timer)
        runs.append(n / cpu)
        walls.append(n / wall)
    rate = float(np.median(runs))
    wall_rate = float(np.median(walls))
    print(f"bridge, memory: {wall_rate:,.0f} trades/s wall, {rate:,.0f} trades/s per CPU-second "
          f"({3 * rate:,.0f} events/s; median of {repeats}, range {min(runs):,.0f}-{max(runs):,.0f}) over "
          f"{n:,} trades (target >= 25,000 trades/s: {wall_rate / 25_000:.2f}x wall); cyclic GC "
          f"{timer.seconds * 1000 / repeats:.0f} ms per run")  # fmt: skip


def _jsonschema_of_execution() -> dict[str, Any]:
    """The execution event's schema as JSON Schema (draft 2020-12), for the peer line of the benchmark.

    It checks less than ours (``format`` is not enforced by default, so ``ts`` is any string, and
    JSON Schema has no finiteness test), so the ratio flatters the peer.
    """
    num = {"type": "number"}
    text = {"type": "string", "pattern": "\\S"}
    return {
        "type": "object",
        "required": ["event_id", "ts", "schema", "order_id", "symbol", "side", "entry_price", "size_usd",
                     "confidence", "multiplier_used", "state"],
        "properties": {
            "event_id": text, "ts": {"type": "string", "format": "date-time"},
            "schema": {"const": TOPIC_EXECUTION}, "order_id": text, "symbol": text,
            "side": {"enum": ["LONG", "SHORT"]},
            "entry_price": {**num, "exclusiveMinimum": 0}, "size_usd": {**num, "exclusiveMinimum": 0},
            "confidence": {**num, "minimum": 0, "maximum": 1}, "multiplier_used": {**num, "minimum": 0},
            "state": {"type": "array", "items": num},
            "route": text, "signal_id": text, "model_version": text,
        },
    }  # fmt: skip


def bench_validation(n: int = 20_000) -> None:
    """Decoding and validating one execution event from its JSON bytes: our contract vs jsonschema."""
    events = [
        ev for t, ev in trade_events(make_trades(n, seed=4), updates_per_trade=0) if t == TOPIC_EXECUTION
    ]
    raws = [json.dumps(ev).encode() for ev in events]

    def per_event(check: Callable[[Any], Any], evs: list[Any]) -> float:
        best = math.inf
        for _ in range(3):
            t0 = time.process_time()
            for ev in evs:
                check(ev)
            best = min(best, time.process_time() - t0)
        return best / len(evs) * 1e6

    ours = per_event(partial(decode_event, TOPIC_EXECUTION), raws)
    plain = per_event(json.loads, raws)
    try:
        import jsonschema
    except ImportError:
        peer = "jsonschema not installed"
    else:
        validator = jsonschema.Draft202012Validator(_jsonschema_of_execution())
        assert all(validator.is_valid(ev) for ev in events[:100])
        peer_us = per_event(lambda r: validator.is_valid(json.loads(r)), raws[:2000])
        peer = f"json.loads + jsonschema Draft202012Validator (peer) {peer_us:.2f} us, {peer_us / ours:.0f}x ours"
    print(
        f"decode + validate an execution event (msgspec contract): {ours:.2f} us; json.loads alone "
        f"{plain:.2f} us; {peer}"
    )


def bench_bridge_redis(url: str, n: int, repeats: int = 3) -> None:
    items = trade_events(make_trades(n, seed=2), updates_per_trade=1, seed=2)
    bus = connect_bus(url, environ={})

    def flushed() -> Bus:
        bus.client.flushdb()  # type: ignore[attr-defined]
        return bus

    dt, cpu, best = _timed_runs(items, n, repeats, flushed, block_ms=10)
    print(f"bridge, redis:  {n / dt:,.0f} trades/s wall ({3 * n / dt:,.0f} events/s; bridge process "
          f"{n / cpu:,.0f} trades per CPU-second; median of {repeats}, best {n / best:,.0f}) over {n:,} "
          f"trades (target >= 10,000 trades/s: {n / dt / 10_000:.2f}x)")  # fmt: skip


def bench_latency(url: str, n: int = 2000, rate: float = 1000.0) -> None:
    bus = connect_bus(url, environ={})
    bus.client.flushdb()  # type: ignore[attr-defined]
    items = trade_events(make_trades(n, seed=3), updates_per_trade=0)
    execs = [(t, e) for t, e in items if isinstance(e, dict) and e["event_id"].endswith(":exec")]
    closes = {
        e["order_id"]: (t, e) for t, e in items if isinstance(e, dict) and e["event_id"].endswith(":close")
    }  # type: ignore[index]
    replay(bus, execs)
    proc = subprocess.Popen(
        [sys.executable, "-m", "execution.feedback_bridge", "--bus", url, "--consumer", "bench",
         "--block-ms", "1000", "--log-level", "WARNING"],
        cwd=ROOT, env={**os.environ, "METRICS_PORT_FEEDBACK_BRIDGE": "0"},  # a free port: never collide
    )  # fmt: skip
    sent: dict[str, float] = {}
    received: dict[str, float] = {}
    reader = connect_bus(url, environ={})
    done = threading.Event()

    def read() -> None:
        last = "0-0"
        while not done.is_set() and len(received) < n:
            reply = reader.client.xread({TOPIC_FEEDBACK: last}, count=500, block=200)  # type: ignore[attr-defined]
            now = time.perf_counter()
            for _, rows in reply or []:
                for entry_id, fields in rows:
                    last = entry_id
                    oid = json.loads(fields["event"])["order_id"]
                    received[oid] = now

    try:
        while bus.length(TOPIC_FEEDBACK) == 0 and len(bus.groups("trade.position.update")) == 0:
            time.sleep(0.05)
        time.sleep(0.5)
        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        t_next = time.perf_counter()
        for oid, (topic, ev) in closes.items():
            t_next += 1.0 / rate
            while time.perf_counter() < t_next:
                time.sleep(0.0002)
            sent[oid] = time.perf_counter()
            bus.publish(topic, ev)
        thread.join(timeout=30)
    finally:
        done.set()
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    lat = np.array([(received[o] - sent[o]) * 1000 for o in sent if o in received])
    p50, p99 = np.percentile(lat, [50, 99])
    print(f"latency, redis: p50 {p50:.2f} ms, p99 {p99:.2f} ms over {lat.size:,} trades at {rate:,.0f} trades/s "
          f"(target p99 <= 50 ms: {50 / p99:.1f}x headroom); missing {n - lat.size}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_feedback")
    parser.add_argument("--trades", type=int, default=20_000, help="trades for the throughput runs")
    parser.add_argument(
        "--redis-url", default=None, help="use this Redis (it is FLUSHED) instead of a throwaway one"
    )
    args = parser.parse_args()
    print(f"bench_feedback on {os.cpu_count()} CPUs (shared with other jobs: figures are indicative); "
          f"Python {sys.version.split()[0]} from {sys.base_prefix}")  # fmt: skip
    bench_reward()
    bench_validation()
    bench_bridge_memory(args.trades)
    server = None
    url = args.redis_url
    if url is None:
        import shutil

        if shutil.which("redis-server") is None:
            print("redis: skipped (no redis-server binary; pass --redis-url)")
            return
        from tests.redis_server import RedisServer

        tmp = tempfile.mkdtemp(prefix="bench-redis-")
        server = RedisServer(Path(tmp), appendfsync="everysec")
        server.start()
        url = server.url
    try:
        bench_bridge_redis(url, min(args.trades, 20_000))
        bench_latency(url)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
