"""The drift detector as a bus service: ``python -m ml.drift_service --bus redis://...``.

It plugs a handler into the one consumer loop (:class:`infra.bus.Consumer`, group
``drift-service``) over three topics and feeds :meth:`ml.drift_monitor.DriftService.process_trade`:

* ``trade.signal.v5``: the ``confidence`` the model gave, its ``model_version`` and the
  predicted side (``action``);
* ``trade.execution.res``: the ``entry_price``;
* ``trade.position.update`` with status ``CLOSED``: the close's event time and ``mark_price``
  (the exit price).

**The outcome** is the one the confidence forecasts and the batch mode uses (``signals.won``): the
predicted direction was right, ``(exit - entry) * side > 0``. ``rl.feedback`` was not used: it
carries the PnL after fees, and a trade that moved the right way by less than the fees would count
as a loss, so a well-calibrated model would look over-confident. A close without ``mark_price``
falls back to ``realized_pnl_usd > 0`` (counted in ``join.outcome_from_pnl``).

**The join** is by ``order_id`` in any arrival order (a close may come before its signal). Parts
wait in a bounded table of ``max_pending`` orders; the oldest is evicted when it is full and
counted in ``join.orphans_evicted`` (an order whose signal or close never came). Trades are fed
in arrival order of their last part. A part seen again (duplicate delivery under a new event id,
or a re-delivery) is counted once, in ``join.duplicates``: the last ``max_done`` joined order ids
are remembered.

**Restart semantics.** Acknowledgements are held (the loop keeps the messages pending) until a
checkpoint -- every ``checkpoint_every`` messages (1,000: below the doctor's pending warning) or
``checkpoint_s`` seconds, whenever a read comes back empty, and on shutdown -- the whole state
(detectors, trigger queue, join table, counters) is written atomically to ``state_path`` and
*then* one commit acknowledges the held messages and publishes the new
``model.retrain.trigger`` events (``publish_once`` keyed by the trigger id). After a kill -9 the
service starts from its last checkpoint and the group re-delivers what it had not acknowledged:
the same messages on the same state, so the same detections; a trigger the state holds is
re-published under its key at start (published at most once), never raised twice.

The ``drift`` and ``retrain_triggers`` artifacts (this service's; shapes as in batch mode) are
written at a checkpoint at most every ``artifact_s`` seconds, and on shutdown. The retrain
worker's ``retrain_jobs`` is read then (never written) to resolve triggers in the queue.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from infra.bus import TOPIC_EXECUTION, TOPIC_POSITION, TOPIC_RETRAIN, TOPIC_SIGNAL, Bus, Commit, Message
from infra.bus.message import OncePublish

log = logging.getLogger(__name__)

GROUP = "drift-service"
TOPICS = (TOPIC_SIGNAL, TOPIC_EXECUTION, TOPIC_POSITION)
STATE_VERSION = 1


class _Outbox:
    """Collects the triggers :class:`~ml.drift_monitor.DriftService` publishes until the next commit."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def publish(self, topic: str, event: Any) -> str:
        self.events.append(dict(event))
        return ""


@dataclass
class JoinStats:
    """Counters of the join (the ``join`` block of the ``drift`` artifact in bus mode)."""

    signals: int = 0
    executions: int = 0
    closes: int = 0
    joined: int = 0
    duplicates: int = 0
    orphans_evicted: int = 0
    unmatched_trades: int = 0
    """Evicted orders that had closed (their signal never came): the batch mode's name."""
    unmatched_signals: int = 0
    """Evicted orders with a signal and no close."""
    outcome_from_pnl: int = 0
    pending: int = 0
    outcome_source: str = "direction: (mark_price - entry_price) * side > 0"


def trade_won(side: str, entry: float | None, exit_price: float | None, pnl: float | None) -> bool:
    """The predicted direction was right; ``pnl > 0`` only when a price is missing.

    >>> trade_won("BUY", 100.0, 101.0, -5.0), trade_won("SELL", 100.0, 101.0, 5.0)
    (True, False)
    >>> trade_won("BUY", None, None, 2.0)
    True
    """
    if entry is not None and exit_price is not None:
        sign = 1.0 if side == "BUY" else -1.0
        return (exit_price - entry) * sign > 0.0
    return pnl is not None and pnl > 0.0


