"""Event bus: topic names, the event envelope, the consumer API and the in-process backend.

Every event is a JSON object with ``event_id`` (unique), ``ts`` (ISO 8601 UTC) and ``schema``
(the topic name it was built for) plus its payload fields. Everything downstream keys trades by
``order_id``. :func:`connect_bus` picks the backend from a URL (``EVENTBUS_URL``):
``memory://`` gives :class:`MemoryBus` (in-process), ``redis://host:port/db`` gives
:class:`infra.redis_bus.RedisBus` (Redis Streams). Both implement :class:`Bus` with the same
consumer-group semantics, so tests, the demo and production run the same code paths.

Semantics (both backends; see ``docs/eventbus.md``)
    * ``publish`` appends to the topic's stream (bounded length) and is idempotent per
      ``event_id``: publishing an event whose id was already published returns the first id.
    * ``read`` delivers new entries to one consumer of a group and records them as pending;
      ``read(..., pending=True)`` re-delivers the consumer's own pending entries (after a restart).
    * ``reclaim`` takes over entries another consumer left pending longer than ``min_idle_ms``.
    * ``commit`` atomically acknowledges entries, writes dead letters, publishes events at most
      once per key, sets markers and updates consumer state: it is all-or-nothing, and running it
      twice has the effect of running it once (so a retried commit is safe).
    * ``consume`` is the ready-made loop over those primitives: validate, dedupe by ``event_id``,
      call the handler, acknowledge after the handler succeeded, dead-letter invalid events and
      events whose handler failed ``max_deliveries`` times.

Examples
--------
>>> import datetime as dt
>>> bus = MemoryBus()
>>> ev = new_event("rl.feedback", {"order_id": "o-1"}, ts=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
>>> _ = bus.publish("rl.feedback", ev)
>>> [e["order_id"] for e in bus.events("rl.feedback")]
['o-1']
"""

from __future__ import annotations

import abc
import datetime as dt
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple, Protocol

from infra import wire

log = logging.getLogger(__name__)

TOPIC_SIGNAL = "trade.signal.v5"
TOPIC_EXECUTION = "trade.execution.res"
TOPIC_POSITION = "trade.position.update"
TOPIC_FEEDBACK = "rl.feedback"
TOPIC_RETRAIN = "model.retrain.trigger"
TOPICS = (TOPIC_SIGNAL, TOPIC_EXECUTION, TOPIC_POSITION, TOPIC_FEEDBACK, TOPIC_RETRAIN)

DEAD_LETTER_SUFFIX = ".dlq"
DEFAULT_MAXLEN = 100_000


def dead_letter_topic(topic: str) -> str:
    """Name (and Redis key) of the dead-letter stream of ``topic``: ``<topic>.dlq``."""
    return topic + DEAD_LETTER_SUFFIX


def utc_iso(ts: dt.datetime) -> str:
    """``ts`` (timezone-aware) as the envelope writes it: ISO 8601 in UTC with a ``Z``.

    >>> utc_iso(dt.datetime(2025, 1, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    '2025-01-01T00:00:00Z'
    """
    return ts.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def utc_iso_of(text: str, ts: dt.datetime) -> str:
    """:func:`utc_iso` of ``ts``, parsed from ``text``: ``text`` itself when it is already that string.

    Re-formatting costs about 2 us; a timestamp that already reads ``YYYY-MM-DDTHH:MM:SSZ`` (or
    with ``.ffffff`` microseconds, not all zero) is returned as it is.

    >>> t = "2025-01-01T02:00:00Z"
    >>> utc_iso_of(t, dt.datetime.fromisoformat(t)) is t
    True
    >>> t = "2025-01-01T04:00:00.000000+02:00"
    >>> utc_iso_of(t, dt.datetime.fromisoformat(t))
    '2025-01-01T02:00:00Z'
    """
    n = len(text)
    if (
        (n == 20 or (n == 27 and text[19] == "." and ts.microsecond))
        and text[-1] == "Z"
        and text[4] == "-"
        and text[7] == "-"
        and text[10] == "T"
        and text[13] == ":"
        and text[16] == ":"
    ):
        return text
    return utc_iso(ts)


