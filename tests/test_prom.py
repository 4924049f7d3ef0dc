"""Prometheus metrics: names, one registry per call, and /metrics scraped over HTTP."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.prom import make_metrics, render, serve_metrics

NAMES = {
    "quantum_rl_rewards_total",
    "quantum_rl_reward_avg",
    "quantum_rl_training_steps_total",
    "quantum_rl_policy_loss",
    "quantum_rl_value_loss",
    "quantum_clm_drift_checks_total",
    "quantum_clm_drifts_detected_total",
    "quantum_clm_retrains_triggered_total",
    "quantum_clm_mean_abs_confidence_error",
    "quantum_clm_confidence_calibration",
}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_each_factory_call_has_its_own_registry() -> None:
    a, b = make_metrics(), make_metrics()
    a.rl_rewards_total.inc(3)
    assert _samples(render(a).decode())[("quantum_rl_rewards_total", ())] == 3.0
    assert _samples(render(b).decode())[("quantum_rl_rewards_total", ())] == 0.0


def test_metrics_scraped_over_http() -> None:
    m = make_metrics()
    server, thread = serve_metrics(m, 0)
    try:
        m.rl_rewards_total.inc(2)
        m.rl_reward_avg.set(0.25)
        m.rl_training_steps.inc()
        m.rl_policy_loss.set(-0.03)
        m.rl_value_loss.set(0.5)
        m.clm_drift_checks.inc(4)
        m.clm_drifts_detected.labels(type="calibration").inc()
        m.clm_retrains_triggered.inc()
        m.clm_mean_abs_confidence_error.set(0.48)
        m.clm_confidence_calibration.set(0.02)
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            assert resp.status == 200
            text = resp.read().decode()
    finally:
        server.shutdown()
        thread.join(timeout=5)
    got = _samples(text)
    names = {n for n, _ in got}
    assert names >= NAMES
    assert got[("quantum_rl_rewards_total", ())] == 2.0
    assert got[("quantum_rl_reward_avg", ())] == 0.25
    assert got[("quantum_rl_policy_loss", ())] == -0.03
    assert got[("quantum_clm_drifts_detected_total", (("type", "calibration"),))] == 1.0
    assert got[("quantum_clm_mean_abs_confidence_error", ())] == 0.48
    assert "quantum_clm_mape" not in text


def test_bad_port_is_refused() -> None:
    with pytest.raises(ValueError, match="port"):
        serve_metrics(make_metrics(), 70000)
