"""Benchmark of the online PPO sizer: one update on 50 transitions, and execution-to-update latency via Redis.

``.venv/bin/python -m bench.bench_ppo [--repeats N] [--rounds N] [--no-sb3] [--no-redis]``

1. One :meth:`PPOSizer.update` on a batch of 50 (10 epochs, one minibatch of 50, 64-unit MLPs),
   one torch thread; target <= 50 ms on CPU. Peer: stable-baselines3's ``PPO.train()`` on a
   50-step rollout with the same epochs, batch size and network width (its Gaussian policy on
   Pendulum-v1), timed the same way.
2. End-to-end latency through a throwaway ``redis-server``: a feedback bridge and the trainer run
   in threads with blocking reads; per round, 50 trades are published (execution, then close);
   measured from publishing the 50th close to the end of the PPO update it triggers, and per trade
   from its close to the trainer seeing its ``rl.feedback``.

The CPU is shared with other processes while this runs: medians, and the load average is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def bench_update(repeats: int) -> list[float]:
    from research.rl_sizer.ppo_sizer import Batch, PPOConfig, PPOSizer

    rng = np.random.default_rng(0)
    # 10 full epochs, no KL stop: the same work as the SB3 peer below (the default stops early)
    sizer = PPOSizer(3, seed=0, config=PPOConfig(epochs=10, target_kl=None))
    s = rng.normal(size=(50, 3))
    m, lp = sizer.sample_many(s)
    batch = Batch(s, m, lp, rng.normal(size=50))
    sizer.update(batch)  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sizer.update(batch)
        out.append(time.perf_counter() - t0)
    return out


def bench_sb3(repeats: int) -> list[float] | None:
    try:
        import gymnasium as gym
        from stable_baselines3 import PPO
    except ImportError:
        return None
    env = gym.make("Pendulum-v1")
    model = PPO(
        "MlpPolicy", env, n_steps=50, batch_size=50, n_epochs=10, seed=0, device="cpu",
        policy_kwargs={"net_arch": [64, 64]}, verbose=0,
    )  # fmt: skip
    model.learn(total_timesteps=50)  # fills the rollout buffer once
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.train()
        out.append(time.perf_counter() - t0)
    return out


def bench_redis(rounds: int) -> dict[str, Any] | None:
    import shutil

    if shutil.which("redis-server") is None:
        return None
    from execution.feedback_bridge import FeedbackBridge
    from infra.eventbus import TOPIC_EXECUTION, TOPIC_POSITION, connect_bus, new_event
    from research.rl_sizer.ppo_sizer import PPOSizer
    from research.rl_sizer.trainer import OnlineTrainer
    from tests.redis_server import RedisServer

    class Timed(OnlineTrainer):
        def observe(self, event: Any) -> Any:
            seen[str(event["order_id"])] = time.perf_counter()
            res = super().observe(event)
            if res is not None:
                updates.append(time.perf_counter())
            return res

    seen: dict[str, float] = {}
    updates: list[float] = []
    closed: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp), appendfsync="everysec").start()
        try:
            bus_pub = connect_bus(server.url, environ={})
            bus_bridge = connect_bus(server.url, environ={})
            bus_train = connect_bus(server.url, environ={})
            stop = threading.Event()
            bridge = FeedbackBridge(bus_bridge, consumer="bench", block_ms=50)
            trainer = Timed(PPOSizer(3, seed=0), checkpoint_dir=Path(tmp) / "ckpt", keep_history=False)
            threads = [
                threading.Thread(target=bridge.run, kwargs={"stop": stop}, daemon=True),
                threading.Thread(
                    target=trainer.run, args=(bus_train,), kwargs={"stop": stop, "block_ms": 50}, daemon=True
                ),
            ]
            for t in threads:
                t.start()
            rng = np.random.default_rng(0)
            t0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
            round_latency = []
            for r in range(rounds):
                n_before = len(updates)
                for i in range(50):
                    oid = f"b-{r:03d}-{i:03d}"
                    conf = float(rng.uniform(0.5, 0.9))
                    ts = t0 + dt.timedelta(hours=r, minutes=i)
                    # the behaviour log-prob a sampling governor records (the trainer uses no sample without it)
                    trainer.behaviour_log_probs[oid] = float(
                        trainer.sizer.log_prob(np.array([conf, 0.01, 1.0]), 1.0)[0]
                    )
                    bus_pub.publish(TOPIC_EXECUTION, new_event(TOPIC_EXECUTION, {
                        "order_id": oid, "symbol": "BTCUSDT", "side": "LONG", "entry_price": 100.0,
                        "size_usd": 1000.0, "confidence": conf, "multiplier_used": 1.0,
                        "state": [conf, 0.01, 1.0]}, ts=ts))  # fmt: skip
                pnl = rng.normal(0, 20, 50)
                last = 0.0
                for i in range(50):
                    oid = f"b-{r:03d}-{i:03d}"
                    ts = t0 + dt.timedelta(hours=r, minutes=i + 30)
                    last = time.perf_counter()
                    closed[oid] = last
                    bus_pub.publish(TOPIC_POSITION, new_event(TOPIC_POSITION, {
                        "order_id": oid, "status": "CLOSED", "unrealized_pnl_usd": 0.0,
                        "realized_pnl_usd": float(pnl[i]), "mark_price": 101.0, "symbol": "BTCUSDT"}, ts=ts))  # fmt: skip
                deadline = time.perf_counter() + 30
                while len(updates) == n_before and time.perf_counter() < deadline:
                    time.sleep(0.001)
                if len(updates) > n_before:
                    round_latency.append(updates[-1] - last)
            stop.set()
            for t in threads:
                t.join(timeout=5)
            for b in (bus_pub, bus_bridge, bus_train):
                b.close()
        finally:
            server.stop()
    per_trade = [seen[o] - closed[o] for o in closed if o in seen]
    return {"round_latency": round_latency, "per_trade": per_trade}


def _fmt(xs: list[float]) -> str:
    return f"median {statistics.median(xs) * 1e3:.1f} ms (min {min(xs) * 1e3:.1f}, max {max(xs) * 1e3:.1f}, n={len(xs)})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_ppo", description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--no-sb3", action="store_true")
    p.add_argument("--no-redis", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (shared machine); torch threads 1")
    ours = bench_update(args.repeats)
    print(f"PPOSizer.update, 50 transitions x 10 epochs: {_fmt(ours)}; target <= 50 ms")
    if not args.no_sb3:
        sb3 = bench_sb3(args.repeats)
        if sb3 is None:
            print("stable-baselines3 not installed: peer skipped")
        else:
            print(f"SB3 PPO.train(), 50 steps x 10 epochs:      {_fmt(sb3)}")
            print(f"ratio ours / SB3 (median): {statistics.median(ours) / statistics.median(sb3):.2f}")
    if not args.no_redis:
        res = bench_redis(args.rounds)
        if res is None:
            print("redis-server not found: end-to-end latency skipped")
        else:
            print(f"Redis: 50th close published -> PPO update done: {_fmt(res['round_latency'])}")
            print(f"Redis: close published -> trainer sees rl.feedback: {_fmt(res['per_trade'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
