"""Fault injection: the feedback bridge and the online trainer against a real redis-server through
the failures of issue 22.

``.venv/bin/python -m bench.bench_faults [--trades N] [--seed S] [--only NAME]``

Each scenario replays a synthetic trade log (with duplicates and shuffling), runs the bridge
(``python -m execution.feedback_bridge``) and the trainer (``python -m research.rl_sizer.trainer``,
which learns the PPO and the edge sizer from ``rl.feedback``) as their own processes, injects one
kind of fault, waits until both are idle, and prints per scenario:

- bridge: trades sent, feedback published, lost (trades without feedback), duplicated (feedback
  entries beyond one per trade) and wrong rewards (feedback whose reward or drawdown differs from
  the value computed from the trade log);
- trainer, read from its checkpoints (what a restart would resume from): learned (orders in both
  the PPO checkpoint's ``learned_order_ids`` and the edge learner's), lost (feedback orders
  missing from either), duplicated (learning steps beyond one per order: ``trades_seen`` minus
  distinct ids, PPO plus edge), wrong (learned trades whose ``pnl_pct`` in the edge learner's
  state differs from the trade log's, plus one if the PPO reward sum differs from the trade log's)
  and dead letters on ``rl.feedback.dlq`` (the poison put on ``rl.feedback``).

Target: 0 lost, 0 duplicated, 0 wrong in every scenario, for both. The trainer checkpoints and
acknowledges every 100 trades, so ``--trades`` is a multiple of 100.

Scenarios: poison messages of every kind (on the bridge's inputs and on ``rl.feedback``); kill -9
of the bridge and of the trainer at random points; Redis kill -9 with an append-only file; Redis
restarted from an older RDB snapshot; an outage longer than the stream cap (both down while the
trades arrive, then the trainer still down while the bridge publishes more feedback than the cap);
a restart of both under new consumer names after kill -9.
"""

from __future__ import annotations

import argparse
import json
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


class Service:
    """A bus service as its own process, stopped by PID."""

    module = ""
    group = ""
    drop_env: tuple[str, ...] = ()

    def __init__(self, url: str, consumer: str, env: dict[str, str] | None = None) -> None:
        self.url, self.consumer, self.env = url, consumer, env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def args(self) -> list[str]:
        return []

    def start(self, consumer: str | None = None) -> None:
        self.consumer = consumer or self.consumer
        cmd = [sys.executable, "-m", self.module, "--bus", self.url, "--consumer", self.consumer, *self.args(),
               "--log-level", "ERROR"]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT), "EVENTBUS_RETRY_DEADLINE_S": "3", "METRICS_PORT_FEEDBACK_BRIDGE": "-1",
               **self.env}  # fmt: skip
        for var in self.drop_env:
            env.pop(var, None)
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


class Bridge(Service):
    """``python -m execution.feedback_bridge``."""

    module = "execution.feedback_bridge"
    group = "feedback-bridge"

    def __init__(self, url: str, consumer: str = "bridge-a", env: dict[str, str] | None = None) -> None:
        super().__init__(url, consumer, env)

    def args(self) -> list[str]:
        return ["--block-ms", "100", "--count", "200", "--reclaim-idle-ms", "1000"]


class Trainer(Service):
    """``python -m research.rl_sizer.trainer`` with its checkpoints under ``logs`` (PPO and edge)."""

    module = "research.rl_sizer.trainer"
    group = "ppo-trainer"

    drop_env = ("DATA_DIR", "CACHE_DIR", "RESEARCH_DIR", "ALLOW_PROD_WRITE")

    def __init__(
        self, url: str, logs: Path, consumer: str = "trainer-a", env: dict[str, str] | None = None
    ) -> None:
        super().__init__(url, consumer, {"LOGS_DIR": str(logs), "ENV": "dev", **(env or {})})
        self.logs = logs

    def args(self) -> list[str]:
        return ["--reclaim-idle-ms", "1000", "--no-tensorboard", "--metrics-port", "-1"]

    @property
    def ppo_dir(self) -> Path:
        return self.logs / "research" / "checkpoints" / "ppo_sizer"

    @property
    def edge_dir(self) -> Path:
        return self.logs / "research" / "checkpoints" / "edge_sizer"


