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

from infra.bus.base import Bus
from infra.bus.message import (
    BusError,
    GroupInfo,
    Message,
    OncePublish,
    dead_letter_once,
    encode_payload,
    event_id_of,
)
from infra.bus.topics import DEFAULT_MAXLEN
from infra.contracts.events import Event


@dataclass
class _Group:
    last: int = 0
    pel: dict[int, tuple[str, float, int]] = field(default_factory=dict)
    """entry seq -> (consumer, delivered_at_ms, deliveries)."""
    consumers: set[str] = field(default_factory=set)


@dataclass
class _Stream:
    base: int = 1  # seq of entries[0]
    entries: list[bytes | None] = field(default_factory=list)
    groups: dict[str, _Group] = field(default_factory=dict)

    @property
    def next_seq(self) -> int:
        return self.base + len(self.entries)

    def get(self, seq: int) -> bytes | None:
        i = seq - self.base
        return self.entries[i] if 0 <= i < len(self.entries) else None


def _seq_of(entry_id: str) -> int:
    """Sequence number of an in-memory entry id (``"12-0"`` -> 12)."""
    return int(entry_id.partition("-")[0])


def _now_ms() -> float:
    return time.monotonic() * 1000.0


class MemoryBus(Bus):
    """In-process bus with Redis-Streams consumer-group semantics.

    Entry ids are ``"<seq>-0"``. Payloads are stored as JSON bytes, as Redis stores them. Streams
    are trimmed to ``maxlen`` entries (exactly, oldest first). Once-keys, marks and published
    ``event_id``\\ s live for the life of the object (no TTL). Thread-safe; a blocking
    :meth:`read` waits on a condition variable.
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

    def _append(self, topic: str, payload: bytes | None, *, notify: bool = True) -> str:
        s = self._stream(topic)
        entry_id = f"{s.next_seq}-0"
        s.entries.append(payload)
        if len(s.entries) > self.maxlen:
            drop = len(s.entries) - self.maxlen
            del s.entries[:drop]
            s.base += drop
        if notify:
            self._cond.notify_all()
        return entry_id

    def publish(self, topic: str, event: Event | Mapping[str, Any]) -> str:
        payload = encode_payload(topic, event)
        event_id = event_id_of(event)
        with self._cond:
            if event_id is None:
                return self._append(topic, payload)
            key = f"evid:{topic}:{event_id}"
            first = self._once.get(key)
            if first is not None:
                return first
            entry_id = self._once[key] = self._append(topic, payload)
            return entry_id

    def publish_raw(self, topic: str, raw: str | bytes) -> str:
        with self._cond:
            return self._append(topic, raw.encode() if isinstance(raw, str) else bytes(raw))

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
                        mine = sorted(q for q, v in g.pel.items() if v[0] == consumer)[:count]
                        for seq in mine:
                            n = g.pel[seq][2] + 1
                            g.pel[seq] = (consumer, now, n)
                            out.append(Message(topic, f"{seq}-0", s.get(seq), n))
                        continue
                    start = max(g.last + 1, s.base)
                    stop = min(s.next_seq, start + count)
                    rec = (consumer, now, 1)
                    for seq in range(start, stop):
                        g.pel[seq] = rec
                        out.append(Message(topic, f"{seq}-0", s.entries[seq - s.base], 1))
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
            for seq in sorted(g.pel):
                if len(out) >= count:
                    break
                rec = g.pel[seq]
                if now - rec[1] < min_idle_ms:
                    continue
                if seq < s.base:  # trimmed away: Redis 7 drops it from the PEL too
                    del g.pel[seq]
                    continue
                g.pel[seq] = (consumer, now, rec[2] + 1)
                out.append(Message(topic, f"{seq}-0", s.get(seq), rec[2] + 1))
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
        once_items = [*publish_once, *(dead_letter_once(m, r, group) for m, r in dead)]
        encoded = [(o.topic, encode_payload(o.topic, o.event), o.key) for o in once_items]
        with self._cond:
            appended = False
            for stream, payload, key in encoded:
                if key not in self._once:
                    self._once[key] = self._append(stream, payload, notify=False)
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
            for msg in [*ack, *(m for m, _ in dead)]:
                s = self._streams.get(msg.topic)
                g = s.groups.get(group) if s is not None else None
                if g is not None:
                    g.pel.pop(_seq_of(msg.id), None)

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
            return [Message(topic, f"{s.base + i}-0", p, 0) for i, p in enumerate(items)]
