"""The five event contracts (infra.contracts.events): bounds, envelope, reasons naming the field path."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.bus import TOPICS, new_event
from infra.contracts import events as contracts
from infra.contracts.events import EVENT_TYPES, EventError, decode_event, encode_event, validate_event

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
VALID = {
    "trade.execution.res": {"order_id": "o", "symbol": "BTCUSDT", "side": "LONG", "entry_price": 1.0,
                            "size_usd": 10.0, "confidence": 0.5, "multiplier_used": 1.0, "state": [0.1]},
    "trade.position.update": {"order_id": "o", "status": "CLOSED", "unrealized_pnl_usd": 0.0, "realized_pnl_usd": 1.0},
    "trade.signal.v5": {"symbol": "BTCUSDT", "action": "BUY", "confidence": 0.6, "model_version": "v5"},
    "model.retrain.trigger": {"trigger_id": "t", "model": "m", "reason": "drift", "priority": "high"},
    "rl.feedback": {"order_id": "o", "symbol": "BTCUSDT", "pnl_usd": 1.0, "pnl_pct": 0.1, "duration_mins": 5.0,
                    "max_drawdown_pct": 0.0, "sharpe_contribution": 0.2, "reward": 0.1, "confidence": 0.5,
                    "state": [0.5], "multiplier_used": 1.0},
}  # fmt: skip


def raw(topic: str, **change: Any) -> bytes:
    event = new_event(topic, VALID[topic], ts=T0, event_id="e1")
    for k, v in change.items():
        if v is _DROP:
            event.pop(k)
        else:
            event[k] = v
    return json.dumps(event).encode()


_DROP = object()


def reason(topic: str, data: bytes) -> str | None:
    try:
        decode_event(topic, data)
    except EventError as exc:
        return str(exc)
    return None


def test_the_contracts_cover_the_bus_topics_under_the_same_names() -> None:
    assert sorted(EVENT_TYPES) == sorted(TOPICS)
    for topic, t in EVENT_TYPES.items():
        assert t.__struct_config__.tag == topic


@pytest.mark.parametrize("topic", sorted(VALID))
def test_valid_events_decode_and_round_trip(topic: str) -> None:
    ev = decode_event(topic, raw(topic))
    assert ev.event_id == "e1" and ev.ts == T0
    again = decode_event(topic, encode_event(ev))
    assert again == ev
    assert json.loads(encode_event(ev))["schema"] == topic  # the tag is always written


def test_extra_fields_are_ignored_and_missing_ones_are_named() -> None:
    ev = decode_event("trade.execution.res", raw("trade.execution.res", extra={"a": [1, 2]}))
    assert ev.size_usd == 10.0
    got = reason("trade.execution.res", raw("trade.execution.res", size_usd=_DROP))
    assert got == "Object missing required field `size_usd`"


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        ("size_usd", 1, True),
        ("size_usd", 5e-324, True),  # the smallest float > 0
        ("size_usd", 0.0, False),
        ("size_usd", -0.0, False),
        ("size_usd", 2**1100, False),  # an int beyond every float
        ("size_usd", 10**400, False),  # 400 digits
        ("size_usd", True, False),  # a bool is not a number here
        ("size_usd", "3", False),
        ("confidence", 1, True),
        ("confidence", 1.0000000000000002, False),
        ("multiplier_used", 0, True),
        ("multiplier_used", -1e-300, False),
        ("symbol", "\u3000", False),  # ideographic space: blank
        ("symbol", "\x1c", False),  # a file separator: whitespace too
        ("symbol", " \u00e9 ", True),
        ("symbol", "", False),
        ("side", "LONG", True),
        ("side", "long", False),
        ("state", [], True),
        ("state", [1.0, -2.5], True),
        ("state", [1.0, 2], True),
        ("state", [1.0, "x"], False),
        ("ts", "2025-01-01T00:00:00+05:30", True),
        ("ts", "2025-01-01T00:00:00", False),  # naive
        ("ts", "2025-02-30T00:00:00Z", False),  # no such day
        ("route", None, True),  # optional
        ("route", " ", False),
        ("schema", "trade.position.update", False),
    ],
)
def test_execution_contract_on_known_edge_values(field: str, value: Any, accepted: bool) -> None:
    got = reason("trade.execution.res", raw("trade.execution.res", **{field: value}))
    assert (got is None) is accepted, got
    if not accepted:
        assert f"$.{field}" in got or field in got, got  # the reason names the field


def test_reasons_name_the_field_path_and_the_bound() -> None:
    cases = [
        ("trade.execution.res", "size_usd", 0.0, "Expected `float` > 0.0 - at `$.size_usd`"),
        ("trade.execution.res", "confidence", 1.2, "Expected `float` <= 1.0 - at `$.confidence`"),
        ("trade.execution.res", "side", "BUY", "Invalid enum value 'BUY' - at `$.side`"),
        ("trade.execution.res", "state", [1.0, "x"], "Expected `float`, got `str` - at `$.state[1]`"),
        ("trade.position.update", "unrealized_pnl_usd", "3", "Expected `float`, got `str` - at `$.unrealized_pnl_usd`"),
        ("model.retrain.trigger", "priority", True, "Expected `int | str | null`, got `bool` - at `$.priority`"),
        ("trade.position.update", "ts", "2025-01-01T00:00:00", "Expected `datetime` with a timezone component - at `$.ts`"),
    ]  # fmt: skip
    for topic, field, value, want in cases:
        assert reason(topic, raw(topic, **{field: value})) == want


def test_a_close_needs_its_realized_pnl() -> None:
    topic = "trade.position.update"
    want = "missing required field 'realized_pnl_usd' (required when status is 'CLOSED')"
    assert reason(topic, raw(topic, realized_pnl_usd=_DROP)) == want
    assert reason(topic, raw(topic, realized_pnl_usd=None)) == want
    assert reason(topic, raw(topic, realized_pnl_usd=-2)) is None
    assert reason(topic, raw(topic, realized_pnl_usd=_DROP, status="OPEN")) is None
    assert (
        reason(topic, raw(topic, status="OPEN", mark_price=0.0))
        == "Expected `float` > 0.0 - at `$.mark_price`"
    )


def test_malformed_payloads_get_a_reason_not_an_exception() -> None:
    topic = "trade.execution.res"
    assert reason(topic, b"{not json").startswith("JSON is malformed")
    assert reason(topic, b"[1, 2, 3]") == "Expected `object`, got `array`"
    assert reason(topic, b'{"x": NaN}').startswith("JSON is malformed")
    assert reason(topic, raw(topic).replace(b'"state": [0.1]', b'"state": [1e309]')) == (
        "Number out of range - at `$.state[0]`"
    )
    deep = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert reason(topic, deep) == "payload nested too deeply to decode (recursion limit)"
    assert reason(topic, raw(topic).replace(b'"BTCUSDT"', b'"\xff"')).startswith("'utf-8' codec")


def test_validate_event_checks_a_mapping_against_the_contract() -> None:
    good = new_event("trade.position.update", VALID["trade.position.update"], ts=T0)
    assert validate_event("trade.position.update", good) is None
    assert validate_event("rl.feedback", good) == "Invalid value 'trade.position.update' - at `$.schema`"
    assert validate_event("trade.position.update", {**good, "unrealized_pnl_usd": float("nan")}) == (
        "Expected `float` >= -1.7976931348623157e+308 - at `$.unrealized_pnl_usd`"
    )


finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(
    st.text(min_size=1).filter(str.strip),
    st.floats(min_value=5e-324, allow_infinity=False),
    st.floats(0.0, 1.0),
    st.lists(finite, max_size=8),
    st.datetimes(
        min_value=dt.datetime(1971, 1, 2),
        max_value=dt.datetime(2999, 12, 30),
        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30))]),
    ),
)
def test_a_built_execution_round_trips_exactly(
    oid: str, size: float, conf: float, state: list[float], ts: dt.datetime
) -> None:
    ev = contracts.Execution(event_id="e", ts=ts, order_id=oid, symbol="BTCUSDT", side="SHORT", entry_price=size,
                             size_usd=size, confidence=conf, multiplier_used=conf, state=state)  # fmt: skip
    back = decode_event("trade.execution.res", encode_event(ev))
    assert back == ev
    assert msgspec.structs.asdict(back)["state"] == state
