"""The demo's closed loop (drift -> trigger -> retrain -> promotion) and the rollback command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_demo


@pytest.mark.slow
def test_demo_closes_the_loop_and_rollback_restores_the_stale_model(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    out = run_demo(logs, "--only", "drift,retrain")
    assert "retrain" in out
    art = json.loads((logs / "cache" / "retrain.json").read_text())["data"]
    assert not art["fallback_trigger"]  # the trigger came from the drift step over the bus
    w = art["windows"]
    assert w["during_drift"]["ece"] > 2 * w["before_drift"]["ece"]  # drift hurts calibration
    assert w["after_retrain"]["ece"] < 0.5 * w["during_drift"]["ece"]  # the retrain restores it
    assert w["after_retrain"]["ece"] < w["after_retrain_stale"]["ece"]
    assert w["after_retrain"]["brier"] < w["after_retrain_stale"]["brier"]
    stale, new = art["versions"][0]["version"], art["versions"][1]["version"]
    assert art["current_version"] == new != stale
    jobs = json.loads((logs / "cache" / "retrain_jobs.json").read_text())["data"]["jobs"]
    assert [j["outcome"] for j in jobs] == ["promoted"]  # the worker's own record (one writer each)

    env = {**os.environ, "LOGS_DIR": str(logs), "ENV": "prod"}
    env.pop("ALLOW_PROD_WRITE", None)
    cmd = [sys.executable, "-m", "ml.retrain_worker", "--rollback"]
    refused = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "ALLOW_PROD_WRITE" in refused.stderr
    done = subprocess.run(
        cmd, cwd=ROOT, env={**env, "ENV": "dev"}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert f"current version is now {stale}" in done.stdout
    pointer = json.loads((logs / "models" / "signal-model" / "current.json").read_text())
    assert pointer["current"] == stale and pointer["events"][-1]["from"] == new
