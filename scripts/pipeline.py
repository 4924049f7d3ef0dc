"""The demo pipeline's step registry.

``python -m scripts.demo`` generates data and then runs every step below, in order. A step is a
function ``demo_step(ctx: DemoContext) -> str`` in its own module; it reads the demo data named in
the context, does its job and writes its artifacts through ``ctx.store``, and returns a one-line
summary. A module that does not exist yet is reported as "not built yet" and skipped, so each part
of the platform plugs itself in by adding its ``demo_step`` and nothing else.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from infra.artifacts import ArtifactStore
from infra.bus import MemoryBus
from infra.settings import Settings

Scale = Literal["default", "large"]

# (step name, "module:function"), in run order: producers before consumers, doctor last.
STEPS: list[tuple[str, str]] = [
    ("telemetry", "ml.telemetry:demo_step"),
    ("feedback", "execution.feedback_bridge:demo_step"),
    ("drift", "ml.drift_service:demo_step"),
    ("retrain", "ml.retrain_worker:demo_step"),
    ("rl_pilot", "research.rl_sizer.runner:demo_step"),
    ("learning_loop", "research.rl_sizer.trainer:demo_step"),
    ("autotune", "execution.risk_autotune:demo_step"),
    ("doctor", "scripts.doctor:demo_step"),
]


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


@dataclass(frozen=True)
class StepResult:
    name: str
    status: Literal["ok", "skipped", "failed"]
    message: str
    seconds: float


def run_steps(
    ctx: DemoContext,
    *,
    only: list[str] | None = None,
    on_step: Callable[[str], None] | None = None,
    on_done: Callable[[StepResult], None] | None = None,
) -> list[StepResult]:
    """Run the registered steps in order; a failing step is recorded and the rest still run.

    ``on_step(name)`` is called before a step starts, ``on_done(result)`` after it ends (a
    progress bar advances one step there).
    """
    results: list[StepResult] = []
    for name, target in STEPS:
        if only is not None and name not in only:
            continue
        if on_step is not None:
            on_step(name)
        module_name, func_name = target.split(":")
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                results.append(StepResult(name, "skipped", f"{module_name} not built yet", 0.0))
                if on_done is not None:
                    on_done(results[-1])
                continue
            raise
        func: Callable[[DemoContext], str] = getattr(module, func_name)
        try:
            message = func(ctx)
            results.append(StepResult(name, "ok", message, time.perf_counter() - t0))
        except Exception as exc:  # report and continue: one broken step must not hide the others
            results.append(
                StepResult(name, "failed", f"{type(exc).__name__}: {exc}", time.perf_counter() - t0)
            )
        if on_done is not None:
            on_done(results[-1])
    return results
