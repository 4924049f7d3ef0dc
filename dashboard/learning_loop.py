"""The RL Learning Loop tab: what the online PPO sizer learned from the feedback stream.

Layout only: every number comes from the ``learning_loop`` artifact that
``research.rl_sizer.trainer.demo_step`` (``python -m scripts.demo``) writes. This module imports
neither torch nor the research package:

* reward distribution and cumulative reward of the feedback events learned;
* policy and value loss per PPO update;
* multipliers used (sampled for exploration) against those the deterministic policy suggested;
* Sharpe before (static Kelly) and after (Kelly x PPO multiplier) on the same hold-out trades.

See ``docs/learning_loop.md``.
"""

from __future__ import annotations

import itertools
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import chart_style
from dashboard.components import csv_download, require_artifact

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


def render() -> None:
    st.subheader("RL Learning Loop")
    st.caption(
        "Signal -> governor (Kelly x PPO multiplier) -> execution -> feedback bridge -> online PPO trainer. "
        "The sizer learns a multiplier in [0.5, 2.0] on the Kelly stake from each closed trade's reward."
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
