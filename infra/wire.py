"""The bus's wire format: strict JSON text, encoded and decoded fast.

Event payloads and consumer state travel as JSON text (a Redis stream field, a hash value).
The standard library's encoder and decoder cost about 4.5 us each for an execution event;
orjson does the same work in 0.35 us and 1.2 us (``bench/bench_feedback.py``), and the bus does
it several times per trade. The results must stay those of ``json.dumps(obj, allow_nan=False)``
and ``json.loads(text)``, so orjson is only the fast path:

* :func:`encode` falls back to the standard library when orjson refuses the object (a type it
  does not know, an integer beyond 64 bits, a non-string key, a ``datetime``, a dataclass, a
  subclass of a built-in type) and whenever its output contains ``null``: orjson writes NaN and
  infinity as ``null``, so that case is handed to ``json.dumps(..., allow_nan=False)``, which
  raises ``ValueError`` for a non-finite float exactly as before, and otherwise writes the same
  ``null`` for ``None``.
* :func:`decode` falls back to ``json.loads`` when orjson refuses the text, so the standard
  library's answer (its ``NaN`` and ``Infinity`` tokens, its error message) is kept. One
  difference remains: an integer literal outside the 64-bit range is read as the nearest float
  (the standard library keeps it exact). No field of any event is such an integer, and finding
  one in the text first would cost three times the decoding itself.

The text differs from the standard library's only in spacing and, on the fast path, in writing
non-ASCII characters as UTF-8 rather than ``\\u`` escapes; both parse to the same object.

Examples
--------
>>> encode({"order_id": "o-1", "pnl": -1.5, "state": [0.7, None]})
'{"order_id":"o-1","pnl":-1.5,"state":[0.7,null]}'
>>> decode('{"x": NaN}')["x"]
nan
>>> encode({"x": float("inf")})
Traceback (most recent call last):
...
ValueError: Out of range float values are not JSON compliant
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_dumps = orjson.dumps
_loads = orjson.loads
_Refused = orjson.JSONEncodeError
_Unreadable = orjson.JSONDecodeError


def encode(obj: Any) -> str:
    """``json.dumps(obj, allow_nan=False)``, compact and fast (see the module docstring).

    Raises
    ------
    ValueError
        For a NaN or infinite float anywhere in ``obj``.
    TypeError
        For an object JSON cannot represent.
    """
    return encode_bytes(obj).decode()


def encode_bytes(obj: Any) -> bytes:
    """:func:`encode` as UTF-8 bytes (what the in-process bus stores)."""
    try:
        raw = _dumps(obj, option=_OPTIONS)
    except _Refused:
        return _strict(obj).encode()
    if b"null" in raw:  # a None, a NaN or an infinity: only the standard library tells them apart
        return _strict(obj).encode()
    return raw


def _strict(obj: Any) -> str:
    return json.dumps(obj, allow_nan=False, separators=(",", ":"))


def decode(text: str | bytes) -> Any:
    """``json.loads(text)``, fast (see the module docstring).

    Raises
    ------
    json.JSONDecodeError
        For text that is not JSON (the standard library's message).
    """
    try:
        return _loads(text)
    except _Unreadable:
        return json.loads(text)
