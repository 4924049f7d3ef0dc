"""Demo step: telemetry (moved from ml.telemetry: no demo code in a service)."""

from __future__ import annotations

from ml.telemetry import _load_bars, run_cycle
from scripts.demo_context import DemoContext


def demo_step(ctx: DemoContext) -> str:
    """Demo pipeline step: telemetry cycle on ``ctx.bars_path``; publishes the latest signals."""
    from infra.bus import TOPIC_SIGNAL
    from ml.signal_model import SignalModel, signal_events

    bars = _load_bars([str(ctx.bars_path)])
    envelope, summary = run_cycle(bars, settings=ctx.settings, model_dir=ctx.settings.logs_dir / "models")
    model = SignalModel.load(envelope["data"]["model"]["path"])
    for event in signal_events(model.signals(bars)):
        ctx.bus.publish(TOPIC_SIGNAL, event)
    return summary
