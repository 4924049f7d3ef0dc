"""Feedback bridge: executions and position updates in, exactly one ``rl.feedback`` per closed trade out.

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
    Each batch of messages is processed in memory and then written with one atomic, idempotent
    :meth:`~infra.eventbus.Bus.commit`: the acknowledgements, the dead letters, the open-trade and
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
import signal
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from execution.reward_calculator import DEFAULT_REWARD_PARAMS, RewardParams, compute_reward_breakdown
from infra import wire
from infra.cli import run_cli
from infra.event_schemas import acceptor, validate_event
from infra.eventbus import (
    TOPIC_EXECUTION,
    TOPIC_FEEDBACK,
    TOPIC_POSITION,
    Bus,
    BusUnavailableError,
    Message,
    OncePublish,
    connect_bus,
    dead_letter_once,
    utc_iso_of,
)
from infra.gcpause import gc_paused

if TYPE_CHECKING:
    from scripts.pipeline import DemoContext

log = logging.getLogger(__name__)

DEFAULT_GROUP = "feedback-bridge"
DEFAULT_NAMESPACE = "feedback_bridge"

_ACCEPT_EXECUTION = acceptor(TOPIC_EXECUTION)
_ACCEPT_POSITION = acceptor(TOPIC_POSITION)
_new_once = partial(tuple.__new__, OncePublish)  # OncePublish without its generated __new__


def feedback_key(order_id: str) -> str:
    """Once-key of the feedback of ``order_id`` (set atomically with its publish)."""
    return f"{TOPIC_FEEDBACK}:{order_id}"


_iso = dt.datetime.fromisoformat


def _epoch(ts: str) -> float:
    return _iso(ts).timestamp()


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
    dead_lettered: int = 0
    """Invalid events copied to a dead-letter stream."""
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
    keep_rewards : bool
        Keep every published reward in ``stats.rewards`` (the demo uses them).
    gc_pause : bool
        Pause CPython's cyclic garbage collector while a batch is processed (the batch work
        creates no reference cycles). Without it, the batch's in-flight objects are promoted by
        young collections and trigger full collections: about a fifth of the in-memory
        bridge's time (``bench/bench_feedback.py`` measures both).
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
        gc_pause: bool = True,
    ) -> None:
        if count < 1:
            raise ValueError(f"The 'count' parameter of FeedbackBridge must be >= 1. Got {count!r} instead.")
        self.bus = bus
        self.group = group
        self.consumer = consumer
        self.ns_open = f"{namespace}:open"
        self.ns_parked = f"{namespace}:parked"
        self.params = params
        self.count = count
        self.block_ms = block_ms
        self.reclaim_idle_ms = reclaim_idle_ms
        self.keep_rewards = keep_rewards
        self.gc_pause = gc_pause
        self.stats = BridgeStats()
        self.feedback: list[dict[str, Any]] = []
        self.done_cache_size = 200_000
        self._open: dict[str, dict[str, Any]] = {}
        self._parked: dict[str, dict[str, Any]] = {}
        self._done: dict[str, None] = {}  # insertion-ordered set of published order ids
        self._state_loaded = False  # _open and _parked hold the whole stored state
        self._topics = (TOPIC_EXECUTION, TOPIC_POSITION)
        for t in self._topics:
            bus.ensure_group(t, group)

    # -- the loop -----------------------------------------------------------------------------
    def run(self, *, stop: threading.Event | None = None, until_idle: bool = False) -> BridgeStats:
        """Process batches until ``stop`` is set (or, with ``until_idle``, until nothing is left).

        Own pending messages (left by a previous run of this consumer) come first, then messages
        reclaimed from idle consumers, then new ones. A Redis outage longer than the bus's retry
        deadline is logged and retried here, so the bridge waits instead of dying.
        """
        own_pending = True
        next_reclaim = 0.0  # reclaiming scans the pending lists: at most every reclaim_idle_ms / 2 (<= 5 s)
        while stop is None or not stop.is_set():
            try:
                batch: list[Message] = []
                if own_pending:
                    batch = self.bus.read(
                        self._topics, self.group, self.consumer, count=self.count, pending=True
                    )
                    own_pending = bool(batch)
                if not batch and time.monotonic() >= next_reclaim:
                    next_reclaim = time.monotonic() + min(self.reclaim_idle_ms / 2000.0, 5.0)
                    for t in self._topics:
                        batch.extend(
                            self.bus.reclaim(
                                t,
                                self.group,
                                self.consumer,
                                min_idle_ms=self.reclaim_idle_ms,
                                count=self.count,
                            )
                        )
                    if batch:
                        next_reclaim = 0.0
                if not batch:
                    batch = self.bus.read(
                        self._topics,
                        self.group,
                        self.consumer,
                        count=self.count,
                        block_ms=self.block_ms,
                        copy=False,  # the bridge never mutates an event (see _process)
                    )
                if not batch:
                    if until_idle:
                        break
                    continue
                self.process(batch)
            except BusUnavailableError as exc:
                log.error("feedback bridge: %s; waiting for the bus", exc)
                own_pending = True
                if stop is not None:
                    stop.wait(1.0)
                else:
                    time.sleep(1.0)
        return self.stats

    # -- one batch ----------------------------------------------------------------------------
    def process(self, batch: Sequence[Message]) -> None:
        """Apply one batch and commit it atomically (see the module docstring).

        The bridge caches the state it committed (it is the only writer of its namespace); when
        anything fails before the commit returns, the cache is dropped and reloaded from the bus.
        With ``gc_pause`` the cyclic garbage collector is paused for the batch (see
        :mod:`infra.gcpause`).
        """
        try:
            if self.gc_pause:
                with gc_paused():
                    self._process(batch)
            else:
                self._process(batch)
        except BaseException:
            self._open.clear()
            self._parked.clear()
            self._done.clear()
            self._state_loaded = False
            raise

    def _load(self, order_ids: Iterable[str]) -> None:
        """Bring the state of ``order_ids`` into the cache.

        The open trades and parked updates are read whole once (the bridge is the only writer of
        its namespace, so the cache then stays complete until a failure drops it); order ids found
        in neither are checked against the feedback once-keys, which are not cached whole.
        """
        opens, parked, done = self._open, self._parked, self._done
        if not self._state_loaded:
            opens.update((k, wire.decode(v)) for k, v in self.bus.state_all(self.ns_open).items())
            parked.update((k, wire.decode(v)) for k, v in self.bus.state_all(self.ns_parked).items())
            self._state_loaded = True
        unknown = [o for o in order_ids if o not in opens and o not in parked and o not in done]
        if not unknown:
            return
        for oid, was in zip(unknown, self.bus.seen([feedback_key(o) for o in unknown])):
            if was:
                done[oid] = None
        while len(done) > self.done_cache_size:
            del done[next(iter(done))]

    def _process(self, batch: Sequence[Message]) -> None:
        dead: list[tuple[Message, str]] = []
        good: list[Message] = []
        executions: list[Message] = []
        updates: list[Message] = []
        accept_execution, accept_update = _ACCEPT_EXECUTION, _ACCEPT_POSITION
        for msg in batch:
            # the schemas' fast path first (a valid event costs one call), the verdict otherwise
            ev = msg.event
            if msg.error is None and type(ev) is dict:
                topic = msg.topic
                if topic == TOPIC_EXECUTION:
                    if accept_execution(ev):
                        good.append(msg)
                        executions.append(msg)
                        continue
                elif topic == TOPIC_POSITION and accept_update(ev):
                    good.append(msg)
                    updates.append(msg)
                    continue
            reason = msg.error or validate_event(msg.topic, ev)
            if reason is not None:
                dead.append((msg, reason))
                continue
            good.append(msg)
            # executions first: parking makes the order irrelevant, this only saves parking work
            (executions if msg.topic == TOPIC_EXECUTION else updates).append(msg)
        self._load({m.event["order_id"]: None for m in good if m.event is not None})
        opens, parked, done = self._open, self._parked, self._done
        stats = self.stats
        touched_open: set[str] = set()
        touched_parked: set[str] = set()
        out: list[OncePublish] = []
        late_dead: list[OncePublish] = []  # dead letters of parked updates (acknowledged when parked)
        duplicates = tracked = 0
        for msg in executions:
            ev = msg.event
            if ev is None:  # cannot happen: validation rejects it
                continue
            oid = ev["order_id"]
            if oid in done or oid in opens:
                duplicates += 1
                continue
            opens[oid] = {
                "order_id": oid,
                "symbol": ev["symbol"],
                "side": ev["side"],
                "size_usd": float(ev["size_usd"]),
                "entry_price": float(ev["entry_price"]),
                "confidence": float(ev["confidence"]),
                "multiplier_used": float(ev["multiplier_used"]),
                "state": ev["state"],
                "opened_at": ev["ts"],
                "worst_pnl_usd": 0.0,
            }
            touched_open.add(oid)
            tracked += 1
            waiting = parked.pop(oid, None)
            if waiting:
                touched_parked.add(oid)
                for upd in sorted(waiting.values(), key=lambda e: (_epoch(e["ts"]), e["status"] == "CLOSED")):
                    stats.unparked += 1
                    if self._apply_update(opens, done, out, late_dead, oid, upd, None):
                        break
        for msg in updates:
            ev = msg.event
            if ev is None:
                continue
            oid = ev["order_id"]
            trade = opens.get(oid)
            if trade is None:
                if oid in done:
                    duplicates += 1
                    continue
                slot = parked.setdefault(oid, {})
                if ev["event_id"] not in slot:
                    slot[ev["event_id"]] = ev
                    stats.parked += 1
                touched_parked.add(oid)
                continue
            touched_open.add(oid)
            if ev["status"] == "CLOSED":
                self._apply_update(opens, done, out, dead, oid, ev, msg)
            elif ev["unrealized_pnl_usd"] < trade["worst_pnl_usd"]:  # an OPEN update, inlined
                trade["worst_pnl_usd"] = float(ev["unrealized_pnl_usd"])
        encode = wire.encode
        state_set = {
            self.ns_open: {o: encode(opens[o]) for o in touched_open if o in opens},
            self.ns_parked: {o: encode(parked[o]) for o in touched_parked if parked.get(o)},
        }
        state_delete = {
            self.ns_open: [o for o in touched_open if o not in opens],
            self.ns_parked: [o for o in touched_parked if not parked.get(o)],
        }
        self.bus.commit(
            self.group,
            ack=good,
            dead=dead,
            publish_once=[*out, *late_dead] if late_dead else out,
            state_set=state_set,
            state_delete=state_delete,
        )
        stats.duplicates += duplicates
        stats.tracked += tracked
        stats.dead_lettered += len(dead) + len(late_dead)
        stats.closed += len(out)
        stats.messages += len(batch)
        stats.batches += 1
        if self.keep_rewards:
            self.feedback.extend(dict(o.event) for o in out)
            stats.rewards.extend(float(o.event["reward"]) for o in out)

    def _apply_update(
        self,
        opens: dict[str, dict[str, Any]],
        done: dict[str, None],
        out: list[OncePublish],
        dead: list[Any],
        oid: str,
        ev: dict[str, Any],
        msg: Message | None,
    ) -> bool:
        """Apply one position update to an open trade; True when it closed the trade.

        A close whose feedback cannot be computed (a size so small that the PnL percent overflows)
        is dead-lettered with the reason and ends the trade, instead of failing the whole batch
        again on every retry. ``dead`` takes ``(message, reason)`` pairs for a delivered update and
        ready :class:`OncePublish` dead letters for a parked one (``msg is None``).
        """
        trade = opens[oid]
        if ev["status"] != "CLOSED":
            pnl = ev["unrealized_pnl_usd"]
            if pnl < trade["worst_pnl_usd"]:
                trade["worst_pnl_usd"] = float(pnl)
            return False
        pnl = float(ev["realized_pnl_usd"])
        if pnl < trade["worst_pnl_usd"]:
            trade["worst_pnl_usd"] = pnl
        try:
            feedback = self._feedback(trade, ev, pnl)
        except (ValueError, OverflowError) as exc:
            reason = f"cannot compute the feedback of order {oid!r}: {exc}"
            if msg is not None:  # dead-lettered and acknowledged with the batch
                dead.append((msg, reason))
            else:  # a parked update, acknowledged when it was parked: its dead letter only
                parked_msg = Message(TOPIC_POSITION, f"parked:{ev['event_id']}", ev)
                dead.append(dead_letter_once(parked_msg, reason, self.group))
        else:
            out.append(_new_once((TOPIC_FEEDBACK, feedback, feedback_key(oid))))
        del opens[oid]
        done[oid] = None
        return True

    def _feedback(self, trade: dict[str, Any], ev: dict[str, Any], pnl_usd: float) -> dict[str, Any]:
        size = trade["size_usd"]
        pnl_pct = pnl_usd / size * 100.0
        closed = _iso(ev["ts"])
        # aware datetimes subtract exactly (in microseconds), whatever their offsets
        duration_mins = (closed - _iso(trade["opened_at"])).total_seconds() / 60.0
        if duration_mins < 0.0:
            duration_mins = 0.0
        max_dd = -trade["worst_pnl_usd"] / size * 100.0
        if max_dd < 0.0:
            max_dd = 0.0
        b = compute_reward_breakdown(
            pnl_pct=pnl_pct,
            duration_mins=duration_mins,
            max_drawdown_pct=max_dd,
            confidence=trade["confidence"],
            params=self.params,
        )
        if not (b.reward - b.reward == 0.0 and b.sharpe_contribution - b.sharpe_contribution == 0.0):
            # (x - x is 0.0 for a finite float, NaN for an infinite or NaN one)
            raise ValueError(f"reward {b.reward!r} from pnl_pct {pnl_pct!r} is not finite")
        oid = trade["order_id"]
        return {
            "event_id": f"fb-{oid}",
            "ts": utc_iso_of(ev["ts"], closed),
            "schema": TOPIC_FEEDBACK,
            "order_id": oid,
            "symbol": trade["symbol"],
            "pnl_usd": pnl_usd,
            "pnl_pct": pnl_pct,
            "duration_mins": duration_mins,
            "max_drawdown_pct": max_dd,
            "sharpe_contribution": b.sharpe_contribution,
            "reward": b.reward,
            "confidence": trade["confidence"],
            "state": trade["state"],
            "multiplier_used": trade["multiplier_used"],
            "opened_at": trade["opened_at"],
            "closed_at": ev["ts"],
            "reward_components": {
                "base": b.base,
                "duration_penalty": b.duration_penalty,
                "drawdown_penalty": b.drawdown_penalty,
                "confidence_penalty": b.confidence_penalty,
                "sharpe_bonus": b.sharpe_bonus,
            },
        }

    def open_trades(self) -> dict[str, dict[str, Any]]:
        """Open-trade state as stored in the bus."""
        return {k: wire.decode(v) for k, v in self.bus.state_all(self.ns_open).items()}

    def parked_updates(self) -> dict[str, dict[str, Any]]:
        """Parked updates per order id, as stored in the bus."""
        return {k: wire.decode(v) for k, v in self.bus.state_all(self.ns_parked).items()}


def demo_step(ctx: DemoContext) -> str:
    """Replay the demo trades through the bridge on the in-memory bus; write the ``feedback`` artifact."""
    from execution.feedback_report import feedback_report
    from infra.loaders import load_trades
    from scripts.replay_trades import replay, trade_events

    trades = load_trades(ctx.trades_path)
    events = trade_events(
        trades,
        updates_per_trade=2,
        duplicate_rate=0.02,
        shuffle_window=32,
        late_executions=0.02,
        seed=ctx.seed,
    )
    replay(ctx.bus, events)
    bridge = FeedbackBridge(ctx.bus, consumer="demo", keep_rewards=True, block_ms=0, count=200)
    stats = bridge.run(until_idle=True)
    report = feedback_report(
        bridge.feedback,
        stats=stats.as_dict(),
        trades_in_log=len(trades),
        open_trades=len(bridge.open_trades()),
        parked_orders=len(bridge.parked_updates()),
        params=asdict(bridge.params),
    )
    ctx.store.write("feedback", report, source="execution.feedback_bridge")
    return (
        f"{stats.closed} feedback events from {len(trades)} trades; tracked {stats.tracked}, "
        f"parked {stats.parked}, duplicates {stats.duplicates}, dead-lettered {stats.dead_lettered}; "
        f"mean reward {report['reward']['mean']:.3f}"
    )


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
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("feedback bridge: signal %d, finishing the current batch", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
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
