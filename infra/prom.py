"""Prometheus metrics of the learning loop, defined once per registry.

:func:`make_metrics` builds every metric on a registry of its own (a fresh
:class:`prometheus_client.CollectorRegistry` by default), so each process (and each test) gets its
own set and nothing collides on the global default registry. Long-running services export it with
:func:`serve_metrics` on loopback only (``settings.metrics_port``, env ``METRICS_PORT``).

=========================================  =======  ==============================================
name                                       type     meaning
=========================================  =======  ==============================================
quantum_rl_rewards_total                   counter  feedback rewards consumed by the PPO trainer
quantum_rl_reward_avg                      gauge    mean reward over the trainer's last 100 trades
quantum_rl_training_steps                  counter  PPO updates done (one per batch of 50 trades)
quantum_rl_policy_loss                     gauge    clipped-surrogate loss of the last update
quantum_rl_value_loss                      gauge    critic loss of the last update
quantum_clm_drift_checks                   counter  drift checks run (one per 100 closed trades)
quantum_clm_drifts_detected{type}          counter  detections by type (accuracy, calibration, ...)
quantum_clm_retrains_triggered             counter  ``model.retrain.trigger`` events published
quantum_clm_mean_abs_confidence_error      gauge    mean ``|confidence - outcome|`` of the last window
quantum_clm_confidence_calibration         gauge    expected calibration error (ECE) of the window
quantum_rl_reward                          histo    reward of every feedback event the trainer used
quantum_rl_cumulative_reward               gauge    sum of those rewards (the histogram has no _sum:
                                                    prometheus_client drops it with negative buckets)
quantum_rl_multiplier_used                 histo    multiplier the governor applied to the trade
quantum_rl_multiplier_suggested            histo    updated policy's multiplier, last state of a batch
quantum_rl_last_feedback_timestamp_seconds gauge    event time (``ts``) of the last feedback learned
quantum_rl_pnl_usd_sum{sizing}             gauge    sum of trade P&L, ``rl`` as traded, ``kelly`` /m
quantum_rl_pnl_usd_sq_sum{sizing}          gauge    sum of squared trade P&L (for the Sharpe panel)
quantum_rl_governor_policy{policy}         gauge    1 for the policy sizing now (kelly, edge, ppo)
quantum_rl_governor_fallbacks_total        counter  decisions that fell back to static Kelly
=========================================  =======  ==============================================

Sampled at scrape time by :class:`~infra.prom_collector.ServiceCollector` (see :func:`start_service_metrics`)

=================================================  ===============================================
quantum_bus_up                                     1 when the bus answered this scrape
quantum_bus_stream_length{topic}                   entries in the topic's stream
quantum_bus_stream_maxlen                          the streams' length cap (``EVENTBUS_MAXLEN``)
quantum_bus_consumer_lag{topic,group}              entries not yet delivered to the group
quantum_bus_consumer_pending{topic,group}          delivered, not acknowledged
quantum_bus_dead_letters{topic}                    entries in ``<topic>.dlq``
quantum_service_events_total{kind}                 the service's own counters (e.g. the bridge's)
quantum_artifact_last_write_timestamp_seconds{a}   mtime of ``<CACHE_DIR>/<artifact>.json``
quantum_artifact_max_age_seconds                   ``ARTIFACT_MAX_AGE_S``
quantum_circuit_breaker_state{breaker,state}       1 for the breaker's current state
quantum_firestore_outbox_depth                     writes queued for the Firestore mirror
quantum_clm_drift_statistic{statistic}             last drift check of the current model: accuracy_cusum, calibration_cusum, ...
quantum_clm_drift_threshold{statistic}             ... and the threshold each is tested against
quantum_clm_detections{kind}                       detections in the ``drift`` artifact by kind
quantum_clm_retrain_jobs{outcome}                  jobs in ``retrain_jobs`` by outcome
quantum_clm_retrain_last_timestamp_seconds{o}      ``decided_at`` of the last job with outcome ``o``
quantum_clm_retrain_triggers{outcome}              triggers in ``retrain_triggers`` by outcome
=================================================  ===============================================

Every label takes values from a fixed set (topics, groups and artifacts of the deployment, the
tuples below), so the series count is bounded.

``quantum_clm_mean_abs_confidence_error`` replaces the plan's ``quantum_clm_mape``: the plan's
number is the mean absolute gap between predicted confidence and the 0/1 outcome. That is not a
MAPE (there is no percentage of a non-zero actual), and it is not a drift signal either: a perfectly
calibrated model with confidence 0.6 has a mean absolute error of 0.48, forever. Drift is judged by
the detector's tests, not by this level.

Examples
--------
>>> m = make_metrics()
>>> m.rl_rewards_total.inc()
>>> b"quantum_rl_rewards_total 1.0" in render(m)
True
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

from infra.prom_collector import ServiceCollector, epoch_seconds
from infra.settings import Settings, load_settings
from infra.validate import check_choice, check_int

if TYPE_CHECKING:
    from infra.bus import Bus

log = logging.getLogger(__name__)

REWARD_BUCKETS = (-5.0, -2.0, -1.0, -0.5, -0.25, -0.1, 0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
"""Reward histogram edges (rewards are about the trade's P&L in percent, see reward_calculator)."""
MULTIPLIER_BUCKETS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
"""Multiplier histogram edges: the governor's clamp range [0.5, 2.0] in quarter steps."""
GOVERNOR_POLICIES = ("kelly", "edge", "ppo")
SIZINGS = ("rl", "kelly")
SERVICE_PORTS = {"trainer": 9108, "feedback_bridge": 9109, "retrain_worker": 9110, "drift_service": 9111}
"""Default ``/metrics`` port of each service; ``METRICS_PORT_<SERVICE>`` overrides it (the trainer
reads ``METRICS_PORT`` through its ``--metrics-port`` default, as before)."""


@dataclass(frozen=True)
class Metrics:
    """Every metric of the learning loop, bound to ``registry``."""

    registry: CollectorRegistry
    rl_rewards_total: Counter
    rl_reward_avg: Gauge
    rl_training_steps: Counter
    rl_policy_loss: Gauge
    rl_value_loss: Gauge
    clm_drift_checks: Counter
    clm_drifts_detected: Counter
    clm_retrains_triggered: Counter
    clm_mean_abs_confidence_error: Gauge
    clm_confidence_calibration: Gauge
    rl_reward: Histogram
    rl_cumulative_reward: Gauge
    rl_multiplier_used: Histogram
    rl_multiplier_suggested: Histogram
    rl_last_feedback_ts: Gauge
    rl_pnl_usd_sum: Gauge
    rl_pnl_usd_sq_sum: Gauge
    rl_governor_policy: Gauge
    rl_governor_fallbacks: Counter


def make_metrics(registry: CollectorRegistry | None = None) -> Metrics:
    """Create the metrics on ``registry`` (default: a new one). Call once per registry."""
    r = registry if registry is not None else CollectorRegistry()
    # prometheus_client appends _total to counters; name them without it
    return Metrics(
        registry=r,
        rl_rewards_total=Counter(
            "quantum_rl_rewards", "Feedback rewards consumed by the PPO trainer", registry=r
        ),
        rl_reward_avg=Gauge(
            "quantum_rl_reward_avg", "Mean reward over the trainer's last 100 trades", registry=r
        ),
        rl_training_steps=Counter(
            "quantum_rl_training_steps", "PPO updates done (one per batch of trades)", registry=r
        ),
        rl_policy_loss=Gauge(
            "quantum_rl_policy_loss", "Clipped-surrogate loss of the last PPO update", registry=r
        ),
        rl_value_loss=Gauge("quantum_rl_value_loss", "Critic loss of the last PPO update", registry=r),
        clm_drift_checks=Counter("quantum_clm_drift_checks", "Drift checks run", registry=r),
        clm_drifts_detected=Counter(
            "quantum_clm_drifts_detected", "Drift detections by type", ["type"], registry=r
        ),
        clm_retrains_triggered=Counter(
            "quantum_clm_retrains_triggered", "model.retrain.trigger events published", registry=r
        ),
        clm_mean_abs_confidence_error=Gauge(
            "quantum_clm_mean_abs_confidence_error",
            "Mean |confidence - outcome| of the last window (not a MAPE, not a drift signal)",
            registry=r,
        ),
        clm_confidence_calibration=Gauge(
            "quantum_clm_confidence_calibration",
            "Expected calibration error (ECE) of the last window",
            registry=r,
        ),
        rl_reward=Histogram(
            "quantum_rl_reward", "Reward of each feedback event learned", buckets=REWARD_BUCKETS, registry=r
        ),
        rl_cumulative_reward=Gauge(
            "quantum_rl_cumulative_reward", "Sum of every feedback reward learned", registry=r
        ),
        rl_multiplier_used=Histogram(
            "quantum_rl_multiplier_used",
            "Multiplier the governor applied to each traded position",
            buckets=MULTIPLIER_BUCKETS,
            registry=r,
        ),
        rl_multiplier_suggested=Histogram(
            "quantum_rl_multiplier_suggested",
            "Multiplier the updated policy suggests for the last trade of each PPO batch (one per update)",
            buckets=MULTIPLIER_BUCKETS,
            registry=r,
        ),
        rl_last_feedback_ts=Gauge(
            "quantum_rl_last_feedback_timestamp_seconds",
            "Event time (ts) of the last rl.feedback learned, Unix seconds",
            registry=r,
        ),
        rl_pnl_usd_sum=Gauge(
            "quantum_rl_pnl_usd_sum",
            "Sum of trade P&L in USD: sizing=rl as traded, sizing=kelly with the multiplier divided out",
            ["sizing"],
            registry=r,
        ),
        rl_pnl_usd_sq_sum=Gauge(
            "quantum_rl_pnl_usd_sq_sum",
            "Sum of squared trade P&L in USD^2, by sizing",
            ["sizing"],
            registry=r,
        ),
        rl_governor_policy=Gauge(
            "quantum_rl_governor_policy",
            "1 for the policy the governor sizes with now",
            ["policy"],
            registry=r,
        ),
        rl_governor_fallbacks=Counter(
            "quantum_rl_governor_fallbacks",
            "Sizing decisions that fell back to static Kelly (policy failed)",
            registry=r,
        ),
    )


def render(metrics: Metrics) -> bytes:
    """The text exposition of ``metrics`` (what ``/metrics`` serves)."""
    return bytes(generate_latest(metrics.registry))


def serve_metrics(metrics: Metrics, port: int, *, addr: str = "127.0.0.1") -> tuple[Any, threading.Thread]:
    """Serve ``/metrics`` of ``metrics`` on ``addr:port`` in a daemon thread (loopback by default).

    Returns the ``(server, thread)`` pair; call ``server.shutdown()`` to stop it. Port 0 picks a
    free port (read it from ``server.server_address[1]``).
    """
    check_int(port, param="port", func="serve_metrics", minimum=0, maximum=65535)
    server, thread = start_http_server(port, addr=addr, registry=metrics.registry)
    return server, thread


# --------------------------------------------------------------------------- service hooks
def observe_feedback(metrics: Metrics, event: Mapping[str, Any], *, suggested: float | None = None) -> None:
    """Record one ``rl.feedback`` event the trainer learned from.

    The Sharpe panel needs the P&L of every trade twice: as traded (``rl``) and as static Kelly
    would have traded it (``kelly``). The governor sizes ``kelly_pct * m`` (``m`` the multiplier),
    so for the same price path the USD P&L is linear in ``m`` and static Kelly's is ``pnl_usd / m``
    (exact while the position cap did not bind; under the cap it overstates Kelly's P&L). With
    ``n`` trades, ``S1 = sum x`` and ``S2 = sum x^2``, the per-trade Sharpe ratio (Sharpe 1994,
    "The Sharpe Ratio", ex post: mean over standard deviation) is
    ``(S1/n) / sqrt(S2/n - (S1/n)^2)``; the dashboard computes it from these sums in PromQL.
    """
    reward = float(event["reward"])
    m = float(event["multiplier_used"])
    metrics.rl_reward.observe(reward)
    metrics.rl_cumulative_reward.inc(reward)
    metrics.rl_multiplier_used.observe(m)
    if suggested is not None and math.isfinite(suggested):
        metrics.rl_multiplier_suggested.observe(float(suggested))
    ts = epoch_seconds(event.get("ts"))
    if ts is not None:
        metrics.rl_last_feedback_ts.set(ts)
    pnl = event.get("pnl_usd")
    if isinstance(pnl, (int, float)) and math.isfinite(pnl):
        for sizing, x in (("rl", float(pnl)), ("kelly", float(pnl) / m if m > 0 else None)):
            if x is None:
                continue
            metrics.rl_pnl_usd_sum.labels(sizing=sizing).inc(x)
            metrics.rl_pnl_usd_sq_sum.labels(sizing=sizing).inc(x * x)


def set_governor_policy(metrics: Metrics, policy: str, *, fallbacks: int = 0) -> None:
    """Mark ``policy`` (one of :data:`GOVERNOR_POLICIES`) as the one sizing now; count ``fallbacks``.

    The job that runs the governor calls it after each decision batch with the governor's mode
    (``static`` maps to ``kelly``) and the number of new fallbacks.
    """
    check_choice(policy, param="policy", func="set_governor_policy", choices=(*GOVERNOR_POLICIES, "static"))
    name = "kelly" if policy == "static" else policy
    for p in GOVERNOR_POLICIES:
        metrics.rl_governor_policy.labels(policy=p).set(1.0 if p == name else 0.0)
    if fallbacks:
        metrics.rl_governor_fallbacks.inc(fallbacks)


def service_metrics_port(
    service: str, environ: Mapping[str, str] | None = None, *, settings: Settings | None = None
) -> int:
    """``METRICS_PORT_<SERVICE>`` (e.g. ``METRICS_PORT_FEEDBACK_BRIDGE``), else the service's default.

    -1 turns ``/metrics`` off, 0 picks a free port. The override comes from
    ``settings.service_metrics_ports`` (default: settings loaded from ``environ``, else from this
    process's environment), which refuses a port outside [-1, 65535] naming the variable.

    Examples
    --------
    >>> service_metrics_port("feedback_bridge", {}), service_metrics_port("retrain_worker", {"METRICS_PORT_RETRAIN_WORKER": "0"})
    (9109, 0)
    """
    check_choice(service, param="service", func="service_metrics_port", choices=SERVICE_PORTS)
    s = load_settings(environ) if settings is None else settings
    return s.service_metrics_ports.get(service, SERVICE_PORTS[service])


def start_service_metrics(
    metrics: Metrics,
    service: str,
    *,
    bus: Bus | None = None,
    topics: Sequence[str] = (),
    settings: Settings | None = None,
    stats: Callable[[], Mapping[str, Any]] | None = None,
    clm_artifacts: bool = False,
    port: int | None = None,
) -> Any | None:
    """Register a :class:`ServiceCollector` on ``metrics`` and serve ``/metrics`` on loopback.

    ``port`` defaults to :func:`service_metrics_port`; -1 registers the collector but serves
    nothing. A port already in use is logged as an error and the service runs on without
    ``/metrics`` (Prometheus then reports the target down). Returns the HTTP server
    (``server.shutdown()`` stops it) or None.
    """
    metrics.registry.register(
        ServiceCollector(
            service, bus=bus, topics=topics, settings=settings, stats=stats, clm_artifacts=clm_artifacts
        )
    )
    p = service_metrics_port(service, settings=settings) if port is None else port
    if p < 0:
        return None
    try:
        server, _ = serve_metrics(metrics, p)
    except OSError as exc:  # port taken: keep consuming (a crash loop helps nobody); the scrape alerts
        log.error("%s: cannot serve /metrics on 127.0.0.1:%d (%s); running without it", service, p, exc)
        return None
    log.info("%s: /metrics on 127.0.0.1:%d", service, server.server_address[1])
    return server
