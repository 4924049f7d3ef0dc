"""The mirror's status reader (doctor, dashboard) and the dashboard's status line."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.firestore_status import format_status_line
from infra.firestore_status import mirror_status, outbox_path, status_path
from infra.outbox import Outbox
from infra.settings import Settings

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


def make_settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(logs_dir=tmp_path / "logs", **kw)  # type: ignore[arg-type]


def write_status(settings: Settings, **fields: object) -> None:
    path = status_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = {"breaker_state": "closed", "consecutive_failures": 0, "updated_at": "2024-06-01T11:59:00Z"}
    path.write_text(json.dumps({**base, **fields}))


def test_off_when_not_configured(tmp_path: Path) -> None:
    st = mirror_status(make_settings(tmp_path), now=NOW)
    assert (st["enabled"], st["level"], st["outbox_depth"]) == (False, "off", 0)
    assert "FIRESTORE_EMULATOR_HOST" in st["message"]


def test_off_but_queued_writes_warn(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    Outbox(outbox_path(s)).append("a", "2024-01-01T00:00:00Z", "{}")
    st = mirror_status(s, now=NOW)
    assert (st["level"], st["outbox_depth"]) == ("warn", 1)
    assert "1 write(s) wait in the outbox" in st["message"]


def test_configured_but_never_run_is_unknown(tmp_path: Path) -> None:
    st = mirror_status(make_settings(tmp_path, firestore_emulator_host="127.0.0.1:1"), now=NOW)
    assert st["level"] == "unknown"
    assert "no job has mirrored yet" in st["message"]


def test_ok_status_with_ages(tmp_path: Path) -> None:
    s = make_settings(tmp_path, firestore_project="proj")
    write_status(s, last_success_at="2024-06-01T11:55:00Z")
    st = mirror_status(s, now=NOW)
    assert st["level"] == "ok"
    assert st["last_success_age_s"] == 300.0
    assert st["target"] == "project proj"
    level, line = format_status_line(st)
    assert level == "ok"
    assert "circuit **closed**" in line
    assert "outbox 0" in line
    assert "last success 5 min ago" in line


def test_open_circuit_with_queue_warns_with_the_live_outbox_depth(tmp_path: Path) -> None:
    s = make_settings(tmp_path, firestore_emulator_host="127.0.0.1:1")
    box = Outbox(outbox_path(s))
    for i in range(3):
        box.append(f"a{i}", "2024-01-01T00:00:00Z", "{}")
    write_status(s, breaker_state="open", outbox_depth=1, last_error="RetryError: Timeout of 1.4s exceeded")
    st = mirror_status(s, now=NOW)
    assert (st["level"], st["outbox_depth"], st["breaker_state"]) == ("warn", 3, "open")
    assert "circuit open, 3 write(s) queued in the outbox" in st["message"]
    assert "last success never" in st["message"]
    level, line = format_status_line(st)
    assert level == "warn"
    assert "last error: `RetryError" in line


def test_corrupt_status_file_is_reported_not_raised(tmp_path: Path) -> None:
    s = make_settings(tmp_path, firestore_emulator_host="127.0.0.1:1")
    status_path(s).parent.mkdir(parents=True)
    status_path(s).write_text("{not json")
    st = mirror_status(s, now=NOW)
    assert st["level"] == "warn"
    assert "unreadable" in st["message"]


@pytest.mark.parametrize("module", ["dashboard.firestore_status", "infra.firestore_status"])
def test_status_readers_do_not_import_google(module: str) -> None:
    code = f"import sys, {module}; print(any(m.startswith('google.cloud') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
