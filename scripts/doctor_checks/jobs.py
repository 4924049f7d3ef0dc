"""Doctor checks of the jobs' artifacts: ML telemetry, drift and retrain triggers, feedback,
the RL pilot, the learning loop and the autotuner. Each artifact is read through its typed
contract (:mod:`infra.contracts`): a file that breaks it is a FAIL naming the field and value
(:func:`scripts.doctor_checks.artifacts.artifact_problem`), and a check reads fields, never guesses."""

from __future__ import annotations

from typing import Any, TypeVar

from infra.artifacts import ArtifactResult
from infra.contracts.ml_artifacts import DriftData, MlTelemetryData, RetrainTriggersData
from infra.contracts.ops_artifacts import AutotuneData, FeedbackData
from ml.drift_state import job_outcomes, open_detections
from scripts.doctor_checks.artifacts import artifact_problem, fix_for
from scripts.doctor_checks.base import CheckResult, DoctorContext, age_text, ok, register, warn

ECE_WARN = 0.10
"""Expected calibration error above which the telemetry check warns."""


T = TypeVar("T")


def _typed(res: ArtifactResult, cls: type[T]) -> T:
    """The artifact's data as its contract's Struct (the store decodes every usable result)."""
    if not isinstance(res.typed, cls):
        raise TypeError(f"{res.name}: expected {cls.__name__} from the store, got {type(res.typed).__name__}")
    return res.typed


@register("ml_telemetry", order=50)
def check_ml_telemetry(ctx: DoctorContext) -> CheckResult:
    """Model confidence and calibration (ECE, Brier) from the ``ml_telemetry`` artifact's
    ``calibration`` (its contract, :class:`infra.contracts.ml_artifacts.Calibration`)."""
    name = "ml_telemetry"
    res, problem = artifact_problem(ctx, name, check=name)
    if problem is not None:
        return problem
    cal = _typed(res, MlTelemetryData).calibration
    details = {
        "path": str(res.path),
        "n": cal.n,
        "mean_confidence": cal.mean_confidence,
        "ece": cal.ece,
        "brier": cal.brier,
    }
    if cal.ece is None or cal.brier is None or cal.mean_confidence is None:
        return warn(
            name,
            f"{res.path.name}: no resolved prediction yet ({cal.n} rows), so no calibration to report.",
            fix_for(name),
            **details,
        )
    if cal.ece > ECE_WARN:
        return warn(
            name,
            f"model miscalibrated: ECE {cal.ece:.3f} > {ECE_WARN} (Brier {cal.brier:.3f}).",
            "recalibrate or retrain the model; the autotuner holds thresholds at level <= 0 meanwhile",
            **details,
        )
    return ok(
        name,
        f"mean confidence {cal.mean_confidence:.3f}, ECE {cal.ece:.3f}, Brier {cal.brier:.3f}.",
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
    data = _typed(res, DriftData)
    detections, checks = data.detections, data.checks
    details = {
        "path": str(res.path),
        "n_trades": data.n_trades,
        "last_check": res.data["checks"][-1] if checks else {},
        "detections": res.data["detections"],
    }
    current = data.current_model
    cur = next((m for m in data.models if m.model == current), None)
    cur_text = (
        f"current model {current} ({cur.n_trades} trades since it went live)" if cur is not None else ""
    )
    details["current_model"] = current
    if not detections:
        return ok(
            name,
            f"no drift over {data.n_trades} trades ({len(checks)} checks)"
            + (f"; {cur_text}" if cur_text else "")
            + ".",
            **details,
        )
    triggers, jobs = ctx.store.read("retrain_triggers"), ctx.store.read("retrain_jobs")
    still_open = open_detections(
        res.data, triggers.data, jobs.data
    )  # the one interpretation (ml.drift_state)
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
    items = _typed(res, RetrainTriggersData).triggers
    jobs = ctx.store.read("retrain_jobs")  # the worker's record of outcomes wins (one writer each)
    decided = job_outcomes(jobs.data)
    counts: dict[str, int] = {}
    for t in items:
        outcome = decided.get(t.trigger_id) or t.outcome
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
    counts = _typed(res, FeedbackData).counts
    details = {"path": str(res.path), "counts": res.data["counts"]}
    if counts.dead_lettered > 0:
        return warn(
            name,
            f"{counts.dead_lettered} feedback event(s) dead-lettered.",
            "inspect rl.feedback dead letters (reason field) and fix the producer",
            **details,
        )
    return ok(name, f"{counts.closed} trades closed, {counts.parked} parked, no dead letters.", **details)


def _last_run(ctx: DoctorContext, name: str, label: str) -> CheckResult:
    res, problem = artifact_problem(ctx, name, check=name)
    if problem is not None:
        return problem
    err = getattr(res.typed, "error", None)
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
    d = _typed(res, AutotuneData)
    held = d.insufficient_data
    changed = sum(1 for a in d.adjustments if a.old != a.new)
    details = {
        "path": str(res.path),
        "age_s": res.age_s,
        "applied": d.applied,
        "changes": changed,
        "insufficient_data": held,
    }
    if not d.applied:
        return warn(
            name,
            f"last autotune cycle ({age_text(res.age_s or 0.0)} ago) was a dry run: thresholds not applied.",
            "run `python -m execution.risk_autotune` (ALLOW_PROD_WRITE=1 in prod)",
            **details,
        )
    extra = f"; {len(held)} symbol(s) on defaults for too little data" if held else ""
    stale = d.stale_symbols
    if stale:  # symbols of the thresholds file without trades in the current log: kept, not tuned
        extra += f"; {len(stale)} stale symbol(s) kept, not tuned"
    n_tuned = len(d.tuned_symbols) if d.tuned_symbols else len(d.thresholds)
    details["stale_symbols"] = stale
    return ok(
        name,
        f"last cycle {age_text(res.age_s or 0.0)} ago applied {changed} change(s) to {n_tuned} symbols{extra}.",
        **details,
    )
