"""Paper trading: play the upstream systems of the learning loop against a live bus.

``python -m sim.paper --rate 50 --duration 1h --symbols 8 [--drift-at 30m] [--bus redis://...]``

The driver stands in for what the plan lists as already built upstream of the loop. For every
trade it

1. takes the reference model's out-of-sample signal on a bar (``ml.signal_model`` walk-forward
   on the demo's or the given bars) and publishes ``trade.signal.v5``;
2. asks the :class:`~execution.governor.Governor` for a size from the sizer's state at the bar's
   close (``[confidence, volatility, regime]``, :func:`research.rl_sizer.signals.bar_states`, the
   state the sizer is trained on) and publishes ``trade.execution.res`` with it. ``--policy edge``
   (the default) sizes with the live learned edge sizer: static Kelly until the trainer has written
   a valid checkpoint, then each newer checkpoint the trainer promotes (looked for every
   ``--refresh-every`` seconds, :class:`research.rl_sizer.serving.PolicyRefresher`); ``ppo`` the
   PPO baseline (``--explore`` samples it and records ``behaviour_logp``); ``kelly`` static Kelly;
3. publishes a realistic stream of ``trade.position.update`` events for the next bar: marks
   (one of them the bar's worst excursion against the position), then the close with the realized
   PnL after fees, with out-of-order and duplicate deliveries at configurable rates
   (:func:`sim.replay.trade_events`).

Outcomes come from the bars (entry at a bar's close, exit at the next bar's close), so the model's
real edge is what the loop sees. ``--drift-at`` plants a model-quality change: from then on a share
``--drift-flip`` of outcomes is turned against the signal, which lowers the hit rate the drift
detector watches. The bars are cycled (each pass shifted by the data's span) for as long as the
run lasts; event times are bar times, never the wall clock, so the services' arithmetic is
reproducible. The wall clock only paces publishing at ``--rate`` trades per second.

Every trade sent is recorded (``--audit PATH``, JSON lines: order id, symbol, side, times, size,
PnL, confidence, the drift flag, and the wall times its batch started publishing (the signal)
and finished (the close)), so a run can be
audited against ``rl.feedback`` afterwards.

Why this file is long: the driver, its configuration and the signal table it plays are one
concept (what the upstream systems publish); the events come from :mod:`sim.replay` and the
audit is :mod:`sim.audit`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from execution.governor import Governor, GovernorConfig
from infra.bus import TOPIC_SIGNAL, Bus, connect_bus, new_event
from infra.cli import run_cli
from infra.prom import Metrics, set_governor_policy
from infra.validate import check_int
from research.rl_sizer.serving import POLICIES, PolicyRefresher

log = logging.getLogger(__name__)

SIGNAL_COLUMNS = (
    "symbol",
    "ts",
    "next_ts",
    "p_up",
    "model_version",
    "entry",
    "exit",
    "low",
    "high",
    "volatility",
    "regime",
)
"""What :func:`signal_table` gives and :class:`PaperTrader` plays."""
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"30m"``, ``"1h"`` -> seconds.

    >>> parse_duration("1h"), parse_duration("30m"), parse_duration("45")
    (3600.0, 1800.0, 45.0)
    """
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"a duration must look like 90, 90s, 30m or 1h. Got {text!r} instead.")
    return float(m.group(1)) * {"s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2) or "s"]


@dataclass(frozen=True, kw_only=True)
class PaperConfig:
    """How the paper-trading driver plays the upstream systems."""

    rate: float = 50.0
    """Trades per second (wall clock), > 0."""
    duration_s: float = 60.0
    """How long to publish, in seconds (> 0)."""
    max_trades: int | None = None
    """Stop after this many trades (None: only the duration bounds the run)."""
    symbols: int = 8
    """Symbols traded (the first N of the bars, by name), >= 1."""
    updates: int = 3
    """``OPEN`` marks per trade before the close, >= 0."""
    duplicate_rate: float = 0.0
    """Share of events delivered twice under a new event id, in [0, 1]."""
    shuffle_window: int = 0
    """Events move by up to this many places (executions may arrive after their updates)."""
    drift_at_s: float | None = None
    """Seconds into the run when model quality changes (None: never)."""
    drift_flip: float = 0.35
    """After the change, share of outcomes turned against the signal, in [0, 1]."""
    equity_usd: float = 100_000.0
    """Account equity the governor sizes against."""
    fee_bps: float = 4.0
    """Fees per side, in basis points of the position."""
    model_name: str | None = None
    """Name the signals' ``model_version`` carries (e.g. the registry's ``signal-model``, so a retrain
    trigger resolves to the live model); None: the walk-forward refit that made each signal."""
    seed: int = 0

    def __post_init__(self) -> None:
        checks = (
            ("rate", self.rate > 0 and math.isfinite(self.rate), "a finite number > 0"),
            ("duration_s", self.duration_s > 0, "> 0"),
            ("symbols", self.symbols >= 1, ">= 1"),
            ("updates", self.updates >= 0, ">= 0"),
            ("duplicate_rate", 0.0 <= self.duplicate_rate <= 1.0, "in [0, 1]"),
            ("shuffle_window", self.shuffle_window >= 0, ">= 0"),
            ("drift_flip", 0.0 <= self.drift_flip <= 1.0, "in [0, 1]"),
            ("equity_usd", self.equity_usd > 0, "> 0"),
            ("fee_bps", self.fee_bps >= 0, ">= 0"),
        )
        for name, ok, what in checks:
            if not ok:
                raise ValueError(
                    f"The '{name}' parameter of PaperConfig must be {what}. Got {getattr(self, name)!r} instead."
                )


def signal_table(
    bars: pd.DataFrame, *, symbols: int, on_fold: Callable[[Any], None] | None = None
) -> pd.DataFrame:
    """The reference model's out-of-sample signals with each bar's realized next-bar outcome.

    Columns: ``symbol, ts, next_ts, p_up, model_version, entry, exit, low, high, volatility,
    regime`` where ``entry`` is the bar's close, ``exit`` the next bar's close, ``low``/``high`` the
    next bar's range (the position's worst excursion comes from them) and ``volatility``/``regime``
    the sizer's state at the bar's close (:func:`research.rl_sizer.signals.bar_states`, as in
    training). Rows without a next bar or without a volatility yet are dropped.

    The signals come from a walk-forward refit (:func:`ml.signal_model.iter_walk_forward`): each
    refit is its own ``model_version``, as a production refit would be. ``on_fold`` is called
    with each refit's :class:`~ml.signal_model.SignalModel` (e.g. to register it, so a retrain
    trigger that names the version resolves to its model).
    """
    from ml.signal_model import walk_forward_predict  # lazy: scikit-learn is heavy
    from research.rl_sizer.signals import bar_states

    names = sorted(bars["symbol"].unique())[:symbols]
    bars = (
        bars[bars["symbol"].isin(names)].sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
    )
    preds = walk_forward_predict(bars, on_fold=on_fold)
    nxt = bars.groupby("symbol", sort=False)[["ts", "close", "low", "high"]].shift(-1)
    table = bars[["symbol", "ts", "close"]].assign(
        next_ts=nxt["ts"], exit=nxt["close"], low=nxt["low"], high=nxt["high"]
    )
    out = preds[["symbol", "ts", "p_up", "model_version"]].merge(table, on=["symbol", "ts"], how="inner")
    out = out.merge(bar_states(bars), on=["symbol", "ts"], how="left")
    out = out.dropna(subset=["exit", "volatility"]).rename(columns={"close": "entry"})
    return out.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)


