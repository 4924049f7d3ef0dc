"""The one consumer loop: read, reclaim, decode and validate, dead-letter, hand to a handler, commit.

Why this file is long: it is the one consumer loop every service plugs a handler into; reading,
rate-limited reclaiming, decoding, dead-lettering, the atomic commit and the outage back-off are
one contract and are tested as one.

Every service on the bus (the feedback bridge, the PPO trainer, the retrain worker) runs this
loop and plugs in a *handler*: a function from a batch of valid, typed messages to the
:class:`~infra.bus.base.Commit` that records what it did. The loop owns everything else:

1. **Reading.** The consumer's own pending entries first (left by a previous run under the same
   name), then entries other consumers left idle longer than ``reclaim_idle_ms`` (the scan is
   rate-limited: at most every ``min(reclaim_idle_ms / 2, 5 s)``, immediately again while it
   finds some), then new entries, waiting up to ``block_ms``.
2. **Decoding and validation** in one call per message against its topic's contract
   (:func:`infra.contracts.events.decode_event`). Anything that does not decode -- malformed
   JSON, invalid UTF-8, nesting deep enough to hit the recursion limit, a 400-digit number, a
   field out of bounds, an entry without payload -- goes to the topic's dead-letter stream with
   the reason, acknowledged in the same commit. A poison message therefore never stops a consumer.
3. **The handler** gets the valid messages (``msg.event`` is the typed event) and returns a
   :class:`~infra.bus.base.Commit`. Messages it neither acks, dead-letters nor marks failed are
   *held*: still pending in the group, and never handed to it again by this loop (the trainer
   holds its acknowledgements until a checkpoint includes them). A handler that raises is
   retried message by message, so one message that breaks it cannot hold back the rest; the
   failing one stays pending and is dead-lettered once delivered more than ``max_deliveries``
   times.
4. **The commit**: dead letters and the handler's writes in one atomic, idempotent
   :meth:`~infra.bus.base.Bus.commit`.
5. **Rollbacks.** Every commit also increments the consumer's commit counter
   (``bus:seq:<group>:<consumer>``) in the same transaction. Before each batch the loop reads it
   back: a value other than the one its last commit returned means the store went back in time
   (Redis restarted from an older snapshot, or without persistence) -- the group re-delivers
   what the lost commits had acknowledged, and whatever the handler cached (finished orders,
   open trades) is no longer true. The loop then handles it as a restart: ``on_reset``, forget
   held messages, re-read its own pending entries. The dedupe truth stays where the commit lives.
6. **Outages.** When the backend stays unreachable past its retry deadline
   (:class:`~infra.bus.message.BusUnavailableError`), the loop calls ``on_reset`` (drop caches),
   waits with capped exponential backoff (1 s, 2 s, ... at most ``outage_cap_s``), and starts
   again from the consumer's own pending entries; it never exits because Redis is down.

:func:`stop_on_signals` turns SIGTERM and SIGINT into the ``stop`` event: the loop finishes the
current batch, commits it and returns.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from infra.bus.base import Bus, Commit
from infra.bus.message import BusUnavailableError, Message
from infra.contracts.events import EVENT_TYPES, EventError, decode_event
from infra.validate import check_int

log = logging.getLogger(__name__)

Handler = Callable[[Sequence[Message]], Commit]
"""A batch of valid messages (``msg.event`` set) -> what to commit."""


@dataclass
class ConsumeStats:
    """What one :meth:`Consumer.run` did."""

    messages: int = 0
    """Entries delivered to the loop (including ones it dead-lettered)."""
    handled: int = 0
    """Messages the handler acknowledged."""
    dead_lettered: int = 0
    failed: int = 0
    """Handler failures (the message stays pending)."""
    reclaimed: int = 0
    batches: int = 0
    outages: int = 0
    rollbacks: int = 0
    """Times the store was found behind this consumer's last commit (handled as a restart)."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def check_message(msg: Message) -> str | None:
    """Decode and validate ``msg`` in place (sets ``msg.event``); the dead-letter reason or ``None``.

    A message that already carries its typed event (the in-process bus hands over what was
    published) is valid as it is.
    """
    if msg.event is not None:
        return None
    raw = msg.raw
    if raw is None:
        return "entry has no 'event' field (trimmed or foreign)"
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"payload is not valid UTF-8: {exc}"
    if msg.topic not in EVENT_TYPES:
        return f"no contract for topic {msg.topic!r}"
    try:
        msg.event = decode_event(msg.topic, raw)
    except EventError as exc:
        return str(exc)
    return None


