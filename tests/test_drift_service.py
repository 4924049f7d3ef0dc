"""The drift checking service: join by order_id, triggers on the bus, artifacts, demo step, CLI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infra.artifacts import ArtifactStore
from infra.bus import TOPIC_RETRAIN, MemoryBus
from infra.contracts.events import validate_event
from ml import drift_service
from ml.drift_monitor import DriftService, join_trades_to_signals
from ml.drift_scenarios import accuracy_drop, stable_stream
from ml.drift_thresholds import DEFAULT_THRESHOLDS
from ml.triggers import TriggerQueue
from scripts.demo_steps.drift import demo_step as drift_demo_step

T0 = pd.Timestamp("2025-01-01T00:00:00Z")


def make_frames(
    c: np.ndarray, y: np.ndarray, *, model: str | list[str] = "sig-v1", seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Trades closing one per hour, and their signals in a shuffled order with other ids mixed in."""
    n = len(c)
    ids = [f"BTC-{i:06d}" for i in range(n)]
    closed = T0 + pd.to_timedelta(np.arange(n), unit="h")
    trades = pd.DataFrame({"order_id": ids, "closed_at": closed, "pnl_usd": np.where(y, 1.0, -1.0)})
    signals = pd.DataFrame(
        {
            "signal_id": ["sig-" + i for i in ids],
            "order_id": ids,
            "ts": closed - pd.Timedelta(minutes=30),
            "confidence": c,
            "won": y,
            "model_version": model,
        }
    )
    rng = np.random.default_rng(seed)
    signals = signals.iloc[rng.permutation(n)].reset_index(drop=True)
    return trades, signals


def test_join_is_by_order_id_not_by_position() -> None:
    trades, signals = make_frames(
        np.array([0.6, 0.7, 0.8, 0.9]), np.array([True, False, True, False]), seed=3
    )
    extra = pd.DataFrame(
        {"order_id": ["ETH-1"], "confidence": [0.55], "won": [True], "model_version": ["sig-v1"]}
    )
    signals = pd.concat([signals, extra], ignore_index=True)
    trades = pd.concat([trades, pd.DataFrame({"order_id": ["SOL-9"], "closed_at": [T0], "pnl_usd": [1.0]})])
    joined, report = join_trades_to_signals(trades.iloc[::-1], signals)
    assert list(joined["order_id"]) == ["BTC-000000", "BTC-000001", "BTC-000002", "BTC-000003"]
    matched = joined.set_index("order_id")
    assert list(matched.loc[["BTC-000000", "BTC-000001", "BTC-000002", "BTC-000003"], "confidence"]) == [
        0.6,
        0.7,
        0.8,
        0.9,
    ]
    assert list(matched.loc[["BTC-000000", "BTC-000001"], "won"]) == [True, False]
    assert list(joined["closed_at"]) == sorted(joined["closed_at"])
    assert report == {
        "trades": 5,
        "signals": 5,
        "matched": 4,
        "unmatched_trades": 1,
        "unmatched_signals": 1,
        "outcome_source": "signals.won",
    }


def test_join_falls_back_to_trade_pnl_without_won() -> None:
    trades, signals = make_frames(np.array([0.6, 0.7]), np.array([True, False]))
    joined, report = join_trades_to_signals(trades, signals.drop(columns="won"))
    assert report["outcome_source"] == "trades.pnl_usd > 0"
    assert list(joined.sort_values("order_id")["won"]) == [True, False]


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda t, s: (pd.concat([t, t.iloc[:1]]), s), "'trades' frame .* unique order_id"),
        (
            lambda t, s: (t, s.drop(columns="confidence")),
            r"'signals' frame .* missing column\(s\) \['confidence'\]",
        ),
        (lambda t, s: (t, s.assign(confidence=1.5)), "'confidence' of signal for order_id"),
        (lambda t, s: (t.assign(closed_at=t["closed_at"].dt.tz_localize(None)), s), "timezone-aware"),
    ],
)
def test_join_rejects_bad_input(mutate, match: str) -> None:
    trades, signals = make_frames(np.array([0.6, 0.7]), np.array([True, False]))
    t, s = mutate(trades, signals)
    with pytest.raises(ValueError, match=match):
        join_trades_to_signals(t, s)


