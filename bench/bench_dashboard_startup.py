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
import math
import os
import resource
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
from typing import Any

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


def time_health(logs: Path, *, timeout_s: float = 60.0) -> tuple[float, float]:
    """Wall seconds from spawning ``streamlit run`` until ``/_stcore/health`` answers 200, and the
    server's CPU seconds (user + system, read when it is reaped right after the answer)."""
    port = _free_port()
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}/_stcore/health"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = math.nan
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
                        wall = time.perf_counter() - t0
                        break
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
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


# --------------------------------------------------------------------------- AppTest worker
def _worker(logs: Path, *, preimport: bool, filter_change: bool, emoji: bool = False) -> dict[str, float]:
    """Runs in a fresh interpreter (``--worker``): AppTest timings, printed as JSON."""
    os.environ.update(_env(logs))
    for var in ("DATA_DIR", "CACHE_DIR", "RESEARCH_DIR"):
        os.environ.pop(var, None)
    sys.path.insert(0, str(ROOT))
    from streamlit.testing.v1 import AppTest

    out: dict[str, float] = {}

    def timed(name: str, func: Any) -> None:
        t0, c0 = time.perf_counter(), time.process_time()  # process_time: all threads of this process
        func()
        out[name] = time.perf_counter() - t0
        out[name + "_cpu"] = time.process_time() - c0

    for name in ("baseline_first_s", "baseline_s"):  # AppTest's own cost on a one-line script
        timed(name, AppTest.from_string("import streamlit as st\nst.write('x')", default_timeout=60).run)
    if preimport:

        def imports() -> None:
            import dashboard.drift_view
            import dashboard.learning_loop
            import dashboard.ml_confidence
            import dashboard.rl_pilot
            import dashboard.router_health  # noqa: F401

        timed("imports_s", imports)
    if emoji:  # Streamlit loads its emoji catalogue on the first emoji icon (st.info(..., icon="ℹ️"))
        timed("emoji_s", lambda: __import__("streamlit.emojis"))
    at = AppTest.from_file(str(APP), default_timeout=1800)
    timed("first_s", at.run)
    if at.exception:
        raise RuntimeError(f"app raised: {[e.value for e in at.exception]}")
    if len(at.tabs[0].get("plotly_chart")) != 3:
        raise RuntimeError(f"Router Health drew no figures: {[e.value for e in at.tabs[0].error]}")
    timed("rerun_s", at.run)
    timed("new_session_s", AppTest.from_file(str(APP), default_timeout=600).run)
    if filter_change:
        timed("filter_change_s", at.selectbox(key="rh_lookback").set_value(90).run)
        timed("filter_rerun_s", at.run)
    return out


def apptest(
    logs: Path, *, preimport: bool, filter_change: bool = False, emoji: bool = False
) -> dict[str, float]:
    cmd = [sys.executable, "-m", "bench.bench_dashboard_startup", "--worker", str(logs)]
    cmd += ["--emoji"] if emoji else []
    cmd += ["--preimport"] if preimport else []
    cmd += ["--filter-change"] if filter_change else []
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(logs), capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"AppTest worker failed:\n{proc.stderr[-3000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------- report
def _row(label: str, value: float, cpu: float | None = None, target: float | None = None) -> str:
    text = f"  {label:<60} {value:7.3f} s"
    text += f"  (cpu {cpu:6.3f} s)" if cpu is not None else " " * 17
    if target is not None:
        text += f"  target < {target:.1f} s: wall x{value / target:4.2f} {'ok' if value < target else 'OVER'}"
        if cpu is not None:
            text += f", cpu x{cpu / target:4.2f} {'ok' if cpu < target else 'OVER'}"
    return text


def _r(res: dict[str, float], label: str, name: str, target: float | None = None) -> str:
    return _row(label, res[name], res.get(name + "_cpu"), target)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--skip-large", action="store_true")
    p.add_argument("--large-logs", type=Path, default=None)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--preimport", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--filter-change", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--emoji", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is not None:
        print(
            json.dumps(
                _worker(
                    args.worker, preimport=args.preimport, filter_change=args.filter_change, emoji=args.emoji
                )
            )
        )
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
        walls, cpus = [h[0] for h in health], [h[1] for h in health]
        print("\nstreamlit server")
        print(_row(f"spawn -> /_stcore/health 200 (median of {len(health)})", statistics.median(walls),
                   statistics.median(cpus), TARGETS["health_s"]))  # fmt: skip
        print(f"    all (wall): {', '.join(f'{w:.2f}' for w in walls)} s")

        cold = apptest(demo, preimport=False)
        warm = apptest(demo, preimport=True)
        own = {
            "own_s": max(warm["first_s"] - warm["baseline_s"], 0.0),
            "own_s_cpu": max(warm["first_s_cpu"] - warm["baseline_s_cpu"], 0.0),
        }
        print("\nAppTest on demo data (fresh interpreter, cold caches)")
        print(_r(cold, "AppTest's own cost: one-line script, first run", "baseline_first_s"))
        print(_r(cold, "AppTest's own cost: one-line script, later runs", "baseline_s"))
        print(_r(cold, "first app run, app imports cold", "first_s"))
        print(_r(warm, "app imports done beforehand (pandas, plotly, scipy, ...)", "imports_s"))
        print(_r(warm, "first app run, app imports warm", "first_s"))
        print(
            _r(
                own,
                "  = the app's first script run (minus AppTest's own cost)",
                "own_s",
                TARGETS["first_run_demo_s"],
            )
        )
        emo = apptest(demo, preimport=True, emoji=True)
        own_emo = {
            "own_s": max(emo["first_s"] - emo["baseline_s"], 0.0),
            "own_s_cpu": max(emo["first_s_cpu"] - emo["baseline_s_cpu"], 0.0),
        }
        print(_r(emo, "Streamlit's emoji catalogue (loaded by emoji icons)", "emoji_s"))
        print(
            _r(
                own_emo,
                "  = first script run with imports and emoji catalogue warm",
                "own_s",
                TARGETS["first_run_demo_s"],
            )
        )
        print(_r(warm, "rerun, same session (cached)", "rerun_s"))
        print(_r(warm, "new session (cached; includes AppTest's own cost)", "new_session_s"))

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
            print(_r(res, "first run, cold caches (read + validate + compute)", "first_s"))
            print(_r(res, "rerun, same session (cached)", "rerun_s", TARGETS["rerun_large_s"]))
            print(
                _r(
                    res,
                    "new session (cached; includes AppTest's own cost)",
                    "new_session_s",
                    TARGETS["rerun_large_s"],
                )
            )
            print(_r(res, "filter change (lookback 90 d: recompute from cached trades)", "filter_change_s"))
            print(
                _r(res, "rerun after the filter change (cached)", "filter_rerun_s", TARGETS["rerun_large_s"])
            )
    finally:
        if args.keep:
            print(f"\nkept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
