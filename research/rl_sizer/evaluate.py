"""The A/B: do learned sizers beat static Kelly on held-out trades, and by how much of what is achievable?

``python -m research.rl_sizer.evaluate [--data PATH ...] [--signal model|momentum] [--seeds 20] [--agents kelly,const,edge,table,ppo,dqn] [--json]``

The command runs the log-growth A/B of :mod:`research.rl_sizer.growth_ab`: log growth per 1,000
trades primary, Sharpe and max drawdown secondary; rows for static Kelly, the best constant
multiplier (fitted on the training trades), every learned sizer and the achievable optimum
(synthetic: the best state-dependent policy given the true process, through the env's caps and
costs; bars: the hindsight-best multiplier per state bucket, an upper bound); the share of trades
at the position cap, the realized-vs-claimed edge slope per regime and the minimum detectable
difference. Synthetic results are repeated over data seeds (mean and 95% interval across seeds).

A constant multiplier *does* change Sharpe here: under the position cap a larger multiplier
cannot grow the capped trades, so it changes the mix of returns, not just their scale (the issue
measured +1.22 Sharpe for a constant 0.5 on the synthetic A/B). That is why every A/B carries a
best-constant row, and why log growth, not Sharpe, is the primary metric.

:func:`run_ab` below is the earlier Sharpe A/B (PPO/DQN/table with a paired block bootstrap),
still used by the pilot's demo step:

Protocol of :func:`run_ab`
    1. One trade list (bars through the walk-forward reference model, ``--signal model``, the
       default, or the momentum signal, ``--signal momentum``; or synthetic), split by time with
       :meth:`TradeSet.split`: training trades exit before the split, test trades enter after it.
    2. For each seed: PPO and DQN train on the training period; the table is fitted on it;
       Kelly needs nothing. All sizers then trade the *identical* test trades in one episode
       each, with the drawdown stop off (so every series has the same trades).
    3. Metrics of each per-trade account-return series (:mod:`research.rl_sizer.rollout`):
       Sharpe, log growth, max drawdown; averaged over seeds.
    4. Paired differences against Kelly with a moving-block bootstrap (Kunsch 1989; blocks of
       ``ceil(T ** (1/3))`` trades keep the serial dependence of overlapping trades): each
       replicate resamples the same trade indices for every sizer and seed, recomputes the
       seed-averaged difference, and the 2.5 / 97.5 percentiles give the 95% interval. The
       interval covers trade-sampling noise and seed-to-seed training noise together.
    5. A one-line verdict: a sizer "beats Kelly" only when its Sharpe difference interval lies
       above zero.

On synthetic data the true win probabilities are known, so an ``oracle`` row (Kelly on the
true probability, clipped to the same [0.5, 2] multipliers) is shown; it ignores the cap and the
costs, so it is the ceiling for neither Sharpe nor log growth (the growth A/B's ``optimum`` is).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infra import jsonio
from infra.artifacts import atomic_write_text
from infra.cli import run_cli
from infra.loaders import load_bars
from infra.safety import require_research_env
from infra.settings import load_settings
from infra.timeutil import utc_iso, utcnow
from research.rl_sizer.ab_stats import METRICS, paired_difference
from research.rl_sizer.agents import AGENTS, Sizer, make_sizer
from research.rl_sizer.config import PilotConfig, add_config_arguments, config_from_args
from research.rl_sizer.env import (
    MAX_MULTIPLIER,
    MIN_MULTIPLIER,
    SizingEnv,
    action_from_multiplier,
    kelly_fraction,
)
from research.rl_sizer.growth_ab import (
    FAST_SIZERS,
    GROWTH_SIZERS,
    run_synthetic_ab,
    run_trades_ab,
)
from research.rl_sizer.growth_report import format_growth_table
from research.rl_sizer.pilot_artifact import ab_dir, write_pilot_artifact
from research.rl_sizer.rollout import EpisodeResult, run_episode
from research.rl_sizer.signals import TradeSet, synthetic_trades, trades_for

RL_AGENTS = ("ppo", "dqn")


class SequenceSizer(Sizer):
    """Plays a fixed action per trade index (used for the synthetic oracle)."""

    name = "oracle"

    def __init__(self, actions: np.ndarray) -> None:
        super().__init__()
        self.actions = np.asarray(actions, dtype=np.float32)
        self._k = 0

    def learn(self, env: SizingEnv, total_timesteps: int = 0) -> SequenceSizer:
        return self

    def act(self, obs: np.ndarray, *, deterministic: bool = True) -> np.ndarray:
        a = self.actions[self._k : self._k + 1]
        self._k += 1
        return a

    def save(self, path: str | Path) -> Path:
        raise NotImplementedError("the oracle is not a trainable sizer and is never saved")


def oracle_actions(trades: TradeSet, config: PilotConfig) -> np.ndarray | None:
    """Kelly on the true probability over Kelly on the claim, as actions; None without truth."""
    if not np.isfinite(trades.true_prob).all():
        return None
    f_claim = kelly_fraction(trades.confidence, config.payoff_ratio)
    f_true = kelly_fraction(trades.true_prob, config.payoff_ratio)
    m = np.divide(f_true, f_claim, out=np.ones_like(f_true), where=f_claim > 0)
    return action_from_multiplier(np.clip(m, MIN_MULTIPLIER, MAX_MULTIPLIER))


def run_ab(
    trades: TradeSet,
    *,
    config: PilotConfig | None = None,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    agents: Sequence[str] = AGENTS,
    train_steps: int = 20_000,
    n_boot: int = 1000,
    label: str = "ab",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the A/B (module docstring) and return a JSON-able result with ``rows`` and ``verdict``."""
    cfg = config or PilotConfig()
    unknown = [a for a in agents if a not in AGENTS]
    if unknown or "kelly" not in agents:
        raise ValueError(
            f"The 'agents' parameter of run_ab must include 'kelly' and only {AGENTS}. Got {list(agents)} instead."
        )
    if not seeds:
        raise ValueError("The 'seeds' parameter of run_ab must hold at least one seed. Got none instead.")
    train, test = trades.split(cfg.train_frac)
    if len(train) < 10 or len(test) < 10:
        raise ValueError(
            f"run_ab needs >= 10 training and test trades. Got {len(train)} and {len(test)} instead."
        )
    env_train = SizingEnv(trades=train, config=cfg)
    env_test = SizingEnv(trades=test, config=cfg, terminate_on_drawdown=False)
    all_opts = {"length": None}
    t0 = time.perf_counter()
    series: dict[str, list[EpisodeResult]] = {}
    for name in agents:
        runs: list[EpisodeResult] = []
        for seed in seeds if name in RL_AGENTS else seeds[:1]:
            if progress:
                progress(f"{name} seed {seed}")
            sizer = make_sizer(name, cfg, seed=int(seed))
            sizer.learn(env_train, train_steps if name in RL_AGENTS else 0)
            runs.append(run_episode(env_test, sizer, seed=int(seed), options=all_opts))
        series[name] = runs if name in RL_AGENTS else runs * len(seeds)  # deterministic: same every seed
    oracle = oracle_actions(test, cfg)
    if oracle is not None:
        series["oracle"] = [run_episode(env_test, SequenceSizer(oracle), options=all_opts)] * len(seeds)
    ppy = test.periods_per_year
    base = np.stack([r.returns for r in series["kelly"]])
    rng = np.random.default_rng(12345)
    rows = []
    for name, runs in series.items():
        summ = [r.summary for r in runs]
        row: dict[str, Any] = {"sizer": name, "seeds": len({*seeds}) if name in RL_AGENTS else 1}
        for key in (*METRICS, "mean_multiplier"):
            vals = np.array([s[key] for s in summ])
            row[key] = float(np.mean(vals))
            row[f"{key}_sd"] = float(np.std(vals, ddof=1)) if name in RL_AGENTS and len(vals) > 1 else 0.0
        if name != "kelly":
            a = np.stack([r.returns for r in runs])
            for metric in METRICS:
                d, lo, hi = paired_difference(
                    a, base, metric=metric, periods_per_year=ppy, n_boot=n_boot, rng=rng
                )
                row[f"d_{metric}"], row[f"d_{metric}_ci"] = d, [lo, hi]
        rows.append(row)
    return {
        "label": label,
        "generated_at": utc_iso(utcnow()),
        "train": train.window(),
        "test": test.window(),
        "seeds": [int(s) for s in seeds],
        "train_steps": int(train_steps),
        "n_boot": int(n_boot),
        "periods_per_year": ppy,
        "rows": rows,
        "verdict": verdict(rows),
        "seconds": round(time.perf_counter() - t0, 1),
        "config": cfg.__dict__,
    }


