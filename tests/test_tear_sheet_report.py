"""The standalone HTML report: the CLI writes it and the CSV; headless Chromium with no network opens
it and every section and chart is drawn."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from execution.tear_sheet import Promotion, build_tear_sheet
from execution.tear_sheet_report import FIGURES, TABLES, TIME_FIGURES, figures, metrics_table, report_html
from tests.conftest import ROOT, SAMPLE

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]  # fmt: skip


def _fixture(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame]:
    rng = np.random.default_rng(5)
    n = 800
    opened = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.uniform(0, 400 * 86400, n), unit="s")
    trades = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(n)],
            "symbol": rng.choice(["BTCUSDT", "ETHUSDT", "<b>EVIL</b>"], n),
            "route": rng.choice(["r1", "r2"], n),
            "side": "LONG",
            "opened_at": opened,
            "closed_at": opened + pd.to_timedelta(rng.uniform(600, 86400, n), unit="s"),
            "entry_price": 100.0,
            "exit_price": 101.0,
            "size_usd": 1000.0,
            "fees_usd": 0.5,
            "pnl_usd": np.round(rng.normal(2.0, 20.0, n), 2),
            "confidence": 0.6,
            "multiplier": 1.0,
            "max_adverse_pct": 0.5,
        }
    )
    ts = pd.date_range("2023-12-30", "2025-03-01", freq="1h", tz="UTC")
    close = 40_000 * np.exp(np.cumsum(rng.normal(0, 0.003, len(ts))))
    bars = pd.DataFrame({"symbol": "BTCUSDT", "ts": ts, "open": close, "high": close, "low": close,
                         "close": close, "volume": 1.0})  # fmt: skip
    tp, bp = tmp_path / "trades.parquet", tmp_path / "bars.parquet"
    trades.to_parquet(tp)
    bars.to_parquet(bp)
    return tp, bp, trades


def _models(root: Path) -> None:
    folder = root / "signal-model"
    folder.mkdir(parents=True)
    events = [
        {"action": "promote", "version": "v1", "at": "2024-03-01T00:00:00Z", "note": ""},
        {"action": "promote", "version": "v2", "at": "2024-09-01T12:00:00Z", "note": ""},
    ]
    import json

    (folder / "current.json").write_text(
        json.dumps({"model": "signal-model", "stack": ["v1", "v2"], "events": events})
    )


def test_cli_writes_html_and_csv(tmp_path: Path) -> None:
    tp, bp, trades = _fixture(tmp_path)
    _models(tmp_path / "models")
    out = tmp_path / "report.html"
    proc = subprocess.run(
        [sys.executable, "-m", "execution.tear_sheet_report", "--trades", str(tp), "--bars", str(bp),
         "--out", str(out), "--models", str(tmp_path / "models")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "LOGS_DIR": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    assert page.count("plotly.js v") == 1 and "<script src=" not in page  # embedded once, nothing fetched
    assert "&lt;b&gt;EVIL&lt;/b&gt;" in page and "<b>EVIL</b>" not in page  # names are text, not markup
    csv = pd.read_csv(tmp_path / "report_metrics.csv", index_col="metric")
    assert list(csv.columns[:2]) == ["strategy", "benchmark"] and len(csv.columns) == 5  # + 3 spans
    assert csv.loc["n_trades", "strategy"] == str(len(trades)) or float(
        csv.loc["n_trades", "strategy"]
    ) == len(trades)
    spans = csv.loc["n_trades"].iloc[2:].astype(float)
    assert spans.sum() == len(trades)


def test_cli_reports_bad_input_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "t.csv"
    bad.write_text("order_id,symbol\n1,BTC\n")
    proc = subprocess.run(
        [sys.executable, "-m", "execution.tear_sheet_report", "--trades", str(bad), "--out", str(tmp_path / "x.html")],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, "LOGS_DIR": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "t.csv" in proc.stderr


def test_every_time_chart_has_a_line_per_promotion(tmp_path: Path) -> None:
    _, _, trades = _fixture(tmp_path)
    promos = [
        Promotion(pd.Timestamp("2024-03-01", tz="UTC"), "v1"),
        Promotion(pd.Timestamp("2024-09-01", tz="UTC"), "v2"),
    ]
    sheet = build_tear_sheet(trades, promotions=promos)
    figs = figures(sheet)
    assert list(figs) == [k for k, _ in FIGURES]
    for key in TIME_FIGURES:
        lines = [s for s in figs[key].layout.shapes if s.type == "line"]
        assert len(lines) == 2, key
        assert figs[key].layout.xaxis.title.text == "day (UTC)" and figs[key].layout.yaxis.title.text
    assert metrics_table(sheet).shape[1] == 1 + 3  # strategy + 3 spans (no bars: no benchmark)


@pytest.mark.browser
def test_report_opens_offline_in_chromium_with_every_section(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (CI must install it: apt-get install chromium)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    _, bp, trades = _fixture(tmp_path)
    bars = pd.read_parquet(bp)
    promos = [Promotion(pd.Timestamp("2024-03-01", tz="UTC"), "v1")]
    out = tmp_path / "report.html"
    out.write_text(report_html(build_tear_sheet(trades, bars, promotions=promos)), encoding="utf-8")
    requested: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(offline=True, viewport={"width": 1300, "height": 900})

            def block(route):  # type: ignore[no-untyped-def]
                if not route.request.url.startswith("file://"):
                    requested.append(route.request.url)
                    route.abort()
                else:
                    route.continue_()

            context.route("**/*", block)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(out.as_uri(), wait_until="load")
            page.locator(f"#fig-{FIGURES[-1][0]} .main-svg").first.wait_for(state="attached", timeout=30_000)
            titles = [t.strip() for t in page.locator("h2").all_inner_texts()]
            for _, title in [*TABLES, *FIGURES]:
                assert title in titles, title
            for key, title in FIGURES:
                n_svg = page.locator(f"#fig-{key}.js-plotly-plot .main-svg").count()
                assert n_svg >= 1, f"{title}: chart did not draw"
            assert page.locator(".plotly .main-svg").count() >= len(FIGURES)
            assert page.locator("#fig-cumulative .shapelayer path").count() >= 1  # the promotion line
            assert errors == [] and requested == []
            shots = ROOT / "test-output" / "screenshots"
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "tear_sheet_report.png"), full_page=True)
        finally:
            browser.close()


def test_cli_with_real_csv_bars_as_the_benchmark(tmp_path: Path) -> None:
    """The real Binance 1h CSV (2025-03-06 11:00 to 2025-04-05 09:00 UTC) as the benchmark, CSV trades."""
    csv_bars = SAMPLE / "BTC_USDT_USDT-1h-futures.csv"
    rng = np.random.default_rng(9)
    n = 120
    opened = pd.Timestamp("2025-03-08", tz="UTC") + pd.to_timedelta(rng.uniform(0, 25 * 86400, n), unit="s")
    trades = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(n)], "symbol": "BTCUSDT", "route": "r1", "side": "LONG",
            "opened_at": opened.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "closed_at": (opened + pd.Timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "entry_price": 100.0, "exit_price": 101.0, "size_usd": 1000.0, "fees_usd": 0.5,
            "pnl_usd": np.round(rng.normal(1.0, 10.0, n), 2), "confidence": 0.6, "multiplier": 1.0,
            "max_adverse_pct": 0.5,
        }
    )  # fmt: skip
    trades.to_csv(tmp_path / "trades.csv", index=False)
    out = tmp_path / "r.html"
    proc = subprocess.run(
        [sys.executable, "-m", "execution.tear_sheet_report", "--trades", str(tmp_path / "trades.csv"),
         "--bars", str(csv_bars), "--out", str(out), "--no-models", "--window", "7"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "LOGS_DIR": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    csv = pd.read_csv(tmp_path / "r_metrics.csv", index_col="metric")
    # buy and hold over the trades' days, from the real closes: last close of the day before the first
    # day to the last close of the last day
    bars = pd.read_csv(csv_bars)
    bars["ts"] = pd.to_datetime(bars["timestamp"], utc=True)
    day = (bars["ts"] + pd.Timedelta(hours=1) - pd.Timedelta(1, "ns")).dt.floor("D")
    daily = bars.groupby(day)["close"].last()
    first = pd.to_datetime(trades["opened_at"], utc=True).min().floor("D")
    last = pd.to_datetime(trades["closed_at"], utc=True).max().floor("D")
    want = daily[last] / daily[first - pd.Timedelta(days=1)] - 1
    assert float(csv.loc["total_return", "benchmark"]) == pytest.approx(want, rel=1e-9)
