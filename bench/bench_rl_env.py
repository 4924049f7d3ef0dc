"""Benchmark: SizingEnv raw steps per second and SB3 PPO training steps per second.

``.venv/bin/python -m bench.bench_rl_env [--steps 300000] [--ppo-steps 4096]``

Peers, measured in the same run: Gymnasium's CartPole-v1 (the reference "cheap" env; raw steps
and PPO training with the same hyperparameters). Target: SizingEnv >= 100,000 raw steps/s.
Figures are wall-clock and CPU (process) time; on a shared machine CPU time is the fairer figure
(wall time includes waiting for other processes).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

TARGET = 100_000.0


def _raw_steps(env: Any, action: Any, steps: int, *, seed: int = 0) -> tuple[float, float]:
    """(wall, cpu) steps per second of ``env.step`` alone (resets excluded)."""
    env.reset(seed=seed)
    wall = cpu = 0.0
    done_steps = 0
    while done_steps < steps:
        w0, c0 = time.perf_counter(), time.process_time()
        n = 0
        while True:
            _, _, terminated, truncated, _ = env.step(action)
            n += 1
            if terminated or truncated or done_steps + n >= steps:
                break
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        done_steps += n
        env.reset()
    return done_steps / wall, done_steps / max(cpu, 1e-9)


def _ppo_steps(make_env: Callable[[], Any], steps: int) -> tuple[float, float]:
    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    model = PPO("MlpPolicy", make_env(), n_steps=512, batch_size=128, learning_rate=1e-3, seed=0, device="cpu",
                policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}})  # fmt: skip
    w0, c0 = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - w0), steps / max(time.process_time() - c0, 1e-9)


def main(argv: list[str] | None = None) -> int:
    import gymnasium as gym

    from infra.loaders import load_bars
    from research.rl_sizer.config import PilotConfig
    from research.rl_sizer.env import SizingEnv

    parser = argparse.ArgumentParser(prog="python -m bench.bench_rl_env", description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300_000, help="raw env steps per measurement")
    parser.add_argument("--ppo-steps", type=int, default=4096, help="PPO training steps per measurement")
    args = parser.parse_args(argv)

    print(f"load average at start: {os.getloadavg()} (2 shared cores)")
    act = np.zeros(1, dtype=np.float32)
    rows: list[tuple[str, float, float]] = []
    synth = SizingEnv(config=PilotConfig(episode_length=100_000))
    rows.append(("SizingEnv synthetic (100k-trade episodes)", *_raw_steps(synth, act, args.steps)))
    rows.append(("SizingEnv synthetic (256-trade episodes)", *_raw_steps(SizingEnv(), act, args.steps)))
    bars = load_bars("data/sample/binance_usdm/BTC_USDT_USDT-5m-futures.csv")
    real = SizingEnv(bars=bars, config=PilotConfig(episode_length=10**9))
    rows.append(
        (
            f"SizingEnv BTC 5m bars ({len(real.trades or [])}-trade episodes)",
            *_raw_steps(real, act, args.steps),
        )
    )
    cart = gym.make("CartPole-v1").unwrapped
    rows.append(("peer: CartPole-v1 (unwrapped)", *_raw_steps(cart, 0, args.steps)))
    print(f"\nRaw env steps/s (target {TARGET:,.0f})")
    print(f"{'env':<48} {'wall/s':>10} {'cpu/s':>10} {'cpu vs target':>14} {'cpu vs CartPole':>16}")
    cart_cpu = rows[-1][2]
    for name, wall, cpu in rows:
        print(f"{name:<48} {wall:>10,.0f} {cpu:>10,.0f} {cpu / TARGET:>13.2f}x {cpu / cart_cpu:>15.2f}x")

    print(
        f"\nSB3 PPO training steps/s ({args.ppo_steps} steps, n_steps 512, batch 128, 10 epochs, 1 torch thread)"
    )
    ppo_rows = [
        ("PPO on SizingEnv", *_ppo_steps(lambda: SizingEnv(), args.ppo_steps)),
        ("peer: PPO on CartPole-v1", *_ppo_steps(lambda: gym.make("CartPole-v1"), args.ppo_steps)),
    ]
    for name, wall, cpu in ppo_rows:
        print(f"{name:<48} {wall:>10,.0f} {cpu:>10,.0f} {cpu / ppo_rows[1][2]:>13.2f}x vs CartPole")
    print("\nPPO training is bound by the network updates, not the env: the env's share of a PPO step is "
          f"{100 * ppo_rows[0][2] / rows[1][2]:.1f}% of the time.")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
