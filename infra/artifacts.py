"""The artifact store: ``logs/cache/<name>.json`` written atomically with a bounded history.

Every artifact is an envelope ``{schema_version, name, generated_at, env, source, data}``.

Writes go to a temporary file in the same folder, are flushed and fsync'ed, then renamed over the
current file (``os.replace`` is atomic on POSIX), and the folder is fsync'ed. A reader therefore
sees either the old or the new artifact, never half of one, even when the writer is killed. The
version being replaced is first hard-linked into ``history/<name>/`` and the history is trimmed
to at most ``history_count`` files and ``history_bytes`` bytes (oldest first).

Why this file is long: the envelope, the atomic write with its history, and the read that turns
every bad file into a status are one contract (the store); the atomic file primitives are in
:mod:`infra.atomic_files` and the data contracts in :mod:`infra.contracts`.

Every platform artifact's ``data`` has a typed contract (:mod:`infra.contracts.artifacts`):
:meth:`ArtifactStore.write` refuses ``data`` its contract refuses (nothing is written), and a read
decodes ``data`` into the contract's Struct, carried as ``result.typed``.

Reading never raises on a bad file: :meth:`ArtifactStore.read` returns an
:class:`ArtifactResult` whose ``status`` is ``ok`` or one of ``missing``, ``corrupt``,
``wrong_schema``, ``invalid``, ``stale``, with a message saying what is wrong and how to fix it:

* ``wrong_schema``: another ``schema_version`` than the registered one (or the one asked for);
* ``invalid``: ``data`` breaks its contract (the message names the field path and the bad value,
  e.g. ``field $.calibration.ece is nan``), or ``generated_at`` lies more than
  :data:`FUTURE_SKEW_S` in the future.

After the local write an optional *mirror* (the Firestore mirror) is called; a mirror failure is
logged and never fails the local write.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import msgspec

from infra import jsonio
from infra.atomic_files import (  # noqa: F401 - re-exported: jobs import them from here
    FILE_MODE,
    TEMP_MAX_AGE_S,
    atomic_write_bytes,
    atomic_write_text,
    sweep_temp_files,
)
from infra.contracts.artifacts import ArtifactDataError, contract_for, decode_data, encode_data
from infra.settings import Settings
from infra.timeutil import parse_utc, utc_iso, utcnow

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
Status = Literal["ok", "missing", "corrupt", "wrong_schema", "invalid", "stale"]
USABLE: tuple[Status, ...] = ("ok", "stale")
"""Statuses whose ``data`` a reader may use (a stale artifact is shown with a badge)."""
FUTURE_SKEW_S = 300.0
"""How far ``generated_at`` may lie in the future (clock skew between machines) before the
artifact is ``invalid``: a timestamp from the future would keep a dead job looking fresh."""
DEFAULT_MAX_BYTES = 50_000_000
"""Default bound on an artifact's size (``ARTIFACT_MAX_BYTES``)."""


class ArtifactTooLarge(ValueError):
    """An artifact's JSON is over the store's ``max_bytes``; nothing was written."""


ENVELOPE_KEYS = ("schema_version", "name", "generated_at", "env", "source", "data")


