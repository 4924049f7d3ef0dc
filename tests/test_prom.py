"""Prometheus metrics: names, one registry per call, and /metrics scraped over HTTP."""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from infra.artifacts import ArtifactStore
from infra.bus import TOPIC_FEEDBACK, MemoryBus, dead_letter_topic, new_event
from infra.prom import (
    make_metrics,
    observe_feedback,
    render,
    serve_metrics,
    service_metrics_port,
    set_governor_policy,
    start_service_metrics,
)
from infra.prom_collector import ServiceCollector
from infra.settings import Settings

NAMES = {
    "quantum_rl_rewards_total",
    "quantum_rl_reward_avg",
    "quantum_rl_training_steps_total",
    "quantum_rl_policy_loss",
    "quantum_rl_value_loss",
    "quantum_clm_drift_checks_total",
    "quantum_clm_drifts_detected_total",
    "quantum_clm_retrains_triggered_total",
    "quantum_clm_mean_abs_confidence_error",
    "quantum_clm_confidence_calibration",
}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_each_factory_call_has_its_own_registry() -> None:
    a, b = make_metrics(), make_metrics()
    a.rl_rewards_total.inc(3)
    assert _samples(render(a).decode())[("quantum_rl_rewards_total", ())] == 3.0
    assert _samples(render(b).decode())[("quantum_rl_rewards_total", ())] == 0.0


def test_metrics_scraped_over_http() -> None:
    m = make_metrics()
    server, thread = serve_metrics(m, 0)
    try:
        m.rl_rewards_total.inc(2)
        m.rl_reward_avg.set(0.25)
        m.rl_training_steps.inc()
        m.rl_policy_loss.set(-0.03)
        m.rl_value_loss.set(0.5)
        m.clm_drift_checks.inc(4)
        m.clm_drifts_detected.labels(type="calibration").inc()
        m.clm_retrains_triggered.inc()
        m.clm_mean_abs_confidence_error.set(0.48)
        m.clm_confidence_calibration.set(0.02)
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            assert resp.status == 200
            text = resp.read().decode()
    finally:
        server.shutdown()
        thread.join(timeout=5)
    got = _samples(text)
    names = {n for n, _ in got}
    assert names >= NAMES
    assert got[("quantum_rl_rewards_total", ())] == 2.0
    assert got[("quantum_rl_reward_avg", ())] == 0.25
    assert got[("quantum_rl_policy_loss", ())] == -0.03
    assert got[("quantum_clm_drifts_detected_total", (("type", "calibration"),))] == 1.0
    assert got[("quantum_clm_mean_abs_confidence_error", ())] == 0.48
    assert "quantum_clm_mape" not in text


def test_bad_port_is_refused() -> None:
    with pytest.raises(ValueError, match="port"):
        serve_metrics(make_metrics(), 70000)


# ----------------------------------------------------------------------- operations metrics


def _fb(oid: str, pnl: float, m: float, reward: float, minute: int) -> dict:
    ts = dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=minute)
    payload = {"order_id": oid, "pnl_usd": pnl, "multiplier_used": m, "reward": reward, "symbol": "BTCUSDT",
               "pnl_pct": pnl / 10, "duration_mins": 60.0, "max_drawdown_pct": 0.0, "sharpe_contribution": 0.0,
               "confidence": 0.5, "state": [0.5]}  # fmt: skip  # a complete rl.feedback (the bus checks its contract)
    return new_event(TOPIC_FEEDBACK, payload, ts=ts)


