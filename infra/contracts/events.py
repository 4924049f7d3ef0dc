"""The five bus events, declared once as ``msgspec`` Structs: producers build them, consumers read fields.

Every event carries the envelope ``event_id`` (non-empty), ``ts`` (ISO 8601 with a timezone) and
``schema`` (its topic name), then its payload. Field types and bounds are declared with
:class:`msgspec.Meta`, so :func:`decode_event` decodes and validates JSON in one call and an error
names the field path (``... - at `$.size_usd```); that message is the dead-letter reason.
Unknown extra fields are ignored (producers may add context); missing required fields, wrong
types (a boolean is not a number), non-finite or out-of-range numbers, naive timestamps and a
``CLOSED`` update without ``realized_pnl_usd`` are refused. See ``DESIGN.md`` "Data contracts".

Examples
--------
>>> raw = (b'{"event_id":"e1","ts":"2025-01-01T00:00:00Z","schema":"trade.position.update",'
...        b'"order_id":"o1","status":"OPEN","unrealized_pnl_usd":-3.0}')
>>> decode_event("trade.position.update", raw).unrealized_pnl_usd
-3.0
>>> decode_event("trade.position.update", raw.replace(b"OPEN", b"DONE"))
Traceback (most recent call last):
...
infra.contracts.events.EventError: Invalid enum value 'DONE' - at `$.status`
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

# The topic names (the same strings as infra.bus.topics, which this module must not import:
# the bus imports the contracts; tests/test_event_schemas.py checks that they agree).
TOPIC_SIGNAL = "trade.signal.v5"
TOPIC_EXECUTION = "trade.execution.res"
TOPIC_POSITION = "trade.position.update"
TOPIC_FEEDBACK = "rl.feedback"
TOPIC_RETRAIN = "model.retrain.trigger"

__all__ = [
    "EVENT_TYPES",
    "Event",
    "EventError",
    "Execution",
    "Feedback",
    "PositionUpdate",
    "RetrainTrigger",
    "Signal",
    "decode_event",
    "encode_event",
]

_MAX = sys.float_info.max
NonEmpty = Annotated[str, msgspec.Meta(min_length=1, pattern=r"\S")]
"""A string with at least one non-whitespace character."""
Finite = Annotated[float, msgspec.Meta(ge=-_MAX, le=_MAX)]
"""A finite number (the bounds refuse NaN and the infinities)."""
NonNegative = Annotated[float, msgspec.Meta(ge=0.0, le=_MAX)]
Positive = Annotated[float, msgspec.Meta(gt=0.0, le=_MAX)]
Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
AwareTime = Annotated[dt.datetime, msgspec.Meta(tz=True)]
"""A timestamp with a timezone (naive ones are refused)."""
StateVector = list[Finite]


class EventError(ValueError):
    """An event that does not decode to its topic's contract; the message names the field path."""


class _Envelope(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True, gc=False):
    """The envelope of every event.

    ``gc=False``: events are immutable trees of strings, numbers, lists and dicts that cannot
    refer back to themselves, so the cyclic collector need not track them (a bus holding 60,000
    of them otherwise makes every full collection walk them all).
    """

    event_id: NonEmpty
    ts: AwareTime


class Signal(_Envelope, frozen=True, tag_field="schema", tag=TOPIC_SIGNAL):
    """``trade.signal.v5``: a model's trade signal."""

    symbol: NonEmpty
    action: Literal["BUY", "SELL", "HOLD"]
    confidence: Probability
    model_version: NonEmpty
    top_features: list[Any] | dict[str, Any] | None = None
    order_id: NonEmpty | None = None
    signal_id: NonEmpty | None = None


class Execution(_Envelope, frozen=True, tag_field="schema", tag=TOPIC_EXECUTION):
    """``trade.execution.res``: an order was filled; opens the trade ``order_id``."""

    order_id: NonEmpty
    symbol: NonEmpty
    side: Literal["LONG", "SHORT"]
    entry_price: Positive
    size_usd: Positive
    confidence: Probability
    multiplier_used: NonNegative
    state: StateVector
    route: NonEmpty | None = None
    signal_id: NonEmpty | None = None
    model_version: NonEmpty | None = None
    behaviour_logp: Finite | None = None
    """``log p(multiplier_used | state)`` of the policy that sampled the multiplier (governor ``explore``)."""