def new_event(
    schema: str, payload: Mapping[str, Any], *, ts: dt.datetime, event_id: str | None = None
) -> dict[str, Any]:
    """Wrap ``payload`` in the event envelope (``event_id``, ``ts``, ``schema``).

    ``ts`` is the event time (timezone-aware); it is data, never read from the wall clock here.
    """
    if ts.tzinfo is None:
        raise ValueError(f"The 'ts' of a {schema} event must be timezone-aware UTC. Got {ts!r} instead.")
    reserved = {"event_id", "ts", "schema"} & set(payload)
    if reserved:
        raise ValueError(f"payload of a {schema} event must not set {sorted(reserved)}")
    return {
        "event_id": event_id or uuid.uuid4().hex,
        "ts": utc_iso(ts),
        "schema": schema,
        **payload,
    }


class EventPublisher(Protocol):
    """The minimal bus interface a producer needs."""

    def publish(self, topic: str, event: Mapping[str, Any]) -> str: ...


class BusError(RuntimeError):
    """A bus operation failed; the message starts with the operation name."""


class BusUnavailableError(BusError):
    """The bus backend stayed unreachable for longer than the retry deadline."""


class Message(NamedTuple):
    """One delivered stream entry.

    ``event`` is the decoded JSON object, or ``None`` when the payload is not a JSON object (then
    ``error`` says why). ``raw`` is the payload text as stored (``None`` for events the memory
    backend holds as objects). ``deliveries`` counts how often the entry was delivered.
    """

    topic: str
    id: str
    event: dict[str, Any] | None
    raw: str | None = None
    deliveries: int = 1
    error: str | None = None

    def payload_text(self) -> str:
        """The original payload as text (for dead letters)."""
        if self.raw is not None:
            return self.raw
        return json.dumps(self.event, default=str)


def decode_payload(topic: str, entry_id: str, raw: str | None, deliveries: int = 1) -> Message:
    """Build a :class:`Message` from a stored payload text, recording decode problems."""
    if raw is None:
        return Message(
            topic, entry_id, None, None, deliveries, "entry has no 'event' field (trimmed or foreign)"
        )
    try:
        obj = wire.decode(raw)
    except ValueError as exc:
        return Message(topic, entry_id, None, raw, deliveries, f"payload is not valid JSON: {exc}")
    if not isinstance(obj, dict):
        return Message(
            topic, entry_id, None, raw, deliveries, f"payload must be a JSON object, got {type(obj).__name__}"
        )
    return Message(topic, entry_id, obj, raw, deliveries)


class OncePublish(NamedTuple):
    """Publish ``event`` to ``topic`` unless ``key`` was already used (atomically marks ``key``)."""

    topic: str
    event: Mapping[str, Any]
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
    """A consumer group of one topic, as the doctor reports it."""

    topic: str
    name: str
    consumers: int
    pending: int
    lag: int | None
    last_delivered_id: str


@dataclass
class ConsumeStats:
    """What one :meth:`Bus.consume` run did."""

    handled: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    failed: int = 0
    reclaimed: int = 0
    batches: int = 0


Handler = Callable[[Message], None]


def dead_letter_event(msg: Message, reason: str, group: str | None) -> dict[str, Any]:
    """The dead-letter event written for ``msg`` (time of dead-lettering is wall-clock UTC)."""
    return {
        "event_id": f"dlq:{msg.topic}:{msg.id}",
        "ts": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "schema": dead_letter_topic(msg.topic),
        "topic": msg.topic,
        "message_id": msg.id,
        "group": group,
        "reason": reason,
        "raw": msg.payload_text(),
    }


def _to_dead_letter(entry_id: str, event: Mapping[str, Any]) -> DeadLetter:
    return DeadLetter(
        id=entry_id,
        topic=str(event.get("topic", "")),
        reason=str(event.get("reason", "")),
        raw=str(event.get("raw", "")),
        message_id=event.get("message_id"),
        group=event.get("group"),
        ts=str(event.get("ts", "")),
    )


