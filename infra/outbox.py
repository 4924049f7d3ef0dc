"""A durable local outbox: artifact writes waiting to be mirrored, replayed oldest first.

The Firestore mirror appends every envelope here *before* it tries to send it and deletes it only
after Firestore acknowledged it (the transactional-outbox pattern). A process that dies between
the two, a Firestore outage or an open circuit breaker therefore never loses a write: the entry
waits in the file and is replayed, in ``seq`` order, by the next successful call or an explicit
``drain()``. Replaying an entry Firestore already applied is harmless because the documents it
writes have deterministic ids (artifact name; name + ``generated_at``).

Storage is one SQLite file (default ``<LOGS_DIR>/firestore/outbox.sqlite3``) in rollback-journal
mode with ``synchronous=FULL``: a committed append survives a crash or power loss, and several
processes may share the file (SQLite's own locking serialises them; a read-only reader such as the
doctor can count the rows). Entries that Firestore rejects as invalid are moved to a
``dead_letters`` table with the reason instead of blocking the queue forever.

A writer never waits long for the file: when another process holds SQLite's lock for longer than
``busy_timeout_s`` (default 1 s), :meth:`Outbox.append` writes the entry atomically to a spool
folder beside the file (``outbox.sqlite3.spool/``) and returns; the next call that gets the lock
moves spooled entries into the queue in the order they were written. Nothing is lost and no
artifact write blocks for more than about a second.

Examples
--------
>>> import tempfile, pathlib
>>> box = Outbox(pathlib.Path(tempfile.mkdtemp()) / "outbox.sqlite3")
>>> box.append("pnl", "2024-01-01T00:00:00Z", '{"name": "pnl"}')
1
>>> [e.name for e in box.peek(10)], box.depth()
(['pnl'], 1)
>>> box.remove([1]); box.depth()
0
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from infra.timeutil import utc_iso, utcnow

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    generated_at TEXT NOT NULL,
    envelope_json TEXT NOT NULL,
    enqueued_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    generated_at TEXT NOT NULL,
    envelope_json TEXT NOT NULL,
    enqueued_at TEXT NOT NULL,
    reason TEXT NOT NULL,
    failed_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class OutboxEntry:
    """One queued artifact write."""

    seq: int
    """Position in the queue (strictly increasing, never reused)."""
    name: str
    generated_at: str
    """The envelope's ``generated_at`` (ISO 8601 UTC); part of the history document id."""
    envelope_json: str
    """The envelope exactly as :func:`infra.jsonio.dumps` wrote it."""
    enqueued_at: str


def _now_iso() -> str:
    return utc_iso(utcnow())