def pass_span(signals: pd.DataFrame) -> pd.Timedelta:
    """How far each pass over the signal table is shifted: its time range plus one holding period."""
    ts = signals["ts"]
    return (ts.max() - ts.min()) + (signals["next_ts"] - ts).max()


def cycled_bars(bars: pd.DataFrame, signals: pd.DataFrame, passes: int) -> pd.DataFrame:
    """The market the driver plays over ``passes`` passes: ``bars`` plus each later pass's bars.

    Pass ``k`` replays the signal period shifted by ``k`` x :func:`pass_span`; a job that reads bars
    at the driver's event times (the retrain worker) needs those bars too. Appended for each pass
    ``k >= 1``: the bars after the first signal, shifted by ``k`` spans, which continue the series
    one bar after the previous pass (each symbol's price jumps back once per pass).
    """
    check_int(passes, param="passes", func="cycled_bars", minimum=1)
    span = pass_span(signals)
    period = bars[bars["ts"] > signals["ts"].min()]
    parts = [bars] + [period.assign(ts=period["ts"] + k * span) for k in range(1, passes)]
    return (
        pd.concat(parts, ignore_index=True)
        .sort_values(["symbol", "ts"], kind="stable")
        .reset_index(drop=True)
    )


@dataclass
class PaperStats:
    trades: int = 0
    skipped: int = 0
    """Signals with no edge (Kelly size 0): not traded."""
    events: int = 0
    drifted: int = 0
    """Trades whose outcome was turned against the signal after the planted change."""
    seconds: float = 0.0


