"""The retrain trigger queue: dedupe, cooldown, history and outcomes.

Pure bookkeeping: time is passed in (``at``, the event time of the trade that caused the
trigger), nothing is read from the wall clock, nothing is written. The checking service
(:mod:`ml.drift_service`) submits detections and publishes accepted triggers; a retrain worker
takes :meth:`TriggerQueue.pending` triggers, retrains, and records the outcome with
:meth:`TriggerQueue.resolve`. The whole queue round-trips through :meth:`TriggerQueue.to_dict`
/ :meth:`TriggerQueue.from_dict`, which is the ``retrain_triggers`` artifact's ``data``.

Rules
-----
* **Dedupe**: while a trigger for ``(model, reason)`` is ``pending``, another submission with the
  same model and reason is a ``duplicate``: nothing is published, the pending trigger's
  ``duplicates`` count goes up.
* **Cooldown**: a submission is refused (``cooldown``) when the model's latest accepted trigger of
  the same or higher priority was triggered less than ``cooldown`` before ``at`` (whatever its
  outcome). A high-priority trigger is therefore never held back by a recent low-priority one.
* **Outcomes**: ``pending`` until the worker resolves it as ``promoted`` (new model live),
  ``rejected`` (retrained model not better) or ``failed`` (retrain crashed). The worker also
  records the validation ``metrics`` (per metric: current, candidate, ``diff`` and its bootstrap
  CI ``ci_low``/``ci_high``) and, for a promotion, the ``new_version`` that went live at
  ``resolved_at``. Histories written before these fields existed load with ``None`` for both.

Examples
--------
>>> import datetime as dt
>>> q = TriggerQueue(cooldown=dt.timedelta(hours=6))
>>> t0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
>>> q.submit(model="m", reason="accuracy_drift", drift_info={}, at=t0).status
'accepted'
>>> q.submit(model="m", reason="accuracy_drift", drift_info={}, at=t0 + dt.timedelta(hours=1)).status
'duplicate'
>>> tid = q.pending()[0].trigger_id
>>> q.resolve(tid, "promoted", at=t0 + dt.timedelta(hours=2)).outcome
'promoted'
>>> q.submit(model="m", reason="accuracy_drift", drift_info={}, at=t0 + dt.timedelta(hours=3)).status
'cooldown'

Why this file is long: the trigger, its submission result and the queue (dedupe, cooldown,
history, outcomes) are one contract with its serialisation.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from infra.timeutil import parse_utc, utc_iso

Outcome = Literal["pending", "promoted", "rejected", "failed"]
OUTCOMES: tuple[str, ...] = ("pending", "promoted", "rejected", "failed")
Priority = Literal["high", "normal"]
PRIORITY_RANK: dict[str, int] = {"high": 2, "normal": 1}
PRIORITY_BY_REASON: dict[str, Priority] = {
    "accuracy_drift": "high",
    "calibration_drift": "high",
    "distribution_shift": "normal",
}
SubmitStatus = Literal["accepted", "duplicate", "cooldown"]


def _require_utc(ts: dt.datetime, what: str) -> dt.datetime:
    if not isinstance(ts, dt.datetime) or ts.tzinfo is None:
        raise ValueError(f"The '{what}' must be a timezone-aware datetime. Got {ts!r} instead.")
    return ts.astimezone(dt.UTC)


@dataclass(frozen=True)
class RetrainTrigger:
    """One accepted request to retrain ``model``."""

    trigger_id: str
    model: str
    reason: str
    """The drift kind: ``accuracy_drift``, ``calibration_drift`` or ``distribution_shift``."""
    drift_info: Mapping[str, Any]
    """kind, statistic, value, threshold, message, n_trades (see :class:`ml.drift.DriftRecord`)."""
    priority: Priority
    triggered_at: dt.datetime
    """Close time of the trade that caused the detection (event time, UTC)."""
    outcome: Outcome = "pending"
    resolved_at: dt.datetime | None = None
    note: str = ""
    duplicates: int = 0
    """Submissions deduplicated into this trigger while it was pending."""
    metrics: Mapping[str, Any] | None = None
    """Validation metrics of the retrain (e.g. ``{"brier": {"current", "candidate", "diff",
    "ci_low", "ci_high"}, ...}``, see :class:`ml.retrain_validation.MetricComparison`), or ``None``."""
    new_version: str | None = None
    """The model version promoted by this trigger's retrain (live from ``resolved_at``), or ``None``."""

    def payload(self) -> dict[str, Any]:
        """The ``model.retrain.trigger`` event payload (without the envelope)."""
        return {
            "trigger_id": self.trigger_id,
            "model": self.model,
            "reason": self.reason,
            "drift_info": dict(self.drift_info),
            "priority": self.priority,
            "triggered_at": utc_iso(self.triggered_at),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.payload(),
            "outcome": self.outcome,
            "resolved_at": None if self.resolved_at is None else utc_iso(self.resolved_at),
            "note": self.note,
            "duplicates": self.duplicates,
            "metrics": None if self.metrics is None else copy.deepcopy(dict(self.metrics)),
            "new_version": self.new_version,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RetrainTrigger:
        outcome = d.get("outcome", "pending")
        if outcome not in OUTCOMES:
            raise ValueError(
                f"The 'outcome' of retrain trigger {d.get('trigger_id')!r} must be one of {OUTCOMES}. Got {outcome!r}."
            )
        priority = d.get("priority", "normal")
        if priority not in PRIORITY_RANK:
            raise ValueError(
                f"The 'priority' of retrain trigger {d.get('trigger_id')!r} must be one of "
                f"{tuple(PRIORITY_RANK)}. Got {priority!r}."
            )
        metrics = d.get("metrics")
        if metrics is not None and not isinstance(metrics, Mapping):
            raise ValueError(
                f"The 'metrics' of retrain trigger {d.get('trigger_id')!r} must be an object or null. "
                f"Got {metrics!r}."
            )
        new_version = d.get("new_version")
        return cls(
            trigger_id=str(d["trigger_id"]),
            model=str(d["model"]),
            reason=str(d["reason"]),
            drift_info=dict(d.get("drift_info") or {}),
            priority=priority,
            triggered_at=parse_utc(str(d["triggered_at"])),
            outcome=outcome,
            resolved_at=None if d.get("resolved_at") is None else parse_utc(str(d["resolved_at"])),
            note=str(d.get("note", "")),
            duplicates=int(d.get("duplicates", 0)),
            metrics=None if metrics is None else copy.deepcopy(dict(metrics)),
            new_version=None if new_version is None else str(new_version),
        )


@dataclass(frozen=True)
class Submission:
    """What :meth:`TriggerQueue.submit` did with a detection."""

    status: SubmitStatus
    trigger: RetrainTrigger | None
    """The new trigger (accepted), or the one that blocked it (duplicate/cooldown)."""
    message: str

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


@dataclass
class TriggerQueue:
    """Retrain triggers with dedupe, cooldown and a bounded history (see module docstring).

    Parameters
    ----------
    cooldown
        Minimum event time between two accepted triggers of the same model (and priority).
    history_limit
        Resolved triggers kept (oldest dropped first); pending ones are always kept.
    suppressed_limit
        Suppressed submissions kept for the record.
    """

    cooldown: dt.timedelta = dt.timedelta(hours=24)
    history_limit: int = 500
    suppressed_limit: int = 200
    _triggers: list[RetrainTrigger] = field(default_factory=list, repr=False)
    _suppressed: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.cooldown, dt.timedelta) or self.cooldown < dt.timedelta(0):
            raise ValueError(
                f"The 'cooldown' of TriggerQueue must be a timedelta >= 0. Got {self.cooldown!r} instead."
            )
        for name in ("history_limit", "suppressed_limit"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"The '{name}' of TriggerQueue must be an int >= 0. Got {value!r} instead.")

    # -- submitting -----------------------------------------------------------------------

    def submit(
        self,
        *,
        model: str,
        reason: str,
        drift_info: Mapping[str, Any],
        at: dt.datetime,
        priority: Priority | None = None,
    ) -> Submission:
        """Offer a detection; returns whether it became a new trigger and why (not)."""
        at = _require_utc(at, "at of TriggerQueue.submit")
        if not model:
            raise ValueError(
                f"The 'model' of TriggerQueue.submit must be a non-empty string. Got {model!r} instead."
            )
        if priority is None:
            if reason not in PRIORITY_BY_REASON:
                raise ValueError(
                    f"The 'reason' of TriggerQueue.submit must be one of {tuple(PRIORITY_BY_REASON)} "
                    f"when no priority is given. Got {reason!r} instead."
                )
            priority = PRIORITY_BY_REASON[reason]
        if priority not in PRIORITY_RANK:
            raise ValueError(
                f"The 'priority' of TriggerQueue.submit must be one of {tuple(PRIORITY_RANK)}. Got {priority!r} instead."
            )
        for i, t in enumerate(self._triggers):
            if t.outcome == "pending" and t.model == model and t.reason == reason:
                bumped = replace(t, duplicates=t.duplicates + 1)
                self._triggers[i] = bumped
                return self._suppress(
                    "duplicate", bumped, model, reason, at, f"trigger {t.trigger_id} is still pending"
                )
        rank = PRIORITY_RANK[priority]
        recent = [t for t in self._triggers if t.model == model and PRIORITY_RANK[t.priority] >= rank]
        if recent:
            last = max(recent, key=lambda t: t.triggered_at)
            if at - last.triggered_at < self.cooldown:
                return self._suppress(
                    "cooldown",
                    last,
                    model,
                    reason,
                    at,
                    f"trigger {last.trigger_id} fired at {utc_iso(last.triggered_at)}, less than "
                    f"{self.cooldown} before {utc_iso(at)}",
                )
        trigger = RetrainTrigger(
            trigger_id=self._new_id(model, reason, at),
            model=model,
            reason=reason,
            drift_info=dict(drift_info),
            priority=priority,
            triggered_at=at,
        )
        self._triggers.append(trigger)
        self._trim()
        return Submission("accepted", trigger, f"new trigger {trigger.trigger_id}")

    def _suppress(
        self,
        status: SubmitStatus,
        blocker: RetrainTrigger,
        model: str,
        reason: str,
        at: dt.datetime,
        why: str,
    ) -> Submission:
        self._suppressed.append(
            {
                "model": model,
                "reason": reason,
                "at": utc_iso(at),
                "status": status,
                "blocked_by": blocker.trigger_id,
            }
        )
        del self._suppressed[: max(0, len(self._suppressed) - self.suppressed_limit)]
        return Submission(status, blocker, f"{status}: {why}")

    def _new_id(self, model: str, reason: str, at: dt.datetime) -> str:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model)
        base = f"rt-{slug}-{reason}-{at:%Y%m%dT%H%M%SZ}"
        taken = {t.trigger_id for t in self._triggers}
        candidate, k = base, 1
        while candidate in taken:
            k += 1
            candidate = f"{base}-{k}"
        return candidate

    def _trim(self) -> None:
        resolved = [t for t in self._triggers if t.outcome != "pending"]
        excess = len(resolved) - self.history_limit
        if excess > 0:
            drop = {t.trigger_id for t in sorted(resolved, key=lambda t: t.triggered_at)[:excess]}
            self._triggers = [t for t in self._triggers if t.trigger_id not in drop]

    # -- the worker's side -------------------------------------------------------------------

    def pending(self, model: str | None = None) -> list[RetrainTrigger]:
        """Pending triggers, highest priority first, then oldest first."""
        out = [t for t in self._triggers if t.outcome == "pending" and (model is None or t.model == model)]
        return sorted(out, key=lambda t: (-PRIORITY_RANK[t.priority], t.triggered_at))

    def get(self, trigger_id: str) -> RetrainTrigger:
        for t in self._triggers:
            if t.trigger_id == trigger_id:
                return t
        raise KeyError(f"no retrain trigger with trigger_id {trigger_id!r}")

    def resolve(
        self,
        trigger_id: str,
        outcome: Outcome,
        *,
        at: dt.datetime,
        note: str = "",
        metrics: Mapping[str, Any] | None = None,
        new_version: str | None = None,
    ) -> RetrainTrigger:
        """Record the retrain's outcome (``promoted``, ``rejected`` or ``failed``) of a pending trigger.

        Parameters
        ----------
        trigger_id
            The pending trigger to resolve.
        outcome
            ``promoted``, ``rejected`` or ``failed``.
        at
            Event time of the decision (UTC); for a promotion, when ``new_version`` went live.
        note
            Free text (the worker's reason or summary).
        metrics
            Validation metrics of the candidate against the current model, keyed by metric name,
            each a mapping with ``diff``, ``ci_low``, ``ci_high`` (candidate - current) among others.
            Stored as a deep copy. ``None`` when no validation ran (e.g. a failed retrain).
        new_version
            The promoted model version; only allowed with ``outcome="promoted"``.
        """
        at = _require_utc(at, "at of TriggerQueue.resolve")
        if outcome not in ("promoted", "rejected", "failed"):
            raise ValueError(
                "The 'outcome' of TriggerQueue.resolve must be 'promoted', 'rejected' or 'failed'. "
                f"Got {outcome!r} instead."
            )
        if metrics is not None and not isinstance(metrics, Mapping):
            raise ValueError(
                f"The 'metrics' of TriggerQueue.resolve must be a mapping or None. Got {metrics!r} instead."
            )
        if new_version is not None:
            if not isinstance(new_version, str) or not new_version:
                raise ValueError(
                    "The 'new_version' of TriggerQueue.resolve must be a non-empty string or None. "
                    f"Got {new_version!r} instead."
                )
            if outcome != "promoted":
                raise ValueError(
                    "The 'new_version' of TriggerQueue.resolve is only allowed with outcome 'promoted'. "
                    f"Got new_version={new_version!r} with outcome {outcome!r}."
                )
        for i, t in enumerate(self._triggers):
            if t.trigger_id == trigger_id:
                if t.outcome != "pending":
                    raise ValueError(f"retrain trigger {trigger_id!r} is already resolved as {t.outcome!r}")
                done = replace(
                    t,
                    outcome=outcome,
                    resolved_at=at,
                    note=note,
                    metrics=None if metrics is None else copy.deepcopy(dict(metrics)),
                    new_version=new_version,
                )
                self._triggers[i] = done
                self._trim()
                return done
        raise KeyError(f"no retrain trigger with trigger_id {trigger_id!r}")

    # -- history and persistence -----------------------------------------------------------------

    @property
    def history(self) -> tuple[RetrainTrigger, ...]:
        """Every kept trigger, oldest first."""
        return tuple(sorted(self._triggers, key=lambda t: t.triggered_at))

    @property
    def suppressed(self) -> tuple[dict[str, Any], ...]:
        """Recent suppressed submissions: model, reason, at, status (duplicate/cooldown), blocked_by."""
        return tuple(self._suppressed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state: the ``data`` of the ``retrain_triggers`` artifact."""
        return {
            "cooldown_s": self.cooldown.total_seconds(),
            "history_limit": self.history_limit,
            "triggers": [t.to_dict() for t in self.history],
            "suppressed": list(self._suppressed),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TriggerQueue:
        """Rebuild a queue from :meth:`to_dict` output (e.g. the artifact a worker reads)."""
        q = cls(
            cooldown=dt.timedelta(seconds=float(data.get("cooldown_s", 86_400.0))),
            history_limit=int(data.get("history_limit", 500)),
        )
        q._triggers = [RetrainTrigger.from_dict(d) for d in data.get("triggers", [])]
        q._suppressed = [dict(d) for d in data.get("suppressed", [])]
        return q

    @classmethod
    def from_triggers(cls, triggers: Iterable[RetrainTrigger], **kwargs: Any) -> TriggerQueue:
        q = cls(**kwargs)
        q._triggers = list(triggers)
        return q