class Pair:
    """The bridge and the trainer of one scenario."""

    def __init__(self, url: str, logs: Path, env: dict[str, str] | None = None) -> None:
        self.bridge = Bridge(url, env=env)
        self.trainer = Trainer(url, logs, env=env)

    def start(self, suffix: str = "a") -> None:
        self.bridge.start(f"bridge-{suffix}")
        self.trainer.start(f"trainer-{suffix}")

    def kill(self) -> None:
        self.bridge.kill()
        self.trainer.kill()

    def stop(self) -> None:
        self.bridge.stop()
        self.trainer.stop()


def wait_for(bus: Bus, n: int, timeout_s: float = 180.0, *, trainer: bool = True) -> None:
    """Until ``n`` distinct trades have feedback, and the bridge's and (with ``trainer``) the
    trainer's groups have nothing left to read or pending (the trainer acknowledges at its
    checkpoints)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            got = {e["order_id"] for e in bus.events(TOPIC_FEEDBACK) if "order_id" in e}
            # lag is None once a stream was trimmed past a group's position: "unknown", not unread
            idle = all(bus.pending(t, Bridge.group) == 0 and not bus.lag(t, Bridge.group)
                       for t in (TOPIC_EXECUTION, TOPIC_POSITION))  # fmt: skip
            started = any(g.name == Trainer.group for g in bus.groups(TOPIC_FEEDBACK))
            trained = not trainer or (
                started
                and bus.pending(TOPIC_FEEDBACK, Trainer.group) == 0
                and not bus.lag(TOPIC_FEEDBACK, Trainer.group)
            )
            if len(got) >= n and idle and trained:
                return
        except Exception:
            pass
        time.sleep(0.2)
    print(f"  (not idle after {timeout_s:.0f} s)", flush=True)


def score(bus: Bus, trades: pd.DataFrame, trainer: Trainer | None = None) -> dict[str, int]:
    fb = [e for e in bus.events(TOPIC_FEEDBACK) if "order_id" in e]  # not the poison put there
    ids = [str(e["order_id"]) for e in fb]
    want = expected_feedback(trades)
    wrong = 0
    for e in fb:
        exp = want.get(str(e["order_id"]))
        if exp is None or any(abs(float(e[k]) - v) > 1e-9 * max(1.0, abs(v)) for k, v in exp.items()):
            wrong += 1
    out = {
        "sent": len(trades),
        "published": len(set(ids)),
        "lost": len(set(trades["order_id"]) - set(ids)),
        "duplicated": len(ids) - len(set(ids)),
        "wrong": wrong,
    }
    if trainer is not None:
        out.update(audit_trainer(bus, trainer, want))
    return out


def audit_trainer(bus: Bus, trainer: Trainer, want: dict[str, dict[str, float]]) -> dict[str, int]:
    """What the trainer's latest checkpoints hold against the trade log (module docstring)."""
    from research.rl_sizer.checkpoints import CheckpointError, load_checkpoint

    expected = set(want)
    try:
        ppo = load_checkpoint(trainer.ppo_dir).meta
    except CheckpointError:
        ppo = {"trades_seen": 0, "learned_order_ids": [], "reward_stats": {"sum": 0.0}}
    try:
        edge = json.loads(load_checkpoint(trainer.edge_dir).payload)
    except CheckpointError:
        edge = {"trades_seen": 0, "order_ids": [], "pnl_pct": []}
    ppo_ids, edge_ids = set(map(str, ppo["learned_order_ids"])), set(map(str, edge["order_ids"]))
    wrong = sum(
        abs(float(p) - want[oid]["pnl_pct"]) > 1e-9 * max(1.0, abs(want[oid]["pnl_pct"]))
        for oid, p in zip(map(str, edge["order_ids"]), edge["pnl_pct"], strict=True)
        if oid in want
    )
    reward_sum = sum(want[oid]["reward"] for oid in ppo_ids & expected)
    wrong += abs(float(ppo["reward_stats"]["sum"]) - reward_sum) > 1e-6 * max(1.0, abs(reward_sum))
    return {
        "t_learned": len(ppo_ids & edge_ids & expected),
        "t_lost": len(expected - (ppo_ids & edge_ids)),
        "t_duplicated": int(ppo["trades_seen"]) - len(ppo_ids) + int(edge["trades_seen"]) - len(edge_ids),
        "t_wrong": int(wrong),
        "t_dead": len(bus.dead_letters(TOPIC_FEEDBACK, count=None)),
        "t_dead_expected": 0,
    }


