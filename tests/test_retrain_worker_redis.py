"""The retrain worker's consumer-group path against a real redis-server (started on loopback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from infra.artifacts import ArtifactStore
from infra.bus import TOPIC_RETRAIN, connect_bus, new_event
from ml.retrain_worker import GROUP
from tests.conftest import ROOT
from tests.redis_server import RedisServer, redis_server, redis_url  # noqa: F401
from tests.test_retrain_worker import bar_ts, registry_with_stale, stream, trigger


@pytest.mark.redis
def test_cli_once_consumes_from_redis_and_acks_after_the_job(tmp_path: Path, redis_url: str) -> None:  # noqa: F811
    logs = tmp_path / "logs"
    reg = registry_with_stale(logs / "models")
    (logs / "data").mkdir(parents=True)
    stream().to_parquet(logs / "data" / "bars.parquet")
    bus = connect_bus(redis_url)
    at = bar_ts(1000)
    payload = trigger("t-redis", at)
    for _ in range(2):  # a duplicate trigger (new event id, same trigger_id)
        bus.publish(TOPIC_RETRAIN, new_event(TOPIC_RETRAIN, payload, ts=at.to_pydatetime()))
    bus.publish(
        TOPIC_RETRAIN, new_event(TOPIC_RETRAIN, trigger("t-other", at, "ghost"), ts=at.to_pydatetime())
    )
    env = {"PATH": "/usr/bin:/bin", "LOGS_DIR": str(logs), "ENV": "dev", "EVENTBUS_URL": redis_url}
    proc = subprocess.run(
        [sys.executable, "-m", "ml.retrain_worker", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    assert "3 retrain trigger(s) handled in this run" in proc.stdout
    assert bus.pending(TOPIC_RETRAIN, GROUP) == 0 and bus.lag(TOPIC_RETRAIN, GROUP) in (0, None)
    jobs = ArtifactStore(logs / "cache").read("retrain_jobs").data
    outcomes = {j["trigger_id"]: j["outcome"] for j in jobs["jobs"]}
    assert outcomes == {"t-redis": "promoted", "t-other": "rejected"}
    assert jobs["duplicates"] == {"t-redis": 1}
    assert reg.current_version("signal-model") != reg.previous_version("signal-model")
    assert pd.Timestamp(reg.current("signal-model").metadata["trained_until"]) < at  # type: ignore[union-attr]
    bus.close()


@pytest.mark.redis
def test_worker_rides_out_a_redis_outage_longer_than_the_retry_deadline(
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    import threading
    import time

    from infra.bus import TOPIC_RETRAIN
    from infra.bus.redis_streams import RedisBus
    from ml.retrain_worker import RetrainWorker
    from tests.test_retrain_worker import registry_with_stale

    bus = RedisBus(redis_server.url, retry_deadline_s=0.5, connect_timeout=0.2, backoff_cap_s=0.1)
    worker = RetrainWorker.with_store_log(
        registry=registry_with_stale(tmp_path / "models"), bars=stream, store=ArtifactStore(tmp_path / "c")
    )
    stop = threading.Event()
    handled: list[int] = []
    thread = threading.Thread(target=lambda: handled.append(worker.consume(bus, stop=stop, block_ms=100)))
    thread.start()
    time.sleep(0.5)
    redis_server.kill()
    time.sleep(2.0)  # four retry deadlines: the old loop raised BusUnavailableError and the worker exited 1
    assert thread.is_alive()
    redis_server.start()
    at = bar_ts(1000)
    bus.publish(
        TOPIC_RETRAIN, new_event(TOPIC_RETRAIN, trigger("t-after", at, "ghost"), ts=at.to_pydatetime())
    )
    deadline = time.monotonic() + 30
    while not worker.log.jobs and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    thread.join(timeout=30)
    assert [j["trigger_id"] for j in worker.log.jobs] == ["t-after"] and handled == [1]
    bus.close()
