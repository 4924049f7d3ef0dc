"""The ML Confidence tab: does the model's confidence mean what it says, and what drives it?

Layout only: every number comes from the ``ml_telemetry`` artifact written by
``python -m ml.telemetry`` (or the demo), which :mod:`ml.telemetry` computes. This module never
imports scikit-learn (nor anything that does); it turns the artifact's records into frames and
plotly figures:

* headline calibration numbers (Brier, ECE against what a calibrated model would show,
  hit rate against mean confidence, calibration-in-the-large with its z);
* live confidence per symbol (latest points) with the high-confidence threshold line, and the
  per-bucket median and 10-90% band;
* top-N features by permutation importance;
* the reliability diagram with the diagonal;
* Brier and ECE per time bucket;
* the latest signal per symbol with its top contributing features.

See ``docs/ml_telemetry.md``.

Why this file is long: one tab (its figures and notes); the numbers come from the typed
``ml_telemetry`` artifact.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import chart_style, loading
from dashboard.components import csv_download, md_code, md_text, problem_panel, readable, require_artifact
from infra.artifacts import ArtifactResult
from infra.contracts.ml_artifacts import MlTelemetryData
from infra.contracts.ops_artifacts import DemoDataData

ARTIFACT = "ml_telemetry"
SCHEMA_VERSION = 1
COMMAND = "python -m ml.telemetry"
ALL = "ALL"
COIN_FLIP_BRIER = 0.25
"""Brier score of always answering 0.5: (0.5 - outcome)^2 = 0.25 whatever the outcome."""
NEAR_COIN_FLIP = 0.02  # a Brier within this of 0.25 is "about a coin flip's"


def threshold_relevant(max_confidence: float, threshold: float) -> bool:
    """Draw the high-confidence line only when some shown confidence comes near it (within 0.05).

    A line at 0.80 over a model that never passes 0.60 stretches the axis and suggests signals
    that never happen.

    >>> threshold_relevant(0.57, 0.80), threshold_relevant(0.78, 0.80), threshold_relevant(float("nan"), 0.8)
    (False, True, False)
    """
    return bool(max_confidence == max_confidence and max_confidence >= threshold - 0.05)


def brier_note(brier: Any) -> str | None:
    """A plain sentence comparing the Brier score with a coin flip's 0.25, or None when not a number.

    >>> brier_note(0.2562)
    'Brier 0.2562 vs 0.25 for a coin flip (always 0.5): no better than a coin flip; the skill score 1 - Brier / 0.25 is -0.025.'
    >>> brier_note(0.18)
    'Brier 0.1800 vs 0.25 for a coin flip (always 0.5): better than a coin flip; the skill score 1 - Brier / 0.25 is +0.280.'
    """
    try:
        b = float(brier)
    except (TypeError, ValueError):
        return None
    if b != b:
        return None
    skill = 1.0 - b / COIN_FLIP_BRIER
    if b >= COIN_FLIP_BRIER:
        verdict = "no better than a coin flip"
    elif b > COIN_FLIP_BRIER - NEAR_COIN_FLIP:
        verdict = "about a coin flip's"
    else:
        verdict = "better than a coin flip"
    return (
        f"Brier {b:.4f} vs {COIN_FLIP_BRIER} for a coin flip (always 0.5): {verdict}; "
        f"the skill score 1 - Brier / 0.25 is {skill:+.3f}."
    )


def _frame(records: Any, *, time_cols: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows of the contract (a list of Structs) as a frame; ``time_cols`` parsed as UTC."""
    rows = msgspec.to_builtins(records) if records is not None else []
    df = pd.DataFrame(rows if isinstance(rows, list) else [])
    for col in time_cols:
        if col in df.columns:
            df[col] = pd.to_datetime(df[col], utc=True)
    return df


def _fmt(x: Any, spec: str = ".4f") -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-"
    return "-" if v != v else format(v, spec)


# --------------------------------------------------------------------------- figures
def _y_top(max_confidence: float, threshold: float) -> float:
    """Top of the confidence axis: 1.0 with the threshold line, else just above the data."""
    if threshold_relevant(max_confidence, threshold):
        return 1.0
    top = max_confidence if max_confidence == max_confidence else 0.6
    return min(1.0, max(0.6, round(top + 0.05, 2)))