def test_service_publishes_one_trigger_at_the_detecting_trade() -> None:
    c, y = accuracy_drop(2000, change_at=1000, seed=0)  # detected at trade 1190 (tests/test_drift.py)
    trades, signals = make_frames(c, y)
    joined, _ = join_trades_to_signals(trades, signals)
    bus = MemoryBus()
    service = DriftService(publisher=bus).run(joined)
    events = bus.events(TOPIC_RETRAIN)
    assert len(events) == 1
    ev = events[0]
    assert validate_event(TOPIC_RETRAIN, ev) is None
    expected_at = (T0 + pd.Timedelta(hours=1189)).isoformat().replace("+00:00", "Z")
    assert ev["ts"] == expected_at and ev["triggered_at"] == expected_at
    assert ev["model"] == "sig-v1" and ev["reason"] == "accuracy_drift" and ev["priority"] == "high"
    info = ev["drift_info"]
    assert (
        info["kind"] == "accuracy_drift"
        and info["statistic"] == "accuracy_cusum"
        and info["n_trades"] == 1190
    )
    assert info["value"] > info["threshold"] and info["order_id"] == "BTC-001189"
    assert set(ev) >= {
        "event_id",
        "ts",
        "schema",
        "trigger_id",
        "model",
        "reason",
        "drift_info",
        "priority",
        "triggered_at",
    }
    # statistics every 100 trades, with their thresholds
    assert [ch["n_trades"] for ch in service.checks] == list(range(100, 2001, 100))
    assert all(ch["accuracy_threshold"] == DEFAULT_THRESHOLDS.accuracy_cusum for ch in service.checks)
    assert all(ch["calibration_threshold"] == DEFAULT_THRESHOLDS.calibration_cusum for ch in service.checks)
    assert all(ch["model"] == "sig-v1" for ch in service.checks)
    assert service.checks[-1]["ks_d"] is not None and service.checks[0]["ks_d"] is None
    pending = service.queue.pending()
    assert [t.trigger_id for t in pending] == [ev["trigger_id"]]


def test_service_dedupes_repeated_detections_and_resets_on_new_model() -> None:
    c1, y1 = accuracy_drop(1400, change_at=200, seed=1)
    c2, y2 = accuracy_drop(1400, change_at=200, seed=2)
    c, y = np.concatenate([c1, c2]), np.concatenate([y1, y2])
    models = ["sig-v1"] * 1400 + ["sig-v2"] * 1400
    trades, signals = make_frames(c, y, model=models)
    joined, _ = join_trades_to_signals(trades, signals)
    bus = MemoryBus()
    service = DriftService(publisher=bus, queue=TriggerQueue(cooldown=dt.timedelta(hours=24))).run(joined)
    events = bus.events(TOPIC_RETRAIN)
    assert [e["model"] for e in events] == ["sig-v1", "sig-v2"]  # the detector restarted for v2
    assert all(e["reason"] == "accuracy_drift" for e in events)

    # replaying the same model again: a pending trigger of the same kind dedupes it
    again = DriftService(publisher=MemoryBus(), queue=service.queue)
    again.run(joined.iloc[:1400])
    assert again.published == []
    assert again.detections[0]["trigger_status"] == "duplicate"


def test_stable_stream_publishes_nothing() -> None:
    trades, signals = make_frames(*stable_stream(3000, seed=11))
    joined, _ = join_trades_to_signals(trades, signals)
    bus = MemoryBus()
    service = DriftService(publisher=bus).run(joined)
    assert bus.events(TOPIC_RETRAIN) == [] and service.detections == []
    assert len(service.checks) == 30