class DriftBusHandler:
    """The consumer-loop handler (see the module docstring).

    ``service`` is an ``ml.drift_monitor.DriftService``; with a ``store``, ``read_jobs`` and
    ``write`` read ``retrain_jobs`` and write the service's artifacts (``ml.drift_service``'s
    functions; the CLI there wires them).
    """

    def __init__(
        self,
        service: Any,
        *,
        state_path: Path | None = None,
        store: Any = None,
        max_pending: int = 20_000,
        max_done: int = 20_000,
        checkpoint_every: int = 1_000,
        checkpoint_s: float = 2.0,
        artifact_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        read_jobs: Callable[[Any], list[dict[str, Any]]] | None = None,
        write: Callable[[Any, dict[str, Any], Any], None] | None = None,
    ) -> None:
        for name, value in (
            ("max_pending", max_pending),
            ("max_done", max_done),
            ("checkpoint_every", checkpoint_every),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"The '{name}' parameter of DriftBusHandler must be an int >= 1. Got {value!r}."
                )
        self.service = service
        self.outbox = _Outbox()
        service.publisher = self.outbox
        self.state_path = state_path
        self.store = store
        self.max_pending, self.max_done = max_pending, max_done
        self.checkpoint_every, self.checkpoint_s, self.artifact_s = checkpoint_every, checkpoint_s, artifact_s
        self.clock = clock
        self.read_jobs, self.write = read_jobs, write
        """``ml.drift_service.read_jobs`` and ``write_artifacts`` (passed in: this module sits below it)."""
        self.parts: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.done: OrderedDict[str, None] = OrderedDict()
        self.stats = JoinStats()
        self.unsent: list[dict[str, Any]] = []
        """Triggers raised since the last commit (published with it)."""
        self._held: list[Message] = []
        self._last_checkpoint = clock()
        self._last_artifact = float("-inf")
        self._last_closed: pd.Timestamp | None = None

    # ------------------------------------------------------------------ state
    def _snapshot(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "service": self.service,
            "parts": self.parts,
            "done": self.done,
            "stats": self.stats,
            "unsent": self.unsent,
            "last_closed": self._last_closed,
        }

    def save_state(self) -> None:
        """Write the state atomically (temp file, fsync, rename)."""
        if self.state_path is None:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            self.service.publisher = None  # the outbox is not state
            try:
                pickle.dump(self._snapshot(), fh, protocol=pickle.HIGHEST_PROTOCOL)
            finally:
                self.service.publisher = self.outbox
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.state_path)

    def load_state(self) -> bool:
        """Restore the last checkpoint (our own file, written by :meth:`save_state`); False if none."""
        if self.state_path is None or not self.state_path.exists():
            return False
        with open(self.state_path, "rb") as fh:
            snap = pickle.load(fh)  # our own checkpoint file, never foreign input
        if not isinstance(snap, dict) or snap.get("version") != STATE_VERSION:
            raise ValueError(
                f"The drift service state file {self.state_path} has version "
                f"{snap.get('version') if isinstance(snap, dict) else '?'!r}, expected {STATE_VERSION}; "
                "move it away to start from zero."
            )
        self.service = snap["service"]
        self.service.publisher = self.outbox
        self.parts, self.done, self.stats = snap["parts"], snap["done"], snap["stats"]
        self.unsent = list(snap["unsent"])
        self._last_closed = snap["last_closed"]
        return True

    # ------------------------------------------------------------------ the join
    def _part(self, order_id: str) -> dict[str, Any]:
        part = self.parts.get(order_id)
        if part is None:
            part = self.parts[order_id] = {}
            while len(self.parts) > self.max_pending:
                oid, old = self.parts.popitem(last=False)
                self.stats.orphans_evicted += 1
                self.stats.unmatched_trades += "close" in old
                self.stats.unmatched_signals += "close" not in old and "signal" in old
                log.info("drift service: order %s evicted unjoined (max_pending=%d)", oid, self.max_pending)
        return part

    def on_message(self, msg: Message) -> None:
        ev = msg.event
        oid = getattr(ev, "order_id", None)
        if oid is None:
            return
        value: Any
        if msg.topic == TOPIC_SIGNAL:
            self.stats.signals += 1
            key, value = "signal", (float(ev.confidence), str(ev.model_version), str(ev.action))
        elif msg.topic == TOPIC_EXECUTION:
            self.stats.executions += 1
            key, value = "entry", float(ev.entry_price)
        elif msg.topic == TOPIC_POSITION and ev.status == "CLOSED":
            self.stats.closes += 1
            key, value = "close", (pd.Timestamp(ev.ts).tz_convert("UTC"), ev.mark_price, ev.realized_pnl_usd)
        else:
            return
        if oid in self.done:
            self.stats.duplicates += 1
            return
        part = self._part(oid)
        if key in part:
            self.stats.duplicates += 1
            return
        part[key] = value
        if "signal" in part and "close" in part and ("entry" in part or part["close"][1] is None):
            self._feed(oid, self.parts.pop(oid))

    def _feed(self, order_id: str, part: dict[str, Any]) -> None:
        confidence, model, action = part["signal"]
        closed_at, exit_price, pnl = part["close"]
        entry = part.get("entry")
        if entry is None or exit_price is None:
            self.stats.outcome_from_pnl += 1
        won = trade_won(action, entry, None if exit_price is None else float(exit_price), pnl)
        self.done[order_id] = None
        while len(self.done) > self.max_done:
            self.done.popitem(last=False)
        self.stats.joined += 1
        self._last_closed = closed_at
        self.service.process_trade(
            order_id=order_id, closed_at=closed_at, confidence=confidence, won=won, model=model
        )
        self.unsent.extend(self.outbox.events)
        self.outbox.events.clear()

    # ------------------------------------------------------------------ the loop's handler
    def __call__(self, batch: Sequence[Message]) -> Commit:
        for msg in batch:
            self.on_message(msg)
        self._held.extend(batch)
        if (
            len(self._held) >= self.checkpoint_every
            or self.clock() - self._last_checkpoint >= self.checkpoint_s
        ):
            return self.checkpoint()
        return Commit()  # held: acknowledged by the next checkpoint's commit

    @property
    def held(self) -> int:
        """Messages handled but not yet acknowledged (waiting for the next checkpoint)."""
        return len(self._held)

    def checkpoint(self, *, final: bool = False) -> Commit:
        """Save the state, then return the commit that acknowledges everything held and publishes
        the new triggers. Writes the artifacts when due (always when ``final``)."""
        self.stats.pending = len(self.parts)
        if self.store is not None and (final or self.clock() - self._last_artifact >= self.artifact_s):
            self.refresh_jobs()
            self.write_artifacts()
        self.save_state()
        out = Commit(
            ack=list(self._held),
            publish_once=[
                OncePublish(TOPIC_RETRAIN, e, f"drift-trigger:{e['trigger_id']}") for e in self.unsent
            ],
        )
        self._held.clear()
        self.unsent = []
        self._last_checkpoint = self.clock()
        return out

    def republish(self) -> Commit:
        """At start: publish (at most once, by key) every trigger the restored state holds."""
        return Commit(
            publish_once=[
                OncePublish(TOPIC_RETRAIN, e, f"drift-trigger:{e['trigger_id']}")
                for e in [*self.service.published, *self.unsent]
            ]
        )

    # ------------------------------------------------------------------ artifacts
    def refresh_jobs(self) -> None:
        if self.read_jobs is not None:
            self.service.add_jobs(self.read_jobs(self.store))
        if self._last_closed is not None:
            self.service.apply_jobs(self._last_closed)

    def write_artifacts(self) -> None:
        self.stats.pending = len(self.parts)
        if self.write is not None:
            self.write(self.service, {**asdict(self.stats), "matched": self.stats.joined}, self.store)
        self._last_artifact = self.clock()


def run_bus(
    bus: Bus,
    handler: DriftBusHandler,
    *,
    consumer: str,
    stop: Any = None,
    until_idle: bool = False,
    block_ms: int = 500,
    count: int = 500,
) -> Any:
    """Run the consumer loop with ``handler`` until ``stop`` (or idle, with ``until_idle``).

    Whenever a read comes back empty the loop returns here and what the handler holds is
    checkpointed and acknowledged (a quiet stream leaves nothing pending); a final checkpoint
    commits what is held on return.
    """
    from infra.bus import Consumer

    bus.apply(GROUP, handler.republish())
    loop = Consumer(bus, TOPICS, GROUP, consumer, handler, count=count, block_ms=block_ms)
    while True:
        stats = loop.run(stop=stop, until_idle=True)
        if handler.held:
            bus.apply(GROUP, handler.checkpoint())
            loop.held.clear()  # acknowledged outside the loop's own commit
        if until_idle or (stop is not None and stop.is_set()):
            break
    bus.apply(GROUP, handler.checkpoint(final=True))
    loop.held.clear()
    return stats