class PaperTrader:
    """Publishes signal, execution and position events for a stream of paper trades.

    Parameters
    ----------
    bus
        Where to publish (any :class:`~infra.bus.Bus`).
    signals
        :func:`signal_table` output.
    config
        :class:`PaperConfig`.
    governor
        Sizes each trade (default: static Kelly with the default :class:`GovernorConfig`).
    audit
        Text stream receiving one JSON line per trade sent (optional).
    clock, sleep
        Wall clock and sleep, injectable for tests.
    metrics
        When given, the governor's policy metric (``quantum_rl_governor_policy``, and the fallback
        counter) is set after every batch of decisions (:func:`infra.prom.set_governor_policy`):
        the driver is the governor's process.
    refresh
        Called with the governor before every batch, e.g.
        :meth:`research.rl_sizer.serving.PolicyRefresher.refresh`, which hands it the newest
        checkpoint of the live learned sizer while the trainer writes them.
    """

    def __init__(
        self,
        bus: Bus,
        signals: pd.DataFrame,
        *,
        config: PaperConfig,
        governor: Governor | None = None,
        audit: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        run_id: str | None = None,
        metrics: Metrics | None = None,
        refresh: Callable[[Governor], object] | None = None,
    ) -> None:
        if signals.empty:
            raise ValueError(
                "The 'signals' parameter of PaperTrader must hold at least one signal. Got none."
            )
        missing = [c for c in SIGNAL_COLUMNS if c not in signals.columns]
        if missing:
            raise ValueError(
                f"The 'signals' parameter of PaperTrader is missing columns {missing} (see signal_table); "
                f"got {list(signals.columns)}."
            )
        self.bus = bus
        self.signals = signals.reset_index(drop=True)
        self.config = config
        self.governor = governor or Governor(GovernorConfig(), policy_info="paper trading: static Kelly")
        self.audit = audit
        self.clock = clock
        self.sleep = sleep
        self.run_id = run_id or f"paper{config.seed}"
        self.stats = PaperStats()
        self.stop_event = threading.Event()
        self.metrics = metrics
        self.refresh = refresh
        self._fallbacks_reported = 0
        self._rng = np.random.default_rng(config.seed)
        self._span = pass_span(self.signals)

    def _rows(self) -> Iterator[tuple[int, Any]]:
        """Signal rows forever, each pass shifted by the data's span so event time only grows."""
        n = len(self.signals)
        k = 0
        while True:
            for row in self.signals.itertuples(index=False):
                yield k // n, row
                k += 1

    def _trade(self, n: int, cycle: int, row: Any, drifting: bool) -> tuple[dict[str, Any], list[Any]] | None:
        """One trade's closed-trade record and its signal event; None when the signal has no edge."""
        cfg = self.config
        p_up = float(row.p_up)
        side = "LONG" if p_up >= 0.5 else "SHORT"
        confidence = p_up if side == "LONG" else 1.0 - p_up
        state = [confidence, float(row.volatility), float(row.regime)]
        decision = self.governor.size(confidence=confidence, state=state)
        size_usd = cfg.equity_usd * decision.size_pct / 100.0
        shift = self._span * cycle
        opened = pd.Timestamp(row.ts) + shift
        closed = pd.Timestamp(row.next_ts) + shift
        signal_event = new_event(
            TOPIC_SIGNAL,
            {
                "symbol": str(row.symbol),
                "action": "BUY" if side == "LONG" else "SELL",
                "confidence": confidence,
                "model_version": cfg.model_name or str(row.model_version),
                "order_id": f"{self.run_id}-{n}",
            },
            ts=opened.to_pydatetime(),
            event_id=f"{self.run_id}-{n}:signal",
        )
        if size_usd <= 0.0:
            self.stats.skipped += 1
            return None
        entry, exit_ = float(row.entry), float(row.exit)
        ret = exit_ / entry - 1.0
        flipped = drifting and bool(self._rng.random() < cfg.drift_flip)
        sign = 1.0 if side == "LONG" else -1.0
        if flipped:  # the planted change: the bar moves against the position by the same amount
            ret = -sign * abs(ret)
            exit_ = entry * (1.0 + ret)
            self.stats.drifted += 1
        worst_price = float(row.low) if side == "LONG" else float(row.high)
        adverse = max(0.0, -sign * (worst_price / entry - 1.0) * 100.0, -sign * ret * 100.0)
        fees = size_usd * cfg.fee_bps / 1e4 * 2.0
        pnl = size_usd * sign * ret - fees
        trade = {
            "order_id": f"{self.run_id}-{n}",
            "symbol": str(row.symbol),
            "route": "paper",
            "side": side,
            "opened_at": opened,
            "closed_at": closed,
            "entry_price": entry,
            "exit_price": exit_,
            "size_usd": size_usd,
            "fees_usd": fees,
            "pnl_usd": pnl,
            "confidence": confidence,
            "multiplier": decision.multiplier,
            "behaviour_logp": decision.behaviour_logp,
            "policy": decision.source,
            "volatility": state[1],
            "regime": state[2],
            "max_adverse_pct": adverse,
            "drifted": flipped,
        }
        return trade, [(TOPIC_SIGNAL, signal_event)]

    def run(self) -> PaperStats:
        """Publish at ``config.rate`` until the duration (or ``max_trades``) is reached or :meth:`stop`."""
        from sim.replay import trade_events

        cfg = self.config
        t0 = self.clock()
        rows = self._rows()
        n = 0
        while not self.stop_event.is_set():
            elapsed = self.clock() - t0
            if elapsed >= cfg.duration_s or (
                cfg.max_trades is not None and self.stats.trades >= cfg.max_trades
            ):
                break
            due = min(int(elapsed * cfg.rate) + 1, cfg.max_trades or 1 << 62) - (
                self.stats.trades + self.stats.skipped
            )
            if due <= 0:
                self.sleep(min(0.02, 1.0 / cfg.rate))
                continue
            drifting = cfg.drift_at_s is not None and elapsed >= cfg.drift_at_s
            if self.refresh is not None:
                self.refresh(self.governor)  # a newer checkpoint of the live sizer, when one was written
            trades: list[dict[str, Any]] = []
            items: list[Any] = []
            for _ in range(due):
                cycle, row = next(rows)
                made = self._trade(n, cycle, row, drifting)
                n += 1
                if made is None:
                    continue
                trade, sig = made
                trades.append(trade)
                items.extend(sig)
            if trades:
                frame = pd.DataFrame(trades)
                items.extend(
                    trade_events(
                        frame,
                        updates_per_trade=cfg.updates,
                        duplicate_rate=cfg.duplicate_rate,
                        shuffle_window=cfg.shuffle_window,
                        seed=cfg.seed + n,
                    )
                )
                signal_at = time.time()  # before the batch: an upper bound for each signal's publish time
                self.bus.publish_many([(t, e) for t, e in items if isinstance(e, dict)])
                self._report_governor()
                sent_at = time.time()
                self.stats.trades += len(trades)
                self.stats.events += len(items)
                if self.audit is not None:
                    for tr in trades:
                        rec = {
                            **tr,
                            "opened_at": tr["opened_at"].isoformat(),
                            "closed_at": tr["closed_at"].isoformat(),
                            "signal_sent_at": signal_at,
                            "sent_at": sent_at,
                            "drifting": drifting,
                        }
                        self.audit.write(json.dumps(rec) + "\n")
                    self.audit.flush()
        self.stats.seconds = self.clock() - t0
        return self.stats

    def _report_governor(self) -> None:
        if self.metrics is None:
            return
        new = self.governor.fallbacks - self._fallbacks_reported
        set_governor_policy(self.metrics, self.governor.policy_name, fallbacks=new)
        self._fallbacks_reported += new

    def stop(self) -> None:
        self.stop_event.set()