def confidence_figure(recent: pd.DataFrame, symbols: list[str], threshold: float) -> go.Figure:
    """Latest confidence per symbol, with the high-confidence threshold line when it is relevant."""
    fig = go.Figure()
    shown = recent[recent["symbol"].isin(symbols)]
    peak = float(shown["confidence"].max()) if len(shown) else float("nan")
    for sym in symbols:
        d = recent[recent["symbol"] == sym]
        fig.add_trace(go.Scatter(x=chart_style.utc_naive(d["ts"]), y=d["confidence"], mode="lines", name=sym))
    if threshold_relevant(peak, threshold):
        fig.add_hline(
            y=threshold,
            line_dash="dash",
            line_color="crimson",
            annotation_text=f"high confidence {threshold:.2f}",
        )
    chart_style.style(fig, x_title="signal time (UTC)", y_title="confidence max(p, 1-p) (probability)")
    fig.update_yaxes(range=[0.5, _y_top(peak, threshold)])
    return fig


def band_figure(over_time: pd.DataFrame, symbol: str, threshold: float) -> go.Figure:
    """Per-bucket median confidence with its 10-90% band and the share above the threshold."""
    d = over_time[over_time["symbol"] == symbol].sort_values("bucket_start")
    x = chart_style.utc_naive(d["bucket_start"])
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=d["q90"], mode="lines", line={"width": 0}, showlegend=False))
    fig.add_trace(go.Scatter(x=x, y=d["q10"], mode="lines", line={"width": 0}, fill="tonexty", name="10-90%"))
    fig.add_trace(go.Scatter(x=x, y=d["q50"], mode="lines", name="median"))
    peak = float(d["q90"].max()) if len(d) else float("nan")
    if threshold_relevant(peak, threshold):
        fig.add_hline(y=threshold, line_dash="dash", line_color="crimson")
    chart_style.style(
        fig, x_title="bucket start (UTC)", y_title="confidence (probability)", height=chart_style.SMALL_HEIGHT
    )
    fig.update_yaxes(range=[0.5, _y_top(peak, threshold)])
    return fig


def importance_figure(top: pd.DataFrame) -> go.Figure:
    """Horizontal bars: increase in log loss when the feature is shuffled (± std)."""
    d = top.sort_values("importance_mean")
    fig = go.Figure(
        go.Bar(
            x=d["importance_mean"],
            y=d["feature"],
            orientation="h",
            error_x={"type": "data", "array": d["importance_std"]},
        )
    )
    return chart_style.style(
        fig,
        x_title="log-loss increase when shuffled (nats)",
        y_title="feature",
        height=max(chart_style.SMALL_HEIGHT, 28 * len(d) + 80),
    )


def reliability_figure(rel: pd.DataFrame) -> go.Figure:
    """Hit rate against mean confidence per bin, marker size by count, with the diagonal."""
    d = rel[rel["count"] > 0]
    lo = float(rel["bin_lower"].min()) if len(rel) else 0.5
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[lo, 1.0], y=[lo, 1.0], mode="lines", line={"dash": "dot", "color": "grey"}, name="calibrated"
        )
    )
    size: Any = (d["count"] / max(float(d["count"].max()), 1.0)) ** 0.5 * 30 + 6 if len(d) else []
    fig.add_trace(
        go.Scatter(
            x=d["mean_confidence"],
            y=d["hit_rate"],
            mode="lines+markers",
            marker={"size": size},
            text=[f"n={int(c)}" for c in d["count"]],
            name="model",
        )
    )
    chart_style.style(
        fig, x_title="mean confidence in bin (probability)", y_title="hit rate (share of signals right)"
    )
    fig.update_xaxes(range=[lo, 1.0])
    fig.update_yaxes(range=[0.0, 1.0])
    return fig


def calibration_time_figure(cal_t: pd.DataFrame) -> go.Figure:
    """Brier and ECE per bucket, with the ECE a calibrated model would stay under (95%), dashed."""
    fig = go.Figure()
    x = chart_style.utc_naive(cal_t["bucket_start"])
    fig.add_trace(go.Scatter(x=x, y=cal_t["brier"], mode="lines+markers", name="Brier"))
    fig.add_trace(go.Scatter(x=x, y=cal_t["ece"], mode="lines+markers", name="ECE"))
    if "ece_null_q95" in cal_t.columns:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=cal_t["ece_null_q95"],
                mode="lines",
                line={"dash": "dash", "color": "grey"},
                name="ECE 95% if calibrated",
            )
        )
    fig.add_hline(
        y=COIN_FLIP_BRIER, line_dash="dot", line_color="grey", annotation_text="Brier of a coin flip"
    )
    return chart_style.style(
        fig, x_title="bucket start (UTC)", y_title="score (probability scale, lower is better)"
    )


