"""The demo's step runner and its progress reporting (issue 23 item 13)."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import types
from pathlib import Path

import pytest

from scripts import pipeline
from tests.conftest import ROOT


def test_on_done_is_called_once_per_step_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's bar advances after every step (it sat at 2/10 through all of them)."""
    mod = types.ModuleType("fake_steps_mod")
    seen: list[str] = []
    mod.ok = lambda ctx: seen.append("ok") or "fine"  # type: ignore[attr-defined]

    def boom(ctx: object) -> str:
        seen.append("boom")
        raise RuntimeError("bad")

    mod.boom = boom  # type: ignore[attr-defined]
    monkeypatch.setattr(
        pipeline,
        "STEPS",
        [("a", mod.ok), ("b", mod.boom), ("c", mod.boom), ("d", mod.ok)],  # type: ignore[attr-defined]
    )
    events: list[str] = []
    results = pipeline.run_steps(
        None,  # type: ignore[arg-type]
        on_step=lambda name: events.append(f"start {name}"),
        on_done=lambda r: events.append(f"done {r.name} {r.status} {seen[-1] if seen else ''}"),
    )
    assert [r.status for r in results] == ["ok", "failed", "failed", "ok"]
    # each step's "done" comes right after its own start, before the next step starts
    assert events == [
        "start a", "done a ok ok", "start b", "done b failed boom", "start c", "done c failed boom",
        "start d", "done d ok ok",
    ]  # fmt: skip


def _demo_stderr(logs: Path, *, terminal: bool) -> str:
    env = {**os.environ, "LOGS_DIR": str(logs), "ENV": "dev", "EVENTBUS_URL": "memory://"}
    for var in ("DATA_DIR", "CACHE_DIR", "RESEARCH_DIR"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "scripts.demo", "--data-only", "--scale", "default"]
    if not terminal:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stderr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a real terminal's size
    proc2 = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc2.wait(timeout=300) == 0
    return b"".join(chunks).decode("utf-8", "replace")


def test_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    """A cron log (stderr not a terminal) gets no bar; a terminal gets one that reaches 2/2."""
    piped = _demo_stderr(tmp_path / "a", terminal=False)
    assert "demo:" not in piped and "\r" not in piped, piped
    tty = _demo_stderr(tmp_path / "b", terminal=True)
    assert "demo:" in tty and "2/2" in tty, tty
