"""Demo step: rl_pilot (moved from research.rl_sizer.runner: no demo code in a service)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from research.rl_sizer.runner import (
    DEMO_PPO_STEPS,
    PROGRAM,
    PilotConfig,
    atomic_write_text,
    jsonio,
    load_bars,
    run_pilot,
    trades_for,
    write_pilot_artifact,
)
from scripts.demo_context import DemoContext


def demo_data_label(ctx: DemoContext) -> str:
    """What the demo's runs were trained on, by its real source: ``demo synthetic bars`` or
    ``demo real bars BTCUSDT,ETHUSDT`` (both used to read ``demo:bars.parquet``)."""
    if not ctx.real_bars:
        return "demo synthetic bars"
    symbols = sorted(pd.read_parquet(ctx.bars_path, columns=["symbol"])["symbol"].astype(str).unique())
    return "demo real bars " + ",".join(symbols)


def demo_step(ctx: DemoContext) -> str:
    """Short pilot on the demo bars: Kelly, table and PPO runs plus a quick 2-seed A/B (< ~40 s)."""
    from research.rl_sizer.evaluate import run_ab
    from research.rl_sizer.pilot_artifact import ab_dir

    bars = load_bars(ctx.bars_path)
    cfg = PilotConfig(n_steps=256)  # signal 'model': the walk-forward reference model, computed once
    label = demo_data_label(ctx)
    trades = trades_for(bars, cfg)
    for agent, eps, steps in (("kelly", 1, 0), ("table", 1, 0), ("ppo", 2, DEMO_PPO_STEPS)):
        run_pilot(ctx.settings, agent=agent, episodes=eps, train_steps=steps, seed=ctx.seed, bars=bars,
                  data_label=label, config=cfg, resume=False, store=ctx.store, progress=False,
                  trades=trades)  # fmt: skip
    result = run_ab(trades, config=cfg, seeds=(0, 1), agents=("kelly", "table", "ppo"), train_steps=DEMO_PPO_STEPS,
                    n_boot=300, label="demo-quick")  # fmt: skip
    result["source"] = cfg.signal
    out = ab_dir(ctx.settings, dry_run=False) / f"demo-quick-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    atomic_write_text(out, jsonio.dumps(result))
    write_pilot_artifact(ctx.settings, dry_run=False, source=f"{PROGRAM}:demo_step", store=ctx.store)
    return f"{len(trades)} demo trades ({cfg.signal} signal); quick A/B (2 seeds, {DEMO_PPO_STEPS} PPO steps): {result['verdict']}"