# --------------------------------------------------------------------------- layout
def _headline(data: MlTelemetryData) -> None:
    cal = data.calibration
    win = data.data_window
    citl = cal.citl
    cols = st.columns(5)
    cols[0].metric("Brier", _fmt(cal.brier), help="Mean (confidence - correct)^2; 0.25 = coin flip.")
    cols[1].metric(
        "ECE",
        _fmt(cal.ece),
        help=(
            "Expected calibration error over confidence bins. A calibrated model with the same "
            f"confidences would stay below {_fmt(cal.ece_null_q95)} in 95% of samples."
        ),
    )
    cols[2].metric("Hit rate", _fmt(cal.hit_rate, ".3f"), help="Share of resolved signals that were right.")
    cols[3].metric("Mean confidence", _fmt(cal.mean_confidence, ".3f"))
    cols[4].metric(
        "Calibration in the large",
        _fmt(citl.gap if citl else None, "+.4f"),
        help=f"Hit rate minus mean confidence; z = {_fmt(citl.z if citl else None, '.2f')} (|z| > 2: miscalibrated).",
    )
    note = brier_note(cal.brier)
    if note:
        st.caption(note)
    start = win.start.isoformat() if win.start else "?"
    end = win.end.isoformat() if win.end else "?"
    st.caption(
        f"Model {md_code(data.model_version or '?')} · data {md_text(start)} to "
        f"{md_text(end)} · {win.n_resolved} resolved of {win.n_rows} "
        f"scored rows · {len(data.model_versions)} walk-forward model versions"
    )
    st.caption(_which_model_note())


def _which_model_note() -> str:
    """Which model this tab shows, and how it relates to the Drift and Router Health tabs."""
    base = (
        "This tab scores the platform's reference model (ml.signal_model: calibrated gradient-boosted "
        "trees on bar features, refitted walk-forward by python -m ml.telemetry) on the bars."
    )
    demo = loading.artifact("demo_data", max_age_s=float("inf"))
    source = demo.typed.signal_source if isinstance(demo.typed, DemoDataData) and demo.usable else None
    if source is None:
        return base
    if "reference model" in str(source):
        return base + " The demo's trades (Router Health, Drift) were entered on this same model's signals."
    return (
        base + " The Drift and Router Health tabs follow the signals that produced the demo's trades, "
        f"{md_text(source)} (model demo-signal-v1): a different model, so their hit rates and calibration "
        "differ from this tab's."
    )


