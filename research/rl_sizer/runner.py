"""The RL pilot runner: train a sizer in cycles, evaluate one episode per cycle, log everything.

``python -m research.rl_sizer.runner --episodes N [--dry-run] [--agent ppo|dqn|kelly|table]
[--data PATH] [--signal model|momentum] [--seed S] [--train-steps K]``

With ``--data``, trades come from the walk-forward reference model (``--signal model``, the
default) or the plain momentum signal (``--signal momentum``); see
:mod:`research.rl_sizer.signals`.

Each episode is one cycle: train ``K`` more steps on the training period (PPO/DQN; the table is
refitted, Kelly needs nothing), then run one deterministic evaluation episode -- the whole
held-out period of ``--data`` (the later ``1 - train_frac`` of its trades), or a fresh synthetic
episode of ``episode_length`` trades (seed ``S + episode``) without ``--data``. Every episode is
appended as a JSON line to ``<research_dir>/rl_runs/<run_id>/episodes.jsonl`` (reward, sharpe,
log_growth, max_drawdown, mean_multiplier, seed, data window, ...), the sizer is checkpointed to
``<run_id>/checkpoint/`` and the ``rl_pilot`` artifact is rebuilt at the end.

``--episodes 1`` resumes the latest run of the same agent and data from its checkpoint (its
episode counter and training steps continue), so ``crontab`` can run one cycle per hour::

    0 * * * * cd /path/to/repo && ENV=research .venv/bin/python -m research.rl_sizer.runner --episodes 1 --agent ppo

It refuses to run unless ``ENV`` is ``dev`` or ``research``. ``--dry-run`` is the cron check that
the loop works without touching live trading: it logs its episodes under
``<research_dir>/rl_runs/<run_id>/`` with ``"dry_run": true`` (the RL Pilot tab shows them, marked),
resumes only dry runs (never a live run's checkpoint), and writes its ``rl_pilot`` artifact under
``<research_dir>/dry_run/cache/``: nothing outside ``logs/research/`` changes (see
:mod:`research.rl_sizer.pilot_artifact`)::

    0 * * * * cd /path/to/repo && ENV=research .venv/bin/python -m research.rl_sizer.runner --episodes 1 --dry-run
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from infra import jsonio
from infra.artifacts import ArtifactStore, atomic_write_text
from infra.cli import run_cli
from infra.loaders import load_bars
from infra.safety import require_research_env
from infra.settings import Settings, load_settings
from infra.timeutil import utc_iso, utcnow
from infra.validate import check_choice, check_int
from research.rl_sizer.agents import AGENTS, SB3Sizer, Sizer, load_sizer, make_sizer
from research.rl_sizer.config import PilotConfig, add_config_arguments, config_from_args
from research.rl_sizer.env import SizingEnv
from research.rl_sizer.pilot_artifact import read_jsonl, runs_dir, write_pilot_artifact
from research.rl_sizer.rollout import run_episode
from research.rl_sizer.signals import TradeSet, trades_for

PROGRAM = "research.rl_sizer.runner"
DEMO_PPO_STEPS = 512
"""PPO steps per cycle in the demo: enough to exercise the pipeline, far too few to learn."""
DEFAULT_TRAIN_STEPS = {"ppo": 2048, "dqn": 2048, "kelly": 0, "table": 0}


@dataclass(frozen=True)
class RunSummary:
    """What a runner invocation did."""

    run_id: str
    run_dir: Path
    episodes: list[dict[str, Any]]
    artifact: Path
    resumed: bool


def _envs(
    bars: pd.DataFrame | None, config: PilotConfig, trades: TradeSet | None = None
) -> tuple[SizingEnv, SizingEnv, dict[str, Any] | None]:
    """Training env, evaluation env and the evaluation reset options.

    ``trades`` (already computed from ``bars`` with ``config``) saves recomputing the signal.
    """
    if trades is None:
        if bars is None:
            return SizingEnv(config=config), SizingEnv(config=config, terminate_on_drawdown=False), None
        trades = trades_for(bars, config)
    train, test = trades.split(config.train_frac)
    return (
        SizingEnv(trades=train, config=config),
        SizingEnv(trades=test, config=config, terminate_on_drawdown=False),
        {"length": None},
    )


def _run_signal(info: dict[str, Any]) -> str:
    """The bar signal of a logged run (runs from before the option existed used momentum)."""
    return str((info.get("config") or {}).get("signal", "momentum"))


def _latest_run(root: Path, agent: str, data: str, signal: str, *, dry_run: bool = False) -> Path | None:
    """The run to resume: same agent, data, signal and mode (a dry run never resumes a live run)."""
    if not root.is_dir():
        return None
    candidates = []
    for d in root.iterdir():
        meta = d / "run.json"
        if meta.exists() and (d / "checkpoint" / "sizer.json").exists():
            info = jsonio.loads(meta.read_text(encoding="utf-8"))
            same_signal = data == "synthetic" or _run_signal(info) == signal
            same_mode = bool(info.get("dry_run", False)) == dry_run
            if info.get("agent") == agent and info.get("data") == data and same_signal and same_mode:
                candidates.append(d)
    return max(
        candidates,
        key=lambda d: (d / "episodes.jsonl").stat().st_mtime if (d / "episodes.jsonl").exists() else 0.0,
        default=None,
    )


def _append_line(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(jsonio.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def run_pilot(
    settings: Settings,
    *,
    agent: str = "ppo",
    episodes: int = 1,
    train_steps: int | None = None,
    seed: int = 0,
    bars: pd.DataFrame | None = None,
    data_label: str = "synthetic",
    dry_run: bool = False,
    config: PilotConfig | None = None,
    resume: bool | None = None,
    store: ArtifactStore | None = None,
    progress: bool = True,
    trades: TradeSet | None = None,
) -> RunSummary:
    """Run ``episodes`` train-and-evaluate cycles (module docstring) and rebuild the artifact.

    ``resume`` defaults to ``episodes == 1`` and continues only a run with the same agent, data
    and ``config.signal``. ``store`` overrides where the artifact goes (the demo passes its own);
    ``trades`` passes trades already computed from ``bars`` with ``config``.
    """
    require_research_env(settings, PROGRAM)
    check_choice(agent, param="agent", func="run_pilot", choices=AGENTS)
    check_int(episodes, param="episodes", func="run_pilot", minimum=1)
    cfg = config or PilotConfig()
    steps = (
        DEFAULT_TRAIN_STEPS[agent]
        if train_steps is None
        else check_int(train_steps, param="train_steps", func="run_pilot", minimum=0)
    )
    root = runs_dir(settings, dry_run=dry_run)
    resume = episodes == 1 if resume is None else resume
    previous = _latest_run(root, agent, data_label, cfg.signal, dry_run=dry_run) if resume else None
    sizer: Sizer
    if previous is not None:
        run_dir = previous
        sizer = load_sizer(run_dir / "checkpoint")
        info = jsonio.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        cfg = sizer.config.replace(signal=_run_signal(info))  # runs from before --signal: momentum
        done = len(read_jsonl(run_dir / "episodes.jsonl"))
        seed = int(info.get("seed", seed))
        trades = None if cfg != config else trades
    else:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        run_dir = root / f"{stamp}-{agent}-s{seed}{'-dry' if dry_run else ''}"
        run_dir.mkdir(parents=True, exist_ok=True)
        sizer = make_sizer(agent, cfg, seed=seed)
        done = 0
        meta = {"agent": agent, "seed": seed, "data": data_label, "dry_run": dry_run,
                "created_at": utc_iso(utcnow()), "config": cfg.__dict__}  # fmt: skip
        atomic_write_text(run_dir / "run.json", jsonio.dumps(meta))
    env_train, env_eval, eval_opts = _envs(bars, cfg, trades)  # a resumed run keeps its checkpoint's config
    log_path = run_dir / "episodes.jsonl"
    records: list[dict[str, Any]] = []
    from tqdm import tqdm

    bar = tqdm(  # only on a terminal: a cron log gets the one summary line, not bar redraws
        range(episodes), desc=f"rl_pilot {agent}", unit="episode",
        disable=not progress or not sys.stderr.isatty(), file=sys.stderr,
    )  # fmt: skip
    for k in bar:
        ep = done + k
        sizer.learn(env_train, steps)
        result = run_episode(env_eval, sizer, seed=seed + ep, options=eval_opts)
        summ = result.summary
        record = {
            "episode": ep, "run_id": run_dir.name, "agent": agent, "seed": seed + ep,
            "train_steps_total": sizer.num_timesteps if isinstance(sizer, SB3Sizer) else 0,
            **summ, "terminated": result.terminated, "data": data_label, "window": result.window,
            "ts": utc_iso(utcnow()), "dry_run": dry_run,
        }  # fmt: skip
        _append_line(log_path, record)
        sizer.save(run_dir / "checkpoint")
        records.append(record)
        bar.set_postfix(sharpe=f"{summ['sharpe']:.2f}", logG=f"{summ['log_growth']:.3f}")
    artifact = write_pilot_artifact(settings, dry_run=dry_run, source=PROGRAM, store=store)
    return RunSummary(run_dir.name, run_dir, records, artifact, previous is not None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {PROGRAM}", description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, required=True, help="train-and-evaluate cycles to run")
    parser.add_argument(
        "--dry-run", action="store_true",
        help="log episodes flagged dry_run under <research_dir>/rl_runs/; touch nothing outside <research_dir>",
    )  # fmt: skip
    parser.add_argument("--agent", choices=AGENTS, default="ppo", help="sizer (default ppo)")
    parser.add_argument("--data", default=None, help="bar file (CSV/Parquet); default: synthetic trades")
    parser.add_argument("--seed", type=int, default=0, help="seed of a new run (default 0)")
    parser.add_argument("--train-steps", type=int, default=None,
                        help="training steps per episode (default 2048 for ppo/dqn, 0 for kelly/table)")  # fmt: skip
    parser.add_argument("--new", action="store_true", help="start a new run even with --episodes 1")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    settings = load_settings()
    require_research_env(settings, PROGRAM)  # refusal: one line, exit 3 (run_cli)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1. Got {args.episodes} instead.")
    bars = load_bars(args.data) if args.data else None
    summary = run_pilot(
        settings, agent=args.agent, episodes=args.episodes, train_steps=args.train_steps, seed=args.seed,
        bars=bars, data_label=str(args.data) if args.data else "synthetic", dry_run=args.dry_run,
        config=config_from_args(args), resume=False if args.new else None,
    )  # fmt: skip
    last = summary.episodes[-1]
    print(
        f"run {summary.run_id} ({'resumed' if summary.resumed else 'new'}): {len(summary.episodes)} episode(s) "
        f"logged to {summary.run_dir / 'episodes.jsonl'}; last: sharpe {last['sharpe']:.2f}, "
        f"log-growth {last['log_growth']:.3f}, max drawdown {last['max_drawdown']:.3f}, "
        f"mean multiplier {last['mean_multiplier']:.2f}; artifact {summary.artifact}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="python -m research.rl_sizer.runner"))
