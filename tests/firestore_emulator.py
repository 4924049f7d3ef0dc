"""Start and stop the Node Firestore emulator (``@firestore-emulator/server``) for integration tests.

The package is installed by ``scripts/install_firestore_emulator.sh`` into
``.tools/firestore-emulator``; ``scripts/firestore_emulator_launcher.js`` binds it to 127.0.0.1
(its own ``start()`` binds 0.0.0.0) and prints the port the OS chose. Tests skip when Node or the
package is missing, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PREFIX = ROOT / ".tools" / "firestore-emulator"
LAUNCHER = ROOT / "scripts" / "firestore_emulator_launcher.js"
PACKAGE = PREFIX / "node_modules" / "@firestore-emulator" / "server" / "package.json"
READY = "FIRESTORE_EMULATOR_READY"


def require_emulator() -> str:
    """Path of ``node``; skip (fail under ``CI=true``) when Node or the package is missing."""
    node = shutil.which("node")
    missing = None
    if node is None:
        missing = "node is not on PATH"
    elif not PACKAGE.is_file():
        missing = f"{PACKAGE} is missing; run scripts/install_firestore_emulator.sh"
    if missing is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Firestore emulator unavailable under CI=true: {missing}")
        pytest.skip(f"Firestore emulator unavailable: {missing}")
    assert node is not None
    return node


class FirestoreEmulator:
    """One emulator process on 127.0.0.1, stopped, paused and restarted by PID.

    ``restart()`` reuses the same port so clients reconnect to the same address (the data of an
    in-memory emulator is lost on restart, like a fresh database).
    """

    def __init__(self, node: str) -> None:
        self.node = node
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> FirestoreEmulator:
        proc = subprocess.Popen(
            [self.node, str(LAUNCHER), str(PREFIX), str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []

        def read() -> None:
            assert proc.stdout is not None
            lines.append(proc.stdout.readline())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout_s)
        line = lines[0] if lines else ""
        if not line.startswith(READY):
            proc.kill()
            err = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"Firestore emulator did not start within {timeout_s} s: {line!r} {err}")
        self.port = int(line.split()[1].rsplit(":", 1)[1])
        self.proc = proc
        return self

    def stop(self) -> None:
        """Kill the process (SIGKILL via its PID, after SIGCONT in case it is paused)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        self.proc = None
        self._wait_port_closed()

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def _wait_port_closed(self, timeout_s: float = 5.0) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.05)
