"""Drift monitoring state: closed trades joined to their signals, one detector per model version.

Closed trades are joined to the signals that opened them by ``order_id`` (never by position or by
symbol and side) and replayed in ``closed_at`` order through a :class:`ml.drift.DriftDetector`
(the CUSUM on every trade, the windowed tests every ``check_every`` = 100 trades); every new
detection is offered to the :class:`ml.triggers.TriggerQueue`, and an accepted trigger is
published at once as a ``model.retrain.trigger`` event whose ``ts`` and ``triggered_at`` are the
close time of the trade that caused the detection (event time, never the wall clock).

The outcome of a trade is the signal's ``won`` (the predicted direction was right: what the
confidence claims to forecast); without a ``won`` column, ``pnl_usd > 0`` of the closed trade.
One model, one detector: every model version has its own detector. The retrain worker's job
records are replayed at their decision times: a decided job resolves its trigger in the queue, and
a promotion supersedes the model the trigger named (its history stays, greyed in the Drift tab; it
raises no more triggers) while the promoted version starts from zero.

The job around it (files, artifacts, the command line and the bus mode) is :mod:`ml.drift_service`.

Why this file is long: :class:`DriftService` is one state machine (detectors per model version, the
trigger queue, the replay of retrain outcomes and supersession) and its join; the job around it
lives in :mod:`ml.drift_service`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from infra.bus import TOPIC_RETRAIN, EventPublisher, new_event
from infra.timeutil import utc_iso
from ml.drift import DriftDetector
from ml.triggers import RetrainTrigger, Submission, TriggerQueue

log = logging.getLogger(__name__)

DEFAULT_MODEL = "signal-model"
MAX_CHECKS = 2_000
"""Checks kept (the newest): 200,000 trades at one check per 100. A long-running service must not
grow its state and its ``drift`` artifact with every check (the one-hour soak: 1,800 checks,
~1 MB rewritten on every save, growing for as long as it ran)."""


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


def _finite(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


@dataclass(frozen=True)
class JobOutcome:
    """A retrain job's outcome as the drift service uses it (from ``retrain_jobs``)."""

    trigger_id: str
    outcome: str
    at: pd.Timestamp
    """Event time of the decision (``decided_at``, else the trigger time)."""
    model_ref: str
    """The model the trigger named (the stream key of the detector that raised it)."""
    model: str | None
    """The registry's model name the worker resolved ``model_ref`` to."""
    new_version: str | None
    note: str
    metrics: dict[str, Any] | None

    @classmethod
    def from_job(cls, job: dict[str, Any]) -> JobOutcome | None:
        outcome = job.get("outcome")
        when = job.get("decided_at") or job.get("triggered_at")
        if outcome not in ("promoted", "rejected", "failed") or not job.get("trigger_id") or not when:
            return None
        validation = job.get("validation")
        metrics = validation.get("metrics") if isinstance(validation, dict) else None
        new = job.get("new_version") if outcome == "promoted" else None
        return cls(
            trigger_id=str(job["trigger_id"]),
            outcome=str(outcome),
            at=pd.Timestamp(when).tz_convert("UTC"),
            model_ref=str(job.get("model_ref") or job.get("model") or ""),
            model=None if job.get("model") is None else str(job["model"]),
            new_version=None if not new else str(new),
            note=str(job.get("note", ""))[:500],
            metrics=dict(metrics) if isinstance(metrics, dict) else None,
        )


@dataclass
class ModelState:
    """One model version's detector and its history (one model, one detector)."""

    model: str
    detector: DriftDetector
    first_trade_at: str | None = None
    last_trade_at: str | None = None
    n_trades: int = 0
    live_from: str | None = None
    """When a promotion made this version live (``None``: live before the stream began)."""
    superseded_at: str | None = None
    superseded_by: str | None = None

    def summary(self, current: str | None) -> dict[str, Any]:
        det = self.detector
        stats = det.state()
        return {
            "model": self.model,
            "status": "current" if self.model == current else "superseded",
            "n_trades": self.n_trades,
            "first_trade_at": self.first_trade_at,
            "last_trade_at": self.last_trade_at,
            "live_from": self.live_from,
            "superseded_at": self.superseded_at,
            "superseded_by": self.superseded_by,
            "state": {k: _finite(v) for k, v in stats.items()},
            "detections": [r.kind for r in det.detections],
        }


