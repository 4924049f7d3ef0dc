"""A real browser: start the dashboard on loopback, open it in headless Chromium, click every tab,
and check what a reader sees, on the synthetic demo and on the README's real-bars demo.

It fails when:

- an exception box is shown, or a tab draws no figure;
- anything but the app's title and its status caption stands above the tabs (a bare string
  literal in ``dashboard/app.py`` was printed there by Streamlit's magic);
- a table cell or a metric shows ``None``, ``nan``, ``Infinity``, ``<NA>`` or ``NaT`` (the
  cells are decoded from the very protobuf messages the browser received: the grid is a canvas);
- a chart has fewer than two distinct points (a single rolling-Sharpe point zoomed the axis to a
  millisecond), or an axis that a trace uses has no title;
- on the synthetic demo, after the documented cron line
  ``ENV=research python -m research.rl_sizer.runner --episodes 1 --dry-run`` ran twice: a file outside
  ``logs/research/`` changed, or the RL Pilot tab does not show the dry run's two episodes as dry
  (labelled ``... dry``, dotted, counted in the dry-run caption) -- issue 23 item 8.

Screenshots go to ``test-output/screenshots/`` (``<demo>_<n>_<tab>.png``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, SAMPLE, run_demo
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
BAD_CELLS = {"none", "nan", "-nan", "inf", "-inf", "+inf", "infinity", "-infinity", "<na>", "nat", "null"}
TITLE = "Quant research monitor"
CRON_DRY_RUN = ["-m", "research.rl_sizer.runner", "--episodes", "1", "--dry-run"]
"""The cron line of the runner's docstring and the README, after ``ENV=research python``."""
NO_FIGURE_OK: dict[str, tuple[str, ...]] = {"real_bars": ("Drift",)}
"""Tabs that may legitimately draw no figure on a demo: the real-bars demo's ~150 trades are too few
for a windowed drift check, and the Drift tab says so ("No check yet")."""

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
    for var in ("DATA_DIR", "CACHE_DIR", "RESEARCH_DIR"):
        env.pop(var, None)
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"),
        "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


@pytest.fixture(scope="module")
def real_bars_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's real-bars demo: ``python -m scripts.demo --bars data/sample/binance_usdm/*1h*.csv``."""
    logs = tmp_path_factory.mktemp("real_demo") / "logs"
    run_demo(logs, "--bars", *map(str, sorted(SAMPLE.glob("*1h*.csv"))))
    return logs


FileState = tuple[int, int, str]
"""Size, mtime_ns and SHA-256 of a file."""


