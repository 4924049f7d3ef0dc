"""The paper-trading driver and its audit, end to end on the in-process bus with the real bridge."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from execution.feedback_bridge import FeedbackBridge
from infra.bus import TOPIC_EXECUTION, TOPIC_FEEDBACK, TOPIC_SIGNAL, MemoryBus
from sim.audit import audit, expected_inputs
from sim.paper import PaperConfig, PaperTrader, parse_duration


def signals(n: int = 40, seed: int = 1) -> pd.DataFrame:
    """A small hand-made signal table: two symbols, hourly, known prices."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2025-01-01", periods=n, freq="1h", tz="UTC")
    rows = []
    for sym in ("BTCUSDT", "ETHUSDT"):
        entry = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        exit_ = entry * np.exp(rng.normal(0, 0.01, n))
        for i in range(n):
            lo, hi = sorted((entry[i] * 0.995, exit_[i]))[0], max(entry[i] * 1.005, exit_[i])
            rows.append({"symbol": sym, "ts": ts[i], "next_ts": ts[i] + pd.Timedelta(hours=1),
                         "p_up": float(rng.uniform(0.2, 0.8)), "model_version": "m1",
                         "entry": entry[i], "exit": exit_[i], "low": lo, "high": hi,
                         "volatility": 0.4 + 0.01 * i, "regime": float(i % 2)})  # fmt: skip
    return pd.DataFrame(rows).sort_values(["ts", "symbol"]).reset_index(drop=True)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def run_paper(
    config: PaperConfig, sig: pd.DataFrame | None = None
) -> tuple[MemoryBus, list[dict], PaperTrader]:
    bus = MemoryBus()
    out = io.StringIO()
    clock = FakeClock()
    trader = PaperTrader(
        bus, signals() if sig is None else sig, config=config, audit=out, clock=clock, sleep=clock.sleep
    )
    trader.run()
    sent = [json.loads(line) for line in out.getvalue().splitlines()]
    return bus, sent, trader


def test_every_trade_gets_exactly_one_right_feedback_despite_duplicates_and_disorder() -> None:
    cfg = PaperConfig(rate=100, duration_s=1.0, max_trades=150, updates=3, duplicate_rate=0.2,
                      shuffle_window=8, seed=3)  # fmt: skip
    bus, sent, trader = run_paper(cfg)
    assert 100 <= trader.stats.trades + trader.stats.skipped <= 151
    assert len(sent) == trader.stats.trades > 50
    assert len(bus.events(TOPIC_SIGNAL)) == trader.stats.trades + trader.stats.skipped
    assert len({e["order_id"] for e in bus.events(TOPIC_EXECUTION)}) == trader.stats.trades
    FeedbackBridge(bus, block_ms=0).run(until_idle=True)
    report = audit(sent, bus.events(TOPIC_FEEDBACK))
    assert report.as_dict() == {**report.as_dict(), "lost": 0, "duplicated": 0, "wrong": 0, "unknown": 0}
    assert report.sent == trader.stats.trades and report.ok


def test_audit_catches_lost_duplicated_and_wrong() -> None:
    _, sent, _ = run_paper(PaperConfig(rate=50, duration_s=1.0, max_trades=10, seed=5))
    good = []
    for t in sent:
        pnl_pct, dur, dd, conf = expected_inputs(t)
        from execution.reward_calculator import compute_reward

        good.append({"order_id": t["order_id"], "pnl_pct": pnl_pct, "duration_mins": dur, "max_drawdown_pct": dd,
                     "reward": compute_reward(pnl_pct=pnl_pct, duration_mins=dur, max_drawdown_pct=dd,
                                              confidence=conf)})  # fmt: skip
    assert audit(sent, good).ok
    bad = [*good[1:], good[2], {**good[3], "reward": good[3]["reward"] + 0.1}, {**good[4], "order_id": "zzz"}]
    r = audit(sent, bad)
    # order 0 lost; orders 2 and 3 sent twice (the first copy of 3 is right); "zzz" never sent
    assert (r.lost, r.duplicated, r.wrong, r.unknown) == (1, 2, 0, 1)
    r = audit(sent, [*good[:3], {**good[3], "reward": good[3]["reward"] + 0.1}, *good[4:]])
    assert (r.lost, r.duplicated, r.wrong) == (0, 0, 1) and "expected" in r.examples[0]


