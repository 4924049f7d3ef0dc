"""The Drift tab's retrain pieces: the trigger history (outcomes from ``retrain_jobs``), its table
and timeline, and the before/during/after calibration windows of the ``retrain`` artifact.

Pure: contract Structs (:mod:`infra.contracts.ml_artifacts`) in, DataFrames and plotly figures
out. The statistic figures are :mod:`dashboard.drift_figures`; the layout :mod:`dashboard.drift_view`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import pandas as pd
import plotly.graph_objects as go

from dashboard.drift_figures import (
    METRIC_LABELS,
    OUTCOME_COLOURS,
    OUTCOME_SYMBOLS,
    UNDETECTED_LABELS,
    WINDOWS,
    add_version_bands,
)
from infra.contracts.ml_artifacts import RetrainDemoData, RetrainJobsData, RetrainTriggersData
from infra.timeutil import utc_iso


def triggers_frame(data: RetrainTriggersData, jobs: RetrainJobsData | None = None) -> pd.DataFrame:
    """The trigger history as a frame (times parsed, UTC), with ``metrics`` and ``new_version``.

    The retrain worker's ``retrain_jobs`` artifact (its only record of outcomes) wins: a decided
    job sets the trigger's ``outcome`` and ``resolved_at``, and fills ``metrics``
    (``jobs[*].validation.metrics``) and ``new_version`` the queue does not hold yet.
    """
    by_id = {job.trigger_id: job for job in (jobs.jobs if jobs is not None else [])}
    rows = []
    for t in data.triggers:
        job = by_id.get(t.trigger_id)  # every job in retrain_jobs is decided: its record wins
        metrics = t.metrics
        if metrics is None and job is not None and job.validation is not None and job.validation.metrics:
            metrics = job.validation.metrics
        new_version = t.new_version
        if new_version is None and job is not None and job.outcome == "promoted":
            new_version = job.new_version
        resolved = t.resolved_at
        if job is not None:
            resolved = job.decided_at or job.triggered_at or resolved
        rows.append(
            {
                **msgspec.to_builtins(t),
                "outcome": job.outcome if job is not None else t.outcome,
                "resolved_at": resolved,
                "note": t.note or (job.note if job is not None else ""),
                "metrics": None if metrics is None else msgspec.to_builtins(metrics),
                "new_version": new_version,
            }
        )
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    for col in ("triggered_at", "resolved_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    df["metrics"] = pd.Series([r["metrics"] for r in rows], index=df.index, dtype=object)
    df["new_version"] = pd.Series([r["new_version"] for r in rows], index=df.index, dtype=object)
    return df


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.4f}"


def metric_summary(metrics: Mapping[str, Mapping[str, Any]] | None, *, sep: str = "<br>") -> str:
    """``Brier -0.0065 [-0.0097, -0.0044]`` per metric: candidate - current with its bootstrap CI.

    ``metrics`` is a frame cell of :func:`triggers_frame`: ``MetricComparison`` rows as plain
    mappings (the contract guarantees ``diff``, ``ci_low``, ``ci_high``: finite or ``None``).
    """
    parts = [
        f"{METRIC_LABELS.get(key, key)} {_fmt(m['diff'])} [{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]"
        for key, m in (metrics or {}).items()
    ]
    return sep.join(parts) if parts else "no validation metrics"


def trigger_table(triggers: pd.DataFrame) -> pd.DataFrame:
    """The trigger history flattened for display and CSV: one column per metric difference and CI bound."""
    cols = [
        c
        for c in (
            "trigger_id",
            "model",
            "reason",
            "priority",
            "triggered_at",
            "outcome",
            "resolved_at",
            "new_version",
            "duplicates",
            "note",
        )
        if c in triggers.columns
    ]
    out = triggers[cols].copy()
    keys: list[str] = []
    for m in triggers.get("metrics", pd.Series(dtype=object)):
        for k in m or {}:
            if k not in keys:
                keys.append(k)
    for k in keys:
        for part in ("diff", "ci_low", "ci_high"):
            out[f"{k}_{part}"] = [(m or {}).get(k, {}).get(part) for m in triggers["metrics"]]
    return out


def trigger_timeline_figure(
    triggers: pd.DataFrame, versions: list[dict[str, Any]] | None = None
) -> go.Figure:
    """Triggers at ``triggered_at``, one row per reason, coloured (and marked) by outcome; hover gives
    the note and the metric differences with their CIs; promoted versions as labelled lines."""
    fig = go.Figure()
    if not triggers.empty:
        for outcome in [o for o in OUTCOME_COLOURS if o in set(triggers["outcome"])] + sorted(
            set(triggers["outcome"]) - set(OUTCOME_COLOURS)
        ):
            sub = triggers[triggers["outcome"] == outcome]
            hover = [
                f"<b>{t['trigger_id']}</b><br>{outcome}"
                + (f" -> {t['new_version']}" if t["new_version"] is not None else "")
                + f"<br>{t.get('note') or ''}<br>{metric_summary(t.get('metrics'))}"
                for _, t in sub.iterrows()
            ]
            fig.add_trace(
                go.Scatter(
                    x=sub["triggered_at"],
                    y=sub["reason"],
                    mode="markers",
                    name=str(outcome),
                    marker={
                        "size": 14,
                        "symbol": OUTCOME_SYMBOLS.get(str(outcome), "circle"),
                        "color": OUTCOME_COLOURS.get(str(outcome), "black"),
                        "line": {"width": 2, "color": OUTCOME_COLOURS.get(str(outcome), "black")},
                    },
                    text=hover,
                    hovertemplate="%{text}<br>triggered %{x} UTC<extra></extra>",
                )
            )
        if versions:
            lo = triggers["triggered_at"].min()
            hi = max([triggers["triggered_at"].max(), *[sp["start"] for sp in versions]])
            add_version_bands(fig, versions, lo=lo - pd.Timedelta(days=1), hi=hi + pd.Timedelta(days=1))
    fig.update_layout(
        height=260,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis_title="triggered at (UTC)",
        yaxis_title="drift kind",
        legend_title="outcome",
        showlegend=True,  # name the outcome even when every trigger has the same one
    )
    return fig


def windows_table(retrain: RetrainDemoData | None, *, detected: bool = True) -> pd.DataFrame:
    """Calibration before drift / during / after retrain from the ``retrain`` artifact's ``windows``.

    With ``detected=False`` (the detector found no drift) the windows are named after the demo's
    planted change point instead ("before / after the planted change"), so the table does not
    speak of a drift the tab says it did not detect.
    """
    windows = retrain.windows if retrain is not None else {}
    rows = []
    for key, label in WINDOWS:
        w = windows.get(key)
        if w is not None:
            if not detected:
                label = UNDETECTED_LABELS.get(key, label)
            rows.append(
                {
                    "window": label,
                    "model_version": w.model_version,
                    "from (UTC)": None if w.start is None else utc_iso(w.start),
                    "to (UTC)": None if w.end is None else utc_iso(w.end),
                    "rows": w.n_rows,
                    "ECE": w.ece,
                    "Brier": w.brier,
                    "hit rate": w.hit_rate,
                }
            )
    return pd.DataFrame(rows)
