"""Doctor checks of the jobs' artifacts: ML telemetry, drift and retrain triggers, feedback,
the RL pilot, the learning loop and the autotuner. Fields are read defensively: a missing field
is a WARN naming it, never a crash."""

from __future__ import annotations

import math
from typing import Any

from infra.jsonio import lookup
from ml.drift_state import job_outcomes, open_detections
from scripts.doctor_checks.artifacts import artifact_problem, fix_for
from scripts.doctor_checks.base import CheckResult, DoctorContext, age_text, ok, register, warn

ECE_WARN = 0.10
"""Expected calibration error above which the telemetry check warns."""


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _missing_fields(
    name: str, data: Any, fields: dict[str, tuple[str, ...]]
) -> tuple[dict[str, Any], list[str]]:
    found = {f: lookup(data, *paths) for f, paths in fields.items()}
    return found, [f for f, v in found.items() if v is None]


@register("ml_telemetry", order=50)
def check_ml_telemetry(ctx: DoctorContext) -> CheckResult:
    """Model confidence and calibration (ECE, Brier) from the ``ml_telemetry`` artifact."""
    name = "ml_telemetry"
    res, problem = artifact_problem(ctx, name, check=name)
    if problem is not None and res.envelope is None:
        return problem
    found, missing = _missing_fields(
        name,
        res.data,
        {
            "mean_confidence": (
                "mean_confidence",
                "summary.mean_confidence",
                "confidence.mean",
                "calibration.mean_confidence",
            ),
            "ece": ("ece", "summary.ece", "calibration.ece"),
            "brier": ("brier", "summary.brier", "calibration.brier"),
        },
    )
    details = {"path": str(res.path), **found}
    if problem is not None:
        return problem
    if missing:
        return warn(
            name,
            f"{res.path.name} lacks field(s) {', '.join(missing)}.",
            fix_for(name),
            missing=missing,
            **details,
        )
    ece = _num(found["ece"])
    if ece is not None and ece > ECE_WARN:
        return warn(
            name,
            f"model miscalibrated: ECE {ece:.3f} > {ECE_WARN} (Brier {_num(found['brier']) or float('nan'):.3f}).",
            "recalibrate or retrain the model; the autotuner holds thresholds at level <= 0 meanwhile",
            **details,
        )
    return ok(
        name,
        f"mean confidence {_num(found['mean_confidence']) or float('nan'):.3f}, ECE {ece if ece is not None else float('nan'):.3f}, Brier {_num(found['brier']) or float('nan'):.3f}.",
        **details,
    )


@register("drift", order=51)
def check_drift(ctx: DoctorContext) -> CheckResult:
    """Drift state from the ``drift`` artifact (written by ``ml.drift_service``).

    The artifact lists ``detections`` (kind, statistic, value, threshold, message, n_trades,
    trigger_id) and per-check statistics in ``checks``. No detection: OK. A detection whose retrain
    trigger was promoted, or that belongs to a model a promotion replaced: OK (the promoted version's
    detector starts from zero; its state is in ``models``). Any other detection: WARN, naming the
    kind, the statistic and the trigger's state. Outcomes come from ``retrain_jobs`` first.
    """
    name = "drift"
    res, problem = artifact_problem(ctx, name, check=name)
    if problem is not None:
        return problem
    data = res.data if isinstance(res.data, dict) else {}
    detections = data.get("detections")
    checks = data.get("checks")
    if not isinstance(detections, list) or not isinstance(checks, list):
        return warn(
            name,
            f"{res.path.name} lacks field detections/checks (not written by ml.drift_service?).",
            fix_for(name),
        )
    last = checks[-1] if checks and isinstance(checks[-1], dict) else {}
    details = {
        "path": str(res.path),
        "n_trades": data.get("n_trades"),
        "last_check": last,
        "detections": detections,
    }
    current = data.get("current_model")
    models = {str(m.get("model")): m for m in data.get("models") or [] if isinstance(m, dict)}
    cur_n = models.get(str(current), {}).get("n_trades")
    cur_text = f"current model {current} ({cur_n} trades since it went live)" if cur_n is not None else ""
    details["current_model"] = current
    if not detections:
        return ok(
            name,
            f"no drift over {data.get('n_trades', '?')} trades ({len(checks)} checks)"
            + (f"; {cur_text}" if cur_text else "")
            + ".",
            **details,
        )
    triggers, jobs = ctx.store.read("retrain_triggers"), ctx.store.read("retrain_jobs")
    still_open = open_detections(
        data,
        triggers.data if triggers.envelope is not None else None,
        jobs.data if jobs.envelope is not None else None,
    )
    open_ = [
        f"{d.get('kind')} at trade {d.get('n_trades')} ({d.get('statistic')}; trigger {d['trigger_state']})"
        for d in still_open
    ]
    if not open_:
        return ok(
            name,
            f"{len(detections)} drift detection(s), each answered by a promoted retrain"
            + (f"; {cur_text}, no drift on it" if cur_text else "")
            + ".",
            **details,
        )
    return warn(
        name,
        "model drift: " + "; ".join(open_) + ".",
        "run the retrain worker (`python -m ml.retrain_worker --once`) or roll back "
        "(`python -m ml.retrain_worker --rollback`); see the Drift tab",
        **details,
    )