class _Ctx:
    def __init__(self, data_dir: Path, store: ArtifactStore) -> None:
        self.data_dir, self.store, self.bus = data_dir, store, MemoryBus()

    @property
    def trades_path(self) -> Path:
        return self.data_dir / "trades.parquet"

    @property
    def signals_path(self) -> Path:
        return self.data_dir / "signals.parquet"


def write_demo_like(data_dir: Path) -> None:
    c, y = accuracy_drop(2000, change_at=1000, seed=0)
    trades, signals = make_frames(c, y)
    data_dir.mkdir(parents=True, exist_ok=True)
    trades.to_parquet(data_dir / "trades.parquet")
    signals.to_parquet(data_dir / "signals.parquet")


def test_demo_step_writes_both_artifacts(tmp_path: Path) -> None:
    write_demo_like(tmp_path / "data")
    store = ArtifactStore(tmp_path / "cache")
    ctx = _Ctx(tmp_path / "data", store)
    message = drift_demo_step(ctx)  # type: ignore[arg-type]
    assert "accuracy_drift at trade 1190" in message and "1 trigger(s) published" in message
    drift = store.read("drift")
    assert drift.ok, drift.message
    assert drift.data["n_trades"] == 2000 and len(drift.data["checks"]) == 20
    assert drift.data["detections"][0]["trigger_status"] == "accepted"
    assert drift.data["thresholds"]["config"]["check_every"] == 100
    trig = store.read("retrain_triggers")
    assert trig.ok
    assert [t["outcome"] for t in trig.data["triggers"]] == ["pending"]
    # the artifact is what a retrain worker reloads
    assert TriggerQueue.from_dict(trig.data).pending()[0].trigger_id == trig.data["triggers"][0]["trigger_id"]
    assert len(ctx.bus.events(TOPIC_RETRAIN)) == 1


