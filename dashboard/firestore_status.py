"""One status line for the Firestore mirror: circuit state, outbox depth, last success.

Cheap by construction: it reads ``<LOGS_DIR>/firestore/status.json`` and counts the outbox rows
through :func:`infra.firestore_status.mirror_status`; it never imports the Google client and
never connects to Firestore, so a Firestore outage cannot slow the dashboard down.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import loading
from infra.firestore_status import mirror_status


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} d ago"


def format_status_line(status: dict[str, Any]) -> tuple[str, str]:
    """``(level, markdown)`` for a :func:`~infra.firestore_status.mirror_status` dict.

    Examples
    --------
    >>> format_status_line({"level": "off", "message": "Firestore mirror is off."})
    ('off', 'Firestore mirror is off.')
    """
    level = str(status.get("level", "unknown"))
    if level in ("off", "unknown"):
        return level, str(status.get("message", ""))
    parts = [
        f"Firestore mirror → {status.get('target')}",
        f"circuit **{status.get('breaker_state')}**",
        f"outbox {status.get('outbox_depth', 0)}",
        f"last success {_age(status.get('last_success_age_s'))}",
    ]
    if status.get("dead_letters"):
        parts.append(f"{status['dead_letters']} dead letter(s)")
    if status.get("refused_writes"):
        parts.append(f"{status['refused_writes']} prod write(s) refused")
    line = " · ".join(parts)
    if level == "warn" and status.get("last_error"):
        line += f" — last error: `{str(status['last_error'])[:160]}`"
    return level, line


def render_status_line() -> None:
    """Show the mirror's status as one caption (``st.warning`` when something needs attention)."""
    level, line = format_status_line(mirror_status(loading.settings()))
    if level == "warn":
        st.warning(line, icon=":material/warning:")
    else:
        st.caption(line)
