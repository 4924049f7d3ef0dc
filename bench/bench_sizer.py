"""Benchmark of the learned sizers: share of the achievable optimum, learning curve, real bars.

``.venv/bin/python -m bench.bench_sizer [--seeds 20] [--ppo-seeds 3] [--no-ppo] [--no-real] [--no-main] [--curve edge,table,ppo,ppo_online]``

1. Synthetic regime data (:func:`~research.rl_sizer.signals.synthetic_trades`) through the env
   with its position cap, gross cap and 5 bps costs, over ``--seeds`` independent data seeds:
   3,000 training and 5,000 test trades per seed; rows Kelly, best constant, edge, table and the
   achievable optimum (:mod:`research.rl_sizer.growth_ab`). Primary metric: expected log growth
   per 1,000 test trades (outcome noise integrated out; the realized figure is printed too).
   Targets (issue 20): the edge sizer's gain over Kelly >= 80% of the optimum's gain, its 95%
   interval excluding 0, its max drawdown no worse than Kelly's by more than 10%.
2. Learning curve: share of the optimum's gain at 500, 1k, 3k and 10k training trades for the
   edge sizer and the calibrated-Kelly table (all seeds), stable-baselines3 PPO (``ppo``) with
   ``2 x`` the training trades in env steps (capped at 20,000) and the fixed online PPO sizer
   (``ppo_online``, three passes in batches of 50), both on ``--ppo-seeds`` seeds -- what fits in a
   few minutes on the shared CPU; the PPO figures are therefore indicative only.
3. Real BTC/ETH bars (``data/sample/binance_usdm``, 1h and 5m, the walk-forward reference model's
   trades): the A/B table and its verdict, whatever they show.
"""

from __future__ import annotations

import argparse
import glob
import os
import time
from typing import Any

import pandas as pd

from research.rl_sizer.config import PilotConfig
from research.rl_sizer.growth_ab import (
    ONLINE_PPO_PASSES,
    optimum_fraction,
    run_synthetic_ab,
    run_trades_ab,
)
from research.rl_sizer.growth_report import format_growth_table

CURVE = (500, 1000, 3000, 10_000)
DATA = "data/sample/binance_usdm"


def _row(res: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in res["rows"] if r["sizer"] == name)