def verdict(rows: list[dict[str, Any]]) -> str:
    """One honest line from the Sharpe-difference intervals of the rows."""

    def fmt(r: dict[str, Any]) -> str:
        lo, hi = r["d_sharpe_ci"]
        return f"{r['sizer'].upper()} {r['d_sharpe']:+.2f} [{lo:+.2f}, {hi:+.2f}]"

    learned = [r for r in rows if r["sizer"] in ("ppo", "dqn", "table")]
    if not learned:
        return "Only Kelly was evaluated: nothing to compare."
    winners = [r for r in learned if r["d_sharpe_ci"][0] > 0]
    losers = [r for r in learned if r["d_sharpe_ci"][1] < 0]
    detail = "; ".join(fmt(r) for r in learned)
    oracle = next((r for r in rows if r["sizer"] == "oracle"), None)
    ceiling = f"; ceiling (oracle) {oracle['d_sharpe']:+.2f}" if oracle else ""
    if winners:
        names = ", ".join(r["sizer"].upper() for r in winners)
        return f"{names} beat static Kelly on held-out Sharpe (95% CI above 0): {detail}{ceiling}."
    if losers:
        names = ", ".join(r["sizer"].upper() for r in losers)
        return f"No sizer beats static Kelly on held-out Sharpe and {names} do worse: {detail}{ceiling}."
    return f"No evidence that any sizer beats static Kelly on held-out Sharpe (every 95% CI includes 0): {detail}{ceiling}."


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of the A/B result."""
    lines = [
        f"A/B {result['label']}: train {result['train']['start'][:16]}..{result['train']['end'][:16]} "
        f"({result['train']['trades']} trades), test {result['test']['start'][:16]}..{result['test']['end'][:16]} "
        f"({result['test']['trades']} trades), seeds {result['seeds']}, {result['train_steps']} train steps",
        f"{'sizer':<7} {'Sharpe':>7} {'logG':>7} {'maxDD':>7} {'mult':>5}  "
        f"{'dSharpe [95% CI]':>24} {'dlogG [95% CI]':>24} {'dmaxDD [95% CI]':>24}",
    ]
    for r in result["rows"]:
        cells = [
            f"{r['sizer']:<7} {r['sharpe']:>7.2f} {r['log_growth']:>7.3f} {r['max_drawdown']:>7.3f} {r['mean_multiplier']:>5.2f} "
        ]
        for m in METRICS:
            if f"d_{m}" in r:
                lo, hi = r[f"d_{m}_ci"]
                cells.append(f"{r[f'd_{m}']:>+7.3f} [{lo:+.3f},{hi:+.3f}]".rjust(25))
            else:
                cells.append("(baseline)".rjust(25))
        lines.append("".join(cells))
    lines.append("Verdict: " + result["verdict"])
    return "\n".join(lines)


def load_trades_for(
    paths: Sequence[str], config: PilotConfig, *, synthetic: int, seed: int
) -> tuple[TradeSet, str]:
    """Trades from bar files (merged) through ``config.signal``, or synthetic trades; plus a label.

    The label of bar data ends with the signal (``...-model`` or ``...-momentum``), so the A/Bs of
    both sources on the same data sit side by side in the artifact.
    """
    if paths:
        bars = pd.concat([load_bars(p) for p in paths], ignore_index=True)
        label = "+".join(Path(p).name.split(".")[0] for p in paths) + f"-{config.signal}"
        return trades_for(bars, config), label
    return synthetic_trades(synthetic, rng=np.random.default_rng(seed)), f"synthetic{synthetic}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m research.rl_sizer.evaluate", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--data",
        nargs="*",
        default=[],
        help="bar files (CSV/Parquet); default: synthetic trades over data seeds",
    )
    parser.add_argument(
        "--seeds", type=int, default=20, help="synthetic: data seeds 0..N-1; bars: PPO/DQN seeds"
    )
    parser.add_argument("--train-trades", type=int, default=3000, help="synthetic training trades per seed")
    parser.add_argument("--test-trades", type=int, default=5000, help="synthetic test trades per seed")
    parser.add_argument("--optimum-trades", type=int, default=50_000,
                        help="synthetic: fresh trades the optimum's Kelly fraction is tuned on")  # fmt: skip
    parser.add_argument("--train-steps", type=int, default=10_000, help="PPO/DQN training steps per seed")
    parser.add_argument(
        "--agents", default=",".join(FAST_SIZERS),
        help=f"comma-separated sizers from {','.join(GROWTH_SIZERS)} (kelly required; ppo,dqn are slow)",
    )  # fmt: skip
    parser.add_argument(
        "--n-boot", type=int, default=1000, help="bootstrap replicates on bars (default 1000)"
    )
    parser.add_argument("--label", default=None, help="name of this A/B (default: from the data)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--dry-run", action="store_true", help="write only under logs/research/dry_run/")
    parser.add_argument("--no-save", action="store_true", help="write nothing (no result file, no artifact)")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    settings = load_settings()
    require_research_env(
        settings, "python -m research.rl_sizer.evaluate"
    )  # refusal: one line, exit 3 (run_cli)
    cfg = config_from_args(args)
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    progress = None if args.json else (lambda m: print(f"  {m}", file=sys.stderr, flush=True))
    if args.data:
        trades, label = load_trades_for(args.data, cfg, synthetic=0, seed=0)
        result = run_trades_ab(
            trades, config=cfg, seeds=list(range(max(args.seeds, 1))) if {"ppo", "dqn"} & set(agents) else [0],
            agents=agents, train_steps=args.train_steps, n_boot=args.n_boot, label=args.label or label,
            progress=progress,
        )  # fmt: skip
        result["source"] = cfg.signal
    else:
        result = run_synthetic_ab(
            config=cfg, seeds=list(range(args.seeds)), n_train=args.train_trades, n_test=args.test_trades,
            agents=agents, train_steps=args.train_steps, optimum_trades=args.optimum_trades, progress=progress,
        )  # fmt: skip
        result["source"] = "synthetic"
        if args.label:
            result["label"] = args.label
    result["generated_at"] = utc_iso(utcnow())
    if not args.no_save:
        out = (
            ab_dir(settings, dry_run=args.dry_run)
            / f"{result['label']}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
        )
        atomic_write_text(out, jsonio.dumps(result))
        write_pilot_artifact(settings, dry_run=args.dry_run, source="research.rl_sizer.evaluate")
    print(jsonio.dumps(result) if args.json else format_growth_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="python -m research.rl_sizer.evaluate"))