def load_signal_table(
    settings: Any,
    bar_paths: Sequence[str] | None,
    *,
    symbols: int,
    on_fold: Callable[[Any], None] | None = None,
) -> pd.DataFrame:
    """Signals for the bars given, or for the demo's bars under ``DATA_DIR`` (see :func:`signal_table`)."""
    from infra.loaders import load_bars_many

    if bar_paths:
        bars = load_bars_many(bar_paths)
    else:
        path = Path(settings.data_dir) / "bars.parquet"
        if not path.exists():
            raise FileNotFoundError(
                f"{path} does not exist: run `python -m scripts.demo --data-only` or pass --bars"
            )
        bars = pd.read_parquet(path)
    return signal_table(bars, symbols=symbols, on_fold=on_fold)


def live_governor(
    settings: Any, policy: str = "edge", *, explore: bool = False, every_s: float = 5.0
) -> tuple[Governor, PolicyRefresher]:
    """The governor the driver sizes with and the refresher that keeps it on the newest checkpoint.

    ``policy`` as in :func:`research.rl_sizer.serving.select_policy`: ``edge`` (the product's
    default; static Kelly until the trainer has written a valid checkpoint), ``ppo`` or ``kelly``.
    """
    refresher = PolicyRefresher(policy, settings, every_s=every_s)
    info = "requested (--policy kelly)" if policy == "kelly" else f"no {policy} checkpoint loaded yet"
    governor = Governor(GovernorConfig(explore=explore), policy_info=info)
    refresher.refresh(governor)
    return governor, refresher


