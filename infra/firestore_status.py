"""Where the Firestore mirror keeps its state on disk, and a cheap reader for the doctor and dashboard.

The mirror (:mod:`infra.firestore_mirror`) rewrites ``<LOGS_DIR>/firestore/status.json``
atomically after every call; its outbox lives next to it in ``outbox.sqlite3``. This module only
reads those files (standard library only: no Google client import), so the dashboard and the
doctor can show the mirror's health without connecting to Firestore.

Examples
--------
>>> import tempfile, pathlib
>>> from infra.settings import Settings
>>> st = mirror_status(Settings(logs_dir=pathlib.Path(tempfile.mkdtemp())))
>>> st["level"], st["enabled"]
('off', False)
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Literal

from infra.outbox import count_readonly
from infra.safety import prod_write_allowed
from infra.settings import Settings

STATUS_FILE = "status.json"
OUTBOX_FILE = "outbox.sqlite3"

Level = Literal["off", "ok", "warn", "unknown"]


def firestore_dir(settings: Settings) -> Path:
    """``<LOGS_DIR>/firestore``: the mirror's status file and outbox."""
    return settings.logs_dir / "firestore"


def status_path(settings: Settings) -> Path:
    return firestore_dir(settings) / STATUS_FILE


def outbox_path(settings: Settings) -> Path:
    return firestore_dir(settings) / OUTBOX_FILE


def target_of(settings: Settings) -> str:
    """Human description of where the mirror writes."""
    if settings.firestore_emulator_host:
        return f"emulator {settings.firestore_emulator_host}"
    if settings.firestore_project:
        return f"project {settings.firestore_project}"
    return "nowhere (not configured)"


def _age_s(stamp: Any, now: dt.datetime) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        ts = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if ts.tzinfo is None:
        return None
    return (now - ts).total_seconds()


def mirror_status(settings: Settings, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Summarise the Firestore mirror for the doctor and the dashboard; never raises on bad files.

    Returns
    -------
    dict
        ``enabled``, ``target``, ``collection``, ``prod_write_allowed``, ``breaker_state``
        (``closed``/``open``/``half_open``/``None``), ``consecutive_failures``, ``outbox_depth``
        (read live from the outbox file), ``dead_letters``, ``last_success_at``,
        ``last_failure_at``, ``last_error``, ``refused_writes``, ``skipped_writes``,
        ``updated_at``, ``last_success_age_s``, plus ``level`` (``off``: not configured and
        nothing queued; ``unknown``: configured but no job has mirrored yet; ``ok``: breaker
        closed and nothing queued; ``warn``: anything else) and a one-line ``message``.
    """
    now = now or dt.datetime.now(dt.UTC)
    enabled = settings.firestore_enabled
    recorded: dict[str, Any] = {}
    path = status_path(settings)
    status_error = None
    if path.is_file():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                recorded = loaded
            else:
                status_error = f"{path} does not hold a JSON object"
        except (OSError, ValueError) as exc:
            status_error = f"{path} is unreadable ({exc})"
    counts = count_readonly(outbox_path(settings))
    depth, dead = counts if counts is not None else (int(recorded.get("outbox_depth") or 0), 0)
    out: dict[str, Any] = {
        "enabled": enabled,
        "target": target_of(settings),
        "collection": settings.firestore_collection,
        "env": settings.env,
        "prod_write_allowed": prod_write_allowed(settings),
        "breaker_state": recorded.get("breaker_state"),
        "consecutive_failures": int(recorded.get("consecutive_failures") or 0),
        "outbox_depth": depth,
        "dead_letters": dead,
        "last_success_at": recorded.get("last_success_at"),
        "last_failure_at": recorded.get("last_failure_at"),
        "last_error": recorded.get("last_error"),
        "refused_writes": int(recorded.get("refused_writes") or 0),
        "skipped_writes": int(recorded.get("skipped_writes") or 0),
        "updated_at": recorded.get("updated_at"),
        "last_success_age_s": _age_s(recorded.get("last_success_at"), now),
        "status_file": str(path),
    }
    out["level"], out["message"] = _classify(out, status_error)
    return out


def _classify(s: dict[str, Any], status_error: str | None) -> tuple[Level, str]:
    depth = s["outbox_depth"]
    if not s["enabled"]:
        if depth:
            return "warn", (
                f"Firestore mirror is off but {depth} write(s) wait in the outbox; set "
                "FIRESTORE_EMULATOR_HOST or FIRESTORE_PROJECT to deliver them."
            )
        return "off", (
            "Firestore mirror is off: set FIRESTORE_EMULATOR_HOST (emulator) or FIRESTORE_PROJECT "
            "with credentials to mirror artifacts."
        )
    if status_error:
        return "warn", f"Firestore mirror status unknown: {status_error}."
    if s["updated_at"] is None:
        return "unknown", f"Firestore mirror to {s['target']} is configured; no job has mirrored yet."
    problems = []
    if s["breaker_state"] != "closed":
        problems.append(f"circuit {s['breaker_state']}")
    if depth:
        problems.append(f"{depth} write(s) queued in the outbox")
    if s["dead_letters"]:
        problems.append(f"{s['dead_letters']} write(s) rejected as invalid (dead letters)")
    if s["refused_writes"]:
        problems.append(f"{s['refused_writes']} prod write(s) refused (ALLOW_PROD_WRITE not set)")
    if s["skipped_writes"]:
        problems.append(f"{s['skipped_writes']} write(s) skipped (too large for a Firestore document)")
    last_ok = s["last_success_at"] or "never"
    if problems:
        err = f"; last error: {s['last_error']}" if s["last_error"] else ""
        return (
            "warn",
            f"Firestore mirror to {s['target']}: {', '.join(problems)}; last success {last_ok}{err}.",
        )
    return "ok", f"Firestore mirror to {s['target']}: circuit closed, outbox empty, last success {last_ok}."
