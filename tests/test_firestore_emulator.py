"""The Firestore mirror against a real server: ``@firestore-emulator/server`` on loopback.

Skipped when Node or the package is missing (run ``scripts/install_firestore_emulator.sh``);
a failure under ``CI=true``. The emulator is started, killed, paused and restarted by PID.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import jsonio
from infra.artifacts import ArtifactStore
from infra.firestore_mirror import FirestoreMirror, history_doc_id, make_client, make_mirror
from infra.firestore_status import mirror_status
from infra.settings import Settings
from infra.store import open_store
from tests.firestore_emulator import FirestoreEmulator, require_emulator

pytestmark = [pytest.mark.firestore, pytest.mark.timeout(120)]

BOUND_S = 2.0  # the bound on how long a caller may wait for Firestore
COOLDOWN_S = 2.0


@pytest.fixture
def emulator() -> Iterator[FirestoreEmulator]:
    em = FirestoreEmulator(require_emulator()).start()
    try:
        yield em
    finally:
        em.stop()


def settings_for(em: FirestoreEmulator, tmp_path: Path, **kw: Any) -> Settings:
    return Settings(
        logs_dir=tmp_path / "logs",
        cache_dir=tmp_path / "logs" / "cache",
        firestore_emulator_host=em.host,
        **kw,
    )


def remote(settings: Settings, name: str) -> dict[str, Any] | None:
    """The mirrored document of artifact ``name``, read with an explicit short timeout."""
    client = make_client(settings)
    snap = client.collection(settings.firestore_collection).document(name).get(timeout=5)
    return snap.to_dict() if snap.exists else None


def remote_history(settings: Settings, name: str) -> dict[str, dict[str, Any]]:
    client = make_client(settings)
    col = client.collection(settings.firestore_collection).document(name).collection("history")
    return {d.id: d.to_dict() for d in col.stream(timeout=5)}


def assert_matches_local(settings: Settings, store: ArtifactStore, name: str) -> None:
    text = store.path(name).read_text(encoding="utf-8")
    doc = remote(settings, name)
    assert doc is not None, f"{name} is missing in Firestore"
    assert doc["envelope_json"] == text, f"{name}: Firestore content differs from the local file"
    generated_at = jsonio.loads(text)["generated_at"]
    assert history_doc_id(generated_at) in remote_history(settings, name)


def timed_write(store: ArtifactStore, name: str, data: Any) -> float:
    t0 = time.monotonic()
    store.write(name, data, source="test")
    return time.monotonic() - t0


def test_artifacts_appear_with_the_same_content(emulator: FirestoreEmulator, tmp_path: Path) -> None:
    settings = settings_for(emulator, tmp_path)
    store = open_store(settings)  # the real wiring: open_store attaches the mirror
    assert isinstance(store.mirror, FirestoreMirror)
    payloads = {
        "router_health": {"sharpe": float("nan"), "best": float("inf"), "worst": float("-inf"), "n": 3},
        "reliability": {"bins": [[0.1, 0.08], [0.5, 0.52]], "ece": 0.0213, "big_int": 2**53 + 1},
        "trigger_list": [{"trigger_id": "t1", "reason": "ECE up", "nested": {"a": {"b": {"c": [1, "x"]}}}}],
    }
    t0 = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    for i, (name, data) in enumerate(payloads.items()):
        store.write(name, data, source="test", generated_at=t0 + dt.timedelta(seconds=i))
    store.write("router_health", {"sharpe": 1.25}, source="test", generated_at=t0 + dt.timedelta(hours=1))

    for name in payloads:
        assert_matches_local(settings, store, name)
    doc = remote(settings, "reliability")
    assert doc is not None
    assert jsonio.loads(doc["envelope_json"])["data"]["big_int"] == 2**53 + 1  # no int->double loss
    assert doc["generated_at"] == t0 + dt.timedelta(seconds=1)
    assert (doc["name"], doc["env"], doc["source"], doc["schema_version"]) == (
        "reliability",
        "dev",
        "test",
        1,
    )
    # both versions of router_health are in its history; the current document is the newest
    hist = remote_history(settings, "router_health")
    assert set(hist) == {"20240501T120000000000Z", "20240501T130000000000Z"}
    current = remote(settings, "router_health")
    assert current is not None
    assert jsonio.loads(current["envelope_json"])["data"] == {"sharpe": 1.25}
    nan_env = jsonio.loads(hist["20240501T120000000000Z"]["envelope_json"])
    assert nan_env["data"]["best"] == float("inf")

    status = mirror_status(settings)
    assert (status["level"], status["breaker_state"], status["outbox_depth"]) == ("ok", "closed", 0)

    # replaying an already-applied write is harmless: same documents, same history
    mirror = store.mirror
    text = store.path("reliability").read_text(encoding="utf-8")
    mirror.outbox.append("reliability", jsonio.loads(text)["generated_at"], text)
    assert mirror.drain().sent == 1
    assert_matches_local(settings, store, "reliability")
    assert len(remote_history(settings, "reliability")) == 1


def test_killed_emulator_bounded_calls_circuit_opens_outbox_drains_after_restart(
    emulator: FirestoreEmulator, tmp_path: Path
) -> None:
    settings = settings_for(emulator, tmp_path)
    mirror = make_mirror(settings, failure_threshold=3, cooldown_s=COOLDOWN_S)
    store = ArtifactStore(settings.cache_dir, mirror=mirror)
    store.write("before_a", {"v": 1}, source="test")
    store.write("before_b", {"v": 2}, source="test")
    assert_matches_local(settings, store, "before_a")

    emulator.stop()
    depths, states, durations = [], [], []
    for i in range(6):
        durations.append(timed_write(store, f"during_{i}", {"i": i, "x": float("nan")}))
        depths.append(mirror.outbox.depth())
        states.append(mirror.breaker.state)
    durations.append(timed_write(store, "before_a", {"v": "new"}))  # a newer version while down
    assert max(durations) < BOUND_S, durations
    assert states[:2] == ["closed", "closed"]
    assert states[2:] == ["open"] * 4
    assert depths == [1, 2, 3, 4, 5, 6]
    assert mirror.outbox.depth() == 7
    assert max(durations[3:]) < 0.5  # an open circuit does not even try
    for i in range(6):
        assert store.read(f"during_{i}").ok  # local writes never suffered
    status = mirror_status(settings)
    assert (status["breaker_state"], status["outbox_depth"], status["level"]) == ("open", 7, "warn")
    assert "RetryError" in status["last_error"] or "Unavailable" in status["last_error"]

    emulator.restart()  # same port, empty database
    time.sleep(COOLDOWN_S)
    t0 = time.monotonic()
    result = mirror.drain()
    assert time.monotonic() - t0 < BOUND_S
    assert (result.sent, result.remaining, result.error, result.breaker_state) == (7, 0, None, "closed")
    for i in range(6):
        assert_matches_local(settings, store, f"during_{i}")
    assert_matches_local(settings, store, "before_a")  # the newer version, replayed in order
    assert remote(settings, "before_b") is None  # lost with the restarted in-memory database
    resynced = mirror.resync(store)
    assert resynced.remaining == 0
    for name in store.names():
        assert_matches_local(settings, store, name)
    status = mirror_status(settings)
    assert (status["level"], status["breaker_state"], status["outbox_depth"]) == ("ok", "closed", 0)


def test_paused_emulator_calls_still_return_within_the_bound(
    emulator: FirestoreEmulator, tmp_path: Path
) -> None:
    settings = settings_for(emulator, tmp_path)
    mirror = make_mirror(settings, failure_threshold=2, cooldown_s=COOLDOWN_S)
    store = ArtifactStore(settings.cache_dir, mirror=mirror)
    store.write("warm", {"v": 0}, source="test")
    assert mirror.outbox.depth() == 0

    emulator.pause()  # SIGSTOP: the socket accepts, nothing answers
    try:
        durations = [timed_write(store, f"paused_{i}", {"i": i}) for i in range(4)]
    finally:
        emulator.resume()
    assert max(durations) < BOUND_S, durations
    assert mirror.breaker.state == "open"
    assert mirror.outbox.depth() == 4

    time.sleep(COOLDOWN_S)
    # the next ordinary write is the half-open trial and drains the outbox before itself
    assert timed_write(store, "after", {"v": 1}) < BOUND_S
    assert mirror.outbox.depth() == 0
    assert mirror.breaker.state == "closed"
    for name in ["warm", "after"] + [f"paused_{i}" for i in range(4)]:
        assert_matches_local(settings, store, name)


def test_prod_write_without_allow_is_refused_with_a_clear_message(
    emulator: FirestoreEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(emulator, tmp_path, env="prod", allow_prod_write=False)
    store = open_store(settings)
    with caplog.at_level(logging.ERROR, logger="infra.firestore_mirror"):
        store.write("thresholds_note", {"threshold": 0.6}, source="test")
    assert store.read("thresholds_note").ok
    assert (
        "Refusing to write artifact 'thresholds_note' to Firestore: ENV=prod and ALLOW_PROD_WRITE is not set. "
        "Production state is only written on purpose: re-run with ALLOW_PROD_WRITE=1"
    ) in caplog.text
    assert "Not sent and not queued." in caplog.text
    assert remote(settings, "thresholds_note") is None
    status = mirror_status(settings)
    assert (status["outbox_depth"], status["refused_writes"], status["prod_write_allowed"]) == (0, 1, False)

    allowed = settings_for(emulator, tmp_path / "allowed", env="prod", allow_prod_write=True)
    store2 = open_store(allowed)
    store2.write("thresholds_note", {"threshold": 0.6}, source="test")
    doc = remote(allowed, "thresholds_note")
    assert doc is not None
    assert doc["env"] == "prod"
