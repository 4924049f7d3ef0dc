"""Demo step: learning_loop (moved from research.rl_sizer.trainer: no demo code in a service)."""

from __future__ import annotations

from scripts.demo_context import DemoContext


def demo_step(ctx: DemoContext) -> str:
    """Run signals -> governor -> paper execution -> bridge -> trainer in memory; write ``learning_loop``."""
    from scripts.demo_steps.learning_demo import run_learning_demo

    return run_learning_demo(ctx)