def test_planted_drift_turns_outcomes_against_the_signal() -> None:
    cfg = PaperConfig(rate=100, duration_s=2.0, drift_at_s=1.0, drift_flip=1.0, seed=2)
    _, sent, trader = run_paper(cfg)
    before = [t for t in sent if not t["drifted"]]
    after = [t for t in sent if t["drifted"]]
    assert before and after and trader.stats.drifted == len(after)
    # after the change every trade loses before fees: the bar moved against the position
    assert all((t["exit_price"] - t["entry_price"]) * (1 if t["side"] == "LONG" else -1) <= 0 for t in after)
    assert all(t["pnl_usd"] < 0 for t in after)


def test_event_times_only_grow_when_the_bars_are_cycled() -> None:
    sig = signals(n=3)
    _, sent, _ = run_paper(PaperConfig(rate=100, duration_s=1.0, max_trades=30, seed=1), sig)
    opened = pd.to_datetime([t["opened_at"] for t in sent])
    assert len(sent) > 6 and opened.is_monotonic_increasing
    assert len(set(t["order_id"] for t in sent)) == len(sent)


def test_parse_duration_and_bad_config() -> None:
    assert parse_duration("2h") == 7200.0
    with pytest.raises(ValueError, match="90s, 30m or 1h"):
        parse_duration("soon")
    with pytest.raises(ValueError, match="The 'rate' parameter of PaperConfig must be a finite number > 0"):
        PaperConfig(rate=0)


class Policy:
    """A learned policy that fails on every third decision (the governor falls back to Kelly)."""

    name = "ppo"

    def __init__(self) -> None:
        self.calls = 0

    def get_multiplier(self, state):  # the governor's SizingPolicy protocol
        self.calls += 1
        if self.calls % 3 == 0:
            raise RuntimeError("policy down")
        return 1.0


def test_governor_policy_metric_is_set_by_the_driver() -> None:
    from execution.governor import Governor
    from infra.prom import make_metrics

    def gauge(m, p: str) -> float | None:
        return m.registry.get_sample_value("quantum_rl_governor_policy", {"policy": p})

    m = make_metrics()
    clock = FakeClock()
    cfg = PaperConfig(rate=100, duration_s=1.0, max_trades=20, seed=1)
    trader = PaperTrader(MemoryBus(), signals(), config=cfg, clock=clock, sleep=clock.sleep, metrics=m)
    trader.run()
    assert (gauge(m, "kelly"), gauge(m, "edge"), gauge(m, "ppo")) == (1.0, 0.0, 0.0)  # static -> kelly
    assert m.registry.get_sample_value("quantum_rl_governor_fallbacks_total") == 0.0

    m2, policy = make_metrics(), Policy()
    clock2 = FakeClock()
    trader = PaperTrader(MemoryBus(), signals(), config=cfg, clock=clock2, sleep=clock2.sleep, metrics=m2,
                         governor=Governor(policy=policy))  # fmt: skip
    trader.run()
    assert (gauge(m2, "kelly"), gauge(m2, "ppo")) == (0.0, 1.0)
    # every third call raised: the counter holds exactly the governor's fallbacks, counted once
    assert trader.governor.fallbacks == policy.calls // 3 > 0
    assert m2.registry.get_sample_value("quantum_rl_governor_fallbacks_total") == trader.governor.fallbacks


def test_drift_audit_counts_every_detection_before_the_change_as_a_false_alarm() -> None:
    from sim.audit import audit_drift

    sent = [{"order_id": f"o{i}", "drifting": i >= 5} for i in range(10)]
    triggers = {"triggers": [{"trigger_id": "t-after"}]}
    jobs = {"jobs": [{"trigger_id": "t-after", "outcome": "rejected"}]}
    after = {"kind": "accuracy_drift", "order_id": "o7", "n_trades_total": 8, "trigger_id": "t-after"}
    clean = audit_drift(sent, {"detections": [after]}, triggers, jobs, planted=True)
    assert clean["ok"] and clean["first_after"]["order_id"] == "o7" and clean["retrain_outcome"] == "rejected"
    shift = {"kind": "distribution_shift", "order_id": "o2", "n_trades_total": 3}
    early = audit_drift(sent, {"detections": [shift, after]}, triggers, jobs, planted=True)
    assert (
        not early["ok"] and early["distribution_shifts_before"] == 1 and early["outcome_alarms_before"] == 0
    )
    late_shift = {**shift, "order_id": "o9"}
    assert audit_drift(sent, {"detections": [after, late_shift]}, triggers, jobs, planted=True)["ok"]
    undecided = audit_drift(sent, {"detections": [after]}, triggers, {"jobs": []}, planted=True)
    assert not undecided["ok"] and undecided["retrain_outcome"] is None
    assert not audit_drift(sent, {"detections": [shift]}, None, None, planted=False)["ok"]
    assert audit_drift(sent, {"detections": []}, None, None, planted=False)["ok"]


