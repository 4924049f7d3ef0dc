"""``python -m scripts.doctor [-v] [--json]``: is anything wrong, and how to fix it.

Runs every registered check (:mod:`scripts.doctor_checks`), prints a table (``-v`` adds each
check's details; ``--json`` prints one JSON document instead), writes the ``doctor`` artifact with
the per-symbol and per-route doctor confidence that Router Health 2.0 weights PnL by, and exits
0 when all checks are OK, 1 with warnings, 2 with failures.

Environment: ``DOCTOR_DATA_MAX_AGE_H`` (default 24: newest bar/trade older than this is stale;
a WARN on demo data, a FAIL otherwise) and ``DOCTOR_TIMEOUT_S`` (default 0.8: the longest any
network probe may take). See ``docs/doctor.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from infra import jsonio
from infra.artifacts import ArtifactStore
from infra.cli import run_cli
from infra.contracts.ops_artifacts import DoctorCheckRow, DoctorData, DoctorSummary
from infra.settings import Settings, SettingsError, load_settings
from infra.timeutil import utcnow
from scripts.doctor_checks import REGISTRY, CheckResult, DoctorContext
from scripts.doctor_checks.base import STATUS_ORDER

if TYPE_CHECKING:
    from scripts.demo_context import DemoContext

EXIT_CODES = {"OK": 0, "WARN": 1, "FAIL": 2}


def run_checks(ctx: DoctorContext, *, only: Sequence[str] | None = None) -> list[CheckResult]:
    """Run the registered checks in order; an exception in a check becomes a FAIL naming it."""
    results: list[CheckResult] = []
    for name, func in REGISTRY:
        if only is not None and name not in only:
            continue
        try:
            out = func(ctx)
        except Exception as exc:  # a broken check must not hide the others
            out = CheckResult(
                name,
                "FAIL",
                f"check {name} crashed: {type(exc).__name__}: {exc}",
                {},
                "report this as a doctor bug",
            )
        results.extend(out if isinstance(out, list) else [out])
    return results


def overall(results: Sequence[CheckResult]) -> str:
    """Worst status of ``results`` (``OK`` when empty)."""
    return max((r.status for r in results), key=lambda s: STATUS_ORDER[s], default="OK")


def summary(results: Sequence[CheckResult], *, seconds: float) -> dict[str, Any]:
    """Counts, the overall status and one fix line per check that is not OK."""
    counts = {s: sum(1 for r in results if r.status == s) for s in ("OK", "WARN", "FAIL")}
    worst = overall(results)
    return {
        "status": worst,
        "exit_code": EXIT_CODES[worst],
        "counts": counts,
        "seconds": round(seconds, 3),
        "fixes": [
            {"name": r.name, "status": r.status, "fix": r.fix}
            for r in sorted(results, key=lambda r: -STATUS_ORDER[r.status])
            if r.status != "OK"
        ],
    }


def doctor_report(
    settings: Settings,
    *,
    now: dt.datetime | None = None,
    environ: Mapping[str, str] | None = None,
    store: ArtifactStore | None = None,
) -> dict[str, Any]:
    """Run the doctor and return the ``doctor`` artifact's data (nothing written)."""
    t0 = time.perf_counter()
    read_store = store or ArtifactStore.from_settings(settings)  # reads never touch the network
    ctx = DoctorContext.from_env(settings, read_store, now=now or utcnow(), environ=environ)
    results = run_checks(ctx)
    return {
        "symbol_confidence": ctx.shared.get("symbol_confidence", {}),
        "route_confidence": ctx.shared.get("route_confidence", {}),
        "checks": [
            {"name": r.name, "status": r.status, "message": r.message, "details": {**r.details, "fix": r.fix}}
            for r in results
        ],
        "summary": summary(results, seconds=time.perf_counter() - t0),
    }


def doctor_data(report: Mapping[str, Any]) -> DoctorData:
    """The ``doctor`` artifact's contract built from :func:`doctor_report`'s output."""
    s = report["summary"]
    return DoctorData(
        symbol_confidence=dict(report["symbol_confidence"]),
        route_confidence=dict(report["route_confidence"]),
        checks=[
            DoctorCheckRow(
                name=c["name"], status=c["status"], message=c["message"], details=dict(c["details"])
            )
            for c in report["checks"]
        ],
        summary=DoctorSummary(
            status=s["status"],
            exit_code=s["exit_code"],
            counts=dict(s["counts"]),
            seconds=float(s["seconds"]),
            fixes=list(s["fixes"]),
        ),
    )


def write_artifact(
    settings: Settings, report: Mapping[str, Any], *, store: ArtifactStore | None = None
) -> str | None:
    """Write the ``doctor`` artifact; returns an error text instead of raising.

    Without an explicit store, the local store is used with the Firestore mirror only when the
    breaker-guarded mirror is configured; its call budget bounds the wait.
    """
    try:
        if store is None:
            store = ArtifactStore.from_settings(settings, mirror=_mirror(settings))
        store.write("doctor", doctor_data(report), source="scripts.doctor")
    except Exception as exc:  # the report must still print
        return f"{type(exc).__name__}: {exc}"
    return None


def _mirror(settings: Settings) -> Any:
    if not settings.firestore_enabled:
        return None
    from scripts.doctor_checks.system import _tcp_probe

    host = settings.firestore_emulator_host
    if host and _tcp_probe(host, 0.3) is not None:
        return None  # unreachable: the firestore check already FAILs; do not wait on the mirror
    from infra.firestore_mirror import make_mirror

    return make_mirror(settings, call_budget_s=0.5, attempt_timeout_s=0.4)


