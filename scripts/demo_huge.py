"""A fill log too large for pandas: ~50M closed trades as date-partitioned Parquet, written in chunks.

``python -m scripts.demo --scale huge --data-only`` (or ``python -m scripts.demo_huge --fills N
--out PATH``) writes ``DATA_DIR/trades.parquet/date=YYYY-MM-DD/part-0.parquet``, one UTC day per
chunk: only one day's fills (~140k rows) are ever in memory. The Router Health tab reads the folder
through DuckDB (:mod:`execution.fill_store`). Use a separate ``DATA_DIR``: the other tabs read the
small demo files and are not meant for 50M rows. About 1.4 GB of disk and a minute or two on 2 cores.

Columns: what the fill-log readers aggregate (``symbol``, ``route``, ``side``, ``closed_at``,
``size_usd``, ``fees_usd``, ``pnl_usd``, ``confidence``); the per-order columns of the small demo
(ids, prices, excursions) are left out, they would double the size and no aggregate reads them.

What is in it: ``n_symbols`` symbols over the demo's three routes, each fill's return on notional
drawn as ``edge(symbol) - cost(route) + vol(symbol) * N(0, 1)`` so the per-symbol and per-route
curves differ (``bybit_legacy`` pays the most). Every day's generator is seeded with
``(seed, day)``: the same arguments give the same bytes, and days are independent.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from scripts.demo_data import EQUITY_USD, FEE_BPS, ROUTES, START, symbol_names

HUGE_FILLS = 50_000_000
HUGE_DAYS = 365
HUGE_SYMBOLS = 500


def _day_table(day: int, n: int, names: np.ndarray, edge: np.ndarray, vol: np.ndarray, seed: int) -> pa.Table:
    """The ``n`` fills closed on UTC day ``day`` (0-based from the demo start)."""
    rng = np.random.default_rng([seed, day])
    weights = np.array([r.weight for r in ROUTES])
    cost = np.array([r.slippage_bps for r in ROUTES]) * 2e-4  # two sides, in return units
    sym = rng.integers(0, len(names), n)
    route = rng.choice(len(ROUTES), n, p=weights / weights.sum())
    day_ns = START.value + day * 86_400 * 10**9
    closed = np.sort(day_ns + rng.integers(0, 86_400, n) * 10**9)
    conf = np.round(0.5 + 0.48 * rng.beta(2.0, 2.5, n), 4)
    size = np.round(EQUITY_USD * np.maximum(0.5 * (2.0 * conf - 1.0), 0.01), 2)
    fees = np.round(size * 2.0 * FEE_BPS / 1e4, 4)
    ret = edge[sym] - cost[route] + vol[sym] * rng.standard_normal(n)
    pnl = np.round(size * ret - fees, 4)
    side = rng.random(n) < 0.5
    sym_arr = pa.DictionaryArray.from_arrays(pa.array(sym.astype(np.int32)), pa.array(names))
    route_names = pa.array([r.name for r in ROUTES])
    return pa.table(
        {
            "symbol": sym_arr,
            "route": pa.DictionaryArray.from_arrays(pa.array(route.astype(np.int32)), route_names),
            "side": pa.DictionaryArray.from_arrays(
                pa.array(side.astype(np.int32)), pa.array(["SHORT", "LONG"])
            ),
            "closed_at": pa.array(closed, type=pa.timestamp("ns", tz="UTC")),
            "size_usd": size,
            "fees_usd": fees,
            "pnl_usd": pnl,
            "confidence": conf,
        }
    )


def write_huge_fills(
    out: Path,
    *,
    n_fills: int = HUGE_FILLS,
    n_days: int = HUGE_DAYS,
    n_symbols: int = HUGE_SYMBOLS,
    seed: int = 7,
    progress: bool | None = None,
) -> dict[str, int]:
    """Write ``n_fills`` fills over ``n_days`` days as ``out/date=YYYY-MM-DD/part-0.parquet``.

    Written into ``out.tmp`` first and swapped in at the end (a reader never sees half a log; a
    previous file or folder at ``out`` is replaced). ``progress``: a bar on stderr; ``None`` shows
    it only when stderr is a terminal.

    Returns ``{"fills", "days", "bytes"}``.
    """
    if n_fills < n_days or n_days < 1 or n_symbols < 1:
        raise ValueError(
            f"write_huge_fills needs n_fills >= n_days >= 1 and n_symbols >= 1. "
            f"Got n_fills={n_fills}, n_days={n_days}, n_symbols={n_symbols} instead."
        )
    rng = np.random.default_rng(seed)
    names = np.array(symbol_names(n_symbols), dtype=object)
    vol = rng.uniform(0.004, 0.02, n_symbols)
    edge = rng.normal(0.0005, 0.001, n_symbols)
    per_day = np.full(n_days, n_fills // n_days)
    per_day[: n_fills % n_days] += 1
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    show = sys.stderr.isatty() if progress is None else progress
    written = 0
    with tqdm(
        total=int(n_fills), unit="fill", unit_scale=True, desc="fills", disable=not show, file=sys.stderr
    ) as bar:
        for day in range(n_days):
            table = _day_table(day, int(per_day[day]), names, edge, vol, seed)
            folder = tmp / f"date={(START + pd.Timedelta(days=day)).strftime('%Y-%m-%d')}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, folder / "part-0.parquet", compression="zstd", row_group_size=1 << 20)
            written += table.num_rows
            bar.update(table.num_rows)
    size = sum(p.stat().st_size for p in tmp.rglob("*.parquet"))
    if out.is_dir():
        shutil.rmtree(out)
    elif out.exists():
        out.unlink()
    tmp.replace(out)
    return {"fills": written, "days": n_days, "bytes": size}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.demo_huge", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder to write (replaced)")
    p.add_argument("--fills", type=int, default=HUGE_FILLS)
    p.add_argument("--days", type=int, default=HUGE_DAYS)
    p.add_argument("--symbols", type=int, default=HUGE_SYMBOLS)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    info = write_huge_fills(
        args.out, n_fills=args.fills, n_days=args.days, n_symbols=args.symbols, seed=args.seed,
        progress=False if args.quiet else None,
    )  # fmt: skip
    print(
        f"huge demo: {info['fills']:,} fills over {info['days']} days, {info['bytes'] / 2**30:.2f} GiB "
        f"-> {args.out} in {time.perf_counter() - t0:.1f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
