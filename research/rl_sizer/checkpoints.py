"""Atomic PPO-sizer checkpoints: weights, a metadata file with their hash, and a ``latest`` pointer.

Layout under a checkpoint directory (``settings.research_dir / "checkpoints" / "ppo_sizer"``)::

    step_000100/policy.pt     torch.save of the sizer (weights, optimiser, state normaliser)
    step_000100/meta.json     {"step", "trades_seen", "updates", "reward_stats", "sha256", "saved_at", ...}
    latest                    the name of the newest complete checkpoint, e.g. "step_000100"

Each file is written with :func:`infra.artifacts.atomic_write_bytes` (temp file, fsync, rename), in
the order weights, metadata, pointer. A process killed at any point therefore leaves ``latest``
naming a checkpoint whose two files are complete, and :func:`load_checkpoint` verifies the weights
against the SHA-256 in the metadata before unpickling them (``weights_only``).

Retention: after each write the directory keeps the newest :data:`KEEP` checkpoints (by step)
and always the one ``latest`` names; older ones are deleted (:func:`prune_checkpoints`). The
online trainer checkpoints every 100 trades, so without a bound an hour at 50 trades/s leaves
1,800 checkpoint folders per learner (about 0.5 GB); 20 keep the last 2,000 trades' worth to roll
back to.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.artifacts import atomic_write_bytes, atomic_write_text
from infra.validate import check_int

WEIGHTS = "policy.pt"
META = "meta.json"
LATEST = "latest"
_NAME = re.compile(r"^step_\d{6,}$")
KEEP = 20
"""Checkpoints kept per directory (plus the one ``latest`` names)."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or does not match its hash."""


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint: its weights bytes and metadata."""

    path: Path
    payload: bytes
    meta: dict[str, Any]


def checkpoint_name(step: int) -> str:
    """Directory name of the checkpoint written after ``step`` trades: ``step_000100``."""
    return f"step_{step:06d}"


def write_checkpoint(
    directory: Path,
    *,
    step: int,
    payload: bytes,
    meta: dict[str, Any],
    promote: bool = True,
    keep: int | None = KEEP,
) -> Path:
    """Write ``payload`` and ``meta`` (plus the SHA-256 of ``payload``) under ``directory/step_<step>``.

    With ``promote`` the ``latest`` pointer is moved to it last, atomically. Then the directory is
    pruned to the newest ``keep`` checkpoints (``None``: keep every one), never the latest.
    """

    check_int(step, param="step", func="write_checkpoint", minimum=0)
    target = Path(directory) / checkpoint_name(step)
    if latest_name(directory) == target.name:
        # rewriting the promoted pair in place is not atomic as a pair: weights could change
        # before the metadata that holds their hash
        raise ValueError(
            f"The 'step' parameter of write_checkpoint must differ from the promoted checkpoint's. "
            f"Got {step!r}, which 'latest' already names."
        )
    atomic_write_bytes(target / WEIGHTS, payload)
    full = {**meta, "step": step, "sha256": sha256_hex(payload), "bytes": len(payload)}
    atomic_write_text(target / META, json.dumps(full, sort_keys=True, default=str))
    if promote:
        atomic_write_text(Path(directory) / LATEST, target.name + "\n")
    if keep is not None:
        prune_checkpoints(directory, keep=keep)
    return target


def prune_checkpoints(directory: Path, *, keep: int = KEEP) -> list[str]:
    """Delete all but the newest ``keep`` checkpoints of ``directory`` (by step) and the latest.

    Returns the names deleted. Folders that are not checkpoints (no ``step_NNNNNN`` name) are
    left alone.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> for step in (100, 200, 300):
    ...     _ = write_checkpoint(d, step=step, payload=b"w", meta={}, keep=None)
    >>> prune_checkpoints(d, keep=1), sorted(p.name for p in d.iterdir())
    (['step_000100', 'step_000200'], ['latest', 'step_000300'])
    """
    check_int(keep, param="keep", func="prune_checkpoints", minimum=1)
    directory = Path(directory)
    names = sorted(
        (p.name for p in directory.iterdir() if p.is_dir() and _NAME.match(p.name)),
        key=lambda n: int(n.split("_", 1)[1]),
    )
    protected = {latest_name(directory), *names[-keep:]}
    gone = [n for n in names if n not in protected]
    for name in gone:
        shutil.rmtree(directory / name, ignore_errors=True)
    return gone


def latest_name(directory: Path) -> str | None:
    """Name the ``latest`` pointer holds, or None when there is none."""
    p = Path(directory) / LATEST
    if not p.is_file():
        return None
    name = p.read_text(encoding="utf-8").strip()
    if not _NAME.match(name):
        raise CheckpointError(f"{p} must name a checkpoint such as 'step_000100'. Got {name!r} instead.")
    return name


def load_checkpoint(directory: Path, name: str | None = None) -> Checkpoint:
    """Read and verify checkpoint ``name`` (default: the one ``latest`` names).

    Raises
    ------
    CheckpointError
        When there is no checkpoint, a file is missing or the weights do not match the hash.
    """

    directory = Path(directory)
    name = name or latest_name(directory)
    if name is None:
        raise CheckpointError(f"no checkpoint in {directory} (no '{LATEST}' pointer)")
    path = directory / name
    try:
        meta = json.loads((path / META).read_text(encoding="utf-8"))
        payload = (path / WEIGHTS).read_bytes()
    except FileNotFoundError as exc:
        raise CheckpointError(f"checkpoint {path} is incomplete: {exc.filename} is missing") from None
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {path} has unreadable metadata: {exc}") from None
    digest = sha256_hex(payload)
    if digest != meta.get("sha256"):
        raise CheckpointError(
            f"checkpoint {path}: {WEIGHTS} has SHA-256 {digest[:12]}..., metadata says "
            f"{str(meta.get('sha256'))[:12]}...; refusing to load it"
        )
    return Checkpoint(path, payload, meta)


def sha256_hex(payload: bytes) -> str:
    """Hex SHA-256 of ``payload`` (the checkpoint hash stored in the metadata)."""
    return hashlib.sha256(payload).hexdigest()
