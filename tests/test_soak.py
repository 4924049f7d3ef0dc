"""The whole loop as separate processes against one redis-server, audited order by order.

The default suite runs the harness for 20 seconds at a low rate; ``-m slow`` for 2 minutes. The
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
    assert summary["exit_codes"]["bridge"] == 0 and summary["exit_codes"]["trainer"] == 0
    assert summary["p99_ms"] is not None and summary["p99_ms"] < 5_000


def test_soak_20_seconds(tmp_path) -> None:
    redis_binary()
    cfg = SoakConfig(duration_s=20.0, rate=5.0, symbols=2, sample_s=1.0, drain_s=30.0, out=tmp_path)
    _check(Soak(cfg).run(), max_lag=1_000)
    assert (tmp_path / "soak.html").stat().st_size > 100_000  # plotly inlined: opens offline


@pytest.mark.slow
def test_soak_2_minutes(tmp_path) -> None:
    redis_binary()
    cfg = SoakConfig(duration_s=120.0, rate=20.0, symbols=4, sample_s=2.0, warmup_s=30.0, out=tmp_path)
    summary = Soak(cfg).run()
    _check(summary, max_lag=1_000)
    assert summary["driver"]["trades"] > 1_500
