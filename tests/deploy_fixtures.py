"""The learning loop in one process with every /metrics endpoint the deployment scrapes.

:func:`run_loop` replays synthetic trades through the real feedback bridge and the real online
trainer on a :class:`~infra.bus.MemoryBus`, runs the real drift service over a synthetic
stream with an accuracy drop (it writes the ``drift`` and ``retrain_triggers`` artifacts), writes
a ``retrain_jobs`` artifact in the retrain worker's own format (:class:`ml.retrain_worker.JobLog`;
training a model here would take minutes) and builds the three services' metrics exactly as their
``main()`` does, with :func:`infra.prom.start_service_metrics`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from execution.feedback_bridge import FeedbackBridge
from infra.artifacts import ArtifactStore
from infra.bus import TOPIC_EXECUTION, TOPIC_FEEDBACK, TOPIC_POSITION, TOPIC_RETRAIN, MemoryBus
from infra.prom import Metrics, make_metrics, render, start_service_metrics
from infra.settings import Settings
from ml.drift_monitor import DriftService
from ml.drift_scenarios import accuracy_drop
from ml.drift_service import write_artifacts
from ml.retrain_worker import JobLog
from sim.replay import replay, trade_events
from tests.feedback_fixtures import make_trades

ROOT = Path(__file__).resolve().parent.parent
METRIC_RE = re.compile(r"\bquantum_[A-Za-z0-9_:]+")


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (ours all start with ``quantum_``; plus ``up``).

    >>> sorted(promql_metric_names('sum(rate(quantum_a_total{x="quantum_not"}[5m])) / up'))
    ['quantum_a_total', 'up']
    """
    no_strings = re.sub(r'"[^"]*"', '""', expr)
    names = set(METRIC_RE.findall(no_strings))
    if re.search(r"(?<![A-Za-z0-9_])up(?![A-Za-z0-9_(])", no_strings):
        names.add("up")
    return names


def sample_names(text: str) -> set[str]:
    return {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}


def declared_names(m: Metrics) -> set[str]:
    """Every sample name the metrics of :func:`infra.prom.make_metrics` can emit (labelled or not)."""
    out = set()
    for fam in m.registry.collect():
        if fam.type == "counter":
            out |= {fam.name + "_total", fam.name + "_created"}
        elif fam.type == "histogram":
            out |= {fam.name + s for s in ("_bucket", "_sum", "_count", "_created")}
        elif fam.type == "gauge":
            out.add(fam.name)
    return out


@dataclass
class Loop:
    settings: Settings
    bus: MemoryBus
    bridge: Metrics
    trainer: Metrics
    worker: Metrics
    feedback: list[dict[str, Any]]
    servers: list[Any] = field(default_factory=list)

    def texts(self) -> dict[str, str]:
        return {
            "feedback_bridge": render(self.bridge).decode(),
            "trainer": render(self.trainer).decode(),
            "retrain_worker": render(self.worker).decode(),
        }

    def exported_names(self) -> set[str]:
        """Sample names the three services export, plus every name :func:`make_metrics` declares."""
        names = declared_names(self.trainer)
        for text in self.texts().values():
            names |= sample_names(text)
        return names

    def close(self) -> None:
        for s in self.servers:
            s.shutdown()


def run_loop(tmp_path: Path, *, n_trades: int = 100, serve: bool = False, train: bool = True) -> Loop:
    """Replay, bridge, train, drift-check; ``serve`` also starts the three /metrics servers (port 0).

    ``train=False`` skips the PPO trainer (its metrics are then only declared, not filled).
    """

    settings = Settings(
        logs_dir=tmp_path / "logs",
        cache_dir=tmp_path / "logs" / "cache",
        research_dir=tmp_path / "logs" / "research",
        data_dir=tmp_path / "logs" / "data",
    )
    bus = MemoryBus()
    port = 0 if serve else -1
    replay(bus, trade_events(make_trades(n_trades, seed=7), updates_per_trade=2, malformed=3, seed=7))
    bridge = FeedbackBridge(bus, block_ms=0)
    bm, tm, wm = make_metrics(), make_metrics(), make_metrics()
    servers = [
        start_service_metrics(
            bm,
            "feedback_bridge",
            bus=bus,
            topics=(TOPIC_EXECUTION, TOPIC_POSITION, TOPIC_FEEDBACK),
            settings=settings,
            stats=lambda: bridge.stats.as_dict(),
            port=port,
        ),
        start_service_metrics(tm, "trainer", bus=bus, topics=(TOPIC_FEEDBACK,), settings=settings, port=port),
    ]
    bridge.run(until_idle=True)
    if train:
        import torch

        from research.rl_sizer.ppo_sizer import PPOSizer
        from research.rl_sizer.trainer import OnlineTrainer, TrainerConfig

        torch.set_num_threads(1)  # as the trainer's main() does
        cfg = TrainerConfig()
        trainer = OnlineTrainer(PPOSizer(cfg.state_dim, seed=0), config=cfg, metrics=tm, keep_history=False)
        trainer.run(bus, block_ms=0, until_idle=True)

    store = ArtifactStore(settings.cache_dir)
    conf, won = accuracy_drop(1500, change_at=900, seed=3, drop=0.25)
    t0 = pd.Timestamp("2025-03-01", tz="UTC")
    joined = pd.DataFrame(
        {
            "order_id": [f"d-{i}" for i in range(len(conf))],
            "closed_at": t0 + pd.to_timedelta(range(len(conf)), unit="min"),
            "confidence": conf,
            "won": won,
            "model": "v1",
        }
    )
    service = DriftService(publisher=bus).run(joined)
    write_artifacts(service, {}, store)
    decided = dt.datetime(2025, 3, 2, 12, tzinfo=dt.UTC)
    jobs = JobLog()
    for i, outcome in enumerate(("promoted", "rejected", "promoted")):
        jobs.add(
            {
                "trigger_id": f"t-{i}",
                "outcome": outcome,
                "decided_at": (decided + dt.timedelta(hours=i)).isoformat().replace("+00:00", "Z"),
                "new_version": f"v{i + 2}" if outcome == "promoted" else None,
            }
        )
    store.write("retrain_jobs", jobs.to_dict(), source="tests.deploy_fixtures")
    servers.append(
        start_service_metrics(
            wm,
            "retrain_worker",
            bus=bus,
            topics=(TOPIC_RETRAIN,),
            settings=settings,
            clm_artifacts=True,
            port=port,
        )
    )
    loop = Loop(settings, bus, bm, tm, wm, bus.events(TOPIC_FEEDBACK), [s for s in servers if s is not None])
    return loop
