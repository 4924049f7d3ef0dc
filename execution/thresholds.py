"""Per-symbol risk thresholds that the governor and the signal filter read, persisted atomically.

The file ``<LOGS_DIR>/state/thresholds.json`` holds::

    {"schema_version": 1, "updated_at": "...Z", "env": "dev",
     "symbols": {"BTCUSDT": {"min_confidence": 0.55, "size_scale": 1.0,
                             "max_exposure": 0.10, "level": 0}, ...}}

``level`` is the autotuner's hysteresis state (see :mod:`execution.risk_autotune`). Writing the
file is a write to production state: :func:`save_thresholds` calls
:func:`infra.safety.require_prod_write` first, so in ``ENV=prod`` it needs ``ALLOW_PROD_WRITE=1``.
Reading never raises on a bad file; it returns an empty mapping and the problem.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from infra import jsonio
from infra.artifacts import atomic_write_text
from infra.safety import require_prod_write
from infra.settings import Settings
from infra.timeutil import utc_iso

THRESHOLD_NAMES = ("min_confidence", "size_scale", "max_exposure")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SymbolThresholds:
    """The thresholds of one symbol and the autotuner's level for it."""

    min_confidence: float
    """Minimum model confidence (0..1) for a signal to be traded."""
    size_scale: float
    """Multiplier on the governor's position size."""
    max_exposure: float
    """Maximum exposure to the symbol as a fraction of equity."""
    level: int = 0
    """Autotuner level (negative: tightened, positive: loosened)."""

    def get(self, name: str) -> float:
        if name not in THRESHOLD_NAMES:
            raise ValueError(
                f"The 'name' of a threshold must be one of {THRESHOLD_NAMES}. Got {name!r} instead."
            )
        return float(getattr(self, name))


def thresholds_path(settings: Settings) -> Path:
    """``<LOGS_DIR>/state/thresholds.json``."""
    return settings.logs_dir / "state" / "thresholds.json"


def load_thresholds(path: Path) -> tuple[dict[str, SymbolThresholds], str | None]:
    """Read the thresholds file; returns ``(symbols, problem)``, ``problem`` ``None`` when fine.

    A missing file is not a problem (empty mapping: every symbol starts at the defaults).
    """
    if not path.exists():
        return {}, None
    try:
        doc = jsonio.loads(path.read_bytes())
        raw = doc["symbols"]
        out = {
            str(sym): SymbolThresholds(
                min_confidence=float(v["min_confidence"]),
                size_scale=float(v["size_scale"]),
                max_exposure=float(v["max_exposure"]),
                level=int(v.get("level", 0)),
            )
            for sym, v in raw.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return {}, f"{path} is unreadable ({type(exc).__name__}: {exc}); starting from the defaults"
    return out, None


def save_thresholds(
    settings: Settings, symbols: dict[str, SymbolThresholds], *, now: dt.datetime, path: Path | None = None
) -> Path:
    """Write ``symbols`` atomically (refused in ``ENV=prod`` without ``ALLOW_PROD_WRITE=1``)."""
    require_prod_write(settings, "risk thresholds")
    target = path or thresholds_path(settings)
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "updated_at": utc_iso(now),
        "env": settings.env,
        "symbols": {s: asdict(t) for s, t in sorted(symbols.items())},
    }
    atomic_write_text(target, jsonio.dumps(doc, indent=2))
    return target