def test_observe_feedback_hand_computed() -> None:
    m = make_metrics()
    # P&L as traded 10, -20, 30 with multipliers 2, 0.5, 1 -> static Kelly 5, -40, 30
    for i, (pnl, mult, r) in enumerate([(10.0, 2.0, 0.4), (-20.0, 0.5, -1.5), (30.0, 1.0, 3.0)]):
        observe_feedback(m, _fb(f"o{i}", pnl, mult, r, i), suggested=1.25 if i == 0 else None)
    got = _samples(render(m).decode())
    assert got[("quantum_rl_pnl_usd_sum", (("sizing", "rl"),))] == 20.0
    assert got[("quantum_rl_pnl_usd_sq_sum", (("sizing", "rl"),))] == 1400.0
    assert got[("quantum_rl_pnl_usd_sum", (("sizing", "kelly"),))] == -5.0
    assert got[("quantum_rl_pnl_usd_sq_sum", (("sizing", "kelly"),))] == 2525.0
    assert got[("quantum_rl_cumulative_reward", ())] == pytest.approx(1.9)
    assert got[("quantum_rl_reward_count", ())] == 3.0
    # buckets are cumulative: rewards 0.4, -1.5, 3.0 -> le=-1: 1, le=0.5: 2, le=5: 3
    assert got[("quantum_rl_reward_bucket", (("le", "-1.0"),))] == 1.0
    assert got[("quantum_rl_reward_bucket", (("le", "0.5"),))] == 2.0
    assert got[("quantum_rl_reward_bucket", (("le", "5.0"),))] == 3.0
    assert got[("quantum_rl_multiplier_used_sum", ())] == 3.5
    assert got[("quantum_rl_multiplier_suggested_count", ())] == 1.0
    assert got[("quantum_rl_multiplier_suggested_sum", ())] == 1.25
    assert got[("quantum_rl_last_feedback_timestamp_seconds", ())] == 1735689600.0 + 120.0


def test_governor_policy_is_one_hot_and_static_means_kelly() -> None:
    m = make_metrics()
    set_governor_policy(m, "edge")
    set_governor_policy(m, "static", fallbacks=2)
    got = _samples(render(m).decode())
    assert [got[("quantum_rl_governor_policy", (("policy", p),))] for p in ("kelly", "edge", "ppo")] == [
        1,
        0,
        0,
    ]
    assert got[("quantum_rl_governor_fallbacks_total", ())] == 2.0
    with pytest.raises(ValueError, match="'policy' parameter of set_governor_policy must be one of"):
        set_governor_policy(m, "dqn")


def test_service_ports_from_the_environment() -> None:
    assert service_metrics_port("retrain_worker", {}) == 9110
    assert service_metrics_port("retrain_worker", {"METRICS_PORT_RETRAIN_WORKER": " 9200 "}) == 9200
    assert service_metrics_port("feedback_bridge", {"METRICS_PORT_FEEDBACK_BRIDGE": "-1"}) == -1
    with pytest.raises(ValueError, match="METRICS_PORT_FEEDBACK_BRIDGE must be an integer in"):
        service_metrics_port("feedback_bridge", {"METRICS_PORT_FEEDBACK_BRIDGE": "high"})
    with pytest.raises(ValueError, match="'service' parameter"):
        service_metrics_port("bridge", {})


def _settings(tmp_path: Path) -> Settings:
    return Settings(logs_dir=tmp_path, cache_dir=tmp_path / "cache", artifact_max_age_s=600.0)


def _collect(c: ServiceCollector) -> dict:
    r = CollectorRegistry()
    r.register(c)
    return _samples(generate_latest(r).decode())


