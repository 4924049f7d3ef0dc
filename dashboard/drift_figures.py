"""The Drift tab's statistic pieces: the checks frame, each statistic against its threshold, and
model-version bands, built from the typed ``drift`` and ``retrain`` artifacts
(:mod:`infra.contracts.ml_artifacts`).

Pure: contract Structs in, DataFrames and plotly figures out; no Streamlit calls. The retrain
trigger pieces are :mod:`dashboard.retrain_figures`; the layout :mod:`dashboard.drift_view`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from infra.contracts.ml_artifacts import (
    DetectionPower,
    DriftData,
    DriftDetection,
    RetrainDemoData,
)

# (column in a check record, threshold column, title, which side alarms, y-axis title)
STATISTICS: list[tuple[str, str, str, str, str]] = [
    (
        "accuracy_cusum_max",
        "accuracy_threshold",
        "Accuracy: CUSUM bank over win-rate drops (max since last check)",
        "above",
        "log-likelihood ratio",
    ),
    (
        "calibration_cusum_max",
        "calibration_threshold",
        "Calibration: CUSUM bank over calibration lines (max since last check)",
        "above",
        "log-likelihood ratio",
    ),
    (
        "high_conf_win_rate",
        "high_conf_threshold",
        "Calibration: win rate of trades with confidence > 0.80",
        "below",
        "win rate",
    ),
    (
        "ks_d",
        "ks_threshold",
        "Distribution: KS distance of confidences to the reference",
        "above",
        "KS distance D",
    ),
]
REPLACED_COLOUR = "rgba(150,150,150,0.6)"
"""Checks of a model a promotion replaced: kept visible, greyed."""
EMPTY_NOTES = {
    "ks_d": "No KS value yet for this model: the test needs {need} closed trades after the model went live "
    "(the first {ref} form the reference, then a window of {win}).",
}
KIND_COLOURS = {
    "accuracy_drift": "crimson",
    "calibration_drift": "darkorange",
    "distribution_shift": "royalblue",
}
OUTCOME_SYMBOLS = {"pending": "circle-open", "promoted": "star", "rejected": "x", "failed": "triangle-down"}
OUTCOME_COLOURS = {"pending": "grey", "promoted": "seagreen", "rejected": "darkorange", "failed": "crimson"}
METRIC_LABELS = {"brier": "Brier", "ece": "ECE", "hit_rate_high": "high-conf hit rate"}
"""Validation metrics of a retrain, each ``candidate - current`` (lower Brier/ECE is better)."""
BAND_COLOURS = ("rgba(65,105,225,0.07)", "rgba(46,139,87,0.10)")
WINDOWS: list[tuple[str, str]] = [
    ("before_drift", "before drift"),
    ("during_drift", "during drift"),
    ("after_retrain", "after retrain"),
    ("after_retrain_stale", "after retrain, stale model"),
]
UNDETECTED_LABELS = {
    "before_drift": "before the planted change",
    "during_drift": "after the planted change",
}
"""Window names when the detector found no drift (the demo's change point is planted, not detected)."""
CAPTIONS = {
    "accuracy_cusum_max": "Bank of CUSUMs, one per alternative 'the win rate fell by d' (d unknown: a grid), each "
    "conditional on the trade's confidence; the largest since the previous check. Alarms above the dashed line.",
    "calibration_cusum_max": "Bank of CUSUMs, one per alternative calibration line (over-confidence: high-"
    "confidence trades win less than claimed); the largest since the previous check. Alarms above the dashed line.",
    "high_conf_win_rate": "Win rate of the last 50 trades with confidence > 0.80 (the plan's rule); "
    "alarms below the dashed line.",
    "ks_d": "Kolmogorov-Smirnov distance between recent confidences and the model's frozen reference window; "
    "alarms above the dashed line.",
}


def alpha_total(data: DriftData) -> float:
    """The detector's total false-alarm budget (sum of the three tests' alphas)."""
    cfg = data.thresholds.config
    return cfg.alpha_accuracy + cfg.alpha_calibration + cfg.alpha_distribution


def power_text(power: Mapping[str, DetectionPower]) -> str | None:
    """What "no drift" means at the current thresholds, from the ``drift`` artifact's ``power``."""
    parts = []
    for key, what in (
        ("accuracy_drop_0.15", "a 0.15 drop in win rate"),
        ("calibration_break", "a calibration break (trades above 0.80 winning half the time)"),
    ):
        p = power.get(key)
        if p is None or p.p_within_200 is None:
            continue
        med = p.median_delay
        med_text = (
            f"median delay {med:.0f} trades"
            if med is not None and np.isfinite(med)
            else "median delay over 1,000 trades"
        )
        parts.append(
            f"{what} is caught within 200 trades in {100 * p.p_within_200:.0f}% of cases ({med_text})"
        )
    if not parts:
        return None
    return 'What "no drift" means at these thresholds (simulated): ' + "; ".join(parts) + "."


def checks_frame(data: DriftData) -> pd.DataFrame:
    """The ``checks`` records as a frame (one column per contract field) with ``closed_at`` in UTC."""
    df = pd.DataFrame(msgspec.to_builtins(data.checks))
    if "closed_at" in df.columns:
        df["closed_at"] = pd.to_datetime(df["closed_at"], utc=True)
    return df


def version_spans(
    retrain: RetrainDemoData | None, triggers: pd.DataFrame | None = None
) -> list[dict[str, Any]]:
    """Model versions and when each went live, oldest first.

    From the ``retrain`` artifact's ``versions`` (``version``, ``live_from``, ``role``) when it has
    any; otherwise from promoted triggers' ``new_version`` live from their ``resolved_at``.
    Each span is ``{"version", "start", "end", "role"}`` with UTC timestamps; ``end`` is the next
    version's start, or ``None`` for the live one.
    """
    rows: list[dict[str, Any]] = [
        {"version": v.version, "start": pd.Timestamp(v.live_from).tz_convert("UTC"), "role": v.role}
        for v in (retrain.versions if retrain is not None else [])
    ]
    if not rows and triggers is not None and not triggers.empty and "new_version" in triggers.columns:
        promoted = triggers[triggers["new_version"].notna() & triggers["resolved_at"].notna()]
        for _, t in promoted.iterrows():
            rows.append(
                {
                    "version": str(t["new_version"]),
                    "start": pd.Timestamp(t["resolved_at"]),
                    "role": f"promoted by {t['trigger_id']}",
                }
            )
    rows.sort(key=lambda r: r["start"])
    for i, r in enumerate(rows):
        r["end"] = rows[i + 1]["start"] if i + 1 < len(rows) else None
    return rows


def vline_shape(x: Any, colour: str, *, width: float = 1, dash: str | None = None) -> dict[str, Any]:
    """A vertical line across the plot at ``x`` (what ``fig.add_vline`` draws, as a plain dict)."""
    line: dict[str, Any] = {"color": colour, "width": width}
    if dash is not None:
        line["dash"] = dash
    return {"type": "line", "xref": "x", "yref": "y domain", "x0": x, "x1": x, "y0": 0, "y1": 1, "line": line}


def version_note(x: Any, version: str) -> dict[str, Any]:
    """The label ``model <version>`` above the plot at ``x``, where that version went live."""
    return {
        "x": x,
        "y": 1.0,
        "yref": "paper",
        "text": f"model {version}",
        "showarrow": False,
        "xanchor": "left",
        "yanchor": "bottom",
        "font": {"size": 10, "color": "seagreen"},
    }


def add_shapes(
    fig: go.Figure, shapes: list[dict[str, Any]], annotations: list[dict[str, Any]] | None = None
) -> None:
    """Add shapes and annotations in one layout update.

    ``fig.add_vline``/``add_vrect`` re-validate every shape already on the figure at each call,
    which made a chart with a few bands cost ~100 ms to build.
    """
    annotations = annotations or []
    if shapes or annotations:
        fig.update_layout(
            shapes=[*fig.layout.shapes, *shapes], annotations=[*fig.layout.annotations, *annotations]
        )


def add_version_bands(
    fig: go.Figure, spans: list[dict[str, Any]], *, lo: pd.Timestamp, hi: pd.Timestamp
) -> None:
    """Shade each version's live span inside ``[lo, hi]``, with a labelled line where it starts."""
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for i, sp in enumerate(spans):
        start, end = sp["start"], sp["end"] if sp["end"] is not None else hi
        if end < lo or start > hi:
            continue
        x0, x1 = max(start, lo), min(end, hi)
        if x1 > x0:
            shapes.append(
                {
                    "type": "rect",
                    "xref": "x",
                    "yref": "y domain",
                    "x0": x0,
                    "x1": x1,
                    "y0": 0,
                    "y1": 1,
                    "fillcolor": BAND_COLOURS[i % len(BAND_COLOURS)],
                    "line": {"width": 0},
                    "layer": "below",
                }
            )
        if lo <= start <= hi:
            shapes.append(vline_shape(start, "seagreen"))
            notes.append(version_note(start, sp["version"]))
    add_shapes(fig, shapes, notes)


def _trade_position(checks: pd.DataFrame, ts: pd.Timestamp) -> float | None:
    """Closed-trade count at time ``ts``, interpolated between checks (None outside their range)."""
    if checks.empty or "closed_at" not in checks.columns or "n_trades" not in checks.columns:
        return None
    epoch = pd.Timestamp(0, tz="UTC")  # seconds since epoch: independent of the datetime unit
    t = (checks["closed_at"] - epoch).dt.total_seconds().to_numpy(dtype=np.float64)
    n = checks["n_trades"].to_numpy(dtype=np.float64)
    v = (ts - epoch).total_seconds()
    if v < t[0] or v > t[-1]:
        return None
    return float(np.interp(v, t, n))


def statistic_figure(
    checks: pd.DataFrame,
    column: str,
    threshold_column: str,
    title: str,
    detections: Sequence[DriftDetection],
    *,
    x: str,
    versions: list[dict[str, Any]] | None = None,
    current: str | None = None,
    y_title: str = "",
) -> go.Figure:
    """One statistic per check with its threshold as a dashed line, detections as dotted vertical
    lines, and model-version bands (``versions`` from :func:`version_spans`). Each model version
    is its own trace; versions other than ``current`` (replaced by a promotion) are greyed."""
    fig = go.Figure()
    if column in checks.columns and not checks.empty:
        models = (checks["model"] if "model" in checks.columns else pd.Series("", index=checks.index)).fillna(
            ""
        )
        for model in dict.fromkeys(models):
            sub = checks[models == model]
            replaced = current is not None and model != current
            fig.add_trace(
                go.Scatter(
                    x=sub[x],
                    y=sub[column],
                    mode="lines+markers",
                    name=f"{model} (replaced)" if replaced else str(model or column),
                    line={"color": REPLACED_COLOUR} if replaced else None,
                    marker={"color": REPLACED_COLOUR} if replaced else None,
                )
            )
        if threshold_column in checks.columns:
            fig.add_trace(
                go.Scatter(
                    x=checks[x],
                    y=checks[threshold_column],
                    mode="lines",
                    name="threshold",
                    line={"dash": "dash", "color": "black"},
                )
            )
    marks = []
    for d in detections:
        pos: Any = d.n_trades_total if x == "n_trades" else d.closed_at
        if pos is None:
            continue
        if x != "n_trades":
            pos = pd.Timestamp(pos)
        marks.append(vline_shape(pos, KIND_COLOURS.get(d.kind, "grey"), dash="dot"))
    add_shapes(fig, marks)
    if versions and not checks.empty and x in checks.columns:
        if x == "closed_at":
            add_version_bands(fig, versions, lo=checks[x].min(), hi=checks[x].max())
        else:  # on the trade axis: a labelled line at the (interpolated) trade count
            lines, notes = [], []
            for sp in versions:
                pos = _trade_position(checks, sp["start"])
                if pos is not None:
                    lines.append(vline_shape(pos, "seagreen"))
                    notes.append(version_note(pos, sp["version"]))
            add_shapes(fig, lines, notes)
    fig.update_layout(
        title=title,
        height=320,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        xaxis_title="closed trades" if x == "n_trades" else "trade close time (UTC)",
        yaxis_title=y_title or column,
        showlegend=False,
    )
    return fig
