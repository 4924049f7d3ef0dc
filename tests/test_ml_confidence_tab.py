"""The ML Confidence tab: renders the telemetry artifact, and explains a missing or corrupt one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from infra.settings import load_settings
from ml.telemetry import run_cycle
from tests.conftest import ROOT
from tests.ml_fixtures import demo_bars

APP = str(ROOT / "dashboard" / "app.py")
TAB = "ML Confidence"


def _tab(at: AppTest):  # type: ignore[no-untyped-def]
    return next(t for t in at.tabs if t.label == TAB)


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ml_telemetry artifact from a telemetry cycle on demo-like bars."""
    logs = tmp_path_factory.mktemp("mlc") / "logs"
    mp = pytest.MonkeyPatch()
    mp.setenv("LOGS_DIR", str(logs))
    for var in ("DATA_DIR", "CACHE_DIR", "RESEARCH_DIR"):
        mp.delenv(var, raising=False)
    try:
        run_cycle(demo_bars(n_symbols=3, n_bars=900), settings=load_settings())
    finally:
        mp.undo()
    return logs


def _point_at(monkeypatch: pytest.MonkeyPatch, logs: Path) -> None:
    monkeypatch.setenv("LOGS_DIR", str(logs))
    monkeypatch.setenv("CACHE_DIR", str(logs / "cache"))
    monkeypatch.setenv("DATA_DIR", str(logs / "data"))


