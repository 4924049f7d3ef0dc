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
=========================================  =======  ==============================================

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

import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, start_http_server


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
