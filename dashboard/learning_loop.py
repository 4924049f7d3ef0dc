"""The RL Learning Loop tab: what the online PPO sizer learned from the feedback stream.

Layout only: every number comes from the ``learning_loop`` artifact that
``scripts.demo_steps.learning_loop.demo_step`` (``python -m scripts.demo``) writes. This module imports
neither torch nor the research package:

* reward distribution and cumulative reward of the feedback events learned;
* policy and value loss per PPO update;
* multipliers used (sampled for exploration) against those the deterministic policy suggested;
* Sharpe before (static Kelly) and after (Kelly x PPO multiplier) on the same hold-out trades;
* held-out log growth of static Kelly, the best constant, the edge sizer and PPO, with each one's
  difference to Kelly and its interval, and the verdict line;
* per state bucket the edge sizer's learned net edge with its uncertainty and the multiplier each
  policy chooses beside the hindsight-best one (an upper bound).

See ``docs/learning_loop.md``.
"""

from __future__ import annotations

import itertools
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import chart_style
from dashboard.components import baked, csv_download, readable, require_artifact

ARTIFACT = "learning_loop"
COMMAND = "python -m scripts.demo"


def losses_frame(data: dict[str, Any]) -> pd.DataFrame:
    """One row per PPO update (update, trades_seen, policy_loss, value_loss, entropy, ...)."""
    rows = data.get("losses") or []
    return pd.DataFrame(rows if isinstance(rows, list) else [])


def multipliers_frame(data: dict[str, Any]) -> pd.DataFrame:
    """One row per learned trade: order_id, multiplier used, multiplier suggested."""
    m = data.get("multipliers") or {}
    used, sugg = m.get("used") or [], m.get("suggested") or []
    n = min(len(used), len(sugg))
    return pd.DataFrame(
        {
            "trade": range(1, n + 1),
            "order_id": (m.get("order_id") or [""] * n)[:n],
            "used": used[:n],
            "suggested": sugg[:n],
        }
    )


def _chart(where: Any, fig: go.Figure, *, title: str, caption: str, key: str) -> None:
    """A bold header, the figure and its caption in ``where`` (the tab or a column)."""
    where.markdown(f"**{title}**")
    where.plotly_chart(fig, width="stretch", key=key, theme=None)
    where.caption(caption)


def _sharpe_panel(sh: dict[str, Any]) -> None:
    c1, c2, c3 = st.columns(3)
    before, after = sh.get("before"), sh.get("after")
    c1.metric("Sharpe, static Kelly", f"{before:.2f}" if isinstance(before, (int, float)) else "n/a")
    delta = after - before if isinstance(before, (int, float)) and isinstance(after, (int, float)) else None
    c2.metric(
        "Sharpe, Kelly x PPO",
        f"{after:.2f}" if isinstance(after, (int, float)) else "n/a",
        f"{delta:+.2f}" if delta is not None else None,
    )
    c3.metric("mean multiplier (hold-out)", f"{sh.get('mean_multiplier_after', float('nan')):.2f}")
    st.caption(
        f"Same {sh.get('n_trades', '?')} hold-out trades ({sh.get('from', '?')[:10]} to {sh.get('to', '?')[:10]}), "
        f"per-trade account returns, annualised with {sh.get('periods_per_year', float('nan')):.0f} trades per year. "
        "A single hold-out period: the difference is not a significance test."
    )


POLICY_LABELS = {"kelly": "static Kelly", "const": "best constant", "edge": "edge sizer", "ppo": "PPO"}


def growth_frame(data: dict[str, Any]) -> pd.DataFrame:
    """Hold-out log growth per policy: final value, difference to Kelly and its 95% interval."""
    g = data.get("holdout_growth") or {}
    rows = []
    for key, total in (g.get("final") or {}).items():
        d = (g.get("diff") or {}).get(key) or {}
        lo, hi = d.get("ci", [None, None])
        rows.append({
            "policy": POLICY_LABELS.get(key, key), "log growth": total, "Δ vs Kelly": d.get("total"),
            "Δ 95% CI": f"[{lo:+.4f}, {hi:+.4f}]" if lo is not None and hi is not None else "baseline",
            "Δ per 1,000 trades": d.get("per_1k"),
        })  # fmt: skip
    return pd.DataFrame(rows)


