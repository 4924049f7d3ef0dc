"""The mirror's control flow against an in-process fake client (no network).

The emulator tests (``test_firestore_emulator.py``) show the same behaviour against a real server;
these cover what a real server cannot be made to do on demand: a client that ignores its own
deadline, a rejected document, a client that cannot even be built.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from infra import jsonio
from infra.artifacts import ArtifactStore
from infra.firestore_mirror import MAX_ENVELOPE_BYTES, FirestoreMirror, history_doc_id
from infra.firestore_status import mirror_status
from infra.settings import Settings


class FakeRef:
    def __init__(self, path: str) -> None:
        self.path = path

    def collection(self, name: str) -> FakeCol:
        return FakeCol(f"{self.path}/{name}")


class FakeCol:
    def __init__(self, path: str) -> None:
        self.path = path

    def document(self, doc_id: str) -> FakeRef:
        return FakeRef(f"{self.path}/{doc_id}")


class FakeBatch:
    def __init__(self, client: FakeClient) -> None:
        self.client = client
        self.writes: list[tuple[str, dict[str, Any]]] = []

    def set(self, ref: FakeRef, data: dict[str, Any]) -> None:
        self.writes.append((ref.path, data))

    def commit(self, retry: Any = None, timeout: float | None = None) -> list[Any]:
        self.client.commits.append((len(self.writes), timeout))
        self.client.behaviour(self)
        for path, data in self.writes:
            self.client.docs[path] = data
        return []


class FakeClient:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.commits: list[tuple[int, float | None]] = []
        self.behaviour = lambda batch: None

    def collection(self, name: str) -> FakeCol:
        return FakeCol(name)

    def batch(self) -> FakeBatch:
        return FakeBatch(self)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        logs_dir=tmp_path / "logs", cache_dir=tmp_path / "logs" / "cache", firestore_emulator_host="fake:1"
    )


def build(settings: Settings, client: FakeClient, **kw: Any) -> tuple[FirestoreMirror, ArtifactStore]:
    kw.setdefault("cooldown_s", 60.0)
    mirror = FirestoreMirror(settings, client_factory=lambda s: client, **kw)
    return mirror, ArtifactStore(settings.cache_dir, mirror=mirror)


def test_writes_current_and_history_documents(settings: Settings) -> None:
    client = FakeClient()
    mirror, store = build(settings, client)
    env = store.write("pnl", {"x": float("nan"), "m": [[1, 2], [3, 4]]}, source="t")
    text = (settings.cache_dir / "pnl.json").read_text()
    doc = client.docs["artifacts/pnl"]
    assert doc["envelope_json"] == text
    assert jsonio.loads(doc["envelope_json"])["data"]["m"] == [[1, 2], [3, 4]]
    assert doc["generated_at"] == dt.datetime.fromisoformat(env["generated_at"].replace("Z", "+00:00"))
    hid = history_doc_id(env["generated_at"])
    assert client.docs[f"artifacts/pnl/history/{hid}"]["envelope_json"] == text
    assert mirror.outbox.depth() == 0
    assert mirror.breaker.state == "closed"


def test_history_doc_id_is_utc_and_microsecond_exact() -> None:
    assert history_doc_id("2024-03-01T13:00:00.000001+01:00") == "20240301T120000000001Z"
    assert history_doc_id("2024-03-01T12:00:00Z") == "20240301T120000000000Z"


def test_hung_client_cannot_block_the_caller(settings: Settings) -> None:
    client = FakeClient()
    release = threading.Event()
    client.behaviour = lambda batch: release.wait(30)  # ignores every deadline
    mirror, store = build(settings, client, call_budget_s=0.5, failure_threshold=2)
    try:
        durations = []
        for i in range(3):
            t0 = time.monotonic()
            store.write(f"a{i}", {"i": i}, source="t")
            durations.append(time.monotonic() - t0)
        assert max(durations) < 1.0, durations
        assert mirror.breaker.state == "open"
        assert mirror.outbox.depth() == 3
        assert "still running past its deadline" in (mirror.status()["last_error"] or "")
    finally:
        release.set()


def test_retry_error_and_api_errors_count_as_failures(settings: Settings) -> None:
    client = FakeClient()
    errors: list[Exception] = [
        gexc.RetryError("Timeout of 1.4s exceeded", cause=None),
        gexc.ServiceUnavailable("down"),
        gexc.DeadlineExceeded("slow"),
    ]
    assert not isinstance(errors[0], gexc.GoogleAPICallError)  # why both are caught

    def fail(batch: FakeBatch) -> None:
        raise errors[len(client.commits) - 1]

    client.behaviour = fail
    mirror, store = build(settings, client, failure_threshold=3)
    for i in range(4):
        store.write(f"a{i}", {"i": i}, source="t")
    assert len(client.commits) == 3  # the fourth write found the circuit open and was only queued
    assert mirror.breaker.state == "open"
    assert mirror.outbox.depth() == 4
    assert client.docs == {}


def test_outbox_replays_in_order_and_latest_version_wins(settings: Settings) -> None:
    client = FakeClient()
    down = [True]

    def maybe_fail(batch: FakeBatch) -> None:
        if down[0]:
            raise gexc.ServiceUnavailable("down")

    client.behaviour = maybe_fail
    mirror, store = build(settings, client, failure_threshold=1, chunk_size=2)
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for v in range(5):
        store.write("x", {"v": v}, source="t", generated_at=t0 + dt.timedelta(minutes=v))
    assert mirror.outbox.depth() == 5
    down[0] = False
    result = mirror.drain(force=True)
    assert (result.sent, result.remaining, result.error) == (5, 0, None)
    # chunks of 2 entries of the same artifact: one current document (the later one) + 2 history
    assert [n for n, _ in client.commits[-3:]] == [3, 3, 2]
    assert jsonio.loads(client.docs["artifacts/x"]["envelope_json"])["data"] == {"v": 4}
    history = sorted(k for k in client.docs if k.startswith("artifacts/x/history/"))
    assert len(history) == 5
    assert history[0].endswith("20240101T000000000000Z")


def test_invalid_document_goes_to_dead_letters_without_blocking_the_queue(settings: Settings) -> None:
    client = FakeClient()

    def reject_bad(batch: FakeBatch) -> None:
        if any(path.startswith("artifacts/bad") for path, _ in batch.writes):
            raise gexc.InvalidArgument("document is invalid")

    client.behaviour = reject_bad
    mirror, store = build(settings, client)
    # queue three entries while "offline" (breaker forced open), then drain them together
    for _ in range(3):
        mirror.breaker.record_failure()
    for name in ("good1", "bad", "good2"):
        store.write(name, {"n": name}, source="t")
    assert mirror.outbox.depth() == 3
    result = mirror.drain(force=True)
    assert result.dead_lettered == 1
    assert result.remaining == 0
    assert {"artifacts/good1", "artifacts/good2"} <= set(client.docs)
    assert "artifacts/bad" not in client.docs
    assert mirror.breaker.state == "closed"
    assert mirror_status(settings)["dead_letters"] == 1


def test_too_large_envelope_is_skipped_not_queued(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    client = FakeClient()
    mirror, store = build(settings, client)
    with caplog.at_level(logging.ERROR, logger="infra.firestore_mirror"):
        store.write("huge", {"blob": "x" * (MAX_ENVELOPE_BYTES + 10)}, source="t")
    assert (settings.cache_dir / "huge.json").exists()
    assert mirror.outbox.depth() == 0
    assert client.docs == {}
    assert "over the 1000000-byte limit" in caplog.text
    assert mirror.status()["skipped_writes"] == 1


def test_client_that_cannot_be_built_is_a_recorded_failure(settings: Settings) -> None:
    def broken(s: Settings) -> Any:
        raise RuntimeError("no credentials found")

    mirror = FirestoreMirror(settings, client_factory=broken, failure_threshold=2)
    store = ArtifactStore(settings.cache_dir, mirror=mirror)
    for i in range(2):
        store.write(f"a{i}", {"i": i}, source="t")
    assert store.read("a1").ok
    status = mirror_status(settings)
    assert status["breaker_state"] == "open"
    assert status["outbox_depth"] == 2
    assert "no credentials found" in status["last_error"]
    assert status["level"] == "warn"


def test_prod_without_allow_refuses_sends_nothing_queues_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        env="prod",
        allow_prod_write=False,
        logs_dir=tmp_path / "logs",
        cache_dir=tmp_path / "logs" / "cache",
        firestore_project="p",
    )
    client = FakeClient()
    mirror, store = build(settings, client)
    with caplog.at_level(logging.ERROR, logger="infra.firestore_mirror"):
        store.write("thresholds", {"t": 1}, source="t")
    assert store.read("thresholds").ok  # the local write is unaffected
    assert client.commits == []
    assert mirror.outbox.depth() == 0
    assert (
        "Refusing to write artifact 'thresholds' to Firestore: ENV=prod and ALLOW_PROD_WRITE is not set"
        in (caplog.text)
    )
    status = mirror_status(settings)
    assert status["refused_writes"] == 1
    assert status["level"] == "warn"
    assert mirror.drain(force=True).error == "refused: ENV=prod without ALLOW_PROD_WRITE=1"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"call_budget_s": 0}, "'call_budget_s' parameter of FirestoreMirror must be a finite number in"),
        ({"attempt_timeout_s": -1.0}, "'attempt_timeout_s' parameter of FirestoreMirror"),
        ({"chunk_size": 251}, "'chunk_size' parameter of FirestoreMirror must be an int in \\[1, 250\\]"),
    ],
)
def test_parameters_validated(settings: Settings, kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FirestoreMirror(settings, client_factory=lambda s: FakeClient(), **kw)


def test_reconnect_backoff_is_capped_on_emulator_and_production_channels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both of the library's channel factories receive our options (no public API for them)."""
    import grpc
    from google.api_core import grpc_helpers
    from google.auth.credentials import AnonymousCredentials

    from infra.firestore_mirror import CHANNEL_OPTIONS, make_client

    seen: dict[str, Any] = {}
    real_insecure = grpc.insecure_channel

    def fake_insecure(target: str, options: Any = None, **kw: Any) -> Any:
        seen["emulator"] = (target, options)
        return real_insecure(target, options=options, **kw)

    def fake_secure(target: str, **kw: Any) -> Any:
        seen["production"] = (target, kw.get("options"))
        return real_insecure("127.0.0.1:9", options=kw.get("options"))

    monkeypatch.setattr(grpc, "insecure_channel", fake_insecure)
    monkeypatch.setattr(grpc_helpers, "create_channel", fake_secure)
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)

    emu = make_client(Settings(firestore_emulator_host="127.0.0.1:9"))
    emu._firestore_api  # builds the channel lazily
    assert seen["emulator"] == ("127.0.0.1:9", CHANNEL_OPTIONS)

    monkeypatch.setattr("google.auth.default", lambda *a, **k: (AnonymousCredentials(), "proj"))
    prod = make_client(Settings(firestore_project="proj"))
    prod._firestore_api
    assert seen["production"] == ("firestore.googleapis.com", CHANNEL_OPTIONS)
    assert dict(CHANNEL_OPTIONS)["grpc.max_reconnect_backoff_ms"] == 1000
