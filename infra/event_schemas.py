"""Payload validation for each bus topic.

:func:`validate_event` returns ``None`` for a valid event or a one-line reason naming the field,
what it must be and what was given; consumers copy invalid events to the topic's dead-letter
stream with that reason (see :meth:`infra.eventbus.Bus.consume`). Unknown extra fields are
allowed (producers may add context); missing required fields, wrong types, non-finite numbers and
out-of-range values are not.

Examples
--------
>>> validate_event("trade.position.update", {"event_id": "e1", "ts": "2025-01-01T00:00:00Z",
...     "schema": "trade.position.update", "order_id": "o1", "status": "OPEN", "unrealized_pnl_usd": -3.0})
>>> validate_event("trade.position.update", {"event_id": "e1", "ts": "2025-01-01T00:00:00Z",
...     "schema": "trade.position.update", "order_id": "o1", "status": "DONE", "unrealized_pnl_usd": 0.0})
"field 'status' must be one of ['CLOSED', 'OPEN']; got 'DONE'"
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from typing import Any

from infra.eventbus import TOPIC_EXECUTION, TOPIC_FEEDBACK, TOPIC_POSITION, TOPIC_RETRAIN, TOPIC_SIGNAL

Check = Callable[[Any], str | None]


def _num(lo: float = -math.inf, hi: float = math.inf, *, lo_open: bool = False) -> Check:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return "a finite number"
        if (v <= lo) if lo_open else (v < lo):
            return f"a number {'>' if lo_open else '>='} {lo:g}"
        if v > hi:
            return f"a number <= {hi:g}"
        return None

    return check


def _str(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() else "a non-empty string"


def _one_of(*allowed: str) -> Check:
    def check(v: Any) -> str | None:
        return None if v in allowed else f"one of {sorted(allowed)}"

    return check


def _vector(v: Any) -> str | None:
    if not isinstance(v, list):
        return "a list of finite numbers"
    for x in v:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            return "a list of finite numbers"
    return None


def _int_or_str(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        return "an integer or a string"
    return None


def _obj(v: Any) -> str | None:
    return None if isinstance(v, dict) else "a JSON object"


def _features(v: Any) -> str | None:
    return None if isinstance(v, (list, dict)) else "a list or a JSON object"


def _ts(v: Any) -> str | None:
    if not isinstance(v, str):
        return "an ISO 8601 timestamp with a timezone"
    try:
        parsed = dt.datetime.fromisoformat(v)
    except ValueError:
        return "an ISO 8601 timestamp with a timezone"
    return None if parsed.tzinfo is not None else "an ISO 8601 timestamp with a timezone"


_CONF = _num(0.0, 1.0)

# topic -> (required fields, optional fields); each field -> check
SCHEMAS: dict[str, tuple[dict[str, Check], dict[str, Check]]] = {
    TOPIC_SIGNAL: (
        {
            "symbol": _str,
            "action": _one_of("BUY", "SELL", "HOLD"),
            "confidence": _CONF,
            "model_version": _str,
        },
        {"top_features": _features, "order_id": _str, "signal_id": _str},
    ),
    TOPIC_EXECUTION: (
        {
            "order_id": _str,
            "symbol": _str,
            "side": _one_of("LONG", "SHORT"),
            "entry_price": _num(0.0, lo_open=True),
            "size_usd": _num(0.0, lo_open=True),
            "confidence": _CONF,
            "multiplier_used": _num(0.0),
            "state": _vector,
        },
        {"route": _str, "signal_id": _str, "model_version": _str},
    ),
    TOPIC_POSITION: (
        {"order_id": _str, "status": _one_of("OPEN", "CLOSED"), "unrealized_pnl_usd": _num()},
        {"realized_pnl_usd": _num(), "mark_price": _num(0.0, lo_open=True), "symbol": _str},
    ),
    TOPIC_FEEDBACK: (
        {
            "order_id": _str,
            "symbol": _str,
            "pnl_usd": _num(),
            "pnl_pct": _num(),
            "duration_mins": _num(0.0),
            "max_drawdown_pct": _num(0.0),
            "sharpe_contribution": _num(),
            "reward": _num(),
            "confidence": _CONF,
            "state": _vector,
            "multiplier_used": _num(0.0),
        },
        {"reward_components": _obj, "opened_at": _ts, "closed_at": _ts},
    ),
    TOPIC_RETRAIN: (
        {"trigger_id": _str, "model": _str, "reason": _str},
        {"drift_info": _obj, "priority": _int_or_str},
    ),
}


def validate_event(topic: str, event: Mapping[str, Any] | None) -> str | None:
    """Return ``None`` when ``event`` is a valid ``topic`` event, else the reason it is not.

    Checks the envelope (``event_id``, ``ts`` with a timezone, ``schema == topic``), then the
    topic's required and optional fields. A closing position update (``status == 'CLOSED'``)
    must carry ``realized_pnl_usd``. Topics without a schema only get the envelope check.
    """
    if not isinstance(event, Mapping):
        return f"event must be a JSON object; got {type(event).__name__}"
    envelope: tuple[tuple[str, Check], ...] = (("event_id", _str), ("ts", _ts))
    for name, check in envelope:
        if name not in event:
            return f"missing required field '{name}'"
        problem = check(event[name])
        if problem:
            return f"field '{name}' must be {problem}; got {event[name]!r}"
    if event.get("schema") != topic:
        return f"field 'schema' must be {topic!r}; got {event.get('schema')!r}"
    spec = SCHEMAS.get(topic)
    if spec is None:
        return None
    required, optional = spec
    for name, check in required.items():
        if name not in event:
            return f"missing required field '{name}'"
        problem = check(event[name])
        if problem:
            return f"field '{name}' must be {problem}; got {event[name]!r}"
    for name, check in optional.items():
        if name in event and event[name] is not None:
            problem = check(event[name])
            if problem:
                return f"field '{name}' must be {problem}; got {event[name]!r}"
    if topic == TOPIC_POSITION and event["status"] == "CLOSED" and event.get("realized_pnl_usd") is None:
        return "missing required field 'realized_pnl_usd' (required when status is 'CLOSED')"
    return None
