"""The demo pipeline's steps, in run order, and the runner.

``python -m scripts.demo`` generates data and then runs every step below, in order. A step is a
function ``demo_step(ctx: DemoContext) -> str`` in ``scripts/demo_steps/`` (the doctor's is in
:mod:`scripts.doctor`): it calls the jobs and services below it on the demo data named in the
context, writes its artifacts through ``ctx.store``, and returns a one-line summary. The steps
are direct references: nothing below the demo knows it exists.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from scripts import doctor
from scripts.demo_context import DemoContext, Scale
from scripts.demo_steps import autotune, drift, feedback, learning_loop, retrain, rl_pilot, telemetry

__all__ = ["STEPS", "DemoContext", "Scale", "StepResult", "run_steps"]

Step = Callable[[DemoContext], str]

# (step name, step), in run order: producers before consumers, doctor last.
STEPS: list[tuple[str, Step]] = [
    ("telemetry", telemetry.demo_step),
    ("feedback", feedback.demo_step),
    ("drift", drift.demo_step),
    ("retrain", retrain.demo_step),
    ("rl_pilot", rl_pilot.demo_step),
    ("learning_loop", learning_loop.demo_step),
    ("autotune", autotune.demo_step),
    ("doctor", doctor.demo_step),
]


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
    for name, func in STEPS:
        if only is not None and name not in only:
            continue
        if on_step is not None:
            on_step(name)
        t0 = time.perf_counter()
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
