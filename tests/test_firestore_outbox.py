"""The durable outbox: FIFO order, durability across reopen, bound, dead letters, read-only counts."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.outbox import Outbox, count_readonly


def test_fifo_order_and_remove(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    seqs = [box.append(f"a{i}", f"2024-01-01T00:00:0{i}Z", f'{{"i": {i}}}') for i in range(5)]
    assert seqs == sorted(seqs)
    assert [e.name for e in box.peek(3)] == ["a0", "a1", "a2"]
    box.remove([seqs[0], seqs[2]])
    assert [e.name for e in box.peek(10)] == ["a1", "a3", "a4"]
    assert box.depth() == 3
    box.remove([])  # no-op
    box.remove([999])  # unknown seq ignored
    assert box.depth() == 3


def test_entries_survive_reopen_and_seq_is_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = Outbox(path)
    s1 = box.append("x", "2024-01-01T00:00:00Z", '{"v": 1}')
    s2 = box.append("x", "2024-01-01T00:00:01Z", '{"v": 2}')
    box.remove([s2])
    box.close()
    again = Outbox(path)
    entries = again.peek(10)
    assert [(e.seq, e.envelope_json) for e in entries] == [(s1, '{"v": 1}')]
    assert again.append("y", "2024-01-01T00:00:02Z", "{}") > s2


def _append_many(path: str, prefix: str, n: int) -> None:
    box = Outbox(path)
    for i in range(n):
        box.append(f"{prefix}{i}", "2024-01-01T00:00:00Z", "{}")
    box.close()


def test_two_processes_append_without_loss(tmp_path: Path) -> None:
    path = str(tmp_path / "o.sqlite3")
    Outbox(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(path, p, 40)) for p in ("p", "q")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    entries = Outbox(path).peek(1000)
    assert len(entries) == 80
    for prefix in ("p", "q"):  # each writer's entries keep their order
        mine = [e.name for e in entries if e.name.startswith(prefix)]
        assert mine == [f"{prefix}{i}" for i in range(40)]


def test_bound_drops_oldest(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", max_entries=3)
    for i in range(5):
        box.append(f"a{i}", "2024-01-01T00:00:00Z", "{}")
    assert [e.name for e in box.peek(10)] == ["a2", "a3", "a4"]
    assert box.dropped == 2


def test_dead_letter_moves_entry(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = Outbox(path)
    box.append("good", "2024-01-01T00:00:00Z", "{}")
    box.append("bad", "2024-01-01T00:00:00Z", "{}")
    bad = box.peek(10)[1]
    box.dead_letter(bad, "InvalidArgument: too deep")
    assert [e.name for e in box.peek(10)] == ["good"]
    assert box.dead_letter_count() == 1
    assert count_readonly(path) == (1, 1)


def test_count_readonly_missing_or_garbage(tmp_path: Path) -> None:
    assert count_readonly(tmp_path / "absent.sqlite3") is None
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    assert count_readonly(junk) is None


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_max_entries_validated(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ValueError, match=r"'max_entries' parameter of Outbox must be an int >= 1"):
        Outbox(tmp_path / "o.sqlite3", max_entries=bad)  # type: ignore[arg-type]


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that takes SQLite's exclusive lock on ``path`` and sits on it."""
    code = (
        "import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n"
        "c.execute('COMMIT')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_locked_file_does_not_block_and_loses_nothing(tmp_path: Path) -> None:
    """Issue 22 item 9: another process holding the lock blocked a write for 10 s and the artifact
    was never queued. Now the append returns within about ``busy_timeout_s`` and the entry joins
    the queue, in order, once the lock is released."""
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(path, busy_timeout_s=0.5)
    assert box.append("a", "2024-01-01T00:00:00Z", '{"n": 1}') == 1
    holder = _hold_lock(path, 3.0)
    try:
        t0 = time.monotonic()
        assert box.append("b", "2024-01-01T00:00:01Z", '{"n": 2}') is None
        assert box.append("c", "2024-01-01T00:00:02Z", '{"n": 3}') is None
        assert time.monotonic() - t0 < 2.0
        assert box.spooled == 2
    finally:
        holder.wait(timeout=10)
    assert box.depth() == 3
    assert [(e.name, e.envelope_json) for e in box.peek(10)] == [
        ("a", '{"n": 1}'),
        ("b", '{"n": 2}'),
        ("c", '{"n": 3}'),
    ]
    assert box._spool_files() == []
    # a fresh process sees the same queue
    box.close()
    assert [e.name for e in Outbox(path).peek(10)] == ["a", "b", "c"]


def test_outbox_opened_while_locked(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    Outbox(path).close()
    holder = _hold_lock(path, 2.0)
    try:
        t0 = time.monotonic()
        box = Outbox(path, busy_timeout_s=0.3)
        assert box.append("x", "2024-01-01T00:00:00Z", "{}") is None
        assert time.monotonic() - t0 < 2.0
    finally:
        holder.wait(timeout=10)
    assert [e.name for e in box.peek(5)] == ["x"]