def render() -> None:
    st.subheader("ML Confidence")
    result = require_artifact(ARTIFACT, command=COMMAND, schema_version=SCHEMA_VERSION)
    if result is None:
        return
    data = result.typed
    if not isinstance(data, MlTelemetryData):  # the store decodes every usable ml_telemetry
        problem_panel(
            ArtifactResult(ARTIFACT, "invalid", result.path, "the artifact was not decoded by its contract."),
            command=COMMAND,
        )
        return
    threshold = data.high_confidence_threshold
    _headline(data)

    recent = _frame(data.confidence_recent, time_cols=("ts",))
    over_time = _frame(data.confidence_over_time, time_cols=("bucket_start",))
    bucket = data.bucket
    symbols = sorted(str(s) for s in recent["symbol"].unique()) if len(recent) else []
    st.markdown("**Live confidence**")
    if symbols:
        chosen = st.multiselect(
            "Symbols", symbols, default=symbols[: min(4, len(symbols))], key="mlc_symbols"
        )
        st.plotly_chart(confidence_figure(recent, chosen, threshold), key="mlc_live", theme=None)
        shown = recent.loc[recent["symbol"].isin(chosen), "confidence"]
        peak = float(shown.max()) if len(shown) else float("nan")
        line = (
            f"the dashed line is the high-confidence threshold {threshold:.2f}"
            if threshold_relevant(peak, threshold)
            else f"the high-confidence threshold {threshold:.2f} is not drawn: the highest confidence shown is "
            f"{_fmt(peak, '.2f')}, so none of these signals is high-confidence"
        )
        st.caption(
            "The model's confidence max(p, 1 - p) in each symbol's latest scored bars (hourly, UTC); "
            f"{line}. 0.5 = no opinion."
        )
    else:
        st.info("No scored rows in the artifact yet.", icon=":material/info:")
    if len(over_time):
        options = [ALL, *sorted(s for s in over_time["symbol"].unique() if s != ALL)]
        band_sym = st.selectbox("Confidence band for", options, key="mlc_band_symbol")
        st.markdown(f"**Confidence per {md_text(bucket)} bucket**, {md_text(band_sym)}")
        st.plotly_chart(band_figure(over_time, band_sym, threshold), key="mlc_band", theme=None)
        band_peak = float(over_time.loc[over_time["symbol"] == band_sym, "q90"].max())
        dashed = (
            f"dashed: the high-confidence threshold {threshold:.2f}"
            if threshold_relevant(band_peak, threshold)
            else f"the threshold {threshold:.2f} is above every band and not drawn"
        )
        st.caption(
            f"Median confidence per {bucket} bucket (UTC) with the band holding 80 % of the bucket's "
            f"signals (10th to 90th percentile); {dashed}."
        )

    left, right = st.columns(2)
    with left:
        imp = data.feature_importance
        top = _frame(imp.top if imp else [])
        st.markdown(f"**Top {len(top)} features** (permutation importance)")
        if len(top):
            st.plotly_chart(importance_figure(top), key="mlc_importance", theme=None)
            st.caption(
                "How much the log loss (nats) rises when one feature is shuffled (± std over shuffles): "
                f"larger = the model leans on it more. Computed at {imp.computed_at if imp else '?'} on "
                f"{imp.n_rows if imp else '?'} recent rows for {md_code(imp.model_version if imp else '?')}, "
                f"{imp.n_repeats if imp else '?'} shuffles per feature."
            )
        else:
            st.info("Feature importance needs more resolved rows.", icon=":material/info:")
    with right:
        rel = _frame(data.calibration.reliability)
        st.markdown("**Reliability diagram**")
        if len(rel) and (rel["count"] > 0).any():
            st.plotly_chart(reliability_figure(rel), key="mlc_reliability", theme=None)
            st.caption(
                "Share of signals that were right against their mean confidence, per confidence bin "
                "(marker size: number of signals). On the dotted diagonal the confidence means what it says; "
                "below it the model is over-confident."
            )
        else:
            st.info(
                "No resolved outcomes yet: calibration appears once outcomes are known.",
                icon=":material/info:",
            )

    cal_t = _frame(data.calibration_over_time, time_cols=("bucket_start",))
    st.markdown(f"**Brier and ECE per {bucket} bucket**")
    if len(cal_t):
        st.plotly_chart(calibration_time_figure(cal_t), key="mlc_cal_time", theme=None)
        st.caption(
            f"Brier score and expected calibration error of the resolved signals in each {bucket} bucket "
            "(UTC), both on the probability scale, lower is better; dashed grey: the ECE a calibrated model "
            "stays under in 95 % of buckets of that size; dotted: Brier 0.25 of a coin flip."
        )
        cal_table = cal_t.rename(columns={"bucket_start": "bucket_start (UTC)"})
        st.dataframe(readable(cal_table), hide_index=True, key="mlc_cal_table")
        st.caption(
            f"One row per {bucket} bucket: n resolved signals; Brier, ECE, mean confidence, hit rate and the "
            "ECE 95 % bound of a calibrated model, all on the probability scale (0-1)."
        )
        csv_download(
            cal_table,
            label="Download calibration over time (CSV)",
            file_name="ml_calibration.csv",
            key="mlc_csv",
        )
    else:
        st.info("No resolved outcomes yet.", icon=":material/info:")

    latest = data.latest_signals
    sig = _frame(latest.signals if latest else [], time_cols=("ts",))
    if len(sig) and latest is not None:
        st.markdown(f"**Latest signals** (attribution: {md_code(latest.attribution_method)})")
        if "top_features" in sig.columns:
            sig["top_features"] = [
                ", ".join(f"{f['feature']} {f['contribution']:+.3f}" for f in tf)
                if isinstance(tf, list)
                else ""
                for tf in sig["top_features"]
            ]
        sig = sig.rename(columns={"ts": "ts (UTC)"})
        st.dataframe(readable(sig), hide_index=True, key="mlc_signals_table")
        st.caption(
            "The latest signal per symbol: confidence as a probability (0.5-1), and the features that "
            "pushed it most (signed contribution: log-odds for a linear model, probability units for the "
            "occlusion method); times in UTC."
        )
        csv_download(
            sig, label="Download latest signals (CSV)", file_name="ml_latest_signals.csv", key="mlc_sig_csv"
        )
