"""What travels on the bus: delivered messages, once-publishes, dead letters, group info, errors.

Payloads travel as JSON bytes on both backends; a :class:`Message` carries them undecoded. The
consumer loop (:mod:`infra.bus.consumer`) decodes and validates each one against its topic's
contract (:mod:`infra.contracts.events`) and puts the typed event in :attr:`Message.event`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import msgspec

from infra.bus.topics import dead_letter_topic
from infra.contracts.events import EVENT_TYPES, Event, EventError, encode_event, event_from_dict
from infra.timeutil import utc_iso

DEAD_LETTER_RAW_MAX = 65_536
"""Longest payload copy kept in a dead letter (bytes of UTF-8); longer ones are cut with a note."""

_encode = msgspec.json.Encoder().encode
_decode_any = msgspec.json.Decoder().decode


class BusError(RuntimeError):
    """A bus operation failed; the message starts with the operation name."""


class BusUnavailableError(BusError):
    """The bus backend stayed unreachable for longer than the retry deadline."""


class EventPublisher(Protocol):
    """The minimal bus interface a producer needs."""

    def publish(self, topic: str, event: Event | Mapping[str, Any]) -> str: ...


@dataclass(slots=True)
class Message:
    """One delivered stream entry.

    ``raw`` is the payload as stored (``None`` when the entry has no ``event`` field, or when the
    in-process bus holds the typed event itself); ``deliveries`` counts how often the entry was
    delivered; ``event`` is the typed event: set by the consumer loop once the payload decoded and
    validated, or handed over as published by the in-process bus (typed events are immutable).
    """

    topic: str
    id: str
    raw: bytes | None
    deliveries: int = 1
    event: Any = None

    def payload(self) -> bytes | None:
        """The payload as JSON bytes (encoded from the typed event when only that is held)."""
        if self.raw is None and isinstance(self.event, msgspec.Struct):
            return encode_event(self.event)  # type: ignore[arg-type]
        return self.raw

    def text(self) -> str:
        """The payload as text (invalid UTF-8 replaced), for logs and dead letters."""
        raw = self.payload()
        return "" if raw is None else raw.decode("utf-8", errors="replace")

    def data(self) -> dict[str, Any] | None:
        """The payload as a plain JSON object, or ``None`` when it is not one (for inspection)."""
        raw = self.payload()
        if raw is None:
            return None
        try:
            obj = _decode_any(raw)
        except (msgspec.DecodeError, ValueError, RecursionError):
            return None
        return obj if isinstance(obj, dict) else None


class OncePublish(NamedTuple):
    """Publish ``event`` to ``topic`` unless ``key`` was already used (atomically marks ``key``)."""

    topic: str
    event: Event | Mapping[str, Any]
    key: str


@dataclass(frozen=True)
class DeadLetter:
    """An entry of a dead-letter stream: the reason and the original payload text."""

    id: str
    topic: str
    reason: str
    raw: str
    message_id: str | None
    group: str | None
    ts: str


@dataclass(frozen=True)
class GroupInfo:
    """A consumer group of one topic, as the doctor reports it.

    ``lag`` is the entries not yet delivered to the group (``None`` when Redis cannot tell).
    """

    topic: str
    name: str
    consumers: int
    pending: int
    lag: int | None
    last_delivered_id: str


def new_event(
    schema: str, payload: Mapping[str, Any], *, ts: dt.datetime, event_id: str | None = None
) -> dict[str, Any]:
    """Wrap ``payload`` in the event envelope (``event_id``, ``ts``, ``schema``) as a plain dict.

    ``ts`` is the event time (timezone-aware); it is data, never read from the wall clock here.
    Publishing validates it against the topic's contract.

    >>> new_event("rl.feedback", {"order_id": "o-1"}, ts=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    ...           event_id="e-1")
    {'event_id': 'e-1', 'ts': '2025-01-01T00:00:00Z', 'schema': 'rl.feedback', 'order_id': 'o-1'}
    """
    if ts.tzinfo is None:
        raise ValueError(f"The 'ts' of a {schema} event must be timezone-aware UTC. Got {ts!r} instead.")
    reserved = {"event_id", "ts", "schema"} & set(payload)
    if reserved:
        raise ValueError(f"payload of a {schema} event must not set {sorted(reserved)}")
    return {"event_id": event_id or uuid.uuid4().hex, "ts": utc_iso(ts), "schema": schema, **payload}


def event_id_of(event: Event | Mapping[str, Any]) -> str | None:
    """The ``event_id`` of a typed event or a mapping (``None`` when absent or not a string)."""
    value = event.get("event_id") if isinstance(event, Mapping) else getattr(event, "event_id", None)
    return value if isinstance(value, str) else None


def encode_payload(topic: str, event: Event | Mapping[str, Any]) -> bytes:
    """JSON bytes of ``event`` for ``topic``, validated against the topic's contract.

    A typed event is valid by construction. A mapping for one of the five topics is checked
    against the contract first (extra fields are kept); other topics (dead letters) are encoded
    as they are.

    Raises
    ------
    infra.contracts.events.EventError
        When a mapping breaks its topic's contract (the reason names the field).
    TypeError
        When the object cannot be encoded as JSON.
    """
    if isinstance(event, msgspec.Struct):
        check_type(topic, event)
        return encode_event(event)
    if topic in EVENT_TYPES:
        event_from_dict(topic, event)
    return _encode(event)


def check_type(topic: str, event: msgspec.Struct) -> None:
    """Refuse a typed event published to a topic of another type.

    Raises
    ------
    infra.contracts.events.EventError
        Naming the topic and both types.
    """
    want = EVENT_TYPES.get(topic)
    if want is not None and not isinstance(event, want):
        raise EventError(
            f"a {type(event).__name__} cannot be published to {topic!r} (it takes {want.__name__})"
        )


def dead_letter_event(msg: Message, reason: str, group: str | None) -> dict[str, Any]:
    """The dead-letter event written for ``msg`` (time of dead-lettering is wall-clock UTC).

    The payload copy is cut at :data:`DEAD_LETTER_RAW_MAX` bytes with a note of the full size.
    """
    raw = msg.payload() or b""
    if len(raw) > DEAD_LETTER_RAW_MAX:
        text = raw[:DEAD_LETTER_RAW_MAX].decode("utf-8", errors="replace")
        text += f" ... [truncated: {len(raw):,} bytes in total, first {DEAD_LETTER_RAW_MAX:,} kept]"
    else:
        text = msg.text()
    return {
        "event_id": f"dlq:{msg.topic}:{msg.id}",
        "ts": utc_iso(dt.datetime.now(dt.UTC)),
        "schema": dead_letter_topic(msg.topic),
        "topic": msg.topic,
        "message_id": msg.id,
        "group": group,
        "reason": reason[:2000],
        "raw": text,
    }


def dead_letter_once(msg: Message, reason: str, group: str | None) -> OncePublish:
    """The dead letter of ``msg`` as a once-publish keyed by its topic and entry id."""
    return OncePublish(
        dead_letter_topic(msg.topic), dead_letter_event(msg, reason, group), f"dlq:{msg.topic}:{msg.id}"
    )


def to_dead_letter(entry_id: str, event: Mapping[str, Any]) -> DeadLetter:
    """A dead-letter stream entry as a :class:`DeadLetter`."""
    return DeadLetter(
        id=entry_id,
        topic=str(event.get("topic", "")),
        reason=str(event.get("reason", "")),
        raw=str(event.get("raw", "")),
        message_id=event.get("message_id"),
        group=event.get("group"),
        ts=str(event.get("ts", "")),
    )
