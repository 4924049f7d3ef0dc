"""The generated fast acceptors of validate_event agree with the reference checks on any input."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra import event_schemas
from infra.event_schemas import _PY_ACCEPT, SCHEMAS, _reason, acceptor, validate_event
from infra.eventbus import new_event
from tests.test_eventbus import VALID

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
VALID_ALL = {
    **VALID,
    "rl.feedback": {"order_id": "o", "symbol": "BTCUSDT", "pnl_usd": 1.0, "pnl_pct": 0.1, "duration_mins": 5.0,
                    "max_drawdown_pct": 0.0, "sharpe_contribution": 0.2, "reward": 0.1, "confidence": 0.5,
                    "state": [0.5], "multiplier_used": 1.0},
}  # fmt: skip

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["", " ", "\t", "LONG", "SHORT", "OPEN", "CLOSED", "BUY", "x", "2025-01-01T00:00:00Z",
                       "2025-01-01T00:00:00", "2025-13-01T00:00:00Z", "2025-01-01T00:00:00+02:00"])
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=6,
)  # fmt: skip


@st.composite
def mutated_events(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    topic = draw(st.sampled_from(sorted(VALID_ALL)))
    event = new_event(topic, VALID_ALL[topic], ts=T0, event_id="e1")
    required, optional = SCHEMAS[topic]
    names = ["event_id", "ts", "schema", *required, *optional]
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(names))
        if draw(st.booleans()):
            event.pop(name, None)
        else:
            event[name] = draw(values)
    return topic, event


@settings(max_examples=2000, deadline=None)
@given(mutated_events())
def test_fast_path_and_reference_checks_agree(case: tuple[str, dict[str, Any]]) -> None:
    topic, event = case
    assert validate_event(topic, event) == _reason(topic, event)


def test_valid_events_take_the_fast_path_and_invalid_ones_get_the_reference_reason() -> None:
    for topic, payload in VALID_ALL.items():
        event = new_event(topic, payload, ts=T0)
        assert validate_event(topic, event) is None
        assert _reason(topic, event) is None
    event = new_event("trade.execution.res", {**VALID["trade.execution.res"], "size_usd": True}, ts=T0)
    assert (
        validate_event("trade.execution.res", event) == "field 'size_usd' must be a finite number; got True"
    )
    assert validate_event("trade.execution.res", [1, 2]) == "event must be a JSON object; got list"


# -- the compiled acceptors (infra/_accept.c) ------------------------------------------------------


@pytest.fixture(scope="module")
def native() -> dict[str, Callable[[Any], bool]]:
    """The compiled acceptors; skipped locally when the extension is not built, a failure in CI."""
    if not event_schemas._NATIVE_ACCEPT:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("infra._accept is not built: `make setup` must build it in CI (gcc, python3.11-dev)")
        pytest.skip("infra._accept is not built (run `make setup`)")
    return event_schemas._NATIVE_ACCEPT


def test_the_compiled_acceptors_are_the_ones_in_use_when_built(native: dict[str, Any]) -> None:
    assert event_schemas.NATIVE
    assert acceptor("trade.execution.res") is native["trade.execution.res"]
    assert type(native["trade.execution.res"]).__module__ == "infra._accept"


@settings(max_examples=3000, deadline=None)
@given(mutated_events())
def test_compiled_and_generated_acceptors_give_the_same_answer(
    native: dict[str, Any], case: tuple[str, dict[str, Any]]
) -> None:
    topic, event = case
    assert native[topic](event) is _PY_ACCEPT[topic](event)
    if native[topic](event):
        assert _reason(topic, event) is None


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(SCHEMAS)), st.dictionaries(st.text(max_size=12), values, max_size=6) | values)
def test_compiled_acceptors_never_raise_and_reject_what_is_not_a_valid_event(
    native: dict[str, Any], topic: str, event: Any
) -> None:
    answer = native[topic](event)
    assert answer is (type(event) is dict and _reason(topic, event) is None)


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        ("size_usd", 0, False),  # an int at an open bound: exactly, as Python compares
        ("size_usd", 1, True),
        ("size_usd", 5e-324, True),  # the smallest float > 0
        ("size_usd", 0.0, False),
        ("size_usd", -0.0, False),
        ("size_usd", 2**1100, False),  # an int beyond every float
        ("size_usd", True, False),  # a bool is not a number here
        ("size_usd", float("nan"), False),
        ("size_usd", float("inf"), False),
        ("confidence", 1, True),
        ("confidence", 1.0000000000000002, False),
        ("multiplier_used", 0, True),
        ("symbol", "\u3000", False),  # ideographic space: blank (str.isspace)
        ("symbol", "\x1c", False),  # a file separator: also str.isspace
        ("symbol", " \u00e9 ", True),
        ("symbol", "", False),
        ("side", "LONG", True),
        ("side", "long", False),
        ("state", [], True),
        ("state", [1.0, -2.5], True),
        ("state", [1.0, 2], False),  # an int in the vector: the reference path decides (valid)
        ("state", [1.0, float("inf")], False),
        ("state", (1.0,), False),
        ("ts", "2025-01-01T00:00:00+05:30", True),
        ("ts", "2025-01-01T00:00:00", False),  # naive
        ("ts", "2025-02-30T00:00:00Z", False),  # no such day (ValueError)
        ("route", None, True),  # optional and None: not tested
        ("route", " ", False),
        ("schema", "trade.position.update", False),
    ],
)
def test_execution_acceptors_on_known_edge_values(field: str, value: Any, accepted: bool) -> None:
    """The generated acceptor, and the compiled one when it is built (its absence fails in CI above)."""
    event = new_event("trade.execution.res", VALID["trade.execution.res"], ts=T0)
    event[field] = value
    assert _PY_ACCEPT["trade.execution.res"](event) is accepted
    if event_schemas._NATIVE_ACCEPT:
        assert event_schemas._NATIVE_ACCEPT["trade.execution.res"](event) is accepted


@pytest.mark.parametrize("kind", ["generated", "compiled"])
def test_position_acceptors_need_the_realized_pnl_of_a_close(kind: str) -> None:
    table = _PY_ACCEPT if kind == "generated" else event_schemas._NATIVE_ACCEPT
    if not table:
        pytest.skip("infra._accept is not built (run `make setup`)")
    accept = table["trade.position.update"]
    base = new_event(
        "trade.position.update", {"order_id": "o1", "status": "CLOSED", "unrealized_pnl_usd": 0.0}, ts=T0
    )
    assert accept(base) is False
    assert accept({**base, "realized_pnl_usd": None}) is False
    assert accept({**base, "realized_pnl_usd": -2}) is True
    assert accept({**base, "status": "OPEN"}) is True
    assert accept({**base, "status": "OPEN", "mark_price": 0.0}) is False


def test_compiled_acceptor_keeps_reference_counts(native: dict[str, Any]) -> None:
    """No reference leaked or lost: the event, its values and the parsed timezone keep their counts."""
    event = new_event("trade.execution.res", {**VALID["trade.execution.res"], "route": "binance"}, ts=T0)
    naive = {**event, "ts": "2025-01-01T00:00:00"}
    bad_ts = {**event, "ts": "not a time"}
    tz = dt.datetime.fromisoformat(event["ts"]).tzinfo
    watched = [event, naive, bad_ts, tz, *event.values()]
    before = [sys.getrefcount(o) for o in watched]
    accept = native["trade.execution.res"]
    for _ in range(10_000):
        assert accept(event)
        assert not accept(naive)
        assert not accept(bad_ts)
    assert [sys.getrefcount(o) for o in watched] == before


def test_compiled_acceptor_rejects_a_malformed_table_with_the_field_named() -> None:
    accept_mod = pytest.importorskip("infra._accept")
    with pytest.raises(TypeError, match="bounds of field 'x' must be floats"):
        accept_mod.Acceptor((("x", True, accept_mod.K_NUM, 0, 1.0),))
    with pytest.raises(TypeError, match="values of field 'side' must be a frozenset"):
        accept_mod.Acceptor((("side", True, accept_mod.K_ENUM, {"LONG"}, None),))
    with pytest.raises(ValueError, match="field 'y' has unknown kind 99"):
        accept_mod.Acceptor((("y", True, 99, None, None),))
    with pytest.raises(TypeError, match="'when' must be None or a"):
        accept_mod.Acceptor((), ("status", "CLOSED"))
    with pytest.raises(TypeError, match="exactly one positional argument"):
        accept_mod.Acceptor(())()


def test_pure_python_switch_turns_the_compiled_acceptors_off() -> None:
    code = (
        "from infra import event_schemas as s; from tests.test_eventbus import VALID; "
        "from infra.eventbus import new_event; import datetime as dt; "
        "e = new_event('trade.execution.res', VALID['trade.execution.res'], ts=dt.datetime.now(dt.UTC)); "
        "print(s.NATIVE, type(s.acceptor('trade.execution.res')).__name__, s.validate_event(e.get('schema'), e))"
    )
    env = {**os.environ, "EVENT_SCHEMAS_PURE_PYTHON": "1"}
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "function", "None"]
    env["EVENT_SCHEMAS_PURE_PYTHON"] = "maybe"
    bad = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True)
    assert bad.returncode != 0
    assert "EVENT_SCHEMAS_PURE_PYTHON must be one of 1/0/true/false" in bad.stderr and "'maybe'" in bad.stderr


def test_compiled_acceptor_survives_a_check_that_empties_the_event() -> None:
    """A Python check that drops the dict's reference to its value must not free it under the acceptor."""
    accept_mod = pytest.importorskip("infra._accept")
    event: dict[str, Any] = {"x": [1.5], "y": "kept?"}
    seen: list[Any] = []

    def check(v: Any) -> None:
        event.clear()
        seen.append(list(v))  # v is still alive and intact

    accept = accept_mod.Acceptor(
        (("x", True, accept_mod.K_CALL, check, None), ("y", False, accept_mod.K_STR, None, None))
    )
    assert accept(event) is True  # 'y' is gone by then: optional, not tested
    assert seen == [[1.5]]
