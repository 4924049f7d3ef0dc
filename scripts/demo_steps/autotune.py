"""Demo step: autotune (moved from execution.risk_autotune: no demo code in a service)."""

from __future__ import annotations

from dataclasses import replace

from execution.risk_autotune import run_cycle, summary_line
from scripts.demo_context import DemoContext


def demo_step(ctx: DemoContext) -> str:
    """Demo pipeline step: one applied cycle over the demo trades."""
    settings = replace(ctx.settings, data_dir=ctx.data_dir)
    data = run_cycle(settings, store=ctx.store, dry_run=False)
    return summary_line(data)
