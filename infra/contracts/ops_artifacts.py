"""Contracts of the operations and research artifacts' ``data``: ``feedback``, ``autotune`` (and
``autotune_dry_run``), ``doctor``, ``demo_data``, ``rl_pilot`` and ``learning_loop``.

See :mod:`infra.contracts.artifacts` for the registry and the writers. Numbers a reader shows
are typed; research tables that are only drawn as they are (configs, curves) stay mappings.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from infra.contracts.artifact_types import Count, Finite, MaybeNaN, NonNeg, Timestamp, Unit


class _Data(msgspec.Struct, kw_only=True):
    """Base: keyword-only fields; unknown keys are tolerated (a newer writer may add fields)."""


# ---------------------------------------------------------------- feedback (execution.feedback_bridge)
class FeedbackCounts(_Data, kw_only=True):
    tracked: Count
    closed: Count
    parked: Count = 0
    unparked: Count = 0
    duplicates: Count = 0
    deferred: Count = 0
    orphans: Count = 0
    dead_lettered: Count
    messages: Count = 0
    batches: Count = 0


class FeedbackData(_Data, kw_only=True):
    """``feedback``: the bridge's counts and reward distribution (writer: the demo's feedback step)."""

    counts: FeedbackCounts
    reward: dict[str, Any] = {}
    cumulative: dict[str, list[Any]] = {}
    components_mean: dict[str, MaybeNaN] = {}
    trades_in_log: Count | None = None
    open_trades: Count | None = None
    parked_orders: Count | None = None
    params: dict[str, Finite] = {}


# ---------------------------------------------------------------- autotune (execution.risk_autotune)
class Adjustment(_Data, kw_only=True):
    symbol: str
    threshold: str
    old: Finite
    new: Finite
    reason: str


class SymbolInputs(_Data, kw_only=True):
    """What the autotuner read for one symbol; statistics are NaN when undefined (too few trades)."""

    n_trades: Count
    psr: MaybeNaN | None = None
    dsr: MaybeNaN | None = None
    sharpe: MaybeNaN | None = None
    sharpe_lo: MaybeNaN | None = None
    n_obs: Count | None = None
    max_drawdown: MaybeNaN | None = None
    mean_confidence: Unit | None = None
    ece: Unit | None = None
    drift: bool | None = None


class AutotuneData(_Data, kw_only=True):
    """``autotune`` / ``autotune_dry_run``: one tuning cycle (writer: ``execution.risk_autotune``)."""

    cycle_at: Timestamp
    dry_run: bool
    applied: bool
    thresholds_path: str
    config: dict[str, Any] = {}
    inputs: dict[str, SymbolInputs]
    sources: dict[str, Any] = {}
    adjustments: list[Adjustment]
    report: dict[str, Any] = {}
    thresholds: dict[str, dict[str, Finite]]
    insufficient_data: list[str] = []
    tuned_symbols: list[str] = []
    stale_symbols: list[str] = []


# ---------------------------------------------------------------- doctor (scripts.doctor)
class DoctorCheckRow(_Data, kw_only=True):
    name: str
    status: Literal["OK", "WARN", "FAIL"]
    message: str
    details: dict[str, Any] = {}


class DoctorSummary(_Data, kw_only=True):
    status: Literal["OK", "WARN", "FAIL"]
    exit_code: Literal[0, 1, 2]
    counts: dict[str, Count]
    seconds: Finite
    fixes: list[dict[str, str]] = []


class DoctorData(_Data, kw_only=True):
    """``doctor``: the checks and the per-symbol / per-route doctor confidence (writer: ``scripts.doctor``)."""

    symbol_confidence: dict[str, Unit]
    route_confidence: dict[str, Unit] = {}
    checks: list[DoctorCheckRow] = []
    summary: DoctorSummary | None = None


# ---------------------------------------------------------------- demo_data (scripts.demo)
class DemoWindow(_Data, kw_only=True):
    start: Timestamp
    end: Timestamp


class DemoDataData(_Data, kw_only=True):
    """``demo_data``: what ``python -m scripts.demo`` generated and where (writer: ``scripts.demo``)."""

    seed: int
    scale: str
    bars_source: str
    signal_source: str
    symbols: list[str]
    routes: list[str]
    n_bars: Count
    n_trades: Count
    n_orders: Count
    change_ts: Timestamp | None = None
    window: DemoWindow | None = None
    files: dict[str, str]


# ---------------------------------------------------------------- rl_pilot (research.rl_sizer)
class Episode(_Data, kw_only=True):
    """One episode's summary; ratio statistics are NaN when undefined (e.g. no trade)."""

    episode: Count
    run_id: str
    agent: str
    seed: int
    train_steps_total: Count | None = None
    reward: MaybeNaN
    sharpe: MaybeNaN
    log_growth: MaybeNaN
    max_drawdown: MaybeNaN
    mean_multiplier: MaybeNaN
    trades: Finite
    final_equity: MaybeNaN
    terminated: bool = False
    data: str | None = None
    window: dict[str, Any] | None = None
    ts: Timestamp | None = None
    dry_run: bool = False


