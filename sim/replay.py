"""Replay a closed-trade log as bus events: execution, position updates, close.

``python -m sim.replay --bus URL --trades PATH [--updates N] [--duplicates RATE]
[--shuffle-window N] [--malformed N] [--seed S]``

Each trade (the closed-trade contract, :func:`infra.loaders.load_trades`) becomes

* one ``trade.execution.res`` at ``opened_at`` (order_id, symbol, side, entry_price, size_usd,
  confidence, ``multiplier_used`` = the trade's multiplier, ``state`` = [confidence, volatility,
  regime] with 0.0 for a missing extra column);
* ``N`` ``trade.position.update`` events with status ``OPEN`` evenly spaced in time; the middle one
  carries the trade's worst excursion (``unrealized_pnl_usd = -max_adverse_pct / 100 * size_usd``),
  the others the straight line from 0 to the final PnL, floored at that worst value;
* one ``trade.position.update`` with status ``CLOSED`` at ``closed_at`` (``realized_pnl_usd`` =
  ``pnl_usd``, ``mark_price`` = ``exit_price``).

Event ids are deterministic (``<order_id>:exec``, ``:upd<k>``, ``:close``), so replaying the same
log twice into Redis publishes nothing new (publish dedupes by ``event_id``).

For testing, the stream can be degraded:

* ``duplicate_rate``: that share of events is sent again with a *new* event id (an application-level
  resend that bus dedupe cannot catch; the consumer must);
* ``shuffle_window``: events move by up to that many places (sort key ``index + U(0, window)``),
  except that each order's position updates keep their relative order (one producer per order
  publishes them in order on one stream); executions can therefore arrive after their updates;
* ``malformed``: that many invalid events (bad JSON, missing fields, out-of-range values);
* ``late_executions``: that share of trades has its execution sent after everything else (a
  lagging execution publisher), so their updates, even their closes, arrive first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from infra.bus import TOPIC_EXECUTION, TOPIC_POSITION, Bus, EventPublisher, connect_bus, new_event
from infra.cli import run_cli

Item = tuple[str, dict[str, Any] | str]
"""(topic, event) -- a str event is a raw (malformed) payload."""


def _ts(value: Any) -> dt.datetime:
    return pd.Timestamp(value).tz_convert("UTC").to_pydatetime()


def _extra(row: Any, name: str) -> float:
    value = getattr(row, name, 0.0)
    try:
        f = float(value)
    except (TypeError, ValueError):
        return 0.0
    return f if math.isfinite(f) else 0.0


def _trade_items(row: Any, updates: int) -> list[tuple[float, int, str, dict[str, Any]]]:
    oid = str(row.order_id)
    opened, closed = _ts(row.opened_at), _ts(row.closed_at)
    size = float(row.size_usd)
    worst = -float(row.max_adverse_pct) / 100.0 * size
    final = float(row.pnl_usd)
    conf = float(row.confidence)
    out: list[tuple[float, int, str, dict[str, Any]]] = []
    exec_payload = {
        "order_id": oid,
        "symbol": str(row.symbol),
        "side": str(row.side),
        "entry_price": float(row.entry_price),
        "size_usd": size,
        "confidence": conf,
        "multiplier_used": float(row.multiplier),
        "state": [conf, _extra(row, "volatility"), _extra(row, "regime")],
    }
    logp = getattr(row, "behaviour_logp", None)
    if logp is not None and math.isfinite(float(logp)):  # a sampled multiplier: a PPO sample
        exec_payload["behaviour_logp"] = float(logp)
    out.append(
        (
            opened.timestamp(),
            0,
            TOPIC_EXECUTION,
            new_event(TOPIC_EXECUTION, exec_payload, ts=opened, event_id=f"{oid}:exec"),
        )
    )
    span = closed - opened
    for k in range(updates):
        frac = (k + 1) / (updates + 1)
        ts = opened + span * frac
        value = worst if k == updates // 2 else max(worst, final * frac)
        upd = {"order_id": oid, "symbol": str(row.symbol), "status": "OPEN", "unrealized_pnl_usd": value}
        out.append(
            (
                ts.timestamp(),
                1 + k,
                TOPIC_POSITION,
                new_event(TOPIC_POSITION, upd, ts=ts, event_id=f"{oid}:upd{k}"),
            )
        )
    close = {
        "order_id": oid,
        "symbol": str(row.symbol),
        "status": "CLOSED",
        "unrealized_pnl_usd": 0.0,
        "realized_pnl_usd": final,
        "mark_price": float(row.exit_price),
    }
    out.append(
        (
            closed.timestamp(),
            1 + updates,
            TOPIC_POSITION,
            new_event(TOPIC_POSITION, close, ts=closed, event_id=f"{oid}:close"),
        )
    )
    return out


def _malformed(i: int, rng: np.random.Generator) -> Item:
    ts = "2025-01-01T00:00:00Z"
    kinds: list[Item] = [
        (TOPIC_EXECUTION, "{not json"),
        (TOPIC_POSITION, "[1, 2, 3]"),
        (TOPIC_EXECUTION, {"event_id": f"bad-{i}", "ts": ts, "schema": TOPIC_EXECUTION, "symbol": "BTCUSDT"}),
        (TOPIC_POSITION, {"event_id": f"bad-{i}", "ts": ts, "schema": TOPIC_POSITION, "order_id": "x",
                          "status": "DONE", "unrealized_pnl_usd": 0.0}),
        (TOPIC_EXECUTION, {"event_id": f"bad-{i}", "ts": ts, "schema": TOPIC_EXECUTION, "order_id": f"bad-{i}",
                           "symbol": "BTCUSDT", "side": "LONG", "entry_price": 100.0, "size_usd": -5.0,
                           "confidence": 0.5, "multiplier_used": 1.0, "state": [0.5]}),
    ]  # fmt: skip
    topic, payload = kinds[int(rng.integers(len(kinds)))]
    # invalid on the wire: publish refuses an invalid event, so it goes out as raw text
    return topic, payload if isinstance(payload, str) else json.dumps(payload)


def trade_events(
    trades: pd.DataFrame,
    *,
    updates_per_trade: int = 2,
    duplicate_rate: float = 0.0,
    shuffle_window: int = 0,
    malformed: int = 0,
    late_executions: float = 0.0,
    seed: int = 0,
) -> list[Item]:
    """Build the event stream of ``trades`` (see the module docstring). Deterministic under ``seed``.

    Examples
    --------
    >>> t = pd.DataFrame({"order_id": ["a"], "symbol": ["BTCUSDT"], "side": ["LONG"],
    ...     "opened_at": [pd.Timestamp("2025-01-01", tz="UTC")], "closed_at": [pd.Timestamp("2025-01-01 02:00", tz="UTC")],
    ...     "entry_price": [100.0], "exit_price": [101.0], "size_usd": [1000.0], "pnl_usd": [10.0],
    ...     "confidence": [0.7], "multiplier": [1.0], "max_adverse_pct": [0.5]})
    >>> [(topic, ev["event_id"]) for topic, ev in trade_events(t, updates_per_trade=1)]
    [('trade.execution.res', 'a:exec'), ('trade.position.update', 'a:upd0'), ('trade.position.update', 'a:close')]
    """
    if updates_per_trade < 0:
        raise ValueError(
            f"The 'updates_per_trade' argument of trade_events must be >= 0. Got {updates_per_trade!r} instead."
        )
    if not 0.0 <= duplicate_rate <= 1.0:
        raise ValueError(
            f"The 'duplicate_rate' argument of trade_events must be in [0, 1]. Got {duplicate_rate!r} instead."
        )
    if not 0.0 <= late_executions <= 1.0:
        raise ValueError(
            f"The 'late_executions' argument of trade_events must be in [0, 1]. Got {late_executions!r} instead."
        )
    if shuffle_window < 0 or malformed < 0:
        raise ValueError(
            "The 'shuffle_window' and 'malformed' arguments of trade_events must be >= 0. "
            f"Got {shuffle_window!r} and {malformed!r} instead."
        )
    rng = np.random.default_rng(seed)
    base: list[tuple[float, int, str, dict[str, Any]]] = []
    for row in trades.itertuples(index=False):
        base.extend(_trade_items(row, updates_per_trade))
    base.sort(key=lambda x: (x[0], x[1]))
    # (sort key, topic, event, original index) ; duplicates get a new id and sit just after their original
    items: list[tuple[float, str, dict[str, Any] | str, int]] = [
        (float(i), t, e, i) for i, (_, _, t, e) in enumerate(base)
    ]
    n_dup = round(duplicate_rate * len(base))
    for j, i in enumerate(sorted(rng.choice(len(base), size=n_dup, replace=False).tolist()) if n_dup else []):
        _, _, topic, ev = base[i]
        items.append((i + 0.5, topic, {**ev, "event_id": f"{ev['event_id']}:dup{j}"}, i))
    if shuffle_window:
        items = [(k + float(rng.uniform(0, shuffle_window)), t, e, i) for k, t, e, i in items]
    items.sort(key=lambda x: x[0])
    if shuffle_window:  # each order's position updates keep their original relative order
        slots: dict[str, list[int]] = {}
        for pos, (_, topic, ev, _) in enumerate(items):
            if topic == TOPIC_POSITION and isinstance(ev, dict):
                slots.setdefault(str(ev["order_id"]), []).append(pos)
        fixed = list(items)
        for positions in slots.values():
            ordered = sorted((items[p] for p in positions), key=lambda x: (x[3], x[0]))
            for p, item in zip(positions, ordered):
                fixed[p] = item
        items = fixed
    out: list[Item] = [(t, e) for _, t, e, _ in items]
    n_late = round(late_executions * len(trades))
    if n_late:
        late = set(rng.choice(trades["order_id"].astype(str).to_numpy(), size=n_late, replace=False).tolist())
        held = [
            (t, e) for t, e in out if t == TOPIC_EXECUTION and isinstance(e, dict) and e["order_id"] in late
        ]
        out = [
            (t, e)
            for t, e in out
            if not (t == TOPIC_EXECUTION and isinstance(e, dict) and e["order_id"] in late)
        ]
        out.extend(held)
    for i in range(malformed):
        out.insert(int(rng.integers(len(out) + 1)), _malformed(i, rng))
    return out


@dataclass(frozen=True)
class ReplayStats:
    events: int
    raw: int


def replay(bus: EventPublisher | Bus, items: Sequence[Item], *, chunk: int = 500) -> ReplayStats:
    """Publish ``items`` in order (dict events pipelined in chunks; raw payloads as-is)."""
    pending: list[tuple[str, dict[str, Any]]] = []
    raw = 0

    def flush() -> None:
        if not pending:
            return
        if isinstance(bus, Bus):
            bus.publish_many(pending)
        else:
            for topic, ev in pending:
                bus.publish(topic, ev)
        pending.clear()

    for topic, ev in items:
        if isinstance(ev, str):
            flush()
            if not isinstance(bus, Bus):
                raise TypeError("raw (malformed) payloads need a Bus with publish_raw")
            bus.publish_raw(topic, ev)
            raw += 1
        else:
            pending.append((topic, ev))
            if len(pending) >= chunk:
                flush()
    flush()
    return ReplayStats(events=len(items) - raw, raw=raw)


def main(argv: Sequence[str] | None = None) -> int:
    from infra.loaders import load_trades

    parser = argparse.ArgumentParser(prog="python -m sim.replay", description=__doc__.split("\n")[0])
    parser.add_argument("--bus", default=None, help="bus URL (default: EVENTBUS_URL, else memory://)")
    parser.add_argument("--trades", required=True, help="closed-trade log (CSV or Parquet)")
    parser.add_argument("--updates", type=int, default=2, help="OPEN updates per trade (default 2)")
    parser.add_argument("--duplicates", type=float, default=0.0, help="share of events resent with a new id")
    parser.add_argument("--shuffle-window", type=int, default=0, help="largest displacement of an event")
    parser.add_argument("--malformed", type=int, default=0, help="number of invalid events to add")
    parser.add_argument("--late-executions", type=float, default=0.0, help="share of executions sent last")
    parser.add_argument("--limit", type=int, default=None, help="replay only the first N trades")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    trades = load_trades(args.trades)
    if args.limit is not None:
        trades = trades.head(args.limit)
    items = trade_events(
        trades,
        updates_per_trade=args.updates,
        duplicate_rate=args.duplicates,
        shuffle_window=args.shuffle_window,
        malformed=args.malformed,
        late_executions=args.late_executions,
        seed=args.seed,
    )
    bus = connect_bus(args.bus)
    stats = replay(bus, items)
    print(
        f"replayed {len(trades)} trades as {stats.events} events ({stats.raw} raw) to {bus.url}: {asdict(stats)}"
    )
    bus.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="python -m sim.replay"))
