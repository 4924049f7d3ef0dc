"""RiskAutotuner job: one cycle reads the inputs, applies :mod:`execution.autotune_policy`, writes.

The job (:func:`run_cycle`, ``python -m execution.risk_autotune [--dry-run]``) reads the trades,
computes :func:`execution.metrics_normalizer.normalized_table`, reads the ``ml_telemetry`` and
``drift`` artifacts when present, logs exactly one line ``autotune adjustments={...}`` (a JSON
object keyed by symbol, :func:`cycle_report`: the normalized inputs used, the ML inputs, any
cap, each threshold's ``old -> new`` or ``unchanged``; also when nothing moves), applies the
thresholds (:mod:`execution.thresholds`; refused in ``ENV=prod`` without ``ALLOW_PROD_WRITE=1``)
unless ``--dry-run``, and writes the ``autotune`` artifact with the inputs it used. A dry run
writes ``autotune_dry_run`` instead: it never replaces the record of the last applied cycle.

A symbol in the thresholds file that has no trade in the current log (e.g. after switching the
demo from 8 synthetic symbols to 2 real ones) is **stale**: its thresholds are kept (dropping
them would reset a tightened symbol to the defaults the day it trades again) but not tuned, and
the line and the artifact mark it ``stale`` instead of counting it as tuned.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from execution.autotune_policy import (  # noqa: F401 - the policy's public names, re-exported
    DRY_RUN_ARTIFACT,
    LOG_PREFIX,
    MAX_LEVEL,
    MIN_LEVEL,
    Adjustment,
    AutotuneConfig,
    SymbolInputs,
    _as_float,
    _plan,
    cycle_report,
    desired_level,
    log_line,
    plan,
    propose,
    score_of,
    step_towards,
    target_value,
)
from execution.thresholds import load_thresholds, save_thresholds, thresholds_path
from infra.artifacts import ArtifactStore
from infra.cli import run_cli
from infra.contracts.ml_artifacts import MlTelemetryData
from infra.safety import ProductionWriteRefused, require_prod_write
from infra.settings import Settings, load_settings
from infra.store import open_store
from infra.timeutil import utc_iso, utcnow
from ml.drift_state import DriftArtifactError, open_detections

log = logging.getLogger(__name__)


def ml_inputs(
    store: ArtifactStore, symbols: Sequence[str], *, max_age_s: float
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per-symbol ML fields (mean_confidence, ece, drift) from ``ml_telemetry`` and ``drift``.

    Both are read through their contracts (:mod:`infra.contracts.artifacts`): the model's overall
    calibration (``calibration.mean_confidence``, ``calibration.ece``; the telemetry is of the
    model, so every symbol gets it) and the open drift detections (:func:`ml.drift_state.open_detections`).
    An artifact that is missing, invalid or of another schema contributes nothing, and ``sources``
    records its status and message. ``None`` in the contract (nothing resolved yet) is recorded
    in ``missing_fields``.
    """
    per: dict[str, dict[str, Any]] = {s: {} for s in symbols}
    sources: dict[str, Any] = {}
    tel = store.read("ml_telemetry", max_age_s=max_age_s)
    sources["ml_telemetry"] = {"status": tel.status, "missing_fields": []}
    if not tel.usable:
        sources["ml_telemetry"]["message"] = tel.message
    if tel.usable and isinstance(tel.typed, MlTelemetryData):
        cal = tel.typed.calibration
        for field_name, value in (("mean_confidence", cal.mean_confidence), ("ece", cal.ece)):
            if value is None:
                sources["ml_telemetry"]["missing_fields"].append(field_name)
            for s in symbols:
                per[s][field_name] = value
    drift = store.read("drift", max_age_s=max_age_s)
    sources["drift"] = {"status": drift.status, "missing_fields": []}
    if not drift.usable:
        sources["drift"]["message"] = drift.message
    if drift.usable:
        triggers, jobs = store.read("retrain_triggers"), store.read("retrain_jobs")
        try:
            still_open = open_detections(drift.data, triggers.data, jobs.data)
        except DriftArtifactError:
            sources["drift"]["missing_fields"].append("detections")
        else:
            # the detector watches the model as a whole, so an open detection concerns every symbol
            sources["drift"]["open_detections"] = [
                {k: d.get(k) for k in ("kind", "statistic", "n_trades", "trigger_id", "trigger_state")}
                for d in still_open
            ]
            for s in symbols:
                per[s]["drift"] = bool(still_open)
    return per, sources


