"""The Drift tab: each drift statistic against its threshold over trades or time, model-version
bands, the retrain trigger timeline with each trigger's outcome and metrics, and calibration
before drift / during / after retrain.

Layout only: the numbers come from the ``drift`` and ``retrain_triggers`` artifacts written by
``python -m ml.drift_service`` (or the demo), computed by :mod:`ml.drift`, and from the retrain
worker's ``retrain_jobs`` (``python -m ml.retrain_worker``) and the demo's ``retrain`` artifact
(``python -m scripts.demo``). A missing, stale or corrupt ``drift`` artifact is shown as such
(``require_artifact``); a malformed one gets a problem panel. The retrain artifacts are optional:
without them the tab says which command writes them and draws what it has. See ``docs/drift.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import (
    chart_style,  # noqa: F401  (sets the shared plotly template)
    loading,
)
from dashboard.components import csv_download, problem_panel, require_artifact, status_line
from infra.artifacts import ArtifactResult
from ml.drift_state import open_detections

COMMAND = "python -m ml.drift_service"
RETRAIN_COMMAND = "python -m scripts.demo --only drift,retrain"
JOBS_COMMAND = "python -m ml.retrain_worker"
REQUIRED_KEYS = ("checks", "detections", "thresholds")

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


def _alpha_total(data: dict[str, Any]) -> float:
    cfg = (data.get("thresholds") or {}).get("config") or {}
    return float(
        sum(cfg.get(k, 0.0) or 0.0 for k in ("alpha_accuracy", "alpha_calibration", "alpha_distribution"))
    )


def power_text(power: Any) -> str | None:
    """What "no drift" means at the current thresholds, from the ``drift`` artifact's ``power``."""
    if not isinstance(power, dict):
        return None
    parts = []
    for key, what in (
        ("accuracy_drop_0.15", "a 0.15 drop in win rate"),
        ("calibration_break", "a calibration break (trades above 0.80 winning half the time)"),
    ):
        p = power.get(key)
        if not isinstance(p, dict) or p.get("p_within_200") is None:
            continue
        med = p.get("median_delay")
        med_text = (
            f"median delay {med:.0f} trades"
            if isinstance(med, int | float) and np.isfinite(med)
            else "median delay over 1,000 trades"
        )
        parts.append(
            f"{what} is caught within 200 trades in {100 * float(p['p_within_200']):.0f}% of cases ({med_text})"
        )
    if not parts:
        return None
    return 'What "no drift" means at these thresholds (simulated): ' + "; ".join(parts) + "."


def checks_frame(data: dict[str, Any]) -> pd.DataFrame:
    """The ``checks`` records as a frame with ``closed_at`` parsed (UTC)."""
    df = pd.DataFrame(data.get("checks") or [])
    if "closed_at" in df.columns:
        df["closed_at"] = pd.to_datetime(df["closed_at"], utc=True)
    return df


def version_spans(
    retrain: dict[str, Any] | None, triggers: pd.DataFrame | None = None
) -> list[dict[str, Any]]:
    """Model versions and when each went live, oldest first.

    From the ``retrain`` artifact's ``versions`` (``version``, ``live_from``, ``role``) when it has
    any; otherwise from promoted triggers' ``new_version`` live from their ``resolved_at``.
    Each span is ``{"version", "start", "end", "role"}`` with UTC timestamps; ``end`` is the next
    version's start, or ``None`` for the live one.
    """
    rows: list[dict[str, Any]] = []
    versions = (retrain or {}).get("versions") if isinstance(retrain, dict) else None
    if isinstance(versions, list):
        for v in versions:
            if isinstance(v, dict) and v.get("version") and v.get("live_from"):
                rows.append(
                    {
                        "version": str(v["version"]),
                        "start": pd.Timestamp(str(v["live_from"])).tz_convert("UTC"),
                        "role": str(v.get("role") or ""),
                    }
                )
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
    detections: list[dict[str, Any]],
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
        models = checks["model"] if "model" in checks.columns else pd.Series("", index=checks.index)
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
        raw = d.get("n_trades_total") if x == "n_trades" else d.get("closed_at")
        if raw is None:
            continue
        pos = raw if x == "n_trades" else pd.Timestamp(str(raw))
        marks.append(vline_shape(pos, KIND_COLOURS.get(str(d.get("kind")), "grey"), dash="dot"))
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