def test_collector_reads_groups_lag_pending_and_dead_letters() -> None:
    bus = MemoryBus(maxlen=1000)
    for i in range(5):
        bus.publish(TOPIC_FEEDBACK, _fb(f"o{i}", 1.0, 1.0, 0.1, i))
    bus.ensure_group(TOPIC_FEEDBACK, "g")
    [first, second] = bus.read([TOPIC_FEEDBACK], "g", "c1", count=2, block_ms=0)
    bus.commit("g", ack=[first], dead=[(second, "bad")])
    bus.read([TOPIC_FEEDBACK], "g", "c1", count=1, block_ms=0)  # delivered, not acknowledged
    got = _collect(
        ServiceCollector("trainer", bus=bus, topics=(TOPIC_FEEDBACK,), stats=lambda: {"a": 3, "b": "x"})
    )
    key = (("group", "g"), ("topic", TOPIC_FEEDBACK))
    assert got[("quantum_bus_up", ())] == 1.0
    assert got[("quantum_bus_stream_maxlen", ())] == 1000.0
    assert got[("quantum_bus_stream_length", (("topic", TOPIC_FEEDBACK),))] == 5.0
    assert got[("quantum_bus_consumer_lag", key)] == 2.0  # 5 published, 3 delivered
    assert got[("quantum_bus_consumer_pending", key)] == 1.0
    assert got[("quantum_bus_dead_letters", (("topic", TOPIC_FEEDBACK),))] == 1.0
    assert bus.length(dead_letter_topic(TOPIC_FEEDBACK)) == 1
    assert got[("quantum_service_events_total", (("kind", "a"),))] == 3.0
    assert not any(k[0] == "quantum_service_events_total" and ("kind", "b") in k[1] for k in got)


def test_a_failing_bus_gives_bus_up_0_not_a_failed_scrape() -> None:
    class Down(MemoryBus):
        def length(self, topic: str) -> int:
            raise ConnectionError("redis went away")

    got = _collect(ServiceCollector("trainer", bus=Down(), topics=(TOPIC_FEEDBACK,)))
    assert got[("quantum_bus_up", ())] == 0.0
    assert not any(k[0] == "quantum_bus_stream_length" for k in got)


def _check(model: str, **stats: float | None) -> dict[str, object]:
    return {"n_trades": 100, "model": model, **stats}


def _det(kind: str) -> dict[str, object]:
    return {"kind": kind, "statistic": "s", "value": 1.0, "threshold": 0.5, "message": "m", "n_trades": 10}


def _trigger(tid: str, outcome: str) -> dict[str, object]:
    return {"trigger_id": tid, "model": "v1", "reason": "accuracy_drift", "priority": "high",
            "triggered_at": "2025-01-01T00:00:00Z", "outcome": outcome}  # fmt: skip


