"""Mirror artifacts to Firestore without ever letting Firestore stall or break the caller.

Why this file is long: the per-call budget, the circuit breaker, the outbox replay and the history
pruning are one guarantee (Firestore never stalls or breaks the caller) and are only understandable
together.

:func:`make_mirror` is called by :func:`infra.store.open_store` when Firestore is configured
(``FIRESTORE_EMULATOR_HOST`` or ``FIRESTORE_PROJECT``). After each local atomic write the store
calls :meth:`FirestoreMirror.mirror`, which:

1. refuses (logs an error, sends nothing, queues nothing) when ``ENV=prod`` without
   ``ALLOW_PROD_WRITE=1`` (:func:`infra.safety.require_prod_write`);
2. appends the envelope to the durable :class:`~infra.outbox.Outbox` (so a crash or an outage
   never loses it);
3. if the :class:`~infra.circuit_breaker.CircuitBreaker` allows a call, replays the outbox oldest
   first, in write batches, within a total budget of ``call_budget_s`` (default 1.5 s), deleting
   each entry once Firestore acknowledged it. While the breaker is open nothing is sent.

Documents (all ids deterministic, so a replay of an applied write changes nothing):

- ``<collection>/<name>``: the latest envelope of artifact ``name``;
- ``<collection>/<name>/history/<YYYYmmddTHHMMSSffffffZ>``: one per ``generated_at``.

Each document holds the envelope as the exact JSON text of the local file
(``envelope_json``, written by :func:`infra.jsonio.dumps`: strict JSON with tagged non-finite
floats), plus ``name``, ``generated_at`` (a Firestore timestamp), ``env``, ``source``,
``schema_version`` and ``sha256`` for queries. A JSON string rather than native maps because
Firestore cannot hold arrays of arrays, limits nesting to 20 levels, and would change ints into
doubles and dict key order: the string keeps the content byte-identical to the local file.

Bounded waiting (measured against the emulator, see ``docs/firestore.md``): the library defaults
block a write 47 s and a read up to 300 s, so every RPC here gets an explicit timeout and a
bounded :class:`google.api_core.retry.Retry`; gRPC's reconnect backoff is capped at 1 s (otherwise
the client stays unusable up to 16 s after an outage); and every call runs on a worker thread the
caller waits for with a hard deadline, so even a client that ignored its deadline could not block
the caller. ``RetryError`` is not a ``GoogleAPICallError``: both, plus timeouts and any other
exception, count as failures for the breaker.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc

from infra import jsonio
from infra.artifacts import atomic_write_text
from infra.circuit_breaker import CircuitBreaker
from infra.firestore_status import outbox_path, status_path, target_of
from infra.outbox import Outbox, OutboxEntry
from infra.safety import ProductionWriteRefused, require_prod_write
from infra.settings import Settings
from infra.timeutil import parse_utc, utc_iso, utcnow
from infra.validate import check_int, check_real

if TYPE_CHECKING:
    from infra.artifacts import ArtifactStore

log = logging.getLogger(__name__)

HISTORY_SUBCOLLECTION = "history"
MAX_ENVELOPE_BYTES = 1_000_000
"""Firestore's document limit is 1 MiB including field names; larger envelopes are not mirrored."""
MAX_BATCH_BYTES = 8_000_000
"""A commit request is limited to 10 MiB; each entry is written twice (current + history)."""
DEFAULT_EMULATOR_PROJECT = "demo-quant-platform"

CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    # cap gRPC's exponential reconnect backoff (default grows to 120 s; measured 16 s unusable)
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # the library's own defaults for its channels
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
]


def history_doc_id(generated_at: str) -> str:
    """Deterministic id of the history document for an envelope generated at ``generated_at``.

    >>> history_doc_id("2024-03-01T12:00:00.5Z")
    '20240301T120000500000Z'
    """
    return parse_utc(generated_at).strftime("%Y%m%dT%H%M%S%fZ")


