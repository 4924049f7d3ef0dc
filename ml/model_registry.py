"""Versioned model store with an atomic ``current`` pointer, promotion and rollback.

Layout under ``root`` (default ``settings.logs_dir / "models"``)::

    <root>/<model>/<version>/model.pkl     the SignalModel (SignalModel.save)
    <root>/<model>/<version>/meta.json     training window, metrics, trigger id, parent version
    <root>/<model>/current.json            {"stack": [v1, v2, ...], "events": [...]}  (current = stack[-1])

Crash safety (a ``kill -9`` at any instant leaves a loadable store):

* :meth:`ModelRegistry.stage` writes a version into a private ``.staging-*`` folder and renames the
  whole folder into place with one ``os.rename`` (atomic on POSIX; it fails if the version exists,
  so a duplicate never overwrites a finished version). A kill before the rename leaves only a
  staging folder, which readers ignore and :meth:`ModelRegistry.clean_staging` removes.
* :meth:`ModelRegistry.promote` and :meth:`ModelRegistry.rollback` rewrite ``current.json`` with
  :func:`infra.artifacts.atomic_write_text` (temp file, fsync, ``os.replace``): readers see either
  the old pointer or the new one, never a mix. Versions are never deleted by promotion, so the
  previous version stays loadable and a rollback is one pointer write.
* Promotion and rollback are production writes: in ``ENV=prod`` they need ``ALLOW_PROD_WRITE=1``
  (:func:`infra.safety.require_prod_write`); staging a candidate is not (nothing live changes).

Examples
--------
>>> import tempfile
>>> reg = ModelRegistry(Path(tempfile.mkdtemp()))
>>> reg.current_version("signal-model") is None
True
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra import jsonio
from infra.artifacts import atomic_write_text
from infra.timeutil import utc_iso

if TYPE_CHECKING:
    from infra.settings import Settings
    from ml.signal_model import SignalModel

MODEL_FILE = "model.pkl"
META_FILE = "meta.json"
POINTER_FILE = "current.json"
STAGING_PREFIX = ".staging-"
MAX_EVENTS = 200
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class RegistryError(RuntimeError):
    """A registry operation could not be done (message says which and why)."""


def _check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value) or value.startswith(STAGING_PREFIX):
        raise ValueError(
            f"The '{what}' of ModelRegistry must match {_NAME.pattern} (letters, digits, '.', '_', '-'). "
            f"Got {value!r} instead."
        )
    return value


@dataclass(frozen=True)
class ModelVersion:
    """One stored version: where it lives and its metadata."""

    model: str
    version: str
    path: Path
    """The version folder."""
    metadata: Mapping[str, Any]

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    def load(self) -> SignalModel:
        """Unpickle the model (trusted files only)."""
        from ml.signal_model import SignalModel

        return SignalModel.load(self.model_path)


class ModelRegistry:
    """Versions of named models with an atomically switched ``current`` pointer.

    Parameters
    ----------
    root
        Folder holding one sub-folder per model.
    settings
        Consulted by :meth:`promote` and :meth:`rollback` for the production-write guard
        (default: :func:`infra.settings.load_settings` at call time).
    """

    def __init__(self, root: Path, *, settings: Settings | None = None) -> None:
        self.root = Path(root)
        self.settings = settings

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRegistry:
        """The registry under ``settings.logs_dir / "models"``."""
        return cls(settings.logs_dir / "models", settings=settings)

    # ------------------------------------------------------------------ reading
    def models(self) -> list[str]:
        """Names of models that have a ``current`` pointer (i.e. were promoted at least once)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / POINTER_FILE).is_file())

    def versions(self, model: str) -> list[str]:
        """Every finished version of ``model`` (staging folders excluded), sorted by name."""
        folder = self.root / _check_name(model, "model")
        if not folder.is_dir():
            return []
        return sorted(
            p.name
            for p in folder.iterdir()
            if p.is_dir() and not p.name.startswith(STAGING_PREFIX) and (p / META_FILE).is_file()
        )

    def get(self, model: str, version: str) -> ModelVersion:
        """The stored version ``version`` of ``model``; ``KeyError`` when it does not exist."""
        path = self.root / _check_name(model, "model") / _check_name(version, "version")
        meta = path / META_FILE
        if not meta.is_file():
            raise KeyError(f"model {model!r} has no version {version!r} under {self.root}")
        return ModelVersion(model, version, path, jsonio.loads(meta.read_text()))

    def pointer(self, model: str) -> dict[str, Any]:
        """The pointer's content: ``stack`` (promoted versions, current last) and ``events``."""
        path = self.root / _check_name(model, "model") / POINTER_FILE
        if not path.is_file():
            return {"model": model, "stack": [], "events": []}
        data = jsonio.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("stack"), list):
            raise RegistryError(f"load current: {path} is not a model pointer (no 'stack' list)")
        return data

    def current_version(self, model: str) -> str | None:
        stack = self.pointer(model)["stack"]
        return str(stack[-1]) if stack else None

    def previous_version(self, model: str) -> str | None:
        stack = self.pointer(model)["stack"]
        return str(stack[-2]) if len(stack) >= 2 else None

    def current(self, model: str) -> ModelVersion | None:
        """The live version of ``model`` (``None`` before the first promotion)."""
        v = self.current_version(model)
        return None if v is None else self.get(model, v)

    def load_current(self, model: str) -> SignalModel:
        """Load the live model; ``RegistryError`` when none was promoted."""
        cur = self.current(model)
        if cur is None:
            raise RegistryError(f"load current: model {model!r} has no promoted version under {self.root}")
        return cur.load()

    def find(self, name_or_version: str) -> tuple[str, str | None] | None:
        """Resolve a trigger's ``model`` field: a model name, one of its versions, or an alias.

        Returns ``(model, version)`` (``version`` ``None`` for a bare model name) or ``None``.
        Aliases are listed in a version's metadata under ``aliases`` (e.g. the name the signal
        log uses for the production model).
        """
        if name_or_version in self.models():
            return name_or_version, None
        for model in self.models():
            for version in self.versions(model):
                if version == name_or_version:
                    return model, version
                aliases = self.get(model, version).metadata.get("aliases") or []
                if name_or_version in aliases:
                    return model, version
        return None

    # ------------------------------------------------------------------ writing
    def stage(self, model: str, signal_model: SignalModel, *, metadata: Mapping[str, Any]) -> ModelVersion:
        """Store ``signal_model`` as a new version (named by its ``model_version_``), not live yet.

        The version folder appears complete or not at all. Staging a version that already exists
        raises :class:`RegistryError` and leaves the existing one untouched.
        """
        version = _check_name(signal_model.model_version_, "version")
        folder = self.root / _check_name(model, "model")
        target = folder / version
        if target.exists():
            raise RegistryError(f"stage: model {model!r} already has version {version!r}; not overwriting it")
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{STAGING_PREFIX}{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            signal_model.save(tmp / MODEL_FILE)
            meta = {**signal_model.metadata, **dict(metadata), "model": model, "version": version}
            atomic_write_text(tmp / META_FILE, jsonio.dumps(meta))
            _fsync_dir(tmp)
            try:
                os.rename(tmp, target)  # atomic; fails when target exists (non-empty dir)
            except OSError as exc:
                raise RegistryError(
                    f"stage: could not move version {version!r} of {model!r} into place: {exc}"
                ) from exc
            _fsync_dir(folder)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return self.get(model, version)

    def promote(self, model: str, version: str, *, at: dt.datetime, note: str = "") -> ModelVersion:
        """Make ``version`` the live one; the previous live version stays stored for rollback."""
        self._guard("model promotion")
        mv = self.get(model, version)
        mv.load()  # never point at a file that cannot be loaded
        data = self.pointer(model)
        if data["stack"] and data["stack"][-1] == version:
            raise RegistryError(f"promote: version {version!r} of {model!r} is already current")
        data["stack"] = [v for v in data["stack"] if v != version] + [version]
        self._write_pointer(
            model, data, {"action": "promote", "version": version, "at": utc_iso(at), "note": note}
        )
        return mv

    def rollback(self, model: str, *, at: dt.datetime, note: str = "") -> ModelVersion:
        """Make the previously live version live again (the rolled-back one stays stored)."""
        self._guard("model rollback")
        data = self.pointer(model)
        if len(data["stack"]) < 2:
            raise RegistryError(
                f"rollback: model {model!r} has no previous version to roll back to "
                f"(promoted versions: {data['stack']})"
            )
        dropped = data["stack"][-1]
        data["stack"] = data["stack"][:-1]
        target = self.get(model, data["stack"][-1])
        target.load()
        self._write_pointer(
            model,
            data,
            {
                "action": "rollback",
                "version": target.version,
                "from": dropped,
                "at": utc_iso(at),
                "note": note,
            },
        )
        return target

    def clean_staging(self, model: str) -> int:
        """Remove staging folders left by killed writers; returns how many were removed."""
        folder = self.root / _check_name(model, "model")
        if not folder.is_dir():
            return 0
        stale = [p for p in folder.iterdir() if p.name.startswith(STAGING_PREFIX)]
        for p in stale:
            shutil.rmtree(p, ignore_errors=True)
        return len(stale)

    def _guard(self, what: str) -> None:
        from infra.safety import require_prod_write
        from infra.settings import load_settings

        require_prod_write(self.settings or load_settings(), what)

    def _write_pointer(self, model: str, data: dict[str, Any], event: dict[str, Any]) -> None:
        events = [*list(data.get("events", [])), event][-MAX_EVENTS:]
        out = {"model": model, "stack": list(data["stack"]), "current": data["stack"][-1], "events": events}
        folder = self.root / model
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / POINTER_FILE, jsonio.dumps(out))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
