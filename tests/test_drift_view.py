"""The Drift tab renders real artifacts, and explains missing or corrupt ones without crashing."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.drift_view import checks_frame, statistic_figure, trigger_timeline_figure, triggers_frame
from infra.artifacts import ArtifactStore
from infra.eventbus import MemoryBus
from ml.drift_scenarios import accuracy_drop
from ml.drift_service import DriftService, join_trades_to_signals, write_artifacts
from tests.test_drift_service import make_frames

SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from dashboard import drift_view
drift_view.render()
"""
ROOT = str(Path(__file__).resolve().parent.parent)


def write_real_artifacts(cache: Path) -> DriftService:
    c, y = accuracy_drop(2000, change_at=1000, seed=0)
    joined, report = join_trades_to_signals(*make_frames(c, y))
    service = DriftService(publisher=MemoryBus()).run(joined)
    write_artifacts(service, report, ArtifactStore(cache))
    return service


def run_tab(logs: Path) -> AppTest:
    at = AppTest.from_string(SCRIPT.format(root=ROOT), default_timeout=60)
    at.run()
    return at


def test_tab_draws_every_statistic_and_the_trigger_timeline(logs_env: Path) -> None:
    service = write_real_artifacts(logs_env / "cache")
    at = run_tab(logs_env)
    assert not at.exception, [e.value for e in at.exception]
    assert at.error == []
    warnings = [w.value for w in at.warning]
    assert any("accuracy_drift" in w and "trade 1190" in w for w in warnings), warnings
    charts = at.get("plotly_chart")
    assert len(charts) == 5  # four statistics + trigger timeline
    assert [m.value for m in at.metric][:3] == ["sig-v1", "2,000", "1"]
    assert len(service.checks) == 20


def test_missing_artifact_shows_the_command(logs_env: Path) -> None:
    at = run_tab(logs_env)
    assert not at.exception
    assert any("python -m ml.drift_service" in str(i.value) for i in at.info)


def test_corrupt_and_malformed_artifacts_are_explained(logs_env: Path) -> None:
    cache = logs_env / "cache"
    cache.mkdir(parents=True)
    (cache / "drift.json").write_text("{not json", encoding="utf-8")
    at = run_tab(logs_env)
    assert not at.exception
    assert any("corrupt" in str(e.value) for e in at.error)

    ArtifactStore(cache).write("drift", {"checks": []}, source="test")
    at = run_tab(logs_env)
    assert not at.exception
    assert any("wrong_schema" in str(e.value) for e in at.error)


def test_figures_have_threshold_lines_and_markers() -> None:
    checks = checks_frame(
        {
            "checks": [
                {
                    "n_trades": 100,
                    "closed_at": "2025-01-01T00:00:00Z",
                    "cusum_max": 1.0,
                    "cusum_threshold": 10.8,
                },
                {
                    "n_trades": 200,
                    "closed_at": "2025-01-02T00:00:00Z",
                    "cusum_max": 12.0,
                    "cusum_threshold": 10.8,
                },
            ]
        }
    )
    det = [{"kind": "accuracy_drift", "n_trades_total": 190, "closed_at": "2025-01-01T22:00:00Z"}]
    fig = statistic_figure(checks, "cusum_max", "cusum_threshold", "t", det, x="n_trades")
    assert [list(t.y) for t in fig.data] == [[1.0, 12.0], [10.8, 10.8]]
    assert fig.layout.shapes[0].x0 == 190
    fig_t = statistic_figure(checks, "cusum_max", "cusum_threshold", "t", det, x="closed_at")
    assert pd.Timestamp(fig_t.layout.shapes[0].x0) == pd.Timestamp("2025-01-01T22:00:00Z")
    trig = triggers_frame(
        {
            "triggers": [
                {
                    "trigger_id": "a",
                    "reason": "accuracy_drift",
                    "triggered_at": "2025-01-01T22:00:00Z",
                    "outcome": "pending",
                }
            ]
        }
    )
    assert trigger_timeline_figure(trig).data[0].name == "pending"


def test_tab_module_imports_no_heavy_ml_library() -> None:
    import subprocess

    code = "import sys; import dashboard.drift_view; print(sorted(m for m in ('torch','sklearn','stable_baselines3') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(autouse=True)
def _clear_streamlit_cache() -> None:
    import streamlit as st

    st.cache_data.clear()
