"""JSON encoding that every artifact uses.

Strict JSON has no NaN or infinity, and many readers (JavaScript's ``JSON.parse``, Firestore,
``jq``) reject Python's ``NaN`` token. We write a non-finite float as a tagged object
``{"$float": "NaN"}``, ``{"$float": "Infinity"}`` or ``{"$float": "-Infinity"}``: valid JSON for
every reader, unambiguous (a genuine string ``"NaN"`` stays a string), and decoded back to the
float by :func:`loads`. NumPy scalars and arrays, pandas timestamps and ``datetime`` objects are
converted to plain JSON (timestamps as ISO 8601 strings in UTC).

Examples
--------
>>> loads(dumps({"x": float("nan"), "y": [1.0, float("inf")]}))["y"]
[1.0, inf]
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

from infra.timeutil import utc_iso

_TAG = "$float"
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _float(x: float) -> Any:
    if math.isfinite(x):
        return x
    if math.isnan(x):
        return {_TAG: "NaN"}
    return {_TAG: "Infinity" if x > 0 else "-Infinity"}


def to_jsonable(obj: Any) -> Any:
    """Recursively convert ``obj`` into plain JSON types (see the module docstring)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, bool):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _float(float(obj))
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, dt.datetime):
        if obj.tzinfo is None:
            raise ValueError(f"naive datetime {obj!r} cannot be written: timestamps must be UTC-aware")
        return utc_iso(obj)
    if isinstance(obj, dt.date):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    iso = getattr(obj, "isoformat", None)  # pandas.Timestamp
    if callable(iso):
        return to_jsonable(obj.to_pydatetime()) if hasattr(obj, "to_pydatetime") else iso()
    if hasattr(obj, "item"):
        return to_jsonable(obj.item())
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable: {obj!r}")


def _hook(d: dict[str, Any]) -> Any:
    if len(d) == 1 and _TAG in d and d[_TAG] in _NONFINITE:
        return _NONFINITE[d[_TAG]]
    return d


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """Serialise ``obj`` to strict JSON (``allow_nan=False``) with tagged non-finite floats."""
    return json.dumps(to_jsonable(obj), allow_nan=False, indent=indent, sort_keys=False)


def loads(text: str | bytes) -> Any:
    """Parse JSON written by :func:`dumps`, restoring tagged non-finite floats."""
    return json.loads(text, object_hook=_hook)


def lookup(data: Any, *paths: str) -> Any:
    """First value found at one of the dotted ``paths`` in nested dicts, else ``None``.

    Examples
    --------
    >>> lookup({"a": {"b": 1}}, "x", "a.b")
    1
    """
    for path in paths:
        cur = data
        for part in path.split("."):
            if isinstance(cur, Mapping) and part in cur:
                cur = cur[part]
            else:
                cur = None
                break
        if cur is not None:
            return cur
    return None
