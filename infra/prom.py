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

Sampled at scrape time by :class:`ServiceCollector` (see :func:`start_service_metrics`)

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

import datetime as dt
import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from infra.artifacts import read_artifact_file
from infra.contracts.ml_artifacts import DriftData, RetrainJobsData, RetrainTriggersData

if TYPE_CHECKING:
    from infra.bus import Bus
    from infra.settings import Settings

log = logging.getLogger(__name__)

REWARD_BUCKETS = (-5.0, -2.0, -1.0, -0.5, -0.25, -0.1, 0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
"""Reward histogram edges (rewards are about the trade's P&L in percent, see reward_calculator)."""
MULTIPLIER_BUCKETS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
"""Multiplier histogram edges: the governor's clamp range [0.5, 2.0] in quarter steps."""
GOVERNOR_POLICIES = ("kelly", "edge", "ppo")
SIZINGS = ("rl", "kelly")
DRIFT_STATISTICS = ("accuracy_cusum", "calibration_cusum", "high_conf_win_rate", "ks_d")
_DRIFT_THRESHOLD_KEYS = {
    "accuracy_cusum": "accuracy_threshold",
    "calibration_cusum": "calibration_threshold",
    "high_conf_win_rate": "high_conf_threshold",
    "ks_d": "ks_threshold",
}
DRIFT_KINDS = ("accuracy_drift", "calibration_drift", "distribution_shift")
RETRAIN_OUTCOMES = ("promoted", "rejected", "failed")
TRIGGER_OUTCOMES = ("pending", "promoted", "rejected", "failed")
BREAKER_STATES = ("closed", "open", "half_open")
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
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(
            f"The 'port' parameter of serve_metrics must be an int in [0, 65535]. Got {port!r} instead."
        )
    server, thread = start_http_server(port, addr=addr, registry=metrics.registry)
    return server, thread


# --------------------------------------------------------------------------- service hooks
def _epoch(ts: Any) -> float | None:
    if not isinstance(ts, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None


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
    ts = _epoch(event.get("ts"))
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
    name = "kelly" if policy == "static" else policy
    if name not in GOVERNOR_POLICIES:
        raise ValueError(
            f"The 'policy' parameter of set_governor_policy must be one of {GOVERNOR_POLICIES} "
            f"(or 'static'). Got {policy!r} instead."
        )
    for p in GOVERNOR_POLICIES:
        metrics.rl_governor_policy.labels(policy=p).set(1.0 if p == name else 0.0)
    if fallbacks:
        metrics.rl_governor_fallbacks.inc(fallbacks)


def service_metrics_port(service: str, environ: Mapping[str, str] | None = None) -> int:
    """``METRICS_PORT_<SERVICE>`` (e.g. ``METRICS_PORT_FEEDBACK_BRIDGE``), else the service's default.

    -1 turns ``/metrics`` off, 0 picks a free port.

    Examples
    --------
    >>> service_metrics_port("feedback_bridge", {}), service_metrics_port("retrain_worker", {"METRICS_PORT_RETRAIN_WORKER": "0"})
    (9109, 0)
    """
    if service not in SERVICE_PORTS:
        raise ValueError(
            f"The 'service' parameter of service_metrics_port must be one of {tuple(SERVICE_PORTS)}. "
            f"Got {service!r} instead."
        )
    env = os.environ if environ is None else environ
    name = f"METRICS_PORT_{service.upper()}"
    raw = (env.get(name) or "").strip()
    if not raw:
        return SERVICE_PORTS[service]
    try:
        port = int(raw)
    except ValueError:
        port = -2
    if not -1 <= port <= 65535:
        raise ValueError(f"{name} must be an integer in [-1, 65535] (-1: off). Got {raw!r} instead.")
    return port


# --------------------------------------------------------------------------- scrape-time collector
T = TypeVar("T")


def _read_typed(path: Path, cls: type[T]) -> T | None:
    """An artifact's ``data`` decoded by its contract (:mod:`infra.contracts`), or None when it is
    missing, corrupt, of another schema or invalid (the doctor names what is wrong)."""
    res = read_artifact_file(path)
    return res.typed if res.usable and isinstance(res.typed, cls) else None


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x)


@dataclass(eq=False)  # registries keep collectors in a dict: hash by identity
class ServiceCollector(Collector):
    """Reads the bus, the artifact folder and the Firestore mirror's status on every scrape.

    Parameters
    ----------
    service
        Name of the service (``feedback_bridge``, ``trainer`` ...), for log lines; Prometheus
        labels its samples by the scrape target (``service`` in ``deploy/prometheus/prometheus.yml``).
    bus
        The service's bus: stream lengths, consumer groups (lag, pending) and dead letters of
        ``topics`` (a failing bus gives ``quantum_bus_up 0``, never a failed scrape).
    topics
        Topics to report (the ones the service reads or writes).
    settings
        For the artifact folder (``CACHE_DIR``), ``ARTIFACT_MAX_AGE_S`` and the mirror's breaker.
    stats
        Returns the service's own cumulative counters (name -> number), exported as
        ``quantum_service_events_total{kind}``.
    clm_artifacts
        Also export the drift and retrain numbers of the ``drift``, ``retrain_jobs`` and
        ``retrain_triggers`` artifacts (one service per deployment should: the retrain worker).
    """

    service: str
    bus: Bus | None = None
    topics: Sequence[str] = ()
    settings: Settings | None = None
    stats: Callable[[], Mapping[str, Any]] | None = None
    clm_artifacts: bool = False
    errors: int = field(default=0, init=False)

    def describe(self) -> Iterable[Metric]:
        return []  # no metadata call at registration: collect() may touch the bus

    def collect(self) -> Iterator[Metric]:
        for part in (self._bus, self._stats, self._artifacts, self._breaker, self._clm):
            try:
                yield from part()
            except Exception as exc:  # one broken source must not fail the whole scrape
                self.errors += 1
                log.warning(
                    "metrics: %s: %s sampling failed: %s: %s",
                    self.service,
                    part.__name__,
                    type(exc).__name__,
                    exc,
                )

    def _bus(self) -> Iterator[Metric]:
        if self.bus is None:
            return
        from infra.bus import DEFAULT_MAXLEN, dead_letter_topic

        up = GaugeMetricFamily("quantum_bus_up", "1 when the event bus answered this scrape")
        length = GaugeMetricFamily("quantum_bus_stream_length", "Entries in the stream", labels=["topic"])
        lag = GaugeMetricFamily(
            "quantum_bus_consumer_lag", "Entries not yet delivered to the group", labels=["topic", "group"]
        )
        pending = GaugeMetricFamily(
            "quantum_bus_consumer_pending",
            "Entries delivered but not acknowledged",
            labels=["topic", "group"],
        )
        dead = GaugeMetricFamily("quantum_bus_dead_letters", "Entries in <topic>.dlq", labels=["topic"])
        try:
            for topic in self.topics:
                length.add_metric([topic], self.bus.length(topic))
                dead.add_metric([topic], self.bus.length(dead_letter_topic(topic)))
                for g in self.bus.groups(topic):
                    pending.add_metric([topic, g.name], g.pending)
                    if g.lag is not None:
                        lag.add_metric([topic, g.name], g.lag)
        except Exception as exc:
            log.warning("metrics: the bus did not answer: %s: %s", type(exc).__name__, exc)
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        cap = GaugeMetricFamily("quantum_bus_stream_maxlen", "Length cap of every stream (EVENTBUS_MAXLEN)")
        cap.add_metric([], float(getattr(self.bus, "maxlen", DEFAULT_MAXLEN)))
        yield from (up, cap, length, lag, pending, dead)

    def _stats(self) -> Iterator[Metric]:
        if self.stats is None:
            return
        # no ``service`` label here: the scrape config sets it on the target (a clash would rename it)
        fam = CounterMetricFamily(
            "quantum_service_events", "The service's own cumulative counters", labels=["kind"]
        )
        for kind, value in sorted(self.stats().items()):
            v = _num(value)
            if v is not None:
                fam.add_metric([kind], v)
        yield fam

    def _artifacts(self) -> Iterator[Metric]:
        if self.settings is None:
            return
        root = self.settings.cache_dir
        fam = GaugeMetricFamily(
            "quantum_artifact_last_write_timestamp_seconds",
            "Last write of <CACHE_DIR>/<artifact>.json, Unix seconds",
            labels=["artifact"],
        )
        if root.is_dir():
            for p in sorted(root.glob("*.json")):
                fam.add_metric([p.stem], p.stat().st_mtime)
        limit = GaugeMetricFamily("quantum_artifact_max_age_seconds", "ARTIFACT_MAX_AGE_S")
        limit.add_metric([], self.settings.artifact_max_age_s)
        yield from (fam, limit)

    def _breaker(self) -> Iterator[Metric]:
        if self.settings is None:
            return
        from infra.firestore_status import mirror_status

        st = mirror_status(self.settings)
        state = GaugeMetricFamily(
            "quantum_circuit_breaker_state", "1 for the breaker's current state", labels=["breaker", "state"]
        )
        if st.get("breaker_state") in BREAKER_STATES:
            for s in BREAKER_STATES:
                state.add_metric(["firestore", s], 1.0 if st["breaker_state"] == s else 0.0)
        depth = GaugeMetricFamily("quantum_firestore_outbox_depth", "Writes queued for the Firestore mirror")
        depth.add_metric([], float(st.get("outbox_depth") or 0))
        yield from (state, depth)

    def _clm(self) -> Iterator[Metric]:
        if not self.clm_artifacts or self.settings is None:
            return
        root = self.settings.cache_dir
        drift = _read_typed(root / "drift.json", DriftData)
        if drift is not None:
            stat = GaugeMetricFamily(
                "quantum_clm_drift_statistic", "Value at the last drift check", labels=["statistic"]
            )
            thr = GaugeMetricFamily(
                "quantum_clm_drift_threshold",
                "Threshold the statistic is tested against",
                labels=["statistic"],
            )
            checks = drift.checks
            current = drift.current_model
            if current is not None:  # one detector per model version: the live model's last check
                checks = [c for c in checks if c.model in (None, current)]
            if checks:
                last = checks[-1]
                for name in DRIFT_STATISTICS:  # field names of DriftCheck
                    v, t = getattr(last, name), getattr(last, _DRIFT_THRESHOLD_KEYS[name])
                    if v is not None:
                        stat.add_metric([name], v)
                    if t is not None:
                        thr.add_metric([name], t)
            kinds = {k: 0 for k in DRIFT_KINDS}
            for d in drift.detections:
                if d.kind in kinds:
                    kinds[d.kind] += 1
            det = GaugeMetricFamily(
                "quantum_clm_detections", "Detections in the drift artifact, by kind", labels=["kind"]
            )
            for k, n in kinds.items():
                det.add_metric([k], n)
            yield from (stat, thr, det)
        jobs = _read_typed(root / "retrain_jobs.json", RetrainJobsData)
        if jobs is not None:
            counts = GaugeMetricFamily(
                "quantum_clm_retrain_jobs", "Retrain jobs in the retrain_jobs artifact", labels=["outcome"]
            )
            last_ts = GaugeMetricFamily(
                "quantum_clm_retrain_last_timestamp_seconds",
                "decided_at of the last retrain job with this outcome, Unix seconds",
                labels=["outcome"],
            )
            n_jobs = {o: 0 for o in RETRAIN_OUTCOMES}
            latest: dict[str, float] = {}
            for j in jobs.jobs:
                if j.outcome in n_jobs:
                    n_jobs[j.outcome] += 1
                    if j.decided_at is not None:
                        ts = j.decided_at.timestamp()
                        latest[j.outcome] = max(latest.get(j.outcome, ts), ts)
            for o in RETRAIN_OUTCOMES:
                counts.add_metric([o], n_jobs[o])
                if o in latest:
                    last_ts.add_metric([o], latest[o])
            yield from (counts, last_ts)
        triggers = _read_typed(root / "retrain_triggers.json", RetrainTriggersData)
        if triggers is not None:
            fam = GaugeMetricFamily(
                "quantum_clm_retrain_triggers",
                "Triggers in the retrain_triggers artifact",
                labels=["outcome"],
            )
            by_outcome = {o: 0 for o in TRIGGER_OUTCOMES}
            for tr in triggers.triggers:
                if tr.outcome in by_outcome:
                    by_outcome[tr.outcome] += 1
            for o, c in by_outcome.items():
                fam.add_metric([o], c)
            yield fam


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
    p = service_metrics_port(service) if port is None else port
    if p < 0:
        return None
    try:
        server, _ = serve_metrics(metrics, p)
    except OSError as exc:  # port taken: keep consuming (a crash loop helps nobody); the scrape alerts
        log.error("%s: cannot serve /metrics on 127.0.0.1:%d (%s); running without it", service, p, exc)
        return None
    log.info("%s: /metrics on 127.0.0.1:%d", service, server.server_address[1])
    return server
