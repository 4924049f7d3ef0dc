"""Contracts of the ML artifacts' ``data``: ``ml_telemetry``, ``drift``, ``retrain_triggers``,
``retrain_jobs`` and the demo's ``retrain`` summary.

Each Struct declares the JSON its single writer produces (see :mod:`infra.contracts.artifacts`
for the registry and the writers). Fields that no reader interprets field by field (configs,
power tables) stay plain mappings; every field a reader uses is typed here.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from infra.contracts.artifact_types import Count, Finite, MaybeNaN, NonNeg, Timestamp, Unit


class _Data(msgspec.Struct, kw_only=True):
    """Base: keyword-only fields; unknown keys are tolerated (a newer writer may add fields)."""


# ---------------------------------------------------------------- ml_telemetry (ml.telemetry)
class ModelVersionSpan(_Data, kw_only=True):
    model_version: str
    first_ts: Timestamp
    last_ts: Timestamp
    n: Count


class DataWindow(_Data, kw_only=True):
    start: Timestamp | None = None
    end: Timestamp | None = None
    n_rows: Count
    n_resolved: Count
    symbols: list[str]


class ConfidenceBucket(_Data, kw_only=True):
    bucket_start: Timestamp
    symbol: str
    n: Count
    mean: Unit
    q10: Unit
    q25: Unit
    q50: Unit
    q75: Unit
    q90: Unit
    share_high: Unit


class RecentConfidence(_Data, kw_only=True):
    symbol: str
    ts: Timestamp
    confidence: Unit
    p_up: Unit


class ConfidenceHistogram(_Data, kw_only=True):
    edges: list[Finite]
    counts: dict[str, list[Count]]


class CalibrationInTheLarge(_Data, kw_only=True):
    gap: MaybeNaN
    se: MaybeNaN
    z: MaybeNaN


class ReliabilityBin(_Data, kw_only=True):
    """One reliability bin; ``mean_confidence``, ``hit_rate`` and ``gap`` are NaN for an empty bin."""

    bin_lower: Unit
    bin_upper: Unit
    count: NonNeg
    mean_confidence: MaybeNaN
    hit_rate: MaybeNaN
    gap: MaybeNaN


class Calibration(_Data, kw_only=True):
    """Overall calibration of the resolved predictions; ``None`` when nothing has resolved yet."""

    n: Count
    brier: Unit | None
    ece: Unit | None
    ece_null_q95: Unit | None = None
    hit_rate: Unit | None
    mean_confidence: Unit | None
    citl: CalibrationInTheLarge | None = None
    n_bins: Count
    reliability: list[ReliabilityBin]


class CalibrationBucket(_Data, kw_only=True):
    bucket_start: Timestamp
    n: Count
    brier: Unit | None
    ece: Unit | None
    mean_confidence: Unit | None
    hit_rate: Unit | None
    ece_null_q95: Unit | None = None


class FeatureImportanceRow(_Data, kw_only=True):
    feature: str
    importance_mean: Finite
    importance_std: Finite
    rank: Count


class FeatureImportance(_Data, kw_only=True):
    method: str
    computed_at: Timestamp | None = None
    model_version: str | None = None
    n_rows: Count | None = None
    n_repeats: Count = 0
    top: list[FeatureImportanceRow]


class FeatureContribution(_Data, kw_only=True):
    feature: str
    contribution: Finite


class LatestSignal(_Data, kw_only=True):
    symbol: str
    ts: Timestamp
    action: str
    confidence: Unit
    model_version: str
    top_features: list[FeatureContribution]


class LatestSignals(_Data, kw_only=True):
    attribution_method: str | None = None
    signals: list[LatestSignal]


class MlTelemetryData(_Data, kw_only=True):
    """``ml_telemetry``: what the ML Confidence tab draws (writer: ``ml.telemetry``)."""

    high_confidence_threshold: Unit
    model_version: str | None
    model_versions: list[ModelVersionSpan]
    data_window: DataWindow
    bucket: str
    confidence_over_time: list[ConfidenceBucket]
    confidence_recent: list[RecentConfidence]
    confidence_histogram: ConfidenceHistogram
    calibration: Calibration
    calibration_over_time: list[CalibrationBucket]
    feature_importance: FeatureImportance | None = None
    latest_signals: LatestSignals | None = None
    model: dict[str, Any] | None = None
    per_symbol: dict[str, Calibration] | None = None


# ---------------------------------------------------------------- drift (ml.drift_service)
class DetectorState(_Data, kw_only=True):
    n_trades: Count
    accuracy_cusum: Finite
    calibration_cusum: Finite
    high_conf_win_rate: Finite | None = None
    ks_d: Finite | None = None


class ModelDrift(_Data, kw_only=True):
    model: str
    status: str
    n_trades: Count
    first_trade_at: Timestamp | None = None
    last_trade_at: Timestamp | None = None
    live_from: Timestamp | None = None
    superseded_at: Timestamp | None = None
    superseded_by: str | None = None
    state: DetectorState | None = None
    detections: list[str] = []


class DriftCheck(_Data, kw_only=True):
    """The detector's statistics at one check (every ``check_every`` trades)."""

    n_trades: Count
    closed_at: Timestamp | None = None
    model: str | None = None
    accuracy_cusum: Finite | None = None
    accuracy_cusum_max: Finite | None = None
    accuracy_threshold: Finite | None = None
    calibration_cusum: Finite | None = None
    calibration_cusum_max: Finite | None = None
    calibration_threshold: Finite | None = None
    high_conf_win_rate: Finite | None = None
    high_conf_count: Count | None = None
    high_conf_threshold: Finite | None = None
    ks_d: Finite | None = None
    ks_threshold: Finite | None = None
    shape_z: Finite | None = None
    n_since_reset: Count | None = None