def test_tab_draws_the_artifact(artifact_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _point_at(monkeypatch, artifact_dir)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["tab"] = TAB  # lazy tabs: open this one
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    tab = _tab(at)
    assert [e.value for e in tab.error] == []
    labels = [m.label for m in tab.metric]
    assert labels == ["Brier", "ECE", "Hit rate", "Mean confidence", "Calibration in the large"]
    data = json.loads((artifact_dir / "cache" / "ml_telemetry.json").read_text())["data"]
    assert tab.metric[0].value == f"{data['calibration']['brier']:.4f}"
    charts = tab.get("plotly_chart")
    assert len(charts) == 5  # live, band, importance, reliability, Brier/ECE over time
    live = json.loads(charts[0].proto.spec)
    shapes = live["layout"].get("shapes", [])
    recent = pd.DataFrame(data["confidence_recent"])
    shown = recent[recent["symbol"].isin(sorted(recent["symbol"].unique())[:4])]
    has_line = any(s.get("y0") == 0.8 and s.get("y1") == 0.8 for s in shapes)
    # the 0.80 threshold line only when some shown confidence comes within 0.05 of it; else a caption
    assert has_line == (shown["confidence"].max() >= 0.75)
    captions = "\n".join(c.value for c in tab.caption)
    if not has_line:
        assert "0.80 is not drawn" in captions and live["layout"]["yaxis"]["range"][1] < 1.0
    assert "for a coin flip" in captions and "skill score" in captions
    assert "reference model" in captions
    rel = json.loads(charts[3].proto.spec)
    diag = rel["data"][0]
    assert diag["x"] == diag["y"]  # the diagonal
    imp = json.loads(charts[2].proto.spec)["data"][0]
    assert imp["y"][-1] == data["feature_importance"]["top"][0]["feature"]  # best feature on top
    # one look: white template, legend above the plot; time axes in UTC, value axes with units
    specs = [json.loads(c.proto.spec) for c in charts]
    for i, spec in enumerate(specs):
        assert spec["layout"]["template"]["layout"]["paper_bgcolor"] == "white"
        assert spec["layout"]["legend"]["orientation"] == "h"
        value_axis = "xaxis" if i == 2 else "yaxis"  # importance bars are horizontal
        assert "(" in spec["layout"][value_axis]["title"]["text"]
    for i in (0, 1, 4):  # live, band, Brier/ECE: time axes
        assert spec_x_title(specs[i]).endswith("(UTC)")
        xs = specs[i]["data"][-1]["x"]
        assert not any(str(x).endswith(("Z", "+00:00")) for x in xs)  # naive UTC wall time
    # the Brier/ECE points sit at the artifact's UTC bucket starts (wall time, no shift)
    expected = [
        pd.Timestamp(r["bucket_start"]).tz_convert("UTC").tz_localize(None)
        for r in data["calibration_over_time"]
    ]
    assert [pd.Timestamp(x) for x in specs[4]["data"][0]["x"]] == expected
    # a caption under every figure, a CSV export next to every table
    captions = [c.value for c in tab.caption]
    assert sum("UTC" in c for c in captions) >= 3
    assert len(captions) >= len(charts) + 1  # + the data-window line
    assert len(tab.dataframe) == 2  # calibration per bucket, latest signals
    assert len(tab.get("download_button")) == 2
    sig = tab.dataframe[1].value
    assert "ts (UTC)" in sig.columns and str(sig["ts (UTC)"].dt.tz) == "UTC"
    # choosing other symbols redraws the live chart with one trace per symbol
    symbols = data["data_window"]["symbols"]
    tab.multiselect(key="mlc_symbols").set_value(symbols[:1]).run()
    live2 = json.loads(_tab(at).get("plotly_chart")[0].proto.spec)
    assert [t["name"] for t in live2["data"]] == symbols[:1]


def spec_x_title(spec: dict) -> str:  # type: ignore[type-arg]
    return str(spec["layout"]["xaxis"]["title"]["text"])


def test_tab_with_artifact_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _point_at(monkeypatch, tmp_path / "logs")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["tab"] = TAB  # lazy tabs: open this one
    at.run()
    assert not at.exception
    tab = _tab(at)
    assert any(
        "No `ml_telemetry.json` yet" in i.value and "python -m ml.telemetry" in i.value for i in tab.info
    )
    assert tab.get("plotly_chart") == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "corrupt"),
        (
            json.dumps(
                {
                    "schema_version": 1,
                    "name": "ml_telemetry",
                    "generated_at": "2025-01-01T00:00:00Z",
                    "env": "dev",
                    "source": "test",
                    "data": {"calibration": {}},
                }
            ),
            "field $.calibration.n is missing",
        ),
    ],
)
def test_tab_with_artifact_corrupt(
    content: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = tmp_path / "logs"
    (logs / "cache").mkdir(parents=True)
    (logs / "cache" / "ml_telemetry.json").write_text(content)
    _point_at(monkeypatch, logs)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["tab"] = TAB  # lazy tabs: open this one
    at.run()
    assert not at.exception
    tab = _tab(at)
    errors = [e.value for e in tab.error]
    assert any(expected in e and "python -m ml.telemetry" in e for e in errors), errors
    assert tab.get("plotly_chart") == []


def test_tab_module_does_not_import_sklearn() -> None:
    code = "import sys; import dashboard.ml_confidence; print('sklearn' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def _threshold_lines(spec: dict) -> list[dict]:  # type: ignore[type-arg]
    return [s for s in spec["layout"].get("shapes", []) if s.get("y0") == s.get("y1") == 0.8]


def test_threshold_line_only_when_confidence_comes_near_it() -> None:
    """Issue 23 item 12: a 0.80 line over a model that never passes 0.6 is drawn no more."""
    from dashboard.ml_confidence import band_figure, confidence_figure

    ts = pd.date_range("2025-01-01", periods=4, freq="h", tz="UTC")
    low = pd.DataFrame({"symbol": "BTC", "ts": ts, "confidence": [0.51, 0.55, 0.57, 0.52]})
    fig = confidence_figure(low, ["BTC"], 0.8).to_plotly_json()
    assert _threshold_lines(fig) == [] and fig["layout"]["yaxis"]["range"] == [0.5, 0.62]
    high = low.assign(confidence=[0.51, 0.79, 0.9, 0.6])
    fig = confidence_figure(high, ["BTC"], 0.8).to_plotly_json()
    assert len(_threshold_lines(fig)) == 1 and fig["layout"]["yaxis"]["range"] == [0.5, 1.0]
    band = pd.DataFrame({"symbol": "ALL", "bucket_start": ts, "q10": 0.5, "q50": 0.53, "q90": 0.58})
    assert _threshold_lines(band_figure(band, "ALL", 0.8).to_plotly_json()) == []


def test_brier_note_compares_with_a_coin_flip() -> None:
    from dashboard.ml_confidence import brier_note

    assert "no better than a coin flip" in str(brier_note(0.2562))
    assert "about a coin flip's" in str(brier_note(0.245))
    assert "better than a coin flip" in str(brier_note(0.20)) and "+0.200" in str(brier_note(0.20))
    assert brier_note(None) is None and brier_note(float("nan")) is None
