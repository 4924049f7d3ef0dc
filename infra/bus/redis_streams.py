"""Redis Streams backend of the event bus (``EVENTBUS_URL=redis://host:port/db``).

Why this file is long: it is one backend, every bus operation as a named Redis call with the same
retry and error naming, plus the publish-once script and the loss-free trim.

Thin, named wrappers over the Redis commands; every error names the operation.

Keys
    ``<topic>``                      stream of the topic, field ``event``; trimmed only below what
                                     every consumer group has read and acknowledged (:meth:`RedisBus.trim`)
                                     holding the event as JSON (read back as bytes, decoded
                                     and validated by the consumer loop)
    ``<topic>.dlq``                  its dead-letter stream (same layout; see :class:`~infra.bus.message.DeadLetter`)
    ``bus:evid:<topic>:<event_id>``  publish dedupe marker (TTL ``dedupe_ttl_s``)
    ``bus:once:<key>``               once-keys and processed-markers (TTL ``once_ttl_s``)
    ``bus:state:<namespace>``        consumer state hash
    ``bus:lost:<topic>:<group>``     pending entries found gone from the stream (should stay 0)
    ``bus:seq:<group>:<consumer>``   commit counter of one consumer (rollback detection, see
                                     :mod:`infra.bus.consumer`)

Publishing is a Lua script (check marker, ``XADD``, set marker) so it is atomic: a publish retried
after a lost reply returns the first entry id instead of writing a second copy. ``commit`` is one
``MULTI``/``EXEC`` transaction (``XACK``, the same script for once-publishes and dead letters,
``SET`` markers, ``HSET``/``HDEL`` state): all or nothing, and idempotent, so it is retried safely.

Timeouts and reconnects
    Every socket operation has ``socket_timeout`` / ``connect_timeout``; redis-py's own retries are
    off. On a connection error or timeout an operation is retried with capped exponential backoff
    with jitter (``backoff_base_s * 2**attempt``, at most ``backoff_cap_s``) until
    ``retry_deadline_s`` has passed, then :class:`~infra.bus.message.BusUnavailableError` is raised,
    so a dead or hung Redis never blocks a caller indefinitely. Blocking reads are clamped below
    the socket timeout.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from infra.bus.base import Bus
from infra.bus.message import (
    BusError,
    BusUnavailableError,
    GroupInfo,
    Message,
    OncePublish,
    dead_letter_once,
    encode_payload,
    event_id_of,
)
from infra.bus.topics import DEFAULT_MAXLEN
from infra.contracts.events import Event
from infra.settings import Settings, load_settings
from infra.validate import check_int, check_real

log = logging.getLogger(__name__)
T = TypeVar("T")

# KEYS[1] stream, KEYS[2] marker; ARGV[1] marker ttl (s), ARGV[2] payload
_PUBLISH_ONCE_LUA = """
local first = redis.call('GET', KEYS[2])
if first then return first end
local id = redis.call('XADD', KEYS[1], '*', 'event', ARGV[2])
redis.call('SET', KEYS[2], id, 'EX', ARGV[1])
return id
"""

_TRANSIENT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class RedisBus(Bus):
    """Event bus over Redis Streams.

    Parameters
    ----------
    url : str
        ``redis://host:port/db`` (also ``rediss://``, ``unix://``).
    maxlen : int
        Length every stream is trimmed towards, default 100,000; never below what a consumer
        group still needs (see :meth:`trim`).
    socket_timeout, connect_timeout : float
        Seconds; a single Redis call never waits longer.
    retry_deadline_s : float
        How long an operation keeps retrying a lost connection before raising.
    backoff_base_s, backoff_cap_s : float
        Reconnect backoff: ``min(cap, base * 2**attempt)`` times a jitter in [0.5, 1].
    dedupe_ttl_s, once_ttl_s : int
        Lifetime of publish-dedupe markers and of once-keys / processed markers, seconds.
    """

    def __init__(
        self,
        url: str,
        *,
        maxlen: int = DEFAULT_MAXLEN,
        socket_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        retry_deadline_s: float = 10.0,
        backoff_base_s: float = 0.05,
        backoff_cap_s: float = 2.0,
        dedupe_ttl_s: int = 86_400,
        once_ttl_s: int = 30 * 86_400,
    ) -> None:
        check_int(maxlen, param="maxlen", func="RedisBus", minimum=1)
        for name, value in (
            ("socket_timeout", socket_timeout),
            ("connect_timeout", connect_timeout),
            ("retry_deadline_s", retry_deadline_s),
            ("backoff_base_s", backoff_base_s),
            ("backoff_cap_s", backoff_cap_s),
        ):
            check_real(value, param=name, func="RedisBus", positive=True)
        self.url = url
        self.maxlen = int(maxlen)
        self.socket_timeout = float(socket_timeout)
        self.retry_deadline_s = float(retry_deadline_s)
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_cap_s = float(backoff_cap_s)
        self.dedupe_ttl_s = int(dedupe_ttl_s)
        self.once_ttl_s = int(once_ttl_s)
        self.client: Any = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=30,
        )
        self.raw: Any = redis.Redis.from_url(  # stream payloads as bytes: bad UTF-8 is a dead letter
            url,
            decode_responses=False,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=30,
        )
        self._publish_script = self.client.register_script(_PUBLISH_ONCE_LUA)
        self._groups: set[tuple[str, str]] = set()
        self._since_trim: dict[str, int] = {}

    @classmethod
    def from_settings(cls, url: str, settings: Settings, **options: Any) -> RedisBus:
        """Build from the ``eventbus_*`` fields of ``settings`` (``EVENTBUS_MAXLEN``,
        ``EVENTBUS_SOCKET_TIMEOUT_S``, ``EVENTBUS_CONNECT_TIMEOUT_S``, ``EVENTBUS_RETRY_DEADLINE_S``,
        ``EVENTBUS_BACKOFF_CAP_S``); ``options`` win."""
        defaults: dict[str, Any] = {
            "maxlen": settings.eventbus_maxlen,
            "socket_timeout": settings.eventbus_socket_timeout_s,
            "connect_timeout": settings.eventbus_connect_timeout_s,
            "retry_deadline_s": settings.eventbus_retry_deadline_s,
            "backoff_cap_s": settings.eventbus_backoff_cap_s,
        }
        defaults.update(options)
        return cls(url, **defaults)

    @classmethod
    def from_env(cls, url: str, *, environ: Mapping[str, str], **options: Any) -> RedisBus:
        """:meth:`from_settings` with settings built from ``environ`` (a test seam)."""
        return cls.from_settings(url, load_settings(environ), **options)

    # -- retry ------------------------------------------------------------------------------
    def _call(self, op: str, fn: Callable[[], T]) -> T:
        start = time.monotonic()
        attempt = 0
        while True:
            try:
                return fn()
            except _TRANSIENT as exc:
                elapsed = time.monotonic() - start
                if elapsed >= self.retry_deadline_s:
                    raise BusUnavailableError(
                        f"{op}: Redis at {self.url} unreachable for {elapsed:.1f}s "
                        f"({attempt + 1} attempts): {exc}"
                    ) from exc
                delay = min(self.backoff_cap_s, self.backoff_base_s * 2**attempt) * (
                    0.5 + random.random() / 2
                )
                delay = min(delay, max(self.retry_deadline_s - elapsed, 0.0) + 0.01)
                if attempt == 0:
                    log.warning("%s: Redis unreachable (%s); retrying with backoff", op, exc)
                attempt += 1
                time.sleep(delay)
            except redis.exceptions.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    self._groups.clear()
                raise BusError(f"{op}: {exc}") from exc

    # -- producing --------------------------------------------------------------------------
    def _evid_key(self, topic: str, event_id: str) -> str:
        return f"bus:evid:{topic}:{event_id}"

    def publish(self, topic: str, event: Event | Mapping[str, Any]) -> str:
        payload = encode_payload(topic, event)
        event_id = event_id_of(event)
        if event_id is None:
            entry_id = str(self._call(f"XADD {topic}", lambda: self._xadd(self.client, topic, payload)))
            self._appended({topic: 1})
            return entry_id
        key = self._evid_key(topic, event_id)
        args: list[Any] = [self.dedupe_ttl_s, payload]
        entry_id = str(
            self._call(f"XADD {topic}", lambda: self._publish_script(keys=[topic, key], args=args))
        )
        self._appended({topic: 1})
        return entry_id

    def _xadd(self, client: Any, topic: str, payload: bytes) -> Any:
        return client.xadd(topic, {"event": payload})

    def publish_many(self, items: Sequence[tuple[str, Event | Mapping[str, Any]]]) -> list[str]:
        prepared = [(topic, encode_payload(topic, event), event_id_of(event)) for topic, event in items]

        def run() -> list[str]:
            pipe = self.client.pipeline(transaction=False)
            for topic, payload, event_id in prepared:
                if event_id is None:
                    self._xadd(pipe, topic, payload)
                else:
                    key = self._evid_key(topic, event_id)
                    self._publish_script(keys=[topic, key], args=[self.dedupe_ttl_s, payload], client=pipe)
            return [str(x) for x in pipe.execute()]

        ids = self._call(f"XADD x{len(prepared)}", run)
        counts: dict[str, int] = {}
        for topic, _, _ in prepared:
            counts[topic] = counts.get(topic, 0) + 1
        self._appended(counts)
        return ids

    def publish_raw(self, topic: str, raw: str | bytes) -> str:
        payload = raw.encode() if isinstance(raw, str) else bytes(raw)
        entry_id = str(self._call(f"XADD {topic}", lambda: self._xadd(self.client, topic, payload)))
        self._appended({topic: 1})
        return entry_id

    # -- bounded streams --------------------------------------------------------------------
    def _appended(self, counts: Mapping[str, int]) -> None:
        """Count appends per stream; trim a stream once every ``maxlen // 10`` (>= 100) of them."""
        every = max(100, self.maxlen // 10)
        for topic, n in counts.items():
            total = self._since_trim.get(topic, 0) + n
            if total >= every:
                total = 0
                try:
                    self.trim(topic)
                except BusError as exc:  # trimming is housekeeping: never fail a publish for it
                    log.warning("trim %s: %s", topic, exc)
            self._since_trim[topic] = total

    def safe_trim_id(self, topic: str) -> str | None:
        """The oldest entry id some consumer group of ``topic`` still needs (``None``: no groups).

        Per group: its oldest pending entry, else the entry after the last one delivered to it.
        Every entry older than the minimum over the groups was delivered to and acknowledged by
        every group, so removing it loses nothing.
        """

        def run() -> str | None:
            try:
                groups = self.client.xinfo_groups(topic)
            except redis.exceptions.ResponseError as exc:
                if "no such key" in str(exc).lower():
                    return None
                raise
            if not groups:
                return None
            need: list[tuple[int, int]] = []
            for g in groups:
                # The group's pending list can empty between XINFO and XPENDING (its consumer acked
                # meanwhile; seen under load at 1,600 trades/s): then "min" is nil and the group
                # needs only what it has not been delivered yet.
                oldest = self.client.xpending(topic, g["name"])["min"] if int(g["pending"]) else None
                if oldest is not None:
                    need.append(_id_tuple(oldest.decode() if isinstance(oldest, bytes) else str(oldest)))
                else:
                    ms, seq = _id_tuple(str(g["last-delivered-id"]))
                    need.append((ms, seq + 1))
            ms, seq = min(need)
            return f"{ms}-{seq}"

        return self._call(f"XINFO GROUPS {topic}", run)

    def trim(self, topic: str) -> int:
        """Trim ``topic`` without losing what a consumer group has not read and acknowledged.

        With consumer groups: ``XTRIM MINID ~`` to :meth:`safe_trim_id`, so a stream whose
        slowest group lags keeps growing past ``maxlen`` (the doctor fails on that, see
        :meth:`stream_health`) instead of dropping entries. Without groups: ``XTRIM MAXLEN ~``.
        Returns the entries removed.
        """
        safe = self.safe_trim_id(topic)
        if safe is None:
            return int(
                self._call(
                    f"XTRIM {topic}", lambda: self.client.xtrim(topic, maxlen=self.maxlen, approximate=True)
                )
            )
        removed = int(
            self._call(f"XTRIM {topic}", lambda: self.client.xtrim(topic, minid=safe, approximate=True))
        )
        length = self.length(topic)
        if length > self.maxlen:
            log.warning(
                "stream %s holds %d entries (cap %d): a consumer group lags; entries are kept, not dropped",
                topic,
                length,
                self.maxlen,
            )
        return removed

    def pending_by_consumer(self, topic: str, group: str) -> dict[str, int]:
        def run() -> dict[str, int]:
            try:
                summary = self.client.xpending(topic, group)
            except redis.exceptions.ResponseError as exc:
                if "NOGROUP" in str(exc) or "no such key" in str(exc).lower():
                    return {}
                raise
            return {str(c["name"]): int(c["pending"]) for c in summary.get("consumers") or []}

        return self._call(f"XPENDING {topic} {group}", run)

    def lost(self, topic: str, group: str) -> int:
        value = self._call("GET lost", lambda: self.client.get(f"bus:lost:{topic}:{group}"))
        return 0 if value is None else int(value)

    def _count_lost(self, topic: str, group: str, n: int) -> None:
        log.error("%s/%s: %d pending entries were gone from the stream (trimmed or deleted)", topic, group, n)
        self._call("INCRBY lost", lambda: self.client.incrby(f"bus:lost:{topic}:{group}", n))

    # -- consumer groups --------------------------------------------------------------------
    def ensure_group(self, topic: str, group: str, *, start: str = "0") -> None:
        if (topic, group) in self._groups:
            return

        def create() -> None:
            try:
                self.client.xgroup_create(topic, group, id=start, mkstream=True)
            except redis.exceptions.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

        self._call(f"XGROUP CREATE {topic} {group}", create)
        self._groups.add((topic, group))

    def _deliveries(self, topic: str, group: str, ids: list[str]) -> dict[str, int]:
        if not ids:
            return {}
        rows = self.client.xpending_range(topic, group, min=ids[0], max=ids[-1], count=len(ids) + 100)
        return {r["message_id"]: int(r["times_delivered"]) for r in rows}

    def _messages(self, topic: str, group: str, rows: list[Any], counts: bool) -> list[Message]:
        decoded = [(_text(entry_id), (fields or {}).get(b"event")) for entry_id, fields in rows]
        delivered = self._deliveries(topic, group, [i for i, _ in decoded]) if counts else {}
        return [Message(topic, i, raw, delivered.get(i, 1)) for i, raw in decoded]

    def read(
        self,
        topics: Sequence[str],
        group: str,
        consumer: str,
        *,
        count: int = 100,
        block_ms: int = 1000,
        pending: bool = False,
    ) -> list[Message]:
        for t in topics:
            self.ensure_group(t, group)
        streams = {t: ("0" if pending else ">") for t in topics}
        block = None if pending else max(1, min(int(block_ms), int(self.socket_timeout * 1000) - 250))

        def run() -> list[Message]:
            try:
                reply = self.raw.xreadgroup(group, consumer, streams, count=count, block=block)
            except redis.exceptions.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._groups.clear()  # stream or group vanished (e.g. a Redis without persistence restarted)
                for t in topics:
                    self.ensure_group(t, group)
                reply = self.raw.xreadgroup(group, consumer, streams, count=count, block=block)
            out: list[Message] = []
            items = reply.items() if isinstance(reply, dict) else (reply or [])
            for stream, rows in items:
                out.extend(self._messages(_text(stream), group, list(rows), counts=pending))
            return out

        return self._call(f"XREADGROUP {group} {','.join(topics)}", run)

    def reclaim(
        self, topic: str, group: str, consumer: str, *, min_idle_ms: int, count: int = 100
    ) -> list[Message]:
        self.ensure_group(topic, group)

        def run() -> tuple[list[Message], int]:
            reply = self.raw.xautoclaim(topic, group, consumer, min_idle_ms, start_id="0-0", count=count)
            rows = [r for r in reply[1] if r is not None]
            deleted = len(reply[2]) if len(reply) > 2 and reply[2] else 0
            return self._messages(topic, group, rows, counts=True), deleted

        got, deleted = self._call(f"XAUTOCLAIM {topic} {group}", run)
        if deleted:
            self._count_lost(topic, group, deleted)
        return got

    def commit(
        self,
        group: str,
        *,
        ack: Sequence[Message] = (),
        dead: Sequence[tuple[Message, str]] = (),
        publish_once: Sequence[OncePublish] = (),
        marks: Sequence[str] = (),
        state_set: Mapping[str, Mapping[str, str]] | None = None,
        state_delete: Mapping[str, Iterable[str]] | None = None,
        seq: str | None = None,
    ) -> int | None:
        acks: dict[str, list[str]] = {}
        for msg in [*ack, *(m for m, _ in dead)]:
            acks.setdefault(msg.topic, []).append(msg.id)
        once = [*publish_once, *(dead_letter_once(m, r, group) for m, r in dead)]
        payloads = [(o.topic, f"bus:once:{o.key}", encode_payload(o.topic, o.event)) for o in once]
        sets = {ns: dict(v) for ns, v in (state_set or {}).items() if v}
        dels = {ns: list(v) for ns, v in (state_delete or {}).items()}
        dels = {ns: v for ns, v in dels.items() if v}
        if not (acks or payloads or marks or sets or dels):
            return None

        def run() -> int | None:
            pipe = self.client.pipeline(transaction=True)
            if seq is not None:
                pipe.incr(f"bus:seq:{seq}")
            for topic, key, payload in payloads:
                self._publish_script(keys=[topic, key], args=[self.once_ttl_s, payload], client=pipe)
            for key in marks:
                pipe.set(f"bus:once:{key}", "1", ex=self.once_ttl_s)
            for ns, values in sets.items():
                pipe.hset(f"bus:state:{ns}", mapping=values)
            for ns, fields in dels.items():
                pipe.hdel(f"bus:state:{ns}", *fields)
            for topic, ids in acks.items():
                pipe.xack(topic, group, *ids)
            replies = pipe.execute()
            return None if seq is None else int(replies[0])

        return self._call(f"COMMIT {group}", run)

    def commit_seq(self, seq: str) -> int:
        value = self._call(f"GET bus:seq:{seq}", lambda: self.client.get(f"bus:seq:{seq}"))
        return 0 if value is None else int(value)

    def seen(self, keys: Sequence[str]) -> list[bool]:
        if not keys:
            return []
        values = self._call("MGET once-keys", lambda: self.client.mget([f"bus:once:{k}" for k in keys]))
        return [v is not None for v in values]

    def state_get(self, namespace: str, fields: Iterable[str]) -> dict[str, str]:
        names = list(fields)
        if not names:
            return {}
        values = self._call(f"HMGET {namespace}", lambda: self.client.hmget(f"bus:state:{namespace}", names))
        return {f: v for f, v in zip(names, values) if v is not None}

    def state_all(self, namespace: str) -> dict[str, str]:
        return dict(self._call(f"HGETALL {namespace}", lambda: self.client.hgetall(f"bus:state:{namespace}")))

    # -- observability ----------------------------------------------------------------------
    def groups(self, topic: str) -> list[GroupInfo]:
        def run() -> list[GroupInfo]:
            try:
                rows = self.client.xinfo_groups(topic)
            except redis.exceptions.ResponseError as exc:
                if "no such key" in str(exc).lower():
                    return []
                raise
            return [
                GroupInfo(
                    topic,
                    str(r["name"]),
                    int(r["consumers"]),
                    int(r["pending"]),
                    None if r.get("lag") is None else int(r["lag"]),
                    str(r["last-delivered-id"]),
                )
                for r in rows
            ]

        return self._call(f"XINFO GROUPS {topic}", run)

    def length(self, topic: str) -> int:
        return int(self._call(f"XLEN {topic}", lambda: self.client.xlen(topic)))

    def entries(self, topic: str, *, count: int | None = None) -> list[Message]:
        rows = self._call(f"XRANGE {topic}", lambda: self.raw.xrange(topic, "-", "+", count=count))
        return [Message(topic, _text(entry_id), (fields or {}).get(b"event"), 0) for entry_id, fields in rows]

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except (*_TRANSIENT, redis.exceptions.ResponseError):
            return False

    def close(self) -> None:
        self.client.close()
        self.raw.close()


def _id_tuple(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
