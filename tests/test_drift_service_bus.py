"""The drift detector as a bus service (ml.drift_bus): join, duplicates, bounds, restart, Redis."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infra.bus import TOPIC_EXECUTION, TOPIC_POSITION, TOPIC_RETRAIN, TOPIC_SIGNAL, MemoryBus, new_event
from infra.bus.consumer import check_message
from ml.drift_bus import GROUP, TOPICS, DriftBusHandler, run_bus, trade_won
from ml.drift_monitor import DriftService
from tests.redis_server import RedisServer, redis_binary

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ROOT = Path(__file__).resolve().parent.parent


def planted(n: int, change: int, drop: float, seed: int = 3) -> list[tuple[float, bool]]:
    """``n`` trades of a calibrated model (win probability = confidence) whose win probability
    falls by ``drop`` from trade ``change`` on."""
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.55, 0.9, n)
    p = np.where(np.arange(n) < change, conf, conf - drop)
    return list(zip(conf.tolist(), (rng.random(n) < p).tolist(), strict=True))


def events(i: int, conf: float, won: bool, *, dup: str = "") -> dict[str, dict]:
    """The signal, execution and close of trade ``i`` (a BUY at 100 that closes at 101 if it won)."""
    oid = f"o{i}"
    opened = T0 + dt.timedelta(minutes=5 * i)
    sig = new_event(TOPIC_SIGNAL, {"symbol": "BTC", "action": "BUY", "confidence": conf, "model_version": "m1", "order_id": oid}, ts=opened, event_id=f"{oid}:s{dup}")  # fmt: skip
    exe = new_event(TOPIC_EXECUTION, {"order_id": oid, "symbol": "BTC", "side": "LONG", "entry_price": 100.0, "size_usd": 1000.0, "confidence": conf, "multiplier_used": 1.0, "state": [conf, 0.0, 0.0]}, ts=opened, event_id=f"{oid}:e{dup}")  # fmt: skip
    exit_price = 101.0 if won else 99.0
    close = new_event(TOPIC_POSITION, {"order_id": oid, "symbol": "BTC", "status": "CLOSED", "unrealized_pnl_usd": 0.0, "realized_pnl_usd": -1.0, "mark_price": exit_price}, ts=opened + dt.timedelta(minutes=5), event_id=f"{oid}:c{dup}")  # fmt: skip
    return {TOPIC_SIGNAL: sig, TOPIC_EXECUTION: exe, TOPIC_POSITION: close}


def publish(bus, trades, start: int = 0, order=(TOPIC_SIGNAL, TOPIC_EXECUTION, TOPIC_POSITION)) -> None:
    items = []
    for i, (c, w) in enumerate(trades, start):
        ev = events(i, c, w)
        items.extend((t, ev[t]) for t in order)
    bus.publish_many(items)


def triggers_on(bus) -> list:
    bus.ensure_group(TOPIC_RETRAIN, "check")
    msgs = bus.read([TOPIC_RETRAIN], "check", "c", count=1000, block_ms=0)
    assert all(check_message(m) is None for m in msgs)  # decodes the payload on Redis
    return msgs


def test_trade_won_is_the_direction_not_the_pnl() -> None:
    # a BUY that rose less than the fees: right direction (won), negative PnL
    assert trade_won("BUY", 100.0, 100.01, -0.5) is True
    assert trade_won("SELL", 100.0, 100.01, 0.5) is False
    assert trade_won("SELL", 100.0, 99.0, None) is True
    assert trade_won("BUY", None, None, -0.1) is False  # no prices: realized PnL decides


def test_bus_mode_matches_batch_on_a_planted_drop() -> None:
    trades = planted(3000, change=1500, drop=0.25)
    batch = DriftService(publisher=MemoryBus())
    for i, (c, w) in enumerate(trades):
        batch.process_trade(order_id=f"o{i}", closed_at=pd.Timestamp(T0 + dt.timedelta(minutes=5 * i + 5)), confidence=c, won=w, model="m1")  # fmt: skip
    outcome = [d for d in batch.detections if d["kind"] != "distribution_shift"]
    assert outcome and all(int(d["order_id"][1:]) >= 1500 for d in outcome)  # none before the change

    bus = MemoryBus()
    publish(bus, trades)
    handler = DriftBusHandler(DriftService(publisher=bus), checkpoint_every=50)
    run_bus(bus, handler, consumer="t", until_idle=True, block_ms=10)
    got = handler.service.detections
    assert [(d["kind"], d["order_id"]) for d in got] == [(d["kind"], d["order_id"]) for d in batch.detections]
    assert handler.stats.joined == 3000 and handler.stats.pending == 0
    pub = triggers_on(bus)
    accepted = [d["trigger_id"] for d in got if d["trigger_status"] == "accepted"]
    assert accepted and sorted(m.event.trigger_id for m in pub) == sorted(accepted)


def test_close_before_signal_and_duplicates_count_once() -> None:
    bus = MemoryBus()
    trades = [(0.7, True), (0.8, False), (0.6, True)]
    publish(bus, trades, order=(TOPIC_POSITION, TOPIC_EXECUTION, TOPIC_SIGNAL))  # close first
    items = []
    for i, (c, w) in enumerate(trades):  # every event delivered again under a new event id
        ev = events(i, c, w, dup="-again")
        items.extend((t, ev[t]) for t in (TOPIC_SIGNAL, TOPIC_POSITION))
    bus.publish_many(items)
    handler = DriftBusHandler(DriftService(publisher=bus))
    run_bus(bus, handler, consumer="t", until_idle=True, block_ms=10)
    assert handler.service.n_trades == 3
    assert (handler.stats.joined, handler.stats.duplicates) == (3, 6)
    det = handler.service.detector
    assert det.n_trades == 3


def test_pending_orders_are_bounded_and_orphans_counted() -> None:
    bus = MemoryBus()
    sigs = [(TOPIC_SIGNAL, events(i, 0.7, True)[TOPIC_SIGNAL]) for i in range(5)]
    bus.publish_many(sigs)
    handler = DriftBusHandler(DriftService(publisher=bus), max_pending=3)
    run_bus(bus, handler, consumer="t", until_idle=True, block_ms=10)
    assert (handler.stats.orphans_evicted, len(handler.parts)) == (2, 3)
    assert (handler.stats.unmatched_signals, handler.stats.unmatched_trades) == (2, 0)
    assert list(handler.parts) == ["o2", "o3", "o4"]  # the oldest went first
    with pytest.raises(ValueError, match="max_pending"):
        DriftBusHandler(DriftService(publisher=bus), max_pending=0)


def test_restart_from_checkpoint_keeps_state_and_never_triggers_twice(tmp_path) -> None:
    trades = planted(3000, change=1500, drop=0.25)
    bus = MemoryBus()
    publish(bus, trades[:2000])
    state = tmp_path / "drift.pkl"
    first = DriftBusHandler(DriftService(publisher=bus), state_path=state, checkpoint_every=300)
    run_bus(bus, first, consumer="t", until_idle=True, block_ms=10)
    n_first = first.service.n_trades
    # a crash after the last checkpoint: the state on disk, then more events
    publish(bus, trades[2000:], start=2000)
    second = DriftBusHandler(DriftService(publisher=bus), state_path=state, checkpoint_every=300)
    assert second.load_state() and second.service.n_trades == n_first == 2000
    run_bus(bus, second, consumer="t", until_idle=True, block_ms=10)
    assert second.service.n_trades == 3000
    ids = [m.event.trigger_id for m in triggers_on(bus)]
    assert ids and len(ids) == len(set(ids))


@pytest.mark.redis
def test_redis_service_kill_9_and_restart(tmp_path) -> None:
    redis_binary()
    from infra.bus import connect_bus

    server = RedisServer(tmp_path / "redis").start()
    env = {**os.environ, "LOGS_DIR": str(tmp_path / "logs"), "ENV": "dev", "METRICS_PORT_DRIFT_SERVICE": "-1"}
    cmd = [sys.executable, "-m", "ml.drift_service", "--bus", server.url, "--consumer", "d1"]
    # the first run checkpoints every 4,000 messages and never on time: what came after its last
    # checkpoint is still pending (held) when it is killed
    first = [*cmd, "--checkpoint-every", "4000", "--checkpoint-s", "3600"]
    bus = connect_bus(server.url)
    trades = planted(3000, change=1500, drop=0.25)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        out = open(tmp_path / "drift.log", "ab")  # noqa: SIM115
        procs.append(subprocess.Popen(first, cwd=ROOT, env=env, stdout=out, stderr=out))
        publish(bus, trades[:2000])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not bus.groups(TOPIC_POSITION):
            time.sleep(0.2)
        while (
            time.monotonic() < deadline and next(g for g in bus.groups(TOPIC_POSITION) if g.name == GROUP).lag
        ):
            time.sleep(0.01)  # kill before the idle checkpoint (after a 500 ms empty read)
        held = sum(g.pending for t in TOPICS for g in bus.groups(t) if g.name == GROUP)
        os.kill(procs[0].pid, signal.SIGKILL)  # crash: no final checkpoint
        procs[0].wait()
        assert held > 0  # the kill interrupted work: delivered, not yet acknowledged
        publish(bus, trades[2000:], start=2000)
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            next(g for g in bus.groups(TOPIC_POSITION) if g.name == GROUP).lag
            or next(g for g in bus.groups(TOPIC_POSITION) if g.name == GROUP).pending
        ):
            time.sleep(0.2)
        procs[1].send_signal(signal.SIGTERM)
        assert procs[1].wait(timeout=30) == 0
        from infra.settings import load_settings
        from infra.store import open_store

        log = (tmp_path / "drift.log").read_text()
        restored = int(log.split("restored ")[1].split(" trades")[0])
        assert 0 < restored < 2000  # started from the checkpoint, not from zero nor from the end
        drift = open_store(load_settings({"LOGS_DIR": str(tmp_path / "logs")})).read("drift").data
        assert drift["n_trades"] == 3000 and drift["join"]["joined"] == 3000
        outcome = [d for d in drift["detections"] if d["kind"] != "distribution_shift"]
        assert outcome and all(int(d["order_id"][1:]) >= 1500 for d in outcome)
        ids = [m.event.trigger_id for m in triggers_on(bus)]
        accepted = [d["trigger_id"] for d in drift["detections"] if d["trigger_status"] == "accepted"]
        assert ids and sorted(ids) == sorted(accepted)  # each trigger exactly once
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        bus.close()
        server.stop()
