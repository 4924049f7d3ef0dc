"""The Tear Sheet tab in AppTest: renders on the demo (with model promotions) and on real bars, the
numbers on the tab are the library's, filters and the Router Health trade-statistics table."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from execution import metrics_normalizer as mn
from execution.tear_sheet import build_tear_sheet, promotions_from_events
from execution.tear_sheet_report import FIGURES, metrics_table
from execution.trade_stats import trade_stats
from tests.conftest import ROOT, SAMPLE, run_demo

LABEL = "Tear Sheet"


@pytest.fixture(scope="module")
def real_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo data simulated over the real Binance 1h bars (no pipeline: no model registry)."""
    logs = tmp_path_factory.mktemp("real") / "logs"
    run_demo(logs, "--data-only", "--bars", *map(str, sorted(SAMPLE.glob("*1h*.csv"))))
    return logs


def _app(logs: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("LOGS_DIR", str(logs))
    for var in ("DATA_DIR", "CACHE_DIR", "RESEARCH_DIR"):
        monkeypatch.delenv(var, raising=False)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.query_params["tab"] = LABEL
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _tab(at: AppTest):  # type: ignore[no-untyped-def]
    return next(t for t in at.tabs if t.label == LABEL)


def test_tab_on_the_demo_shows_the_library_numbers_and_every_section(
    demo_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _app(demo_logs, monkeypatch)
    tab = _tab(at)
    assert [e.value for e in tab.error] == [] and [s.value for s in tab.subheader] == [LABEL]
    charts = tab.get("plotly_chart")
    assert len(charts) == len(FIGURES)
    for chart in charts:
        layout = json.loads(chart.proto.spec)["layout"]
        assert layout["xaxis"]["title"]["text"] and layout["yaxis"]["title"]["text"]
    # the demo promoted two model versions: a line on every time chart, three spans
    spec = json.loads(charts[0].proto.spec)
    assert sum(s.get("type") == "line" for s in spec["layout"].get("shapes", [])) == 2
    # recompute independently from the files: the tab's numbers are the library's
    trades = pd.read_parquet(demo_logs / "data" / "trades.parquet")
    bars = pd.read_parquet(demo_logs / "data" / "bars.parquet")
    events = json.loads((demo_logs / "models" / "signal-model" / "current.json").read_text())["events"]
    sheet = build_tear_sheet(trades, bars, promotions=promotions_from_events(events))
    frames = [f.value for f in tab.dataframe]
    metrics = frames[0]
    assert list(metrics.columns) == ["strategy", "benchmark"]
    x = sheet.returns.to_numpy()
    assert metrics.loc["sharpe", "strategy"] == pytest.approx(
        float(mn.sharpe_ratio(x, periods_per_year=365)), rel=1e-12
    )
    assert metrics.loc["sortino", "strategy"] == pytest.approx(
        float(mn.sortino_ratio(x, periods_per_year=365)), rel=1e-12
    )
    assert metrics.loc["psr", "strategy"] == pytest.approx(float(mn.probabilistic_sharpe_ratio(x)), rel=1e-12)
    assert metrics.loc["max_drawdown", "strategy"] == pytest.approx(float(mn.max_drawdown(x)), rel=1e-12)
    assert metrics.loc["n_trades", "strategy"] == len(trades)
    want = metrics_table(sheet)
    # a missing cell carries its text ("n/a"), so the browser never draws "None" (dashboard.components.baked)
    shown = metrics.assign(benchmark=pd.to_numeric(metrics["benchmark"], errors="coerce").astype(float))
    assert (metrics["benchmark"][want["benchmark"].isna()] == "n/a").all()
    pd.testing.assert_frame_equal(shown, want[["strategy", "benchmark"]], check_names=False)
    spans = frames[2]
    assert spans.shape[1] == 3 and spans.loc["n_trades"].sum() == len(trades)
    stats = frames[-2]  # trade statistics from fills, then the definitions
    book = stats[(stats.symbol == "(all)") & (stats.route == "(all)")].iloc[0]
    assert book.n_trades == len(trades)
    assert book.profit_factor == pytest.approx(
        float(trade_stats(trades, by=()).iloc[0].profit_factor), rel=1e-12
    )
    assert len(tab.get("download_button")) == 2


def test_selection_filters_the_book(demo_logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(demo_logs, monkeypatch)
    trades = pd.read_parquet(demo_logs / "data" / "trades.parquet", columns=["symbol", "route"])
    at.multiselect(key="ts_symbols").set_value(["ETHUSDT"])
    at.multiselect(key="ts_routes").set_value([trades["route"].iloc[0]]).run()
    assert not at.exception
    metrics = _tab(at).dataframe[0].value
    n = int(((trades.symbol == "ETHUSDT") & (trades.route == trades["route"].iloc[0])).sum())
    assert metrics.loc["n_trades", "strategy"] == n
    at.selectbox(key="ts_window").set_value(7).run()
    charts = _tab(at).get("plotly_chart")
    assert not at.exception and len(charts) == len(FIGURES)
    sharpe = json.loads(charts[[k for k, _ in FIGURES].index("rolling_sharpe")].proto.spec)["data"][-1]["y"]
    y = (
        np.frombuffer(base64.b64decode(sharpe["bdata"]), dtype=sharpe["dtype"])
        if "bdata" in sharpe
        else np.array(sharpe, float)
    )
    assert np.flatnonzero(np.isfinite(y))[0] == 6  # the first full 7-day window


def test_tab_on_real_bars_without_a_registry(real_logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(real_logs, monkeypatch)
    tab = _tab(at)
    assert [e.value for e in tab.error] == []
    charts = tab.get("plotly_chart")
    # 30 days of real bars are shorter than the default rolling window: those four charts would be
    # empty, so each is replaced by a message naming the fix, never drawn as a chart of nothing
    empty = [i for i in tab.info if "Not enough data in the selection" in i.value]
    assert len(charts) == len(FIGURES) - len(empty) and len(empty) == 4
    names = [t.get("name") for t in json.loads(charts[0].proto.spec)["data"]]
    assert names == ["strategy", "buy & hold BTCUSDT"]
    assert _tab(at).dataframe[2].value.shape[1] == 1  # one span: no promotion


def test_router_health_shows_trade_statistics_from_fills(
    demo_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGS_DIR", str(demo_logs))
    for var in ("DATA_DIR", "CACHE_DIR", "RESEARCH_DIR"):
        monkeypatch.delenv(var, raising=False)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception
    rh = at.tabs[0]
    table = rh.dataframe[-1].value
    trades = pd.read_parquet(demo_logs / "data" / "trades.parquet")
    want = trade_stats(trades)
    assert table[["symbol", "route"]].values.tolist() == want[["symbol", "route"]].values.tolist()
    np.testing.assert_allclose(table["kelly"].to_numpy(float), want["kelly"].to_numpy(float), rtol=1e-12)
    assert table["n_trades"].sum() == len(trades)
