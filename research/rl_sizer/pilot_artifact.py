"""Where the pilot writes, and the ``rl_pilot`` artifact built from its run logs and A/B results.

Layout under ``settings.research_dir`` (``logs/research`` by default)::

    rl_runs/<run_id>/episodes.jsonl     one JSON line per episode (runner)
    rl_runs/<run_id>/run.json           run metadata (agent, seed, data, config)
    rl_runs/<run_id>/checkpoint/        the sizer, saved after every episode
    rl_ab/<label>-<stamp>.json          one A/B result (evaluate)

A dry run (``--dry-run``) logs its episodes in the same ``rl_runs/<run_id>/`` layout, flagged
``"dry_run": true`` in ``run.json`` and in every episode line (so the RL Pilot tab shows and marks
them), keeps its A/B results under ``research_dir/dry_run/rl_ab/`` and writes its ``rl_pilot``
artifact to ``research_dir/dry_run/cache/rl_pilot.json`` instead of the cache folder: it changes
nothing outside ``logs/research/`` (no live artifact, threshold or promoted checkpoint).

The artifact's ``data``: ``runs`` (latest :data:`MAX_RUNS` runs, each with its per-episode
series) and ``ab`` (latest A/B result per label, newest first).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra import jsonio
from infra.artifacts import ArtifactStore
from infra.settings import Settings
from infra.store import open_store

ARTIFACT = "rl_pilot"
MAX_RUNS = 12
MAX_AB = 6


def pilot_root(settings: Settings, *, dry_run: bool) -> Path:
    """``research_dir`` or, for a dry run, ``research_dir/dry_run``."""
    return settings.research_dir / "dry_run" if dry_run else settings.research_dir


def runs_dir(settings: Settings, *, dry_run: bool) -> Path:
    """``research_dir/rl_runs`` for every run: a dry run is flagged in its logs, not hidden elsewhere."""
    del dry_run  # kept in the signature: callers name the mode they run in
    return settings.research_dir / "rl_runs"


def ab_dir(settings: Settings, *, dry_run: bool) -> Path:
    return pilot_root(settings, dry_run=dry_run) / "rl_ab"


def pilot_store(settings: Settings, *, dry_run: bool) -> ArtifactStore:
    """The real artifact store, or a plain local store under ``research_dir/dry_run/cache``."""
    if dry_run:
        return ArtifactStore(pilot_root(settings, dry_run=True) / "cache", history_count=3, env=settings.env)
    return open_store(settings)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Parse a JSON-lines file; a torn last line (killed writer) is skipped."""
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            out.append(jsonio.loads(line))
        except ValueError:
            continue
    return out


def collect_runs(root: Path, *, limit: int = MAX_RUNS) -> list[dict[str, Any]]:
    """The newest ``limit`` runs under ``root`` (by modification time), with their episodes."""
    if not root.is_dir():
        return []
    dirs = sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime, reverse=True)
    runs = []
    for d in dirs[:limit]:
        meta_path = d / "run.json"
        meta = jsonio.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
        runs.append({"run_id": d.name, **{k: v for k, v in meta.items() if k != "config"},
                     "episodes": read_jsonl(d / "episodes.jsonl")})  # fmt: skip
    return runs


def collect_ab(root: Path, *, limit: int = MAX_AB) -> list[dict[str, Any]]:
    """The newest A/B result per label, newest first."""
    if not root.is_dir():
        return []
    files = sorted(root.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for p in files:
        try:
            res = jsonio.loads(p.read_text(encoding="utf-8"))
        except ValueError:
            continue
        label = str(res.get("label", p.stem))
        if label in seen:
            continue
        seen.add(label)
        out.append(res)
        if len(out) >= limit:
            break
    return out


def write_pilot_artifact(
    settings: Settings, *, dry_run: bool, source: str, store: ArtifactStore | None = None
) -> Path:
    """Rebuild the ``rl_pilot`` artifact from the run logs and A/B files; return its path."""
    data = {
        "runs": collect_runs(runs_dir(settings, dry_run=dry_run)),
        "ab": collect_ab(ab_dir(settings, dry_run=dry_run)),
        "dry_run": dry_run,
    }
    st = store or pilot_store(settings, dry_run=dry_run)
    st.write(ARTIFACT, data, source=source)
    return st.path(ARTIFACT)