def _items(trades: pd.DataFrame, seed: int) -> list[Any]:
    return trade_events(trades, updates_per_trade=2, duplicate_rate=0.05, shuffle_window=40, seed=seed)


def scenario_poison(tmp: Path, n: int, seed: int) -> dict[str, int]:
    server = RedisServer(tmp / "poison").start()
    try:
        trades = make_trades(n, seed=seed)
        raw = redis.Redis.from_url(server.url)
        for p in POISON:
            for t in (TOPIC_EXECUTION, TOPIC_POSITION, TOPIC_FEEDBACK):
                raw.xadd(t, {"event": p})
        bus = connect_bus(server.url, environ={})
        replay(bus, _items(trades, seed))
        for p in POISON:  # behind the trades too
            raw.xadd(TOPIC_POSITION, {"event": p})
        pair = Pair(server.url, tmp / "logs")
        pair.start()
        wait_for(bus, n)
        for p in POISON:  # behind the feedback: the trainer is past its first checkpoints by now
            raw.xadd(TOPIC_FEEDBACK, {"event": p})
        wait_for(bus, n)
        pair.stop()
        return {**score(bus, trades, pair.trainer), "t_dead_expected": 2 * len(POISON)}
    finally:
        server.stop()


def scenario_kill_both(tmp: Path, n: int, seed: int, kills: int = 8) -> dict[str, int]:
    server = RedisServer(tmp / "kill").start()
    rng = random.Random(seed)
    try:
        trades = make_trades(n, seed=seed)
        bus = connect_bus(server.url, environ={})
        pair = Pair(server.url, tmp / "logs")
        pair.start()
        items = _items(trades, seed)
        chunk = max(1, len(items) // kills)
        for i in range(0, len(items), chunk):
            replay(bus, items[i : i + chunk])
            # each at its own random point of its work (the trainer also needs ~3 s to import torch)
            for svc, (lo, hi) in rng.sample([(pair.bridge, (0.05, 0.6)), (pair.trainer, (0.5, 4.0))], 2):
                time.sleep(rng.uniform(lo, hi))
                svc.kill()
                svc.start()
        wait_for(bus, n)
        pair.stop()
        return score(bus, trades, pair.trainer)
    finally:
        server.stop()


def scenario_kill_redis(tmp: Path, n: int, seed: int, kills: int = 3) -> dict[str, int]:
    server = RedisServer(tmp / "aof").start()  # appendfsync always
    try:
        trades = make_trades(n, seed=seed)
        bus = connect_bus(server.url, environ={}, retry_deadline_s=30.0)
        pair = Pair(server.url, tmp / "logs")
        pair.start()
        items = _items(trades, seed)
        chunk = max(1, len(items) // kills)
        for i in range(0, len(items), chunk):
            replay(bus, items[i : i + chunk])
            time.sleep(0.3)
            server.kill()
            time.sleep(0.5)
            server.start()
        wait_for(bus, n)
        pair.stop()
        return score(bus, trades, pair.trainer)
    finally:
        server.stop()


def scenario_old_snapshot(tmp: Path, n: int, seed: int) -> dict[str, int]:
    server = SnapshotRedis(tmp / "rdb")
    server.start()
    try:
        trades = make_trades(n, seed=seed)
        items = _items(trades, seed)
        bus = connect_bus(server.url, environ={}, retry_deadline_s=30.0)
        pair = Pair(server.url, tmp / "logs")
        pair.start()
        half = len(items) // 2
        replay(bus, items[:half])
        time.sleep(4.0)  # the trainer learns (and checkpoints) part of it before the snapshot
        bus.client.save()  # type: ignore[attr-defined]
        shutil.copy(server.workdir / "dump.rdb", tmp / "old.rdb")
        replay(bus, items[half:])
        wait_for(bus, n)
        server.kill()
        shutil.copy(tmp / "old.rdb", server.workdir / "dump.rdb")
        server.start()  # back in time; the running bridge and trainer must notice
        replay(bus, items)  # the producer re-sends what Redis lost
        wait_for(bus, n)
        pair.stop()
        return score(bus, trades, pair.trainer)
    finally:
        server.kill()


def scenario_outage_past_the_cap(tmp: Path, n: int, seed: int) -> dict[str, int]:
    server = RedisServer(tmp / "cap").start()
    cap = max(100, n // 4)  # far less than the 5 events per trade that arrive during the outage
    try:
        trades = make_trades(n, seed=seed)
        env = {"EVENTBUS_MAXLEN": str(cap)}
        bus = connect_bus(server.url, environ=env)
        pair = Pair(server.url, tmp / "logs", env=env)
        pair.start()
        time.sleep(5.0)  # both groups exist (the trainer imports torch first)
        pair.kill()  # both down while everything arrives
        replay(bus, _items(trades, seed))
        pair.bridge.start()
        wait_for(bus, n, trainer=False)  # the trainer still down while n > cap feedback entries arrive
        unread = bus.lag(TOPIC_FEEDBACK, Trainer.group)
        print(f"  trainer restarts behind {unread} unread rl.feedback entries (stream cap {cap})", flush=True)
        pair.trainer.start()
        wait_for(bus, n)
        pair.stop()
        return score(bus, trades, pair.trainer)
    finally:
        server.stop()


def scenario_new_name(tmp: Path, n: int, seed: int, kills: int = 4) -> dict[str, int]:
    server = RedisServer(tmp / "rename").start()
    rng = random.Random(seed)
    try:
        trades = make_trades(n, seed=seed)
        bus = connect_bus(server.url, environ={})
        pair = Pair(server.url, tmp / "logs")
        pair.start("0")
        items = _items(trades, seed)
        chunk = max(1, len(items) // kills)
        for k, i in enumerate(range(0, len(items), chunk)):
            replay(bus, items[i : i + chunk])
            time.sleep(rng.uniform(0.5, 3.0))
            pair.kill()
            pair.start(str(k + 1))  # a new host name each time, for both
        wait_for(bus, n)
        pair.stop()
        return score(bus, trades, pair.trainer)
    finally:
        server.stop()


SCENARIOS: dict[str, Callable[[Path, int, int], dict[str, int]]] = {
    "poison messages": scenario_poison,
    "kill -9 of bridge and trainer": scenario_kill_both,
    "Redis kill -9 (AOF)": scenario_kill_redis,
    "Redis back from an older RDB": scenario_old_snapshot,
    "outage past the stream cap": scenario_outage_past_the_cap,
    "restart under new names": scenario_new_name,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_faults")
    parser.add_argument("--trades", type=int, default=1000, help="trades per scenario (a multiple of 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=None, help="run the scenarios whose name contains this")
    args = parser.parse_args(argv)
    if args.trades < 100 or args.trades % 100:
        parser.error(
            f"--trades must be a positive multiple of 100 (the trainer's checkpoint). Got {args.trades}."
        )
    if shutil.which("redis-server") is None:
        print("bench_faults: skipped (no redis-server binary)")
        return 0
    failed = 0
    print(f"{'scenario':32s} {'bridge: sent':>12s} {'published':>9s} lost dup wrong | "
          "trainer: learned lost dup wrong dead-letters", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        for name, run in SCENARIOS.items():
            if args.only and args.only not in name:
                continue
            t0 = time.monotonic()
            r = run(Path(tmp) / name.replace(" ", "_"), args.trades, args.seed)
            ok = (r["lost"] == r["duplicated"] == r["wrong"] == 0 == r["t_lost"] == r["t_duplicated"] == r["t_wrong"]
                  and r["t_dead"] == r["t_dead_expected"])  # fmt: skip
            failed += not ok
            print(f"{name:32s} {r['sent']:>12,} {r['published']:>9,} {r['lost']:>4} {r['duplicated']:>3} "
                  f"{r['wrong']:>5} | {r['t_learned']:>16,} {r['t_lost']:>4} {r['t_duplicated']:>3} {r['t_wrong']:>5} "
                  f"{r['t_dead']:>4}/{r['t_dead_expected']}  ({time.monotonic() - t0:.0f} s) "
                  f"{'OK' if ok else 'FAIL'}", flush=True)  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
