"""Retrain worker: a shifted stream is retrained and promoted, noise is rejected, jobs are deduped."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infra.artifacts import ArtifactStore
from infra.bus import TOPIC_RETRAIN, MemoryBus, new_event
from infra.settings import load_settings
from ml.calibration import brier_score, expected_calibration_error
from ml.model_registry import STAGING_PREFIX, ModelRegistry
from ml.retrain_validation import ValidationConfig, compare
from ml.retrain_worker import RetrainConfig, RetrainWorker, evaluate, validation_rows
from ml.signal_model import FeatureSet, ModelConfig, SignalModel
from ml.triggers import TriggerQueue
from tests.ml_fixtures import demo_bars

DEV = load_settings({"ENV": "dev"})
N_SYM, N_BARS, CHANGE = 6, 1500, 900  # demo bars: the momentum edge flips sign at bar 900


@lru_cache(maxsize=1)
def stream() -> pd.DataFrame:
    return demo_bars(n_symbols=N_SYM, n_bars=N_BARS, seed=3)


def bar_ts(i: int) -> pd.Timestamp:
    return pd.Timestamp(np.sort(stream()["ts"].unique())[i])


@lru_cache(maxsize=1)
def stale_model() -> SignalModel:
    """Trained before the change point: learned the old (positive) momentum."""
    return SignalModel(ModelConfig()).fit(stream(), until=bar_ts(850))


def registry_with_stale(root: Path, settings: object = DEV) -> ModelRegistry:
    reg = ModelRegistry(root, settings=settings)  # type: ignore[arg-type]
    reg.stage("signal-model", stale_model(), metadata={"aliases": ["prod-signal-v1"]})
    reg.promote("signal-model", stale_model().model_version_, at=bar_ts(850).to_pydatetime())
    return reg


def trigger(tid: str, at: pd.Timestamp, model: str = "signal-model") -> dict[str, object]:
    return {
        "trigger_id": tid,
        "model": model,
        "reason": "accuracy_drift",
        "drift_info": {"kind": "accuracy_drift"},
        "priority": "high",
        "triggered_at": at.isoformat().replace("+00:00", "Z"),
    }


def test_promoted_model_beats_the_stale_one_out_of_sample(tmp_path: Path) -> None:
    reg = registry_with_stale(tmp_path)
    promoted: list[tuple[str, str]] = []
    worker = RetrainWorker(
        registry=reg, bars=stream, on_promoted=lambda m, v: promoted.append((m, v)), config=RetrainConfig()
    )
    at = bar_ts(1000)
    job = worker.handle(trigger("t-shift", at))
    assert job["outcome"] == "promoted", job.get("note")
    new = job["new_version"]
    assert reg.current_version("signal-model") == new and promoted == [("signal-model", new)]
    assert reg.previous_version("signal-model") == stale_model().model_version_
    meta = reg.get("signal-model", new).metadata
    assert meta["trigger_id"] == "t-shift" and meta["parent_version"] == stale_model().model_version_
    # training strictly before the trigger: the last training row's label is known before T
    assert pd.Timestamp(meta["train_window"]["end"]) + pd.Timedelta(hours=1) < at
    assert pd.Timestamp(meta["trained_until"]) < at
    # on bars after the validation window (never seen by training or by the decision) it is better
    fs = FeatureSet.from_bars(stream(), ModelConfig())
    later = validation_rows(fs, at + pd.Timedelta(hours=240), 400)
    assert len(later) > 1500
    y = later["y"].to_numpy()
    new_model = reg.load_current("signal-model")
    p_new, p_old = evaluate(new_model, later), evaluate(stale_model(), later)
    assert brier_score(y, p_new) < brier_score(y, p_old) - 0.005
    conf = lambda p: np.maximum(p, 1 - p)  # noqa: E731
    hit = lambda p: (p >= 0.5) == (y == 1)  # noqa: E731
    ece_new = expected_calibration_error(hit(p_new), conf(p_new), value_range=(0.5, 1.0))
    ece_old = expected_calibration_error(hit(p_old), conf(p_old), value_range=(0.5, 1.0))
    assert ece_new < ece_old


def test_candidate_trained_on_noise_is_rejected() -> None:
    rng = np.random.default_rng(11)
    bars = stream()
    noise = bars.copy()
    for _, idx in noise.groupby("symbol").groups.items():
        r = rng.normal(0, 0.006, len(idx))
        close = 100 * np.exp(np.cumsum(r))
        noise.loc[idx, ["open", "close"]] = np.column_stack([close / np.exp(r), close])
        noise.loc[idx, "high"] = np.maximum(close, close / np.exp(r)) * 1.002
        noise.loc[idx, "low"] = np.minimum(close, close / np.exp(r)) * 0.998
    candidate = SignalModel(ModelConfig(train_window_bars=240)).fit(noise, until=bar_ts(600))
    good = SignalModel(ModelConfig()).fit(bars, until=bar_ts(600))
    fs = FeatureSet.from_bars(bars, ModelConfig())
    rows = validation_rows(fs, bar_ts(600), 240)
    v = compare(rows["ts"], rows["y"], evaluate(good, rows), evaluate(candidate, rows), ValidationConfig())
    assert not v.promote
    assert any("Brier not better" in r for r in v.reasons)
    assert v.metrics["brier"].diff > 0  # noise is worse than the real edge


def test_duplicate_triggers_produce_one_job(tmp_path: Path) -> None:
    reg = registry_with_stale(tmp_path)
    calls = {"n": 0}

    def bars() -> pd.DataFrame:
        calls["n"] += 1
        return stream()

    worker = RetrainWorker(registry=reg, bars=bars)
    first = worker.handle(trigger("t-dup", bar_ts(1000)))
    second = worker.handle(trigger("t-dup", bar_ts(1000)))
    assert calls["n"] == 1 and len(worker.log.jobs) == 1
    assert second["outcome_now"] == "duplicate" and second["outcome"] == first["outcome"]
    assert worker.log.duplicates == {"t-dup": 1}
    assert len(reg.versions("signal-model")) == 2


def test_unknown_model_is_rejected_and_writes_nothing(tmp_path: Path) -> None:
    reg = registry_with_stale(tmp_path)
    worker = RetrainWorker(registry=reg, bars=stream)
    job = worker.handle(trigger("t-unknown", bar_ts(1000), model="other-model"))
    assert job["outcome"] == "rejected" and "unknown model 'other-model'" in job["note"]
    assert reg.versions("signal-model") == [stale_model().model_version_]
    # an alias recorded in the version's metadata resolves
    assert reg.find("prod-signal-v1") == ("signal-model", stale_model().model_version_)


def test_training_failure_is_recorded_and_leaves_no_model(tmp_path: Path) -> None:
    reg = registry_with_stale(tmp_path)
    recent = stream()[
        stream()["ts"] >= bar_ts(950)
    ]  # 50 bars before the trigger: fewer than the features' warm-up
    worker = RetrainWorker(registry=reg, bars=lambda: recent)
    job = worker.handle(trigger("t-early", bar_ts(1000)))  # no labelled rows before it
    assert job["outcome"] == "failed" and "needs at least 200 training" in job["note"]
    assert reg.versions("signal-model") == [stale_model().model_version_]
    assert not [p for p in (tmp_path / "signal-model").iterdir() if p.name.startswith(STAGING_PREFIX)]
    bad = worker.handle({"trigger_id": "t-bad", "model": "signal-model", "triggered_at": "2025-01-01T00:00"})
    assert bad["outcome"] == "failed" and "timezone-aware" in bad["note"]


def test_too_little_out_of_sample_data_is_rejected(tmp_path: Path) -> None:
    reg = registry_with_stale(tmp_path)
    job = RetrainWorker(registry=reg, bars=stream).handle(trigger("t-late", bar_ts(N_BARS - 5)))
    assert job["outcome"] == "rejected" and "not enough out-of-sample rows" in job["note"]
    assert reg.current_version("signal-model") == stale_model().model_version_


def test_prod_promotion_needs_allow_prod_write(tmp_path: Path) -> None:
    prod = load_settings({"ENV": "prod"})
    reg = registry_with_stale(tmp_path, settings=load_settings({"ENV": "prod", "ALLOW_PROD_WRITE": "1"}))
    reg.settings = prod
    job = RetrainWorker(registry=reg, bars=stream).handle(trigger("t-prod", bar_ts(1000)))
    assert job["outcome"] == "failed" and "ALLOW_PROD_WRITE" in job["note"]
    assert reg.current_version("signal-model") == stale_model().model_version_


def test_consumer_group_acks_after_the_job_and_records_it_in_its_own_artifact(tmp_path: Path) -> None:
    reg = registry_with_stale(tmp_path / "models")
    store = ArtifactStore(tmp_path / "cache")
    q = TriggerQueue(cooldown=dt.timedelta(hours=1))
    sub = q.submit(
        model="prod-signal-v1", reason="accuracy_drift", drift_info={}, at=bar_ts(1000).to_pydatetime()
    )
    assert sub.trigger is not None
    store.write("retrain_triggers", q.to_dict(), source="test")
    bus = MemoryBus()
    payload = sub.trigger.payload()
    at = bar_ts(1000).to_pydatetime()
    bus.publish(TOPIC_RETRAIN, new_event(TOPIC_RETRAIN, payload, ts=at))
    bus.publish(TOPIC_RETRAIN, new_event(TOPIC_RETRAIN, payload, ts=at))  # same trigger, new event id
    worker = RetrainWorker.with_store_log(registry=reg, bars=stream, store=store)
    handled = worker.consume(bus, once=True, block_ms=10)
    assert handled == 2 and len(worker.log.jobs) == 1
    assert bus.pending(TOPIC_RETRAIN, "retrain-worker") == 0
    job = worker.log.jobs[0]
    assert job["outcome"] == "promoted" and job["note"].startswith("promoted sig-")
    # one writer per artifact: the worker records the outcome in retrain_jobs only
    untouched = TriggerQueue.from_dict(store.read("retrain_triggers").data).get(payload["trigger_id"])
    assert untouched.outcome == "pending" and store.read("retrain_triggers").envelope["source"] == "test"
    jobs = store.read("retrain_jobs").data
    assert jobs["counts"]["promoted"] == 1 and jobs["duplicates"] == {payload["trigger_id"]: 1}
    # a restarted worker reads the log and dedupes a re-sent trigger without retraining
    again = RetrainWorker.with_store_log(registry=reg, bars=lambda: pytest.fail("retrained"), store=store)
    assert again.handle(payload)["outcome_now"] == "duplicate"


def test_a_trigger_older_than_the_live_models_data_is_rejected_as_stale(tmp_path: Path) -> None:
    """A trigger that waited while a newer model went live must not roll the live model back to
    one trained on older data (the one-hour soak promoted such a model before this check)."""
    reg = registry_with_stale(tmp_path)  # live: trained on data until bar 850
    worker = RetrainWorker(registry=reg, bars=stream)
    until = pd.Timestamp(stale_model().trained_until_)
    job = worker.handle(trigger("t-stale", until))  # at the live model's last data: nothing newer to learn
    assert job["outcome"] == "rejected" and job["note"].startswith(
        f"stale trigger: the live model {stale_model().model_version_} was trained on data until"
    )
    assert "candidate_version" not in job and reg.versions("signal-model") == [stale_model().model_version_]
    after = worker.handle(trigger("t-fresh", until + pd.Timedelta(hours=150)))  # after it: retrained
    assert after["outcome"] in ("promoted", "rejected") and "candidate_version" in after
    assert not after["note"].startswith("stale")