def each_message(bus: Bus, group: str, fn: Callable[[Message], None]) -> Handler:
    """A handler that calls ``fn`` per message, skipping event ids ``group`` already processed.

    Each processed message is acknowledged with a processed-marker
    (``processed:<group>:<topic>:<event_id>``); a message whose ``fn`` raised is marked failed
    (left pending, retried, dead-lettered after ``max_deliveries``).
    """

    def handle(batch: Sequence[Message]) -> Commit:
        marks = [f"processed:{group}:{m.topic}:{m.event.event_id}" for m in batch]
        out = Commit()
        done = {m for m, was in zip(marks, bus.seen(marks), strict=True) if was}
        for msg, mark in zip(batch, marks, strict=True):
            if mark not in done:
                try:
                    fn(msg)
                except BusUnavailableError:
                    raise
                except Exception:
                    log.exception("handler failed on %s %s", msg.topic, msg.id)
                    out.failed.append(msg)
                    continue
                done.add(mark)  # a copy later in the same batch is a duplicate too
                out.marks.append(mark)
            out.ack.append(msg)
        return out

    return handle


class Consumer:
    """Runs ``handler`` over ``topics`` as ``consumer`` of ``group`` (see the module docstring).

    Parameters
    ----------
    bus : Bus
        Either backend.
    topics : sequence of str
        Topics to consume (each must have a contract).
    group, consumer : str
        Consumer group, and this process's name in it (keep it stable across restarts).
    handler : Handler
        Batch of valid messages -> :class:`~infra.bus.base.Commit`.
    count : int
        Entries read per topic and batch.
    block_ms : int
        Longest wait for new entries (also bounds the reaction to ``stop``).
    reclaim_idle_ms : int
        Entries pending longer than this in any consumer of the group are taken over.
    max_deliveries : int
        A message delivered more often than this is dead-lettered instead of handled again.
    on_reset : callable, optional
        Called after a failed step (handler error, outage): drop whatever the handler cached.
    outage_cap_s : float
        Longest wait between attempts while the bus is unreachable.
    """

    def __init__(
        self,
        bus: Bus,
        topics: Sequence[str],
        group: str,
        consumer: str,
        handler: Handler,
        *,
        count: int = 100,
        block_ms: int = 1000,
        reclaim_idle_ms: int = 60_000,
        max_deliveries: int = 5,
        on_reset: Callable[[], None] | None = None,
        outage_cap_s: float = 5.0,
    ) -> None:
        check_int(count, param="count", func="Consumer", minimum=1)
        check_int(max_deliveries, param="max_deliveries", func="Consumer", minimum=1)
        unknown = [t for t in topics if t not in EVENT_TYPES]
        if unknown:
            raise ValueError(
                f"The 'topics' of Consumer must have contracts ({sorted(EVENT_TYPES)}). Got {unknown!r}."
            )
        self.bus = bus
        self.topics = list(topics)
        self.group = group
        self.consumer = consumer
        self._handler = handler
        self.count = count
        self.block_ms = block_ms
        self.reclaim_idle_ms = reclaim_idle_ms
        self.max_deliveries = max_deliveries
        self.on_reset = on_reset
        self.outage_cap_s = outage_cap_s
        self.stats = ConsumeStats()
        self.held: set[tuple[str, str]] = set()
        """(topic, entry id) of messages the handler holds (processed, acknowledgement deferred)."""
        self._own_pending = True
        self._next_reclaim = 0.0
        self.seq_key = f"{group}:{consumer}"
        self._seq: int | None = None  # the commit counter as this consumer's last commit left it

    # -- reading ----------------------------------------------------------------------------
    def _next_batch(self) -> list[Message]:
        bus, names = self.bus, self.topics
        batch: list[Message] = []
        if self._own_pending:
            batch = self._drop_held(
                bus.read(names, self.group, self.consumer, count=self.count, pending=True)
            )
            # held entries stay in the pending list: only stop once nothing new comes back
            self._own_pending = bool(batch)
        if not batch and time.monotonic() >= self._next_reclaim:
            self._next_reclaim = time.monotonic() + min(self.reclaim_idle_ms / 2000.0, 5.0)
            for t in names:
                got = self._drop_held(
                    bus.reclaim(
                        t, self.group, self.consumer, min_idle_ms=self.reclaim_idle_ms, count=self.count
                    )
                )
                self.stats.reclaimed += len(got)
                batch.extend(got)
            if batch:
                self._next_reclaim = 0.0
        if not batch:
            batch = bus.read(names, self.group, self.consumer, count=self.count, block_ms=self.block_ms)
        return batch

    def _drop_held(self, batch: list[Message]) -> list[Message]:
        held = self.held
        return [m for m in batch if (m.topic, m.id) not in held] if held else batch

    # -- one step ---------------------------------------------------------------------------
    def _call(self, batch: Sequence[Message]) -> Commit:
        return self._handler(batch)

    def _check_rollback(self) -> None:
        current = self.bus.commit_seq(self.seq_key)
        if self._seq is not None and current != self._seq:
            log.warning(
                "%s/%s: the bus is at commit %d, this consumer's last commit was %d: the store went back "
                "in time (restart from an older snapshot?); dropping cached state and re-reading",
                self.group,
                self.consumer,
                current,
                self._seq,
            )
            self.stats.rollbacks += 1
            self._reset()
            self.held.clear()
            self._own_pending = True
        self._seq = current

    def step(self, batch: list[Message]) -> None:
        """Validate, handle and commit one batch."""
        self._check_rollback()
        stats = self.stats
        stats.batches += 1
        stats.messages += len(batch)
        good: list[Message] = []
        dead: list[tuple[Message, str]] = []
        for msg in batch:
            reason = check_message(msg)
            if reason is None and msg.deliveries > self.max_deliveries:
                reason = (
                    f"handler failed: delivered {msg.deliveries} times (max_deliveries={self.max_deliveries})"
                )
            if reason is None:
                good.append(msg)
            else:
                log.warning(
                    "%s/%s: dead-lettering %s %s: %s", self.group, self.consumer, msg.topic, msg.id, reason
                )
                dead.append((msg, reason))
        if not good:
            self._commit(Commit(dead=dead), [])
            return
        try:
            out = self._call(good)
        except BusUnavailableError:
            raise
        except Exception:
            log.exception(
                "%s/%s: handler failed on a batch of %d; retrying one by one",
                self.group,
                self.consumer,
                len(good),
            )
            self._reset()
            out = Commit(dead=dead)
            self._commit(out, [])
            for msg in good:
                try:
                    single = self._call([msg])
                except BusUnavailableError:
                    raise
                except Exception:
                    log.exception(
                        "%s/%s: handler failed on %s %s", self.group, self.consumer, msg.topic, msg.id
                    )
                    self._reset()
                    single = Commit(failed=[msg])
                self._commit(single, [msg])
            return
        out.dead[:0] = dead
        self._commit(out, good)

    def _commit(self, out: Commit, handed: Sequence[Message]) -> None:
        before = self._seq
        value = self.bus.apply(self.group, out, seq=self.seq_key)
        if value is not None:
            if before is not None and value != before + 1:  # went back between the check and the commit
                self._reset()
                self._own_pending = True
            self._seq = value
        stats = self.stats
        stats.handled += len(out.ack)
        stats.dead_lettered += len(out.dead)
        stats.failed += len(out.failed)
        if not self.held and len(out.ack) + len(out.failed) == len(handed):
            return  # the usual case: the handler settled everything it was handed, nothing held
        settled = {(m.topic, m.id) for m in out.ack}
        settled.update((m.topic, m.id) for m, _ in out.dead)
        settled.update((m.topic, m.id) for m in out.failed)
        if self.held:
            self.held -= settled
        for m in handed:
            key = (m.topic, m.id)
            if key not in settled:
                self.held.add(key)

    def _reset(self) -> None:
        if self.on_reset is not None:
            self.on_reset()

    # -- the loop ---------------------------------------------------------------------------
    def run(
        self,
        *,
        stop: threading.Event | None = None,
        until_idle: bool = False,
        max_messages: int | None = None,
    ) -> ConsumeStats:
        """Run until ``stop`` is set, until a read returns nothing (``until_idle``), or after
        ``max_messages`` entries; returns the counters."""
        for t in self.topics:
            self._with_outages(lambda t=t: self.bus.ensure_group(t, self.group), stop)  # type: ignore[misc]
        outage = 0
        while stop is None or not stop.is_set():
            try:
                batch = self._next_batch()
                if not batch:
                    if until_idle:
                        break
                    continue
                self.step(batch)
                outage = 0
            except BusUnavailableError as exc:
                outage += 1
                self.stats.outages += 1
                self._reset()
                self._own_pending = True
                wait = min(self.outage_cap_s, 2.0 ** (outage - 1)) * (0.75 + random.random() / 4)
                log.error("%s/%s: %s; waiting %.1fs for the bus", self.group, self.consumer, exc, wait)
                if stop is not None:
                    stop.wait(wait)
                else:
                    time.sleep(wait)
            if max_messages is not None and self.stats.messages >= max_messages:
                break
        return self.stats

    def _with_outages(self, fn: Callable[[], Any], stop: threading.Event | None) -> None:
        attempt = 0
        while True:
            try:
                fn()
                return
            except BusUnavailableError as exc:
                if stop is not None and stop.is_set():
                    raise
                attempt += 1
                wait = min(self.outage_cap_s, 2.0 ** (attempt - 1))
                log.error("%s/%s: %s; waiting %.1fs for the bus", self.group, self.consumer, exc, wait)
                if stop is not None:
                    stop.wait(wait)
                else:
                    time.sleep(wait)


def stop_on_signals(name: str) -> threading.Event:
    """An event set by SIGTERM or SIGINT (logged as ``name``): pass it as ``stop`` to :meth:`Consumer.run`.

    Call from the main thread.
    """
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("%s: signal %d, finishing the current batch", name, signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop
