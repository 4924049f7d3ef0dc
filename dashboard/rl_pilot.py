"""The RL Pilot tab: does learned position sizing beat Kelly, on held-out data?

Layout only: every number comes from the ``rl_pilot`` artifact, which the runner
(``python -m research.rl_sizer.runner``) and the A/B (``python -m research.rl_sizer.evaluate``)
rebuild from their run logs. This module imports neither torch nor stable-baselines3 nor the
research package:

* per run, the episode reward, maximum drawdown and Sharpe ratio over episodes;
* the latest A/B table per data set (metrics per sizer, paired differences against static Kelly
  with 95% bootstrap intervals), the trade source it used (the walk-forward reference model, the
  momentum signal or synthetic trades) and its one-line verdict.

Every chart has a caption saying what it shows and its units, every table a CSV download next to
it; the artifact's generated-at time (and a STALE badge when old) comes from
:func:`dashboard.components.require_artifact`. Times are UTC.

See ``docs/rl_pilot.md``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import chart_style
from dashboard.components import csv_download, require_artifact

ARTIFACT = "rl_pilot"
COMMAND = "python -m research.rl_sizer.runner --episodes 10 --agent ppo"
SERIES = (
    ("reward", "Episode reward", "sum of log growth",
     "Sum of the per-trade rewards of each evaluation episode (log growth of the account by default)."),
    ("max_drawdown", "Max drawdown", "drawdown (fraction)",
     "Deepest fall of the compounded per-trade account returns in each evaluation episode (negative)."),
    ("sharpe", "Sharpe ratio", "Sharpe (annualized)",
     "Sharpe ratio of the per-trade account returns, annualized with the data's trades per year."),
)  # fmt: skip


def runs_frame(runs: Any) -> pd.DataFrame:
    """One row per logged episode: run_id, agent, episode and the logged numbers."""
    rows: list[dict[str, Any]] = []
    for run in runs if isinstance(runs, list) else []:
        for ep in run.get("episodes", []) or []:
            rows.append(
                {"run_id": run.get("run_id", "?"), "agent": run.get("agent", ep.get("agent", "?")), **ep}
            )
    return pd.DataFrame(rows)


def growth_ab_frame(result: dict[str, Any]) -> pd.DataFrame:
    """Rows of a log-growth A/B (``research.rl_sizer.growth_ab``): primary metric, its difference to
    Kelly with the interval and the minimum detectable difference, Sharpe, drawdown, cap shares."""
    primary = str(result.get("primary", "log_growth_1k"))
    out = []
    for r in result.get("rows", []):
        row: dict[str, Any] = {"sizer": r.get("sizer")}
        if "exp_log_growth_1k" in r:
            row["E log growth / 1k trades"] = r.get("exp_log_growth_1k")
        row.update({
            "log growth / 1k trades": r.get("log_growth_1k"), "Sharpe": r.get("sharpe"),
            "max drawdown": r.get("max_drawdown"), "at position cap": r.get("cap_share"),
            "cut by gross cap": r.get("gross_cap_share"), "mean multiplier": r.get("mean_multiplier"),
        })  # fmt: skip
        for key, label in ((primary, "Δ primary"), ("sharpe", "Δ Sharpe"), ("max_drawdown", "Δ max DD")):
            if f"d_{key}" in r:
                lo, hi = r.get(f"d_{key}_ci", [float("nan"), float("nan")])
                row[label] = r[f"d_{key}"]
                row[f"{label} 95% CI"] = f"[{lo:+.3f}, {hi:+.3f}]"
            else:
                row[label] = None
                row[f"{label} 95% CI"] = "baseline"
        row["MDE (primary)"] = r.get(f"mde_{primary}")
        share = r.get("share_of_optimum")
        row["share of optimum"] = (
            f"{100 * share:.0f}%"
            if share is not None and r.get("share_known")
            else ("cannot tell" if share is not None else "")
        )
        out.append(row)
    return pd.DataFrame(out)


def ab_frame(result: dict[str, Any]) -> pd.DataFrame:
    """The A/B rows as a table; intervals as ``[lo, hi]`` text next to each difference."""
    if "primary" in result:
        return growth_ab_frame(result)
    out = []
    for r in result.get("rows", []):
        row = {
            "sizer": r.get("sizer"),
            "Sharpe": r.get("sharpe"),
            "log growth": r.get("log_growth"),
            "max drawdown": r.get("max_drawdown"),
            "mean multiplier": r.get("mean_multiplier"),
        }
        for key, label in (
            ("d_sharpe", "Δ Sharpe"),
            ("d_log_growth", "Δ log growth"),
            ("d_max_drawdown", "Δ max DD"),
        ):
            if key in r:
                lo, hi = r.get(f"{key}_ci", [float("nan"), float("nan")])
                row[label] = r[key]
                row[f"{label} 95% CI"] = f"[{lo:+.3f}, {hi:+.3f}]"
            else:
                row[label] = None
                row[f"{label} 95% CI"] = "baseline"
        out.append(row)
    return pd.DataFrame(out)


SOURCES = {
    "model": "walk-forward reference model (ml.signal_model)",
    "momentum": "momentum signal",
}
"""Trade sources of an A/B, by the ``source`` its result records."""


def ab_source(result: dict[str, Any]) -> str:
    """Which trades an A/B result sized: its ``source`` (``model``, ``momentum``, ``synthetic``).

    Results without ``source`` (written before it existed) are read from the label and config.

    Examples
    --------
    >>> ab_source({"source": "synthetic", "config": {"signal": "model"}})
    'synthetic trades'
    >>> ab_source({"source": "model", "label": "BTC-model"})
    'walk-forward reference model (ml.signal_model)'
    >>> ab_source({"label": "synthetic8000", "config": {"signal": "model"}})
    'synthetic trades'
    >>> ab_source({"label": "old", "config": {}})
    'momentum signal'
    """
    source = result.get("source")
    if source == "synthetic" or (source is None and str(result.get("label", "")).startswith("synthetic")):
        return "synthetic trades"
    if isinstance(source, str):
        return SOURCES.get(source, source)
    cfg = result.get("config")
    signal = (
        str(cfg.get("signal", "momentum")) if isinstance(cfg, dict) else "momentum"
    )  # results from before the option used momentum
    return SOURCES.get(signal, signal)


def _progress_figure(df: pd.DataFrame, column: str, y_title: str) -> go.Figure:
    fig = go.Figure()
    for run_id, g in df.groupby("run_id", sort=False):
        g = g.sort_values("episode")
        fig.add_trace(
            go.Scatter(x=g["episode"].tolist(), y=g[column].tolist(), mode="lines+markers",
                       name=f"{g['agent'].iloc[0]} {run_id}")
        )  # fmt: skip
    return chart_style.style(
        fig, x_title="episode (training cycle)", y_title=y_title, height=chart_style.SMALL_HEIGHT
    )


def render() -> None:
    st.subheader("RL Pilot")
    st.caption(
        "Learned multipliers on the Kelly stake, against static Kelly and a calibrated-Kelly table. "
        "Under the position cap a constant multiplier does change Sharpe, so every A/B has a best-constant row; "
        "log growth is the primary metric."
    )
    result = require_artifact(ARTIFACT, command=COMMAND)
    if result is None:
        return
    data = result.data if isinstance(result.data, dict) else {}
    ab = data.get("ab") or []
    st.markdown("#### Latest A/B: train on an earlier period, evaluate on a later one")
    if not ab:
        st.info(
            "No A/B result yet. Run:\n\n```\npython -m research.rl_sizer.evaluate --data <bars>\n```",
            icon=":material/info:",
        )
    for k, res in enumerate(ab):
        test = res.get("test", {})
        st.markdown(
            f"**{res.get('label', '?')}** — trades from the {ab_source(res)}; test "
            f"{str(test.get('start', ''))[:16].replace('T', ' ')} … {str(test.get('end', ''))[:16].replace('T', ' ')} "
            f"(UTC, {test.get('trades', '?')} trades), seeds {res.get('seeds')}, {res.get('train_steps')} training steps"
        )
        table = ab_frame(res)
        st.dataframe(table, hide_index=True, width="stretch")
        if "primary" in res:
            st.caption(
                "Δ = sizer minus static Kelly on identical held-out trades through the env (position cap, gross "
                "cap, costs). Primary: log growth per 1,000 trades (synthetic: expected log growth, outcome noise "
                "integrated out); intervals across data seeds (synthetic) or from a paired block bootstrap (bars). "
                "MDE: minimum detectable difference (5% two-sided, 80% power). Optimum: "
                + str(res.get("optimum", ""))
                + ". A share of the optimum is stated only when the interval half-width is at most 10% of its gain."
            )
            slopes = pd.DataFrame(res.get("edge_slopes") or [])
            if not slopes.empty:
                st.dataframe(slopes, hide_index=True, key=f"rl_ab_slopes_{k}")
                csv_download(slopes, label="Download edge slopes CSV", file_name=f"rl_ab_slopes_{k}.csv",
                             key=f"rl_ab_slopes_csv_{k}")  # fmt: skip
                st.caption("Realized-vs-claimed net edge per regime: slope 1 = calibrated, 0 = the claim carries "
                           "no information, < 0 = it points the wrong way.")  # fmt: skip
        else:
            st.caption(
                "Δ = sizer minus static Kelly on the identical held-out trades, averaged over seeds; 95% intervals "
                "from a paired block bootstrap. Positive Δ max DD = shallower drawdown."
            )
        st.text("Verdict: " + str(res.get("verdict", "")))
        csv_download(table, label="Download A/B CSV", file_name=f"rl_ab_{k}.csv", key=f"rl_ab_csv_{k}")
    st.markdown("#### Runs: evaluation episode after each training cycle")
    df = runs_frame(data.get("runs"))
    if df.empty:
        st.info(f"No runs logged yet. Run:\n\n```\n{COMMAND}\n```", icon=":material/info:")
        return
    agents = sorted(df["agent"].astype(str).unique())
    chosen = st.multiselect("Agents", agents, default=agents, key="rl_pilot_agents")
    view = df[df["agent"].astype(str).isin(chosen)]
    cols = st.columns(len(SERIES))
    for col, (column, title, y_title, caption) in zip(cols, SERIES):
        with col:
            st.markdown(f"**{title}**")
            st.plotly_chart(
                _progress_figure(view, column, y_title), width="stretch", key=f"rl_pilot_{column}"
            )
            st.caption(caption)
    latest = view.sort_values("episode").groupby("run_id", sort=False).tail(1)
    if "ts" in latest.columns:
        logged = pd.to_datetime(latest["ts"], utc=True, errors="coerce").dt.tz_convert("UTC")
        latest = latest.assign(**{"logged at (UTC)": logged.dt.strftime("%Y-%m-%d %H:%M")})
    show = [c for c in ("run_id", "agent", "episode", "train_steps_total", "sharpe", "log_growth", "max_drawdown",
                        "mean_multiplier", "data", "logged at (UTC)") if c in latest.columns]  # fmt: skip
    st.dataframe(latest[show], hide_index=True, width="stretch")
    st.caption(
        "Latest evaluation episode of each run: Sharpe annualized, log growth in log units of equity, "
        "max drawdown as a negative fraction of peak equity, mean multiplier of the Kelly stake."
    )
    csv_download(latest[show], label="Download runs CSV", file_name="rl_runs_latest.csv", key="rl_runs_csv")