# ---------------------------------------------------------------------- the client
def make_client(settings: Settings) -> Any:
    """A ``google.cloud.firestore.Client`` with capped reconnect backoff, for ``settings``.

    The settings are authoritative: ``firestore_emulator_host`` selects the emulator (anonymous
    credentials) even when the ``FIRESTORE_EMULATOR_HOST`` variable is not set in this process.
    """
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    class BoundedClient(firestore.Client):
        """Firestore client whose gRPC channels carry :data:`CHANNEL_OPTIONS`.

        google-cloud-firestore has no public way to pass channel options (googleapis/
        google-cloud-python#16455); these two overrides of its channel factories are the seam.
        """

        def _emulator_channel(self, transport: Any) -> Any:
            import grpc

            return grpc.insecure_channel(self._emulator_host, options=CHANNEL_OPTIONS)

        def _firestore_api_helper(self, transport: Any, client_class: Any, client_module: Any) -> Any:
            class CappedTransport(transport):
                @classmethod
                def create_channel(cls, *args: Any, **kwargs: Any) -> Any:
                    kwargs["options"] = CHANNEL_OPTIONS
                    return super().create_channel(*args, **kwargs)

            return super()._firestore_api_helper(CappedTransport, client_class, client_module)

    host = settings.firestore_emulator_host
    if host:
        client = BoundedClient(
            project=settings.firestore_project or DEFAULT_EMULATOR_PROJECT,
            credentials=AnonymousCredentials(),
        )
    else:
        credentials = None
        if settings.firestore_credentials:
            from google.oauth2 import service_account

            credentials = service_account.Credentials.from_service_account_file(
                settings.firestore_credentials
            )
        client = BoundedClient(project=settings.firestore_project, credentials=credentials)
    client._emulator_host = host  # settings win over this process's environment
    return client


