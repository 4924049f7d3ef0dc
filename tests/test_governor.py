"""Governor: Kelly arithmetic, multiplier clamp, position cap, static fallback and its log lines."""

from __future__ import annotations

import ast
import logging
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execution.governor import Governor, GovernorConfig, kelly_fraction

ROOT = Path(__file__).resolve().parent.parent


class ConstPolicy:
    def __init__(self, m: float) -> None:
        self.m = m
        self.states: list[Any] = []

    def get_multiplier(self, state: Any) -> float:
        self.states.append(state)
        return self.m


class BrokenPolicy:
    def get_multiplier(self, state: Any) -> float:
        raise RuntimeError("weights gone")


def test_kelly_known_values() -> None:
    assert kelly_fraction(0.6, 1.0) == pytest.approx(0.2)  # 0.6 - 0.4 / 1
    assert kelly_fraction(0.5, 2.0) == pytest.approx(0.25)  # 0.5 - 0.5 / 2
    assert kelly_fraction(0.4, 1.0) == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="confidence"):
        kelly_fraction(1.2, 1.0)
    with pytest.raises(ValueError, match="payoff_ratio"):
        kelly_fraction(0.6, 0.0)


def test_ppo_multiplier_applied_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    policy = ConstPolicy(1.5)
    gov = Governor(GovernorConfig(kelly_fraction=0.5, max_position_pct=50.0), policy=policy)
    with caplog.at_level(logging.INFO, logger="execution.governor"):
        d = gov.size(confidence=0.7, payoff_ratio=1.5, state=[0.7, 0.01, 1.0])
    # f* = 0.7 - 0.3 / 1.5 = 0.5; half Kelly 25%; x 1.5 = 37.5%
    assert d.kelly_pct == pytest.approx(25.0)
    assert d.multiplier == 1.5 and d.suggested_multiplier == 1.5 and d.source == "ppo"
    assert d.size_pct == pytest.approx(37.5) and not d.capped
    assert policy.states == [[0.7, 0.01, 1.0]]
    assert "Kelly=25.00% x PPO=1.50 = 37.50%" in caplog.text


@pytest.mark.parametrize(("suggested", "applied"), [(5.0, 2.0), (0.1, 0.5), (-3.0, 0.5), (1.0, 1.0)])
def test_multiplier_is_clamped(suggested: float, applied: float) -> None:
    gov = Governor(GovernorConfig(max_position_pct=100.0), policy=ConstPolicy(suggested))
    d = gov.size(confidence=0.6)
    assert d.suggested_multiplier == suggested
    assert d.multiplier == applied
    assert d.size_pct == pytest.approx(10.0 * applied)


def test_position_cap() -> None:
    gov = Governor(GovernorConfig(kelly_fraction=1.0, max_position_pct=15.0), policy=ConstPolicy(2.0))
    d = gov.size(confidence=0.9, payoff_ratio=1.0)  # f* = 0.8 -> 80% x 2 = 160% -> 15%
    assert d.size_pct == 15.0 and d.capped
    assert gov.status()["capped"] == 1


def test_no_edge_no_position() -> None:
    d = Governor(policy=ConstPolicy(2.0)).size(confidence=0.45)
    assert d.kelly_pct == 0.0 and d.size_pct == 0.0


def test_static_fallback_without_policy_is_logged_once_and_visible(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="execution.governor"):
        gov = Governor(policy_info="no checkpoint in /x")
        decisions = [gov.size(confidence=0.6) for _ in range(3)]
    assert all(d.source == "static" and d.multiplier == 1.0 for d in decisions)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no checkpoint in /x" in warnings[0].getMessage()
    assert caplog.text.count("Kelly=10.00% x static=1.00 = 10.00%") == 3
    st_ = gov.status()
    assert st_["mode"] == "static" and "no checkpoint" in st_["last_fallback_reason"]


def test_broken_or_nan_policy_falls_back_per_decision(caplog: pytest.LogCaptureFixture) -> None:
    gov = Governor(policy=BrokenPolicy())
    with caplog.at_level(logging.WARNING, logger="execution.governor"):
        d1 = gov.size(confidence=0.6)
        d2 = gov.size(confidence=0.6)
    assert d1.source == d2.source == "static" and d1.multiplier == 1.0
    assert gov.fallbacks == 2 and "weights gone" in str(gov.status()["last_fallback_reason"])
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    nan = Governor(policy=ConstPolicy(math.nan)).size(confidence=0.6)
    assert nan.source == "static" and nan.suggested_multiplier is None


def test_bad_config_names_the_parameter() -> None:
    with pytest.raises(ValueError, match="kelly_fraction"):
        GovernorConfig(kelly_fraction=0.0)
    with pytest.raises(ValueError, match="max_position_pct"):
        GovernorConfig(max_position_pct=0.0)


@given(
    conf=st.floats(0.0, 1.0),
    payoff=st.floats(0.1, 10.0),
    mult=st.floats(-10.0, 10.0),
    frac=st.floats(0.01, 1.0),
    cap=st.floats(0.5, 100.0),
)
def test_size_always_within_zero_and_cap(
    conf: float, payoff: float, mult: float, frac: float, cap: float
) -> None:
    gov = Governor(GovernorConfig(kelly_fraction=frac, max_position_pct=cap), policy=ConstPolicy(mult))
    d = gov.size(confidence=conf, payoff_ratio=payoff)
    assert 0.0 <= d.size_pct <= cap
    assert 0.5 <= d.multiplier <= 2.0
    assert d.size_pct <= d.kelly_pct * 2.0 + 1e-12


def test_execution_never_imports_research() -> None:
    for path in (ROOT / "execution").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("research"), f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("research") for a in node.names), path.name
