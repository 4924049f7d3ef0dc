"""Demo step: drift (moved from ml.drift_service: no demo code in a service)."""

from __future__ import annotations

from ml.drift_service import run_files, summary, write_artifacts
from scripts.demo_context import DemoContext


def demo_step(ctx: DemoContext) -> str:
    """Demo pipeline step: replay the demo trades and signals, publish to ``ctx.bus``, write artifacts."""
    service, report = run_files(ctx.trades_path, ctx.signals_path, ctx.bus, store=ctx.store)
    write_artifacts(service, report, ctx.store)
    return summary(service, report)