def triggers_frame(data: dict[str, Any], jobs: dict[str, Any] | None = None) -> pd.DataFrame:
    """The trigger history as a frame (times parsed, UTC), with ``metrics`` and ``new_version``.

    The retrain worker's ``retrain_jobs`` artifact (its only record of outcomes) wins: a decided
    job sets the trigger's ``outcome`` and ``resolved_at``, and fills ``metrics``
    (``jobs[*].validation.metrics``) and ``new_version`` the queue does not hold yet.
    """
    df = pd.DataFrame(data.get("triggers") or [])
    for col in ("triggered_at", "resolved_at"):
        if col in df.columns:
            df[col] = pd.to_datetime(df[col], utc=True)
    if df.empty:
        return df
    for col in ("metrics", "new_version", "note"):
        if col not in df.columns:
            df[col] = None
    by_id: dict[str, dict[str, Any]] = {}
    for job in (jobs or {}).get("jobs") or []:
        if isinstance(job, dict) and job.get("trigger_id") is not None:
            by_id[str(job["trigger_id"])] = job
    metrics, new_version, outcome, resolved, notes = [], [], [], [], []
    for _, t in df.iterrows():
        job = by_id.get(str(t.get("trigger_id")), {})
        decided = job.get("outcome") in ("promoted", "rejected", "failed")  # the worker's record wins
        outcome.append(job["outcome"] if decided else t.get("outcome", "pending"))
        when = job.get("decided_at") or job.get("triggered_at") if decided else None
        resolved.append(pd.Timestamp(when).tz_convert("UTC") if when else t.get("resolved_at"))
        m = t["metrics"] if isinstance(t["metrics"], dict) else None
        if m is None and isinstance(job.get("validation"), dict):
            m = (
                job["validation"].get("metrics")
                if isinstance(job["validation"].get("metrics"), dict)
                else None
            )
        nv = t["new_version"] if isinstance(t["new_version"], str) else None
        if nv is None and outcome[-1] == "promoted" and isinstance(job.get("new_version"), str):
            nv = job["new_version"]
        notes.append(t["note"] if isinstance(t["note"], str) and t["note"] else str(job.get("note") or ""))
        metrics.append(m)
        new_version.append(nv)
    df["outcome"] = outcome
    df["note"] = notes
    df["resolved_at"] = pd.to_datetime(pd.Series(resolved, index=df.index), utc=True)
    df["metrics"] = pd.Series(metrics, index=df.index, dtype=object)
    df["new_version"] = pd.Series(new_version, index=df.index, dtype=object)
    return df


def _fmt(v: Any) -> str:
    return "n/a" if not isinstance(v, int | float) or not np.isfinite(v) else f"{v:+.4f}"


def metric_summary(metrics: dict[str, Any] | None, *, sep: str = "<br>") -> str:
    """``Brier -0.0065 [-0.0097, -0.0044]`` per metric: candidate - current with its bootstrap CI."""
    if not isinstance(metrics, dict):
        return "no validation metrics"
    parts = []
    for key, m in metrics.items():
        if isinstance(m, dict):
            label = METRIC_LABELS.get(key, key)
            parts.append(f"{label} {_fmt(m.get('diff'))} [{_fmt(m.get('ci_low'))}, {_fmt(m.get('ci_high'))}]")
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
            out[f"{k}_{part}"] = [
                (m or {}).get(k, {}).get(part) if isinstance((m or {}).get(k), dict) else None
                for m in triggers["metrics"]
            ]
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
                + (f" -> {t['new_version']}" if isinstance(t.get("new_version"), str) else "")
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


