"""The dashboard's only way to read artifacts and data files.

Parsing is cached with ``st.cache_data`` keyed on the file's path, modification time and size,
so an unchanged file is parsed once and a rewritten one is picked up on the next rerun. Status
(missing, corrupt, wrong schema, stale) is evaluated on every run against the current time,
so a cached artifact still turns stale when it ages.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from infra import jsonio
from infra.artifacts import ArtifactResult, read_artifact_file
from infra.settings import Settings, load_settings


def settings() -> Settings:
    """Settings from the environment (cheap; read on every run so tests can point elsewhere)."""
    return load_settings()


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st_ = path.stat()
    except FileNotFoundError:
        return (-1, -1)
    return (st_.st_mtime_ns, st_.st_size)


@st.cache_data(show_spinner=False, max_entries=64)
def _read_artifact_cached(path: str, stamp: tuple[int, int], max_age_s: float | None) -> ArtifactResult:
    # Cached on (path, mtime, size): staleness is re-evaluated by the caller.
    return read_artifact_file(Path(path), max_age_s=None)


def artifact(name: str, *, max_age_s: float | None = None) -> ArtifactResult:
    """Read artifact ``name`` from the cache folder; never raises on a bad file.

    The result carries ``typed`` (``data`` decoded by its contract, :mod:`infra.contracts.artifacts`)
    or a status ``invalid`` / ``wrong_schema`` / ``corrupt`` whose message names the field.

    ``max_age_s`` defaults to the ``ARTIFACT_MAX_AGE_S`` setting.
    """
    s = settings()
    path = s.cache_dir / f"{name}.json"
    result = _read_artifact_cached(str(path), _stamp(path), None)
    if not result.ok or result.envelope is None:
        return result
    limit = s.artifact_max_age_s if max_age_s is None else max_age_s
    generated = result.generated_at
    age = (dt.datetime.now(dt.UTC) - generated).total_seconds() if generated else None
    if age is not None and age > limit:
        return dataclasses.replace(
            result,
            status="stale",
            message=f"{path.name} was generated {age / 3600:.1f} h ago (limit {limit / 3600:.1f} h).",
            age_s=age,
        )
    return dataclasses.replace(result, age_s=age)  # keeps the typed data decoded by its contract


def artifact_at(path: Path) -> ArtifactResult:
    """Read an artifact file outside the cache folder (e.g. a dry run's, under ``research_dir``)."""
    return _read_artifact_cached(str(path), _stamp(path), None)


@st.cache_data(show_spinner=False, max_entries=16)
def _read_frame_cached(path: str, stamp: tuple[int, int], columns: tuple[str, ...] | None) -> pd.DataFrame:
    p = Path(path)
    cols = list(columns) if columns is not None else None
    if p.suffix in (".parquet", ".pq"):
        return pd.read_parquet(p, columns=cols)
    return pd.read_csv(p, usecols=cols)


def frame(path: Path, *, columns: list[str] | tuple[str, ...] | None = None) -> pd.DataFrame | None:
    """Read a data file written by the platform (Parquet or CSV); ``None`` when it is missing.

    ``columns`` reads only those columns (a 1M-row trade log is ~240 MB with all of them).
    """
    if not path.exists():
        return None
    return _read_frame_cached(str(path), _stamp(path), tuple(columns) if columns is not None else None)


def data_path(name: str) -> Path:
    """Path of a demo/data file such as ``trades.parquet`` under ``DATA_DIR``."""
    return settings().data_dir / name


def raw_json(path: Path) -> Any:
    """Parse a JSON file written with :mod:`infra.jsonio` (uncached; small files only)."""
    return jsonio.loads(path.read_text(encoding="utf-8"))


def simulated_pnl_note(trades_path: Path) -> str | None:
    """A caption saying the trade log is the demo's simulation, or None for any other log.

    ``python -m scripts.demo`` records what it wrote in the ``demo_data`` artifact; when that
    artifact names ``trades_path`` the PnL is simulated (no order ever reached an exchange), and
    every PnL a tab shows must say so.
    """
    from infra.contracts.ops_artifacts import DemoDataData

    result = artifact("demo_data", max_age_s=float("inf"))
    demo = result.typed if result.usable else None
    if not isinstance(demo, DemoDataData):
        return None
    try:
        same = Path(demo.files.get("trades", "")).resolve() == trades_path.resolve()
    except OSError:
        same = False
    if not same:
        return None
    source = demo.bars_source
    bars = (
        "synthetic bars"
        if source == "synthetic"
        else "real bars (" + ", ".join(Path(p).name for p in source.removeprefix("real:").split(",")) + ")"
    )
    signal = demo.signal_source or "a simulated signal"
    from dashboard.text import md_text

    bars, signal = md_text(bars), md_text(signal)
    return (
        f"Simulated PnL: these trades were simulated by the demo ({DEMO_SOURCE}) over {bars}, entered on "
        f"{signal}; no order reached an exchange."
    )


DEMO_SOURCE = "python -m scripts.demo"
