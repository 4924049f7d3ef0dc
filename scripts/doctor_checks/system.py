"""Doctor checks of the process: settings sanity, the event bus and the Firestore mirror."""

from __future__ import annotations

import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from infra.bus import TOPICS, dead_letter_topic
from scripts.doctor_checks.base import CheckResult, DoctorContext, fail, ok, register, warn

T = TypeVar("T")

PENDING_WARN = 1_000
"""Pending (delivered, unacknowledged) entries of one group above which the bus check warns."""
LAG_WARN = 10_000
BACKLOG_FAIL = 0.9
"""A group whose backlog (lag + pending) reaches this share of the stream cap fails the check."""
"""Undelivered entries of one group above which the bus check warns."""


def run_with_deadline(fn: Callable[[], T], timeout_s: float) -> T:
    """Run ``fn`` on a daemon thread and wait at most ``timeout_s``.

    Raises
    ------
    TimeoutError
        When ``fn`` has not returned in time (the thread is abandoned; it is a daemon).
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True, name="doctor-probe")
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:.2f} s")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return,unused-ignore]


def _write_probe(folder: Path) -> str | None:
    """Create ``folder`` if needed and a temp file in it; the error text, or None when writable.

    A real write, not ``os.access``: root passes every permission check, and a path below a
    regular file is unwritable whatever the permission bits say.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-probe-"):
            pass
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


@register("settings", order=0)
def check_settings(ctx: DoctorContext) -> CheckResult:
    """ENV, write guard, folders writable, artifact limits."""
    s = ctx.settings
    name = "settings"
    details: dict[str, Any] = {
        "env": s.env,
        "allow_prod_write": s.allow_prod_write,
        "logs_dir": str(s.logs_dir),
        "data_dir": str(s.data_dir),
        "cache_dir": str(s.cache_dir),
        "eventbus_url": repr(s).split("eventbus_url=")[1].split(",")[0].strip("'"),
        "firestore_enabled": s.firestore_enabled,
        "artifact_max_age_s": s.artifact_max_age_s,
        "data_max_age_s": ctx.data_max_age_s,
    }
    for label, d in (("LOGS_DIR", s.logs_dir), ("CACHE_DIR", s.cache_dir)):
        problem = _write_probe(d)
        if problem is not None:
            return fail(
                name,
                f"{label} {d} is not writable ({problem}).",
                f"fix the permissions of {d} or set {label}",
                **details,
            )
    if s.env == "prod" and s.allow_prod_write:
        return warn(
            name,
            "ENV=prod with ALLOW_PROD_WRITE=1: jobs in this shell write production state.",
            "unset ALLOW_PROD_WRITE unless you mean to write production state",
            **details,
        )
    if s.env == "prod" and s.eventbus_url == "memory://":
        return warn(
            name,
            "ENV=prod with EVENTBUS_URL=memory://: events stay inside one process.",
            "set EVENTBUS_URL=redis://host:port/db",
            **details,
        )
    return ok(
        name,
        f"ENV={s.env}, folders writable, artifacts stale after {s.artifact_max_age_s / 3600:.1f} h.",
        **details,
    )


def _bus_report(ctx: DoctorContext) -> dict[str, Any]:
    from infra.bus import connect_bus

    t = ctx.timeout_s
    opts: dict[str, Any] = {"socket_timeout": t, "connect_timeout": t, "retry_deadline_s": min(t, 0.2)}
    try:
        bus = connect_bus(ctx.settings.eventbus_url, settings=ctx.settings, **opts)
    except TypeError:  # a backend without these options
        bus = connect_bus(ctx.settings.eventbus_url, settings=ctx.settings)
    try:
        if not bus.ping():
            return {"reachable": False}
        groups = []
        dead: dict[str, int] = {}
        for topic in TOPICS:
            for g in bus.groups(topic):
                groups.append(
                    {
                        "topic": g.topic,
                        "group": g.name,
                        "consumers": g.consumers,
                        "pending": g.pending,
                        "lag": g.lag,
                        "lost": bus.lost(topic, g.name),
                    }
                )
            n = bus.length(dead_letter_topic(topic))
            if n:
                dead[topic] = n
        return {"reachable": True, "groups": groups, "dead_letters": dead, "cap": bus.maxlen}
    finally:
        bus.close()


