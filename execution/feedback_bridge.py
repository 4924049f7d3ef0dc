"""Feedback bridge: executions and position updates in, exactly one ``rl.feedback`` per closed trade out.

Why this file is long: it is one service, the order state machine (open and parked orders in Redis
hashes) with its atomic commit per batch and its ``main()``; the consumer loop is
:mod:`infra.bus.consumer` and the reward :mod:`execution.reward_calculator`.

``python -m execution.feedback_bridge [--bus URL]`` consumes ``trade.execution.res`` and
``trade.position.update`` as one consumer of a consumer group and tracks every trade by
``order_id`` (never by symbol and side):

* an execution opens the trade (entry, size, confidence, multiplier, state vector, open time);
* an ``OPEN`` update lowers the trade's worst PnL to ``min(worst, unrealized_pnl_usd)``;
* a ``CLOSED`` update closes it: ``pnl_pct = realized_pnl_usd / size_usd * 100``, ``duration_mins``
  from the two event timestamps, ``max_drawdown_pct = max(0, -worst / size_usd * 100)`` (the close's
  realized PnL counts towards the worst), the reward from :mod:`execution.reward_calculator`;
* an update that arrives before its execution is *parked* (kept in state under its event id) and
  applied, in timestamp order, when the execution arrives;
* anything for an order whose feedback was already published (a duplicate close, a replayed
  execution, a late update) is counted and ignored.

Exactly once
    The bridge is a handler of the bus's one consumer loop (:class:`infra.bus.Consumer`), which
    reads, decodes and validates the events against their contracts (:mod:`infra.contracts.events`)
    and dead-letters the invalid ones. Each batch is processed in memory and the handler returns
    what the loop writes with one atomic, idempotent :meth:`~infra.bus.Bus.commit`: the acknowledgements, the dead letters, the open-trade and
    parked state, and the feedback events as *once-publishes* keyed ``rl.feedback:<order_id>``
    (with Redis: one ``MULTI``/``EXEC`` whose feedback ``XADD`` runs in a Lua script that checks and
    sets the key). A bridge killed before the commit leaves its messages pending and the state
    untouched; on restart it re-reads its own pending messages (same consumer name) and reclaims
    those of dead consumers, so no trade is lost and none is published twice. Open-trade state
    lives in the bus (``bus:state:<namespace>:open`` in Redis), so it survives restarts.

Run one bridge per consumer group (several instances would need sharding by ``order_id``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import socket
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import msgspec

from execution.reward_calculator import DEFAULT_REWARD_PARAMS, RewardParams, compute_reward_breakdown
from infra.bus import (
    TOPIC_EXECUTION,
    TOPIC_FEEDBACK,
    TOPIC_POSITION,
    Bus,
    Commit,
    Consumer,
    Message,
    OncePublish,
    connect_bus,
    stop_on_signals,
)
from infra.bus.message import dead_letter_once
from infra.cli import run_cli
from infra.contracts.events import Feedback, PositionUpdate, RewardComponents
from infra.validate import check_int

log = logging.getLogger(__name__)

DONE_CACHE_SIZE = 20_000
"""Published order ids the bridge keeps in memory; the oldest leave first (Redis keeps the truth)."""

DEFAULT_GROUP = "feedback-bridge"
DEFAULT_NAMESPACE = "feedback_bridge"

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_PARKED = msgspec.convert
"""A parked update (stored with ``msgspec.to_builtins``) back to its typed event."""


def feedback_key(order_id: str) -> str:
    """Once-key of the feedback of ``order_id`` (set atomically with its publish)."""
    return f"{TOPIC_FEEDBACK}:{order_id}"


def _parse_ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _update_order(item: tuple[PositionUpdate, Message | None]) -> tuple[dt.datetime, bool]:
    return item[0].ts, item[0].status == "CLOSED"


@dataclass
class BridgeStats:
    """Counters of one bridge process."""

    tracked: int = 0
    """Executions that opened a trade."""
    closed: int = 0
    """Trades closed and published (once-publish accepted in this process)."""
    parked: int = 0
    """Updates that arrived before their execution and were parked."""
    unparked: int = 0
    """Parked updates applied once their execution arrived."""
    duplicates: int = 0
    """Executions of open trades and events of already-published trades (ignored)."""
    deferred: int = 0
    orphans: int = 0
    """Orders whose parked updates were dropped: no execution came (see ``orphan_after``)."""
    """Closes that waited for older updates pending in another consumer (restart under a new name)."""
    dead_lettered: int = 0
    """Invalid events, and closes whose feedback cannot be computed, copied to a dead-letter stream."""
    messages: int = 0
    batches: int = 0
    rewards: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("rewards")
        return d


class FeedbackBridge:
    """Turns execution and position-update streams into ``rl.feedback`` events.

    Parameters
    ----------
    bus : Bus
        Any backend; with Redis the open-trade state is kept in Redis.
    group, consumer : str
        Consumer group and this process's consumer name (keep it stable across restarts).
    namespace : str
        Prefix of the bridge's state in the bus.
    params : RewardParams
        Reward parameters.
    count : int
        Messages read per topic and batch.
    block_ms : int
        Longest wait for new messages (also bounds the SIGTERM reaction time).
    reclaim_idle_ms : int
        Messages pending longer than this in other consumers are taken over.
    max_parked_orders : int
        Most orders with parked updates (updates whose execution has not arrived). Beyond it the
        orders parked longest are dropped as orphans.
    orphan_after : timedelta
        Parked updates of an order whose newest update is this much older, in event time, than
        the newest event the bridge has seen are dropped as orphans (the execution never came).
        Orphans go to the position topic's dead-letter stream with the reason, and are counted
        in ``stats.orphans``.
    keep_rewards : bool
        Keep every published feedback in ``feedback`` and its reward in ``stats.rewards`` (the demo
        uses them).
    """

    def __init__(
        self,
        bus: Bus,
        *,
        group: str = DEFAULT_GROUP,
        consumer: str = "bridge-1",
        namespace: str = DEFAULT_NAMESPACE,
        params: RewardParams = DEFAULT_REWARD_PARAMS,
        count: int = 500,
        block_ms: int = 500,
        reclaim_idle_ms: int = 30_000,
        keep_rewards: bool = False,
        max_parked_orders: int = 50_000,
        orphan_after: dt.timedelta = dt.timedelta(days=2),
    ) -> None:
        check_int(count, param="count", func="FeedbackBridge", minimum=1)
        check_int(max_parked_orders, param="max_parked_orders", func="FeedbackBridge", minimum=1)
        self.bus = bus
        self.group = group
        self.consumer = consumer
        self.ns_open = f"{namespace}:open"
        self.ns_parked = f"{namespace}:parked"
        self.params = params
        self.keep_rewards = keep_rewards
        self.max_parked_orders = max_parked_orders
        self.orphan_after = orphan_after
        self._newest: dt.datetime | None = None  # newest event time seen (the orphan clock)
        self._batches = 0
        self.stats = BridgeStats()
        self.feedback: list[dict[str, Any]] = []
        # Published order ids remembered in memory; the truth is the feedback key in Redis
        # (``bus.seen``), so this only saves a round trip for late duplicates. 20,000 trades (400 s
        # at 50 trades/s) cover any shuffle window; the hour soak showed 200,000 growing the
        # bridge's RSS by a third (about 90 bytes per trade) before the bound was reached.
        self.done_cache_size = DONE_CACHE_SIZE
        self._open: dict[str, dict[str, Any]] = {}
        self._parked: dict[str, dict[str, Any]] = {}
        self._done: dict[str, None] = {}  # insertion-ordered set of published order ids
        self._state_loaded = False  # _open and _parked hold the whole stored state
        self._foreign_clear = False  # no other consumer of the group holds pending entries
        self._defer = True  # closes wait (until _check_foreign has looked)
        self._deferred: set[str] = set()  # open trades holding a deferred close
        self._late_dead = 0
        self._topics = (TOPIC_EXECUTION, TOPIC_POSITION)
        self.loop = Consumer(
            bus,
            self._topics,
            group,
            consumer,
            self.handle,
            count=count,
            block_ms=block_ms,
            reclaim_idle_ms=reclaim_idle_ms,
            on_reset=self.reset,
        )

    # -- the loop -----------------------------------------------------------------------------
    def run(self, *, stop: threading.Event | None = None, until_idle: bool = False) -> BridgeStats:
        """Process batches until ``stop`` is set (or, with ``until_idle``, until nothing is left).

        The loop (:class:`infra.bus.Consumer`) re-reads this consumer's own pending messages
        first, reclaims those of idle consumers, dead-letters invalid events and rides out Redis
        outages (the bridge waits instead of dying).
        """
        self.loop.run(stop=stop, until_idle=until_idle)
        loop_stats = self.loop.stats
        self.stats.messages = loop_stats.messages
        self.stats.batches = loop_stats.batches
        self.stats.dead_lettered = loop_stats.dead_lettered + self._late_dead
        return self.stats

    def reset(self) -> None:
        """Drop the cached state (after a failed step; it is reloaded from the bus)."""
        self._open.clear()
        self._parked.clear()
        self._done.clear()
        self._state_loaded = False
        self._foreign_clear = False
        self._defer = True
        self._deferred.clear()

    def _load(self, order_ids: Iterable[str]) -> None:
        """Bring the state of ``order_ids`` into the cache.

        The open trades and parked updates are read whole once (the bridge is the only writer of
        its namespace, so the cache then stays complete until a failure drops it); order ids found
        in neither are checked against the feedback once-keys, which are not cached whole.
        """
        opens, parked, done = self._open, self._parked, self._done
        if not self._state_loaded:
            opens.update((k, _decode(v)) for k, v in self.bus.state_all(self.ns_open).items())
            parked.update((k, _decode(v)) for k, v in self.bus.state_all(self.ns_parked).items())
            self._deferred.update(k for k, v in opens.items() if "deferred_close" in v)
            self._state_loaded = True
        unknown = [o for o in order_ids if o not in opens and o not in parked and o not in done]
        if not unknown:
            return
        for oid, was in zip(unknown, self.bus.seen([feedback_key(o) for o in unknown]), strict=True):
            if was:
                done[oid] = None
        while len(done) > self.done_cache_size:
            del done[next(iter(done))]

    # -- one batch ----------------------------------------------------------------------------
    def handle(self, batch: Sequence[Message]) -> Commit:
        """Apply one batch of valid events; return what to commit (see the module docstring).

        The bridge caches the state it committed (it is the only writer of its namespace); when
        anything fails before the commit returns, the loop calls :meth:`reset`.
        """
        executions = [m.event for m in batch if m.topic == TOPIC_EXECUTION]
        updates = [m for m in batch if m.topic == TOPIC_POSITION]
        self._load({m.event.order_id: None for m in batch})
        opens, parked, done = self._open, self._parked, self._done
        stats = self.stats
        touched_open: set[str] = set()
        touched_parked: set[str] = set()
        out: list[OncePublish] = []
        dead: list[tuple[Message, str]] = []
        late_dead: list[OncePublish] = []  # dead letters of parked updates (acknowledged when parked)
        duplicates = tracked = unparked = parked_n = 0
        queue: dict[str, list[tuple[PositionUpdate, Message | None]]] = {}
        self._check_foreign()
        for ev in executions:  # executions first: parking makes the order irrelevant, this only saves work
            oid = ev.order_id
            if oid in done or oid in opens:
                duplicates += 1
                continue
            opens[oid] = {
                "order_id": oid,
                "symbol": ev.symbol,
                "side": ev.side,
                "size_usd": ev.size_usd,
                "entry_price": ev.entry_price,
                "confidence": ev.confidence,
                "multiplier_used": ev.multiplier_used,
                "state": ev.state,
                "opened_at": ev.ts.isoformat(),
                "worst_pnl_usd": 0.0,
            }
            if ev.behaviour_logp is not None:
                opens[oid]["behaviour_logp"] = ev.behaviour_logp
            touched_open.add(oid)
            tracked += 1
            waiting = parked.pop(oid, None)
            if waiting:
                touched_parked.add(oid)
                unparked += len(waiting)
                queue[oid] = [(_PARKED(d, PositionUpdate), None) for d in waiting.values()]
        for msg in updates:
            ev = msg.event
            oid = ev.order_id
            if oid not in opens:
                if oid in done:
                    duplicates += 1
                    continue
                slot = parked.setdefault(oid, {})
                if ev.event_id not in slot:
                    slot[ev.event_id] = msgspec.to_builtins(ev)
                    parked_n += 1
                touched_parked.add(oid)
                continue
            queue.setdefault(oid, []).append((ev, msg))
        for oid, items in queue.items():  # each trade's updates in event-time order, its close last
            touched_open.add(oid)
            items.sort(key=_update_order)
            for i, (upd, source) in enumerate(items):
                if self._apply(oid, upd, out, dead if source is not None else late_dead, source):
                    duplicates += len(items) - i - 1  # later than the close: ignored
                    break
        if self._deferred and not self._defer:  # nothing older is pending elsewhere any more
            for oid in sorted(self._deferred):
                trade = opens.get(oid)
                if trade is not None and "deferred_close" in trade:
                    close = _PARKED(trade.pop("deferred_close"), PositionUpdate)
                    touched_open.add(oid)
                    self._apply(oid, close, out, late_dead, None)
            self._deferred.clear()
        for m in batch:
            if self._newest is None or m.event.ts > self._newest:
                self._newest = m.event.ts
        self._batches += 1
        if len(parked) > self.max_parked_orders or (parked and self._batches % 50 == 0):
            touched_parked.update(self._drop_orphans(late_dead))
        state_set = {
            self.ns_open: {o: _encode(opens[o]).decode() for o in touched_open if o in opens},
            self.ns_parked: {o: _encode(parked[o]).decode() for o in touched_parked if parked.get(o)},
        }
        state_delete = {
            self.ns_open: [o for o in touched_open if o not in opens],
            self.ns_parked: [o for o in touched_parked if not parked.get(o)],
        }
        stats.duplicates += duplicates
        stats.tracked += tracked
        stats.unparked += unparked
        stats.parked += parked_n
        stats.closed += len(out)
        self._late_dead += len(late_dead)
        if self.keep_rewards:
            for o in out:
                fb = msgspec.to_builtins(o.event)
                self.feedback.append(fb)
                stats.rewards.append(float(fb["reward"]))
        dead_ids = {id(m) for m, _ in dead}
        return Commit(
            ack=[m for m in batch if id(m) not in dead_ids],
            dead=dead,
            publish_once=[*out, *late_dead],
            state_set=state_set,
            state_delete=state_delete,
        )

    def _drop_orphans(self, late_dead: list[OncePublish]) -> list[str]:
        """Drop parked orders past ``orphan_after`` (event time), and the oldest beyond the bound."""
        if self._newest is None:
            return []
        newest: dict[str, dt.datetime] = {
            oid: max(_parse_ts(u["ts"]) for u in ups.values()) for oid, ups in self._parked.items()
        }
        cutoff = self._newest - self.orphan_after
        by_age = sorted(newest, key=newest.__getitem__)
        excess = (
            len(by_age) - int(self.max_parked_orders * 0.9) if len(by_age) > self.max_parked_orders else 0
        )
        dropped = []
        for i, oid in enumerate(by_age):
            if i >= excess and newest[oid] >= cutoff:
                break
            why = (
                f"orphan: no execution for order {oid!r} within {self.orphan_after} of event time"
                if newest[oid] < cutoff
                else f"orphan: more than {self.max_parked_orders} orders waited for their execution; "
                f"order {oid!r} waited longest"
            )
            for upd in self._parked.pop(oid).values():
                parked_msg = Message(TOPIC_POSITION, f"parked:{upd['event_id']}", _encode(upd))
                late_dead.append(dead_letter_once(parked_msg, why, self.group))
            dropped.append(oid)
        self.stats.orphans += len(dropped)
        if dropped:
            log.warning(
                "feedback bridge: dropped %d orphan orders (updates without an execution)", len(dropped)
            )
        return dropped

    def _check_foreign(self) -> None:
        """Whether closes must wait: another consumer of the group still holds pending entries.

        After a restart under a new consumer name, the old name's pending entries (older updates
        among them) come back only when reclaimed. A close applied before them would miss their
        drawdown, so closes are deferred (kept with the open trade) until no other consumer holds
        pending entries, then applied. Checked on every batch until it is clear, then no more:
        one bridge runs per group, so nothing new can become pending elsewhere.
        """
        if self._foreign_clear:
            return
        foreign = sum(
            n
            for t in self._topics
            for name, n in self.bus.pending_by_consumer(t, self.group).items()
            if name != self.consumer
        )
        self._defer = foreign > 0
        self._foreign_clear = not self._defer
        if self._defer:
            log.info("feedback bridge: %d entries pending in other consumers; closes wait for them", foreign)

    def _apply(
        self,
        oid: str,
        upd: PositionUpdate,
        out: list[OncePublish],
        dead: list[Any],
        msg: Message | None,
    ) -> bool:
        """Apply one position update to the open trade ``oid``; True when it closed the trade.

        A close whose feedback cannot be computed (a size so small that the PnL percent overflows)
        is dead-lettered with the reason and ends the trade, instead of failing the whole batch
        again on every retry. ``dead`` takes ``(message, reason)`` pairs for a delivered update and
        ready :class:`OncePublish` dead letters for a parked one (``msg is None``).
        """
        trade = self._open[oid]
        waiting = trade.get("deferred_close")
        if upd.status != "CLOSED":
            if waiting is None or upd.ts <= _parse_ts(waiting["ts"]):
                trade["worst_pnl_usd"] = min(trade["worst_pnl_usd"], upd.unrealized_pnl_usd)
            return False
        if self._defer:  # an older update may still be pending in another consumer: wait for it
            if waiting is None:
                trade["deferred_close"] = msgspec.to_builtins(upd)
                self._deferred.add(oid)
                self.stats.deferred += 1
            return True
        pnl = float(upd.realized_pnl_usd or 0.0)  # the contract makes it present when CLOSED
        trade["worst_pnl_usd"] = min(trade["worst_pnl_usd"], pnl)
        try:
            feedback = self._feedback(trade, upd, pnl)
        except (ValueError, OverflowError) as exc:
            reason = f"cannot compute the feedback of order {oid!r}: {exc}"
            if msg is not None:  # dead-lettered and acknowledged with the batch
                dead.append((msg, reason))
            else:  # a parked update, acknowledged when it was parked: its dead letter only
                parked_msg = Message(TOPIC_POSITION, f"parked:{upd.event_id}", None)
                dead.append(dead_letter_once(parked_msg, reason, self.group))
        else:
            out.append(OncePublish(TOPIC_FEEDBACK, feedback, feedback_key(oid)))
        del self._open[oid]
        self._done[oid] = None
        return True

    def _feedback(self, trade: dict[str, Any], upd: PositionUpdate, pnl_usd: float) -> Feedback:
        size = trade["size_usd"]
        pnl_pct = pnl_usd / size * 100.0
        opened = _parse_ts(trade["opened_at"])
        # aware datetimes subtract exactly (in microseconds), whatever their offsets
        duration_mins = max((upd.ts - opened).total_seconds() / 60.0, 0.0)
        max_dd = max(-trade["worst_pnl_usd"] / size * 100.0, 0.0)
        if max_dd == 0.0:
            max_dd = 0.0  # never -0.0 (max(-0.0, 0.0) is -0.0): a trade never under water publishes 0.0
        b = compute_reward_breakdown(
            pnl_pct=pnl_pct,
            duration_mins=duration_mins,
            max_drawdown_pct=max_dd,
            confidence=trade["confidence"],
            params=self.params,
        )
        if not (math.isfinite(b.reward) and math.isfinite(b.sharpe_contribution) and math.isfinite(max_dd)):
            raise ValueError(f"reward {b.reward!r} from pnl_pct {pnl_pct!r} is not finite")
        oid = trade["order_id"]
        return Feedback(
            event_id=f"fb-{oid}",
            ts=upd.ts.astimezone(dt.UTC),
            order_id=oid,
            symbol=trade["symbol"],
            pnl_usd=pnl_usd,
            pnl_pct=pnl_pct,
            duration_mins=duration_mins,
            max_drawdown_pct=max_dd,
            sharpe_contribution=b.sharpe_contribution,
            reward=b.reward,
            confidence=trade["confidence"],
            state=trade["state"],
            multiplier_used=trade["multiplier_used"],
            opened_at=opened,
            closed_at=upd.ts,
            behaviour_logp=trade.get("behaviour_logp"),
            reward_components=RewardComponents(
                base=b.base,
                duration_penalty=b.duration_penalty,
                drawdown_penalty=b.drawdown_penalty,
                confidence_penalty=b.confidence_penalty,
                sharpe_bonus=b.sharpe_bonus,
            ),
        )

    def open_trades(self) -> dict[str, dict[str, Any]]:
        """Open-trade state as stored in the bus."""
        return {k: _decode(v) for k, v in self.bus.state_all(self.ns_open).items()}

    def parked_updates(self) -> dict[str, dict[str, Any]]:
        """Parked updates per order id, as stored in the bus."""
        return {k: _decode(v) for k, v in self.bus.state_all(self.ns_parked).items()}


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: run the bridge until SIGTERM/SIGINT (or until idle with ``--until-idle``)."""
    from infra.prom import make_metrics, start_service_metrics
    from infra.settings import load_settings

    parser = argparse.ArgumentParser(
        prog="python -m execution.feedback_bridge", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--bus", default=None, help="bus URL (default: EVENTBUS_URL, else memory://)")
    parser.add_argument("--group", default=DEFAULT_GROUP, help="consumer group (default %(default)s)")
    parser.add_argument(
        "--consumer", default=f"bridge-{socket.gethostname()}", help="consumer name, stable across restarts"
    )
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE, help="state prefix in the bus")
    parser.add_argument("--count", type=int, default=500, help="messages per topic and batch")
    parser.add_argument("--block-ms", type=int, default=500, help="longest wait for new messages")
    parser.add_argument(
        "--reclaim-idle-ms", type=int, default=30_000, help="take over messages idle this long"
    )
    parser.add_argument("--until-idle", action="store_true", help="exit when no message is left")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    url = args.bus or load_settings().eventbus_url
    if url == "memory://":
        log.warning("feedback bridge on memory:// sees only events published in this process")
    bus = connect_bus(url)
    stop = stop_on_signals("feedback bridge")
    bridge = FeedbackBridge(
        bus,
        group=args.group,
        consumer=args.consumer,
        namespace=args.namespace,
        count=args.count,
        block_ms=args.block_ms,
        reclaim_idle_ms=args.reclaim_idle_ms,
    )
    log.info("feedback bridge: consuming %s as %s/%s on %s", bridge._topics, args.group, args.consumer, url)
    topics = (TOPIC_EXECUTION, TOPIC_POSITION, TOPIC_FEEDBACK)  # /metrics: METRICS_PORT_FEEDBACK_BRIDGE
    server = start_service_metrics(make_metrics(), "feedback_bridge", bus=bus, topics=topics, settings=load_settings(), stats=lambda: bridge.stats.as_dict())  # fmt: skip
    stats = bridge.run(stop=stop, until_idle=args.until_idle)
    log.info("feedback bridge stopped: %s", stats.as_dict())
    if server is not None:
        server.shutdown()
    bus.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="python -m execution.feedback_bridge"))
