"""The RL Learning Loop tab draws a real learning_loop artifact and never imports torch."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from infra.settings import load_settings
from infra.store import open_store
from scripts.pipeline import DemoContext
from tests.feedback_fixtures import make_trades

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
TAB = "RL Learning Loop"


def _arr(v: Any) -> np.ndarray:
    """A plotly array from a chart spec: a list, or a base64 typed array ``{bdata, dtype}``."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v, dtype=float)


@pytest.fixture
def logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "logs"
    monkeypatch.setenv("ENV", "dev")
    monkeypatch.setenv("LOGS_DIR", str(root))
    for var in ("DATA_DIR", "CACHE_DIR", "RESEARCH_DIR", "FIRESTORE_PROJECT", "FIRESTORE_EMULATOR_HOST"):
        monkeypatch.delenv(var, raising=False)
    return root


def test_tab_draws_every_panel_from_the_artifact(logs: Path, tmp_path: Path) -> None:
    from scripts.demo_steps.learning_loop import demo_step

    data = tmp_path / "data"
    data.mkdir()
    make_trades(160, seed=2).to_parquet(data / "trades.parquet")
    settings = load_settings()
    ctx = DemoContext(
        settings=settings, store=open_store(settings), data_dir=data, seed=0, scale="default", real_bars=False
    )
    demo_step(ctx)
    art = open_store(settings).read("learning_loop").data
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["tab"] = TAB  # lazy tabs: open this one
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    tab = next(t for t in at.tabs if t.label == TAB)
    assert [e.value for e in tab.error] == []
    charts = [json.loads(c.proto.spec) for c in tab.get("plotly_chart")]
    headers = [m.value for m in tab.markdown if m.value.startswith("**") and m.value.endswith("**")]
    assert headers[:8] == [
        "**Held-out log growth**",
        "**Difference to static Kelly**",
        "**Per state bucket: learned edge and the multiplier each policy chooses**",
        "**Reward distribution**",
        "**Cumulative reward**",
        "**Policy loss**",
        "**Value loss**",
        "**Multipliers: used (sampled) vs suggested (deterministic)**",
    ]
    # one look: white template, legend above the plot, every axis titled with its unit
    for c in charts:
        assert c["layout"]["template"]["layout"]["paper_bgcolor"] == "white"
        assert c["layout"]["legend"]["orientation"] == "h" and c["layout"]["legend"]["y"] > 1
        assert "(" in c["layout"]["xaxis"]["title"]["text"] and "(" in c["layout"]["yaxis"]["title"]["text"]
    # one caption per figure (plus the loop caption, the Sharpe note and the updates table note)
    captions = [c.value for c in tab.caption]
    assert len(captions) >= len(charts) + 3
    assert any("Histogram of the reward" in c for c in captions)
    # every table has its CSV export
    assert len(tab.dataframe) == 4
    downloads = tab.get("download_button")
    assert len(downloads) == 4
    # held-out log growth: one curve per policy, the artifact's numbers; the verdict as plain text
    g = art["holdout_growth"]
    assert [t["name"] for t in charts[0]["data"]] == ["static Kelly", "best constant", "edge sizer", "PPO"]
    np.testing.assert_allclose(_arr(charts[0]["data"][2]["y"]), g["cumulative"]["edge"])
    diff = _arr(charts[1]["data"][2]["y"])  # edge sizer minus Kelly
    np.testing.assert_allclose(
        diff, np.subtract(g["cumulative"]["edge"], g["cumulative"]["kelly"]), atol=1e-12
    )
    assert any(t.value.startswith("Verdict: Hold-out log growth vs static Kelly") for t in tab.text)
    growth = tab.dataframe[0].value
    assert list(growth["policy"]) == ["static Kelly", "best constant", "edge sizer", "PPO"]
    buckets = tab.dataframe[1].value
    assert len(buckets) == len(art["buckets"]) and "hindsight best × (upper bound)" in buckets.columns
    charts = charts[2:]
    assert _arr(charts[1]["data"][0]["y"])[-1] == pytest.approx(art["cumulative_reward"]["reward"][-1])
    assert len(_arr(charts[2]["data"][0]["x"])) == art["summary"]["updates"]
    np.testing.assert_allclose(_arr(charts[4]["data"][0]["y"]), art["multipliers"]["used"])
    np.testing.assert_allclose(_arr(charts[4]["data"][1]["y"]), art["multipliers"]["suggested"])
    metrics = {m.label: m.value for m in tab.metric}
    assert metrics["Sharpe, static Kelly"] == f"{art['sharpe']['before']:.2f}"
    assert metrics["Sharpe, Kelly x PPO"] == f"{art['sharpe']['after']:.2f}"


def test_missing_artifact_shows_the_command(logs: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["tab"] = TAB  # lazy tabs: open this one
    at.run()
    assert not at.exception
    tab = next(t for t in at.tabs if t.label == TAB)
    text = " ".join(str(x.value) for x in [*tab.info, *tab.warning, *tab.markdown, *tab.code])
    assert "python -m scripts.demo" in text


def test_dashboard_tab_does_not_import_torch() -> None:
    code = "import sys, dashboard.learning_loop; print('torch' in sys.modules, 'research' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_demo_loop_edge_sizer_grows_at_least_as_fast_as_kelly_and_the_tab_shows_it(logs: Path) -> None:
    # the demo's own data (python -m scripts.demo, default scale, seed 0) through the online loop
    from scripts.demo import write_demo_data
    from scripts.demo_data import DemoConfig, generate
    from scripts.demo_steps.learning_loop import demo_step

    settings = load_settings()
    write_demo_data(generate(DemoConfig.for_scale("default", 0)), settings.data_dir)
    ctx = DemoContext(settings=settings, store=open_store(settings), data_dir=settings.data_dir, seed=0,
                      scale="default", real_bars=False)  # fmt: skip
    demo_step(ctx)
    art = open_store(settings).read("learning_loop").data
    assert art["summary"]["feedback_learned"] >= 1000 and art["summary"]["edge"]["valid"]
    final = art["holdout_growth"]["final"]
    assert final["edge"] >= final["kelly"], final
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["tab"] = TAB
    at.run()
    tab = next(t for t in at.tabs if t.label == TAB)
    table = tab.dataframe[0].value.set_index("policy")
    assert table.loc["edge sizer", "log growth"] >= table.loc["static Kelly", "log growth"]
