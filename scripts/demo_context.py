"""What every demo step may use: settings, the store, the demo data's paths, one in-process bus."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from infra.artifacts import ArtifactStore
from infra.bus import MemoryBus
from infra.settings import Settings

Scale = Literal["default", "large"]


@dataclass
class DemoContext:
    """What every demo step may use. Paths point at files the generator has written."""

    settings: Settings
    store: ArtifactStore
    data_dir: Path
    seed: int
    scale: Scale
    real_bars: bool
    """True when the bars came from ``--bars`` files rather than the synthetic generator."""
    bus: MemoryBus = field(default_factory=MemoryBus)
    """In-process bus shared by the steps of one demo run."""

    @property
    def bars_path(self) -> Path:
        """Bars: symbol, ts, open, high, low, close, volume (Parquet)."""
        return self.data_dir / "bars.parquet"

    @property
    def trades_path(self) -> Path:
        """Closed trades, DESIGN.md contract plus extras (Parquet)."""
        return self.data_dir / "trades.parquet"

    @property
    def signals_path(self) -> Path:
        """Model signals: signal_id, order_id, ts, symbol, action, confidence, model_version, won."""
        return self.data_dir / "signals.parquet"

    @property
    def orders_path(self) -> Path:
        """Order attempts per route: order_id, ts, symbol, route, status, slippage_bps, latency_ms."""
        return self.data_dir / "orders.parquet"
