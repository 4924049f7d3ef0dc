"""UTC time, once: the current time, parsing and formatting of ISO 8601 timestamps.

Every timestamp the platform writes or reads is timezone-aware UTC (DESIGN.md, data contracts);
text is ISO 8601 with a ``Z`` suffix. Durations come from event timestamps, never from the wall
clock, so :func:`utcnow` is used only to stamp what a job writes.

Examples
--------
>>> utc_iso(parse_utc("2025-01-01T04:00:00+02:00"))
'2025-01-01T02:00:00Z'
>>> parse_utc("2025-01-01T00:00:00")
Traceback (most recent call last):
...
ValueError: timestamp '2025-01-01T00:00:00' has no timezone
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


def parse_utc(text: str) -> dt.datetime:
    """Parse an ISO 8601 timestamp that names its timezone; return it in UTC.

    Raises ``ValueError`` for text that is not ISO 8601 or has no timezone (a naive time is
    ambiguous and never guessed).
    """
    ts = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no timezone")
    return ts.astimezone(dt.UTC)


def utc_iso(ts: Any) -> str:
    """A timezone-aware ``datetime`` (or pandas ``Timestamp``) as ISO 8601 UTC with a ``Z``.

    Raises ``ValueError`` for a naive time.

    >>> utc_iso(dt.datetime(2025, 1, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    '2025-01-01T00:00:00Z'
    """
    if getattr(ts, "tzinfo", None) is None:
        raise ValueError(f"timestamp {ts!r} is naive; a timezone-aware UTC time is required")
    return ts.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