def test_cli_runs_over_explicit_files(
    logs_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_demo_like(tmp_path / "d")
    rc = drift_service.main(
        [
            "--trades",
            str(tmp_path / "d" / "trades.parquet"),
            "--signals",
            str(tmp_path / "d" / "signals.parquet"),
        ]
    )
    assert rc == 0
    assert "accuracy_drift at trade 1190" in capsys.readouterr().out
    assert (logs_env / "cache" / "drift.json").exists()
    assert (logs_env / "cache" / "retrain_triggers.json").exists()


def test_cli_explains_missing_files(logs_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        drift_service.main([])
    assert exc.value.code == 2
    assert "python -m scripts.demo" in capsys.readouterr().err


@pytest.mark.parametrize("seed", [7, 11])
def test_demo_data_drift_is_found_after_the_change_and_not_before(seed: int) -> None:
    """The demo's signal degrades after 60 % of the timeline; the service must notice, and only then."""
    from scripts.demo_data import DemoConfig, generate

    demo = generate(DemoConfig(seed=seed))
    joined, report = join_trades_to_signals(demo.trades, demo.signals)
    assert report["unmatched_trades"] == 0
    bus = MemoryBus()
    service = DriftService(publisher=bus).run(joined)
    events = bus.events(TOPIC_RETRAIN)
    assert len(events) >= 1
    first = service.detections[0]
    assert first["kind"] in ("accuracy_drift", "calibration_drift")
    # every detection comes from a trade opened after the change point, within 400 trades of it
    signal_ts = demo.signals.set_index("order_id")["ts"]
    assert signal_ts[first["order_id"]] >= demo.change_ts
    first_degraded = int((signal_ts.reindex(joined["order_id"]).to_numpy() >= demo.change_ts).argmax()) + 1
    assert 0 < first["n_trades_total"] - first_degraded <= 400
    assert pd.Timestamp(events[0]["triggered_at"]) > demo.change_ts


def test_a_promotion_starts_the_new_version_from_zero_and_retires_the_old_detector() -> None:
    """Signals that name only the registry's model: trades closing after the promotion belong to
    the promoted version, whose detector starts from zero; the replaced one asks for no retrain."""
    c, y = accuracy_drop(2400, change_at=200, seed=1)
    joined, _ = join_trades_to_signals(*make_frames(c, y, model="signal-model"))
    first = DriftService(publisher=MemoryBus()).run(joined)
    (det,) = first.detections
    decided = T0 + pd.Timedelta(hours=1499)  # trades close hourly: trade 1500 closes at this time
    job = {
        "trigger_id": det["trigger_id"],
        "model_ref": "signal-model",
        "model": "signal-model",
        "outcome": "promoted",
        "new_version": "sig-v2",
        "decided_at": decided.isoformat().replace("+00:00", "Z"),
        "note": "promoted sig-v2",
        "validation": {"metrics": {"brier": {"diff": -0.01, "ci_low": -0.02, "ci_high": -0.005}}},
    }
    bus = MemoryBus()
    service = DriftService(publisher=bus, jobs=[job]).run(joined)
    # the worker already decided the first trigger: only the new version's own one is published
    assert [e["model"] for e in bus.events(TOPIC_RETRAIN)] == ["sig-v2"]
    assert service.current_model == "sig-v2"
    old, new = service.models["signal-model"], service.models["sig-v2"]
    assert (old.n_trades, new.n_trades) == (1499, 901)
    assert new.live_from == old.superseded_at == job["decided_at"] and old.superseded_by == "sig-v2"
    assert new.detector.n_trades == 901 and old.detector.n_trades == 1499
    trig = service.queue.get(det["trigger_id"])
    assert (
        trig.outcome == "promoted"
        and trig.new_version == "sig-v2"
        and trig.metrics == job["validation"]["metrics"]
    )
    # the stream still drifts after the promotion: the new version's own detector finds it,
    # and its trigger names the new version
    later = [d for d in service.detections if d["model"] == "sig-v2"]
    assert later and later[0]["trigger_status"] == "accepted" and later[0]["n_trades"] < 901
    art = service.drift_artifact()
    assert art["current_model"] == "sig-v2"
    assert {m["model"]: m["status"] for m in art["models"]} == {
        "signal-model": "superseded",
        "sig-v2": "current",
    }


def test_a_replaced_versions_late_detection_asks_for_no_retrain() -> None:
    c, y = accuracy_drop(1400, change_at=200, seed=1)
    joined, _ = join_trades_to_signals(*make_frames(c, y, model="sig-v1"))
    job = {
        "trigger_id": "rt-elsewhere",
        "model_ref": "sig-v1",
        "model": "signal-model",
        "outcome": "promoted",
        "new_version": "sig-v2",
        "decided_at": "2025-01-01T05:00:00Z",  # before the drift: sig-v1 was already replaced
    }
    bus = MemoryBus()
    service = DriftService(publisher=bus, jobs=[job]).run(joined)
    (det,) = service.detections
    assert det["model"] == "sig-v1" and det["trigger_status"] == "superseded" and det["trigger_id"] is None
    assert bus.events(TOPIC_RETRAIN) == [] and service.queue.history == ()
    assert service.current_model == "sig-v2" and service.models["sig-v2"].n_trades == 0


def test_a_long_running_service_keeps_only_the_newest_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    from ml import drift_monitor

    monkeypatch.setattr(drift_monitor, "MAX_CHECKS", 12)
    trades, signals = make_frames(*stable_stream(3000, seed=11))
    joined, _ = join_trades_to_signals(trades, signals)
    service = DriftService(publisher=MemoryBus()).run(joined)
    # a check per 100 trades: 30 made, the newest 12 kept (trades 1,900 .. 3,000), in order
    assert [c["n_trades"] for c in service.checks] == list(range(1900, 3001, 100))
    assert service.n_trades == 3000
