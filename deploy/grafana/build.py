"""Build the two Grafana dashboards of the plan as provisioning JSON, from code (grafanalib).

``python -m deploy.grafana.build`` writes ``deploy/grafana/dashboards/*.json`` (``--check``
exits 1 when the committed files differ). Grafana loads them through
``deploy/grafana/provisioning/dashboards/quantum.yml``; the panels query the Prometheus
datasource of ``provisioning/datasources/quantum.yml`` (uid ``quantum-prometheus``).

**RL Learning Loop**: reward distribution (histogram buckets), cumulative reward, PPO losses,
multipliers actual vs suggested, Sharpe before/after RL, plus the bus health of the loop.
**CLM Drift Detection**: every drift statistic of the last check with its threshold line
(Spiegelhalter z for calibration error, CUSUM, high-confidence win rate, K-S D), detections,
retrain triggers and jobs over time, model version history, artifact ages.

Every query uses plain PromQL (no Grafana macros), so tests evaluate each one against a real
Prometheus, and only metric names :mod:`infra.prom` exports.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import attr
from grafanalib._gen import DashboardEncoder
from grafanalib.core import (
    BarGauge,
    Dashboard,
    GridPos,
    Stat,
    Target,
    Time,
    TimeSeries,
)

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "quantum-prometheus"}

# Per-trade Sharpe ratio from the sums quantum_rl_pnl_usd_{sum,sq_sum} and the trade count n
# (see infra.prom.observe_feedback): mean = S1/n, sd = sqrt(S2/n - mean^2), Sharpe = mean / sd.
_TR = 'service="trainer"'  # every service exports the declared metrics; the trainer fills these
_N = f"scalar(sum(quantum_rl_reward_count{{{_TR}}}))"
_MEAN = f"(sum by (sizing) (quantum_rl_pnl_usd_sum{{{_TR}}}) / {_N})"
SHARPE_EXPR = f"{_MEAN} / sqrt(sum by (sizing) (quantum_rl_pnl_usd_sq_sum{{{_TR}}}) / {_N} - {_MEAN} ^ 2)"

_THRESHOLD_STYLE = [
    {
        "matcher": {"id": "byName", "options": "threshold"},
        "properties": [
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
        ],
    }
]


def _t(expr: str, legend: str, ref: str, **kw: Any) -> Target:
    return Target(expr=expr, legendFormat=legend, refId=ref, datasource=DATASOURCE, **kw)


def _pos(i: int, w: int = 12, h: int = 8) -> GridPos:
    per_row = 24 // w
    return GridPos(h=h, w=w, x=(i % per_row) * w, y=(i // per_row) * h)


def _ts(title: str, targets: list[Target], *, unit: str = "", desc: str = "", **kw: Any) -> TimeSeries:
    """A time-series panel on the project's datasource (placed later by :func:`_dashboard`)."""
    return TimeSeries(title=title, description=desc, dataSource=DATASOURCE, targets=targets, unit=unit, **kw)


def _stat(title: str, targets: list[Target], **kw: Any) -> Stat:
    """A single-value panel showing the last non-null value (placed later by :func:`_dashboard`)."""
    return Stat(title=title, dataSource=DATASOURCE, targets=targets, reduceCalc="lastNotNull", **kw)


def _statistic_vs_threshold(title: str, statistic: str, desc: str) -> TimeSeries:
    return _ts(
        title,
        [
            _t(f'max(quantum_clm_drift_statistic{{statistic="{statistic}"}})', statistic, "A"),
            _t(f'max(quantum_clm_drift_threshold{{statistic="{statistic}"}})', "threshold", "B"),
        ],
        desc=desc,
        overrides=_THRESHOLD_STYLE,
    )


