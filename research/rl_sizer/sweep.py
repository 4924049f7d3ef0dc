"""The sizer A/B as a grid of independent cells, run as Ray tasks (or serially with ``--serial``).

Why this file is long: the cells, the serial and Ray runners, the outputs and the Tune search are
one command sharing the cell's result schema; the sizers it runs are registered in
:mod:`research.rl_sizer.sweep_sizers`.

``python -m research.rl_sizer.sweep [--datasets synthetic:4000 ...] [--seeds 20] [--sizers kelly,table,ppo]
[--grid table_prior_strength=5,20] [--train-steps 20000] [--serial] [--cpus N] [--search --samples 20]``

A **cell** is one (data set, seed, sizer, hyperparameters) combination: :func:`run_cell` builds the
trade list, splits it by time (``train_frac``), trains the sizer on the training period, trades the
held-out period once with the drawdown stop off and returns a flat metrics dict (Sharpe, log
growth, max drawdown, mean multiplier) and the per-trade returns. Cells share nothing, so they run
anywhere: in this process (``--serial``), on a local Ray (default: ``ray.init`` with this machine's
cores, on the loopback interface, no dashboard), or on a cluster (``RAY_ADDRESS``). Every cell is
seeded, so the three give identical numbers for the same seeds (``tests/test_sweep.py``).

Outputs (``--no-save`` skips them): ``research_dir/rl_sweep/<label>-<stamp>.parquet`` (one row per
cell) and, per (data set, hyperparameter set), an A/B result in the shape of
``research.rl_sizer.evaluate.run_ab`` under ``rl_ab/`` with the ``rl_pilot`` artifact rebuilt,
so the RL Pilot tab shows the sweep like any A/B.

Sizers come from the registry of :mod:`research.rl_sizer.sweep_sizers`: each entry says how to build
the sizer (default :func:`research.rl_sizer.agents.make_sizer`), whether it trains, and its search
space for ``--search`` (Ray Tune with Optuna's TPE sampler, maximising held-out log growth; the
best configuration is then re-scored on fresh data seeds the search never saw, the honest number).

Ray is imported only inside the functions that need it, never at module import.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infra.safety import require_research_env
from infra.settings import PROJECT_ROOT, load_settings
from infra.timeutil import utc_iso, utcnow
from research.rl_sizer.agents import Sizer
from research.rl_sizer.config import PilotConfig
from research.rl_sizer.env import SizingEnv
from research.rl_sizer.rollout import run_episode
from research.rl_sizer.signals import TradeSet, synthetic_trades
from research.rl_sizer.sweep_sizers import SIZERS, FixedSizer, extra_param_names

METRICS = ("sharpe", "log_growth", "max_drawdown", "mean_multiplier")


# --------------------------------------------------------------------------- cells
@dataclass(frozen=True)
class Cell:
    """One point of the grid."""

    dataset: str
    """``synthetic:N`` or ``synthetic:N:DATA_SEED`` (N synthetic trades), or a bar file path."""
    seed: int
    sizer: str
    params: tuple[tuple[str, Any], ...] = ()
    """PilotConfig overrides, sorted by name (hashable)."""
    train_steps: int = 20_000

    @property
    def params_label(self) -> str:
        return json.dumps(dict(self.params), sort_keys=True)


def parse_dataset(spec: str) -> tuple[str, int, int]:
    """``synthetic:N[:DATA_SEED]`` -> ``("synthetic", N, DATA_SEED)``; a path -> ``(path, 0, 0)``.

    >>> parse_dataset("synthetic:4000"), parse_dataset("synthetic:500:3")
    (('synthetic', 4000, 0), ('synthetic', 500, 3))
    """
    if spec.startswith("synthetic"):
        parts = spec.split(":")
        try:
            n = int(parts[1]) if len(parts) > 1 else 8000
            data_seed = int(parts[2]) if len(parts) > 2 else 0
        except ValueError:
            n = data_seed = -1
        if len(parts) > 3 or n < 20 or data_seed < 0:
            raise ValueError(
                f"A data set must be 'synthetic:N[:DATA_SEED]' with N >= 20, or a bar file. Got {spec!r} instead."
            )
        return "synthetic", n, data_seed
    if not Path(spec).is_file():
        raise ValueError(
            f"The data set {spec!r} is neither 'synthetic:N[:DATA_SEED]' nor an existing bar file."
        )
    return spec, 0, 0


@functools.lru_cache(maxsize=8)
def _trades(dataset: str, signal_key: tuple[tuple[str, Any], ...]) -> TradeSet:
    """The trade list of ``dataset`` (cached per process: every cell of a data set reuses it)."""
    kind, n, data_seed = parse_dataset(dataset)
    if kind == "synthetic":
        return synthetic_trades(n, rng=np.random.default_rng(data_seed))
    from infra.loaders import load_bars
    from research.rl_sizer.signals import trades_for

    return trades_for(load_bars(dataset), PilotConfig(**dict(signal_key)))


_SIGNAL_FIELDS = (
    "signal", "barrier_k", "horizon_bars", "momentum_bars", "z_threshold", "min_gap_bars", "model_min_confidence",
    "model_horizon", "model_min_train_bars", "model_retrain_bars",
)  # fmt: skip


def run_cell(cell: Cell, base: PilotConfig | None = None) -> dict[str, Any]:
    """Train and evaluate one cell; a flat, JSON-able metrics dict plus ``returns`` (test period).

    Deterministic for a given cell: the trade list from the data seed, the sizer and its training
    from ``cell.seed`` (PyTorch on one CPU thread, ``PilotConfig.torch_threads``).
    """
    spec = SIZERS.get(cell.sizer)
    if spec is None:
        raise ValueError(f"Unknown sizer {cell.sizer!r}; registered: {sorted(SIZERS)}.")
    fields = {f.name for f in dataclasses.fields(PilotConfig)}
    cfg = (base or PilotConfig()).replace(**{k: v for k, v in cell.params if k in fields})
    extra = {k: v for k, v in cell.params if k not in fields}
    trades = _trades(cell.dataset, tuple((f, getattr(cfg, f)) for f in _SIGNAL_FIELDS))
    train, test = trades.split(cfg.train_frac)
    if len(train) < 10 or len(test) < 10:
        raise ValueError(
            f"Data set {cell.dataset!r} gives {len(train)} training and {len(test)} test trades; need >= 10 each."
        )
    t0 = time.perf_counter()
    sizer: Sizer
    if spec.multipliers is not None:
        sizer = FixedSizer(spec.multipliers(cfg, extra, train, test))
    else:
        sizer = spec.build(cfg, int(cell.seed))
        sizer.learn(SizingEnv(trades=train, config=cfg), int(cell.train_steps) if spec.trains else 0)
    result = run_episode(
        SizingEnv(trades=test, config=cfg, terminate_on_drawdown=False), sizer, seed=int(cell.seed),
        options={"length": None},
    )  # fmt: skip
    summary = result.summary
    return {
        "dataset": cell.dataset,
        "seed": int(cell.seed),
        "sizer": cell.sizer,
        "params": cell.params_label,
        "train_steps": int(cell.train_steps) if spec.trains else 0,
        **{m: float(summary[m]) for m in METRICS},
        "trades": int(summary["trades"]),
        "periods_per_year": float(test.periods_per_year),
        "seconds": time.perf_counter() - t0,
        "returns": [float(x) for x in result.returns],
        "train_window": train.window(),
        "test_window": test.window(),
    }


def make_grid(
    datasets: Sequence[str],
    seeds: Sequence[int],
    sizers: Sequence[str],
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    train_steps: int = 20_000,
) -> list[Cell]:
    """Every (data set, hyperparameter set, sizer, seed). Untrained sizers run one seed only.

    ``grid``: ``{PilotConfig field or a registered sizer's extra parameter: values}``; the
    cartesian product is applied to every sizer (a sizer ignores the extras of others).
    """
    unknown = [s for s in sizers if s not in SIZERS]
    if unknown:
        raise ValueError(f"Unknown sizer(s) {unknown}; registered: {sorted(SIZERS)}.")
    fields = {f.name for f in dataclasses.fields(PilotConfig)}
    bad = [k for k in (grid or {}) if k not in fields and k not in extra_param_names()]
    if bad:
        raise ValueError(
            f"Grid key(s) {bad} are not PilotConfig fields or sizer parameters; valid: {sorted(fields | extra_param_names())}."
        )
    names = sorted(grid or {})
    combos = [tuple(zip(names, values)) for values in itertools.product(*((grid or {})[n] for n in names))]
    PilotConfig().replace(**{k: v for combo in combos[:1] for k, v in combo if k in fields})  # validate early
    cells = []
    for dataset in datasets:
        parse_dataset(dataset)
        for params in combos:
            for sizer in sizers:
                for seed in seeds if SIZERS[sizer].trains else list(seeds)[:1]:
                    cells.append(Cell(dataset, int(seed), sizer, params, int(train_steps)))
    return cells


# --------------------------------------------------------------------------- runners
def _bar(total: int, show: bool | None) -> Any:
    from tqdm import tqdm

    visible = sys.stderr.isatty() if show is None else show
    return tqdm(total=total, unit="cell", desc="sweep", disable=not visible, file=sys.stderr)


def run_serial(cells: Sequence[Cell], *, progress: bool | None = None) -> list[dict[str, Any]]:
    """Every cell in this process, in order."""
    out = []
    with _bar(len(cells), progress) as bar:
        for cell in cells:
            out.append(run_cell(cell))
            bar.update(1)
    return out


def init_ray(*, cpus: int | None = None, address: str | None = None) -> None:
    """Connect to ``address`` (a cluster) or start a local Ray: ``cpus`` cores, loopback only, no dashboard."""
    import ray

    if ray.is_initialized():
        return
    common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address:
        excludes = ["logs/", ".venv/", ".git/", "data/", "*.parquet"]
        ray.init(
            address=address, runtime_env={"working_dir": str(PROJECT_ROOT), "excludes": excludes}, **common
        )
        return
    # Local workers inherit this environment (no runtime-env agent work): make the repo importable.
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(PROJECT_ROOT) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *paths])
    ray.init(
        num_cpus=cpus or len(os.sched_getaffinity(0)),
        _node_ip_address="127.0.0.1",
        object_store_memory=128 * 2**20,
        **common,
    )


def run_ray(cells: Sequence[Cell], *, progress: bool | None = None) -> list[dict[str, Any]]:
    """Every cell as a Ray task (1 CPU each); results in cell order. Needs :func:`init_ray` first."""
    import ray

    task = ray.remote(num_cpus=1, max_retries=1)(run_cell)
    refs = [task.remote(c) for c in cells]
    index = {ref: i for i, ref in enumerate(refs)}
    out: list[dict[str, Any] | None] = [None] * len(refs)
    pending = list(refs)
    with _bar(len(refs), progress) as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                out[index[ref]] = ray.get(ref)
                bar.update(1)
    return [r for r in out if r is not None]


# --------------------------------------------------------------------------- outputs
def results_frame(results: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per cell (without the return series and windows)."""
    rows = [
        {k: v for k, v in r.items() if k not in ("returns", "train_window", "test_window")} for r in results
    ]
    return pd.DataFrame(rows)


def ab_results(
    results: Sequence[Mapping[str, Any]], *, label: str, n_boot: int = 1000
) -> list[dict[str, Any]]:
    """Per (data set, hyperparameter set): an A/B result shaped like ``evaluate.run_ab`` (vs Kelly)."""
    from research.rl_sizer.evaluate import paired_difference, verdict

    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in results:
        groups.setdefault((str(r["dataset"]), str(r["params"])), []).append(r)
    out = []
    for (dataset, params), rs in groups.items():
        by_sizer: dict[str, list[Mapping[str, Any]]] = {}
        for r in rs:
            by_sizer.setdefault(str(r["sizer"]), []).append(r)
        if "kelly" not in by_sizer:
            continue
        seeds = sorted({int(r["seed"]) for r in rs})
        ppy = float(rs[0]["periods_per_year"])
        base = np.asarray(by_sizer["kelly"][0]["returns"], dtype=float)
        rng = np.random.default_rng(12345)
        rows = []
        for name, runs in by_sizer.items():
            row: dict[str, Any] = {"sizer": name, "seeds": len(runs)}
            for key in ("sharpe", "log_growth", "max_drawdown", "mean_multiplier"):
                vals = np.array([float(r[key]) for r in runs])
                row[key] = float(np.mean(vals))
                row[f"{key}_sd"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
            if name != "kelly":
                a = np.stack([np.asarray(r["returns"], dtype=float) for r in runs])
                for metric in ("sharpe", "log_growth", "max_drawdown"):
                    d, lo, hi = paired_difference(
                        a, base, metric=metric, periods_per_year=ppy, n_boot=n_boot, rng=rng
                    )
                    row[f"d_{metric}"], row[f"d_{metric}_ci"] = d, [lo, hi]
            rows.append(row)
        suffix = "" if params == "{}" else "-" + "-".join(f"{k}{v}" for k, v in json.loads(params).items())
        out.append({
            "label": f"{label}-{Path(dataset).name.replace(':', '')}{suffix}",
            "generated_at": utc_iso(utcnow()),
            "train": rs[0]["train_window"], "test": rs[0]["test_window"],
            "seeds": seeds, "train_steps": max(int(r["train_steps"]) for r in rs), "n_boot": int(n_boot),
            "periods_per_year": ppy, "rows": rows, "verdict": verdict(rows), "source": "sweep",
            "seconds": round(sum(float(r["seconds"]) for r in rs), 1), "config": {**PilotConfig().__dict__, **json.loads(params)},
        })  # fmt: skip
    return out


def save(
    results: Sequence[Mapping[str, Any]], *, label: str, dry_run: bool = False, n_boot: int = 1000
) -> Path:
    """Write the Parquet of cells, the A/B files and the ``rl_pilot`` artifact; returns the Parquet path."""
    from infra import jsonio
    from infra.artifacts import atomic_write_text
    from research.rl_sizer.pilot_artifact import ab_dir, pilot_root, write_pilot_artifact

    settings = load_settings()
    stamp = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    out = pilot_root(settings, dry_run=dry_run) / "rl_sweep" / f"{label}-{stamp}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    results_frame(results).to_parquet(out, index=False)
    for ab in ab_results(results, label=label, n_boot=n_boot):
        atomic_write_text(ab_dir(settings, dry_run=dry_run) / f"{ab['label']}-{stamp}.json", jsonio.dumps(ab))
    write_pilot_artifact(settings, dry_run=dry_run, source="research.rl_sizer.sweep")
    return out


# --------------------------------------------------------------------------- search (Ray Tune + Optuna)
def search(
    sizer: str,
    datasets: Sequence[str],
    seeds: Sequence[int],
    *,
    samples: int,
    train_steps: int,
    storage: Path,
) -> dict[str, Any]:
    """Tune ``sizer``'s search space with Optuna (TPE) under Ray Tune; score = mean held-out log growth.

    The best configuration is re-scored on the same data sets with fresh data seeds (+1000), which
    the search never saw: ``best_score`` is in-sample for the search, ``confirm_score`` is not.
    """
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    spec = SIZERS[sizer]
    if not spec.search_space:
        raise ValueError(f"Sizer {sizer!r} has no search space to tune.")
    space: dict[str, Any] = {}
    for name, (kind, lo, hi) in spec.search_space.items():
        space[name] = (
            tune.loguniform(lo, hi) if kind == "log" else tune.randint(int(lo), int(hi) + 1) if kind == "int"
            else tune.uniform(lo, hi)
        )  # fmt: skip

    def score(params: Mapping[str, Any], sets: Sequence[str]) -> float:
        cells = make_grid(sets, seeds, [sizer], {k: [v] for k, v in params.items()}, train_steps=train_steps)
        return float(np.mean([run_cell(c)["log_growth"] for c in cells]))

    def trainable(config: dict[str, Any]) -> dict[str, float]:
        return {"log_growth": score(config, datasets)}

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space=space,
        tune_config=tune.TuneConfig(
            search_alg=OptunaSearch(metric="log_growth", mode="max", seed=0),
            metric="log_growth", mode="max", num_samples=int(samples),
        ),
        run_config=tune.RunConfig(storage_path=str(storage.resolve()), name=f"sweep-{sizer}", verbose=0),
    )  # fmt: skip
    best = tuner.fit().get_best_result()
    found = best.config or {}
    params = {k: (int(v) if spec.search_space[k][0] == "int" else float(v)) for k, v in found.items()}
    fresh = []
    for d in datasets:
        kind, n, data_seed = parse_dataset(d)
        fresh.append(f"synthetic:{n}:{data_seed + 1000}" if kind == "synthetic" else d)
    return {"sizer": sizer, "best_params": params, "best_score": float((best.metrics or {})["log_growth"]),
            "confirm_score": score(params, fresh), "confirm_datasets": fresh}  # fmt: skip


# --------------------------------------------------------------------------- CLI
def _parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    types = {f.name: f.type for f in dataclasses.fields(PilotConfig)}
    for item in items:
        name, _, values = item.partition("=")
        if name in extra_param_names() and values:
            grid[name] = [float(v) for v in values.split(",")]
            continue
        if name not in types or not values:
            raise ValueError(
                f"--grid takes FIELD=v1,v2 with a PilotConfig field or a sizer parameter. Got {item!r} instead."
            )
        conv: Callable[[str], Any] = (
            int if types[name] in (int, "int") else float if types[name] in (float, "float") else str
        )
        grid[name] = [conv(v) for v in values.split(",")]
    return grid


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m research.rl_sizer.sweep", description=__doc__.split("\n")[0])
    p.add_argument(
        "--datasets", nargs="+", default=["synthetic:4000"], help="synthetic:N[:DATA_SEED] or bar files"
    )
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 of the trained sizers (default 5)")
    p.add_argument("--sizers", default="kelly,table,edge,ppo", help=f"comma-separated, from {sorted(SIZERS)}")
    p.add_argument("--grid", nargs="*", default=[], metavar="FIELD=V1,V2", help="PilotConfig values to sweep")
    p.add_argument("--train-steps", type=int, default=20_000)
    p.add_argument("--serial", action="store_true", help="run in this process, without Ray")
    p.add_argument("--cpus", type=int, default=None, help="local Ray cores (default: all available)")
    p.add_argument("--label", default="sweep")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="write only under research_dir/dry_run/")
    p.add_argument("--search", action="store_true", help="Ray Tune + Optuna over each sizer's search space")
    p.add_argument("--samples", type=int, default=20, help="--search trials per sizer")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    try:
        sizers = [s.strip() for s in args.sizers.split(",") if s.strip()]
        cells = make_grid(
            args.datasets, range(args.seeds), sizers, _parse_grid(args.grid), train_steps=args.train_steps
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = load_settings()
    require_research_env(settings, "python -m research.rl_sizer.sweep")  # refusal: one line, exit 3 (run_cli)
    progress = False if args.quiet else None
    t0 = time.perf_counter()
    if args.search:
        init_ray(cpus=args.cpus, address=settings.ray_address)
        for s in sizers:
            found = search(s, args.datasets, range(args.seeds), samples=args.samples, train_steps=args.train_steps,
                           storage=settings.research_dir / "tune")  # fmt: skip
            print(json.dumps(found))
        return 0
    if args.serial:
        results = run_serial(cells, progress=progress)
    else:
        init_ray(cpus=args.cpus, address=settings.ray_address)
        results = run_ray(cells, progress=progress)
    wall = time.perf_counter() - t0
    frame = results_frame(results)
    print(frame.groupby(["dataset", "params", "sizer"])[list(METRICS)].mean().round(4).to_string())
    print(f"{len(cells)} cells in {wall:.1f}s ({'serial' if args.serial else 'ray'}); "
          f"mean cell {frame['seconds'].mean():.2f}s")  # fmt: skip
    if not args.no_save:
        print(f"results -> {save(results, label=args.label, dry_run=args.dry_run, n_boot=args.n_boot)}")
    return 0


if __name__ == "__main__":
    # Run from the importable module, not __main__: Ray pickles module functions by reference,
    # and workers can import research.rl_sizer.sweep but not this process's __main__.
    from research.rl_sizer.sweep import main as _main

    raise SystemExit(_main())