class PilotRun(_Data, kw_only=True):
    run_id: str
    agent: str
    seed: int
    data: str | None = None
    dry_run: bool = False
    created_at: Timestamp | None = None
    episodes: list[Episode]


class RlPilotData(_Data, kw_only=True):
    """``rl_pilot``: the pilot's runs and A/B tables (writer: ``research.rl_sizer.pilot_artifact``)."""

    runs: list[PilotRun]
    ab: list[dict[str, Any]] = []
    dry_run: bool = False
    error: str | None = None


# ---------------------------------------------------------------- learning_loop (research.rl_sizer.trainer)
class LossRow(_Data, kw_only=True):
    update: Count
    trades_seen: Count
    policy_loss: MaybeNaN
    value_loss: MaybeNaN
    entropy: MaybeNaN
    approx_kl: MaybeNaN
    clip_fraction: MaybeNaN
    grad_steps: Count


class GovernorInfo(_Data, kw_only=True):
    mode: str
    policy_info: str = ""
    decisions: Count = 0
    fallbacks: Count = 0
    capped: Count = 0
    no_edge: Count = 0
    last_fallback_reason: str | None = None


class LearningSummary(_Data, kw_only=True):
    trades: Count
    train_trades: Count | None = None
    holdout_trades: Count | None = None
    feedback_learned: Count
    updates: Count
    checkpoints: list[str] = []
    governor: GovernorInfo | None = None
    governor_config: dict[str, Any] = {}
    edge: dict[str, Any] = {}


class Histogram(_Data, kw_only=True):
    """Bin ``edges`` (one more than ``counts``) and the count in each bin."""

    edges: list[Finite]
    counts: list[NonNeg]


class CumulativeReward(_Data, kw_only=True):
    trade: list[Count]
    reward: list[Finite]
    policy_reward: list[Finite] = []


class Multipliers(_Data, kw_only=True):
    """Per learned trade: the multiplier used (sampled) and the one suggested (deterministic)."""

    order_id: list[str] = []
    used: list[Finite] = []
    suggested: list[MaybeNaN] = []
    """NaN for a trade the deterministic policy did not score."""


class SharpeComparison(_Data, kw_only=True):
    """Hold-out Sharpe of static Kelly (``before``) and Kelly x PPO (``after``); ``None`` if undefined."""

    before: Finite | None = None
    after: Finite | None = None
    periods_per_year: Finite | None = None
    n_trades: Count | None = None
    from_: Timestamp | None = msgspec.field(default=None, name="from")
    to: Timestamp | None = None
    mean_multiplier_after: Finite | None = None


class GrowthDiff(_Data, kw_only=True):
    """A policy's hold-out log growth minus static Kelly's, with its 95% interval."""

    total: Finite
    ci: list[Finite] = []
    per_1k: Finite | None = None
    band: list[Finite] = []


class HoldoutGrowth(_Data, kw_only=True):
    trade: list[Count] = []
    cumulative: dict[str, list[Finite]] = {}
    diff: dict[str, GrowthDiff] = {}
    final: dict[str, Finite] = {}
    verdict: str = ""


class StateBucket(_Data, kw_only=True):
    """One state bucket: learned edge +- s.e. and each policy's multiplier there (NaN: not learned)."""

    regime: int
    confidence_bucket: int
    confidence: MaybeNaN | None = None
    trades: Count
    edge: MaybeNaN | None = None
    edge_se: MaybeNaN | None = None
    no_edge: bool | None = None
    edge_multiplier: MaybeNaN | None = None
    ppo_multiplier: MaybeNaN | None = None
    const_multiplier: MaybeNaN | None = None
    kelly_multiplier: MaybeNaN | None = None
    hindsight_best_multiplier: MaybeNaN | None = None


class LearningLoopData(_Data, kw_only=True):
    """``learning_loop``: the online trainer's demo run (writer: ``scripts.demo_steps.learning_demo``)."""

    summary: LearningSummary
    reward_distribution: Histogram | None = None
    cumulative_reward: CumulativeReward | None = None
    losses: list[LossRow] = []
    multipliers: Multipliers = msgspec.field(default_factory=Multipliers)
    sharpe: SharpeComparison = msgspec.field(default_factory=SharpeComparison)
    holdout_growth: HoldoutGrowth | None = None
    buckets: list[StateBucket] = []
    verdict: str
    error: str | None = None
