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

import msgspec
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import chart_style
from dashboard.components import baked, csv_download, md_code, md_text, readable, require_artifact
from infra.contracts.ops_artifacts import LearningLoopData, SharpeComparison

ARTIFACT = "learning_loop"
COMMAND = "python -m scripts.demo"


def losses_frame(data: LearningLoopData) -> pd.DataFrame:
    """One row per PPO update (update, trades_seen, policy_loss, value_loss, entropy, ...)."""
    return pd.DataFrame(msgspec.to_builtins(data.losses))


def multipliers_frame(data: LearningLoopData) -> pd.DataFrame:
    """One row per learned trade: order_id, multiplier used, multiplier suggested."""
    m = data.multipliers
    n = min(len(m.used), len(m.suggested))
    return pd.DataFrame(
        {
            "trade": range(1, n + 1),
            "order_id": (m.order_id or [""] * n)[:n],
            "used": m.used[:n],
            "suggested": m.suggested[:n],
        }
    )


def _chart(where: Any, fig: go.Figure, *, title: str, caption: str, key: str) -> None:
    """A bold header, the figure and its caption in ``where`` (the tab or a column)."""
    where.markdown(f"**{title}**")
    where.plotly_chart(fig, width="stretch", key=key, theme=None)
    where.caption(caption)


def _num(x: float | None, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def _sharpe_panel(sh: SharpeComparison) -> None:
    c1, c2, c3 = st.columns(3)
    c1.metric("Sharpe, static Kelly", _num(sh.before, ".2f"))
    delta = sh.after - sh.before if sh.before is not None and sh.after is not None else None
    c2.metric(
        "Sharpe, Kelly x PPO", _num(sh.after, ".2f"), _num(delta, "+.2f") if delta is not None else None
    )
    c3.metric("mean multiplier (hold-out)", _num(sh.mean_multiplier_after, ".2f"))
    day = lambda t: "?" if t is None else t.date().isoformat()  # noqa: E731
    st.caption(
        f"Same {sh.n_trades if sh.n_trades is not None else '?'} hold-out trades ({day(sh.from_)} to {day(sh.to)}), "
        f"per-trade account returns, annualised with {_num(sh.periods_per_year, '.0f')} trades per year. "
        "A single hold-out period: the difference is not a significance test."
    )


POLICY_LABELS = {"kelly": "static Kelly", "const": "best constant", "edge": "edge sizer", "ppo": "PPO"}


def growth_frame(data: LearningLoopData) -> pd.DataFrame:
    """Hold-out log growth per policy: final value, difference to Kelly and its 95% interval."""
    g = data.holdout_growth
    rows = []
    for key, total in (g.final if g is not None else {}).items():
        d = g.diff.get(key) if g is not None else None
        ci = d.ci if d is not None and len(d.ci) == 2 else None
        rows.append({
            "policy": POLICY_LABELS.get(key, key), "log growth": total, "Δ vs Kelly": d.total if d else None,
            "Δ 95% CI": f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci is not None else "baseline",
            "Δ per 1,000 trades": d.per_1k if d else None,
        })  # fmt: skip
    return pd.DataFrame(rows)


def buckets_frame(data: LearningLoopData) -> pd.DataFrame:
    """Per state bucket: learned edge ± s.e., each policy's multiplier, the hindsight-best multiplier."""
    rows = []
    for b in data.buckets:
        edge, se = b.edge, b.edge_se
        rows.append({
            "regime": b.regime, "confidence bucket": b.confidence_bucket,
            "mean confidence": b.confidence, "hold-out trades": b.trades,
            "learned net edge": edge,
            "edge 95% CI": f"[{edge - 1.96 * se:+.3f}, {edge + 1.96 * se:+.3f}]" if edge is not None and se is not None else "n/a",
            "no edge": "n/a" if b.no_edge is None else ("yes" if b.no_edge else "no"),
            "edge ×": b.edge_multiplier, "PPO ×": b.ppo_multiplier,
            "best constant ×": b.const_multiplier, "Kelly ×": b.kelly_multiplier,
            "hindsight best × (upper bound)": b.hindsight_best_multiplier,
        })  # fmt: skip
    return pd.DataFrame(rows)


def _growth_section(data: LearningLoopData) -> None:
    g = data.holdout_growth
    if g is None or not g.final:
        st.info(
            "This artifact predates the held-out log-growth comparison. Run:\n\n```\n" + COMMAND + "\n```"
        )
        return
    st.text("Verdict: " + data.verdict)
    left, right = st.columns(2)
    fig = go.Figure()
    x = list(g.trade)
    for key, ys in g.cumulative.items():
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
    kelly = g.cumulative.get("kelly", [])
    for key, d in g.diff.items():
        base = [a - b for a, b in zip(g.cumulative.get(key, []), kelly, strict=False)]
        band = d.band or [0.0] * len(base)
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
    data = result.typed
    if not isinstance(data, LearningLoopData):  # the store decodes every usable learning_loop
        return
    summ = data.summary
    gov = summ.governor
    st.write(
        f"**{summ.feedback_learned}** feedback events learned in **{summ.updates}** PPO updates, "
        f"{len(summ.checkpoints)} checkpoints; governor mode: {md_code(gov.mode if gov else '?')} "
        f"({md_text(gov.policy_info if gov else '')})."
    )
    _sharpe_panel(data.sharpe)
    _growth_section(data)

    left, right = st.columns(2)
    hist = data.reward_distribution
    edges, counts = (hist.edges, hist.counts) if hist is not None else ([], [])
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

    cum = data.cumulative_reward
    trades = list(cum.trade) if cum else []
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=trades, y=list(cum.reward) if cum else [], mode="lines", name="feedback reward")
    )
    fig.add_trace(
        go.Scatter(
            x=trades, y=list(cum.policy_reward) if cum else [], mode="lines", name="policy reward (sized)"
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