def buckets_frame(data: dict[str, Any]) -> pd.DataFrame:
    """Per state bucket: learned edge ± s.e., each policy's multiplier, the hindsight-best multiplier."""
    rows = []
    for b in data.get("buckets") or []:
        edge, se = b.get("edge"), b.get("edge_se")
        rows.append({
            "regime": b.get("regime"), "confidence bucket": b.get("confidence_bucket"),
            "mean confidence": b.get("confidence"), "hold-out trades": b.get("trades"),
            "learned net edge": edge,
            "edge 95% CI": f"[{edge - 1.96 * se:+.3f}, {edge + 1.96 * se:+.3f}]" if edge is not None and se is not None else "n/a",
            "no edge": "yes" if b.get("no_edge") else ("no" if "no_edge" in b else "n/a"),
            "edge ×": b.get("edge_multiplier"), "PPO ×": b.get("ppo_multiplier"),
            "best constant ×": b.get("const_multiplier"), "Kelly ×": b.get("kelly_multiplier"),
            "hindsight best × (upper bound)": b.get("hindsight_best_multiplier"),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _growth_section(data: dict[str, Any]) -> None:
    g = data.get("holdout_growth") or {}
    if not g:
        st.info(
            "This artifact predates the held-out log-growth comparison. Run:\n\n```\n" + COMMAND + "\n```"
        )
        return
    st.text("Verdict: " + str(data.get("verdict", "")))
    left, right = st.columns(2)
    fig = go.Figure()
    x = g.get("trade", [])
    for key, ys in (g.get("cumulative") or {}).items():
        fig.add_trace(go.Scatter(x=x, y=ys, mode="lines", name=POLICY_LABELS.get(key, key)))
    chart_style.style(fig, x_title="hold-out trade (count)", y_title="cumulative log growth (log units)",
                      height=chart_style.SMALL_HEIGHT)  # fmt: skip
    _chart(
        left, fig, title="Held-out log growth", key="ll_growth",
        caption="Cumulative log growth of the account on the same hold-out trades for each sizing policy "
        "(static Kelly, the best constant multiplier fitted on the training trades, the edge sizer "
        "learned online, the deterministic PPO policy).",
    )  # fmt: skip
    fig = go.Figure()
    for key, d in (g.get("diff") or {}).items():
        base = [a - b for a, b in zip(g["cumulative"][key], g["cumulative"]["kelly"], strict=False)]
        band = d.get("band") or [0.0] * len(base)
        name = POLICY_LABELS.get(key, key)
        fig.add_trace(go.Scatter(x=x, y=base, mode="lines", name=name))
        fig.add_trace(go.Scatter(x=x + x[::-1], y=[a + w for a, w in zip(base, band, strict=False)]
                                 + [a - w for a, w in zip(base, band, strict=False)][::-1],
                                 fill="toself", line={"width": 0}, opacity=0.15, name=f"{name} 95% band",
                                 showlegend=False))  # fmt: skip
    chart_style.style(fig, x_title="hold-out trade (count)", y_title="log growth minus Kelly's (log units)",
                      height=chart_style.SMALL_HEIGHT)  # fmt: skip
    _chart(
        right, fig, title="Difference to static Kelly", key="ll_growth_diff",
        caption="Cumulative log growth minus static Kelly's, with a ±1.96 sqrt(t) sd band of the per-trade "
        "difference (independent trades); the verdict's intervals are a block bootstrap of the total.",
    )  # fmt: skip
    table = growth_frame(data)
    deltas = [c for c in ("Δ vs Kelly", "Δ per 1,000 trades") if c in table.columns]
    styled = readable(table).format("{:+.4f}", subset=deltas, na_rep="baseline")  # Kelly's own row
    st.dataframe(baked(styled), hide_index=True, key="ll_growth_table")
    csv_download(
        table,
        label="Download hold-out growth (CSV)",
        file_name="learning_loop_growth.csv",
        key="ll_growth_csv",
    )
    buckets = buckets_frame(data)
    if not buckets.empty:
        st.markdown("**Per state bucket: learned edge and the multiplier each policy chooses**")
        st.dataframe(buckets, hide_index=True, key="ll_bucket_table")
        st.caption(
            "Regime x confidence tercile of the hold-out trades. Learned net edge per unit risk of the edge "
            "sizer at the bucket's mean state with its 95% posterior interval ('no edge' when <= 0: the sizer "
            "then sizes at the lower clamp). The hindsight-best multiplier is chosen on the hold-out trades "
            "themselves: an upper bound, not an achievable policy."
        )
        csv_download(
            buckets,
            label="Download buckets (CSV)",
            file_name="learning_loop_buckets.csv",
            key="ll_bucket_csv",
        )


def render() -> None:
    st.subheader("RL Learning Loop")
    st.caption(
        "Signal -> governor (Kelly x multiplier) -> execution -> feedback bridge -> online trainer. "
        "From each closed trade the edge sizer learns the net edge per state (sizing by fractional Kelly on "
        "it) and PPO, a labelled baseline, learns a multiplier in [0.5, 2.0] by policy gradient."
    )
    result = require_artifact(ARTIFACT, command=COMMAND)
    if result is None:
        return
    data: dict[str, Any] = result.data if isinstance(result.data, dict) else {}
    summ = data.get("summary") or {}
    gov = summ.get("governor") or {}
    st.write(
        f"**{summ.get('feedback_learned', 0)}** feedback events learned in **{summ.get('updates', 0)}** PPO updates, "
        f"{len(summ.get('checkpoints') or [])} checkpoints; governor mode: `{gov.get('mode', '?')}` "
        f"({gov.get('policy_info', '')})."
    )
    _sharpe_panel(data.get("sharpe") or {})
    _growth_section(data)

    left, right = st.columns(2)
    hist = data.get("reward_distribution") or {}
    edges, counts = hist.get("edges") or [], hist.get("counts") or []
    fig = go.Figure()
    if len(edges) == len(counts) + 1 and counts:
        mids = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
        widths = [b - a for a, b in itertools.pairwise(edges)]
        fig.add_trace(go.Bar(x=mids, y=counts, width=widths, name="trades"))
    chart_style.style(
        fig, x_title="reward per trade (scaled PnL %, unitless)", y_title="trades (count)",
        height=chart_style.SMALL_HEIGHT,
    )  # fmt: skip
    _chart(
        left, fig, title="Reward distribution", key="ll_reward_hist",
        caption="Histogram of the reward of each feedback event learned: the trade's PnL in % of its size, "
        "scaled, minus the duration, drawdown and confidence penalties, plus the Sharpe bonus.",
    )  # fmt: skip

    cum = data.get("cumulative_reward") or {}
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=cum.get("trade", []), y=cum.get("reward", []), mode="lines", name="feedback reward")
    )
    fig.add_trace(
        go.Scatter(
            x=cum.get("trade", []), y=cum.get("policy_reward", []), mode="lines", name="policy reward (sized)"
        )
    )
    chart_style.style(
        fig, x_title="feedback event (trade #, in close order)", y_title="cumulative reward (unitless)",
        height=chart_style.SMALL_HEIGHT,
    )  # fmt: skip
    _chart(
        right, fig, title="Cumulative reward", key="ll_cum_reward",
        caption="Running sum of the feedback reward (per unit of position, independent of the multiplier) "
        "and of the policy reward the sizer optimises (the reward scaled by its multiplier, less a "
        "risk-aversion penalty).",
    )  # fmt: skip

    losses = losses_frame(data)
    left, right = st.columns(2)
    panels = (
        (left, "policy_loss", "Policy loss", "PPO clipped surrogate loss of each update (unitless; lower = the "
         "update moved the policy towards higher advantage)."),
        (right, "value_loss", "Value loss", "Mean squared error of the value head against the rewards of each "
         "update (reward units squared)."),
    )  # fmt: skip
    for col, key, title, caption in panels:
        fig = go.Figure()
        if key in losses:
            fig.add_trace(go.Scatter(x=losses["update"], y=losses[key], mode="lines+markers", name=key))
        chart_style.style(
            fig,
            x_title="PPO update (count)",
            y_title=f"{title.lower()} (unitless)",
            height=chart_style.SMALL_HEIGHT,
        )
        _chart(col, fig, title=title, caption=caption, key=f"ll_{key}")

    mult = multipliers_frame(data)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=mult["trade"], y=mult["used"], mode="markers", name="used", marker={"size": 3})
    )
    fig.add_trace(go.Scatter(x=mult["trade"], y=mult["suggested"], mode="lines", name="suggested"))
    chart_style.style(
        fig, x_title="feedback event (trade #, in close order)", y_title="multiplier (× Kelly stake)"
    )
    fig.update_yaxes(range=[0.45, 2.05])
    _chart(
        st, fig, title="Multipliers: used (sampled) vs suggested (deterministic)", key="ll_multipliers",
        caption="The multiplier on the Kelly stake (0.5 to 2.0) the governor used for each learned trade "
        "(sampled from the policy for exploration) and the one the deterministic policy suggested.",
    )  # fmt: skip
    st.dataframe(mult, hide_index=True, key="ll_mult_table", height=210)
    csv_download(
        mult, label="Download multipliers (CSV)", file_name="learning_loop_multipliers.csv", key="ll_mult_csv"
    )
    if not losses.empty:
        st.markdown("**PPO updates**")
        st.dataframe(losses, hide_index=True, key="ll_loss_table", height=210)
        st.caption(
            "One row per PPO update: trades seen, policy and value loss, entropy, approximate KL divergence "
            "and the share of clipped ratios (all unitless)."
        )
        csv_download(
            losses,
            label="Download PPO updates (CSV)",
            file_name="learning_loop_updates.csv",
            key="ll_loss_csv",
        )
