"""The Drift tab renders real artifacts, and explains missing or corrupt ones without crashing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.drift_view import (
    OUTCOME_COLOURS,
    REPLACED_COLOUR,
    checks_frame,
    power_text,
    statistic_figure,
    trigger_table,
    trigger_timeline_figure,
    triggers_frame,
    version_spans,
    windows_table,
)
from infra.artifacts import ArtifactStore
from infra.bus import MemoryBus
from infra.contracts.artifacts import decode_data
from ml.drift_monitor import DriftService, join_trades_to_signals
from ml.drift_scenarios import accuracy_drop
from ml.drift_service import write_artifacts
from tests.conftest import run_demo
from tests.test_drift_service import make_frames

SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from dashboard import drift_view
drift_view.render()
"""
ROOT = str(Path(__file__).resolve().parent.parent)
APP = str(Path(ROOT) / "dashboard" / "app.py")


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

    env = {"schema_version": 1, "name": "drift", "generated_at": "2025-01-01T00:00:00Z", "env": "dev",
           "source": "test", "data": {"checks": []}}  # fmt: skip
    (cache / "drift.json").write_text(json.dumps(env), encoding="utf-8")
    at = run_tab(logs_env)
    assert not at.exception
    assert any("invalid" in str(e.value) and "$.n_trades is missing" in str(e.value) for e in at.error)


def _drift(d: dict[str, Any]) -> Any:
    return decode_data("drift", {"n_trades": 0, "checks": [], "detections": [], **d})


def _triggers(d: dict[str, Any]) -> Any:
    rows = [{"model": "m", "priority": "high", **t} for t in d["triggers"]]
    return decode_data("retrain_triggers", {"cooldown_s": 0.0, "history_limit": 500, "triggers": rows})


def _jobs(*jobs: dict[str, Any]) -> Any:
    return decode_data(
        "retrain_jobs", {"jobs": list(jobs), "counts": {"promoted": 0, "rejected": 0, "failed": 0}}
    )


def _retrain(d: dict[str, Any]) -> Any:
    return decode_data("retrain", {"model": "m", "versions": [], "jobs": [], "windows": {}, **d})