def main(argv: Sequence[str] | None = None) -> int:
    from infra.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m sim.paper", description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="trades per second (default 50)")
    parser.add_argument("--duration", default="60s", help="how long to publish: 90s, 30m, 1h (default 60s)")
    parser.add_argument("--max-trades", type=int, default=None, help="stop after this many trades")
    parser.add_argument("--symbols", type=int, default=8, help="symbols traded (default 8)")
    parser.add_argument("--updates", type=int, default=3, help="OPEN marks per trade (default 3)")
    parser.add_argument("--duplicates", type=float, default=0.0, help="share of events sent twice")
    parser.add_argument("--shuffle-window", type=int, default=0, help="out-of-order window, in events")
    parser.add_argument(
        "--drift-at", default=None, help="plant a model-quality change after this long (e.g. 30m)"
    )
    parser.add_argument("--drift-flip", type=float, default=0.35, help="share of outcomes turned after it")
    parser.add_argument(
        "--bars", nargs="+", metavar="PATH", help="bar files (default <DATA_DIR>/bars.parquet)"
    )
    parser.add_argument("--bus", default=None, help="event bus URL (default EVENTBUS_URL)")
    parser.add_argument("--audit", type=Path, default=None, help="JSON-lines record of every trade sent")
    parser.add_argument(
        "--model-name", default=None, help="model_version on every signal (default: the walk-forward refit's)"
    )
    parser.add_argument(
        "--policy",
        choices=POLICIES,
        default="edge",
        help="the governor's multiplier: the live edge sizer (default; static Kelly until the trainer has "
        "written a valid checkpoint, then each newer one), the PPO baseline, or static Kelly",
    )
    parser.add_argument(
        "--explore", action="store_true", help="sample the PPO policy (records behaviour_logp)"
    )
    parser.add_argument(
        "--refresh-every", type=float, default=5.0, help="seconds between two looks for a newer checkpoint"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every sizing decision")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    settings = load_settings()
    config = PaperConfig(
        rate=args.rate,
        duration_s=parse_duration(args.duration),
        max_trades=args.max_trades,
        symbols=args.symbols,
        updates=args.updates,
        duplicate_rate=args.duplicates,
        shuffle_window=args.shuffle_window,
        drift_at_s=None if args.drift_at is None else parse_duration(args.drift_at),
        drift_flip=args.drift_flip,
        model_name=args.model_name,
        seed=args.seed,
    )
    signals = load_signal_table(settings, args.bars, symbols=config.symbols)
    bus = connect_bus(args.bus or settings.eventbus_url)
    audit = open(args.audit, "a", encoding="utf-8") if args.audit else None  # noqa: SIM115 - closed below
    governor, refresher = live_governor(
        settings, args.policy, explore=args.explore, every_s=args.refresh_every
    )
    trader = PaperTrader(
        bus,
        signals,
        config=config,
        governor=governor,
        refresh=refresher.refresh,
        audit=audit,
        run_id=f"paper{args.seed}-{int(time.time())}",
    )
    signal.signal(signal.SIGTERM, lambda *_: trader.stop())
    try:
        stats = trader.run()
    except KeyboardInterrupt:
        stats = trader.stats
    finally:
        bus.close()
        if audit is not None:
            audit.close()
    print(f"sim.paper: {json.dumps(asdict(stats))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="python -m sim.paper"))