def windows_table(retrain: dict[str, Any] | None, *, detected: bool = True) -> pd.DataFrame:
    """Calibration before drift / during / after retrain from the ``retrain`` artifact's ``windows``.

    With ``detected=False`` (the detector found no drift) the windows are named after the demo's
    planted change point instead ("before / after the planted change"), so the table does not
    speak of a drift the tab says it did not detect.
    """
    windows = (retrain or {}).get("windows") if isinstance(retrain, dict) else None
    rows = []
    for key, label in WINDOWS:
        w = (windows or {}).get(key)
        if isinstance(w, dict):
            if not detected:
                label = UNDETECTED_LABELS.get(key, label)
            rows.append(
                {
                    "window": label,
                    "model_version": w.get("model_version"),
                    "from (UTC)": w.get("start"),
                    "to (UTC)": w.get("end"),
                    "rows": w.get("n_rows"),
                    "ECE": w.get("ece"),
                    "Brier": w.get("brier"),
                    "hit rate": w.get("hit_rate"),
                }
            )
    return pd.DataFrame(rows)


def _malformed(result: ArtifactResult, why: str) -> None:
    problem_panel(ArtifactResult(result.name, "wrong_schema", result.path, why), command=COMMAND)


def _optional(name: str, command: str, what: str) -> dict[str, Any] | None:
    """An optional artifact's data, or a one-line note naming the command that writes it."""
    res = loading.artifact(name)
    if res.envelope is not None and isinstance(res.data, dict):
        return dict(res.data)
    state = "not written yet" if res.status == "missing" else f"unusable ({res.status})"
    st.caption(f"`{name}` artifact {state}: {what} appear once `{command}` has run.")
    return None


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
    retrain = _optional("retrain", RETRAIN_COMMAND, "model-version bands and the before/during/after table")
    jobs = _optional("retrain_jobs", JOBS_COMMAND, "retrain outcomes with their validation metrics")
    trig = loading.artifact("retrain_triggers")
    tdata = trig.data if trig.envelope is not None and isinstance(trig.data, dict) else {}
    triggers = triggers_frame(tdata, jobs) if isinstance(tdata.get("triggers", []), list) else pd.DataFrame()
    versions = version_spans(retrain, triggers)

    current = data.get("current_model") or data.get("model")
    current = None if current is None else str(current)
    models = {str(m.get("model")): m for m in data.get("models") or [] if isinstance(m, dict)}
    cur_info = models.get(str(current), {})
    still_open = open_detections(data, tdata, jobs)
    cols = st.columns(4)
    cols[0].metric("current model", str(current or "-"))
    cols[1].metric("its closed trades", f"{int(cur_info.get('n_trades', data.get('n_trades')) or 0):,}")
    cols[2].metric("open detections", len(still_open))
    cols[3].metric("trades without a signal", f"{int(join.get('unmatched_trades') or 0):,}")
    for d in still_open:
        st.warning(
            f"{d.get('kind')} at trade {d.get('n_trades_total')} ({d.get('closed_at')}): {d.get('message')} "
            f"- trigger {d.get('trigger_state')}",
            icon=":material/trending_down:",
        )
    if not still_open:
        since = cur_info.get("live_from")
        n_cur = cur_info.get("n_trades")
        if detections:
            st.info(
                f"No open drift on the current model {current}"
                + (
                    f" (live from {since}, {n_cur} closed trades since: its detector started from zero)"
                    if since
                    else ""
                )
                + f". {len(detections)} earlier detection(s) were answered by a promoted retrain; "
                "the replaced model's history is greyed below.",
                icon=":material/check_circle:",
            )
        else:
            st.success(
                f"The detector raised no alarm over {int(data.get('n_trades') or 0):,} closed trades.",
                icon=":material/check_circle:",
            )
    power = power_text(data.get("power"))
    if power:
        st.caption(power)

    if checks.empty:
        st.info("No check yet: the windowed tests run every 100 closed trades.")
    else:
        axis = st.radio("x axis", ["time (UTC)", "closed trades"], horizontal=True, key="drift_axis")
        x = "n_trades" if axis == "closed trades" else "closed_at"
        grid = st.columns(2)
        for i, (col, th_col, title, _side, y_title) in enumerate(STATISTICS):
            with grid[i % 2]:
                values = pd.to_numeric(checks.get(col, pd.Series(dtype=float)), errors="coerce")
                if not np.isfinite(values.to_numpy(dtype=np.float64)).any():
                    cfg = (data.get("thresholds") or {}).get("config") or {}
                    ref, win = int(cfg.get("reference_size", 500)), int(cfg.get("window", 100))
                    note = EMPTY_NOTES.get(col, "No value yet for {title}.")
                    st.markdown(f"**{title}**")
                    st.info(note.format(need=ref + win, ref=ref, win=win, title=title))
                    continue
                st.plotly_chart(
                    statistic_figure(
                        checks,
                        col,
                        th_col,
                        title,
                        detections,
                        x=x,
                        versions=versions,
                        current=current,
                        y_title=y_title,
                    ),
                    key=f"drift_{col}",
                    theme=None,
                )
                st.caption(
                    CAPTIONS[col]
                    + " Dotted lines: detections; shaded spans: model versions live (UTC); grey: "
                    "a model a promotion replaced (its history, not the live detector)."
                )
        st.caption(
            "Thresholds are simulated for calibrated models; the tests share one false-alarm budget of "
            f"{100 * _alpha_total(data):.1f}% per 5,000 trades. The high-confidence rule alarms *below* its line. "
            "See docs/drift.md."
        )
        csv_download(checks, label="Download checks (CSV)", file_name="drift_checks.csv", key="drift_csv")

    windows = windows_table(retrain, detected=bool(detections))
    if not windows.empty:
        st.markdown("#### Calibration before drift / during / after retrain")
        st.dataframe(windows, hide_index=True)
        st.caption(
            "ECE, Brier score and hit rate of the signal model on out-of-sample windows: the stale model "
            "before and during drift, the retrained one after promotion (and the stale one there, for comparison)."
            + (
                ""
                if detections
                else " The windows split at the change point the demo planted in its data "
                f"({(retrain or {}).get('change_ts', '?')}), not at a detection: this detector found none."
            )
        )
        csv_download(
            windows,
            label="Download calibration windows (CSV)",
            file_name="drift_windows.csv",
            key="drift_windows_csv",
        )

    st.markdown("#### Retrain triggers")
    if trig.envelope is None:
        problem_panel(trig, command=COMMAND)
        return
    status_line(trig)
    if not isinstance(trig.data, dict) or not isinstance(trig.data.get("triggers", []), list):
        _malformed(trig, "expected a JSON object with a 'triggers' list.")
        return
    if triggers.empty:
        st.info("No retrain trigger so far.")
        return
    st.plotly_chart(trigger_timeline_figure(triggers, versions), key="drift_triggers", theme=None)
    st.caption(
        "Each retrain trigger at the close time (UTC) of the trade that raised it, one row per drift kind, "
        "coloured by outcome (grey pending, green promoted, orange rejected, red failed); hover for the note "
        "and the candidate - current metric differences with their 95% bootstrap CIs."
    )
    table = trigger_table(triggers)
    st.dataframe(table, hide_index=True)
    csv_download(
        table, label="Download triggers (CSV)", file_name="retrain_triggers.csv", key="drift_triggers_csv"
    )
    suppressed = tdata.get("suppressed") or []
    if suppressed:
        st.caption(
            f"{len(suppressed)} submission(s) suppressed (duplicate while pending, or within the cooldown)."
        )