class Outbox:
    """FIFO queue of pending artifact writes in a SQLite file.

    Parameters
    ----------
    path
        The SQLite file; its folder is created when missing.
    max_entries
        Bound on the queue length (int >= 1). Appending beyond it drops the *oldest* entries
        (counted by :attr:`dropped`), so a months-long outage cannot fill the disk. The spool
        folder has the same bound.
    busy_timeout_s
        Longest wait for another process's lock before an append goes to the spool (> 0).
    """

    def __init__(self, path: str | Path, *, max_entries: int = 50_000, busy_timeout_s: float = 1.0) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(
                f"The 'max_entries' parameter of Outbox must be an int >= 1. Got {max_entries!r} instead."
            )
        if not isinstance(busy_timeout_s, (int, float)) or not 0 < busy_timeout_s <= 60:
            raise ValueError(
                "The 'busy_timeout_s' parameter of Outbox must be a number in (0, 60]. "
                f"Got {busy_timeout_s!r} instead."
            )
        self.path = Path(path)
        self.spool_dir = self.path.with_name(self.path.name + ".spool")
        self.max_entries = max_entries
        self.dropped = 0
        """Entries dropped by this process because the queue was full."""
        self.spooled = 0
        """Entries this process wrote to the spool because the file was locked."""
        self._lock = threading.Lock()
        self._spool_seq = 0
        self._ready = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            self.path, timeout=float(busy_timeout_s), isolation_level=None, check_same_thread=False
        )
        with contextlib.suppress(sqlite3.OperationalError):  # locked: retried on first use
            self._ensure_schema()

    def _ensure_schema(self) -> None:
        if self._ready:
            return
        self._conn.execute("PRAGMA journal_mode=DELETE")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        self._ready = True

    # ------------------------------------------------------------------ spool (file locked)
    def _spool(self, name: str, generated_at: str, envelope_json: str) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._spool_seq += 1
        stem = f"{time.time_ns():020d}-{os.getpid()}-{self._spool_seq:06d}"
        record = {
            "name": name,
            "generated_at": generated_at,
            "envelope_json": envelope_json,
            "enqueued_at": _now_iso(),
        }
        tmp = self.spool_dir / f".{stem}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(record))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.spool_dir / f"{stem}.json")
        self.spooled += 1
        files = self._spool_files()
        for old in files[: max(0, len(files) - self.max_entries)]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
                self.dropped += 1

    def _spool_files(self) -> list[Path]:
        if not self.spool_dir.is_dir():
            return []
        return sorted(self.spool_dir.glob("*.json"))

    def _ingest_spool(self, conn: sqlite3.Connection) -> list[Path]:
        """Insert spooled entries (oldest first) inside the caller's transaction; return their files."""
        files = self._spool_files()
        for f in files:
            try:
                rec = json.loads(f.read_text(encoding="utf-8"))
                row = (
                    str(rec["name"]),
                    str(rec["generated_at"]),
                    str(rec["envelope_json"]),
                    str(rec["enqueued_at"]),
                )
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a torn or foreign file: left for an operator, never blocks the queue
            conn.execute(
                "INSERT INTO outbox (name, generated_at, envelope_json, enqueued_at) VALUES (?, ?, ?, ?)", row
            )
        return files

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (call with ``self._lock`` held); spooled entries join it first."""
        self._ensure_schema()
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            ingested = self._ingest_spool(self._conn)
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        for f in ingested:  # after the commit: a crash in between replays them (idempotent ids)
            with contextlib.suppress(FileNotFoundError):
                f.unlink()

    def append(self, name: str, generated_at: str, envelope_json: str) -> int | None:
        """Queue one write durably and return its ``seq``.

        Returns ``None`` when another process held the file for longer than ``busy_timeout_s``:
        the entry is then in the spool and joins the queue on the next call that gets the lock.
        """
        with self._lock:
            try:
                return self._append_locked(name, generated_at, envelope_json)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                self._spool(name, generated_at, envelope_json)
                return None

    def _append_locked(self, name: str, generated_at: str, envelope_json: str) -> int:
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO outbox (name, generated_at, envelope_json, enqueued_at) VALUES (?, ?, ?, ?)",
                (name, generated_at, envelope_json, _now_iso()),
            )
            seq = int(cur.lastrowid or 0)
            (depth,) = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
            excess = int(depth) - self.max_entries
            if excess > 0:
                conn.execute(
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (excess,)
                )
                self.dropped += excess
        return seq

    def peek(self, limit: int) -> list[OutboxEntry]:
        """The ``limit`` oldest entries, oldest first, without removing them."""
        with self._lock:
            if self._spool_files():
                with contextlib.suppress(sqlite3.OperationalError), self._tx():
                    pass  # moves the spool into the queue (still locked: next time)
            self._ensure_schema()
            rows = self._conn.execute(
                "SELECT seq, name, generated_at, envelope_json, enqueued_at FROM outbox ORDER BY seq LIMIT ?",
                (int(limit),),
            ).fetchall()
        return [OutboxEntry(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows]

    def remove(self, seqs: Iterable[int]) -> None:
        """Delete entries once Firestore acknowledged them (unknown ``seq`` values are ignored)."""
        params = [(int(s),) for s in seqs]
        if not params:
            return
        with self._lock, self._tx() as conn:
            conn.executemany("DELETE FROM outbox WHERE seq = ?", params)

    def dead_letter(self, entry: OutboxEntry, reason: str) -> None:
        """Move ``entry`` to the dead-letter table with ``reason``."""
        with self._lock, self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO dead_letters VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.seq,
                    entry.name,
                    entry.generated_at,
                    entry.envelope_json,
                    entry.enqueued_at,
                    reason,
                    _now_iso(),
                ),
            )
            conn.execute("DELETE FROM outbox WHERE seq = ?", (entry.seq,))

    def depth(self) -> int:
        """Entries waiting (queued plus spooled)."""
        with self._lock:
            self._ensure_schema()
            (n,) = self._conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(n) + len(self._spool_files())

    def dead_letter_count(self) -> int:
        """Entries moved to the dead-letter table."""
        with self._lock:
            self._ensure_schema()
            (n,) = self._conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def count_readonly(path: str | Path) -> tuple[int, int] | None:
    """``(pending, dead_letters)`` of an outbox file opened read-only; ``None`` if absent/unreadable.

    Used by status readers (doctor, dashboard) that must never create or lock the file for long.
    """
    p = Path(path)
    if not p.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=0.5)
        try:
            (pending,) = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
            (dead,) = conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    spool = p.with_name(p.name + ".spool")
    spooled = len(list(spool.glob("*.json"))) if spool.is_dir() else 0
    return int(pending) + spooled, int(dead)