def test_collector_reads_artifact_times_breaker_and_clm_artifacts(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    store = ArtifactStore(s.cache_dir)
    store.write("my_notes", {"x": 1}, source="test")
    os.utime(store.path("my_notes"), (1_700_000_000, 1_700_000_000))
    store.write(
        "drift",
        {
            "n_trades": 300,
            "checks": [
                _check("v1", accuracy_cusum=1.0, accuracy_threshold=9.0),
                _check("v1", accuracy_cusum=12.5, accuracy_threshold=10.0, calibration_cusum=2.0,
                       calibration_threshold=13.2, high_conf_win_rate=0.55, high_conf_threshold=0.6,
                       ks_d=None, ks_threshold=0.25),
                _check("v0", accuracy_cusum=99.0, accuracy_threshold=10.0),
            ],
            "detections": [_det("accuracy_drift"), _det("accuracy_drift"), _det("weird")],
            "current_model": "v1",
        },
        source="test",
    )  # fmt: skip
    store.write(
        "retrain_jobs",
        {"jobs": [
            {"trigger_id": "a", "outcome": "promoted", "decided_at": "2025-01-01T00:00:00Z"},
            {"trigger_id": "b", "outcome": "failed", "decided_at": "2025-01-02T00:00:00Z"},
            {"trigger_id": "c", "outcome": "promoted", "decided_at": "2025-01-03T00:00:00Z"},
        ], "counts": {"promoted": 2, "rejected": 0, "failed": 1}},
        source="test",
    )  # fmt: skip
    store.write(
        "retrain_triggers",
        {
            "cooldown_s": 0.0,
            "history_limit": 10,
            "triggers": [_trigger("a", "pending"), _trigger("b", "failed")],
        },
        source="t",
    )
    (tmp_path / "firestore").mkdir()
    (tmp_path / "firestore" / "status.json").write_text(json.dumps({"breaker_state": "open"}))
    got = _collect(ServiceCollector("retrain_worker", settings=s, clm_artifacts=True))
    assert got[("quantum_artifact_last_write_timestamp_seconds", (("artifact", "my_notes"),))] == 1.7e9
    assert got[("quantum_artifact_max_age_seconds", ())] == 600.0
    state = {k[1][1][1]: v for k, v in got.items() if k[0] == "quantum_circuit_breaker_state"}
    assert state == {"closed": 0.0, "open": 1.0, "half_open": 0.0}
    # the current model's LAST check (v0's later check is a replaced model's); a missing (NaN)
    # K-S D is left out, its threshold kept
    assert got[("quantum_clm_drift_statistic", (("statistic", "accuracy_cusum"),))] == 12.5
    assert got[("quantum_clm_drift_threshold", (("statistic", "accuracy_cusum"),))] == 10.0
    assert got[("quantum_clm_drift_statistic", (("statistic", "calibration_cusum"),))] == 2.0
    assert got[("quantum_clm_drift_statistic", (("statistic", "high_conf_win_rate"),))] == 0.55
    assert ("quantum_clm_drift_statistic", (("statistic", "ks_d"),)) not in got
    assert got[("quantum_clm_drift_threshold", (("statistic", "ks_d"),))] == 0.25
    assert got[("quantum_clm_detections", (("kind", "accuracy_drift"),))] == 2.0
    assert got[("quantum_clm_detections", (("kind", "calibration_drift"),))] == 0.0
    assert got[("quantum_clm_retrain_jobs", (("outcome", "promoted"),))] == 2.0
    assert got[("quantum_clm_retrain_jobs", (("outcome", "failed"),))] == 1.0
    last = dt.datetime(2025, 1, 3, tzinfo=dt.UTC).timestamp()
    assert got[("quantum_clm_retrain_last_timestamp_seconds", (("outcome", "promoted"),))] == last
    assert ("quantum_clm_retrain_last_timestamp_seconds", (("outcome", "rejected"),)) not in got
    assert got[("quantum_clm_retrain_triggers", (("outcome", "pending"),))] == 1.0
    # without clm_artifacts the drift numbers are not exported (one exporter per deployment)
    assert not any(k[0].startswith("quantum_clm_drift") for k in _collect(ServiceCollector("t", settings=s)))
    # a drift file that breaks its contract (NaN where a number is promised) exports nothing for drift
    text = store.path("drift").read_text().replace('"accuracy_cusum": 12.5', '"accuracy_cusum": NaN')
    store.path("drift").write_text(text)
    bad = _collect(ServiceCollector("retrain_worker", settings=s, clm_artifacts=True))
    assert not any(k[0].startswith(("quantum_clm_drift", "quantum_clm_detections")) for k in bad)
    assert bad[("quantum_clm_retrain_jobs", (("outcome", "promoted"),))] == 2.0


def test_start_service_metrics_serves_the_collector_on_loopback(tmp_path: Path) -> None:
    m = make_metrics()
    server = start_service_metrics(m, "feedback_bridge", bus=MemoryBus(), topics=(TOPIC_FEEDBACK,), port=0)
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    finally:
        server.shutdown()
    assert server.server_address[0] == "127.0.0.1"
    assert _samples(text)[("quantum_bus_stream_length", (("topic", TOPIC_FEEDBACK),))] == 0.0
    assert start_service_metrics(make_metrics(), "trainer", port=-1) is None


def test_a_taken_port_is_logged_and_the_service_runs_on(caplog: pytest.LogCaptureFixture) -> None:
    first = start_service_metrics(make_metrics(), "trainer", port=0)
    try:
        taken = first.server_address[1]
        with caplog.at_level("ERROR", logger="infra.prom"):
            assert start_service_metrics(make_metrics(), "feedback_bridge", port=taken) is None
        assert f"cannot serve /metrics on 127.0.0.1:{taken}" in caplog.text
    finally:
        first.shutdown()
