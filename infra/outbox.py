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
import datetime as dt
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

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
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


class Outbox:
    """FIFO queue of pending artifact writes in a SQLite file.

    Parameters
    ----------
    path
        The SQLite file; its folder is created when missing.
    max_entries
        Bound on the queue length (int >= 1). Appending beyond it drops the *oldest* entries
        (counted by :attr:`dropped`), so a months-long outage cannot fill the disk.
    """

    def __init__(self, path: str | Path, *, max_entries: int = 50_000) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(
                f"The 'max_entries' parameter of Outbox must be an int >= 1. Got {max_entries!r} instead."
            )
        self.path = Path(path)
        self.max_entries = max_entries
        self.dropped = 0
        """Entries dropped by this process because the queue was full."""
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=DELETE")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def append(self, name: str, generated_at: str, envelope_json: str) -> int:
        """Queue one write durably and return its ``seq``."""
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
        with self._tx() as conn:
            conn.executemany("DELETE FROM outbox WHERE seq = ?", params)

    def dead_letter(self, entry: OutboxEntry, reason: str) -> None:
        """Move ``entry`` to the dead-letter table with ``reason``."""
        with self._tx() as conn:
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
        """Entries waiting."""
        with self._lock:
            (n,) = self._conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(n)

    def dead_letter_count(self) -> int:
        """Entries moved to the dead-letter table."""
        with self._lock:
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
    return int(pending), int(dead)
