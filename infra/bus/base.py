"""The bus interface every producer and consumer uses (both backends) and the unit of commit.

Semantics (both backends; see ``docs/eventbus.md``)
    * ``publish`` appends to the topic's stream and is idempotent per ``event_id``: publishing an
      event whose id was already published returns the first entry id.
    * ``read`` delivers new entries to one consumer of a group and records them as pending;
      ``read(..., pending=True)`` re-delivers the consumer's own pending entries (after a restart).
    * ``reclaim`` takes over entries another consumer left pending longer than ``min_idle_ms``.
    * ``commit`` atomically acknowledges entries, writes dead letters, publishes events at most
      once per key, sets markers and updates consumer state: all-or-nothing, and running it
      twice has the effect of running it once (so a retried commit is safe).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.bus.message import (
    DeadLetter,
    GroupInfo,
    Message,
    OncePublish,
    dead_letter_once,
    to_dead_letter,
)
from infra.bus.topics import dead_letter_topic
from infra.contracts.events import Event


@dataclass
class Commit:
    """Everything one consumer step writes, applied by :meth:`Bus.apply` in one atomic commit.

    A handler of the consumer loop returns one (see :mod:`infra.bus.consumer`).

    Attributes
    ----------
    ack : list of Message
        Entries to acknowledge.
    dead : list of (Message, reason)
        Entries to copy to their topic's dead-letter stream (once per entry id); acked too.
    failed : list of Message
        Entries the handler could not process now: left pending, re-delivered later, and
        dead-lettered once delivered more than ``max_deliveries`` times. Only the loop reads it.
    publish_once : list of OncePublish
        Events to publish unless their key was used before.
    marks : list of str
        Keys to mark as used (processed event ids), with the backend's TTL.
    state_set, state_delete : dict namespace -> fields
        Consumer state (string values) to write or delete.
    """

    ack: list[Message] = field(default_factory=list)
    dead: list[tuple[Message, str]] = field(default_factory=list)
    failed: list[Message] = field(default_factory=list)
    publish_once: list[OncePublish] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)
    state_set: dict[str, dict[str, str]] = field(default_factory=dict)
    state_delete: dict[str, list[str]] = field(default_factory=dict)

    def extend(self, other: Commit) -> None:
        """Add ``other``'s writes to this commit."""
        self.ack.extend(other.ack)
        self.dead.extend(other.dead)
        self.failed.extend(other.failed)
        self.publish_once.extend(other.publish_once)
        self.marks.extend(other.marks)
        for ns, values in other.state_set.items():
            self.state_set.setdefault(ns, {}).update(values)
        for ns, fields in other.state_delete.items():
            self.state_delete.setdefault(ns, []).extend(fields)


class Bus(abc.ABC):
    """The event-bus interface (both backends)."""

    url: str
    maxlen: int

    # -- producing -------------------------------------------------------------------------
    @abc.abstractmethod
    def publish(self, topic: str, event: Event | Mapping[str, Any]) -> str:
        """Append ``event`` to ``topic`` (validated, see :func:`infra.bus.message.encode_payload`);
        idempotent per ``event_id``. Returns the entry id."""

    def publish_many(self, items: Sequence[tuple[str, Event | Mapping[str, Any]]]) -> list[str]:
        """Publish ``(topic, event)`` pairs in order (pipelined where the backend can)."""
        return [self.publish(t, e) for t, e in items]

    @abc.abstractmethod
    def publish_raw(self, topic: str, raw: str | bytes) -> str:
        """Append a payload as-is (no validation, no dedupe): for tests and replays of bad input."""

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
    ) -> list[Message]:
        """Deliver up to ``count`` new entries per topic to ``consumer``, waiting up to ``block_ms``.

        With ``pending=True`` re-deliver the consumer's own unacknowledged entries instead (no wait).
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
        seq: str | None = None,
    ) -> int | None:
        """Apply everything atomically and idempotently (see :class:`Commit` for the parts).

        With ``seq``, the same transaction increments the commit counter ``seq`` and the new
        value is returned (``None`` otherwise, or when there was nothing to commit). A consumer
        that remembers it can tell, from :meth:`commit_seq`, whether the store went back in time
        under it (Redis restarted from an older snapshot, or without persistence).
        """

    @abc.abstractmethod
    def commit_seq(self, seq: str) -> int:
        """Current value of the commit counter ``seq`` (0 when it does not exist)."""

    def apply(self, group: str, c: Commit, *, seq: str | None = None) -> int | None:
        """:meth:`commit` of a :class:`Commit` (its ``failed`` part writes nothing)."""
        return self.commit(
            group,
            ack=c.ack,
            dead=c.dead,
            publish_once=c.publish_once,
            marks=c.marks,
            state_set=c.state_set,
            state_delete=c.state_delete,
            seq=seq,
        )

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
    def pending_by_consumer(self, topic: str, group: str) -> dict[str, int]:
        """Pending entries of ``group`` per consumer name (consumers with none are left out)."""

    def lost(self, topic: str, group: str) -> int:
        """Entries ``group`` had pending that were gone from the stream when it came back for them."""
        return 0

    @abc.abstractmethod
    def length(self, topic: str) -> int:
        """Number of entries currently in the stream."""

    @abc.abstractmethod
    def entries(self, topic: str, *, count: int | None = None) -> list[Message]:
        """Stored entries of ``topic``, oldest first (at most ``count``)."""

    def events(self, topic: str, *, count: int | None = None) -> list[dict[str, Any]]:
        """Payloads of ``topic`` as plain JSON objects, oldest first (undecodable ones skipped)."""
        return [d for m in self.entries(topic, count=count) if (d := m.data()) is not None]

    def dead_letter(self, msg: Message, reason: str, *, group: str | None = None) -> None:
        """Write ``msg`` to its topic's dead-letter stream (once per entry id), without acking."""
        self.commit(group or "", publish_once=[dead_letter_once(msg, reason, group)])

    def dead_letters(self, topic: str, *, count: int | None = 100) -> list[DeadLetter]:
        """Dead letters of ``topic``, oldest first."""
        return [
            to_dead_letter(m.id, d)
            for m in self.entries(dead_letter_topic(topic), count=count)
            if (d := m.data()) is not None
        ]

    def ping(self) -> bool:
        """True when the backend answers."""
        return True

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