def _targets(res: dict[str, Any]) -> None:
    """Print the issue's targets for the edge sizer against the optimum and Kelly."""
    edge, opt, kelly = _row(res, "edge"), _row(res, "optimum"), _row(res, "kelly")
    share = edge["d_exp_log_growth_1k"] / opt["d_exp_log_growth_1k"]
    lo = edge["d_exp_log_growth_1k_ci"][0]
    dd_ok = edge["max_drawdown"] >= 1.1 * kelly["max_drawdown"]  # drawdowns are negative
    print(
        f"\nTARGET edge share of optimum >= 80%: {100 * share:.0f}% -> {'MET' if share >= 0.8 else 'MISSED'}; "
        f"CI excludes 0: lower {lo:+.3f} -> {'MET' if lo > 0 else 'MISSED'}; max drawdown {edge['max_drawdown']:.3f} "
        f"vs Kelly {kelly['max_drawdown']:.3f} (limit {1.1 * kelly['max_drawdown']:.3f}) -> {'MET' if dd_ok else 'MISSED'}"
    )
    opt_g = opt["d_log_growth_1k"]
    real_share = edge["d_log_growth_1k"] / opt_g if opt_g > 0 else float("nan")
    elo, ehi = edge["d_log_growth_1k_ci"]
    olo, ohi = opt["d_log_growth_1k_ci"]
    print(f"(realized log growth: edge {edge['d_log_growth_1k']:+.3f} [{elo:+.3f}, {ehi:+.3f}], optimum "
          f"{opt_g:+.3f} [{olo:+.3f}, {ohi:+.3f}], share {100 * real_share:.0f}%)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_sizer", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--ppo-seeds", type=int, default=3)
    parser.add_argument("--no-ppo", action="store_true")
    parser.add_argument("--no-real", action="store_true")
    parser.add_argument("--no-main", action="store_true", help="skip the 3,000-trade comparison (curve only)")
    parser.add_argument(
        "--curve", default="edge,table,ppo,ppo_online", help="learning-curve columns (default: all four)"
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    cfg = PilotConfig()
    seeds = list(range(args.seeds))
    print(f"load average {os.getloadavg()[0]:.1f}; config: cap {cfg.max_position_leverage}x position, "
          f"{cfg.max_gross_leverage}x gross, {cfg.cost_bps} bps per side, base {cfg.kelly_fraction} Kelly")  # fmt: skip
    t0 = time.perf_counter()
    frac = optimum_fraction(cfg)
    print(f"optimum: fraction {frac:g} of full Kelly on the true net edge ({time.perf_counter() - t0:.1f} s)")

    # 1. the main comparison at 3,000 training trades
    main_res = None
    if not args.no_main:
        t0 = time.perf_counter()
        main_res = run_synthetic_ab(config=cfg, seeds=seeds, n_train=3000, n_test=5000,
                                    agents=("kelly", "const", "edge", "table"))  # fmt: skip
        print(
            f"\n== 1. synthetic regimes, {len(seeds)} seeds, 3,000 training trades ({time.perf_counter() - t0:.0f} s)"
        )
        print(format_growth_table(main_res))
        _targets(main_res)

    # 2. learning curve
    curve = [c.strip() for c in args.curve.split(",") if c.strip()]
    if args.no_ppo:
        curve = [c for c in curve if not c.startswith("ppo")]
    fast = [c for c in curve if c in ("edge", "table")]
    slow = [c for c in curve if c not in fast]
    print("\n== 2. learning curve: share of the optimum's gain in expected log growth per 1,000 test trades")
    print(
        f"   ppo: stable-baselines3 PPO, 2x the training trades in env steps (<= 20,000), {args.ppo_seeds} seeds;"
    )
    print(
        f"   ppo_online: the fixed online PPO sizer, {ONLINE_PPO_PASSES} passes in batches of 50, {args.ppo_seeds} seeds"
    )
    print(f"{'train trades':>12} " + " ".join(f"{c:>18}" for c in curve))
    for n in CURVE:
        t0 = time.perf_counter()
        cells: dict[str, str] = {}
        if fast:
            use_main = main_res is not None and n == 3000 and all(c in ("edge", "table") for c in fast)
            res = main_res if use_main else run_synthetic_ab(config=cfg, seeds=seeds, n_train=n, n_test=5000,
                                                            agents=("kelly", *fast))  # fmt: skip
            assert res is not None
            g = _row(res, "optimum")["d_exp_log_growth_1k"]
            for name in fast:
                r = _row(res, name)
                lo_, hi_ = r["d_exp_log_growth_1k_ci"]
                cells[name] = (
                    f"{100 * r['d_exp_log_growth_1k'] / g:5.0f}% [{100 * lo_ / g:4.0f},{100 * hi_ / g:4.0f}]"
                )
        for name in slow:
            steps = min(2 * n, 20_000)
            pres = run_synthetic_ab(config=cfg, seeds=seeds[: args.ppo_seeds], n_train=n, n_test=5000,
                                    agents=("kelly", name), train_steps=steps)  # fmt: skip
            pg = _row(pres, "optimum")["d_exp_log_growth_1k"]
            p = _row(pres, name)
            lo_, hi_ = p["d_exp_log_growth_1k_ci"]
            cells[name] = (
                f"{100 * p['d_exp_log_growth_1k'] / pg:5.0f}% [{100 * lo_ / pg:4.0f},{100 * hi_ / pg:4.0f}]"
            )
        print(
            f"{n:>12} "
            + " ".join(f"{cells[c]:>18}" for c in curve)
            + f"   ({time.perf_counter() - t0:.0f} s)"
        )

    # 3. real bars
    if not args.no_real:
        from infra.loaders import load_bars
        from research.rl_sizer.signals import trades_for

        for freq in ("1h", "5m"):
            paths = sorted(glob.glob(f"{DATA}/*-{freq}-*.csv"))
            if not paths:
                print(f"\n== 3. real bars {freq}: no files under {DATA}")
                continue
            t0 = time.perf_counter()
            bars = pd.concat([load_bars(p) for p in paths], ignore_index=True)
            trades = trades_for(bars, cfg)
            res = run_trades_ab(trades, config=cfg, agents=("kelly", "const", "edge", "table"),
                                label=f"BTC+ETH {freq} model", n_boot=1000)  # fmt: skip
            print(f"\n== 3. real bars {freq} ({len(trades)} trades, {time.perf_counter() - t0:.0f} s)")
            print(format_growth_table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
