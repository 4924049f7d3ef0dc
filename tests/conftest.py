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
