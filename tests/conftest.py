"""Shared fixtures. Part-specific server fixtures live in their own modules (redis_server.py, ...)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample" / "binance_usdm"


@pytest.fixture
def logs_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point LOGS_DIR (and so DATA_DIR, CACHE_DIR, RESEARCH_DIR) at a fresh temp folder."""
    logs = tmp_path / "logs"
    monkeypatch.setenv("LOGS_DIR", str(logs))
    for var in ("DATA_DIR", "CACHE_DIR", "RESEARCH_DIR", "ENV", "ALLOW_PROD_WRITE", "EVENTBUS_URL"):
        monkeypatch.delenv(var, raising=False)
    for var in ("FIRESTORE_EMULATOR_HOST", "FIRESTORE_PROJECT", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    return logs


def run_demo(logs: Path, *args: str, timeout: float = 600.0) -> str:
    """Run ``python -m scripts.demo`` into ``logs`` in a subprocess; return its output."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "LOGS_DIR": str(logs), "ENV": "dev", "EVENTBUS_URL": "memory://"}
    for var in ("DATA_DIR", "CACHE_DIR", "RESEARCH_DIR", "FIRESTORE_EMULATOR_HOST", "FIRESTORE_PROJECT"):
        env.pop(var, None)
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.demo", "--quiet", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise AssertionError(f"demo failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@pytest.fixture(scope="session")
def demo_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete demo run (data and every pipeline step) shared by the end-to-end tests."""
    logs = tmp_path_factory.mktemp("demo") / "logs"
    run_demo(logs)
    return logs