class DriftDetection(_Data, kw_only=True):
    kind: str
    statistic: str
    value: Finite
    threshold: Finite
    message: str
    n_trades: Count
    order_id: str | None = None
    n_trades_total: Count | None = None
    closed_at: Timestamp | None = None
    model: str | None = None
    trigger_status: str | None = None
    trigger_id: str | None = None


class DriftConfig(_Data, kw_only=True):
    """The detector's configuration as far as readers use it (window sizes, false-alarm budget)."""

    window: Count = 100
    reference_size: Count = 500
    alpha_accuracy: Finite = 0.0
    alpha_calibration: Finite = 0.0
    alpha_distribution: Finite = 0.0


class DriftThresholds(_Data, kw_only=True):
    """The simulated thresholds (``accuracy_cusum`` etc., mapped by name) and their configuration."""

    config: DriftConfig = msgspec.field(default_factory=DriftConfig)


class DetectionPower(_Data, kw_only=True):
    """How fast a simulated drift is caught: delays in trades (inf/NaN when never caught in the run)."""

    median_delay: MaybeNaN | None = None
    mean_delay: MaybeNaN | None = None
    p_within_100: Unit | None = None
    p_within_200: Unit | None = None
    p_within_500: Unit | None = None


class DriftJoin(_Data, kw_only=True):
    """How the trades were joined to the signals (by ``order_id``)."""

    trades: Count | None = None
    signals: Count | None = None
    matched: Count | None = None
    unmatched_trades: Count | None = None
    unmatched_signals: Count | None = None
    outcome_source: str | None = None


class DriftData(_Data, kw_only=True):
    """``drift``: the detector's checks and detections (writer: ``ml.drift_service``)."""

    model: str | None = None
    current_model: str | None = None
    models: list[ModelDrift] = []
    n_trades: Count
    check_every: Count | None = None
    thresholds: DriftThresholds = msgspec.field(default_factory=DriftThresholds)
    power: dict[str, DetectionPower] = {}
    checks: list[DriftCheck]
    detections: list[DriftDetection]
    join: DriftJoin = msgspec.field(default_factory=DriftJoin)


# ---------------------------------------------------------------- retrain_triggers (ml.triggers)
Outcome = Literal["pending", "promoted", "rejected", "failed"]


class MetricComparison(_Data, kw_only=True):
    """A validation metric of the current and the candidate model, with the bootstrap CI of the diff."""

    name: str | None = None
    current: Finite | None = None
    candidate: Finite | None = None
    diff: Finite | None = None
    ci_low: Finite | None = None
    ci_high: Finite | None = None


class RetrainTriggerRow(_Data, kw_only=True):
    trigger_id: str
    model: str
    reason: str
    drift_info: dict[str, Any] = {}
    priority: Literal["high", "normal"]
    triggered_at: Timestamp
    outcome: Outcome
    resolved_at: Timestamp | None = None
    note: str = ""
    duplicates: Count = 0
    metrics: dict[str, MetricComparison] | None = None
    new_version: str | None = None


class RetrainTriggersData(_Data, kw_only=True):
    """``retrain_triggers``: the trigger queue (writer: ``ml.drift_service`` via ``TriggerQueue.to_dict``)."""

    cooldown_s: NonNeg
    history_limit: Count
    triggers: list[RetrainTriggerRow]
    suppressed: list[dict[str, Any]] = []


# ---------------------------------------------------------------- retrain_jobs (ml.retrain_worker)
class Validation(_Data, kw_only=True):
    n_rows: Count
    n_bars: Count | None = None
    n_high_current: Count | None = None
    n_high_candidate: Count | None = None
    metrics: dict[str, MetricComparison] = {}
    promote: bool
    reasons: list[str] = []


class RetrainJob(_Data, kw_only=True):
    """One handled trigger; a ``failed`` job may carry only ``trigger_id``, ``outcome`` and ``note``."""

    trigger_id: str
    outcome: Literal["promoted", "rejected", "failed"]
    note: str = ""
    model_ref: str | None = None
    reason: str | None = None
    priority: str | None = None
    triggered_at: Timestamp | None = None
    model: str | None = None
    current_version: str | None = None
    candidate_version: str | None = None
    train_window: dict[str, Any] | None = None
    validation_window: dict[str, Any] | None = None
    validation: Validation | None = None
    decided_at: Timestamp | None = None
    new_version: str | None = None


class JobCounts(_Data, kw_only=True):
    promoted: Count
    rejected: Count
    failed: Count


class RetrainJobsData(_Data, kw_only=True):
    """``retrain_jobs``: the retrain worker's record of outcomes (writer: ``ml.retrain_worker``)."""

    jobs: list[RetrainJob]
    duplicates: dict[str, Count] = {}
    counts: JobCounts


# ---------------------------------------------------------------- retrain (demo step)
class VersionSpan(_Data, kw_only=True):
    version: str
    live_from: Timestamp
    role: str


class WindowScore(_Data, kw_only=True):
    start: Timestamp | None = None
    end: Timestamp | None = None
    n_rows: Count = 0
    model_version: str | None = None
    ece: Unit | None = None
    brier: Unit | None = None
    hit_rate: Unit | None = None
    mean_confidence: Unit | None = None


class RetrainDemoData(_Data, kw_only=True):
    """``retrain``: the demo's before/during/after-drift scores (writer: ``scripts.demo_steps.retrain``)."""

    model: str
    change_ts: Timestamp | None = None
    baseline_trained_until: Timestamp | None = None
    fallback_trigger: bool = False
    versions: list[VersionSpan]
    current_version: str | None = None
    jobs: list[RetrainJob]
    windows: dict[str, WindowScore]
