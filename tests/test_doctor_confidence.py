"""Route health and the doctor confidence: hand-computed values; rises and falls with quality."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution.doctor_confidence import (
    RouteHealthConfig,
    confidence_from,
    max_drawdown_of_returns,
    route_confidence,
    route_health_table,
    symbol_confidence,
)

T0 = pd.Timestamp("2025-01-01", tz="UTC")


def orders(
    symbol: str, route: str, n: int, *, fail: int = 0, slip: float = 1.0, exp: float = 1.0
) -> pd.DataFrame:
    status = ["REJECTED"] * fail + ["FILLED"] * (n - fail)
    return pd.DataFrame(
        {
            "order_id": [f"{symbol}-{route}-{i}" for i in range(n)],
            "ts": [T0 + pd.Timedelta(hours=i) for i in range(n)],
            "symbol": symbol,
            "route": route,
            "status": status,
            "slippage_bps": [math.nan if s != "FILLED" else slip for s in status],
            "expected_slippage_bps": exp,
            "latency_ms": 20.0,
        }
    )


def test_hand_computed_row() -> None:
    o = orders("BTC", "a", 40, fail=4, slip=6.0, exp=1.0)
    row = route_health_table(o).iloc[0]
    # f = 0.1, e = 5 bps: p = 0.1/0.1 + 5/10 = 1.5; q = e^-1.5; w = 40/50
    assert row["failure_rate"] == pytest.approx(0.1)
    assert row["excess_slippage_bps"] == pytest.approx(5.0)
    assert row["penalty"] == pytest.approx(1.5)
    assert row["quality"] == pytest.approx(math.exp(-1.5))
    assert row["confidence"] == pytest.approx(0.8 * math.exp(-1.5) + 0.2 * 0.5)


def test_confidence_falls_with_each_defect_and_rises_with_quality() -> None:
    good = route_health_table(orders("BTC", "a", 50)).iloc[0]["confidence"]
    rejects = route_health_table(orders("BTC", "a", 50, fail=10)).iloc[0]["confidence"]
    slippy = route_health_table(orders("BTC", "a", 50, slip=21.0)).iloc[0]["confidence"]
    assert good > rejects and good > slippy
    assert good == pytest.approx(50 / 60 * 1.0 + 10 / 60 * 0.5)
    # paying less slippage than expected is not rewarded beyond a perfect fill
    better = route_health_table(orders("BTC", "a", 50, slip=0.0)).iloc[0]["confidence"]
    assert better == pytest.approx(good)


def test_drawdown_enters_the_penalty() -> None:
    o = orders("BTC", "a", 30)
    closed = [T0 + pd.Timedelta(hours=i) for i in range(1, 4)]
    trades = pd.DataFrame(
        {
            "symbol": "BTC",
            "route": "a",
            "closed_at": closed,
            "pnl_usd": [10.0, -30.0, -20.0],
            "size_usd": 100.0,
        }
    )
    row = route_health_table(o, trades).iloc[0]
    assert row["recent_drawdown"] == pytest.approx(0.5)  # equity 0, .1, -.2, -.4: peak .1 -> -.4
    assert row["penalty"] == pytest.approx(0.5 / 0.25)


def test_symbol_confidence_is_attempt_weighted() -> None:
    o = pd.concat([orders("BTC", "good", 30), orders("BTC", "bad", 10, fail=5)], ignore_index=True)
    t = route_health_table(o)
    rc = route_confidence(t)
    sc = symbol_confidence(t)
    assert sc["BTC"] == pytest.approx((30 * rc["BTC|good"] + 10 * rc["BTC|bad"]) / 40)
    # shifting flow to the bad route lowers the symbol's confidence
    o2 = pd.concat([orders("BTC", "good", 10), orders("BTC", "bad", 30, fail=15)], ignore_index=True)
    assert symbol_confidence(route_health_table(o2))["BTC"] < sc["BTC"]


def test_lookback_uses_data_time_not_wall_clock() -> None:
    old = orders("BTC", "a", 10, fail=10)
    new = orders("BTC", "a", 10)
    new["ts"] = new["ts"] + pd.Timedelta(days=60)
    new["order_id"] = new["order_id"] + "-new"
    t = route_health_table(pd.concat([old, new]), config=RouteHealthConfig(lookback=pd.Timedelta(days=30)))
    assert t.iloc[0]["n_orders"] == 10 and t.iloc[0]["failure_rate"] == 0.0


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(0, 10_000),
    f=st.floats(0, 1),
    e=st.floats(-50, 200),
    d=st.floats(0, 5),
)
def test_confidence_in_unit_interval_and_monotone(n: int, f: float, e: float, d: float) -> None:
    _, q, c = confidence_from(n=n, failure_rate=f, excess_slippage_bps=e, drawdown=d)
    assert 0 <= c <= 1 and 0 < q <= 1
    _, _, worse = confidence_from(n=n, failure_rate=min(1.0, f + 0.05), excess_slippage_bps=e, drawdown=d)
    assert worse <= c + 1e-12


def test_max_drawdown_of_returns() -> None:
    assert max_drawdown_of_returns(np.array([])) == 0.0
    assert max_drawdown_of_returns(np.array([-0.1, 0.05])) == pytest.approx(0.1)


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="missing column"):
        route_health_table(pd.DataFrame({"ts": []}))
    bad = orders("BTC", "a", 2)
    bad.loc[0, "status"] = "LOST"
    with pytest.raises(ValueError, match="'status' column of 'orders' must be one of"):
        route_health_table(bad)
    with pytest.raises(ValueError, match="failure_rate"):
        confidence_from(n=1, failure_rate=1.5, excess_slippage_bps=0, drawdown=0)
    assert list(route_health_table(orders("BTC", "a", 0)).columns)[:2] == ["symbol", "route"]
