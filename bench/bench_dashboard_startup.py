"""Dashboard start-up benchmark (not a test): ``python -m bench.bench_dashboard_startup``.

Measures, against the targets of issue 4:

1. ``streamlit run dashboard/app.py --server.headless true`` until ``/_stcore/health`` answers
   (median of ``--repeats`` spawns; target < 2 s).
2. One AppTest run of the app on the demo data (target: first script run < 0.5 s), in a fresh
   interpreter so caches are cold. AppTest has a fixed cost of its own, so the same process also
   times a one-line script first; the app's own cost is the difference. Reported twice: with the
   app's imports (pandas, plotly, scipy, ...) cold, and with them already imported, as in a
   server process that has served one session.
3. The same on ``python -m scripts.demo --scale large`` data (~1,000,000 trades, 500 symbols):
   the first (cold-cache) run, a rerun of the same session and a new session once cached (target
   < 1 s), and one filter change (a new cache key: recomputes the view from the cached trades).

The CPU may be shared with other jobs (on the build machine: 2 cores, several helpers): figures
are wall-clock and noisy; run it on an idle machine for numbers you quote.

Options: ``--repeats N`` (health spawns, default 5), ``--skip-large``, ``--large-logs DIR``
(reuse an existing large demo; generated into a temp folder otherwise), ``--keep`` (keep the
temp folder).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"
TARGETS = {"health_s": 2.0, "first_run_demo_s": 0.5, "rerun_large_s": 1.0}


def _env(logs: Path) -> dict[str, str]:
    env = {**os.environ, "LOGS_DIR": str(logs), "ENV": "dev", "EVENTBUS_URL": "memory://"}
    for var in ("DATA_DIR", "CACHE_DIR", "RESEARCH_DIR", "FIRESTORE_EMULATOR_HOST", "FIRESTORE_PROJECT"):
        env.pop(var, None)
    return env


def _demo(logs: Path, *args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "scripts.demo", "--quiet", *args],
        cwd=ROOT, env=_env(logs), check=True, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    return time.perf_counter() - t0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def time_health(logs: Path, *, timeout_s: float = 60.0) -> float:
    """Seconds from spawning ``streamlit run`` until ``/_stcore/health`` answers 200."""
    port = _free_port()
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}/_stcore/health"
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(logs), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"streamlit exited with {proc.returncode}: {err[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=0.5) as resp:
                    if resp.status == 200:
                        return time.perf_counter() - t0
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.perf_counter() - t0 > timeout_s:
                raise TimeoutError(f"{url} did not answer within {timeout_s} s")
            time.sleep(0.02)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --------------------------------------------------------------------------- AppTest worker
def _worker(logs: Path, *, preimport: bool, filter_change: bool) -> dict[str, float]:
    """Runs in a fresh interpreter (``--worker``): AppTest timings, printed as JSON."""
    os.environ.update(_env(logs))
    for var in ("DATA_DIR", "CACHE_DIR", "RESEARCH_DIR"):
        os.environ.pop(var, None)
    sys.path.insert(0, str(ROOT))
    from streamlit.testing.v1 import AppTest

    out: dict[str, float] = {}
    for name in ("baseline_first_s", "baseline_s"):  # AppTest's own cost on a one-line script
        at = AppTest.from_string("import streamlit as st\nst.write('x')", default_timeout=60)
        t0 = time.perf_counter()
        at.run()
        out[name] = time.perf_counter() - t0
    if preimport:
        t0 = time.perf_counter()
        import dashboard.drift_view
        import dashboard.learning_loop
        import dashboard.ml_confidence
        import dashboard.rl_pilot
        import dashboard.router_health  # noqa: F401

        out["imports_s"] = time.perf_counter() - t0
    at = AppTest.from_file(str(APP), default_timeout=1800)
    t0 = time.perf_counter()
    at.run()
    out["first_s"] = time.perf_counter() - t0
    if at.exception:
        raise RuntimeError(f"app raised: {[e.value for e in at.exception]}")
    if len(at.tabs[0].get("plotly_chart")) != 3:
        raise RuntimeError(f"Router Health drew no figures: {[e.value for e in at.tabs[0].error]}")
    t0 = time.perf_counter()
    at.run()
    out["rerun_s"] = time.perf_counter() - t0
    at2 = AppTest.from_file(str(APP), default_timeout=600)
    t0 = time.perf_counter()
    at2.run()
    out["new_session_s"] = time.perf_counter() - t0
    if filter_change:
        t0 = time.perf_counter()
        at.selectbox(key="rh_lookback").set_value(90).run()
        out["filter_change_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        at.run()
        out["filter_rerun_s"] = time.perf_counter() - t0
    return out


def apptest(logs: Path, *, preimport: bool, filter_change: bool = False) -> dict[str, float]:
    cmd = [sys.executable, "-m", "bench.bench_dashboard_startup", "--worker", str(logs)]
    cmd += ["--preimport"] if preimport else []
    cmd += ["--filter-change"] if filter_change else []
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(logs), capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"AppTest worker failed:\n{proc.stderr[-3000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------- report
def _row(label: str, value: float, target: float | None = None) -> str:
    if target is None:
        return f"  {label:<58} {value:8.3f} s"
    verdict = "ok" if value < target else "OVER"
    return f"  {label:<58} {value:8.3f} s   target < {target:.1f} s   ratio {value / target:5.2f}  {verdict}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--skip-large", action="store_true")
    p.add_argument("--large-logs", type=Path, default=None)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--preimport", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--filter-change", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(_worker(args.worker, preimport=args.preimport, filter_change=args.filter_change)))
        return 0
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1. Got {args.repeats} instead.")

    tmp = Path(tempfile.mkdtemp(prefix="bench_dashboard_"))
    try:
        print(
            f"dashboard start-up benchmark (CPU cores: {os.cpu_count()}; shared machines give noisy figures)"
        )
        demo = tmp / "demo"
        print(f"demo data generated in {_demo(demo, '--data-only'):.1f} s -> {demo}")

        health = [time_health(demo) for _ in range(args.repeats)]
        print("\nstreamlit server")
        print(_row(f"spawn -> /_stcore/health 200 (median of {len(health)})", statistics.median(health),
                   TARGETS["health_s"]))  # fmt: skip
        print(f"    all: {', '.join(f'{h:.2f}' for h in health)} s")

        cold = apptest(demo, preimport=False)
        warm = apptest(demo, preimport=True)
        print("\nAppTest on demo data (fresh interpreter, cold caches)")
        print(_row("AppTest fixed cost: one-line script, first / later", cold["baseline_first_s"]))
        print(_row("  (later)", cold["baseline_s"]))
        print(_row("first app run, app imports cold (wall)", cold["first_s"]))
        print(_row("first app run, app imports warm (wall)", warm["first_s"]))
        print(_row("  of which the app's own script time (minus AppTest cost)",
                   max(warm["first_s"] - warm["baseline_s"], 0.0), TARGETS["first_run_demo_s"]))  # fmt: skip
        print(_row("  app imports (pandas/plotly/scipy/...) done beforehand", warm["imports_s"]))
        print(_row("rerun, same session (cached)", warm["rerun_s"]))
        print(_row("new session (cached, includes AppTest cost)", warm["new_session_s"]))

        if not args.skip_large:
            large = args.large_logs
            if large is None:
                large = tmp / "large"
                print(
                    f"\nlarge demo data generated in {_demo(large, '--scale', 'large', '--data-only'):.1f} s"
                )
            else:
                print(f"\nlarge demo data reused from {large}")
            res = apptest(large, preimport=True, filter_change=True)
            print("AppTest on --scale large data (~1,000,000 trades, 500 symbols)")
            print(_row("first run, cold caches (read + validate + compute)", res["first_s"]))
            print(_row("rerun, same session (cached)", res["rerun_s"], TARGETS["rerun_large_s"]))
            print(
                _row(
                    "new session (cached, includes AppTest cost)",
                    res["new_session_s"],
                    TARGETS["rerun_large_s"],
                )
            )
            print(_row("filter change (lookback 90 d: recompute from cached trades)", res["filter_change_s"]))
            print(
                _row(
                    "rerun after the filter change (cached)", res["filter_rerun_s"], TARGETS["rerun_large_s"]
                )
            )
    finally:
        if args.keep:
            print(f"\nkept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
