"""The in-process bus (``EVENTBUS_URL=memory://``) with Redis-Streams consumer-group semantics.

Examples
--------
>>> import datetime as dt
>>> from infra.bus.message import new_event
>>> bus = MemoryBus()
>>> ev = new_event("model.retrain.trigger", {"trigger_id": "t", "model": "m", "reason": "drift"},
...                ts=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
>>> _ = bus.publish("model.retrain.trigger", ev)
>>> [e["trigger_id"] for e in bus.events("model.retrain.trigger")]
['t']
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from infra.bus.base import Bus
from infra.bus.message import (
    BusError,
    GroupInfo,
    Message,
    OncePublish,
    check_type,
    dead_letter_once,
    encode_payload,
    event_id_of,
)
from infra.bus.topics import DEFAULT_MAXLEN
from infra.contracts.events import EVENT_TYPES, Event, event_from_dict
from infra.validate import check_int

_encode = msgspec.json.Encoder().encode


@dataclass
class _Group:
    last: int = 0
    pel: dict[str, tuple[str, float, int]] = field(default_factory=dict)
    """entry id -> (consumer, delivered_at_ms, deliveries)."""
    consumers: set[str] = field(default_factory=set)


Entry = tuple[bytes | None, Any]
"""A stored entry: its JSON bytes and/or its typed event (at least one of them)."""


@dataclass
class _Stream:
    base: int = 1  # seq of entries[0]
    entries: list[Entry] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # entry id of each entry, made once by _append
    groups: dict[str, _Group] = field(default_factory=dict)

    @property
    def next_seq(self) -> int:
        return self.base + len(self.entries)

    def get(self, seq: int) -> Entry:
        i = seq - self.base
        return self.entries[i] if 0 <= i < len(self.entries) else (None, None)


def _safe_seq(s: _Stream) -> int:
    """The oldest seq some group still needs: its oldest pending entry, else the one after its last."""
    need = []
    for g in s.groups.values():
        need.append(min(map(_seq_of, g.pel)) if g.pel else g.last + 1)
    return min(need)


def _seq_of(entry_id: str) -> int:
    """Sequence number of an in-memory entry id (``"12-0"`` -> 12)."""
    return int(entry_id.partition("-")[0])


def _entry(topic: str, event: Event | Mapping[str, Any]) -> Entry:
    """What the in-process bus stores for a published event (see :class:`MemoryBus`)."""
    if isinstance(event, msgspec.Struct):
        check_type(topic, event)
        return None, event
    if topic in EVENT_TYPES:
        return _encode(event), event_from_dict(topic, event)
    return encode_payload(topic, event), None


def _now_ms() -> float:
    return time.monotonic() * 1000.0


class MemoryBus(Bus):
    """In-process bus with Redis-Streams consumer-group semantics.

    Entry ids are ``"<seq>-0"``. A stream is trimmed to ``maxlen`` entries, oldest first, but
    never below what a consumer group has not read and acknowledged. A published mapping is validated and stored as JSON bytes with
    its typed event; a published typed event is stored as it is (it is immutable) and encoded
    only when someone asks for its bytes; readers get the typed event without a JSON round trip.
    Raw payloads are stored as bytes and decoded by the consumer loop, as with Redis. Once-keys, marks and published
    ``event_id``\\ s live for the life of the object (no TTL). Thread-safe; a blocking
    :meth:`read` waits on a condition variable.
    """

    def __init__(self, *, maxlen: int = DEFAULT_MAXLEN) -> None:
        check_int(maxlen, param="maxlen", func="MemoryBus", minimum=1)
        self.url = "memory://"
        self.maxlen = maxlen
        self._streams: dict[str, _Stream] = {}
        self._once: dict[str, str] = {}
        self._state: dict[str, dict[str, str]] = {}
        self._seqs: dict[str, int] = {}
        self._cond = threading.Condition(threading.RLock())

    def _stream(self, topic: str) -> _Stream:
        s = self._streams.get(topic)
        if s is None:
            s = self._streams[topic] = _Stream()
        return s

    def _append(self, topic: str, entry: Entry, *, notify: bool = True) -> str:
        s = self._stream(topic)
        entry_id = f"{s.next_seq}-0"
        s.entries.append(entry)
        s.ids.append(entry_id)
        if len(s.entries) > self.maxlen:
            drop = len(s.entries) - self.maxlen
            if s.groups:  # never below what a group has not read and acknowledged
                drop = min(drop, _safe_seq(s) - s.base)
            if drop > 0:
                del s.entries[:drop]
                del s.ids[:drop]
                s.base += drop
        if notify:
            self._cond.notify_all()
        return entry_id

    def publish(self, topic: str, event: Event | Mapping[str, Any]) -> str:
        entry = _entry(topic, event)
        event_id = event_id_of(event)
        with self._cond:
            if event_id is None:
                return self._append(topic, entry)
            key = f"evid:{topic}:{event_id}"
            first = self._once.get(key)
            if first is not None:
                return first
            entry_id = self._once[key] = self._append(topic, entry)
            return entry_id

    def publish_raw(self, topic: str, raw: str | bytes) -> str:
        with self._cond:
            return self._append(topic, (raw.encode() if isinstance(raw, str) else bytes(raw), None))

    def ensure_group(self, topic: str, group: str, *, start: str = "0") -> None:
        with self._cond:
            s = self._stream(topic)
            if group not in s.groups:
                last = 0 if start == "0" else s.next_seq - 1 if start == "$" else _seq_of(start)
                s.groups[group] = _Group(last=last)

    def _group(self, topic: str, group: str) -> tuple[_Stream, _Group]:
        s = self._stream(topic)
        g = s.groups.get(group)
        if g is None:
            raise BusError(
                f"XREADGROUP {topic}: NOGROUP no consumer group {group!r}; call ensure_group first"
            )
        return s, g

    def read(
        self,
        topics: Sequence[str],
        group: str,
        consumer: str,
        *,
        count: int = 100,
        block_ms: int = 1000,
        pending: bool = False,
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
                            raw, event = s.get(_seq_of(entry_id))
                            out.append(Message(topic, entry_id, raw, n, event))
                        continue
                    start = max(g.last + 1, s.base)
                    stop = min(s.next_seq, start + count)
                    rec = (consumer, now, 1)  # immutable: one record shared by the whole read
                    pel, entries, ids, base = g.pel, s.entries, s.ids, s.base
                    for i in range(start - base, stop - base):
                        entry_id = ids[i]
                        pel[entry_id] = rec
                        raw, event = entries[i]
                        out.append(Message(topic, entry_id, raw, 1, event))
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
                if seq < s.base:  # trimmed away: Redis 7 drops it from the PEL too
                    del g.pel[entry_id]
                    continue
                g.pel[entry_id] = (consumer, now, rec[2] + 1)
                raw, event = s.get(seq)
                out.append(Message(topic, entry_id, raw, rec[2] + 1, event))
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
        seq: str | None = None,
    ) -> int | None:
        once_items = [*publish_once, *(dead_letter_once(m, r, group) for m, r in dead)]
        prepared = [(o.topic, _entry(o.topic, o.event), o.key) for o in once_items]
        with self._cond:
            appended = False
            for stream, entry, key in prepared:
                if key not in self._once:
                    self._once[key] = self._append(stream, entry, notify=False)
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
            if seq is None:
                return None
            value = self._seqs[seq] = self._seqs.get(seq, 0) + 1
            return value

    def commit_seq(self, seq: str) -> int:
        with self._cond:
            return self._seqs.get(seq, 0)

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

    def pending_by_consumer(self, topic: str, group: str) -> dict[str, int]:
        with self._cond:
            s = self._streams.get(topic)
            g = s.groups.get(group) if s is not None else None
            out: dict[str, int] = {}
            for consumer, _, _ in g.pel.values() if g is not None else ():
                out[consumer] = out.get(consumer, 0) + 1
            return out

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
            return [Message(topic, s.ids[i], raw, 0, event) for i, (raw, event) in enumerate(items)]