class PositionUpdate(_Envelope, frozen=True, tag_field="schema", tag=TOPIC_POSITION):
    """``trade.position.update``: the unrealized PnL of an open trade, or its close."""

    order_id: NonEmpty
    status: Literal["OPEN", "CLOSED"]
    unrealized_pnl_usd: Finite
    realized_pnl_usd: Finite | None = None
    mark_price: Positive | None = None
    symbol: NonEmpty | None = None

    def __post_init__(self) -> None:
        if self.status == "CLOSED" and self.realized_pnl_usd is None:
            raise ValueError("missing required field 'realized_pnl_usd' (required when status is 'CLOSED')")


class RewardComponents(msgspec.Struct, frozen=True, gc=False):
    """The terms of a reward (:func:`execution.reward_calculator.compute_reward_breakdown`)."""

    base: Finite
    duration_penalty: Finite
    drawdown_penalty: Finite
    confidence_penalty: Finite
    sharpe_bonus: Finite


class Feedback(_Envelope, frozen=True, tag_field="schema", tag=TOPIC_FEEDBACK):
    """``rl.feedback``: one closed trade with its reward (published once per ``order_id``)."""

    order_id: NonEmpty
    symbol: NonEmpty
    pnl_usd: Finite
    pnl_pct: Finite
    duration_mins: NonNegative
    max_drawdown_pct: NonNegative
    sharpe_contribution: Finite
    reward: Finite
    confidence: Probability
    state: StateVector
    multiplier_used: NonNegative
    reward_components: RewardComponents | None = None
    opened_at: AwareTime | None = None
    closed_at: AwareTime | None = None
    behaviour_logp: Finite | None = None
    """``log p(multiplier_used | state)`` of the policy that sampled the multiplier, copied from the
    execution by the bridge (the PPO trainer learns only from such samples)."""
    log_prob: Finite | None = None
    """Older name of ``behaviour_logp``, still read by the trainer."""


class RetrainTrigger(_Envelope, frozen=True, tag_field="schema", tag=TOPIC_RETRAIN):
    """``model.retrain.trigger``: retrain ``model`` because of ``reason``."""

    trigger_id: NonEmpty
    model: NonEmpty
    reason: NonEmpty
    drift_info: dict[str, Any] | None = None
    priority: int | str | None = None
    triggered_at: AwareTime | None = None


Event: TypeAlias = Signal | Execution | PositionUpdate | Feedback | RetrainTrigger

EVENT_TYPES: dict[str, type[Event]] = {
    TOPIC_SIGNAL: Signal,
    TOPIC_EXECUTION: Execution,
    TOPIC_POSITION: PositionUpdate,
    TOPIC_FEEDBACK: Feedback,
    TOPIC_RETRAIN: RetrainTrigger,
}
"""Topic -> its event type."""

_DECODERS = {topic: msgspec.json.Decoder(t) for topic, t in EVENT_TYPES.items()}
_encoder = msgspec.json.Encoder()


def decode_event(topic: str, raw: bytes | str) -> Event:
    """Decode and validate one ``topic`` event from JSON text in one call.

    Raises
    ------
    EventError
        With the reason: malformed JSON (with the byte offset), nesting too deep, or the first
        contract violation with its field path.
    KeyError
        When ``topic`` is not one of the five event topics.
    """
    decoder = _DECODERS[topic]
    try:
        return decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # ValidationError is a DecodeError
        raise EventError(str(exc)) from None
    except RecursionError:
        raise EventError("payload nested too deeply to decode (recursion limit)") from None


def encode_event(event: Event) -> bytes:
    """The JSON text of ``event`` (timestamps as RFC 3339; UTC ones end in ``Z``)."""
    return _encoder.encode(event)


def event_from_dict(topic: str, data: Any) -> Event:
    """Validate a decoded mapping against ``topic``'s contract (e.g. a producer's dict).

    Raises
    ------
    EventError
        As :func:`decode_event`.
    """
    try:
        return msgspec.convert(
            data,
            EVENT_TYPES[topic],
        )
    except msgspec.ValidationError as exc:
        raise EventError(str(exc)) from None


def validate_event(topic: str, data: Any) -> str | None:
    """``None`` when ``data`` (a decoded JSON object) is a valid ``topic`` event, else the reason.

    >>> validate_event("rl.feedback", {"event_id": "e", "ts": "2025-01-01T00:00:00Z"})
    'Object missing required field `order_id`'
    """
    try:
        event_from_dict(topic, data)
    except EventError as exc:
        return str(exc)
    return None
