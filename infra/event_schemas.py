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
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from infra.eventbus import TOPIC_EXECUTION, TOPIC_FEEDBACK, TOPIC_POSITION, TOPIC_RETRAIN, TOPIC_SIGNAL
from infra.settings import env_flag

Check = Callable[[Any], str | None]


_FAST_NUM, _FAST_STR, _FAST_ENUM = 1, 2, 3
_FAST: dict[Check, tuple[int, Any, Any]] = {}
"""Fast acceptance tests of the common checks: kind, and bounds or allowed values."""


def _num(lo: float = -math.inf, hi: float = math.inf, *, lo_open: bool = False) -> Check:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return "a finite number"
        if (v <= lo) if lo_open else (v < lo):
            return f"a number {'>' if lo_open else '>='} {lo:g}"
        if v > hi:
            return f"a number <= {hi:g}"
        return None

    fast_lo = math.nextafter(lo, math.inf) if lo_open else lo
    _FAST[check] = (_FAST_NUM, max(fast_lo, -sys.float_info.max), min(hi, sys.float_info.max))
    return check


def _str(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() else "a non-empty string"


def _one_of(*allowed: str) -> Check:
    def check(v: Any) -> str | None:
        return None if v in allowed else f"one of {sorted(allowed)}"

    _FAST[check] = (_FAST_ENUM, frozenset(allowed), None)
    return check


_MAX_FLOAT = sys.float_info.max
_MIN_FLOAT = -_MAX_FLOAT


def _vector(v: Any) -> str | None:
    if not isinstance(v, list):
        return "a list of finite numbers"
    for x in v:
        if type(x) is float and _MIN_FLOAT <= x <= _MAX_FLOAT:
            continue
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


_MISSING = object()
_STR_FAST = (_FAST_STR, None, None)

# field kinds of an acceptor table (the K_* constants of infra/_accept.c)
_K_NUM, _K_STR, _K_ENUM, _K_VECTOR, _K_TS, _K_EQ, _K_CALL = range(1, 8)

Row = tuple[str, bool, int, Any, Any]
"""One field of an acceptor table: ``(name, required, kind, a, b)``."""


def _acceptor_table(
    topic: str, required: dict[str, Check], optional: dict[str, Check]
) -> tuple[tuple[Row, ...], tuple[str, str, str] | None]:
    """The fast-path tests of ``topic``'s events as data, for both acceptors.

    One row ``(name, required, kind, a, b)`` per field, the envelope first: ``_K_NUM`` with finite
    float bounds ``a <= v <= b`` (exact ``float`` or ``int``), ``_K_STR`` (exact ``str``, not
    blank), ``_K_ENUM`` (exact ``str`` in the frozenset ``a``), ``_K_VECTOR`` (exact ``list`` of
    exact finite floats), ``_K_TS`` (parsed by ``a`` to an aware datetime), ``_K_EQ`` (``== a``),
    ``_K_CALL`` (the reference check ``a`` returns None). Then the condition ``(field, value,
    other)``: when ``event[field] == value``, ``other`` must be present (a CLOSED update's realized
    PnL). :func:`_acceptor_source` writes it as Python; ``infra/_accept.c`` reads it as it is.
    """
    rows: list[Row] = [
        ("event_id", True, _K_STR, None, None),
        ("ts", True, _K_TS, dt.datetime.fromisoformat, None),
        ("schema", True, _K_EQ, topic, None),
    ]
    for is_required, fields in ((True, required), (False, optional)):
        for name, check in fields.items():
            kind, a, b = _STR_FAST if check is _str else _FAST.get(check, (0, None, None))
            if check is _vector:
                rows.append((name, is_required, _K_VECTOR, None, None))
            elif kind == _FAST_NUM:
                rows.append((name, is_required, _K_NUM, a, b))  # floats (see _num)
            elif kind == _FAST_STR:
                rows.append((name, is_required, _K_STR, None, None))
            elif kind == _FAST_ENUM:
                rows.append((name, is_required, _K_ENUM, a, None))  # a frozenset
            else:
                rows.append((name, is_required, _K_CALL, check, None))
    when = ("status", "CLOSED", "realized_pnl_usd") if topic == TOPIC_POSITION else None
    return tuple(rows), when


def _acceptor_source(rows: tuple[Row, ...], when: tuple[str, str, str] | None) -> tuple[str, dict[str, Any]]:
    """Source of a function that returns True when an event passes the table's tests.

    One boolean expression per field, specialised to its kind (exact ``float``/``int`` type and
    finite bounds for numbers, exact ``str`` for strings and enums, an inlined loop for the state
    vector), required fields read by subscript, so a valid event is accepted without a call per
    field. Anything it does not accept -- including every invalid event -- goes to the reference
    checks, which build the reason. ``False`` never means invalid, only "not accepted on the fast
    path".
    """
    names: dict[str, Any] = {"_MAXF": _MAX_FLOAT, "_MINF": _MIN_FLOAT}
    # required fields by subscript (a missing one is a KeyError), optional ones by get
    lines = ["def accept(e):", "    g = e.get", "    try:"]
    optional_lines = []
    for i, (name, is_required, kind, a, b) in enumerate(rows):
        if kind == _K_VECTOR:  # inlined loop; exact floats only (anything else: reference path)
            body = [
                "if type(v) is not list: return False",
                "for x in v:",
                "    if type(x) is not float or not (_MINF <= x <= _MAXF): return False",
            ]
        else:
            if kind == _K_NUM:
                names[f"_lo{i}"], names[f"_hi{i}"] = a, b
                cond = f"((t := type(v)) is float or t is int) and _lo{i} <= v <= _hi{i}"
            elif kind == _K_STR:
                cond = "type(v) is str and v and not v.isspace()"
            elif kind == _K_ENUM:
                names[f"_in{i}"] = a
                cond = f"type(v) is str and v in _in{i}"
            elif kind == _K_TS:  # a ValueError from the parser: not accepted (the except below)
                names[f"_parse{i}"] = a
                cond = f"type(v) is str and _parse{i}(v).tzinfo is not None"
            elif kind == _K_EQ:
                names[f"_eq{i}"] = a
                cond = f"v == _eq{i}"
            else:
                names[f"_check{i}"] = a
                cond = f"_check{i}(v) is None"
            body = [f"if not ({cond}): return False"]
        if is_required:
            lines.append(f"        v = e[{name!r}]")
            lines.extend("        " + line for line in body)
        else:
            optional_lines.append(f"        v = g({name!r})")
            optional_lines.append("        if v is not None:")
            optional_lines.extend("            " + line for line in body)
    lines.extend(optional_lines)
    if when is not None:
        field, value, other = when
        lines.append(f"        if g({field!r}) == {value!r} and g({other!r}) is None: return False")
    lines += ["    except (KeyError, ValueError):", "        return False", "    return True"]
    return "\n".join(lines) + "\n", names


def _build_acceptor(topic: str) -> Callable[[dict[str, Any]], bool]:
    source, names = _acceptor_source(*_acceptor_table(topic, *SCHEMAS[topic]))
    exec(compile(source, f"<acceptor of {topic}>", "exec"), names)  # generated from SCHEMAS only
    accept: Callable[[dict[str, Any]], bool] = names["accept"]
    return accept


def _native_acceptor(topic: str) -> Callable[[dict[str, Any]], bool] | None:
    """The compiled acceptor of ``topic``, or None when ``infra._accept`` is not built."""
    try:
        from infra import _accept
    except ImportError:
        return None
    accept: Callable[[dict[str, Any]], bool] = _accept.Acceptor(*_acceptor_table(topic, *SCHEMAS[topic]))
    return accept


_PY_ACCEPT: dict[str, Callable[[dict[str, Any]], bool]] = {t: _build_acceptor(t) for t in SCHEMAS}
"""The generated Python acceptors (the fallback, and the compiled ones' reference in the tests)."""
_NATIVE_ACCEPT = {t: a for t in SCHEMAS if (a := _native_acceptor(t)) is not None}
"""The compiled acceptors; empty when the extension is not built."""
NATIVE = not env_flag(os.environ, "EVENT_SCHEMAS_PURE_PYTHON") and bool(_NATIVE_ACCEPT)
"""True when :func:`validate_event` and :func:`acceptor` use the compiled acceptors.

Build them with ``make setup`` (``python setup.py build_ext --inplace``; needs a C compiler and the
Python headers); ``EVENT_SCHEMAS_PURE_PYTHON=1`` turns them off. Both give the same answers."""
_ACCEPT: dict[str, Callable[[dict[str, Any]], bool]] = _NATIVE_ACCEPT if NATIVE else _PY_ACCEPT


def validate_event(topic: str, event: Mapping[str, Any] | None) -> str | None:
    """Return ``None`` when ``event`` is a valid ``topic`` event, else the reason it is not.

    Checks the envelope (``event_id``, ``ts`` with a timezone, ``schema == topic``), then the
    topic's required and optional fields. A closing position update (``status == 'CLOSED'``)
    must carry ``realized_pnl_usd``. Topics without a schema only get the envelope check.

    A valid event of a known topic is accepted by an acceptor built from :data:`SCHEMAS`'s field
    table (:func:`_acceptor_table`): the compiled one when ``infra._accept`` is built (about
    0.2 us for an execution, see :data:`NATIVE`), else generated Python (about 0.75 us). The
    reference checks below run only when it does not accept, and build the reason.
    ``tests/test_event_schemas.py`` checks that all three agree.
    """
    accept = _ACCEPT.get(topic)
    if accept is not None and type(event) is dict and accept(event):
        return None
    return _reason(topic, event)


def acceptor(topic: str) -> Callable[[dict[str, Any]], bool]:
    """The fast-path test behind :func:`validate_event` for ``topic``, for a consumer's hot loop.

    ``acceptor(topic)(event)`` is True only when ``event`` (a ``dict``) is valid; False means
    "call :func:`validate_event` for the verdict and the reason", never "invalid". It does not
    raise on any JSON value.

    Raises
    ------
    KeyError
        When ``topic`` has no schema.
    """
    return _ACCEPT[topic]


def _reason(topic: str, event: Mapping[str, Any] | None) -> str | None:
    """The reference checks: ``None`` or the first problem, in field order."""
    if not isinstance(event, Mapping):
        return f"event must be a JSON object; got {type(event).__name__}"
    envelope: tuple[tuple[str, Check], ...] = (("event_id", _str), ("ts", _ts))
    for name, check in envelope:
        v = event.get(name)
        if v is None:
            return f"missing required field '{name}'"
        problem = check(v)
        if problem:
            return f"field '{name}' must be {problem}; got {v!r}"
    if event.get("schema") != topic:
        return f"field 'schema' must be {topic!r}; got {event.get('schema')!r}"
    spec = SCHEMAS.get(topic)
    if spec is None:
        return None
    required, optional = spec
    for name, check in required.items():
        v = event.get(name, _MISSING)
        if v is _MISSING:
            return f"missing required field '{name}'"
        problem = check(v)
        if problem:
            return f"field '{name}' must be {problem}; got {v!r}"
    for name, check in optional.items():
        v = event.get(name)
        if v is None:
            continue
        problem = check(v)
        if problem:
            return f"field '{name}' must be {problem}; got {v!r}"
    if topic == TOPIC_POSITION and event["status"] == "CLOSED" and event.get("realized_pnl_usd") is None:
        return "missing required field 'realized_pnl_usd' (required when status is 'CLOSED')"
    return None