def _dashboard(
    *, title: str, uid: str, tags: list[str], description: str, panels: list[Any], since: str, refresh: str
) -> Dashboard:
    """The dashboard with ``panels`` laid out two per row in list order, UTC, schema 36."""
    return Dashboard(
        title=title,
        uid=uid,
        tags=tags,
        description=description,
        panels=[attr.evolve(p, gridPos=_pos(i)) for i, p in enumerate(panels)],
        time=Time(since, "now"),
        refresh=refresh,
        schemaVersion=36,
        timezone="utc",
    ).auto_panel_ids()


def rl_dashboard() -> Dashboard:
    panels = [
        BarGauge(
            title="Reward distribution",
            description="Feedback rewards learned by the trainer, by histogram bucket (upper edge le).",
            dataSource=DATASOURCE,
            targets=[_t(f"sum by (le) (quantum_rl_reward_bucket{{{_TR}}})", "{{le}}", "A", format="heatmap")],
            min=0,
            max=None,
            orientation="vertical",
            displayMode="gradient",
        ),
        _ts(
            "Cumulative reward",
            [_t(f"sum(quantum_rl_cumulative_reward{{{_TR}}})", "cumulative reward", "A")],
            desc="Sum of every feedback reward the trainer learned since it started.",
        ),
        _ts(
            "PPO losses",
            [
                _t(f"max(quantum_rl_policy_loss{{{_TR}}})", "policy (clipped surrogate)", "A"),
                _t(f"max(quantum_rl_value_loss{{{_TR}}})", "value (critic)", "B"),
            ],
            desc="Losses of the last PPO update (one update per batch of trades).",
        ),
        _ts(
            "Position-size multiplier: actual vs suggested",
            [
                _t(
                    f"sum(quantum_rl_multiplier_used_sum{{{_TR}}}) / sum(quantum_rl_multiplier_used_count{{{_TR}}})",
                    "actual (mean applied by the governor)",
                    "A",
                ),
                _t(
                    f"sum(quantum_rl_multiplier_suggested_sum{{{_TR}}}) / sum(quantum_rl_multiplier_suggested_count{{{_TR}}})",
                    "suggested (mean of the updated policy)",
                    "B",
                ),
            ],
            desc="Means since the trainer started; the governor clamps to [0.5, 2.0].",
        ),
        _stat(
            "Sharpe per trade: static Kelly (before RL) vs as traded (with RL)",
            [_t(SHARPE_EXPR, "{{sizing}}", "A")],
            description=(
                "Per-trade Sharpe of USD P&L since the trainer started: sizing=rl as traded, "
                "sizing=kelly with the multiplier divided out (exact while the position cap did not bind)."
            ),
            decimals=3,
        ),
        _ts(
            "Feedback learned per minute",
            [_t(f"sum(rate(quantum_rl_rewards_total{{{_TR}}}[5m])) * 60", "rl.feedback / min", "A")],
        ),
        _ts(
            "Bridge events per minute",
            [
                _t(
                    'sum by (kind) (rate(quantum_service_events_total{service="feedback_bridge"}[5m])) * 60',
                    "{{kind}}",
                    "A",
                )
            ],
            desc="The feedback bridge's counters (tracked executions, closed trades, parked updates ...).",
        ),
        _ts(
            "Consumer lag and pending",
            [
                _t("max by (topic, group) (quantum_bus_consumer_lag)", "lag {{group}} @ {{topic}}", "A"),
                _t(
                    "max by (topic, group) (quantum_bus_consumer_pending)",
                    "pending {{group}} @ {{topic}}",
                    "B",
                ),
                _t("max(quantum_bus_stream_maxlen)", "stream cap", "C"),
            ],
            desc="Entries not yet delivered (lag) and delivered but not acknowledged (pending), per group.",
        ),
        _ts(
            "Dead letters",
            [_t("max by (topic) (quantum_bus_dead_letters)", "{{topic}}.dlq", "A")],
        ),
        _ts(
            "Age of the last feedback (event time)",
            [_t(f"time() - max(quantum_rl_last_feedback_timestamp_seconds{{{_TR}}})", "age", "A")],
            unit="s",
            desc="Now minus the ts of the last rl.feedback the trainer learned.",
        ),
    ]
    return _dashboard(
        title="RL Learning Loop",
        uid="quantum-rl-learning-loop",
        tags=["quantum", "rl"],
        description="The learning loop: feedback, rewards, PPO updates and what they do to sizing.",
        panels=panels,
        since="now-6h",
        refresh="30s",
    )