def gather_inputs(settings: Settings, store: ArtifactStore) -> tuple[dict[str, SymbolInputs], dict[str, Any]]:
    """Symbol inputs from the trades (normalized metrics) and the ML artifacts.

    Raises
    ------
    FileNotFoundError
        When ``<DATA_DIR>/trades.parquet`` does not exist (run ``python -m scripts.demo``).
    """
    from execution.metrics_normalizer import normalized_table
    from infra.loaders import load_trades

    path = settings.data_dir / "trades.parquet"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; run `python -m scripts.demo` (or point DATA_DIR at the trade log)."
        )
    trades = load_trades(path)
    table = normalized_table(trades)
    symbols = [str(s) for s in table["symbol"]]
    ml, sources = ml_inputs(store, symbols, max_age_s=settings.artifact_max_age_s)
    sources["trades"] = {"path": str(path), "rows": len(trades)}
    out: dict[str, SymbolInputs] = {}
    for row in table.to_dict("records"):
        sym = str(row["symbol"])
        n = _as_float(row.get("n_trades"))
        out[sym] = SymbolInputs(
            n_trades=int(n) if n is not None else 0,
            psr=_as_float(row.get("psr")),
            dsr=_as_float(row.get("dsr")),
            sharpe=_as_float(row.get("sharpe")),
            sharpe_lo=_as_float(row.get("sharpe_lo")),
            n_obs=int(v) if (v := _as_float(row.get("n_obs"))) is not None else None,
            max_drawdown=_as_float(row.get("max_drawdown")),
            mean_confidence=ml[sym].get("mean_confidence"),
            ece=ml[sym].get("ece"),
            drift=ml[sym].get("drift"),
        )
    return out, sources


def run_cycle(
    settings: Settings,
    *,
    store: ArtifactStore | None = None,
    dry_run: bool = False,
    config: AutotuneConfig | None = None,
    inputs: Mapping[str, SymbolInputs] | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """One autotune cycle; returns the ``autotune`` artifact's data.

    Parameters
    ----------
    dry_run
        Compute and log without applying (the thresholds file is left alone).
    inputs
        Symbol inputs to use instead of reading the trades and artifacts (tests, replays).

    Raises
    ------
    ProductionWriteRefused
        When applying in ``ENV=prod`` without ``ALLOW_PROD_WRITE=1`` (checked before anything else).
    """
    cfg = config or AutotuneConfig()
    if not dry_run:
        require_prod_write(settings, "risk thresholds")
    st = store or open_store(settings)
    when = now or utcnow()
    sources: dict[str, Any]
    if inputs is None:
        inputs, sources = gather_inputs(settings, st)
    else:
        sources = {"given": True}
    path = thresholds_path(settings)
    current, problem = load_thresholds(path)
    if problem:
        sources["thresholds_problem"] = problem
    new, adjustments, reasons = _plan(current, inputs, cfg)
    report = cycle_report(current, new, inputs, reasons, cfg)
    log.info("%s", log_line(report))
    applied = False
    if not dry_run:
        save_thresholds(settings, new, now=when, path=path)
        applied = True
    data: dict[str, Any] = {
        "cycle_at": utc_iso(when),
        "dry_run": dry_run,
        "applied": applied,
        "thresholds_path": str(path),
        "config": {
            "max_step": cfg.max_step,
            "hysteresis": cfg.hysteresis,
            "boundaries": list(cfg.boundaries),
            "min_trades": cfg.min_trades,
            "max_ece": cfg.max_ece,
            "max_drawdown": cfg.max_drawdown,
            "defaults": dict(cfg.defaults),
            "floors": dict(cfg.floors),
            "ceilings": dict(cfg.ceilings),
        },
        "inputs": {s: asdict(v) for s, v in sorted(inputs.items())},
        "sources": sources,
        "adjustments": [asdict(a) for a in adjustments],
        "report": report,
        "thresholds": {s: asdict(t) for s, t in sorted(new.items())},
        "insufficient_data": sorted(
            {a.symbol for a in adjustments if a.reason.startswith("insufficient data")}
        ),
        "tuned_symbols": sorted(s for s, r in report.items() if r["status"] != "stale"),
        "stale_symbols": sorted(s for s, r in report.items() if r["status"] == "stale"),
    }
    # a dry run never replaces the record of the last applied cycle (the doctor reads that one)
    st.write(DRY_RUN_ARTIFACT if dry_run else "autotune", data, source="execution.risk_autotune")
    return data


def summary_line(data: Mapping[str, Any]) -> str:
    """One human line: symbols tuned, threshold changes, symbols held or stale.

    >>> summary_line({"tuned_symbols": ["A", "B"], "stale_symbols": ["C"], "insufficient_data": [],
    ...               "adjustments": [{"old": 1, "new": 1.1}], "thresholds_path": "t.json"})
    '2 symbols tuned, 1 threshold change(s), 0 held for too little data, 1 stale (no trades in the log: kept, not tuned); thresholds -> t.json'
    """
    changed = sum(1 for a in data["adjustments"] if a["old"] != a["new"])
    stale = data.get("stale_symbols") or []
    tail = f", {len(stale)} stale (no trades in the log: kept, not tuned)" if stale else ""
    return (
        f"{len(data['tuned_symbols'])} symbols tuned, {changed} threshold change(s), "
        f"{len(data['insufficient_data'])} held for too little data{tail}; thresholds -> {data['thresholds_path']}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m execution.risk_autotune [--dry-run]``: exit 0 done, 2 refused or failed."""
    parser = argparse.ArgumentParser(
        prog="python -m execution.risk_autotune", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--dry-run", action="store_true", help="compute and log without applying")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        settings = load_settings()
        data = run_cycle(settings, dry_run=args.dry_run)
    except ProductionWriteRefused as exc:
        print(f"autotune: {exc} (or use --dry-run)", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"autotune: {exc}", file=sys.stderr)
        return 2
    verb = "dry run, nothing applied" if args.dry_run else "applied"
    print(f"autotune ({verb}): {summary_line(data)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="python -m execution.risk_autotune"))
