"""Demo step: retrain (moved from ml.retrain_worker: no demo code in a service)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from infra.timeutil import utc_iso
from ml.model_registry import ModelRegistry
from ml.retrain_worker import (
    DEFAULT_MODEL,
    DEMO_ARTIFACT,
    SOURCE,
    RetrainWorker,
    evaluate,
    validation_rows,
)
from ml.signal_model import SignalModel
from scripts.demo_context import DemoContext

log = logging.getLogger(__name__)


def _window_stats(model: SignalModel, rows: pd.DataFrame, version: str) -> dict[str, Any]:
    from ml.calibration import brier_score, expected_calibration_error

    if rows.empty:
        return {"n_rows": 0, "model_version": version, "ece": None, "brier": None, "hit_rate": None}
    p = evaluate(model, rows)
    y = rows["y"].to_numpy()
    conf, hit = np.maximum(p, 1.0 - p), (p >= 0.5) == (y == 1.0)
    return {
        "start": utc_iso(rows["ts"].min()),
        "end": utc_iso(rows["ts"].max()),
        "n_rows": len(rows),
        "model_version": version,
        "ece": expected_calibration_error(hit, conf, value_range=(0.5, 1.0)),
        "brier": brier_score(y, p),
        "hit_rate": float(hit.mean()),
        "mean_confidence": float(conf.mean()),
    }


def demo_step(ctx: DemoContext) -> str:
    """Demo: the drift step's triggers (on ``ctx.bus``) -> retrain -> validate -> promote; ``retrain`` artifact.

    The demo bars' momentum edge flips sign at 60 % of the timeline (``scripts.demo_data``). The
    stale production model is the reference model trained at 50 % of the timeline, registered as
    ``signal-model`` with the signal log's model name as alias, so the drift service's triggers
    (which name the signals' ``model_version``) resolve to it. The artifact reports the live
    model's calibration before the change, during the drift (stale model live) and after the
    promoted model went live, plus the stale model on that last window for contrast.
    """
    from infra.bus import TOPIC_RETRAIN, new_event
    from infra.loaders import load_bars, read_frame
    from ml.signal_model import FeatureSet, ModelConfig, SignalModel
    from scripts.demo_data import DemoConfig

    bars = load_bars(ctx.bars_path)
    grid = np.sort(bars["ts"].unique())
    change = pd.Timestamp(grid[int(DemoConfig().change_at * len(grid))])
    base_until = pd.Timestamp(grid[len(grid) // 2])
    registry = ModelRegistry.from_settings(ctx.settings)
    aliases = sorted({str(v) for v in read_frame(ctx.signals_path)["model_version"].unique()})
    with_single = ModelConfig()
    fs = FeatureSet.from_bars(bars, with_single)
    stale = SignalModel(with_single).fit_features(fs, until=base_until)
    if stale.model_version_ not in registry.versions(DEFAULT_MODEL):
        registry.stage(
            DEFAULT_MODEL, stale, metadata={"aliases": aliases, "trigger_id": None, "parent_version": None}
        )
    if registry.current_version(DEFAULT_MODEL) != stale.model_version_:
        registry.promote(
            DEFAULT_MODEL, stale.model_version_, at=base_until.to_pydatetime(), note="demo baseline"
        )

    triggers = ctx.bus.events(TOPIC_RETRAIN)
    fallback = not triggers
    if fallback:  # the drift step did not run or found nothing: say so and trigger at change + 10 days
        at = change + pd.Timedelta(days=10)
        payload = {
            "trigger_id": f"demo-fallback-{at:%Y%m%dT%H%M%SZ}",
            "model": DEFAULT_MODEL,
            "reason": "accuracy_drift",
            "drift_info": {"message": "demo fallback: no trigger from the drift step"},
            "priority": "high",
            "triggered_at": utc_iso(at),
        }
        ctx.bus.publish(TOPIC_RETRAIN, new_event(TOPIC_RETRAIN, payload, ts=at.to_pydatetime()))
    worker = RetrainWorker(registry=registry, bars=lambda: bars, store=ctx.store)
    worker.consume(ctx.bus, consumer="demo", once=True, block_ms=10)

    promoted = [j for j in worker.log.jobs if j["outcome"] == "promoted"]
    live_from = pd.Timestamp(promoted[0]["decided_at"]) if promoted else None
    t_end = pd.Timestamp(grid[-1]) + fs.bar_freq
    n_bars = lambda a, b: int((b - a) / fs.bar_freq)  # noqa: E731
    before = validation_rows(fs, base_until, n_bars(base_until, change))
    during = validation_rows(fs, change, n_bars(change, live_from or t_end))
    windows = {
        "before_drift": _window_stats(stale, before, stale.model_version_),
        "during_drift": _window_stats(stale, during, stale.model_version_),
    }
    if promoted and live_from is not None:
        new = registry.get(DEFAULT_MODEL, promoted[0]["new_version"]).load()
        after = validation_rows(fs, live_from, n_bars(live_from, t_end))
        windows["after_retrain"] = _window_stats(new, after, new.model_version_)
        windows["after_retrain_stale"] = _window_stats(stale, after, stale.model_version_)
    data = {
        "model": DEFAULT_MODEL,
        "change_ts": utc_iso(change),
        "baseline_trained_until": utc_iso(base_until),
        "fallback_trigger": fallback,
        "versions": [
            {"version": stale.model_version_, "live_from": utc_iso(base_until), "role": "stale baseline"},
            *(
                {
                    "version": j["new_version"],
                    "live_from": j["decided_at"],
                    "role": "retrained",
                    "trigger_id": j["trigger_id"],
                }
                for j in promoted
            ),
        ],
        "current_version": registry.current_version(DEFAULT_MODEL),
        "jobs": worker.log.jobs,
        "windows": windows,
    }
    ctx.store.write(DEMO_ARTIFACT, data, source=SOURCE)

    def ece(name: str) -> str:
        w = windows.get(name)
        return "-" if not w or w["ece"] is None else f"{w['ece']:.3f}"

    outcomes = ", ".join(f"{j['trigger_id']}: {j['outcome']}" for j in worker.log.jobs)
    return (
        f"retrain: {len(worker.log.jobs)} trigger(s) ({outcomes}){' [fallback trigger]' if fallback else ''}; "
        f"ECE before drift {ece('before_drift')}, during {ece('during_drift')}, after retrain "
        f"{ece('after_retrain')} (stale model there {ece('after_retrain_stale')}); current {data['current_version']}"
    )