@dataclass
class DriftService:
    """Runs one detector per model version over closed trades; detections become published triggers.

    Parameters
    ----------
    publisher
        Where ``model.retrain.trigger`` events go (any :class:`infra.bus.EventPublisher`).
    queue
        The trigger queue (default: a new one with a 24 h cooldown).
    detector_factory
        Builds a fresh detector for each model version.
    jobs
        The retrain worker's records (``retrain_jobs`` data ``jobs``), read-only. Each decided
        job resolves its trigger in the queue at its decision time (event time); a promoted job
        supersedes the model its trigger named: that model's detector keeps its history (and
        stops raising triggers), the promoted version gets a detector starting from zero. Trades
        whose signal names the replaced version stay with it; when the signals name only the
        registry's model (``model_ref`` equal to the job's ``model``, no version), trades closing
        after the promotion go to the promoted version.
    """

    publisher: EventPublisher
    queue: TriggerQueue = field(default_factory=TriggerQueue)
    detector_factory: Callable[[], DriftDetector] = DriftDetector
    jobs: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    detections: list[dict[str, Any]] = field(default_factory=list)
    published: list[dict[str, Any]] = field(default_factory=list)
    n_trades: int = 0
    model: str | None = None
    """The model version of the latest trade (after routing)."""
    models: dict[str, ModelState] = field(default_factory=dict)
    _pending_jobs: list[JobOutcome] = field(default_factory=list, repr=False)
    _route: dict[str, str] = field(default_factory=dict, repr=False)
    _superseded: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        outcomes = [o for o in (JobOutcome.from_job(j) for j in self.jobs) if o is not None]
        self._pending_jobs = sorted(outcomes, key=lambda o: o.at)
        self._handled = {o.trigger_id for o in outcomes}

    def _state(self, model: str) -> ModelState:
        st = self.models.get(model)
        if st is None:
            st = self.models[model] = ModelState(model=model, detector=self.detector_factory())
        return st

    @property
    def detector(self) -> DriftDetector:
        """The detector of the current model (a fresh one before any trade)."""
        return self._state(self.current_model or DEFAULT_MODEL).detector

    @property
    def current_model(self) -> str | None:
        """The live model: the latest trade's model, followed through later promotions."""
        key = self.model
        seen: set[str] = set()
        while key is not None and key in self._superseded and key not in seen:
            seen.add(key)
            key = self._superseded[key]
        return key

    def reset_detector(self) -> None:
        """Start the current model's detector afresh; history and triggers are kept."""
        self.detector.reset()

    def apply_jobs(self, until: pd.Timestamp | None = None) -> None:
        """Apply the retrain outcomes decided at or before ``until`` (all when ``None``)."""
        while self._pending_jobs and (until is None or self._pending_jobs[0].at <= until):
            job = self._pending_jobs.pop(0)
            try:
                trig = self.queue.get(job.trigger_id)
            except KeyError:
                trig = None
            if trig is not None and trig.outcome == "pending":
                self.queue.resolve(
                    job.trigger_id,
                    job.outcome,  # type: ignore[arg-type]
                    at=job.at.to_pydatetime(),
                    note=job.note,
                    metrics=job.metrics,
                    new_version=job.new_version,
                )
            if job.outcome == "promoted" and job.new_version and job.model_ref:
                old, new, at = job.model_ref, job.new_version, utc_iso(job.at)
                self._superseded[old] = new
                if old in self.models:
                    self.models[old].superseded_at, self.models[old].superseded_by = at, new
                self._state(new).live_from = at
                if job.model is not None and job.model_ref == job.model:
                    self._route[old] = new  # version-less signals: the live version serves them

    def add_jobs(self, jobs: list[dict[str, Any]]) -> None:
        """Queue retrain outcomes not seen before (bus mode re-reads ``retrain_jobs``)."""
        new = [
            o
            for o in (JobOutcome.from_job(j) for j in jobs)
            if o is not None and o.trigger_id not in self._handled
        ]
        if new:
            self._pending_jobs = sorted([*self._pending_jobs, *new], key=lambda o: o.at)
            self._handled.update(o.trigger_id for o in new)

    def _route_model(self, model: str) -> str:
        seen: set[str] = set()
        while model in self._route and model not in seen:
            seen.add(model)
            model = self._route[model]
        return model

    def process_trade(
        self, *, order_id: str, closed_at: pd.Timestamp, confidence: float, won: bool, model: str
    ) -> None:
        """Feed one joined closed trade (in ``closed_at`` order) to its model version's detector."""
        self.apply_jobs(pd.Timestamp(closed_at))
        model = self._route_model(model)
        self.model = model
        st = self._state(model)
        det = st.detector
        seen = len(det.detections)
        last_check = det.last_check
        det.update(confidence, won)
        self.n_trades += 1
        st.n_trades += 1
        at = utc_iso(closed_at)
        st.first_trade_at = st.first_trade_at or at
        st.last_trade_at = at
        if det.last_check is not last_check and det.last_check is not None:
            stats = {k: _finite(v) for k, v in det.last_check.to_dict().items()}
            stats["n_since_reset"] = stats.pop("n_trades")
            self.checks.append({"n_trades": self.n_trades, "closed_at": at, "model": model, **stats})
            if len(self.checks) > MAX_CHECKS:
                del self.checks[: len(self.checks) - MAX_CHECKS]
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
        record = {
            **drift_info,
            "n_trades_total": self.n_trades,
            "closed_at": utc_iso(closed_at),
            "model": model,
            "trigger_status": "superseded",
            "trigger_id": None,
        }
        if model in self._superseded:  # a replaced model: recorded, no retrain asked for
            self.detections.append(record)
            return
        sub: Submission = self.queue.submit(model=model, reason=info["kind"], drift_info=drift_info, at=at)
        record["trigger_status"] = sub.status
        record["trigger_id"] = sub.trigger.trigger_id if sub.trigger is not None else None
        self.detections.append(record)
        if sub.accepted and sub.trigger is not None and sub.trigger.trigger_id not in self._handled:
            self._publish(sub.trigger)  # a trigger the worker already decided is not sent again

    def _publish(self, trigger: RetrainTrigger) -> None:
        event = new_event(
            TOPIC_RETRAIN, trigger.payload(), ts=trigger.triggered_at, event_id=trigger.trigger_id
        )
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
        self.apply_jobs()
        return self

    def drift_artifact(self, join_report: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``drift`` artifact's data."""
        current = self.current_model
        det = self.detector
        th = det.thresholds_
        return {
            "model": current,
            "current_model": current,
            "models": [st.summary(current) for st in self.models.values()],
            "n_trades": self.n_trades,
            "check_every": det.check_every,
            "thresholds": {
                **det.threshold_table(),
                "high_conf_win_rate": det.high_confidence_min_win_rate,
                "high_confidence": det.high_confidence,
                "config": asdict(th.config),
                "n_sims": th.n_sims,
                "seed": th.seed,
            },
            "power": det.power(),
            "checks": self.checks,
            "detections": self.detections,
            "join": join_report or {},
        }
