"""The bus's wire format gives exactly the standard library's answers, only faster."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra import wire

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)  # beyond 64 bits orjson refuses: fallback
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)  # includes "null", lone surrogates and non-ASCII
)
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


def _stdlib(obj: Any) -> tuple[str, Any]:
    try:
        return "ok", json.loads(json.dumps(obj, allow_nan=False))
    except (ValueError, TypeError) as exc:
        return type(exc).__name__, None


def _ours(obj: Any) -> tuple[str, Any]:
    try:
        return "ok", json.loads(wire.encode(obj))
    except (ValueError, TypeError) as exc:
        return type(exc).__name__, None


@settings(max_examples=400, deadline=None)
@given(json_like)
def test_encode_accepts_and_refuses_what_the_standard_library_does(obj: Any) -> None:
    assert _ours(obj) == _stdlib(obj)


in_64_bits = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(in_64_bits)
def test_decode_reads_the_standard_librarys_text(obj: Any) -> None:
    text = json.dumps(obj)  # allow_nan: the stdlib's NaN/Infinity tokens must still be read
    ours, theirs = wire.decode(text), json.loads(text)
    assert json.dumps(ours) == json.dumps(theirs)  # NaN-tolerant equality


def test_known_texts() -> None:
    assert wire.encode({"a": 1, "b": [1.5, True], "c": "é"}) == '{"a":1,"b":[1.5,true],"c":"é"}'
    assert wire.encode({"n": None, "c": "é"}) == '{"n":null,"c":"\\u00e9"}'  # the stdlib's text
    # the one documented difference: beyond 64 bits an integer is read as the nearest float
    assert wire.decode('{"big": -9223372036854775809}') == {"big": float(-(2**63) - 1)}
    assert wire.encode_bytes({"x": -0.25}) == b'{"x":-0.25}'
    assert wire.decode(b'{"x": 1e400}') == {"x": math.inf}  # orjson refuses, the stdlib reads inf
    assert math.isnan(wire.decode('{"x": NaN}')["x"])
    with pytest.raises(json.JSONDecodeError, match="Expecting property name"):
        wire.decode("{not json")


def test_non_finite_and_unknown_types_are_refused_like_the_standard_library() -> None:
    for bad in (math.nan, -math.inf, [1.0, {"deep": math.inf}]):
        with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
            wire.encode({"x": bad})
    with pytest.raises(TypeError, match="not JSON serializable"):
        wire.encode({"ts": dt.datetime(2025, 1, 1, tzinfo=dt.UTC)})

    @dataclasses.dataclass
    class Point:
        x: float

    with pytest.raises(TypeError, match="not JSON serializable"):
        wire.encode(Point(1.0))


def test_subclasses_of_builtins_are_written_as_the_standard_library_writes_them() -> None:
    class Side(enum.IntEnum):
        LONG = 1

    obj = {"side": Side.LONG, "f": np.float64(0.5), 1: "int key"}
    assert (
        json.loads(wire.encode(obj)) == json.loads(json.dumps(obj)) == {"side": 1, "f": 0.5, "1": "int key"}
    )
