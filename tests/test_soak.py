"""The whole loop as separate processes against one redis-server, audited order by order.

The default suite runs the harness (all four services) for 20 seconds at a low rate without a
planted drift; ``-m slow`` for 2 minutes with the drift planted at 60 s. The
hour-long soak and the stress run are ``python -m bench.soak`` (figures in docs/soak.md).
"""

from __future__ import annotations

import pytest

from bench.soak import Soak, SoakConfig
from tests.redis_server import redis_binary

pytestmark = pytest.mark.redis


def _check(summary: dict, *, max_lag: int) -> None:
    audit = summary["audit"]
    assert audit["sent"] == summary["driver"]["trades"] > 0
    assert (audit["lost"], audit["duplicated"], audit["wrong"], audit["unknown"]) == (0, 0, 0, 0), audit
    assert summary["max_lag"] < max_lag
    for name, counts in summary["log_lines_warning_or_above"].items():
        assert counts.get("ERROR", 0) == 0 and counts.get("CRITICAL", 0) == 0, (name, summary["log_examples"])
    assert set(summary["exit_codes"]) == {"bridge", "trainer", "retrain", "drift"}
    assert all(code == 0 for code in summary["exit_codes"].values()), summary["exit_codes"]
    assert summary["p99_ms"] is not None and summary["p99_ms"] < 5_000


def test_soak_20_seconds(tmp_path) -> None:
    redis_binary()
    cfg = SoakConfig(duration_s=20.0, rate=5.0, symbols=2, sample_s=1.0, drain_s=30.0, out=tmp_path)
    summary = Soak(cfg).run()
    _check(summary, max_lag=1_000)
    drift = summary["drift"]  # no planted change: every closed trade reached the detector, no alarm
    assert drift["ok"] and drift["outcome_alarms_before"] == 0
    assert drift["trades_seen"] == summary["driver"]["trades"]
    assert (tmp_path / "soak.html").stat().st_size > 100_000  # plotly inlined: opens offline


@pytest.mark.slow
def test_soak_2_minutes(tmp_path) -> None:
    redis_binary()
    # 8 symbols: the demo model's small over-confidence alarms only after ~15,000 trades without a
    # planted change (docs/soak.md); the change at 60 s (trade ~2,400) is caught within a few hundred
    cfg = SoakConfig(duration_s=120.0, rate=40.0, symbols=8, sample_s=2.0, warmup_s=30.0, drift_at_s=60.0, out=tmp_path)  # fmt: skip
    summary = Soak(cfg).run()
    _check(summary, max_lag=1_000)
    assert summary["driver"]["trades"] > 4_000
    drift = summary["drift"]
    assert drift["outcome_alarms_before"] == 0 and drift["outcome_alarms_after"] >= 1, drift
    assert drift["trigger_published"] and drift["retrain_outcome"] in ("promoted", "rejected", "failed"), (
        drift
    )
    assert drift["ok"]
