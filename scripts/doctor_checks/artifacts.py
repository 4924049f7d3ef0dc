"""Doctor checks of the artifact store: every artifact present, valid and fresh; history bounds."""

from __future__ import annotations

from infra.artifacts import ArtifactResult
from scripts.doctor_checks.base import (
    DEMO_COMMAND,
    CheckResult,
    DoctorContext,
    age_text,
    fail,
    ok,
    register,
    warn,
)

PRODUCERS: dict[str, str] = {
    "demo_data": "scripts.demo",
    "ml_telemetry": "ml.telemetry",
    "feedback": "execution.feedback_bridge",
    "drift": "ml.drift_service",
    "retrain_triggers": "ml.drift_service",
    "rl_pilot": "research.rl_sizer.runner",
    "learning_loop": "research.rl_sizer.trainer",
    "autotune": "execution.risk_autotune",
}
"""Artifacts the platform expects and the module that writes each (its demo step)."""

CONTENT_CHECKED = {
    "ml_telemetry",
    "feedback",
    "drift",
    "retrain_triggers",
    "rl_pilot",
    "learning_loop",
    "autotune",
}
"""Artifacts whose own content check (``scripts.doctor_checks.jobs``) reports presence and age."""

SELF = {"doctor"}
"""Artifacts the doctor writes itself (not checked)."""


def fix_for(name: str) -> str:
    """The command that (re)produces artifact ``name``."""
    module = PRODUCERS.get(name)
    if module is None:
        return f"re-run the job that writes {name}, or delete the file if it is obsolete"
    if module == "scripts.demo":
        return f"run `{DEMO_COMMAND}`"
    return f"run `{DEMO_COMMAND}` (its step calls {module}.demo_step)"


def artifact_problem(
    ctx: DoctorContext, name: str, *, check: str | None = None
) -> tuple[ArtifactResult, CheckResult | None]:
    """Read ``name``; return the result and, when it is not usable, the check result to report.

    missing -> WARN with the producing command; corrupt / wrong schema / invalid (data that breaks
    its contract: NaN where a number is promised, garbage, a ``generated_at`` in the future) -> FAIL
    naming the file, the field and the bad value; stale -> WARN (the data is still returned, so
    content checks can go on).
    """
    label = check or f"artifact:{name}"
    res = ctx.store.read(name, max_age_s=ctx.settings.artifact_max_age_s, now=ctx.now)
    details = {"path": str(res.path), "status": res.status, "age_s": res.age_s, "field": res.field}
    if res.status == "missing":
        return res, warn(label, f"{res.path.name} missing: {name} has not run yet.", fix_for(name), **details)
    if res.status in ("corrupt", "wrong_schema", "invalid"):
        return res, fail(
            label,
            f"{res.path.name} is {res.status.replace('_', ' ')}: {res.message}",
            fix_for(name),
            **details,
        )
    if res.status == "stale":
        return res, warn(
            label,
            f"{res.path.name} is stale: generated {age_text(res.age_s or 0.0)} ago (limit {age_text(ctx.settings.artifact_max_age_s)}).",
            fix_for(name),
            **details,
        )
    return res, None


@register("artifacts", order=20)
def check_artifacts(ctx: DoctorContext) -> list[CheckResult]:
    """Each expected or present artifact without a content check: present, valid, fresh."""
    names = (set(PRODUCERS) | set(ctx.store.names())) - CONTENT_CHECKED - SELF
    out = []
    for name in sorted(names):
        res, problem = artifact_problem(ctx, name)
        if problem is not None:
            out.append(problem)
        else:
            out.append(
                ok(
                    f"artifact:{name}",
                    f"{res.path.name} valid, generated {age_text(res.age_s or 0.0)} ago.",
                    path=str(res.path),
                    age_s=res.age_s,
                )
            )
    return out


@register("artifact_history", order=21)
def check_artifact_history(ctx: DoctorContext) -> CheckResult:
    """History of every artifact within ``ARTIFACT_HISTORY_COUNT`` files and ``ARTIFACT_HISTORY_BYTES``."""
    name = "artifact_history"
    s = ctx.settings
    over = []
    sizes: dict[str, dict[str, int]] = {}
    for art in ctx.store.names():
        files = ctx.store.history(art)
        total = 0
        for p in files:
            try:
                total += p.stat().st_size
            except OSError:
                continue
        sizes[art] = {"files": len(files), "bytes": total}
        if len(files) > s.artifact_history_count or total > s.artifact_history_bytes:
            over.append(f"{art} ({len(files)} files, {total:,} bytes)")
    details = {
        "history": sizes,
        "limit_files": s.artifact_history_count,
        "limit_bytes": s.artifact_history_bytes,
    }
    if over:
        return warn(
            name,
            f"history over its bounds ({s.artifact_history_count} files / {s.artifact_history_bytes:,} bytes): {', '.join(over)}.",
            f"the next write of each trims it; or delete old files under {ctx.store.root / 'history'}",
            **details,
        )
    return ok(
        name,
        f"history of {len(sizes)} artifact(s) within {s.artifact_history_count} files / {s.artifact_history_bytes:,} bytes.",
        **details,
    )
