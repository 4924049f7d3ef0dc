"""End-to-end dashboard start-up over all five tabs, in a real browser.

``python -m bench.bench_e2e [--logs DIR] [--large-logs DIR] [--runs 3]``

Prints, against the targets of issue 12:
* spawn -> ``/_stcore/health`` answers (target < 2 s);
* spawn -> the first tab's plotly figures drawn in headless Chromium;
* per tab: click -> its figures drawn;
* AppTest rerun time of the whole app on ``--scale large`` data (target < 1 s once cached), and
  the peak RSS of that process.

Without ``--logs`` it runs the demo into a temp folder first; without ``--large-logs`` it
generates the large data set (``--data-only``) too.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.conftest import ROOT, run_demo
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, free_port, start_dashboard, wait_healthy
from tests.test_system import TAB_LABELS


def spawn_to_health(logs: Path) -> float:
    port = free_port()
    t0 = time.perf_counter()
    proc = start_dashboard(logs, port)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        return time.perf_counter() - t0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def browser_timings(logs: Path) -> tuple[float, dict[str, float]]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        port = free_port()
        t0 = time.perf_counter()
        proc = start_dashboard(logs, port)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, proc)
            page.goto(url, wait_until="domcontentloaded")
            panel = page.locator('[role="tabpanel"]').first
            panel.locator(".js-plotly-plot .main-svg").first.wait_for(state="visible", timeout=120_000)
            first = time.perf_counter() - t0
            per_tab = {}
            tabs = page.get_by_role("tab")
            for i, label in enumerate(TAB_LABELS):
                t1 = time.perf_counter()
                tabs.nth(i).click()
                page.locator('[role="tabpanel"]').first.locator(".js-plotly-plot .main-svg").first.wait_for(
                    state="visible", timeout=120_000
                )
                per_tab[label] = time.perf_counter() - t1
            return first, per_tab
        finally:
            browser.close()
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)


RERUN = """
import os, sys, time, resource
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=600)
t0 = time.perf_counter(); at.run(); first = time.perf_counter() - t0
times = []
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter(); at.run(); times.append(time.perf_counter() - t0)
errors = len(at.exception) + len(at.error)
print(first, min(times), sorted(times)[len(times) // 2], errors, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def apptest_rerun(logs: Path, runs: int) -> tuple[float, float, float, int, float]:
    env = {**os.environ, "LOGS_DIR": str(logs)}
    out = subprocess.run(
        [sys.executable, "-c", RERUN, str(ROOT / "dashboard" / "app.py"), str(runs)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=True,
    ).stdout.split()  # fmt: skip
    first, best, median, errors, rss = (float(x) for x in out[-5:])
    return first, best, median, int(errors), rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--logs", type=Path)
    ap.add_argument("--large-logs", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    logs = args.logs
    if logs is None:
        logs = tmp / "demo"
        print("running the demo ...", flush=True)
        run_demo(logs)
    large = args.large_logs
    if large is None:
        large = tmp / "large"
        print("generating --scale large data ...", flush=True)
        run_demo(large, "--scale", "large", "--data-only")

    health = [spawn_to_health(logs) for _ in range(args.runs)]
    print(
        f"spawn -> /_stcore/health           median {statistics.median(health):6.2f} s  (target < 2 s)  runs={[round(h, 2) for h in health]}"
    )
    first, per_tab = browser_timings(logs)
    print(f"spawn -> first tab figures drawn    {first:6.2f} s  (headless Chromium)")
    for label, secs in per_tab.items():
        print(f"  click {label:<20} -> figures {secs:6.2f} s")
    f, best, med, errors, rss = apptest_rerun(logs, args.runs)
    print(
        f"AppTest demo data: first run {f:5.2f} s, rerun median {med:5.2f} s (target first < 0.5 s), errors={errors}"
    )
    f, best, med, errors, rss = apptest_rerun(large, args.runs)
    print(
        f"AppTest large data (~1M trades): first run {f:5.2f} s, rerun median {med:5.2f} s, best {best:5.2f} s "
        f"(target < 1 s once cached), peak RSS {rss:,.0f} MiB, errors={errors}"
    )
    print(f"bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
