"""A real browser: start the dashboard on loopback, open it in headless Chromium, click every tab,
wait for its plotly figures, and check that no exception box is shown. Screenshots go to
``test-output/screenshots/``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_system import TAB_LABELS

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("streamlit did not become healthy")


def start_dashboard(logs: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LOGS_DIR": str(logs), "EVENTBUS_URL": "memory://"}
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"),
        "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


@pytest.fixture
def dashboard_url(demo_logs: Path) -> Iterator[str]:
    port = free_port()
    proc = start_dashboard(demo_logs, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_every_tab_draws_its_figures(dashboard_url: str) -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (CI must install it: apt-get install chromium)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            # Streamlit scrolls inside its own container, so full_page=True only captures the window:
            # a tall window captures a whole tab.
            page = browser.new_page(viewport={"width": 1400, "height": 4200})
            page.goto(dashboard_url, wait_until="domcontentloaded")
            tabs = page.get_by_role("tab")
            tabs.first.wait_for(timeout=60_000)
            assert [t.strip() for t in tabs.all_inner_texts()] == TAB_LABELS
            for i, label in enumerate(TAB_LABELS):
                tabs.nth(i).click()
                panel = page.locator('[role="tabpanel"]').first
                panel.locator(".js-plotly-plot .main-svg").first.wait_for(state="visible", timeout=60_000)
                page.wait_for_timeout(300)  # let the remaining figures of the tab finish drawing
                n_figures = panel.locator(".js-plotly-plot").count()
                assert n_figures >= 1, f"{label}: no plotly figure"
                assert page.locator('[data-testid="stException"]').count() == 0, f"{label}: exception shown"
                page.screenshot(
                    path=str(SHOTS / f"{i + 1}_{label.lower().replace(' ', '_').replace('.', '')}.png"),
                    full_page=True,
                )
        finally:
            browser.close()