class ArtifactMirror(Protocol):
    """Something that copies an envelope elsewhere after the local write (e.g. Firestore)."""

    def mirror(self, name: str, envelope: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class ArtifactResult:
    """Outcome of reading one artifact."""

    name: str
    status: Status
    path: Path
    message: str
    envelope: dict[str, Any] | None = None
    age_s: float | None = None
    typed: msgspec.Struct | None = None
    """``data`` decoded into its contract's Struct (``None`` for an unregistered name or a
    status other than ``ok``/``stale``)."""
    field: str | None = None
    """For ``invalid``: the JSON path of the offending field (``$.calibration.ece``)."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def usable(self) -> bool:
        """Whether the data may be shown (``ok`` or ``stale``)."""
        return self.status in USABLE and self.envelope is not None

    @property
    def data(self) -> Any:
        """The artifact's plain ``data`` (``None`` unless it is usable: ``ok`` or ``stale``)."""
        return self.envelope["data"] if self.usable and self.envelope is not None else None

    @property
    def generated_at(self) -> dt.datetime | None:
        if self.envelope is None:
            return None
        return parse_utc(self.envelope["generated_at"])


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(
            "The 'name' of an artifact must be lower-case letters, digits and '_', starting with "
            f"a letter, at most 64 characters. Got {name!r} instead."
        )
    return name


class ArtifactStore:
    """Atomic JSON artifacts with rotation.

    Parameters
    ----------
    root
        Folder holding ``<name>.json`` (default: the settings' ``cache_dir``).
    history_count, history_bytes
        Bounds on the history kept per artifact (count of files and their total bytes).
    env
        Written into each envelope.
    mirror
        Optional :class:`ArtifactMirror` called after each successful local write.
    clock
        Returns the current UTC time; injectable for tests.
    max_bytes
        Largest envelope written or read (bytes of JSON). A write over it raises
        :class:`ArtifactTooLarge`; a read of a bigger file reports it as ``corrupt`` without
        loading it.

    Examples
    --------
    >>> import tempfile
    >>> store = ArtifactStore(tempfile.mkdtemp())
    >>> _ = store.write("demo", {"x": 1.5}, source="doctest")
    >>> store.read("demo").data
    {'x': 1.5}
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        history_count: int = 20,
        history_bytes: int = 20_000_000,
        env: str = "dev",
        mirror: ArtifactMirror | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"'max_bytes' must be >= 1. Got {max_bytes!r} instead.")
        if history_count < 0:
            raise ValueError(f"'history_count' must be >= 0. Got {history_count!r} instead.")
        if history_bytes < 0:
            raise ValueError(f"'history_bytes' must be >= 0. Got {history_bytes!r} instead.")
        self.root = Path(root)
        self.history_count = history_count
        self.history_bytes = history_bytes
        self.env = env
        self.mirror = mirror
        self.clock = clock
        self.max_bytes = max_bytes

    @classmethod
    def from_settings(cls, settings: Settings, *, mirror: ArtifactMirror | None = None) -> ArtifactStore:
        return cls(
            settings.cache_dir,
            history_count=settings.artifact_history_count,
            history_bytes=settings.artifact_history_bytes,
            env=settings.env,
            mirror=mirror,
            max_bytes=settings.artifact_max_bytes,
        )

    # ------------------------------------------------------------------ paths
    def path(self, name: str) -> Path:
        return self.root / f"{validate_name(name)}.json"

    def history_dir(self, name: str) -> Path:
        return self.root / "history" / validate_name(name)

    def history(self, name: str) -> list[Path]:
        """History files of ``name``, oldest first."""
        d = self.history_dir(name)
        if not d.is_dir():
            return []
        return sorted(p for p in d.iterdir() if p.suffix == ".json")

    def names(self) -> list[str]:
        """Names of the artifacts currently present."""
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.json") if NAME_RE.match(p.stem))

    # ------------------------------------------------------------------ write
    def write(
        self,
        name: str,
        data: Any,
        *,
        source: str,
        schema_version: int = 1,
        generated_at: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """Write ``data`` as artifact ``name`` atomically and return the envelope written.

        ``data`` is the contract's Struct or a mapping of the same shape for a registered name
        (:mod:`infra.contracts.artifacts`), anything JSON-able otherwise.

        Raises
        ------
        ArtifactDataError
            ``data`` breaks the artifact's contract (nothing is written).
        ValueError
            A bad name, schema version (a registered artifact's is fixed) or ``generated_at``.
        """
        validate_name(name)
        if not isinstance(schema_version, int) or schema_version < 1:
            raise ValueError(f"'schema_version' must be an int >= 1. Got {schema_version!r} instead.")
        contract = contract_for(name)
        if contract is not None and schema_version not in (1, contract.schema_version):
            raise ValueError(
                f"artifact {name!r} has schema_version {contract.schema_version} "
                f"(infra.contracts.artifacts); got {schema_version!r}."
            )
        if contract is not None:
            schema_version = contract.schema_version
        when = generated_at or self.clock()
        if when.tzinfo is None:
            raise ValueError(f"'generated_at' must be timezone-aware UTC. Got {when!r} instead.")
        data = encode_data(name, data)  # before anything touches the disk
        envelope = {
            "schema_version": schema_version,
            "name": name,
            "generated_at": utc_iso(when),
            "env": self.env,
            "source": source,
            "data": data,
        }
        text = jsonio.dumps(envelope)  # serialise first: a bad value must not touch the disk
        if len(text) > self.max_bytes:  # characters <= bytes; checked exactly below only if close
            size = len(text.encode("utf-8"))
            raise ArtifactTooLarge(
                f"artifact {name!r} is {size:,} bytes as JSON, over the {self.max_bytes:,}-byte "
                "limit (ARTIFACT_MAX_BYTES); nothing was written. Aggregate before writing, or raise the limit."
            )
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.path(name)
        sweep_temp_files(self.root, prefix=f".{target.name}.")
        self._preserve_current(name, target)
        atomic_write_text(target, text)
        self._trim_history(name)
        if self.mirror is not None:
            try:
                self.mirror.mirror(name, jsonio.loads(text))
            except Exception:  # the mirror owns its own retries; never fail the local write
                log.exception("artifact mirror failed for %s; local copy is safe", name)
        result: dict[str, Any] = jsonio.loads(text)
        return result

    def _preserve_current(self, name: str, target: Path) -> None:
        if self.history_count == 0 or not target.exists():
            return
        hdir = self.history_dir(name)
        hdir.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.fromtimestamp(target.stat().st_mtime, dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        dest = hdir / f"{stamp}.json"
        n = 0
        while dest.exists():
            n += 1
            dest = hdir / f"{stamp}-{n}.json"
        try:
            os.link(target, dest)  # the old inode stays intact when the new file is renamed over
        except OSError:
            atomic_write_text(dest, target.read_text(encoding="utf-8"))

    def _trim_history(self, name: str) -> None:
        files = self.history(name)
        sizes = {p: p.stat().st_size for p in files}
        total = sum(sizes.values())
        while files and (len(files) > self.history_count or total > self.history_bytes):
            oldest = files.pop(0)
            total -= sizes[oldest]
            with contextlib.suppress(FileNotFoundError):
                oldest.unlink()

    # ------------------------------------------------------------------ read
    def read(
        self,
        name: str,
        *,
        max_age_s: float | None = None,
        schema_version: int | None = None,
        now: dt.datetime | None = None,
    ) -> ArtifactResult:
        """Read artifact ``name``; never raises on a bad file.

        Parameters
        ----------
        max_age_s
            When given, an artifact generated longer ago than this is returned with status
            ``stale`` (its envelope is still attached, so a view can show it with a badge).
        schema_version
            When given, any other version gives status ``wrong_schema`` (a registered artifact is
            always checked against its contract's version).
        """
        path = self.path(name)
        return read_artifact_file(
            path,
            name=name,
            max_age_s=max_age_s,
            schema_version=schema_version,
            now=now or self.clock(),
            max_bytes=self.max_bytes,
        )


def read_artifact_file(
    path: Path,
    *,
    name: str | None = None,
    max_age_s: float | None = None,
    schema_version: int | None = None,
    now: dt.datetime | None = None,
    max_bytes: int = 0,
) -> ArtifactResult:
    """Read and validate one artifact file (see :meth:`ArtifactStore.read`).

    ``max_bytes`` (default :data:`DEFAULT_MAX_BYTES`) bounds what is loaded: a bigger file is
    reported as ``corrupt`` with its size, without reading it.
    """
    name = name or path.stem
    limit = max_bytes or DEFAULT_MAX_BYTES
    if not path.exists():
        return ArtifactResult(name, "missing", path, f"{path} does not exist yet.")
    try:
        size = path.stat().st_size
        if size > limit:
            return ArtifactResult(
                name,
                "corrupt",
                path,
                f"{path} is {size:,} bytes, over the {limit:,}-byte limit (ARTIFACT_MAX_BYTES); "
                "not read. Re-run the job that writes it (it now refuses to write that much).",
            )
        raw = path.read_bytes()
        env = jsonio.loads(raw)
    except (OSError, ValueError) as exc:
        return ArtifactResult(name, "corrupt", path, f"{path} is not valid JSON ({exc}).")
    if not isinstance(env, dict) or any(k not in env for k in ENVELOPE_KEYS):
        missing = [k for k in ENVELOPE_KEYS if not isinstance(env, dict) or k not in env]
        return ArtifactResult(
            name, "corrupt", path, f"{path} is not an artifact envelope (missing {', '.join(missing)})."
        )
    try:
        generated = parse_utc(str(env["generated_at"]))
    except ValueError as exc:
        return ArtifactResult(name, "corrupt", path, f"{path} has a bad generated_at ({exc}).")
    contract = contract_for(name)
    expected = (
        schema_version if schema_version is not None else (contract.schema_version if contract else None)
    )
    if expected is not None and env["schema_version"] != expected:
        return ArtifactResult(
            name,
            "wrong_schema",
            path,
            f"{path} has schema_version {env['schema_version']!r}, expected {expected}; "
            "re-run the job that writes it.",
            envelope=env,
        )
    current = now or utcnow()
    age = (current - generated).total_seconds()
    if -age > FUTURE_SKEW_S:
        return ArtifactResult(
            name,
            "invalid",
            path,
            f"{path}: generated_at {utc_iso(generated)} is in the future "
            f"({-age / 3600:.1f} h ahead of {utc_iso(current)}); a clock or the writer is wrong.",
            envelope=env,
            field="generated_at",
        )
    try:
        typed = decode_data(name, env["data"])
    except ArtifactDataError as exc:
        return ArtifactResult(
            name,
            "invalid",
            path,
            f"{path}: {exc}; re-run the job that writes it ({contract.writer if contract else name}).",
            envelope=env,
            age_s=age,
            field=exc.field,
        )
    if max_age_s is not None and age > max_age_s:
        return ArtifactResult(
            name,
            "stale",
            path,
            f"{path} was generated {age / 3600:.1f} h ago (limit {max_age_s / 3600:.1f} h); "
            "re-run the job that writes it.",
            envelope=env,
            age_s=age,
            typed=typed,
        )
    return ArtifactResult(name, "ok", path, "ok", envelope=env, age_s=age, typed=typed)
