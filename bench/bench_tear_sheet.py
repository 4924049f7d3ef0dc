"""Tear sheet benchmark (not a test): ``python -m bench.bench_tear_sheet``.

On the ``python -m scripts.demo --scale large --data-only`` book (~1,000,000 trades, 500 symbols,
4.5M bars; generated into a temp LOGS_DIR unless ``--large-data DIR`` points at its ``data``
folder) with a model registry of two promotions (so the in-sample / out-of-sample spans are
built), against the targets of issue 27:

1. The Tear Sheet tab in AppTest, in a fresh interpreter (cold caches): first render (target
   <= 3 s), a rerun of the same session (target <= 1 s), a new session once cached, and a filter
   change (rolling window: a new cache key) with its rerun. AppTest's own cost on a one-line script
   is reported too, and the app's imports are done before the timed runs (a served process has them).
2. The HTML export through the CLI (``python -m execution.tear_sheet_report``, a new process:
   imports, reading, building, writing; target < 10 s and < 15 MB), and the same steps in process.
3. Peer: quantstats' ``reports.html`` on the same daily returns and benchmark (a static-image
   report; it gets the daily series, so its time excludes everything before that), as a ratio.

The CPU is shared with other jobs on the build machine (2 cores): figures are wall-clock and
noisy; CPU seconds are printed beside them. Options: ``--large-data DIR``, ``--skip-peer``, ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"
TARGETS = {"first_s": 3.0, "rerun_s": 1.0, "export_s": 10.0, "export_mb": 15.0}
EVENTS = [
    {"action": "promote", "version": "bench-v1", "at": "2025-02-01T00:00:00Z", "note": "bench"},
    {"action": "promote", "version": "bench-v2", "at": "2025-07-01T00:00:00Z", "note": "bench"},
]


def _env(logs: Path, data: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "LOGS_DIR": str(logs),
        "DATA_DIR": str(data),
        "ENV": "dev",
        "EVENTBUS_URL": "memory://",
    }
    for var in ("CACHE_DIR", "RESEARCH_DIR", "FIRESTORE_EMULATOR_HOST", "FIRESTORE_PROJECT"):
        env.pop(var, None)
    return env


def _worker(rolling_change: bool) -> dict[str, float]:
    """Runs in a fresh interpreter (``--worker``) with LOGS_DIR/DATA_DIR set: AppTest timings as JSON."""
    sys.path.insert(0, str(ROOT))
    from streamlit.testing.v1 import AppTest

    out: dict[str, float] = {}

    def timed(name: str, func: Any) -> Any:
        t0, c0 = time.perf_counter(), time.process_time()
        result = func()
        out[name] = time.perf_counter() - t0
        out[name + "_cpu"] = time.process_time() - c0
        return result

    timed("baseline_s", AppTest.from_string("import streamlit as st\nst.write('x')", default_timeout=60).run)

    def imports() -> None:
        import dashboard.router_health
        import dashboard.tear_sheet  # noqa: F401

    timed("imports_s", imports)
    at = AppTest.from_file(str(APP), default_timeout=1800)
    at.query_params["tab"] = "Tear Sheet"
    timed("first_s", at.run)
    if at.exception:
        raise RuntimeError(f"app raised: {[e.value for e in at.exception]}")
    tab = next(t for t in at.tabs if t.label == "Tear Sheet")
    if len(tab.get("plotly_chart")) != 11 or tab.error:
        raise RuntimeError(
            f"Tear Sheet drew {len(tab.get('plotly_chart'))} figures: {[e.value for e in tab.error]}"
        )
    out["n_trades"] = float(tab.dataframe[0].value.loc["n_trades", "strategy"])
    timed("rerun_s", at.run)
    fresh = AppTest.from_file(str(APP), default_timeout=600)
    fresh.query_params["tab"] = "Tear Sheet"
    timed("new_session_s", fresh.run)
    if rolling_change:
        timed("filter_change_s", at.selectbox(key="ts_window").set_value(90).run)
        timed("filter_rerun_s", at.run)
    return out


def _row(
    label: str, value: float, cpu: float | None = None, target: float | None = None, unit: str = "s"
) -> str:
    text = f"  {label:<58} {value:8.3f} {unit}"
    text += f"  (cpu {cpu:6.3f} s)" if cpu is not None else " " * 17
    if target is not None:
        text += f"  target <= {target:g} {unit}: x{value / target:4.2f} {'ok' if value <= target else 'OVER'}"
        if cpu is not None:
            text += f", cpu x{cpu / target:4.2f}"
    return text


def _export_in_process(data: Path, models: Path, out: Path) -> dict[str, Any]:
    from execution.tear_sheet import build_tear_sheet
    from execution.tear_sheet_report import _read_bars, load_promotions, read_trades, write_report

    t: dict[str, Any] = {}
    t0 = time.perf_counter()
    trades = read_trades(str(data / "trades.parquet"))
    t["read_trades_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    bars = _read_bars([str(data / "bars.parquet")], "BTC")
    t["read_bars_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sheet = build_tear_sheet(trades, bars, promotions=load_promotions(models))
    t["build_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_report(sheet, out, out.with_suffix(".csv"))
    t["write_s"] = time.perf_counter() - t0
    t["sheet"] = sheet
    return t


def _peer_quantstats(sheet: Any, out: Path) -> float | str:
    try:
        import logging
        import warnings

        import matplotlib

        matplotlib.use("Agg")
        logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # no 'Arial not found' flood
        import quantstats as qs

        returns = sheet.returns.tz_localize(None)
        bench = sheet.benchmark.fillna(0.0).tz_localize(None) if sheet.benchmark is not None else None
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qs.reports.html(
                returns, benchmark=bench, output=str(out), periods_per_year=365, download_filename=str(out)
            )
        return time.perf_counter() - t0
    except Exception as exc:  # a peer failing is a finding, not a crash of the bench
        return f"failed: {type(exc).__name__}: {str(exc)[:120]}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_tear_sheet")
    p.add_argument("--large-data", type=Path, help="reuse the data folder of a large demo")
    p.add_argument("--skip-peer", action="store_true")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(rolling_change=True)))
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="bench_tear_sheet_"))
    try:
        logs = tmp / "logs"
        data = args.large_data
        if data is None:
            data = logs / "data"
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "scripts.demo", "--quiet", "--scale", "large", "--data-only"],
                cwd=ROOT, env=_env(logs, data), check=True, capture_output=True, text=True, timeout=1800,
            )  # fmt: skip
            print(f"large demo data generated in {time.perf_counter() - t0:.1f} s -> {data}")
        models = logs / "models" / "signal-model"
        models.mkdir(parents=True, exist_ok=True)
        pointer = {
            "model": "signal-model",
            "stack": ["bench-v1", "bench-v2"],
            "current": "bench-v2",
            "events": EVENTS,
        }
        (models / "current.json").write_text(json.dumps(pointer))
        env = _env(logs, data)

        print("\nTear Sheet tab, AppTest, fresh interpreter (~1,000,000 trades, 500 symbols, 2 promotions)")
        proc = subprocess.run(
            [sys.executable, "-m", "bench.bench_tear_sheet", "--worker"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"AppTest worker failed:\n{proc.stderr[-3000:]}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"  trades on the tab: {res['n_trades']:,.0f}")
        print(_row("AppTest's own cost (one-line script)", res["baseline_s"], res["baseline_s_cpu"]))
        print(_row("dashboard imports (once per server process)", res["imports_s"], res["imports_s_cpu"]))
        print(_row("first render (cold caches)", res["first_s"], res["first_s_cpu"], TARGETS["first_s"]))
        print(_row("rerun, same session (cached)", res["rerun_s"], res["rerun_s_cpu"], TARGETS["rerun_s"]))
        print(
            _row("new session (cached)", res["new_session_s"], res["new_session_s_cpu"], TARGETS["rerun_s"])
        )
        print(
            _row(
                "filter change: rolling window 30 -> 90 days",
                res["filter_change_s"],
                res["filter_change_s_cpu"],
            )
        )
        print(
            _row(
                "rerun after the filter change",
                res["filter_rerun_s"],
                res["filter_rerun_s_cpu"],
                TARGETS["rerun_s"],
            )
        )

        print("\nHTML export")
        out = tmp / "report.html"
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        cli = subprocess.run(
            [sys.executable, "-m", "execution.tear_sheet_report", "--trades", str(data / "trades.parquet"),
             "--bars", str(data / "bars.parquet"), "--out", str(out), "--models", str(logs / "models")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cli_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        if cli.returncode != 0:
            raise RuntimeError(f"export failed:\n{cli.stderr[-3000:]}")
        size_mb = out.stat().st_size / 1e6
        print(f"  {cli.stdout.strip()}")
        print(_row("CLI export, new process (imports included)", wall, cli_cpu, TARGETS["export_s"]))
        print(_row("HTML file size", size_mb, None, TARGETS["export_mb"], unit="MB"))
        steps = _export_in_process(data, logs / "models", tmp / "report2.html")
        for name in ("read_trades_s", "read_bars_s", "build_s", "write_s"):
            print(_row(f"  in process: {name[:-2].replace('_', ' ')}", steps[name]))
        ours = sum(steps[n] for n in ("build_s", "write_s"))
        if not args.skip_peer:
            peer = _peer_quantstats(steps["sheet"], tmp / "quantstats.html")
            if isinstance(peer, float):
                print(_row("quantstats reports.html on the same daily returns", peer))
                print(f"  ratio: quantstats {peer:.2f} s / ours (build + write from 1M trades) {ours:.2f} s "
                      f"= x{peer / ours:.1f}; quantstats file {(tmp / 'quantstats.html').stat().st_size / 1e6:.2f} MB "
                      "(static images, no interactivity)")  # fmt: skip
            else:
                print(f"  quantstats reports.html: {peer}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