def files_outside_research(logs: Path) -> dict[str, FileState]:
    """Every file under ``logs`` except those under ``logs/research/``: what live trading reads."""
    out = {}
    for p in sorted(logs.rglob("*")):
        rel = p.relative_to(logs)
        if rel.parts[0] == "research" or not p.is_file():
            continue
        st = p.stat()
        out[str(rel)] = (st.st_size, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


@dataclass(frozen=True)
class CronDryRun:
    """A copy of the synthetic demo's logs after the cron dry-run line ran twice in it."""

    logs: Path
    before: dict[str, FileState]
    after: dict[str, FileState]
    outputs: list[str]


@pytest.fixture(scope="module")
def cron_dry_run_logs(demo_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> CronDryRun:
    """The synthetic demo (copied: ``demo_logs`` is shared) after two hourly cron cycles of
    ``ENV=research python -m research.rl_sizer.runner --episodes 1 --dry-run`` (about 5 s each)."""
    logs = tmp_path_factory.mktemp("cron_dry_run") / "logs"
    shutil.copytree(demo_logs, logs)
    before = files_outside_research(logs)
    env = {**os.environ, "ENV": "research", "LOGS_DIR": str(logs), "EVENTBUS_URL": "memory://"}
    for var in ("DATA_DIR", "CACHE_DIR", "RESEARCH_DIR", "FIRESTORE_EMULATOR_HOST", "FIRESTORE_PROJECT"):
        env.pop(var, None)
    outputs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, *CRON_DRY_RUN], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        outputs.append(proc.stdout + proc.stderr)
    return CronDryRun(logs, before, files_outside_research(logs), outputs)


def test_cron_dry_run_twice_changes_nothing_outside_research(cron_dry_run_logs: CronDryRun) -> None:
    """Path, size, mtime and SHA-256 of every file outside ``logs/research/``: none added, removed
    or touched (thresholds, promoted checkpoints, live artifacts); the second cycle resumed the first."""
    cron = cron_dry_run_logs
    assert cron.before, "the demo wrote nothing outside logs/research/"
    assert cron.after == cron.before
    assert "(new)" in cron.outputs[0] and "(resumed)" in cron.outputs[1], cron.outputs
    runs = [d for d in (cron.logs / "research" / "rl_runs").iterdir() if d.name.endswith("-dry")]
    assert len(runs) == 1
    episodes = [json.loads(line) for line in (runs[0] / "episodes.jsonl").read_text().splitlines()]
    assert [(e["episode"], e["dry_run"]) for e in episodes] == [(0, True), (1, True)]


@pytest.fixture(params=["synthetic", "real_bars"])
def dashboard_url(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    if request.param == "synthetic":
        logs = request.getfixturevalue("cron_dry_run_logs").logs
    else:
        logs = request.getfixturevalue("real_bars_logs")
    port = free_port()
    proc = start_dashboard(logs, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield request.param, url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


# --------------------------------------------------------------------------- what the page shows
ABOVE_TABS_JS = """() => {
  const block = document.querySelector('[data-testid="stMainBlockContainer"] [data-testid="stVerticalBlock"]');
  const out = [];
  for (const child of block.children) {
    if (child.matches('[data-testid="stTabs"]') || child.querySelector('[data-testid="stTabs"]')) break;
    const ids = [...child.querySelectorAll('[data-testid]')].map(e => e.dataset.testid);
    out.push({kind: ids.includes('stHeading') ? 'title' : ids.includes('stCaptionContainer') ? 'caption' : ids.join(','),
              text: child.innerText.trim()});
  }
  return out;
}"""

CHARTS_JS = """() => [...document.querySelectorAll('[role="tabpanel"] .js-plotly-plot')]
  .filter(el => el.offsetParent !== null)
  .map(el => {
    const fl = el._fullLayout, problems = [], used = new Set(), xs = new Set();
    let points = 0;
    for (const t of el._fullData) {
      if (t.visible !== true) continue;
      const horizontal = t.orientation === 'h';
      const hist = t.type === 'histogram';  // a histogram's data are its x values (y is the count)
      const vals = Array.from((hist || horizontal ? t.x : t.y) || []);
      const keys = hist ? vals : Array.from((horizontal ? t.y : t.x) || vals.map((_, i) => i));
      vals.forEach((v, i) => {
        const ok = v !== null && v !== undefined && (typeof v === 'string' ? v !== '' : Number.isFinite(Number(v)));
        if (ok) { points += 1; xs.add(String(keys[i])); }
      });
      used.add((t.xaxis || 'x').replace('x', 'xaxis'));
      used.add((t.yaxis || 'y').replace('y', 'yaxis'));
    }
    for (const name of used) {
      const ax = fl[name];
      const title = ax && ax.title && ax.title.text;
      // plotly.js fills an untitled axis with a placeholder it draws only in editable mode
      const real = title && String(title).trim() && !/^Click to enter .* title$/.test(String(title));
      if (ax && ax.visible !== false && !real) problems.push('axis ' + name + ' has no title');
    }
    // A chart of one x value is a defect when nothing can be read from it: no point at all, lines
    // only (a one-point line draws nothing), or a time axis zoomed to under an hour around it (a
    // single rolling-Sharpe point zoomed the axis to a millisecond). One event on a timeline whose
    // axis spans days (the retrain-trigger chart) reads fine.
    if (xs.size < 2) {
      const xa = fl.xaxis || {};
      const span = xa.type === 'date' && xa.range ? Math.abs(new Date(xa.range[1]) - new Date(xa.range[0])) : null;
      const linesOnly = el._fullData.filter(t => t.visible === true).every(t => !String(t.mode || 'markers').includes('markers') && t.type === 'scatter');
      if (points === 0 || linesOnly || (span !== null && span < 3600 * 1000))
        problems.push('a single point (' + points + ' point(s), ' + xs.size + ' distinct x' + (span !== null ? ', x axis spans ' + span + ' ms' : '') + ')');
    }
    return {problems, points, distinct: xs.size};
  })"""


def _decode(frames: list[Any]) -> list[Any]:
    """The new elements in the ForwardMsg frames the browser received."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    elements = []
    for frame in frames:
        if isinstance(frame, str):
            continue
        msg = ForwardMsg()
        msg.ParseFromString(frame)
        if msg.WhichOneof("type") == "delta" and msg.delta.WhichOneof("type") == "new_element":
            elements.append(msg.delta.new_element)
    return elements


def _is_bad(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return value != value or value in (float("inf"), float("-inf"))
    return str(value).strip().lower() in BAD_CELLS


def shown_cells(el: Any) -> Any:
    """A dataframe element's cells as the browser draws them.

    A cell that is not null shows the Styler's display value (or the value itself). A null cell
    (None, NaN, NaT) shows the dataframe's ``placeholder``, "None" when it has none, whatever the
    Styler says: Streamlit's grid draws a missing value's placeholder before it looks at the
    display value (``drawCell`` of ``DataFrame.*.js``, Streamlit 1.67), so a Styler ``na_rep`` never
    reaches the page.
    """
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    arrow = el.dataframe.arrow_data
    raw = convert_arrow_bytes_to_pandas_df(arrow.data)
    shown = convert_arrow_bytes_to_pandas_df(arrow.styler.display_values) if arrow.HasField("styler") else raw
    missing = el.dataframe.placeholder if el.dataframe.HasField("placeholder") else "None"
    out = shown.astype(object).copy()
    out.columns = raw.columns
    out.index = raw.index
    return out.mask(raw.isna().to_numpy(), missing) if len(raw) else out


def cell_and_metric_defects(elements: list[Any]) -> list[str]:
    """Cells and metric values a reader would read as a missing or broken number."""
    found = []
    for el in elements:
        kind = el.WhichOneof("type")
        if kind == "metric":
            if _is_bad(el.metric.body):
                found.append(f"metric {el.metric.label!r} shows {el.metric.body!r}")
        elif kind == "dataframe":
            df = shown_cells(el)
            for col in df.columns:
                bad = [v for v in df[col].tolist() if _is_bad(v)]
                if bad:
                    found.append(f"table column {col!r} shows {bad[0]!r} in {len(bad)} cell(s)")
    return found


DRY_TRACES_JS = """() => [...document.querySelectorAll('[role="tabpanel"] .js-plotly-plot')]
  .filter(el => el.offsetParent !== null)
  .map(el => el._fullData.filter(t => t.visible === true && String(t.name).endsWith(' dry'))
    .map(t => ({name: t.name, x: Array.from(t.x || []), dash: t.line && t.line.dash})))
  .filter(traces => traces.length)"""


def dry_run_defects(page: Any, elements: list[Any]) -> list[str]:
    """What is missing for the cron dry run (one run, two episodes, resumed) to read as such."""

    found = []
    charts = page.evaluate(DRY_TRACES_JS)
    if len(charts) < 3:  # reward, drawdown and Sharpe per episode
        found.append(f"dry run drawn in {len(charts)} chart(s), expected the 3 per-episode charts")
    for traces in charts:
        if [(t["x"], t["dash"]) for t in traces] != [([0, 1], "dot")]:
            found.append(f"dry run traces {traces}: expected one dotted line over episodes 0 and 1")
    legend = [t.strip() for t in page.locator('[role="tabpanel"] .legendtext').all_text_contents()]
    if not any(t.endswith(" dry") for t in legend):
        found.append(f"no legend entry reads '... dry': {legend}")
    text = page.locator('[role="tabpanel"]').first.inner_text()
    if "1 dry run(s)" not in text:
        found.append("the caption does not count '1 dry run(s)'")
    rows = []
    for el in elements:
        if el.WhichOneof("type") == "dataframe":
            df = shown_cells(el)
            if {"label", "episode", "dry_run"} <= set(df.columns):
                rows += [r for r in df.to_dict("records") if str(r["label"]).endswith(" dry")]
    if [(str(r["episode"]), str(r["dry_run"])) for r in rows] != [("1", "True")]:
        found.append(f"runs table: dry-run rows {rows}, expected one at episode 1 marked dry_run")
    return found


def test_every_tab_reads_cleanly(dashboard_url: tuple[str, str]) -> None:
    demo, url = dashboard_url
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (CI must install it: apt-get install chromium)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    frames: list[Any] = []
    defects: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            # Streamlit scrolls inside its own container, so full_page=True only captures the window:
            # a tall window captures a whole tab.
            page = browser.new_page(viewport={"width": 1400, "height": 4200})
            page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(payload)))
            page.goto(url, wait_until="domcontentloaded")
            tabs = page.get_by_role("tab")
            tabs.first.wait_for(timeout=60_000)
            assert [t.strip() for t in tabs.all_inner_texts()] == TAB_LABELS
            for i, label in enumerate(TAB_LABELS):
                if i:
                    frames.clear()
                    tabs.nth(i).click()
                panel = page.locator('[role="tabpanel"]').first
                panel.locator('[data-testid="stSubheader"], h3').first.wait_for(timeout=60_000)
                if label not in NO_FIGURE_OK.get(demo, ()):
                    panel.locator(".js-plotly-plot .main-svg").first.wait_for(state="visible", timeout=60_000)
                page.wait_for_timeout(1500)  # let the remaining figures and messages of the tab arrive
                if label not in NO_FIGURE_OK.get(demo, ()):
                    assert panel.locator(".js-plotly-plot").count() >= 1, f"{demo}/{label}: no plotly figure"
                assert page.locator('[data-testid="stException"]').count() == 0, f"{demo}/{label}: exception"
                above = page.evaluate(ABOVE_TABS_JS)
                if [a["kind"] for a in above] != ["title", "caption"] or above[0]["text"] != TITLE:
                    defects.append(f"{label}: above the tabs: {above}")
                for chart_no, chart in enumerate(page.evaluate(CHARTS_JS)):
                    defects += [f"{label}: chart {chart_no + 1}: {problem}" for problem in chart["problems"]]
                elements = _decode(frames)
                defects += [f"{label}: {d}" for d in cell_and_metric_defects(elements)]
                if demo == "synthetic" and label == "RL Pilot":
                    defects += [f"{label}: {d}" for d in dry_run_defects(page, elements)]
                for metric in page.locator('[data-testid="stMetricValue"]').all_inner_texts():
                    if _is_bad(metric):
                        defects.append(f"{label}: metric shows {metric!r}")
                slug = label.lower().replace(" ", "_").replace(".", "")
                page.screenshot(path=str(SHOTS / f"{demo}_{i + 1}_{slug}.png"), full_page=True)
        finally:
            browser.close()
    assert not defects, f"{demo} demo:\n" + "\n".join(defects)


def test_the_checks_catch_a_single_point_and_an_untitled_axis() -> None:
    """The chart rules themselves, on figures rendered by plotly.js in Chromium (no dashboard)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    import plotly.graph_objects as go
    from playwright.sync_api import sync_playwright

    t = ["2025-03-01T00:00:00", "2025-03-02T00:00:00", "2025-03-03T00:00:00"]
    figures = {
        "good": go.Figure(go.Scatter(x=t, y=[1, 2, 3])).update_layout(xaxis_title="t (UTC)", yaxis_title="y"),
        "single": go.Figure(go.Scatter(x=t[:1], y=[1.0], mode="lines+markers")).update_layout(
            xaxis_title="t (UTC)", yaxis_title="y"
        ),
        "untitled": go.Figure(go.Scatter(x=t, y=[1, 2, 3])).update_layout(xaxis_title="t (UTC)"),
        "event": go.Figure(go.Scatter(x=t[:1], y=["drift"], mode="markers")).update_layout(
            xaxis={"title": "t (UTC)", "range": [t[0], t[2]]}, yaxis_title="kind"
        ),
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            divs = "".join(f.to_html(full_html=False, include_plotlyjs=False) for f in figures.values())
            from plotly.offline import get_plotlyjs

            page.set_content(f"<script>{get_plotlyjs()}</script><div role='tabpanel'>{divs}</div>")
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 4")
            found = [c["problems"] for c in page.evaluate(CHARTS_JS)]
        finally:
            browser.close()
    assert found[0] == [] and found[3] == []
    assert len(found[1]) == 1 and found[1][0].startswith("a single point (1 point(s), 1 distinct x")
    assert found[2] == ["axis yaxis has no title"]
    assert _is_bad("None") and _is_bad(" nan") and _is_bad("Infinity") and _is_bad(float("inf"))
    assert not _is_bad("n/a") and not _is_bad("never") and not _is_bad("0.25")