def clm_dashboard() -> Dashboard:
    panels = [
        _statistic_vs_threshold(
            "Calibration CUSUM bank vs threshold",
            "calibration_cusum",
            "Largest CUSUM of the calibration bank (flattened calibration lines) on the live model; "
            "drift when above the line.",
        ),
        _statistic_vs_threshold(
            "Accuracy CUSUM bank vs threshold",
            "accuracy_cusum",
            "Largest CUSUM of the accuracy bank (win-rate drops) on the live model; drift above the line.",
        ),
        _statistic_vs_threshold(
            "High-confidence win rate vs floor",
            "high_conf_win_rate",
            "Win rate of high-confidence trades in the last window; drift below the line.",
        ),
        _statistic_vs_threshold(
            "K-S statistic vs threshold",
            "ks_d",
            "Kolmogorov-Smirnov D between the reference and the recent confidence distribution.",
        ),
        _ts(
            "Detections by kind",
            [_t("max by (kind) (quantum_clm_detections)", "{{kind}}", "A")],
            drawStyle="bars",
        ),
        _ts(
            "Retrain triggers timeline",
            [_t("max by (outcome) (quantum_clm_retrain_triggers)", "{{outcome}}", "A")],
            desc="Triggers in the retrain_triggers artifact by outcome (pending until the worker decides).",
            drawStyle="bars",
            stacking={"mode": "normal"},
        ),
        _ts(
            "Model version history",
            [
                _t('max(quantum_clm_retrain_jobs{outcome="promoted"})', "versions promoted", "A"),
                _t('max(quantum_clm_retrain_jobs{outcome="rejected"})', "candidates rejected", "B"),
                _t('max(quantum_clm_retrain_jobs{outcome="failed"})', "jobs failed", "C"),
            ],
            desc="Each step of 'versions promoted' is a new live model version.",
            lineInterpolation="stepAfter",
        ),
        _stat(
            "Current model promoted at",
            [
                _t(
                    'max(quantum_clm_retrain_last_timestamp_seconds{outcome="promoted"}) * 1000',
                    "promoted",
                    "A",
                )
            ],
            format="dateTimeAsIso",
        ),
        _ts(
            "Artifact age",
            [
                _t(
                    "time() - max by (artifact) (quantum_artifact_last_write_timestamp_seconds)",
                    "{{artifact}}",
                    "A",
                )
            ],
            unit="s",
        ),
    ]
    return _dashboard(
        title="CLM Drift Detection",
        uid="quantum-clm-drift",
        tags=["quantum", "clm"],
        description="Continuous learning of the signal model: drift statistics, triggers, retrains, versions.",
        panels=panels,
        since="now-7d",
        refresh="1m",
    )


DASHBOARDS = {"quantum-rl-learning-loop.json": rl_dashboard, "quantum-clm-drift.json": clm_dashboard}


def render(make: Any) -> str:
    """The provisioning JSON of one dashboard."""
    return json.dumps(make().to_json_data(), cls=DashboardEncoder, indent=2, sort_keys=True) + "\n"


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """``(panel title, expr)`` of every target of a dashboard's JSON."""
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards, or with ``--check`` exit 1 when a committed file differs."""
    args = sys.argv[1:] if argv is None else argv
    stale = []
    for name, make in DASHBOARDS.items():
        path, text = OUT_DIR / name, render(make)
        if "--check" in args:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
            continue
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(f"out of date (run python -m deploy.grafana.build): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
