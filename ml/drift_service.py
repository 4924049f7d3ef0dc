"""The drift checking service: closed trades -> drift detector -> retrain triggers.

Closed trades are joined to the signals that opened them by ``order_id`` (never by position or by
symbol and side), replayed in ``closed_at`` order through a :class:`ml.drift.DriftDetector`
(the CUSUM on every trade, the windowed tests every ``check_every`` = 100 trades), and every new
detection is offered to the :class:`ml.triggers.TriggerQueue`; an accepted trigger is published at
once as a ``model.retrain.trigger`` event whose ``ts`` and ``triggered_at`` are the close time of
the trade that caused the detection (event time, never the wall clock).

The outcome of a trade is the signal's ``won`` (the predicted direction was right: what the
confidence claims to forecast); without a ``won`` column, ``pnl_usd > 0`` of the closed trade.
When ``model_version`` changes along the stream, the detector is reset (a new model is live).

Artifacts
---------
``drift``
    ``checks``: every statistic with its threshold at every check (per 100 trades), with the
    trade count and close time; ``detections``; ``thresholds``; ``join`` counts.
``retrain_triggers``
    :meth:`ml.triggers.TriggerQueue.to_dict`: every trigger with its ``outcome`` (``pending``
    until a retrain worker records ``promoted``/``rejected``/``failed``) and suppressed submissions.

Run ``python -m ml.drift_service [--trades PATH --signals PATH]`` (defaults: the demo files under
``DATA_DIR``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from infra.bus import TOPIC_RETRAIN, EventPublisher, new_event
from infra.cli import run_cli
from ml.drift import DriftDetector
from ml.triggers import RetrainTrigger, Submission, TriggerQueue

if TYPE_CHECKING:
    from scripts.pipeline import DemoContext

SOURCE = "ml.drift_service"
DEFAULT_MODEL = "signal-model"


def join_trades_to_signals(
    trades: pd.DataFrame, signals: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Join closed trades to their signals by ``order_id``; sort by ``closed_at``.

    Returns
    -------
    frame
        ``order_id``, ``closed_at`` (UTC), ``confidence`` (the signal's), ``won`` (bool),
        ``model`` (the signal's ``model_version`` if present), sorted by ``closed_at`` then
        ``order_id``.
    report
        Counts: ``trades``, ``signals``, ``matched``, ``unmatched_trades``, ``unmatched_signals``,
        and ``outcome_source``.

    Raises
    ------
    ValueError
        Missing columns, duplicate ``order_id`` in either frame, confidences outside [0, 1] or
        timestamps without a timezone.
    """
    for name, df, cols in (
        ("trades", trades, ("order_id", "closed_at")),
        ("signals", signals, ("order_id", "confidence")),
    ):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"The '{name}' frame of join_trades_to_signals is missing column(s) {missing}.")
        dup = df["order_id"][df["order_id"].duplicated()]
        if not dup.empty:
            raise ValueError(
                f"The '{name}' frame of join_trades_to_signals must have unique order_id values. "
                f"Got duplicates such as {dup.iloc[0]!r}."
            )
    if "won" in signals.columns:
        outcome_source = "signals.won"
        sig_cols = ["order_id", "confidence", "won"]
        tr_cols = ["order_id", "closed_at"]
    elif "pnl_usd" in trades.columns:
        outcome_source = "trades.pnl_usd > 0"
        sig_cols = ["order_id", "confidence"]
        tr_cols = ["order_id", "closed_at", "pnl_usd"]
    else:
        raise ValueError(
            "join_trades_to_signals needs an outcome: a 'won' column in signals or 'pnl_usd' in trades."
        )
    if "model_version" in signals.columns:
        sig_cols.append("model_version")
    closed = pd.to_datetime(trades["closed_at"])
    if closed.dt.tz is None:
        raise ValueError(
            "The 'closed_at' column of the trades frame must be timezone-aware UTC. Got naive timestamps."
        )
    left = trades[tr_cols].assign(closed_at=closed.dt.tz_convert("UTC"))
    merged = left.merge(signals[sig_cols], on="order_id", how="inner", validate="one_to_one")
    conf = pd.to_numeric(merged["confidence"], errors="coerce")
    bad = ~conf.between(0.0, 1.0)
    if bad.any():
        row = merged[bad].iloc[0]
        raise ValueError(
            f"The 'confidence' of signal for order_id {row['order_id']!r} must be in [0, 1]. "
            f"Got {row['confidence']!r} instead."
        )
    won = merged["won"].astype(bool) if outcome_source == "signals.won" else merged["pnl_usd"] > 0
    model = merged["model_version"].astype(str) if "model_version" in merged.columns else DEFAULT_MODEL
    out = pd.DataFrame(
        {
            "order_id": merged["order_id"].astype(str),
            "closed_at": merged["closed_at"],
            "confidence": conf.astype(float),
            "won": won.to_numpy(dtype=bool),
            "model": model,
        }
    ).sort_values(["closed_at", "order_id"], kind="stable", ignore_index=True)
    report = {
        "trades": len(trades),
        "signals": len(signals),
        "matched": len(out),
        "unmatched_trades": len(trades) - len(out),
        "unmatched_signals": len(signals) - len(out),
        "outcome_source": outcome_source,
    }
    return out, report