# ---------------------------------------------------------------------- worker with a hard deadline
class _Worker:
    """One daemon thread running Firestore calls; callers wait on a future with a deadline.

    A daemon thread (not a ``ThreadPoolExecutor``, whose threads are joined at exit) so that a
    call stuck past its deadline can neither block the caller nor the interpreter's shutdown.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="firestore-mirror", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        fut: Future[Any] = Future()
        self._jobs.put((fn, fut))
        return fut

    def _run(self) -> None:
        while True:
            fn, fut = self._jobs.get()
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as exc:
                    fut.set_exception(exc)


# ---------------------------------------------------------------------- the mirror
@dataclass(frozen=True)
class DrainResult:
    """Outcome of one replay of the outbox."""

    sent: int
    """Outbox entries Firestore acknowledged during this call."""
    remaining: int
    """Entries still queued."""
    dead_lettered: int
    breaker_state: str
    error: str | None = None


class FirestoreMirror:
    """Mirror artifact envelopes to Firestore through an outbox and a circuit breaker.

    Parameters
    ----------
    settings
        Collection, target, environment and ``logs_dir`` (status file and outbox live in
        ``<logs_dir>/firestore/``).
    call_budget_s
        Longest a :meth:`mirror` call waits for Firestore, in seconds (> 0, default 1.5).
    attempt_timeout_s
        gRPC deadline of one commit attempt, in seconds (> 0, default 1.0); retries of transient
        errors continue with backoff until the budget is spent.
    failure_threshold, cooldown_s
        Circuit-breaker parameters (consecutive failures that open it; seconds before a trial).
    chunk_size
        Outbox entries per commit (1..250; each entry is two document writes, Firestore allows
        500 per commit).
    client_factory
        Builds the Firestore client (default :func:`make_client`); called lazily on the worker
        thread, so a configuration error becomes a recorded failure, not an exception here.
    clock, monotonic
        Wall clock for status timestamps and a monotonic clock for budgets and the breaker.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        call_budget_s: float = 1.5,
        attempt_timeout_s: float = 1.0,
        failure_threshold: int = 3,
        cooldown_s: float = 15.0,
        chunk_size: int = 100,
        client_factory: Callable[[Settings], Any] = make_client,
        clock: Callable[[], dt.datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        for pname, value in (("call_budget_s", call_budget_s), ("attempt_timeout_s", attempt_timeout_s)):
            check_real(
                value, param=pname, func="FirestoreMirror", positive=True, maximum=3600, exclusive_max=True
            )
        check_int(chunk_size, param="chunk_size", func="FirestoreMirror", minimum=1, maximum=250)
        self.settings = settings
        self.collection = settings.firestore_collection
        self.call_budget_s = float(call_budget_s)
        self.attempt_timeout_s = float(attempt_timeout_s)
        self.chunk_size = chunk_size
        self.breaker = CircuitBreaker(
            failure_threshold=failure_threshold, cooldown_s=cooldown_s, clock=monotonic
        )
        self.outbox = Outbox(outbox_path(settings))
        self.client_factory = client_factory
        self.clock = clock
        self.monotonic = monotonic
        self._client: Any = None
        self._worker = _Worker()
        # import the client library and build the client in the background, off the caller's clock
        self._pending: Future[Any] | None = self._worker.submit(self._ensure_client)
        self._lock = threading.RLock()
        self._isolate = False  # after an InvalidArgument: send one entry per commit to find it
        self._state: dict[str, Any] = {
            "last_success_at": None,
            "last_failure_at": None,
            "last_error": None,
            "refused_writes": 0,
            "last_refusal": None,
            "skipped_writes": 0,
        }
        self._previous_status()

    # ------------------------------------------------------------------ public API
    def mirror(self, name: str, envelope: dict[str, Any]) -> None:
        """Queue ``envelope`` and try to deliver the outbox; returns within about ``call_budget_s``.

        Never raises: every problem is logged and recorded in the status file.
        """
        try:
            self._mirror(name, envelope)
        except Exception as exc:  # the artifact store must never fail because of the mirror
            log.exception("firestore mirror: unexpected error for %s; the local artifact is safe", name)
            self._note_failure(f"{type(exc).__name__}: {exc}")
            self._write_status_safely()

    def drain(self, *, budget_s: float | None = None, force: bool = False) -> DrainResult:
        """Replay the outbox oldest first until empty, a failure, or ``budget_s`` seconds pass.

        Parameters
        ----------
        budget_s
            Total time allowed (default: ``call_budget_s``).
        force
            Try even while the breaker is open (an operator's explicit retry).
        """
        budget = self.call_budget_s if budget_s is None else float(budget_s)
        with self._lock:
            if not self._prod_allowed(what="the Firestore outbox"):
                return self._result(0, 0, "refused: ENV=prod without ALLOW_PROD_WRITE=1")
            if force and self.breaker.state == "open":
                self.breaker.reset()
            if not self.breaker.allow():
                self._write_status_safely()
                return self._result(0, 0, f"circuit {self.breaker.state}")
            sent, dead, error = self._drain_locked(self.monotonic() + budget)
            return self._result(sent, dead, error)

    def resync(self, store: ArtifactStore, *, budget_s: float = 30.0) -> DrainResult:
        """Queue the current envelope of every local artifact and drain (e.g. for a new database)."""
        with self._lock:
            for name in store.names():
                result = store.read(name)
                if result.envelope is not None and self._prod_allowed(what=f"artifact {name!r}"):
                    self._enqueue(name, result.envelope)
        return self.drain(budget_s=budget_s, force=True)

    def status(self) -> dict[str, Any]:
        """The state written to the status file (see :func:`infra.firestore_status.mirror_status`)."""
        snap = self.breaker.snapshot()
        return {
            "enabled": True,
            "target": target_of(self.settings),
            "collection": self.collection,
            "env": self.settings.env,
            "breaker_state": snap.state,
            "consecutive_failures": snap.consecutive_failures,
            "failure_threshold": snap.failure_threshold,
            "cooldown_s": snap.cooldown_s,
            "seconds_until_half_open": snap.seconds_until_half_open,
            "outbox_depth": self.outbox.depth(),
            "outbox_dropped": self.outbox.dropped,
            "dead_letters": self.outbox.dead_letter_count(),
            **self._state,
            "updated_at": self._now_iso(),
        }

    # ------------------------------------------------------------------ internals
    def _mirror(self, name: str, envelope: dict[str, Any]) -> None:
        with self._lock:
            if not self._prod_allowed(what=f"artifact {name!r} to Firestore"):
                self._write_status_safely()
                return
            if not self._enqueue(name, envelope):
                self._write_status_safely()
                return
            if self.breaker.allow():
                self._drain_locked(self.monotonic() + self.call_budget_s)
            else:
                log.info(
                    "firestore mirror: circuit %s, %s queued (outbox depth %d)",
                    self.breaker.state,
                    name,
                    self.outbox.depth(),
                )
                self._write_status_safely()

    def _prod_allowed(self, *, what: str) -> bool:
        try:
            require_prod_write(self.settings, what)
        except ProductionWriteRefused as exc:
            log.error("firestore mirror: %s Not sent and not queued.", exc)
            self._state["refused_writes"] += 1
            self._state["last_refusal"] = str(exc)
            return False
        return True

    def _enqueue(self, name: str, envelope: dict[str, Any]) -> bool:
        text = jsonio.dumps(envelope)  # byte-identical to the local file the store wrote
        size = len(text.encode("utf-8"))
        if size > MAX_ENVELOPE_BYTES:
            msg = (
                f"artifact {name!r} is {size} bytes as JSON, over the {MAX_ENVELOPE_BYTES}-byte limit of "
                "a Firestore document; it is kept locally and not mirrored"
            )
            log.error("firestore mirror: %s", msg)
            self._state["skipped_writes"] += 1
            self._state["last_error"] = msg
            return False
        self.outbox.append(name, str(envelope["generated_at"]), text)
        return True

    def _next_chunk(self) -> list[OutboxEntry]:
        entries = self.outbox.peek(1 if self._isolate else self.chunk_size)
        chunk: list[OutboxEntry] = []
        total = 0
        for e in entries:
            total += 2 * len(e.envelope_json)
            if chunk and total > MAX_BATCH_BYTES:
                break
            chunk.append(e)
        return chunk

    def _drain_locked(self, deadline: float) -> tuple[int, int, str | None]:
        """Send chunks until the outbox is empty, a call fails or the deadline passes.

        The breaker must have allowed the first call. Returns ``(sent, dead_lettered, error)``.
        """
        sent = dead = 0
        error: str | None = None
        calls = 0
        try:
            while True:
                chunk = self._next_chunk()
                if not chunk:
                    break
                remaining = deadline - self.monotonic()
                if remaining < 0.05:
                    break
                if self._pending is not None and not self._pending.done():
                    # client warm-up, or a call that outlived its deadline: wait within our budget
                    with contextlib.suppress(Exception):
                        self._pending.result(timeout=remaining)
                    if not self._pending.done():
                        error = "a previous Firestore call is still running past its deadline"
                        self._fail(error)
                        break
                    remaining = deadline - self.monotonic()
                    if remaining < 0.05:
                        break
                calls += 1
                fut = self._worker.submit(functools.partial(self._commit, chunk, remaining))
                self._pending = fut
                try:
                    fut.result(timeout=remaining)
                except FutureTimeout:
                    error = f"Firestore call exceeded the {remaining:.2f} s deadline (server hung?)"
                    self._fail(error)
                    break
                except gexc.InvalidArgument as exc:
                    self.breaker.record_success()  # the service answered; the data is the problem
                    if len(chunk) == 1:
                        reason = f"InvalidArgument: {exc.message}"
                        self.outbox.dead_letter(chunk[0], reason)
                        log.error(
                            "firestore mirror: %s rejected (%s); moved to dead letters", chunk[0].name, reason
                        )
                        self._state["last_error"] = reason
                        self._isolate = False
                        dead += 1
                    else:
                        self._isolate = True
                    continue
                except Exception as exc:  # GoogleAPICallError, RetryError, auth errors, ...
                    error = f"{type(exc).__name__}: {exc}"
                    self._fail(error)
                    break
                self.outbox.remove(e.seq for e in chunk)
                sent += len(chunk)
                self.breaker.record_success()
                self._state["last_success_at"] = self._now_iso()
                if not self.breaker.allow():
                    break
        finally:
            if calls == 0:
                self.breaker.cancel_trial()  # a half-open trial that was granted but not used
            self._write_status_safely()
        return sent, dead, error

    def _commit(self, entries: list[OutboxEntry], budget_s: float) -> None:
        """Write ``entries`` (current + history documents) in one batch; runs on the worker thread."""
        from google.api_core import retry as gretry

        start = time.monotonic()
        client = self._ensure_client()
        col = client.collection(self.collection)
        latest: dict[str, OutboxEntry] = {}
        history: dict[tuple[str, str], OutboxEntry] = {}
        for e in entries:  # a later write of the same document supersedes an earlier one
            latest[e.name] = e
            history[(e.name, history_doc_id(e.generated_at))] = e
        batch = client.batch()
        for name, e in latest.items():
            batch.set(col.document(name), _document(e))
        for (name, hid), e in history.items():
            batch.set(col.document(name).collection(HISTORY_SUBCOLLECTION).document(hid), _document(e))
        left = max(0.05, budget_s - (time.monotonic() - start) - 0.05)
        retry = gretry.Retry(
            initial=0.05, maximum=0.25, multiplier=2.0, timeout=left, predicate=gretry.if_transient_error
        )
        batch.commit(retry=retry, timeout=min(self.attempt_timeout_s, left))

    def _ensure_client(self) -> Any:
        """Build the client once (imports google-cloud-firestore: about a second); worker thread only."""
        if self._client is None:
            self._client = self.client_factory(self.settings)
        return self._client

    def _fail(self, error: str) -> None:
        before = self.breaker.state
        self.breaker.record_failure()
        self._note_failure(error)
        after = self.breaker.state
        if after != before and after == "open":
            log.warning(
                "firestore mirror: circuit OPEN after %d consecutive failures (%s); writes go to the "
                "outbox (%d queued) and are retried after %.0f s",
                self.breaker.consecutive_failures,
                error,
                self.outbox.depth(),
                self.breaker.cooldown_s,
            )
        else:
            log.warning("firestore mirror: write failed (%s); queued in the outbox", error)

    def _note_failure(self, error: str) -> None:
        self._state["last_failure_at"] = self._now_iso()
        self._state["last_error"] = error[:500]

    def _result(self, sent: int, dead: int, error: str | None) -> DrainResult:
        return DrainResult(
            sent=sent,
            remaining=self.outbox.depth(),
            dead_lettered=dead,
            breaker_state=self.breaker.state,
            error=error,
        )

    def _now_iso(self) -> str:
        return utc_iso(self.clock())

    def _previous_status(self) -> None:
        """Carry last success/failure over from the status file of an earlier process."""
        try:
            old = jsonio.loads(status_path(self.settings).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(old, dict):
            for key in ("last_success_at", "last_failure_at", "last_error"):
                if isinstance(old.get(key), str):
                    self._state[key] = old[key]

    def _write_status_safely(self) -> None:
        try:
            atomic_write_text(status_path(self.settings), jsonio.dumps(self.status(), indent=2))
        except Exception:
            log.exception("firestore mirror: cannot write %s", status_path(self.settings))


def _document(e: OutboxEntry) -> dict[str, Any]:
    envelope = jsonio.loads(e.envelope_json)
    return {
        "name": e.name,
        "generated_at": parse_utc(e.generated_at),
        "generated_at_iso": e.generated_at,
        "env": envelope.get("env"),
        "source": envelope.get("source"),
        "schema_version": envelope.get("schema_version"),
        "sha256": hashlib.sha256(e.envelope_json.encode("utf-8")).hexdigest(),
        "envelope_json": e.envelope_json,
    }


def make_mirror(settings: Settings, **kwargs: Any) -> FirestoreMirror:
    """The mirror :func:`infra.store.open_store` attaches when Firestore is configured.

    Never connects here (the client is built lazily on first use), so a misconfiguration shows up
    as a recorded failure in the status file instead of an exception in every job.
    """
    return FirestoreMirror(settings, **kwargs)