@register("retrain_triggers", order=52)
def check_retrain_triggers(ctx: DoctorContext) -> CheckResult:
    """Open (pending) and failed retrain triggers: ``retrain_triggers`` (the drift service's queue),
    each outcome taken from ``retrain_jobs`` (the retrain worker's record) when it has one."""
    name = "retrain_triggers"
    res, problem = artifact_problem(ctx, name, check=name)
    if problem is not None:
        return problem
    items = lookup(res.data, "triggers", "history", "items")
    if items is None and isinstance(res.data, list):
        items = res.data
    if not isinstance(items, list):
        return warn(
            name,
            f"{res.path.name} lacks a trigger list (field triggers/history).",
            fix_for(name),
            path=str(res.path),
        )
    jobs = ctx.store.read("retrain_jobs")  # the worker's record of outcomes wins (one writer each)
    decided = job_outcomes(jobs.data if jobs.envelope is not None else None)
    counts: dict[str, int] = {}
    for t in items:
        tid = str(t.get("trigger_id")) if isinstance(t, dict) else ""
        outcome = decided.get(tid) or str(lookup(t, "outcome", "status", "state") or "unknown").lower()
        counts[outcome] = counts.get(outcome, 0) + 1
    details = {"path": str(res.path), "counts": counts, "total": len(items)}
    if counts.get("failed"):
        return warn(
            name,
            f"{counts['failed']} retrain trigger(s) failed; {counts.get('pending', 0)} open.",
            "read the retrain worker's log and re-run it",
            **details,
        )
    if counts.get("pending"):
        return warn(
            name,
            f"{counts['pending']} retrain trigger(s) open (pending).",
            "run the retrain worker (`python -m scripts.demo` runs its step)",
            **details,
        )
    return ok(name, f"{len(items)} trigger(s) in history, none open: {counts or 'none'}.", **details)


@register("feedback", order=53)
def check_feedback(ctx: DoctorContext) -> CheckResult:
    """Feedback bridge counts, dead letters in particular."""
    name = "feedback"
    res, problem = artifact_problem(ctx, name, check=name)
    if problem is not None:
        return problem
    counts = lookup(res.data, "counts")
    if not isinstance(counts, dict):
        return warn(name, f"{res.path.name} lacks field counts.", fix_for(name), path=str(res.path))
    dead = _num(counts.get("dead_lettered"))
    details = {"path": str(res.path), "counts": counts}
    if dead is None:
        return warn(name, f"{res.path.name} lacks field counts.dead_lettered.", fix_for(name), **details)
    if dead > 0:
        return warn(
            name,
            f"{int(dead)} feedback event(s) dead-lettered.",
            "inspect rl.feedback dead letters (reason field) and fix the producer",
            **details,
        )
    return ok(
        name,
        f"{counts.get('closed', '?')} trades closed, {counts.get('parked', 0)} parked, no dead letters.",
        **details,
    )


def _last_run(ctx: DoctorContext, name: str, label: str) -> CheckResult:
    res, problem = artifact_problem(ctx, name, check=name)
    if problem is not None:
        return problem
    err = lookup(res.data, "error", "last_error")
    details: dict[str, Any] = {"path": str(res.path), "age_s": res.age_s}
    if err:
        return warn(name, f"{label} last run reported an error: {err}", fix_for(name), **details)
    return ok(name, f"{label} last ran {age_text(res.age_s or 0.0)} ago.", **details)


@register("rl_pilot", order=54)
def check_rl_pilot(ctx: DoctorContext) -> CheckResult:
    """The RL pilot's last run (``rl_pilot`` artifact)."""
    return _last_run(ctx, "rl_pilot", "RL pilot")


@register("learning_loop", order=55)
def check_learning_loop(ctx: DoctorContext) -> CheckResult:
    """The online PPO trainer's last run (``learning_loop`` artifact)."""
    return _last_run(ctx, "learning_loop", "online PPO learning loop")


@register("autotune", order=56)
def check_autotune(ctx: DoctorContext) -> CheckResult:
    """The autotuner's last cycle (``autotune`` artifact): applied or dry run, symbols held."""
    name = "autotune"
    res, problem = artifact_problem(ctx, name, check=name)
    if problem is not None:
        return problem
    d = res.data if isinstance(res.data, dict) else {}
    missing = [f for f in ("applied", "adjustments", "thresholds") if f not in d]
    if missing:
        return warn(
            name, f"{res.path.name} lacks field(s) {', '.join(missing)}.", fix_for(name), path=str(res.path)
        )
    held = d.get("insufficient_data") or []
    changed = sum(1 for a in d["adjustments"] if isinstance(a, dict) and a.get("old") != a.get("new"))
    details = {
        "path": str(res.path),
        "age_s": res.age_s,
        "applied": d["applied"],
        "changes": changed,
        "insufficient_data": held,
    }
    if not d["applied"]:
        return warn(
            name,
            f"last autotune cycle ({age_text(res.age_s or 0.0)} ago) was a dry run: thresholds not applied.",
            "run `python -m execution.risk_autotune` (ALLOW_PROD_WRITE=1 in prod)",
            **details,
        )
    extra = f"; {len(held)} symbol(s) on defaults for too little data" if held else ""
    stale = d.get("stale_symbols") or []
    if stale:  # symbols of the thresholds file without trades in the current log: kept, not tuned
        extra += f"; {len(stale)} stale symbol(s) kept, not tuned"
    tuned = d.get("tuned_symbols")
    n_tuned = len(tuned) if isinstance(tuned, list) else len(d["thresholds"])
    details["stale_symbols"] = stale
    return ok(
        name,
        f"last cycle {age_text(res.age_s or 0.0)} ago applied {changed} change(s) to {n_tuned} symbols{extra}.",
        **details,
    )
