"""``python -m scripts.demo``: generate demo data (or simulate trades over real bars) and run every step.

Examples
--------
``python -m scripts.demo`` (8 symbols, 3 routes, 90 days of 1h bars, all pipeline steps);
``python -m scripts.demo --bars data/sample/binance_usdm/*1h*.csv`` (real BTC/ETH bars);
``python -m scripts.demo --scale large --data-only`` (about 1,000,000 trades over 500 symbols).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from infra.cli import run_cli
from infra.contracts.ops_artifacts import DemoDataData, DemoWindow
from infra.loaders import load_bars_many
from infra.safety import require_research_env
from infra.settings import load_settings
from infra.store import open_store
from scripts.demo_data import DemoConfig, DemoData, generate
from scripts.pipeline import STEPS, DemoContext, StepResult, run_steps


def write_demo_data(data: DemoData, data_dir: Path) -> dict[str, Path]:
    """Write the frames as Parquet (deterministic bytes for a given seed)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in ("bars", "signals", "orders", "trades"):
        frame: pd.DataFrame = getattr(data, name)
        path = data_dir / f"{name}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        frame.to_parquet(tmp, index=False, compression="zstd")
        tmp.replace(path)
        paths[name] = path
    return paths


# The real-bars demo's walk-forward: about 14 days of 1h bars before the first model (fewer leave the
# model under its 200 training + 50 calibration rows), a refit every 4 days
# (the sample has 30 days; the library default of 15 days + weekly refits scored fewer bars).
WF_MIN_TRAIN_BARS = 330
WF_RETRAIN_BARS = 96


def reference_model_signals(bars: pd.DataFrame) -> pd.DataFrame:
    """Out-of-sample ``P(up)`` of the reference model for every bar (walk-forward, no look-ahead).

    The real-bars demo trades on these instead of the simulated signal, which knows the outcome.
    """
    from ml.signal_model import single_threaded, walk_forward_predict  # scikit-learn: only with --bars

    with single_threaded():
        return walk_forward_predict(
            bars, min_train_bars=WF_MIN_TRAIN_BARS, retrain_every_bars=WF_RETRAIN_BARS
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scripts.demo", description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=7, help="random seed (same seed, same bytes)")
    p.add_argument(
        "--scale", choices=["default", "large", "huge"], default="default",
        help="huge: ~50M fills as date-partitioned Parquet only (scripts.demo_huge), implies --data-only",
    )  # fmt: skip
    p.add_argument(
        "--bars", nargs="+", metavar="PATH", help="real bar files (CSV/Parquet) instead of synthetic bars"
    )
    p.add_argument("--data-only", action="store_true", help="write the data, run no pipeline step")
    p.add_argument("--only", help="comma-separated pipeline steps to run: " + ",".join(n for n, _ in STEPS))
    p.add_argument(
        "--quiet", action="store_true", help="no progress bar (there is none unless stderr is a terminal)"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    # Check first (issue 22 item 11): the demo overwrites data, artifacts and checkpoints under
    # LOGS_DIR, so in ENV=prod it refuses before it touches anything (one line, exit 3).
    require_research_env(settings, "python -m scripts.demo")
    if args.scale == "huge":  # trades only, written day by day (never all in memory)
        from scripts.demo_huge import main as huge

        return huge(["--out", str(settings.data_dir / "trades.parquet"), "--seed", str(args.seed)]
                    + (["--quiet"] if args.quiet else []))  # fmt: skip
    store = open_store(settings)
    only = [s.strip() for s in args.only.split(",")] if args.only else None
    if only:
        unknown = sorted(set(only) - {n for n, _ in STEPS})
        if unknown:
            print(f"--only: unknown step(s) {unknown}; known: {[n for n, _ in STEPS]}", file=sys.stderr)
            return 2
    steps_to_run = [] if args.data_only else [n for n, _ in STEPS if only is None or n in only]
    # A bar only on a terminal: in a cron log or a pipe it would be hundreds of redraw fragments.
    bar = tqdm(
        total=2 + len(steps_to_run), desc="demo", unit="step",
        disable=args.quiet or not sys.stderr.isatty(), file=sys.stderr,
    )  # fmt: skip
    t0 = time.perf_counter()
    cfg = DemoConfig.for_scale(args.scale, args.seed)
    if args.bars:  # real files are short: trade more often so every part has enough trades
        cfg = dataclasses.replace(cfg, hold_bars=(1, 6), gap_bars=(0, 3))
    bar.set_postfix_str("generating data")
    try:
        real = load_bars_many(args.bars) if args.bars else None
    except ValueError as exc:  # DataValidationError names the file, row, field and value
        bar.close()
        print(f"demo: cannot use --bars: {exc}", file=sys.stderr)
        return 2
    model_signals = reference_model_signals(real) if real is not None else None
    data = generate(cfg, bars=real, model_signals=model_signals)
    bar.update(1)
    bar.set_postfix_str("writing data")
    paths = write_demo_data(data, settings.data_dir)
    summary = DemoDataData(
        seed=args.seed,
        scale=args.scale,
        bars_source="real:" + ",".join(args.bars) if args.bars else "synthetic",
        signal_source=(
            "the reference model's walk-forward signals (ml.signal_model, refitted every "
            f"{WF_RETRAIN_BARS} bars after {WF_MIN_TRAIN_BARS})"
            if args.bars
            else "a simulated signal whose hit rate equals its confidence by construction"
        ),
        symbols=sorted(map(str, data.trades["symbol"].unique())),
        routes=sorted(map(str, data.trades["route"].unique())),
        n_bars=len(data.bars),
        n_trades=len(data.trades),
        n_orders=len(data.orders),
        change_ts=pd.Timestamp(data.change_ts).to_pydatetime(),
        window=DemoWindow(
            start=pd.Timestamp(data.bars["ts"].min()).to_pydatetime(),
            end=pd.Timestamp(data.bars["ts"].max()).to_pydatetime(),
        ),
        files={k: str(v) for k, v in paths.items()},
    )
    store.write("demo_data", summary, source="scripts.demo")
    bar.update(1)
    ctx = DemoContext(
        settings=settings,
        store=store,
        data_dir=settings.data_dir,
        seed=args.seed,
        scale=args.scale,
        real_bars=bool(args.bars),
    )
    results = []

    def step_done(_result: StepResult) -> None:
        bar.update(1)  # one tick per finished step (the bar used to sit at 2/10 until the end)

    if steps_to_run:
        results = run_steps(ctx, only=steps_to_run, on_step=bar.set_postfix_str, on_done=step_done)
    bar.close()
    print(
        f"demo data: {summary.n_trades:,} trades, {len(summary.symbols)} symbols, "
        f"{len(summary.routes)} routes, {summary.n_bars:,} bars -> {settings.data_dir}"
    )
    for r in results:
        print(f"  {r.status:>7}  {r.name:<14} {r.seconds:6.1f}s  {r.message}")
    print(f"done in {time.perf_counter() - t0:.1f}s; artifacts in {settings.cache_dir}")
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="python -m scripts.demo"))