def test_figures_have_threshold_lines_and_markers() -> None:
    checks = checks_frame(
        _drift(
            {
                "checks": [
                    {
                        "n_trades": 100,
                        "closed_at": "2025-01-01T00:00:00Z",
                        "accuracy_cusum_max": 1.0,
                        "accuracy_threshold": 10.8,
                    },
                    {
                        "n_trades": 200,
                        "closed_at": "2025-01-02T00:00:00Z",
                        "accuracy_cusum_max": 12.0,
                        "accuracy_threshold": 10.8,
                    },
                ]
            }
        )
    )
    det = _drift({"detections": [{"kind": "accuracy_drift", "statistic": "cusum", "value": 12.0, "threshold": 10.8,
                  "message": "m", "n_trades": 190, "n_trades_total": 190, "closed_at": "2025-01-01T22:00:00Z"}]}).detections  # fmt: skip
    fig = statistic_figure(checks, "accuracy_cusum_max", "accuracy_threshold", "t", det, x="n_trades")
    assert [list(t.y) for t in fig.data] == [[1.0, 12.0], [10.8, 10.8]]
    assert fig.layout.shapes[0].x0 == 190
    fig_t = statistic_figure(checks, "accuracy_cusum_max", "accuracy_threshold", "t", det, x="closed_at")
    assert pd.Timestamp(fig_t.layout.shapes[0].x0) == pd.Timestamp("2025-01-01T22:00:00Z")
    trig = triggers_frame(
        _triggers(
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
    )
    fig = trigger_timeline_figure(trig)
    assert fig.data[0].name == "pending" and fig.data[0].marker.color == OUTCOME_COLOURS["pending"]
    assert "no validation metrics" in fig.data[0].text[0]


def test_tab_module_imports_no_heavy_ml_library() -> None:
    import subprocess

    code = "import sys; import dashboard.drift_view; print(sorted(m for m in ('torch','sklearn','stable_baselines3') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(autouse=True)
def _clear_streamlit_cache() -> None:
    import streamlit as st

    st.cache_data.clear()


# --------------------------------------------------------------------------- retrain outcomes and versions

METRICS = {
    "brier": {"diff": -0.0065, "ci_low": -0.0097, "ci_high": -0.0044},
    "ece": {"diff": -0.085, "ci_low": -0.111, "ci_high": -0.046},
}


def legacy_triggers() -> dict[str, Any]:
    """A history written before triggers carried metrics/new_version, plus one that does."""
    return {
        "triggers": [
            {
                "trigger_id": "t-old",
                "model": "m",
                "reason": "accuracy_drift",
                "priority": "high",
                "triggered_at": "2025-03-01T00:00:00Z",
                "outcome": "promoted",
                "resolved_at": "2025-03-02T00:00:00Z",
                "note": "promoted v2",
            },
            {
                "trigger_id": "t-new",
                "model": "m",
                "reason": "calibration_drift",
                "priority": "high",
                "triggered_at": "2025-03-10T00:00:00Z",
                "outcome": "rejected",
                "resolved_at": "2025-03-11T00:00:00Z",
                "note": "not better",
                "metrics": {"brier": {"diff": 0.001, "ci_low": -0.002, "ci_high": 0.004}},
                "new_version": None,
            },
        ]
    }


def test_legacy_history_takes_metrics_and_version_from_retrain_jobs() -> None:
    jobs = _jobs({"trigger_id": "t-old", "outcome": "promoted", "new_version": "v2",
                  "validation": {"n_rows": 10, "promote": True, "metrics": METRICS}})  # fmt: skip
    trig = triggers_frame(_triggers(legacy_triggers()), jobs)
    assert list(trig["new_version"]) == ["v2", None]
    assert {
        k: {p: m[p] for p in ("diff", "ci_low", "ci_high")} for k, m in trig.loc[0, "metrics"].items()
    } == METRICS
    assert trig.loc[1, "metrics"]["brier"] == {"name": None, "current": None, "candidate": None,
                                               "diff": 0.001, "ci_low": -0.002, "ci_high": 0.004}  # fmt: skip
    table = trigger_table(trig)
    assert list(table["brier_diff"]) == [-0.0065, 0.001]
    assert list(table["brier_ci_high"]) == [-0.0044, 0.004]
    assert table.loc[0, "ece_ci_low"] == -0.111 and pd.isna(table.loc[1, "ece_ci_low"])
    fig = trigger_timeline_figure(trig)
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"promoted", "rejected"}
    assert by_name["promoted"].marker.color == "seagreen" and by_name["rejected"].marker.color == "darkorange"
    hover = by_name["promoted"].text[0]
    assert "-> v2" in hover and "promoted v2" in hover and "Brier -0.0065 [-0.0097, -0.0044]" in hover
    assert "ECE -0.0850 [-0.1110, -0.0460]" in hover
    # without retrain_jobs the legacy trigger just has no metrics
    bare = triggers_frame(_triggers(legacy_triggers()))
    assert bare.loc[0, "metrics"] is None and bare.loc[0, "new_version"] is None


def test_version_spans_prefer_the_retrain_artifact_and_fall_back_to_promotions() -> None:
    retrain = _retrain(
        {
            "versions": [
                {"version": "v2", "live_from": "2025-03-02T00:00:00Z", "role": "retrained"},
                {"version": "v1", "live_from": "2025-02-01T00:00:00Z", "role": "stale baseline"},
            ]
        }
    )
    trig = triggers_frame(
        _triggers(legacy_triggers()),
        _jobs({"trigger_id": "t-old", "outcome": "promoted", "new_version": "v9"}),
    )
    spans = version_spans(retrain, trig)
    assert [(s["version"], str(s["start"]), str(s["end"])) for s in spans] == [
        ("v1", "2025-02-01 00:00:00+00:00", "2025-03-02 00:00:00+00:00"),
        ("v2", "2025-03-02 00:00:00+00:00", "None"),
    ]
    fallback = version_spans(None, trig)
    assert [(s["version"], str(s["start"]), s["end"]) for s in fallback] == [
        ("v9", "2025-03-02 00:00:00+00:00", None)
    ]
    checks = checks_frame(
        _drift(
            {
                "checks": [
                    {"n_trades": 100, "closed_at": "2025-02-20T00:00:00Z", "accuracy_cusum_max": 1.0},
                    {"n_trades": 200, "closed_at": "2025-03-04T00:00:00Z", "accuracy_cusum_max": 2.0},
                ]
            }
        )
    )
    fig = statistic_figure(
        checks, "accuracy_cusum_max", "accuracy_threshold", "t", [], x="closed_at", versions=spans
    )
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert [(pd.Timestamp(r.x0), pd.Timestamp(r.x1)) for r in rects] == [
        (pd.Timestamp("2025-02-20T00:00:00Z"), pd.Timestamp("2025-03-02T00:00:00Z")),
        (pd.Timestamp("2025-03-02T00:00:00Z"), pd.Timestamp("2025-03-04T00:00:00Z")),
    ]
    assert [a.text for a in fig.layout.annotations] == ["model v2"]  # v1 went live before the first check
    on_trades = statistic_figure(
        checks, "accuracy_cusum_max", "accuracy_threshold", "t", [], x="n_trades", versions=spans
    )
    # 2025-03-02 is 10 of the 12 days between the checks: trade 100 + 100 * 10/12
    assert on_trades.layout.shapes[0].x0 == pytest.approx(100 + 100 * 10 / 12)


