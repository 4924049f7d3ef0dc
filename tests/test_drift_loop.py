"""The closed loop with one writer per artifact: demo drift -> retrain promoted -> drift again.

Regression (issue 21, item 5): re-running ``python -m ml.drift_service`` after the retrain worker
promoted a model used to rebuild ``retrain_triggers`` from scratch, resetting the trigger to
``pending`` while ``retrain_jobs`` said ``promoted``; ``open_detections`` then reported the drift
open forever and the autotuner capped every symbol at level -1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from execution.risk_autotune import ml_inputs
from infra.artifacts import ArtifactStore
from ml.drift_state import open_detections
from tests.conftest import ROOT, run_demo


def _data(logs: Path, name: str) -> dict:
    return json.loads((logs / "cache" / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def looped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    logs = tmp_path_factory.mktemp("loop") / "logs"
    run_demo(logs, "--only", "drift,retrain")
    return logs


def _rerun_drift(logs: Path) -> str:
    env = {**os.environ, "LOGS_DIR": str(logs), "ENV": "dev", "EVENTBUS_URL": "memory://"}
    for var in ("DATA_DIR", "CACHE_DIR"):
        env.pop(var, None)
    proc = subprocess.run(
        [sys.executable, "-m", "ml.drift_service"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_rerunning_the_drift_service_keeps_the_promotion_and_lifts_the_drift_cap(looped: Path) -> None:
    store = ArtifactStore(looped / "cache")
    jobs = _data(looped, "retrain_jobs")
    assert jobs["source"] == "ml.retrain_worker"
    (job,) = jobs["data"]["jobs"]
    assert job["outcome"] == "promoted"
    # right after the retrain, before the drift service ran again: readers take the worker's record
    assert _data(looped, "retrain_triggers")["source"] == "ml.drift_service"
    per, _ = ml_inputs(store, ["BTCUSDT", "ETHUSDT"], max_age_s=10**9)
    assert per["BTCUSDT"]["drift"] is False and per["ETHUSDT"]["drift"] is False

    out = _rerun_drift(looped)
    assert "0 trigger(s) published" in out  # the decided trigger is not sent to the worker again
    triggers = _data(looped, "retrain_triggers")
    assert triggers["source"] == "ml.drift_service"
    (trig,) = triggers["data"]["triggers"]
    assert trig["trigger_id"] == job["trigger_id"]
    assert trig["outcome"] == "promoted" and trig["new_version"] == job["new_version"]
    assert trig["resolved_at"] == job["decided_at"]
    assert _data(looped, "retrain_jobs") == jobs  # the drift service never writes the worker's artifact
    drift = _data(looped, "drift")["data"]
    assert open_detections(drift, triggers["data"]) == []
    assert open_detections(drift) == []  # the detection belongs to the replaced model
    per, sources = ml_inputs(store, ["BTCUSDT", "ETHUSDT"], max_age_s=10**9)
    assert per["BTCUSDT"]["drift"] is False and per["ETHUSDT"]["drift"] is False
    assert sources["drift"]["open_detections"] == []
    # a second re-run changes nothing (idempotent replay)
    _rerun_drift(looped)
    assert _data(looped, "retrain_triggers")["data"] == triggers["data"]


def test_the_promoted_model_starts_from_zero_and_the_stale_history_remains(looped: Path) -> None:
    _rerun_drift(looped)
    (job,) = _data(looped, "retrain_jobs")["data"]["jobs"]
    drift = _data(looped, "drift")["data"]
    assert drift["current_model"] == job["new_version"] == drift["model"]
    models = {m["model"]: m for m in drift["models"]}
    new, stale = models[job["new_version"]], models[job["model_ref"]]
    assert new["status"] == "current" and stale["status"] == "superseded"
    assert new["live_from"] == stale["superseded_at"] == job["decided_at"]
    assert stale["superseded_by"] == job["new_version"]
    # the demo's signals all name the stale model: the promoted version has no trade of its own yet
    assert new["n_trades"] == 0 and new["detections"] == []
    assert new["state"]["n_trades"] == 0 and all(
        new["state"][k] in (0.0, None) for k in new["state"] if k != "n_trades"
    )
    # the stale model keeps its whole history: every check, its detection, its CUSUM above the line
    assert stale["n_trades"] == drift["n_trades"] == 1490
    assert {c["model"] for c in drift["checks"]} == {job["model_ref"]}
    assert len(drift["checks"]) == 14
    (det,) = drift["detections"]
    assert det["model"] == job["model_ref"] and det["trigger_id"] == job["trigger_id"]
