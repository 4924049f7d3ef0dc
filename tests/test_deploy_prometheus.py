"""Prometheus deployment files: promtool accepts them, every alert fires and stays silent as specified.

``promtool`` comes with the Debian ``prometheus`` package; without it these tests skip locally and
fail under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy.prometheus import build_tests
from tests.deploy_fixtures import ROOT, promql_metric_names, run_loop

PROM_DIR = ROOT / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool not found (apt-get install -y prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_promtool_check_config_accepts_the_scrape_config() -> None:
    res = promtool("check", "config", str(PROM_DIR / "prometheus.yml"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: 1 rule files found" in res.stdout


def test_promtool_check_rules_accepts_the_alerts() -> None:
    res = promtool("check", "rules", str(PROM_DIR / "alerts.yml"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: 11 rules found" in res.stdout


def test_promtool_unit_tests_fire_each_alert_and_stay_silent_when_healthy() -> None:
    res = promtool("test", "rules", str(PROM_DIR / "tests" / "alerts_test.yml"))
    assert res.returncode == 0, res.stdout + res.stderr


def test_a_broken_threshold_makes_the_unit_tests_fail(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    rules = (PROM_DIR / "alerts.yml").read_text(encoding="utf-8")
    assert ") > 0.8" in rules
    (tmp_path / "alerts.yml").write_text(rules.replace(") > 0.8", ") > 0.95"), encoding="utf-8")
    shutil.copy(PROM_DIR / "tests" / "alerts_test.yml", tmp_path / "tests" / "alerts_test.yml")
    res = promtool("test", "rules", str(tmp_path / "tests" / "alerts_test.yml"))
    assert res.returncode != 0
    assert "QuantumConsumerLagNearCap" in res.stdout + res.stderr


def test_unit_test_file_is_generated_from_the_cases() -> None:
    assert build_tests.main(["--check"]) == 0


def test_every_alert_has_a_firing_case_a_silent_case_and_a_runbook() -> None:
    doc = yaml.safe_load((PROM_DIR / "alerts.yml").read_text(encoding="utf-8"))
    alerts = [r for g in doc["groups"] for r in g["rules"]]
    names = {r["alert"] for r in alerts}
    assert names == {
        "QuantumServiceDown",
        "QuantumBusDown",
        "QuantumConsumerLagNearCap",
        "QuantumDeadLettersRising",
        "QuantumFeedbackStalled",
        "QuantumGovernorStaticKelly",
        "QuantumGovernorFallbacks",
        "QuantumDriftDetected",
        "QuantumRetrainRejectedOrFailed",
        "QuantumCircuitBreakerOpen",
        "QuantumArtifactStale",
    }
    for r in alerts:
        assert r["labels"]["severity"] in {"critical", "warning"}
        assert {"summary", "description", "runbook"} <= set(r["annotations"]), r["alert"]
    fired = {a for _, _, checks in build_tests.CASES for _, a, exp in checks if exp}
    silent = {a for _, _, checks in build_tests.CASES for _, a, exp in checks if not exp}
    assert fired == names
    assert silent == names


def test_scrape_config_has_one_job_per_service_on_its_default_port() -> None:
    from infra.prom import SERVICE_PORTS

    cfg = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    got = {
        sc["labels"]["service"]: t
        for job in cfg["scrape_configs"]
        for sc in job["static_configs"]
        for t in sc["targets"]
    }
    assert got == {
        s: f"127.0.0.1:{SERVICE_PORTS[s]}"
        for s in ("trainer", "feedback_bridge", "retrain_worker", "drift_service")
    }
    env = (ROOT / "deploy" / "systemd" / "quantum.env.example").read_text(encoding="utf-8")
    assert f"METRICS_PORT={SERVICE_PORTS['trainer']}" in env
    for s in ("feedback_bridge", "retrain_worker", "drift_service"):
        assert f"METRICS_PORT_{s.upper()}={SERVICE_PORTS[s]}" in env


def test_alert_expressions_use_only_exported_metrics(tmp_path: Path) -> None:
    from infra.prom import make_metrics, set_governor_policy

    exported = run_loop(tmp_path, train=False).exported_names() | {"up"}
    m = make_metrics()
    set_governor_policy(m, "kelly")
    doc = yaml.safe_load((PROM_DIR / "alerts.yml").read_text(encoding="utf-8"))
    used = set().union(*(promql_metric_names(r["expr"]) for g in doc["groups"] for r in g["rules"]))
    assert {"quantum_bus_consumer_lag", "quantum_clm_retrain_jobs", "quantum_rl_governor_policy"} <= used
    assert used - exported == set()
