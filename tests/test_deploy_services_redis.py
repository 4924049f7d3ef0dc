"""The units' commands, as systemd runs them, serve the metrics the alerts and dashboards need.

``python -m execution.feedback_bridge`` and ``python -m ml.retrain_worker`` against a real
redis-server, with their ports from ``METRICS_PORT_<SERVICE>`` (the trainer's command is covered by
tests/test_trainer_redis.py): the bridge's counters, lag, pending and dead letters after a replay,
the retrain worker's drift and retrain numbers from the artifacts; each unit's KillSignal stops it with exit 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.artifacts import ArtifactStore
from infra.bus import TOPIC_EXECUTION, connect_bus
from ml.drift_monitor import DriftService
from ml.drift_scenarios import accuracy_drop
from ml.drift_service import write_artifacts
from sim.replay import replay, trade_events
from tests.feedback_fixtures import make_trades
from tests.redis_server import RedisServer, free_port, redis_server  # noqa: F401

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parent.parent


def _samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def _wait(proc: subprocess.Popen[str], port: int, ready: object, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    got: dict = {}
    while time.monotonic() < deadline:
        try:
            got = _samples(port)
        except OSError:
            got = {}
        if got and ready(got):  # type: ignore[operator]
            return got
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.3)
    return got


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> str:
    """Stop with the unit's KillSignal; the process must exit 0."""
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return err


def test_bridge_command_serves_counters_lag_and_dead_letters(
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    bus = connect_bus(redis_server.url, environ={})
    replay(bus, trade_events(make_trades(40, seed=5), updates_per_trade=2, malformed=2, seed=5))
    port = free_port()
    env = {**os.environ, "LOGS_DIR": str(tmp_path / "logs"), "ENV": "dev", "PYTHONPATH": str(ROOT),
           "EVENTBUS_URL": redis_server.url, "METRICS_PORT_FEEDBACK_BRIDGE": str(port)}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "execution.feedback_bridge", "--block-ms", "100"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        got = _wait(
            proc, port, lambda g: g.get(("quantum_service_events_total", (("kind", "closed"),))) == 40
        )
        assert got[("quantum_service_events_total", (("kind", "closed"),))] == 40
        assert got[("quantum_service_events_total", (("kind", "tracked"),))] == 40
        assert got[("quantum_bus_up", ())] == 1.0
        key = (("group", "feedback-bridge"), ("topic", TOPIC_EXECUTION))
        assert got[("quantum_bus_consumer_lag", key)] == 0.0
        assert got[("quantum_bus_consumer_pending", key)] == 0.0
        dead = sum(v for (n, _), v in got.items() if n == "quantum_bus_dead_letters")
        assert dead == 2.0
        assert got[("quantum_bus_stream_length", (("topic", "rl.feedback"),))] == 40
    finally:
        err = _stop(proc)
    assert "feedback bridge stopped" in err
    bus.close()


def test_retrain_worker_command_exports_the_drift_and_retrain_numbers(
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    cache = tmp_path / "logs" / "cache"
    bus = connect_bus(redis_server.url, environ={})
    conf, won = accuracy_drop(600, change_at=300, seed=1, drop=0.3)
    joined = pd.DataFrame(
        {
            "order_id": [f"d{i}" for i in range(600)],
            "closed_at": pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(range(600), unit="min"),
            "confidence": conf,
            "won": won,
            "model": "v1",
        }
    )
    service = DriftService(publisher=bus).run(joined)
    write_artifacts(service, {}, ArtifactStore(cache))
    last = service.checks[-1]
    port = free_port()
    bars = ROOT / "data" / "sample" / "binance_usdm" / "BTC_USDT_USDT-1h-futures.csv"
    env = {**os.environ, "LOGS_DIR": str(tmp_path / "logs"), "ENV": "dev", "PYTHONPATH": str(ROOT),
           "EVENTBUS_URL": redis_server.url, "METRICS_PORT_RETRAIN_WORKER": str(port)}  # fmt: skip
    # the triggers wait on the bus: consume from a group that starts at the end so nothing retrains here
    bus.ensure_group("model.retrain.trigger", "retrain-worker", start="$")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ml.retrain_worker", "--bars", str(bars)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        key = ("quantum_clm_drift_statistic", (("statistic", "accuracy_cusum"),))
        got = _wait(proc, port, lambda g: key in g)
        assert got[key] == pytest.approx(last["accuracy_cusum"])
        assert got[("quantum_clm_drift_threshold", (("statistic", "accuracy_cusum"),))] == pytest.approx(
            last["accuracy_threshold"]
        )
        n_det = sum(v for (n, _), v in got.items() if n == "quantum_clm_detections")
        assert n_det == len(service.detections) >= 1
        assert got[("quantum_clm_retrain_triggers", (("outcome", "pending"),))] == len(service.published)
        assert ("quantum_artifact_last_write_timestamp_seconds", (("artifact", "drift"),)) in got
    finally:
        _stop(proc, signal.SIGINT)  # KillSignal= of quantum-retrain-worker.service
    bus.close()