def _iso(ts: dt.datetime | pd.Timestamp) -> str:
    return pd.Timestamp(ts).tz_convert("UTC").isoformat().replace("+00:00", "Z")


def _finite(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


@dataclass
class DriftService:
    """Runs the detector over closed trades and turns detections into published triggers.

    Parameters
    ----------
    publisher
        Where ``model.retrain.trigger`` events go (any :class:`infra.bus.EventPublisher`).
    queue
        The trigger queue (default: a new one with a 24 h cooldown).
    detector_factory
        Builds a fresh detector (at start and when ``model_version`` changes).
    """

    publisher: EventPublisher
    queue: TriggerQueue = field(default_factory=TriggerQueue)
    detector_factory: Callable[[], DriftDetector] = DriftDetector
    checks: list[dict[str, Any]] = field(default_factory=list)
    detections: list[dict[str, Any]] = field(default_factory=list)
    published: list[dict[str, Any]] = field(default_factory=list)
    n_trades: int = 0
    model: str | None = None
    _detector: DriftDetector | None = field(default=None, repr=False)

    @property
    def detector(self) -> DriftDetector:
        if self._detector is None:
            self._detector = self.detector_factory()
        return self._detector

    def reset_detector(self) -> None:
        """Start the detector afresh (after a promoted retrain); history and triggers are kept."""
        self.detector.reset()

    def process_trade(
        self, *, order_id: str, closed_at: pd.Timestamp, confidence: float, won: bool, model: str
    ) -> None:
        """Feed one joined closed trade (in ``closed_at`` order)."""
        if self.model is not None and model != self.model:
            self.reset_detector()
        self.model = model
        det = self.detector
        seen = len(det.detections)
        last_check = det.last_check
        det.update(confidence, won)
        self.n_trades += 1
        if det.last_check is not last_check and det.last_check is not None:
            stats = {k: _finite(v) for k, v in det.last_check.to_dict().items()}
            stats["n_since_reset"] = stats.pop("n_trades")
            self.checks.append(
                {"n_trades": self.n_trades, "closed_at": _iso(closed_at), "model": model, **stats}
            )
        for record in det.detections[seen:]:
            self._on_detection(record.to_dict(), order_id=order_id, closed_at=closed_at, model=model)

    def _on_detection(
        self, info: dict[str, Any], *, order_id: str, closed_at: pd.Timestamp, model: str
    ) -> None:
        at = pd.Timestamp(closed_at).tz_convert("UTC").to_pydatetime()
        drift_info = {
            "kind": info["kind"],
            "statistic": info["statistic"],
            "value": _finite(info["value"]),
            "threshold": info["threshold"],
            "message": info["message"],
            "n_trades": info["n_trades"],
            "order_id": order_id,
        }
        sub: Submission = self.queue.submit(model=model, reason=info["kind"], drift_info=drift_info, at=at)
        self.detections.append(
            {
                **drift_info,
                "n_trades_total": self.n_trades,
                "closed_at": _iso(closed_at),
                "model": model,
                "trigger_status": sub.status,
                "trigger_id": sub.trigger.trigger_id if sub.trigger is not None else None,
            }
        )
        if sub.accepted and sub.trigger is not None:
            self._publish(sub.trigger)

    def _publish(self, trigger: RetrainTrigger) -> None:
        event = new_event(TOPIC_RETRAIN, trigger.payload(), ts=trigger.triggered_at)
        self.publisher.publish(TOPIC_RETRAIN, event)
        self.published.append(event)

    def run(self, joined: pd.DataFrame) -> DriftService:
        """Feed every row of :func:`join_trades_to_signals` output, in order. Returns ``self``."""
        for order_id, closed_at, conf, won, model in zip(
            joined["order_id"], joined["closed_at"], joined["confidence"], joined["won"], joined["model"]
        ):
            self.process_trade(
                order_id=order_id, closed_at=closed_at, confidence=float(conf), won=bool(won), model=model
            )
        return self

    def drift_artifact(self, join_report: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``drift`` artifact's data."""
        det = self.detector
        th = det.thresholds_
        return {
            "model": self.model,
            "n_trades": self.n_trades,
            "check_every": det.check_every,
            "thresholds": {
                "cusum": th.cusum,
                "spiegelhalter_z": th.spiegelhalter_z,
                "ks_d": th.ks_d,
                "high_conf_win_rate": det.high_confidence_min_win_rate,
                "high_confidence": det.high_confidence,
                "config": asdict(th.config),
                "n_sims": th.n_sims,
                "seed": th.seed,
            },
            "checks": self.checks,
            "detections": self.detections,
            "join": join_report or {},
        }


def run_files(
    trades_path: Path, signals_path: Path, publisher: EventPublisher
) -> tuple[DriftService, dict[str, Any]]:
    """Load both Parquet/CSV files, join them, and run a fresh service over them."""
    from infra.loaders import read_frame

    trades = read_frame(trades_path)
    signals = read_frame(signals_path)
    joined, report = join_trades_to_signals(trades, signals)
    return DriftService(publisher=publisher).run(joined), report


def summary(service: DriftService, report: dict[str, Any]) -> str:
    found = ", ".join(
        f"{d['kind']} at trade {d['n_trades_total']} ({d['closed_at']}, {d['trigger_status']})"
        for d in service.detections
    )
    return (
        f"{report['matched']} trades joined ({report['unmatched_trades']} without signal), "
        f"{len(service.checks)} checks, detections: {found or 'none'}; {len(service.published)} trigger(s) published"
    )


def write_artifacts(service: DriftService, report: dict[str, Any], store: Any) -> None:
    store.write("drift", service.drift_artifact(report), source=SOURCE)
    store.write("retrain_triggers", service.queue.to_dict(), source=SOURCE)


def demo_step(ctx: DemoContext) -> str:
    """Demo pipeline step: replay the demo trades and signals, publish to ``ctx.bus``, write artifacts."""
    service, report = run_files(ctx.trades_path, ctx.signals_path, ctx.bus)
    write_artifacts(service, report, ctx.store)
    return summary(service, report)


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
    args = parser.parse_args(argv)
    for label, path in (("--trades", args.trades), ("--signals", args.signals)):
        if not path.exists():
            parser.error(
                f"{label} file {path} does not exist (run `python -m scripts.demo` to create demo data)"
            )
    bus = connect_bus()
    service, report = run_files(args.trades, args.signals, bus)
    write_artifacts(service, report, open_store(settings))
    print(summary(service, report))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="python -m ml.drift_service"))