@register("event_bus", order=40)
def check_event_bus(ctx: DoctorContext) -> CheckResult:
    """Bus reachable; consumer-group lag and pending counts; dead letters."""
    name = "event_bus"
    url = ctx.settings.eventbus_url
    if url == "memory://":
        return ok(
            name,
            "EVENTBUS_URL=memory://: in-process bus, nothing to reach (no lag or dead letters to read).",
            url=url,
        )
    shown = repr(ctx.settings).split("eventbus_url=")[1].split(",")[0].strip("'")
    fix = f"start Redis at {shown} (e.g. `redis-server --port <port>`) or set EVENTBUS_URL=memory:// for a local run"
    try:
        rep = run_with_deadline(lambda: _bus_report(ctx), ctx.timeout_s)
    except Exception as exc:  # timeouts, connection errors, BusUnavailableError
        return fail(name, f"event bus {shown} unreachable: {type(exc).__name__}: {exc}", fix, url=shown)
    if not rep["reachable"]:
        return fail(name, f"event bus {shown} does not answer PING.", fix, url=shown)
    failures = []
    for g in rep["groups"]:
        backlog = (g["lag"] or 0) + g["pending"]
        if g["lost"]:
            failures.append(
                f"{g['topic']}/{g['group']} lost {g['lost']} entries (gone from the stream while pending)"
            )
        if backlog >= BACKLOG_FAIL * rep["cap"]:
            failures.append(
                f"{g['topic']}/{g['group']} backlog {backlog} is {backlog / rep['cap']:.0%} of the stream cap "
                f"{rep['cap']} (EVENTBUS_MAXLEN): the stream grows past its cap until the group catches up"
            )
    if failures:
        return fail(
            name,
            f"event bus {shown}: " + "; ".join(failures) + ".",
            "start or scale the lagging consumers (entries they have not read are kept, never trimmed); "
            "lost entries need a replay from the producer's log",
            url=shown,
            **{k: v for k, v in rep.items() if k != "reachable"},
        )
    problems = []
    for g in rep["groups"]:
        if g["pending"] > PENDING_WARN:
            problems.append(f"{g['topic']}/{g['group']} has {g['pending']} pending")
        if g["lag"] is not None and g["lag"] > LAG_WARN:
            problems.append(f"{g['topic']}/{g['group']} lags {g['lag']} entries")
    for topic, n in rep["dead_letters"].items():
        problems.append(f"{n} dead letter(s) on {dead_letter_topic(topic)}")
    if problems:
        return warn(
            name,
            f"event bus {shown}: " + "; ".join(problems) + ".",
            "start or scale the lagging consumers; inspect dead letters with XRANGE <topic>.dlq - + COUNT 10",
            url=shown,
            **{k: v for k, v in rep.items() if k != "reachable"},
        )
    return ok(
        name,
        f"event bus {shown} reachable; {len(rep['groups'])} consumer group(s), no backlog, no dead letters.",
        url=shown,
        **rep,
    )


def _tcp_probe(host_port: str, timeout_s: float) -> str | None:
    """``None`` when a TCP connection to ``host:port`` opens within ``timeout_s``, else the error."""
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            return None
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


@register("firestore", order=41)
def check_firestore(ctx: DoctorContext) -> CheckResult:
    """Firestore mirror (when configured): emulator reachable, circuit state, outbox depth."""
    name = "firestore"
    from infra.firestore_status import mirror_status

    st = mirror_status(ctx.settings, now=ctx.now)
    details = {k: v for k, v in st.items() if k != "message"}
    if not ctx.settings.firestore_enabled:
        if st["level"] == "warn":
            return warn(name, st["message"], "set FIRESTORE_EMULATOR_HOST or FIRESTORE_PROJECT", **details)
        return ok(name, "Firestore mirror not configured (local artifacts only).", **details)
    host = ctx.settings.firestore_emulator_host
    if host:
        err = _tcp_probe(host, ctx.timeout_s)
        if err is not None:
            return fail(
                name,
                f"Firestore emulator {host} unreachable ({err}); artifacts queue in the outbox (depth {st['outbox_depth']}).",
                "start the emulator (scripts/install_firestore_emulator.sh, then the launcher) or unset FIRESTORE_EMULATOR_HOST",
                **details,
            )
    if st["breaker_state"] == "open":
        return fail(
            name,
            st["message"],
            "check Firestore credentials/network; the outbox replays on recovery",
            **details,
        )
    if st["level"] in ("warn", "unknown"):
        return warn(
            name,
            st["message"],
            "run any job that writes an artifact (e.g. python -m scripts.doctor) to mirror",
            **details,
        )
    return ok(name, st["message"], **details)
