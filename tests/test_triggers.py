"""Retrain trigger queue: dedupe, cooldown, priorities, outcomes, persistence."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra import jsonio
from ml.triggers import RetrainTrigger, TriggerQueue

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
INFO = {
    "kind": "accuracy_drift",
    "statistic": "cusum",
    "value": 11.2,
    "threshold": 10.8,
    "message": "m",
    "n_trades": 190,
}


def submit(q: TriggerQueue, at: dt.datetime, reason: str = "accuracy_drift", model: str = "m1"):
    return q.submit(model=model, reason=reason, drift_info=INFO, at=at)


def test_accepted_trigger_has_event_payload_fields() -> None:
    q = TriggerQueue()
    sub = submit(q, T0)
    assert sub.accepted and sub.status == "accepted"
    t = sub.trigger
    assert t is not None
    assert t.trigger_id == "rt-m1-accuracy_drift-20250301T120000Z"
    assert t.priority == "high" and t.outcome == "pending"
    payload = t.payload()
    assert payload == {
        "trigger_id": t.trigger_id,
        "model": "m1",
        "reason": "accuracy_drift",
        "drift_info": INFO,
        "priority": "high",
        "triggered_at": "2025-03-01T12:00:00Z",
    }


def test_duplicate_while_pending_is_suppressed_and_counted() -> None:
    q = TriggerQueue(cooldown=dt.timedelta(0))
    first = submit(q, T0).trigger
    assert first is not None
    for k in range(3):
        sub = submit(q, T0 + (k + 1) * H)
        assert sub.status == "duplicate"
        assert sub.trigger is not None and sub.trigger.trigger_id == first.trigger_id
    assert len(q.history) == 1
    assert q.get(first.trigger_id).duplicates == 3
    assert [s["status"] for s in q.suppressed] == ["duplicate"] * 3
    # another reason or another model is not a duplicate (cooldown 0 here)
    assert submit(q, T0 + 5 * H, reason="calibration_drift").accepted
    assert submit(q, T0 + 5 * H, model="m2").accepted


def test_cooldown_counts_from_the_last_trigger_whatever_its_outcome() -> None:
    q = TriggerQueue(cooldown=dt.timedelta(hours=24))
    t = submit(q, T0).trigger
    assert t is not None
    q.resolve(t.trigger_id, "rejected", at=T0 + 2 * H)
    blocked = submit(q, T0 + 23 * H)
    assert blocked.status == "cooldown" and blocked.trigger is not None
    assert blocked.trigger.trigger_id == t.trigger_id
    # exactly at the end of the cooldown: allowed again
    assert submit(q, T0 + 24 * H).accepted


def test_high_priority_is_not_held_back_by_a_recent_low_priority_trigger() -> None:
    q = TriggerQueue(cooldown=dt.timedelta(hours=24))
    low = submit(q, T0, reason="distribution_shift").trigger
    assert low is not None and low.priority == "normal"
    q.resolve(low.trigger_id, "promoted", at=T0 + H)
    high = submit(q, T0 + 2 * H, reason="accuracy_drift")
    assert high.accepted
    # but a low-priority one is held back by the recent high-priority trigger
    assert submit(q, T0 + 3 * H, reason="distribution_shift").status == "cooldown"


def test_pending_order_and_resolution() -> None:
    q = TriggerQueue(cooldown=dt.timedelta(0))
    a = submit(q, T0, reason="distribution_shift", model="a").trigger
    b = submit(q, T0 + H, reason="accuracy_drift", model="b").trigger
    c = submit(q, T0 + 2 * H, reason="calibration_drift", model="c").trigger
    assert a and b and c
    assert [t.trigger_id for t in q.pending()] == [b.trigger_id, c.trigger_id, a.trigger_id]
    done = q.resolve(b.trigger_id, "promoted", at=T0 + 3 * H, note="auc 0.61 -> 0.66")
    assert done.outcome == "promoted" and done.resolved_at == T0 + 3 * H
    assert [t.trigger_id for t in q.pending()] == [c.trigger_id, a.trigger_id]
    assert [t.trigger_id for t in q.pending(model="a")] == [a.trigger_id]
    with pytest.raises(ValueError, match="already resolved"):
        q.resolve(b.trigger_id, "failed", at=T0 + 4 * H)
    with pytest.raises(ValueError, match=r"'outcome' of TriggerQueue\.resolve"):
        q.resolve(c.trigger_id, "pending", at=T0 + 4 * H)  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="nope"):
        q.resolve("nope", "failed", at=T0)


def test_round_trip_through_json() -> None:
    q = TriggerQueue(cooldown=dt.timedelta(hours=6))
    t = submit(q, T0).trigger
    assert t is not None
    submit(q, T0 + H)
    q.resolve(t.trigger_id, "failed", at=T0 + 2 * H, note="OOM")
    submit(q, T0 + 7 * H, reason="calibration_drift")
    data = jsonio.loads(jsonio.dumps(q.to_dict()))
    back = TriggerQueue.from_dict(data)
    assert back.to_dict() == q.to_dict()
    assert back.cooldown == dt.timedelta(hours=6)
    assert [x.outcome for x in back.history] == ["failed", "pending"]
    # the rebuilt queue keeps enforcing the rules
    assert submit(back, T0 + 8 * H, reason="calibration_drift").status == "duplicate"


def test_history_limit_drops_oldest_resolved_but_keeps_pending() -> None:
    q = TriggerQueue(cooldown=dt.timedelta(0), history_limit=2)
    ids = []
    for k in range(4):
        t = submit(q, T0 + k * H, model=f"m{k}").trigger
        assert t is not None
        ids.append(t.trigger_id)
    for tid in ids[:3]:
        q.resolve(tid, "promoted", at=T0 + 10 * H)
    kept = [t.trigger_id for t in q.history]
    assert kept == ids[1:]  # oldest resolved dropped, pending m3 kept


def test_same_second_ids_are_unique() -> None:
    q = TriggerQueue(cooldown=dt.timedelta(0))
    a = submit(q, T0).trigger
    assert a is not None
    q.resolve(a.trigger_id, "rejected", at=T0)
    b = submit(q, T0).trigger
    assert b is not None and b.trigger_id == a.trigger_id + "-2"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"at": dt.datetime(2025, 1, 1)}, "timezone-aware"),
        ({"reason": "weird"}, "'reason' of TriggerQueue.submit"),
        ({"model": ""}, "'model' of TriggerQueue.submit"),
        ({"priority": "urgent"}, "'priority' of TriggerQueue.submit"),
    ],
)
def test_bad_submissions_raise_clear_errors(kwargs: dict, match: str) -> None:
    args = {"model": "m", "reason": "accuracy_drift", "drift_info": {}, "at": T0, **kwargs}
    with pytest.raises(ValueError, match=match):
        TriggerQueue().submit(**args)


def test_bad_queue_parameters() -> None:
    with pytest.raises(ValueError, match="'cooldown' of TriggerQueue"):
        TriggerQueue(cooldown=dt.timedelta(hours=-1))
    with pytest.raises(ValueError, match="'history_limit' of TriggerQueue"):
        TriggerQueue(history_limit=-1)
    with pytest.raises(ValueError, match="'outcome' of retrain trigger"):
        RetrainTrigger.from_dict(
            {
                "trigger_id": "x",
                "model": "m",
                "reason": "r",
                "triggered_at": "2025-01-01T00:00:00Z",
                "outcome": "done",
            }
        )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 200),
            st.sampled_from(["accuracy_drift", "calibration_drift", "distribution_shift"]),
        ),
        max_size=30,
    ),
    st.integers(0, 48),
)
def test_invariants_under_any_submission_sequence(events: list[tuple[int, str]], cooldown_h: int) -> None:
    """At most one pending trigger per (model, reason); accepted triggers of the same model and
    priority are at least ``cooldown`` apart."""
    q = TriggerQueue(cooldown=dt.timedelta(hours=cooldown_h))
    for hours, reason in sorted(events):
        sub = submit(q, T0 + hours * H, reason=reason)
        if sub.accepted and sub.trigger is not None and hours % 3 == 0:
            q.resolve(sub.trigger.trigger_id, "rejected", at=T0 + hours * H)
    pending = [(t.model, t.reason) for t in q.pending()]
    assert len(pending) == len(set(pending))
    for prio in ("high", "normal"):
        times = sorted(t.triggered_at for t in q.history if t.priority == prio)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(g >= dt.timedelta(hours=cooldown_h) for g in gaps)


METRICS = {
    "brier": {
        "name": "brier",
        "current": 0.26,
        "candidate": 0.24,
        "diff": -0.02,
        "ci_low": -0.03,
        "ci_high": -0.01,
    },
    "ece": {
        "name": "ece",
        "current": 0.08,
        "candidate": 0.03,
        "diff": -0.05,
        "ci_low": -0.07,
        "ci_high": None,
    },
}


def test_resolve_stores_metrics_and_new_version_and_round_trips() -> None:
    q = TriggerQueue(cooldown=dt.timedelta(0))
    a = submit(q, T0).trigger
    b = submit(q, T0 + H, reason="calibration_drift").trigger
    assert a is not None and b is not None
    metrics = {k: dict(v) for k, v in METRICS.items()}
    done = q.resolve(a.trigger_id, "promoted", at=T0 + 2 * H, note="ok", metrics=metrics, new_version="v2")
    metrics["brier"]["diff"] = 99.0  # the queue keeps its own copy
    assert done.new_version == "v2" and done.metrics == METRICS
    rejected = q.resolve(b.trigger_id, "rejected", at=T0 + 3 * H, metrics=METRICS)
    assert rejected.new_version is None and rejected.metrics == METRICS
    d = q.get(a.trigger_id).to_dict()
    assert d["new_version"] == "v2" and d["metrics"]["ece"]["ci_high"] is None
    assert d["resolved_at"] == "2025-03-01T14:00:00Z"
    back = TriggerQueue.from_dict(jsonio.loads(jsonio.dumps(q.to_dict())))
    assert back.to_dict() == q.to_dict()
    assert back.get(a.trigger_id).metrics == METRICS
    assert back.get(a.trigger_id).new_version == "v2"
    assert back.get(b.trigger_id).new_version is None


def test_histories_without_metrics_or_new_version_still_load() -> None:
    old = {
        "cooldown_s": 3600.0,
        "history_limit": 500,
        "triggers": [
            {
                "trigger_id": "rt-1",
                "model": "m1",
                "reason": "accuracy_drift",
                "drift_info": INFO,
                "priority": "high",
                "triggered_at": "2025-03-01T12:00:00Z",
                "outcome": "promoted",
                "resolved_at": "2025-03-01T13:00:00Z",
                "note": "legacy",
                "duplicates": 0,
            }
        ],
        "suppressed": [],
    }
    q = TriggerQueue.from_dict(old)
    t = q.get("rt-1")
    assert t.metrics is None and t.new_version is None and t.note == "legacy"
    out = q.to_dict()["triggers"][0]
    assert out["metrics"] is None and out["new_version"] is None
    assert {k: v for k, v in out.items() if k not in ("metrics", "new_version")} == old["triggers"][0]


def test_resolve_rejects_bad_metrics_and_new_version() -> None:
    q = TriggerQueue(cooldown=dt.timedelta(0))
    t = submit(q, T0).trigger
    assert t is not None
    with pytest.raises(ValueError, match=r"'new_version' of TriggerQueue\.resolve is only allowed"):
        q.resolve(t.trigger_id, "rejected", at=T0 + H, new_version="v2")
    with pytest.raises(ValueError, match=r"'new_version' of TriggerQueue\.resolve must be a non-empty"):
        q.resolve(t.trigger_id, "promoted", at=T0 + H, new_version="")
    with pytest.raises(ValueError, match=r"'metrics' of TriggerQueue\.resolve must be a mapping"):
        q.resolve(t.trigger_id, "promoted", at=T0 + H, metrics=[1, 2])  # type: ignore[arg-type]
    assert q.get(t.trigger_id).outcome == "pending"  # nothing recorded by a refused call
    bad = q.to_dict()
    bad["triggers"][0]["metrics"] = "brier better"
    with pytest.raises(ValueError, match=r"'metrics' of retrain trigger 'rt-m1-accuracy_drift"):
        TriggerQueue.from_dict(bad)


def test_worker_outcome_reaches_the_queue_through_retrain_jobs_only(tmp_path: Path) -> None:
    """One writer per artifact: the worker writes ``retrain_jobs``; the drift service resolves its
    own queue from it (metrics, promoted version, decision time) and the worker never touches
    ``retrain_triggers``."""
    from infra.artifacts import ArtifactStore
    from infra.bus import MemoryBus
    from ml.drift_monitor import DriftService
    from ml.drift_service import read_jobs
    from ml.retrain_worker import RetrainWorker
    from tests.test_retrain_worker import bar_ts, registry_with_stale, stream

    reg = registry_with_stale(tmp_path / "models")
    store = ArtifactStore(tmp_path / "cache")
    q = TriggerQueue(cooldown=dt.timedelta(hours=1))
    sub = q.submit(
        model="prod-signal-v1", reason="accuracy_drift", drift_info={}, at=bar_ts(1000).to_pydatetime()
    )
    assert sub.trigger is not None
    store.write("retrain_triggers", q.to_dict(), source="ml.drift_service")
    before = (tmp_path / "cache" / "retrain_triggers.json").read_bytes()
    job = RetrainWorker(registry=reg, bars=stream, store=store).handle(sub.trigger.payload())
    assert job["outcome"] == "promoted"
    assert (tmp_path / "cache" / "retrain_triggers.json").read_bytes() == before
    service = DriftService(publisher=MemoryBus(), queue=q, jobs=read_jobs(store))
    service.apply_jobs()
    back = service.queue.get(sub.trigger.trigger_id)
    assert back.outcome == "promoted"
    assert back.new_version == job["new_version"] == reg.current_version("signal-model")
    assert back.metrics == job["validation"]["metrics"]
    assert back.metrics is not None and set(back.metrics) >= {"brier", "ece", "hit_rate_high"}
    brier = back.metrics["brier"]
    assert brier["ci_low"] <= brier["diff"] <= brier["ci_high"]
    assert back.resolved_at == dt.datetime.fromisoformat(job["decided_at"].replace("Z", "+00:00"))
    assert service.models[job["new_version"]].live_from == job["decided_at"]  # its detector starts here
