"""Audit a paper-trading run: every order sent got exactly one ``rl.feedback``, with the right reward.

The expected values are derived from what the driver sent (its JSON-lines audit record), not from
the bridge's code: ``pnl_pct = pnl_usd / size_usd * 100``, ``duration_mins`` from the two event
times, and ``max_drawdown_pct`` at least the trade's worst excursion (the driver's marks put the
worst unrealized PnL at ``-max_adverse_pct``). The reward is recomputed with
:func:`execution.reward_calculator.compute_reward` from those inputs.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from execution.reward_calculator import DEFAULT_REWARD_PARAMS, RewardParams, compute_reward


@dataclass
class AuditReport:
    sent: int = 0
    feedback: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong: int = 0
    unknown: int = 0
    """Feedback for an order the driver never sent."""
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.wrong == 0 and self.unknown == 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def read_sent(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def expected_inputs(trade: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """``(pnl_pct, duration_mins, max_drawdown_pct, confidence)`` the bridge must use for ``trade``."""
    size = float(trade["size_usd"])
    pnl_pct = float(trade["pnl_usd"]) / size * 100.0
    opened = pd.Timestamp(trade["opened_at"])
    closed = pd.Timestamp(trade["closed_at"])
    duration = (closed - opened).total_seconds() / 60.0
    worst = min(-float(trade["max_adverse_pct"]) / 100.0 * size, float(trade["pnl_usd"]), 0.0)
    return pnl_pct, duration, -worst / size * 100.0, float(trade["confidence"])


def audit(
    sent: Iterable[Mapping[str, Any]],
    feedback: Iterable[Mapping[str, Any]],
    *,
    params: RewardParams = DEFAULT_REWARD_PARAMS,
    tol: float = 1e-9,
) -> AuditReport:
    """Compare what was sent with the ``rl.feedback`` events published (see the module docstring)."""
    by_order = {str(t["order_id"]): t for t in sent}
    fb = list(feedback)
    counts = Counter(str(f["order_id"]) for f in fb)
    report = AuditReport(sent=len(by_order), feedback=len(fb))
    report.lost = sum(1 for oid in by_order if counts[oid] == 0)
    report.duplicated = sum(c - 1 for oid, c in counts.items() if c > 1)
    report.unknown = sum(1 for oid in counts if oid not in by_order)
    seen: set[str] = set()
    for f in fb:
        oid = str(f["order_id"])
        if oid in seen or oid not in by_order:
            continue
        seen.add(oid)
        pnl_pct, duration, dd, conf = expected_inputs(by_order[oid])
        reward = compute_reward(
            pnl_pct=pnl_pct, duration_mins=duration, max_drawdown_pct=dd, confidence=conf, params=params
        )
        got = (
            float(f["pnl_pct"]),
            float(f["duration_mins"]),
            float(f["max_drawdown_pct"]),
            float(f["reward"]),
        )
        want = (pnl_pct, duration, dd, reward)
        if not all(math.isclose(g, w, rel_tol=tol, abs_tol=tol) for g, w in zip(got, want)):
            report.wrong += 1
            if len(report.examples) < 5:
                report.examples.append(f"{oid}: got {got}, expected {want}")
    return report


OUTCOME_KINDS = ("accuracy_drift", "calibration_drift")


def audit_drift(
    sent: Iterable[Mapping[str, Any]],
    drift: Mapping[str, Any] | None,
    triggers: Mapping[str, Any] | None,
    jobs: Mapping[str, Any] | None,
    *,
    planted: bool,
) -> dict[str, Any]:
    """Drift detected only after the planted change, its trigger published, its retrain decided.

    A detection is placed by the order that caused it: the driver's record says whether that trade
    was sent in the drifting regime (``drifting``). Any detection before the change is a false
    alarm: an outcome alarm (``accuracy_drift``, ``calibration_drift``) or a ``distribution_shift``
    (the confidences moved, not the hit rate; listed apart). With ``planted``, ``ok`` needs none
    before and at least one outcome alarm after the change, whose trigger is in
    ``retrain_triggers`` and has a job in ``retrain_jobs`` with a decided outcome; without, ``ok``
    needs no detection at all.
    """
    regime = {str(t["order_id"]): bool(t.get("drifting", False)) for t in sent}
    dets = list((drift or {}).get("detections", []))
    outcome = [d for d in dets if d.get("kind") in OUTCOME_KINDS]
    before = [d for d in outcome if not regime.get(str(d.get("order_id")), False)]
    after = [d for d in outcome if regime.get(str(d.get("order_id")), False)]
    trig_ids = {str(t.get("trigger_id")) for t in (triggers or {}).get("triggers", [])}
    decided = {
        str(j.get("trigger_id")): str(j.get("outcome"))
        for j in (jobs or {}).get("jobs", [])
        if j.get("outcome") in ("promoted", "rejected", "failed")
    }
    shifts = [d for d in dets if d.get("kind") == "distribution_shift"]
    shifts_before = [d for d in shifts if not regime.get(str(d.get("order_id")), False)]
    first = after[0] if after else None
    tid = None if first is None else first.get("trigger_id")
    out = {
        "planted": planted,
        "outcome_alarms_before": len(before),
        "outcome_alarms_after": len(after),
        "first_after": None
        if first is None
        else {k: first.get(k) for k in ("kind", "order_id", "n_trades_total", "closed_at")},
        "distribution_shifts": [{k: d.get(k) for k in ("order_id", "n_trades_total")} for d in shifts],
        "distribution_shifts_before": len(shifts_before),
        "trigger_id": tid,
        "trigger_published": tid is not None and str(tid) in trig_ids,
        "retrain_outcome": None if tid is None else decided.get(str(tid)),
        "trades_seen": (drift or {}).get("n_trades"),
    }
    if planted:
        out["ok"] = (
            not before
            and not shifts_before
            and bool(after)
            and out["trigger_published"]
            and out["retrain_outcome"] is not None
        )
    else:
        out["ok"] = not outcome and not shifts
    return out
