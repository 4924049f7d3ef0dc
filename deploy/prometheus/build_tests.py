"""Write ``deploy/prometheus/tests/alerts_test.yml``: promtool unit tests of every alert in ``alerts.yml``.

Run ``python -m deploy.prometheus.build_tests`` after changing an alert, then
``promtool test rules deploy/prometheus/tests/alerts_test.yml``. Each alert has a test where it
fires on a synthetic series and a healthy series beside it that must stay silent, plus (for the
alerts that aggregate over everything) a separate healthy test where it must not fire at all.

The cases below are written by hand: which series, when, which labels the alert carries and its
rendered summary and description. Only the static ``runbook`` text is copied from ``alerts.yml``
(promtool compares every annotation).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "alerts.yml"
OUT = HERE / "tests" / "alerts_test.yml"

# target labels of deploy/prometheus/prometheus.yml
T = 'job="quantum_rl_trainer", instance="127.0.0.1:9108", service="trainer"'
B = 'job="quantum_feedback_bridge", instance="127.0.0.1:9109", service="feedback_bridge"'
W = 'job="quantum_retrain_worker", instance="127.0.0.1:9110", service="retrain_worker"'


def _alert(labels: dict[str, str], summary: str, description: str) -> dict[str, Any]:
    return {"labels": labels, "summary": summary, "description": description}


# (name, input series [(series, values)], checks [(eval_time, alertname, expected alerts)])
CASES: list[tuple[str, list[tuple[str, str]], list[tuple[str, str, list[dict[str, Any]]]]]] = [
    (
        "service down: the trainer stops answering, the bridge keeps answering",
        [(f"up{{{T}}}", "1 1 0x10"), (f"up{{{B}}}", "1x12")],
        [
            ("3m", "QuantumServiceDown", []),  # down for 1 minute only: not yet
            (
                "5m",
                "QuantumServiceDown",
                [
                    _alert(
                        {
                            "severity": "critical",
                            "job": "quantum_rl_trainer",
                            "instance": "127.0.0.1:9108",
                            "service": "trainer",
                        },
                        "quantum_rl_trainer is not answering on 127.0.0.1:9108",
                        "Prometheus could not scrape quantum_rl_trainer for 2 minutes.",
                    )
                ],
            ),
        ],
    ),
    (
        "bus down for the bridge only",
        [(f"quantum_bus_up{{{B}}}", "0x10"), (f"quantum_bus_up{{{T}}}", "1x10")],
        [
            (
                "5m",
                "QuantumBusDown",
                [
                    _alert(
                        {
                            "severity": "critical",
                            "job": "quantum_feedback_bridge",
                            "instance": "127.0.0.1:9109",
                            "service": "feedback_bridge",
                        },
                        "quantum_feedback_bridge cannot reach the event bus",
                        "The bus did not answer quantum_feedback_bridge's scrapes for 2 minutes.",
                    )
                ],
            )
        ],
    ),
    (
        "bus healthy everywhere",
        [(f"quantum_bus_up{{{B}}}", "1x10"), (f"quantum_bus_up{{{T}}}", "1x10")],
        [("5m", "QuantumBusDown", [])],
    ),
    (
        "consumer lag: 90% of the cap for one group, 1% for another",
        [
            (f'quantum_bus_consumer_lag{{{T}, topic="rl.feedback", group="ppo-trainer"}}', "90000x10"),
            (
                f'quantum_bus_consumer_lag{{{B}, topic="trade.execution.res", group="feedback-bridge"}}',
                "1000x10",
            ),
            (f"quantum_bus_stream_maxlen{{{T}}}", "100000x10"),
            (f"quantum_bus_stream_maxlen{{{B}}}", "100000x10"),
        ],
        [
            ("4m", "QuantumConsumerLagNearCap", []),
            (
                "6m",
                "QuantumConsumerLagNearCap",
                [
                    _alert(
                        {"severity": "critical", "topic": "rl.feedback", "group": "ppo-trainer"},
                        "ppo-trainer is 90% of the stream cap behind on rl.feedback",
                        "Undelivered entries of rl.feedback for group ppo-trainer exceed 80% of EVENTBUS_MAXLEN. "
                        "Past the cap Redis trims entries the group has not read: they are lost.",
                    )
                ],
            ),
        ],
    ),
    (
        "dead letters: one more on rl.feedback, a constant old count on executions",
        [
            (f'quantum_bus_dead_letters{{{B}, topic="rl.feedback"}}', "0 0 0 1x10"),
            (f'quantum_bus_dead_letters{{{B}, topic="trade.execution.res"}}', "5x13"),
        ],
        [
            ("2m", "QuantumDeadLettersRising", []),
            (
                "8m",
                "QuantumDeadLettersRising",
                [
                    _alert(
                        {"severity": "warning", "topic": "rl.feedback"},
                        "New dead letters on rl.feedback.dlq",
                        "Entries of rl.feedback were dead-lettered in the last 15 minutes.",
                    )
                ],
            ),
        ],
    ),
    (
        "feedback stalled: executions keep arriving, the trainer learns nothing",
        [
            (f"quantum_rl_rewards_total{{{T}}}", "100x60"),
            (
                f'quantum_service_events_total{{{B}, kind="tracked"}}',
                "0+1x60",
            ),
        ],
        [
            (
                "45m",
                "QuantumFeedbackStalled",
                [
                    _alert(
                        {"severity": "warning"},
                        "No rl.feedback learned for 30 minutes while executions arrive",
                        "The bridge tracked new executions but the trainer learned no feedback in 30 minutes.",
                    )
                ],
            )
        ],
    ),
    (
        "feedback healthy: rewards keep coming; and no executions at all is not a stall",
        [
            (f"quantum_rl_rewards_total{{{T}}}", "0+1x30 30x30"),
            (
                f'quantum_service_events_total{{{B}, kind="tracked"}}',
                "0+1x30 30x30",
            ),
        ],
        [("25m", "QuantumFeedbackStalled", []), ("59m", "QuantumFeedbackStalled", [])],
    ),
    (
        "governor on static Kelly",
        [
            (f'quantum_rl_governor_policy{{{T}, policy="kelly"}}', "1x20"),
            (f'quantum_rl_governor_policy{{{T}, policy="edge"}}', "0x20"),
            (f"quantum_rl_governor_fallbacks_total{{{T}}}", "0 0 0 1 2 2x15"),
        ],
        [
            ("5m", "QuantumGovernorStaticKelly", []),
            (
                "15m",
                "QuantumGovernorStaticKelly",
                [
                    _alert(
                        {"severity": "warning"},
                        "The governor sizes with static Kelly (no learned multiplier)",
                        "quantum_rl_governor_policy says kelly for 10 minutes.",
                    )
                ],
            ),
            (
                "6m",
                "QuantumGovernorFallbacks",
                [
                    _alert(
                        {
                            "severity": "warning",
                            "job": "quantum_rl_trainer",
                            "instance": "127.0.0.1:9108",
                            "service": "trainer",
                        },
                        "The sizing policy failed and the governor fell back to static Kelly",
                        "Sizing decisions fell back to static Kelly in the last 15 minutes.",
                    )
                ],
            ),
        ],
    ),
    (
        "governor healthy on the edge policy",
        [
            (f'quantum_rl_governor_policy{{{T}, policy="kelly"}}', "0x30"),
            (f'quantum_rl_governor_policy{{{T}, policy="edge"}}', "1x30"),
            (f"quantum_rl_governor_fallbacks_total{{{T}}}", "0x30"),
        ],
        [("20m", "QuantumGovernorStaticKelly", []), ("20m", "QuantumGovernorFallbacks", [])],
    ),
    (
        "drift: a calibration detection appears in the artifact; accuracy stays at 0",
        [
            (f'quantum_clm_detections{{{W}, kind="calibration_drift"}}', "0 0 0 1x10"),
            (f'quantum_clm_detections{{{W}, kind="accuracy_drift"}}', "0x13"),
        ],
        [
            ("2m", "QuantumDriftDetected", []),
            (
                "5m",
                "QuantumDriftDetected",
                [
                    _alert(
                        {"severity": "warning", "kind": "calibration_drift"},
                        "Model drift detected (calibration_drift)",
                        "The drift detector raised a new detection in the last 30 minutes.",
                    )
                ],
            ),
            ("60m", "QuantumDriftDetected", []),  # the detection is older than 30 minutes
        ],
    ),
    (
        "drift from a bus-mode drift service's counter",
        [(f'quantum_clm_drifts_detected_total{{{W}, type="accuracy"}}', "0 0 1x10")],
        [
            (
                "5m",
                "QuantumDriftDetected",
                [
                    _alert(
                        {"severity": "warning", "type": "accuracy"},
                        "Model drift detected (accuracy)",
                        "The drift detector raised a new detection in the last 30 minutes.",
                    )
                ],
            )
        ],
    ),
    (
        "retrain: one rejected job; promotions do not alert",
        [
            (f'quantum_clm_retrain_jobs{{{W}, outcome="rejected"}}', "0 0 1x10"),
            (f'quantum_clm_retrain_jobs{{{W}, outcome="promoted"}}', "0 1 2x10"),
            (f'quantum_clm_retrain_jobs{{{W}, outcome="failed"}}', "0x12"),
        ],
        [
            (
                "5m",
                "QuantumRetrainRejectedOrFailed",
                [
                    _alert(
                        {"severity": "warning", "outcome": "rejected"},
                        "A retrain was rejected",
                        "A retrain job ended rejected in the last hour; the old model stays live.",
                    )
                ],
            ),
            ("90m", "QuantumRetrainRejectedOrFailed", []),
        ],
    ),
    (
        "circuit breaker open for firestore",
        [
            (f'quantum_circuit_breaker_state{{{B}, breaker="firestore", state="open"}}', "1x10"),
            (f'quantum_circuit_breaker_state{{{B}, breaker="firestore", state="closed"}}', "0x10"),
        ],
        [
            ("3m", "QuantumCircuitBreakerOpen", []),
            (
                "6m",
                "QuantumCircuitBreakerOpen",
                [
                    _alert(
                        {"severity": "warning", "breaker": "firestore"},
                        "Circuit breaker firestore is open",
                        "Calls to firestore have failed repeatedly; the breaker stays open for 5 minutes.",
                    )
                ],
            ),
        ],
    ),
    (
        "circuit breaker closed",
        [
            (f'quantum_circuit_breaker_state{{{B}, breaker="firestore", state="open"}}', "0x10"),
            (f'quantum_circuit_breaker_state{{{B}, breaker="firestore", state="closed"}}', "1x10"),
        ],
        [("8m", "QuantumCircuitBreakerOpen", [])],
    ),
    (
        "artifacts: drift last written at t=0, autotune every minute, retrain_jobs not watched",
        [
            (f'quantum_artifact_last_write_timestamp_seconds{{{W}, artifact="drift"}}', "0x40"),
            (f'quantum_artifact_last_write_timestamp_seconds{{{W}, artifact="autotune"}}', "0+60x40"),
            (f'quantum_artifact_last_write_timestamp_seconds{{{W}, artifact="retrain_jobs"}}', "0x40"),
            (f"quantum_artifact_max_age_seconds{{{W}}}", "600x40"),
        ],
        [
            ("20m", "QuantumArtifactStale", []),  # stale since 10m, not yet for 15m
            (
                "40m",
                "QuantumArtifactStale",
                [
                    _alert(
                        {"severity": "warning", "artifact": "drift"},
                        "Artifact drift is older than ARTIFACT_MAX_AGE_S",
                        "drift was last written 40m 0s ago.",
                    )
                ],
            ),
        ],
    ),
]


def runbooks() -> dict[str, str]:
    """``alertname -> runbook`` text of every rule in ``alerts.yml``."""
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return {
        r["alert"]: r["annotations"]["runbook"] for g in doc["groups"] for r in g["rules"] if "alert" in r
    }


def build() -> dict[str, Any]:
    """The promtool test document."""
    books = runbooks()
    tests = []
    for name, series, checks in CASES:
        tests.append(
            {
                "name": name,
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "alert_rule_test": [
                    {
                        "eval_time": at,
                        "alertname": alertname,
                        "exp_alerts": [
                            {
                                "exp_labels": a["labels"],
                                "exp_annotations": {
                                    "summary": a["summary"],
                                    "description": a["description"],
                                    "runbook": books[alertname],
                                },
                            }
                            for a in alerts
                        ],
                    }
                    for at, alertname, alerts in checks
                ],
            }
        )
    return {"rule_files": ["../alerts.yml"], "evaluation_interval": "1m", "tests": tests}


def render() -> str:
    header = "# Generated by `python -m deploy.prometheus.build_tests` from its CASES; do not edit by hand.\n"
    return header + yaml.safe_dump(build(), sort_keys=False, width=100, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    """Write the test file, or with ``--check`` exit 1 when the committed one differs."""
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in args:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is out of date: run python -m deploy.prometheus.build_tests", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({len(CASES)} tests)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
