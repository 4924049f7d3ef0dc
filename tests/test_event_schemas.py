"""The generated fast acceptors of validate_event agree with the reference checks on any input."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from infra.event_schemas import SCHEMAS, _reason, validate_event
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