def test_cycled_bars_continue_the_series_for_every_pass_the_driver_plays() -> None:
    from infra.loaders import infer_bar_frequency
    from sim.paper import cycled_bars, pass_span

    ts = pd.date_range("2025-01-01", periods=10, freq="1h", tz="UTC")
    bars = pd.concat(
        [
            pd.DataFrame(
                {"symbol": s, "ts": ts, "open": 1.0, "high": 2.0, "low": 0.5, "close": np.arange(10.0) + k}
            )
            for k, s in enumerate(["AAAUSDT", "BBBUSDT"])
        ],
        ignore_index=True,
    )
    # signals on bars 4..8 (bar 9 is the last exit): each pass is 5 bars long
    signals = pd.DataFrame({"ts": ts[4:9], "next_ts": ts[5:10]})
    assert pass_span(signals) == pd.Timedelta(hours=5)
    out = cycled_bars(bars, signals, passes=3)
    for _, g in out.groupby("symbol"):
        assert g["ts"].is_monotonic_increasing and g["ts"].is_unique
        assert (g["ts"].diff().dropna() == pd.Timedelta(hours=1)).all()  # contiguous: 10 + 5 + 5 bars
        assert len(g) == 20
    assert infer_bar_frequency(out) == pd.Timedelta(hours=1)
    a = out[out["symbol"] == "AAAUSDT"].set_index("ts")["close"]
    # pass 2 replays bars 5..9 shifted by 5 h and then 10 h: bar 5's close comes back at 10:00 and 15:00
    assert a[ts[5] + pd.Timedelta(hours=5)] == a[ts[5]] == a[ts[5] + pd.Timedelta(hours=10)] == 5.0


def test_the_governor_sizes_from_each_bars_state_and_the_execution_carries_it() -> None:
    from execution.governor import Governor, GovernorConfig

    class ByRegime:
        """A learned sizer in miniature: halves the stake in regime 1, doubles it in regime 0."""

        name = "edge"

        def get_multiplier(self, state: list[float]) -> float:
            return 0.5 if state[2] == 1.0 else 2.0

    sig = signals()
    gov = Governor(GovernorConfig(kelly_fraction=0.5, max_position_pct=25.0), policy=ByRegime())
    bus = MemoryBus()
    out = io.StringIO()
    clock = FakeClock()
    cfg = PaperConfig(rate=100, duration_s=1.0, max_trades=60, updates=1)
    PaperTrader(bus, sig, config=cfg, governor=gov, audit=out, clock=clock, sleep=clock.sleep).run()
    sent = {r["order_id"]: r for r in map(json.loads, out.getvalue().splitlines())}
    rows = sig.set_index(["symbol", "ts"])
    execs = bus.events(TOPIC_EXECUTION)
    assert len(execs) == len(sent) > 20
    regimes = set()
    for p in execs:
        tr = sent[p["order_id"]]
        row = rows.loc[(tr["symbol"], pd.Timestamp(tr["opened_at"]))]
        regimes.add(row["regime"])
        assert p["state"] == [tr["confidence"], row["volatility"], row["regime"]]
        mult = 0.5 if row["regime"] == 1.0 else 2.0
        assert p["multiplier_used"] == mult and tr["policy"] == "edge"
        # half Kelly with b = 1: 50 (2p - 1) percent, times the multiplier, capped at 25 %
        expected_pct = min(50.0 * (2.0 * tr["confidence"] - 1.0) * mult, 25.0)
        assert p["size_usd"] == pytest.approx(cfg.equity_usd * expected_pct / 100.0, rel=1e-12)
    assert regimes == {0.0, 1.0}


def test_a_signal_table_without_the_sizers_state_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"missing columns \['volatility', 'regime'\]"):
        PaperTrader(MemoryBus(), signals().drop(columns=["volatility", "regime"]), config=PaperConfig())
