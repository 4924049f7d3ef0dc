"""The Drift tab: each drift statistic against its threshold over trades or time, and the retrain
trigger timeline.

Layout only: the numbers come from the ``drift`` and ``retrain_triggers`` artifacts written by
``python -m ml.drift_service`` (or the demo), computed by :mod:`ml.drift`. A missing, stale or
corrupt artifact is shown as such (``require_artifact``); a malformed one gets a problem panel.
See ``docs/drift.md``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard.components import csv_download, problem_panel, require_artifact
from infra.artifacts import ArtifactResult

COMMAND = "python -m ml.drift_service"
REQUIRED_KEYS = ("checks", "detections", "thresholds")

# (column in a check record, threshold column, title, which side alarms)
STATISTICS: list[tuple[str, str, str, str]] = [
    ("cusum_max", "cusum_threshold", "Accuracy: risk-adjusted CUSUM (max since last check)", "above"),
    ("spiegelhalter_z", "spiegelhalter_threshold", "Calibration: Spiegelhalter z, last 100 trades", "above"),
    (
        "high_conf_win_rate",
        "high_conf_threshold",
        "Calibration: win rate of trades with confidence > 0.80",
        "below",
    ),
    ("ks_d", "ks_threshold", "Distribution: KS distance of confidences to the reference", "above"),
]
KIND_COLOURS = {
    "accuracy_drift": "crimson",
    "calibration_drift": "darkorange",
    "distribution_shift": "royalblue",
}
OUTCOME_SYMBOLS = {"pending": "circle-open", "promoted": "star", "rejected": "x", "failed": "triangle-down"}


def checks_frame(data: dict[str, Any]) -> pd.DataFrame:
    """The ``checks`` records as a frame with ``closed_at`` parsed (UTC)."""
    df = pd.DataFrame(data.get("checks") or [])
    if "closed_at" in df.columns:
        df["closed_at"] = pd.to_datetime(df["closed_at"], utc=True)
    return df


def statistic_figure(
    checks: pd.DataFrame,
    column: str,
    threshold_column: str,
    title: str,
    detections: list[dict[str, Any]],
    *,
    x: str,
) -> go.Figure:
    """One statistic per check with its threshold as a dashed line and detections as vertical lines."""
    fig = go.Figure()
    if column in checks.columns and not checks.empty:
        fig.add_trace(go.Scatter(x=checks[x], y=checks[column], mode="lines+markers", name=column))
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
    for d in detections:
        raw = d.get("n_trades_total") if x == "n_trades" else d.get("closed_at")
        if raw is None:
            continue
        pos = raw if x == "n_trades" else pd.Timestamp(str(raw))
        fig.add_vline(x=pos, line_color=KIND_COLOURS.get(str(d.get("kind")), "grey"), line_dash="dot")
    fig.update_layout(
        title=title,
        height=300,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis_title="closed trades" if x == "n_trades" else "trade close time (UTC)",
        showlegend=False,
    )
    return fig


def triggers_frame(data: dict[str, Any]) -> pd.DataFrame:
    df = pd.DataFrame(data.get("triggers") or [])
    for col in ("triggered_at", "resolved_at"):
        if col in df.columns:
            df[col] = pd.to_datetime(df[col], utc=True)
    return df


def trigger_timeline_figure(triggers: pd.DataFrame) -> go.Figure:
    """Triggers over time: one row per reason, colour by reason, marker by outcome."""
    fig = go.Figure()
    if not triggers.empty:
        for outcome, sub in triggers.groupby("outcome"):
            fig.add_trace(
                go.Scatter(
                    x=sub["triggered_at"],
                    y=sub["reason"],
                    mode="markers",
                    name=str(outcome),
                    marker={
                        "size": 14,
                        "symbol": OUTCOME_SYMBOLS.get(str(outcome), "circle"),
                        "color": [KIND_COLOURS.get(r, "grey") for r in sub["reason"]],
                    },
                    text=sub["trigger_id"],
                    hovertemplate="%{text}<br>%{x}<extra>" + str(outcome) + "</extra>",
                )
            )
    fig.update_layout(
        height=240,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title="triggered at (UTC)",
        legend_title="outcome",
    )
    return fig


def _malformed(result: ArtifactResult, why: str) -> None:
    problem_panel(ArtifactResult(result.name, "wrong_schema", result.path, why), command=COMMAND)


def render() -> None:
    st.subheader("Drift")
    result = require_artifact("drift", command=COMMAND)
    if result is None:
        return
    data = result.data
    if not isinstance(data, dict) or any(k not in data for k in REQUIRED_KEYS):
        _malformed(result, f"expected a JSON object with keys {list(REQUIRED_KEYS)}.")
        return
    checks = checks_frame(data)
    detections = [d for d in data.get("detections") or [] if isinstance(d, dict)]
    join = data.get("join") or {}
    cols = st.columns(4)
    cols[0].metric("model", str(data.get("model") or "-"))
    cols[1].metric("closed trades checked", f"{int(data.get('n_trades') or 0):,}")
    cols[2].metric("detections", len(detections))
    cols[3].metric("trades without a signal", f"{int(join.get('unmatched_trades') or 0):,}")
    if detections:
        for d in detections:
            st.warning(
                f"**{d.get('kind')}** at trade {d.get('n_trades_total')} ({d.get('closed_at')}): {d.get('message')} "
                f"- trigger {d.get('trigger_status')}",
                icon="📉",
            )
    else:
        st.success("No drift detected: every statistic stayed inside its threshold.", icon="✅")
    if checks.empty:
        st.info("No check yet: the windowed tests run every 100 closed trades.")
    else:
        axis = st.radio("x axis", ["closed trades", "time"], horizontal=True, key="drift_axis")
        x = "n_trades" if axis == "closed trades" else "closed_at"
        grid = st.columns(2)
        for i, (col, th_col, title, _side) in enumerate(STATISTICS):
            with grid[i % 2]:
                st.plotly_chart(
                    statistic_figure(checks, col, th_col, title, detections, x=x),
                    key=f"drift_{col}",
                )
        st.caption(
            "Thresholds are simulated for calibrated models (false-alarm budget per 5,000 trades); "
            "the high-confidence rule alarms *below* its line. See docs/drift.md."
        )
        csv_download(checks, label="Download checks (CSV)", file_name="drift_checks.csv", key="drift_csv")

    st.markdown("#### Retrain triggers")
    trig = require_artifact("retrain_triggers", command=COMMAND)
    if trig is None:
        return
    tdata = trig.data
    if not isinstance(tdata, dict) or not isinstance(tdata.get("triggers", []), list):
        _malformed(trig, "expected a JSON object with a 'triggers' list.")
        return
    triggers = triggers_frame(tdata)
    if triggers.empty:
        st.info("No retrain trigger so far.")
        return
    st.plotly_chart(trigger_timeline_figure(triggers), key="drift_triggers")
    shown = [
        c
        for c in (
            "trigger_id",
            "model",
            "reason",
            "priority",
            "triggered_at",
            "outcome",
            "resolved_at",
            "duplicates",
            "note",
        )
        if c in triggers.columns
    ]
    st.dataframe(triggers[shown], hide_index=True)
    suppressed = tdata.get("suppressed") or []
    if suppressed:
        st.caption(
            f"{len(suppressed)} submission(s) suppressed (duplicate while pending, or within the cooldown)."
        )
