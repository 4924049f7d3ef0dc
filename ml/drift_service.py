"""The drift checking service: closed trades -> drift detector -> retrain triggers (the job).

The monitoring state (the join by ``order_id``, one detector per model version, the trigger queue
and the replay of the retrain worker's outcomes) is :class:`ml.drift_monitor.DriftService`; this
module feeds it from files (one batch) or from the bus (:mod:`ml.drift_bus`) and writes its
artifacts. The retrain worker's ``retrain_jobs`` is read here, never written.

Artifacts
---------
``drift``
    ``checks``: every statistic with its threshold at every check (per 100 trades), with the
    trade count and close time (the newest :data:`ml.drift_monitor.MAX_CHECKS`, 2,000: 200,000
    trades); ``detections``; ``thresholds``; ``join`` counts.
``retrain_triggers``
    :meth:`ml.triggers.TriggerQueue.to_dict`: every trigger with its ``outcome`` (``pending``
    until ``retrain_jobs`` holds the worker's ``promoted``/``rejected``/``failed``, copied here
    on the next run) and suppressed submissions. This service is the artifact's only writer.

Run ``python -m ml.drift_service [--trades PATH --signals PATH]`` (defaults: the demo files under
``DATA_DIR``): one batch over the files. ``python -m ml.drift_service --bus redis://...`` (or
``--bus`` alone: ``EVENTBUS_URL``) runs it as a long-running bus service (:mod:`ml.drift_bus`).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from infra.bus import EventPublisher
from infra.cli import run_cli
from ml.drift_monitor import DriftService, join_trades_to_signals

log = logging.getLogger(__name__)

SOURCE = "ml.drift_service"
JOBS_ARTIFACT = "retrain_jobs"


def read_jobs(store: Any) -> list[dict[str, Any]]:
    """The retrain worker's job records (``retrain_jobs``; read-only here). Empty when absent."""
    res = store.read(JOBS_ARTIFACT)
    jobs = res.data.get("jobs") if res.envelope is not None and isinstance(res.data, dict) else None
    return [dict(j) for j in jobs if isinstance(j, dict)] if isinstance(jobs, list) else []


def run_files(
    trades_path: Path, signals_path: Path, publisher: EventPublisher, *, store: Any = None
) -> tuple[DriftService, dict[str, Any]]:
    """Load both Parquet/CSV files, join them, and run a fresh service over them.

    With a ``store``, the retrain worker's ``retrain_jobs`` are read (never written) so retrain
    outcomes and promotions are replayed at their event times.
    """
    from infra.loaders import read_frame

    trades = read_frame(trades_path)
    signals = read_frame(signals_path)
    joined, report = join_trades_to_signals(trades, signals)
    jobs = read_jobs(store) if store is not None else []
    return DriftService(publisher=publisher, jobs=jobs).run(joined), report


def summary(service: DriftService, report: dict[str, Any]) -> str:
    found = ", ".join(
        f"{d['kind']} at trade {d['n_trades_total']} ({d['closed_at']}, {d['model']}, {d['trigger_status']})"
        for d in service.detections
    )
    cur = service.current_model
    st = service.models.get(cur) if cur is not None else None
    return (
        f"{report['matched']} trades joined ({report['unmatched_trades']} without signal), "
        f"{len(service.checks)} checks, detections: {found or 'none'}; {len(service.published)} trigger(s) published; "
        f"current model {cur} ({st.n_trades if st else 0} trades since it went live)"
    )


def write_artifacts(service: DriftService, report: dict[str, Any], store: Any) -> None:
    """Write the service's own artifacts (``drift``, ``retrain_triggers``); never ``retrain_jobs``."""
    store.write("drift", service.drift_artifact(report), source=SOURCE)
    store.write("retrain_triggers", service.queue.to_dict(), source=SOURCE)


def _main_bus(
    url: str,
    *,
    consumer: str,
    state: Path | None,
    checkpoint_every: int = 1_000,
    checkpoint_s: float = 2.0,
    until_idle: bool = False,
) -> int:
    """``python -m ml.drift_service --bus URL``: run until SIGTERM/SIGINT."""
    from infra.bus import connect_bus, stop_on_signals
    from infra.prom import make_metrics, start_service_metrics
    from infra.settings import load_settings
    from infra.store import open_store
    from ml.drift_bus import GROUP, TOPICS, DriftBusHandler, run_bus

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    store = open_store(settings)
    bus = connect_bus(url)
    path = state or Path(settings.logs_dir) / "state" / "drift_service.pkl"
    handler = DriftBusHandler(
        DriftService(publisher=bus, jobs=read_jobs(store)),
        state_path=path,
        store=store,
        checkpoint_every=checkpoint_every,
        checkpoint_s=checkpoint_s,
        read_jobs=read_jobs,
        write=write_artifacts,
    )
    if handler.load_state():
        log.info("drift service: restored %d trades from %s", handler.service.n_trades, path)
    stop = stop_on_signals("drift service")
    server = start_service_metrics(
        make_metrics(),
        "drift_service",
        bus=bus,
        topics=TOPICS,
        settings=settings,
        stats=lambda: {k: v for k, v in asdict(handler.stats).items() if isinstance(v, int)},
    )
    log.info("drift service: consuming %s as %s/%s on %s", TOPICS, GROUP, consumer, url)
    try:
        stats = run_bus(bus, handler, consumer=consumer, stop=stop, until_idle=until_idle)
    finally:
        if server is not None:
            server.shutdown()
        bus.close()
    log.info("drift service stopped: %s; join %s", stats.as_dict(), asdict(handler.stats))
    return 0


def main(argv: list[str] | None = None) -> int:
    from infra.bus import connect_bus
    from infra.settings import load_settings
    from infra.store import open_store

    settings = load_settings()
    parser = argparse.ArgumentParser(
        description="Check closed trades for model drift and publish retrain triggers."
    )
    parser.add_argument("--trades", type=Path, default=settings.data_dir / "trades.parquet")
    parser.add_argument("--signals", type=Path, default=settings.data_dir / "signals.parquet")
    parser.add_argument("--bus", nargs="?", const="", default=None, metavar="URL",
                        help="run as a long-running bus service (URL, or EVENTBUS_URL when empty)")  # fmt: skip
    parser.add_argument("--consumer", default="drift-1", help="consumer name in group drift-service (--bus)")
    parser.add_argument("--state", type=Path, default=None, help="checkpoint file (--bus)")
    parser.add_argument("--checkpoint-every", type=int, default=1000, help="messages per checkpoint (--bus)")
    parser.add_argument("--checkpoint-s", type=float, default=2.0, help="longest wait between checkpoints")
    args = parser.parse_args(argv)
    if args.bus is not None:
        return _main_bus(
            args.bus or settings.eventbus_url,
            consumer=args.consumer,
            state=args.state,
            checkpoint_every=args.checkpoint_every,
            checkpoint_s=args.checkpoint_s,
        )
    for label, path in (("--trades", args.trades), ("--signals", args.signals)):
        if not path.exists():
            parser.error(
                f"{label} file {path} does not exist (run `python -m scripts.demo` to create demo data)"
            )
    bus = connect_bus()
    store = open_store(settings)
    service, report = run_files(args.trades, args.signals, bus, store=store)
    write_artifacts(service, report, store)
    print(summary(service, report))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="python -m ml.drift_service"))