def _route_rows(checks: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The route_health check's per-pair rows, keyed ``SYMBOL|route``."""
    for c in checks:
        if c["name"] == "route_health":
            rows = c.get("details", {}).get("routes") or []
            return {f"{r.get('symbol')}|{r.get('route')}": r for r in rows if isinstance(r, Mapping)}
    return {}


def _route_execution(row: Mapping[str, Any] | None) -> str:
    """``fill 91% of 120 orders, slippage 14.1 bps (expected 3.0), p50 latency 420 ms``.

    >>> _route_execution({"n_orders": 120, "n_filled": 109, "mean_slippage_bps": 14.08,
    ...                   "mean_expected_slippage_bps": 3.0, "latency_ms_p50": 420.0})
    'fill 91% of 120 orders, slippage 14.1 bps (expected 3.0), p50 latency 420 ms'
    """
    if not row:
        return ""

    def num(key: str) -> float | None:
        v = row.get(key)
        return float(v) if isinstance(v, int | float) and v == v else None

    n, filled = num("n_orders"), num("n_filled")
    parts = [f"fill {filled / n:.0%} of {n:.0f} orders" if n and filled is not None else "no orders"]
    slip, exp = num("mean_slippage_bps"), num("mean_expected_slippage_bps")
    if slip is not None:
        parts.append(f"slippage {slip:.1f} bps" + (f" (expected {exp:.1f})" if exp is not None else ""))
    lat = num("latency_ms_p50")
    if lat is not None:
        parts.append(f"p50 latency {lat:.0f} ms")
    return ", ".join(parts)


def format_table(report: Mapping[str, Any], *, verbose: bool = False) -> str:
    """The human table: one line per check, ``-v`` adds details; ends with the summary."""
    lines = []
    checks = report["checks"]
    width = max((len(c["name"]) for c in checks), default=10)
    for c in checks:
        lines.append(f"{c['status']:<4}  {c['name']:<{width}}  {c['message']}")
        if verbose:
            for k, v in c["details"].items():
                if k == "fix" or k == "routes":
                    continue
                text = json.dumps(json.loads(jsonio.dumps(v)), sort_keys=True)
                lines.append(
                    f"{'':<4}  {'':<{width}}    {k}: {text[:200] + ('...' if len(text) > 200 else '')}"
                )
    if verbose and report["route_confidence"]:
        lines.append("")
        lines.append(
            "route confidence (doctor; Router Health weights PnL by it), with each route's execution:"
        )
        rows = _route_rows(checks)
        for sym, c in sorted(report["symbol_confidence"].items()):
            lines.append(f"  {sym:<10} {c:.2f}")
            for k, v in sorted(report["route_confidence"].items()):
                if k.split("|", 1)[0] != sym:
                    continue
                lines.append(f"    {k.split('|', 1)[1]:<16} {v:.2f}   {_route_execution(rows.get(k))}")
    s = report["summary"]
    lines.append("")
    lines.append("summary:")
    if s["fixes"]:
        lines.append("  how to fix:")
        for f in s["fixes"]:
            lines.append(f"    {f['status']:<4} {f['name']}: {f['fix']}")
    if report["symbol_confidence"]:
        ordered = sorted(report["symbol_confidence"].items(), key=lambda kv: kv[1])
        lines.append(
            "  doctor confidence: lowest "
            + ", ".join(f"{k} {v:.2f}" for k, v in ordered[:3])
            + f"; highest {ordered[-1][0]} {ordered[-1][1]:.2f}"
        )
    c = s["counts"]
    lines.append(
        f"  {s['status']}: {c['OK']} ok, {c['WARN']} warning(s), {c['FAIL']} failure(s) in {s['seconds']:.2f} s; exit code {s['exit_code']}"
    )
    return "\n".join(lines)


def demo_step(ctx: DemoContext) -> str:
    """Demo pipeline step: run the doctor over the demo data and write its artifact."""
    settings = replace(ctx.settings, data_dir=ctx.data_dir)
    report = doctor_report(settings, store=ctx.store)
    err = write_artifact(settings, report, store=ctx.store)
    if err:
        raise RuntimeError(f"doctor artifact not written: {err}")
    s = report["summary"]
    return f"{s['status']}: {s['counts']['OK']} ok, {s['counts']['WARN']} warn, {s['counts']['FAIL']} fail; confidence for {len(report['symbol_confidence'])} symbols"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.doctor",
        description="Health checks with how-to-fix; exit 0 ok, 1 warnings, 2 failures.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true",
        help="show each check's details and every route's confidence, fill rate, slippage and latency",
    )  # fmt: skip
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document (every field of every check)"
    )
    parser.add_argument("--no-write", action="store_true", help="do not write the doctor artifact")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        report = doctor_report(settings)
    except (SettingsError, ValueError) as exc:
        print(f"doctor: {exc}", file=sys.stderr)
        return 2
    if not args.no_write:
        err = write_artifact(settings, report)
        if err:
            report["summary"]["artifact_error"] = err
    if args.json:
        print(jsonio.dumps(report))
    else:
        print(format_table(report, verbose=args.verbose))
        if report["summary"].get("artifact_error"):
            print(f"  (doctor artifact not written: {report['summary']['artifact_error']})")
    return int(report["summary"]["exit_code"])


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="python -m scripts.doctor"))