class Bus(abc.ABC):
    """The event-bus interface every producer and consumer uses (both backends)."""

    url: str

    # -- producing -------------------------------------------------------------------------
    @abc.abstractmethod
    def publish(self, topic: str, event: Mapping[str, Any]) -> str:
        """Append ``event`` to ``topic``; idempotent per ``event_id``. Returns the entry id."""

    def publish_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
        """Publish ``(topic, event)`` pairs in order (pipelined where the backend can)."""
        return [self.publish(t, e) for t, e in items]

    @abc.abstractmethod
    def publish_raw(self, topic: str, raw: str) -> str:
        """Append a payload text as-is (no dedupe): for tests and replays of malformed input."""

    # -- consumer groups -------------------------------------------------------------------
    @abc.abstractmethod
    def ensure_group(self, topic: str, group: str, *, start: str = "0") -> None:
        """Create consumer group ``group`` on ``topic`` if missing (``start='0'``: from the beginning)."""

    @abc.abstractmethod
    def read(
        self,
        topics: Sequence[str],
        group: str,
        consumer: str,
        *,
        count: int = 100,
        block_ms: int = 1000,
        pending: bool = False,
        copy: bool = True,
    ) -> list[Message]:
        """Deliver up to ``count`` new entries per topic to ``consumer``, waiting up to ``block_ms``.

        With ``pending=True`` re-deliver the consumer's own unacknowledged entries instead (no wait).
        With ``copy=False`` the in-process backend hands out the stored event objects themselves,
        not a shallow copy per delivery; the caller promises not to mutate them (Redis decodes
        fresh objects either way).
        """

    @abc.abstractmethod
    def reclaim(
        self, topic: str, group: str, consumer: str, *, min_idle_ms: int, count: int = 100
    ) -> list[Message]:
        """Take over entries pending longer than ``min_idle_ms`` in any consumer of ``group``."""

    def ack(self, topic: str, group: str, ids: Sequence[str]) -> None:
        """Acknowledge entries of ``topic`` (shortcut for :meth:`commit`)."""
        self.commit(group, ack=[Message(topic, i, None) for i in ids])

    @abc.abstractmethod
    def commit(
        self,
        group: str,
        *,
        ack: Sequence[Message] = (),
        dead: Sequence[tuple[Message, str]] = (),
        publish_once: Sequence[OncePublish] = (),
        marks: Sequence[str] = (),
        state_set: Mapping[str, Mapping[str, str]] | None = None,
        state_delete: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        """Apply everything atomically and idempotently.

        Parameters
        ----------
        group : str
            Consumer group the acknowledgements belong to.
        ack : sequence of Message
            Entries to acknowledge.
        dead : sequence of (Message, reason)
            Entries to copy to their topic's dead-letter stream (once per entry id); ack them too.
        publish_once : sequence of OncePublish
            Events to publish unless their key was used before.
        marks : sequence of str
            Keys to mark as used (e.g. processed event ids), with the backend's TTL.
        state_set, state_delete : mapping namespace -> fields
            Consumer state (string values) to write or delete.
        """

    @abc.abstractmethod
    def seen(self, keys: Sequence[str]) -> list[bool]:
        """Whether each once-key or mark was used."""

    @abc.abstractmethod
    def state_get(self, namespace: str, fields: Iterable[str]) -> dict[str, str]:
        """Values of ``fields`` in consumer-state ``namespace`` (missing fields are left out)."""

    @abc.abstractmethod
    def state_all(self, namespace: str) -> dict[str, str]:
        """Every field of consumer-state ``namespace``."""

    # -- observability ---------------------------------------------------------------------
    @abc.abstractmethod
    def groups(self, topic: str) -> list[GroupInfo]:
        """Consumer groups of ``topic`` with their pending count and lag."""

    def pending(self, topic: str, group: str) -> int:
        """Entries delivered to ``group`` but not yet acknowledged (0 when the group is missing)."""
        return next((g.pending for g in self.groups(topic) if g.name == group), 0)

    def lag(self, topic: str, group: str) -> int | None:
        """Entries of ``topic`` not yet delivered to ``group`` (``None`` when unknown or missing)."""
        return next((g.lag for g in self.groups(topic) if g.name == group), None)

    @abc.abstractmethod
    def length(self, topic: str) -> int:
        """Number of entries currently in the stream."""

    @abc.abstractmethod
    def entries(self, topic: str, *, count: int | None = None) -> list[Message]:
        """Stored entries of ``topic``, oldest first (at most ``count``)."""

    def events(self, topic: str, *, count: int | None = None) -> list[dict[str, Any]]:
        """Decoded events of ``topic``, oldest first (undecodable entries are skipped)."""
        return [m.event for m in self.entries(topic, count=count) if m.event is not None]

    def dead_letter(self, msg: Message, reason: str, *, group: str | None = None) -> None:
        """Write ``msg`` to its topic's dead-letter stream (once per entry id), without acking."""
        self.commit(group or "", publish_once=[dead_letter_once(msg, reason, group)])

    def dead_letters(self, topic: str, *, count: int | None = 100) -> list[DeadLetter]:
        """Dead letters of ``topic``, oldest first."""
        return [
            _to_dead_letter(m.id, m.event)
            for m in self.entries(dead_letter_topic(topic), count=count)
            if m.event is not None
        ]

    def ping(self) -> bool:
        """True when the backend answers."""
        return True

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    # -- the consumer loop -----------------------------------------------------------------
    def consume(
        self,
        topics: str | Sequence[str],
        group: str,
        consumer: str,
        handler: Handler,
        *,
        count: int = 100,
        block_ms: int = 1000,
        max_idle_ms_reclaim: int = 60_000,
        max_deliveries: int = 5,
        validate: bool = True,
        stop: threading.Event | None = None,
        until_idle: bool = False,
        max_messages: int | None = None,
    ) -> ConsumeStats:
        """Run ``handler`` over ``topics`` as ``consumer`` of ``group`` until stopped.

        Each message is validated (:func:`infra.event_schemas.validate_event`; invalid ->
        dead-letter with the reason), skipped when its ``event_id`` was already processed by this
        group, handed to ``handler``, and acknowledged together with a processed-marker only after
        the handler returned. A handler that raises leaves the message pending; it is re-delivered
        after ``max_idle_ms_reclaim`` and dead-lettered once delivered more than ``max_deliveries``
        times. Own pending messages (from before a restart) are processed first.

        Stops when ``stop`` is set, when a read returns nothing and ``until_idle`` is true, or after
        ``max_messages`` messages.
        """
        from infra.event_schemas import validate_event

        names = [topics] if isinstance(topics, str) else list(topics)
        for t in names:
            self.ensure_group(t, group)
        stats = ConsumeStats()
        seen_total = 0
        own_pending = True
        next_reclaim = 0.0  # reclaim scans the pending lists: at most every max_idle_ms_reclaim / 2 (<= 5 s)
        while stop is None or not stop.is_set():
            batch: list[Message] = []
            if own_pending:
                batch = self.read(names, group, consumer, count=count, pending=True)
                own_pending = bool(batch)
            if not batch and time.monotonic() >= next_reclaim:
                next_reclaim = time.monotonic() + min(max_idle_ms_reclaim / 2000.0, 5.0)
                for t in names:
                    got = self.reclaim(t, group, consumer, min_idle_ms=max_idle_ms_reclaim, count=count)
                    stats.reclaimed += len(got)
                    batch.extend(got)
                if batch:
                    next_reclaim = 0.0
            if not batch:
                batch = self.read(names, group, consumer, count=count, block_ms=block_ms)
            if not batch:
                if until_idle:
                    break
                continue
            stats.batches += 1
            for msg in batch:
                seen_total += 1
                reason = msg.error or (validate_event(msg.topic, msg.event) if validate else None)
                if reason is None and msg.deliveries > max_deliveries:
                    reason = (
                        f"handler failed: delivered {msg.deliveries} times (max_deliveries={max_deliveries})"
                    )
                if reason is not None:
                    self.commit(group, ack=[msg], dead=[(msg, reason)])
                    stats.dead_lettered += 1
                    continue
                event_id = (msg.event or {}).get("event_id")
                mark = f"processed:{group}:{msg.topic}:{event_id}" if event_id else None
                if mark is not None and self.seen([mark])[0]:
                    self.commit(group, ack=[msg])
                    stats.duplicates += 1
                    continue
                try:
                    handler(msg)
                except Exception:
                    log.exception(
                        "consume %s/%s: handler failed on %s %s", msg.topic, group, msg.id, event_id
                    )
                    stats.failed += 1
                    continue
                self.commit(group, ack=[msg], marks=[mark] if mark else [])
                stats.handled += 1
            if max_messages is not None and seen_total >= max_messages:
                break
        return stats


def dead_letter_once(msg: Message, reason: str, group: str | None) -> OncePublish:
    """The dead letter of ``msg`` as a once-publish keyed by its topic and entry id."""
    return OncePublish(
        dead_letter_topic(msg.topic), dead_letter_event(msg, reason, group), f"dlq:{msg.topic}:{msg.id}"
    )


# ------------------------------------------------------------------------------------------
# In-process backend
# ------------------------------------------------------------------------------------------


@dataclass
class _Group:
    last: int = 0
    pel: dict[str, tuple[str, float, int]] = field(default_factory=dict)
    """entry id -> (consumer, delivered_at_ms, deliveries). Keyed by the id text the messages carry,
    so an ack is one dict pop; tuples, not lists: the GC untracks a tuple of atomic values on its
    first pass, so a large pending list costs the collector nothing."""
    consumers: set[str] = field(default_factory=set)


@dataclass
class _Stream:
    base: int = 1  # seq of entries[0]
    entries: list[Any] = field(default_factory=list)  # dict event or str raw payload
    ids: list[str] = field(default_factory=list)  # entry id of each entry, made once by _append
    groups: dict[str, _Group] = field(default_factory=dict)
    event_ids: set[str] = field(default_factory=set)

    @property
    def next_seq(self) -> int:
        return self.base + len(self.entries)

    def get(self, seq: int) -> Any:
        i = seq - self.base
        return self.entries[i] if 0 <= i < len(self.entries) else None


_new_message = partial(tuple.__new__, Message)
"""``Message`` from a 6-tuple without the generated ``__new__`` (the memory bus's hot path)."""


def _seq_of(entry_id: str) -> int:
    """Sequence number of an in-memory entry id (``"12-0"`` -> 12)."""
    return int(entry_id.partition("-")[0])


def _now_ms() -> float:
    return time.monotonic() * 1000.0


class MemoryBus(Bus):
    """In-process bus (``EVENTBUS_URL=memory://``) with Redis-Streams consumer-group semantics.

    Entry ids are ``"<seq>-0"``. Streams are trimmed to ``maxlen`` entries (exactly, oldest first).
    Each delivery is a shallow copy of the stored event unless the reader passes ``copy=False``.
    Once-keys, marks and published ``event_id``\\ s live for the life of the object (no TTL).
    Thread-safe; a blocking :meth:`read` waits on a condition variable.
    """

    def __init__(self, *, maxlen: int = DEFAULT_MAXLEN) -> None:
        if maxlen < 1:
            raise ValueError(f"The 'maxlen' parameter of MemoryBus must be >= 1. Got {maxlen!r} instead.")
        self.url = "memory://"
        self.maxlen = maxlen
        self._streams: dict[str, _Stream] = {}
        self._once: dict[str, str] = {}
        self._state: dict[str, dict[str, str]] = {}
        self._cond = threading.Condition(threading.RLock())

    def _stream(self, topic: str) -> _Stream:
        s = self._streams.get(topic)
        if s is None:
            s = self._streams[topic] = _Stream()
        return s

    def _append(self, topic: str, payload: Any, *, notify: bool = True) -> str:
        s = self._stream(topic)
        entry_id = f"{s.next_seq}-0"
        s.entries.append(payload)
        s.ids.append(entry_id)
        if len(s.entries) > self.maxlen:
            drop = len(s.entries) - self.maxlen
            del s.entries[:drop]
            del s.ids[:drop]
            s.base += drop
        if notify:
            self._cond.notify_all()
        return entry_id

    def publish(self, topic: str, event: Mapping[str, Any]) -> str:
        with self._cond:
            event_id = event.get("event_id")
            if isinstance(event_id, str):
                key = f"evid:{topic}:{event_id}"
                first = self._once.get(key)
                if first is not None:
                    return first
                entry_id = self._append(topic, dict(event))
                self._once[key] = entry_id
                return entry_id
            return self._append(topic, dict(event))

    def publish_raw(self, topic: str, raw: str) -> str:
        with self._cond:
            return self._append(topic, str(raw))

    def ensure_group(self, topic: str, group: str, *, start: str = "0") -> None:
        with self._cond:
            s = self._stream(topic)
            if group not in s.groups:
                last = 0 if start == "0" else s.next_seq - 1 if start == "$" else int(start.split("-")[0])
                s.groups[group] = _Group(last=last)

    def _group(self, topic: str, group: str) -> tuple[_Stream, _Group]:
        s = self._stream(topic)
        g = s.groups.get(group)
        if g is None:
            raise BusError(
                f"XREADGROUP {topic}: NOGROUP no consumer group {group!r}; call ensure_group first"
            )
        return s, g

    def _message(self, topic: str, seq: int, payload: Any, deliveries: int) -> Message:
        if type(payload) is dict:
            return _new_message((topic, f"{seq}-0", payload.copy(), None, deliveries, None))
        return decode_payload(topic, f"{seq}-0", payload, deliveries)

    def read(
        self,
        topics: Sequence[str],
        group: str,
        consumer: str,
        *,
        count: int = 100,
        block_ms: int = 1000,
        pending: bool = False,
        copy: bool = True,
    ) -> list[Message]:
        deadline = _now_ms() + max(block_ms, 0)
        with self._cond:
            while True:
                out: list[Message] = []
                now = _now_ms()
                for topic in topics:
                    s, g = self._group(topic, group)
                    g.consumers.add(consumer)
                    if pending:
                        mine = sorted((q for q, v in g.pel.items() if v[0] == consumer), key=_seq_of)
                        for entry_id in mine[:count]:
                            n = g.pel[entry_id][2] + 1
                            g.pel[entry_id] = (consumer, now, n)
                            seq = _seq_of(entry_id)
                            out.append(self._message(topic, seq, s.get(seq), n))
                        continue
                    start = max(g.last + 1, s.base)
                    stop = min(s.next_seq, start + count)
                    pel, entries, ids, base = g.pel, s.entries, s.ids, s.base
                    rec = (consumer, now, 1)  # immutable: one record shared by the whole read
                    for i in range(start - base, stop - base):
                        entry_id = ids[i]
                        pel[entry_id] = rec
                        payload = entries[i]
                        if type(payload) is dict:  # an event (not a raw payload): inlined
                            event = payload.copy() if copy else payload
                            out.append(_new_message((topic, entry_id, event, None, 1, None)))
                        else:
                            out.append(self._message(topic, base + i, payload, 1))
                    g.last = max(g.last, stop - 1)
                if out or pending:
                    return out
                remaining = deadline - _now_ms()
                if remaining <= 0:
                    return out
                self._cond.wait(remaining / 1000.0)

    def reclaim(
        self, topic: str, group: str, consumer: str, *, min_idle_ms: int, count: int = 100
    ) -> list[Message]:
        with self._cond:
            s, g = self._group(topic, group)
            g.consumers.add(consumer)
            now = _now_ms()
            out: list[Message] = []
            for entry_id in sorted(g.pel, key=_seq_of):
                if len(out) >= count:
                    break
                rec = g.pel[entry_id]
                if now - rec[1] < min_idle_ms:
                    continue
                seq = _seq_of(entry_id)
                payload = s.get(seq)
                if payload is None:  # trimmed away: Redis 7 drops it from the PEL too
                    del g.pel[entry_id]
                    continue
                g.pel[entry_id] = (consumer, now, rec[2] + 1)
                out.append(self._message(topic, seq, payload, rec[2] + 1))
            return out

    def commit(
        self,
        group: str,
        *,
        ack: Sequence[Message] = (),
        dead: Sequence[tuple[Message, str]] = (),
        publish_once: Sequence[OncePublish] = (),
        marks: Sequence[str] = (),
        state_set: Mapping[str, Mapping[str, str]] | None = None,
        state_delete: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        with self._cond:
            appended = False
            once, append = self._once, self._append
            for stream, event, key in [*publish_once, *(dead_letter_once(m, r, group) for m, r in dead)]:
                if key not in once:
                    once[key] = append(stream, dict(event), notify=False)
                    appended = True
            if appended:  # wake blocked readers once per commit, not once per event
                self._cond.notify_all()
            for key in marks:
                self._once.setdefault(key, "1")
            for ns, values in (state_set or {}).items():
                self._state.setdefault(ns, {}).update(values)
            for ns, fields in (state_delete or {}).items():
                d = self._state.get(ns)
                if d is not None:
                    for f in fields:
                        d.pop(f, None)
            topic: str | None = None
            pel: dict[str, Any] = {}
            for msg in [*ack, *(m for m, _ in dead)]:
                if msg.topic != topic:  # a batch is read topic by topic: look the PEL up once per run
                    topic = msg.topic
                    s = self._streams.get(topic)
                    g = s.groups.get(group) if s is not None else None
                    pel = {} if g is None else g.pel
                if pel.pop(msg.id, None) is None and pel:  # not there as given: maybe "7" for "7-0"
                    pel.pop(f"{_seq_of(msg.id)}-0", None)

    def seen(self, keys: Sequence[str]) -> list[bool]:
        with self._cond:
            return [k in self._once for k in keys]

    def state_get(self, namespace: str, fields: Iterable[str]) -> dict[str, str]:
        with self._cond:
            d = self._state.get(namespace, {})
            return {f: d[f] for f in fields if f in d}

    def state_all(self, namespace: str) -> dict[str, str]:
        with self._cond:
            return dict(self._state.get(namespace, {}))

    def groups(self, topic: str) -> list[GroupInfo]:
        with self._cond:
            s = self._streams.get(topic)
            if s is None:
                return []
            return [
                GroupInfo(
                    topic,
                    name,
                    len(g.consumers),
                    len(g.pel),
                    s.next_seq - 1 - max(g.last, s.base - 1),
                    f"{g.last}-0",
                )
                for name, g in s.groups.items()
            ]

    def length(self, topic: str) -> int:
        with self._cond:
            s = self._streams.get(topic)
            return 0 if s is None else len(s.entries)

    def entries(self, topic: str, *, count: int | None = None) -> list[Message]:
        with self._cond:
            s = self._streams.get(topic)
            if s is None:
                return []
            items = s.entries if count is None else s.entries[:count]
            return [self._message(topic, s.base + i, p, 0) for i, p in enumerate(items)]

    def events(self, topic: str, *, count: int | None = None) -> list[dict[str, Any]]:
        """All events published to ``topic`` so far, oldest first (copies)."""
        with self._cond:
            s = self._streams.get(topic)
            if s is None:
                return []
            items = s.entries if count is None else s.entries[:count]
            return [dict(p) for p in items if type(p) is dict]


def connect_bus(url: str | None = None, *, environ: Mapping[str, str] | None = None, **options: Any) -> Bus:
    """Open the bus named by ``url`` (default: ``EVENTBUS_URL``, else ``memory://``).

    ``memory://`` returns a new :class:`MemoryBus`; ``redis://``, ``rediss://`` and ``unix://``
    return a :class:`infra.redis_bus.RedisBus` configured from the ``EVENTBUS_*`` variables of
    ``environ`` (see ``docs/eventbus.md``); keyword ``options`` override them.

    Raises
    ------
    ValueError
        When the URL has another scheme.
    """
    env = os.environ if environ is None else environ
    target = (url or env.get("EVENTBUS_URL") or "memory://").strip()
    if target == "memory://":
        return MemoryBus(**options)
    if target.startswith(("redis://", "rediss://", "unix://")):
        from infra.redis_bus import RedisBus

        return RedisBus.from_env(target, environ=env, **options)
    raise ValueError(
        "The 'url' argument of connect_bus must be 'memory://' or a Redis URL such as "
        f"'redis://127.0.0.1:6379/0'. Got {target!r} instead."
    )