def test_windows_table_reads_the_retrain_windows() -> None:
    w = {"before_drift": {"ece": 0.016, "brier": 0.246, "model_version": "v1", "n_rows": 10}}
    table = windows_table(
        _retrain({"windows": {**w, "after_retrain": {"ece": 0.012, "model_version": "v2"}}})
    )
    assert list(table["window"]) == ["before drift", "after retrain"]
    assert list(table["ECE"]) == [0.016, 0.012]
    assert windows_table(None).empty and windows_table(_retrain({})).empty


@pytest.fixture(scope="module")
def retrain_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's drift and retrain steps, run for real in a subprocess."""
    logs = tmp_path_factory.mktemp("drift_retrain") / "logs"
    run_demo(logs, "--only", "drift,retrain")
    return logs


def charts(at: AppTest) -> dict[str, dict[str, Any]]:
    """The Drift tab's plotly figures by their key."""
    out = {}
    for c in at.get("plotly_chart"):
        key = str(c.proto.id).rsplit("-", 1)[-1]
        if key.startswith("drift_"):
            out[key] = json.loads(c.proto.spec)
    return out


def test_app_shows_trigger_outcomes_and_version_bands_from_the_demo(
    retrain_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGS_DIR", str(retrain_logs))
    cache = retrain_logs / "cache"
    retrain = json.loads((cache / "retrain.json").read_text())["data"]
    jobs = json.loads((cache / "retrain_jobs.json").read_text())["data"]["jobs"]
    promoted = [j for j in jobs if j["outcome"] == "promoted"]  # the worker's record (one writer each)
    assert promoted and promoted[0]["new_version"] == retrain["versions"][-1]["version"]
    assert set(promoted[0]["validation"]["metrics"]) == {"brier", "ece", "hit_rate_high"}

    at = AppTest.from_file(APP, default_timeout=90)

    at.query_params["tab"] = "Drift"  # lazy tabs: open this one
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.error == [], [e.value for e in at.error]
    figs = charts(at)
    assert set(figs) == {
        "drift_accuracy_cusum_max",
        "drift_calibration_cusum_max",
        "drift_high_conf_win_rate",
        "drift_ks_d",
        "drift_triggers",
    }
    timeline = figs["drift_triggers"]
    outcome_trace = next(t for t in timeline["data"] if t["name"] == "promoted")
    assert outcome_trace["marker"]["color"] == OUTCOME_COLOURS["promoted"]
    hover = outcome_trace["text"][0]
    b = promoted[0]["validation"]["metrics"]["brier"]
    assert f"Brier {b['diff']:+.4f} [{b['ci_low']:+.4f}, {b['ci_high']:+.4f}]" in hover
    assert promoted[0]["note"] in hover and promoted[0]["new_version"] in hover
    versions = [v["version"] for v in retrain["versions"]]
    for key in ("drift_accuracy_cusum_max", "drift_ks_d"):
        layout = figs[key]["layout"]
        assert [a["text"] for a in layout["annotations"]] == [f"model {v}" for v in versions]
        assert sum(s["type"] == "rect" for s in layout["shapes"]) == len(versions)
        assert layout["xaxis"]["title"]["text"] == "trade close time (UTC)"
    assert timeline["layout"]["xaxis"]["title"]["text"] == "triggered at (UTC)"
    tables = [d.value for d in at.dataframe]
    windows = next(t for t in tables if "window" in t.columns)
    assert list(windows["window"]) == [
        "before drift",
        "during drift",
        "after retrain",
        "after retrain, stale model",
    ]
    assert windows["ECE"].tolist() == pytest.approx(
        [
            retrain["windows"][k]["ece"]
            for k in ("before_drift", "during_drift", "after_retrain", "after_retrain_stale")
        ]
    )
    trig_table = next(t for t in tables if "trigger_id" in t.columns)
    assert trig_table["brier_diff"].tolist() == pytest.approx([b["diff"]])
    assert any(getattr(d, "label", "") == "Download triggers (CSV)" for d in at.get("download_button"))
    assert sum("(UTC)" in c.value for c in at.caption) >= 4  # one caption under each statistic chart


def test_app_renders_the_tab_with_only_the_drift_artifact(
    logs_env: Path,
) -> None:
    write_real_artifacts(logs_env / "cache")
    (logs_env / "cache" / "retrain_triggers.json").unlink()
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["tab"] = "Drift"  # lazy tabs: open this one
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.error == [], [e.value for e in at.error]
    figs = charts(at)
    assert set(figs) == {
        "drift_accuracy_cusum_max",
        "drift_calibration_cusum_max",
        "drift_high_conf_win_rate",
        "drift_ks_d",
    }
    assert all(not f["layout"].get("annotations") for f in figs.values())  # no version known
    captions = " ".join(c.value for c in at.caption)
    assert "python -m scripts.demo --only drift,retrain" in captions
    assert "python -m ml.retrain_worker" in captions
    assert any(
        "retrain_triggers.json" in str(i.value) and "python -m ml.drift_service" in str(i.value)
        for i in at.info
    )


# -- issue 23 item 6: the tab never contradicts itself or the doctor ------------------------------------


def test_after_the_promoted_retrain_the_tab_shows_the_new_model_at_zero_and_greys_the_old(
    retrain_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import subprocess

    env = {**os.environ, "LOGS_DIR": str(retrain_logs), "ENV": "dev", "EVENTBUS_URL": "memory://"}
    proc = subprocess.run(
        [sys.executable, "-m", "ml.drift_service"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    monkeypatch.setenv("LOGS_DIR", str(retrain_logs))
    drift = json.loads((retrain_logs / "cache" / "drift.json").read_text())["data"]
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["tab"] = "Drift"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [w.value for w in at.warning] == []  # no open drift: what the doctor says too
    assert [m.value for m in at.metric][:3] == [drift["current_model"], "0", "0"]
    infos = " ".join(str(i.value) for i in at.info)
    assert f"No open drift on the current model {drift['current_model']}" in infos
    assert "started from zero" in infos
    figs = charts(at)
    for key in ("drift_accuracy_cusum_max", "drift_calibration_cusum_max"):
        data = figs[key]["data"]
        series = [t for t in data if t["name"] != "threshold"]
        # every check belongs to the replaced model: drawn grey, never as the live detector
        assert series and all(t["name"].endswith("(replaced)") for t in series)
        assert all(t["line"]["color"] == REPLACED_COLOUR for t in series)
    for key, fig in figs.items():
        assert fig["layout"]["yaxis"]["title"]["text"], key  # every chart has a y-axis title
        assert fig["layout"]["xaxis"]["title"]["text"], key
    captions = " ".join(c.value for c in at.caption)
    assert 'What "no drift" means at these thresholds' in captions
    assert "0.15 drop in win rate is caught within 200 trades" in captions


def test_without_a_detection_the_windows_are_named_after_the_planted_change() -> None:
    retrain = _retrain(
        {
            "change_ts": "2025-03-01T00:00:00Z",
            "windows": {
                "before_drift": {"model_version": "v1", "ece": 0.01},
                "during_drift": {"model_version": "v1", "ece": 0.02},
            },
        }
    )
    assert list(windows_table(retrain)["window"]) == ["before drift", "during drift"]
    assert list(windows_table(retrain, detected=False)["window"]) == [
        "before the planted change",
        "after the planted change",
    ]


def test_short_stream_shows_a_message_instead_of_an_empty_ks_panel(logs_env: Path) -> None:
    c, y = accuracy_drop(400, change_at=400, seed=0)  # 400 trades: the KS test needs 600
    joined, report = join_trades_to_signals(*make_frames(c, y))
    write_artifacts(
        DriftService(publisher=MemoryBus()).run(joined), report, ArtifactStore(logs_env / "cache")
    )
    at = run_tab(logs_env)
    assert not at.exception, [e.value for e in at.exception]
    keys = {str(c.proto.id).rsplit("-", 1)[-1] for c in at.get("plotly_chart")}
    assert "drift_ks_d" not in keys and "drift_accuracy_cusum_max" in keys
    assert any("No KS value yet" in str(i.value) and "600 closed trades" in str(i.value) for i in at.info)
    assert any("raised no alarm over 400 closed trades" in str(s.value) for s in at.success)


def test_power_text_states_the_simulated_delays() -> None:
    power = {
        "accuracy_drop_0.15": {"p_within_200": 0.874, "median_delay": 121.0},
        "calibration_break": {"p_within_200": 1.0, "median_delay": float("inf")},
    }
    text = power_text(_drift({"power": power}).power)
    assert text is not None
    assert (
        "a 0.15 drop in win rate is caught within 200 trades in 87% of cases (median delay 121 trades)"
        in text
    )
    assert "median delay over 1,000 trades" in text
    assert power_text({}) is None
