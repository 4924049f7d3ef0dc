"""The Drift tab: each drift statistic against its threshold over trades or time, model-version
bands, the retrain trigger timeline with each trigger's outcome and metrics, and calibration
before drift / during / after retrain.

Layout only: the numbers come from the ``drift`` and ``retrain_triggers`` artifacts written by
``python -m ml.drift_service`` (or the demo), computed by :mod:`ml.drift`, and from the retrain
worker's ``retrain_jobs`` (``python -m ml.retrain_worker``) and the demo's ``retrain`` artifact
(``python -m scripts.demo``), each read through its typed contract
(:mod:`infra.contracts.ml_artifacts`); frames and figures are built in :mod:`dashboard.drift_figures`.
A missing, stale, corrupt, wrong-schema or invalid ``drift`` artifact is shown as such
(``require_artifact``, naming the bad field). The retrain artifacts are optional: without them
the tab says which command writes them and draws what it has. See ``docs/drift.md``.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import (
    chart_style,  # noqa: F401  (sets the shared plotly template)
    loading,
)
from dashboard.components import (
    csv_download,
    md_code,
    md_text,
    problem_panel,
    require_artifact,
    status_line,
)
from dashboard.drift_figures import (  # noqa: F401 - re-exported: the tab's public pieces
    BAND_COLOURS,
    CAPTIONS,
    EMPTY_NOTES,
    KIND_COLOURS,
    METRIC_LABELS,
    OUTCOME_COLOURS,
    OUTCOME_SYMBOLS,
    REPLACED_COLOUR,
    STATISTICS,
    UNDETECTED_LABELS,
    WINDOWS,
    add_shapes,
    add_version_bands,
    alpha_total,
    checks_frame,
    power_text,
    statistic_figure,
    version_note,
    version_spans,
    vline_shape,
)
from dashboard.retrain_figures import (  # noqa: F401 - re-exported: the tab's public pieces
    metric_summary,
    trigger_table,
    trigger_timeline_figure,
    triggers_frame,
    windows_table,
)
from infra.artifacts import ArtifactResult
from infra.contracts.ml_artifacts import DriftData, RetrainDemoData, RetrainJobsData, RetrainTriggersData
from infra.timeutil import utc_iso
from ml.drift_state import open_detections

T = TypeVar("T")
COMMAND = "python -m ml.drift_service"
RETRAIN_COMMAND = "python -m scripts.demo --only drift,retrain"
JOBS_COMMAND = "python -m ml.retrain_worker"


def _optional(name: str, cls: type[T], command: str, what: str) -> tuple[T | None, ArtifactResult]:
    """An optional artifact's typed data, or a one-line note naming the command that writes it
    (and, for a bad file, what is wrong with it)."""
    res = loading.artifact(name)
    if res.usable and isinstance(res.typed, cls):
        return res.typed, res
    state = "not written yet" if res.status == "missing" else f"unusable ({res.status}: {res.message})"
    st.caption(f"{md_code(name)} artifact {md_text(state)}: {what} appear once {md_code(command)} has run.")
    return None, res


def render() -> None:
    st.subheader("Drift")
    result = require_artifact("drift", command=COMMAND)
    if result is None:
        return
    data = result.typed
    if not isinstance(data, DriftData):  # the store decodes every usable drift artifact
        problem_panel(
            ArtifactResult(result.name, "invalid", result.path, "not decoded by its contract"),
            command=COMMAND,
        )
        return
    checks = checks_frame(data)
    detections = data.detections
    retrain, _ = _optional(
        "retrain", RetrainDemoData, RETRAIN_COMMAND, "model-version bands and the before/during/after table"
    )
    jobs, jobs_res = _optional(
        "retrain_jobs", RetrainJobsData, JOBS_COMMAND, "retrain outcomes with their validation metrics"
    )
    trig = loading.artifact("retrain_triggers")
    tdata = trig.typed if trig.usable and isinstance(trig.typed, RetrainTriggersData) else None
    triggers = triggers_frame(tdata, jobs) if tdata is not None else pd.DataFrame()
    versions = version_spans(retrain, triggers)

    current = data.current_model or data.model
    cur_info = next((m for m in data.models if m.model == current), None)
    still_open = open_detections(result.data, trig.data, jobs_res.data)
    unmatched = data.join.unmatched_trades
    cols = st.columns(4)
    cols[0].metric("current model", str(current or "-"))
    cols[1].metric("its closed trades", f"{cur_info.n_trades if cur_info else data.n_trades:,}")
    cols[2].metric("open detections", len(still_open))
    cols[3].metric("trades without a signal", "n/a" if unmatched is None else f"{unmatched:,}")
    for d in still_open:
        st.warning(
            f"{d.get('kind')} at trade {d.get('n_trades_total')} ({d.get('closed_at')}): {d.get('message')} "
            f"- trigger {d.get('trigger_state')}",
            icon=":material/trending_down:",
        )
    if not still_open:
        since = cur_info.live_from if cur_info else None
        n_cur = cur_info.n_trades if cur_info else None
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
                f"The detector raised no alarm over {data.n_trades:,} closed trades.",
                icon=":material/check_circle:",
            )
    power = power_text(data.power)
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
                    cfg = data.thresholds.config
                    ref, win = cfg.reference_size, cfg.window
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
            f"{100 * alpha_total(data):.1f}% per 5,000 trades. The high-confidence rule alarms *below* its line. "
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
                f"({utc_iso(retrain.change_ts) if retrain and retrain.change_ts else '?'}), not at a detection: "
                "this detector found none."
            )
        )
        csv_download(
            windows,
            label="Download calibration windows (CSV)",
            file_name="drift_windows.csv",
            key="drift_windows_csv",
        )

    st.markdown("#### Retrain triggers")
    if tdata is None:
        problem_panel(trig, command=COMMAND)
        return
    status_line(trig)
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
    suppressed = tdata.suppressed
    if suppressed:
        st.caption(
            f"{len(suppressed)} submission(s) suppressed (duplicate while pending, or within the cooldown)."
        )
