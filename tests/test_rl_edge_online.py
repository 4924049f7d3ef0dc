"""Online edge learning from rl.feedback: refits, checkpoints, resume, serving, the governor's flags."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from execution.governor import Governor, GovernorConfig
from research.rl_sizer.checkpoints import latest_name, load_checkpoint
from research.rl_sizer.edge_online import EdgeLearner, EdgeLearnerConfig, EdgePolicy, load_edge_policy


def _event(i: int, *, regime: int, win: bool, conf: float = 0.6, size: float = 1.0) -> dict[str, Any]:
    return {
        "order_id": f"e-{i:05d}", "symbol": "BTCUSDT", "pnl_usd": 0.0,
        "pnl_pct": size if win else -size, "duration_mins": 60.0, "max_drawdown_pct": 0.1,
        "sharpe_contribution": 0.0, "reward": 0.0, "confidence": conf,
        "state": [conf, 0.5, float(regime)], "multiplier_used": 1.0,
    }  # fmt: skip


def _stream(n: int) -> list[dict[str, Any]]:
    # regime 0 wins 60% (as claimed), regime 1 wins 40% (claims 60%): no edge there
    out = []
    for i in range(n):
        regime = i % 2
        k = (i // 2) % 10
        out.append(_event(i, regime=regime, win=k < (6 if regime == 0 else 4), size=0.8))
    return out


def test_refits_every_50_checkpoints_every_100_and_learns_the_edge(tmp_path: Path) -> None:
    learner = EdgeLearner(checkpoint_dir=tmp_path / "edge")
    refits = [learner.observe(ev) for ev in _stream(400)]
    assert sum(refits) == 8 and learner.refits == 8 and refits[49] and not refits[48]
    assert latest_name(tmp_path / "edge") == "step_000400"
    assert sorted(p.name for p in (tmp_path / "edge").iterdir() if p.name.startswith("step_"))[:1] == [
        "step_000100"
    ]
    # the unit of risk is the mean |pnl_pct| (0.8), so outcomes are +-1 R: edge 0.2 and -0.2
    assert learner.risk_unit_ == pytest.approx(0.8)
    policy = learner.policy()
    assert policy is not None
    good, bad = policy.explain([0.6, 0.5, 0.0]), policy.explain([0.6, 0.5, 1.0])
    assert good["edge"] == pytest.approx(0.2, abs=0.02) and not good["no_edge"]
    assert bad["edge"] == pytest.approx(-0.2, abs=0.03) and bad["no_edge"]
    assert policy.get_multiplier([0.6, 0.5, 0.0]) == pytest.approx(1.0, abs=0.1)
    assert policy.get_multiplier([0.6, 0.5, 1.0]) == 0.5


def test_resume_and_serving_load_the_same_model(tmp_path: Path) -> None:
    learner = EdgeLearner(checkpoint_dir=tmp_path)
    for ev in _stream(200):
        learner.observe(ev)
    again = EdgeLearner.resume(tmp_path)
    assert again.trades_seen == 200 and again.refits == learner.refits
    x = np.array([[0.6, 0.5, 0.0], [0.58, 0.4, 1.0]])
    assert learner.sizer is not None and again.sizer is not None
    assert np.array_equal(again.sizer.multipliers(x), learner.sizer.multipliers(x))
    policy, msg = load_edge_policy(tmp_path)
    assert isinstance(policy, EdgePolicy) and "200 trades" in msg
    # the payload is hash-verified JSON with the trades the model was fitted on
    state = json.loads(load_checkpoint(tmp_path).payload)
    assert len(state["x"]) == 200 and state["kind"] == "edge"


def test_too_few_trades_is_not_a_valid_policy(tmp_path: Path) -> None:
    learner = EdgeLearner(config=EdgeLearnerConfig(min_trades=150), checkpoint_dir=tmp_path)
    for ev in _stream(100):
        learner.observe(ev)
    policy, msg = load_edge_policy(tmp_path)
    assert policy is None and "fewer than the 150" in msg
    assert load_edge_policy(tmp_path / "none")[0] is None


def test_bad_events_and_config_are_refused() -> None:
    with pytest.raises(ValueError, match="multiple of 'refit_every'"):
        EdgeLearnerConfig(refit_every=50, checkpoint_every=75)
    learner = EdgeLearner()
    with pytest.raises(ValueError, match="e-00001"):
        learner.observe({**_event(1, regime=0, win=True), "state": [0.6]})
    with pytest.raises(ValueError, match="non-finite"):
        learner.observe({**_event(2, regime=0, win=True), "pnl_pct": math.inf})


def test_governor_shows_no_edge_and_records_the_behaviour_logp() -> None:
    learner = EdgeLearner()
    for ev in _stream(200):
        learner.observe(ev)
    policy = learner.policy()
    gov = Governor(GovernorConfig(kelly_fraction=0.5, max_position_pct=25.0), policy=policy)
    d = gov.size(confidence=0.6, state=[0.6, 0.5, 1.0])
    assert (
        d.source == "edge" and d.no_edge is True and d.multiplier == 0.5 and d.edge is not None and d.edge < 0
    )
    assert d.size_pct == pytest.approx(5.0)  # still clamped to the range: half of half Kelly (10%)
    assert gov.status()["no_edge"] == 1 and gov.status()["mode"] == "edge"
    assert d.execution_fields() == {"multiplier_used": 0.5}

    class Sampler:
        name = "ppo"

        def get_multiplier(self, state: Any) -> float:
            return 1.0

        def sample(self, state: Any) -> tuple[float, float]:
            return 1.5, -0.25

    explorer = Governor(GovernorConfig(explore=True), policy=Sampler())
    d2 = explorer.size(confidence=0.6, state=[0.6, 0.5, 0.0])
    assert d2.multiplier == 1.5 and d2.behaviour_logp == -0.25 and d2.source == "ppo"
    assert d2.execution_fields() == {"multiplier_used": 1.5, "behaviour_logp": -0.25}
    # a clamp that moves the sample drops its log-probability (it no longer describes the action)
    narrow = Governor(GovernorConfig(explore=True, max_multiplier=1.2), policy=Sampler())
    assert narrow.size(confidence=0.6, state=[0.6, 0.5, 0.0]).behaviour_logp is None
    # without explore the deterministic multiplier is used and nothing is recorded
    assert Governor(policy=Sampler()).size(confidence=0.6, state=[0.6]).behaviour_logp is None


def test_select_policy_defaults_to_static_kelly_until_an_edge_checkpoint_exists(
    tmp_path: Path, monkeypatch
) -> None:
    from infra.settings import load_settings
    from research.rl_sizer.serving import edge_checkpoint_dir, select_policy

    monkeypatch.setenv("ENV", "dev")
    monkeypatch.setenv("LOGS_DIR", str(tmp_path / "logs"))
    monkeypatch.delenv("RESEARCH_DIR", raising=False)
    settings = load_settings()
    policy, msg = select_policy("edge", settings)
    assert policy is None and msg.startswith("no valid edge-sizer checkpoint yet")
    learner = EdgeLearner(checkpoint_dir=edge_checkpoint_dir(settings))
    for ev in _stream(100):
        learner.observe(ev)
    policy, msg = select_policy("edge", settings)
    assert isinstance(policy, EdgePolicy) and msg.startswith("edge sizer: loaded")
    assert select_policy("kelly", settings)[0] is None
    with pytest.raises(ValueError, match="edge, ppo, kelly"):
        select_policy("dqn", settings)


def test_a_redelivered_event_is_learned_once_even_across_a_resume(tmp_path: Path) -> None:
    """After a crash the bus redelivers what the trainer had not acknowledged: the edge learner
    must not count those trades twice (it dedupes by order_id, also after loading a checkpoint)."""
    events = _stream(150)
    learner = EdgeLearner(checkpoint_dir=tmp_path)
    for ev in events:
        learner.observe(ev)
    assert learner.trades_seen == 150
    assert learner.observe(events[120]) is False and learner.trades_seen == 150
    resumed = EdgeLearner.resume(tmp_path)  # the checkpoint at 100 trades
    assert resumed.trades_seen == 100
    for ev in events[50:]:  # redelivery overlaps the checkpoint by 50 trades
        resumed.observe(ev)
    assert resumed.trades_seen == 150


def test_the_trainer_service_learns_the_edge_sizer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m research.rl_sizer.trainer` feeds the edge learner: after 150 feedback events on the
    bus the edge checkpoint that `serving --policy edge` loads exists."""
    from infra.bus import TOPIC_FEEDBACK, MemoryBus, new_event
    from infra.settings import load_settings
    from research.rl_sizer import trainer as trainer_mod
    from research.rl_sizer.serving import edge_checkpoint_dir

    monkeypatch.setenv("LOGS_DIR", str(tmp_path))
    monkeypatch.setenv("ENV", "dev")
    bus = MemoryBus()
    import datetime as dt

    t0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    for i, ev in enumerate(_stream(150)):
        payload = {k: v for k, v in ev.items()}
        bus.publish(TOPIC_FEEDBACK, new_event(TOPIC_FEEDBACK, payload, ts=t0 + dt.timedelta(minutes=i)))
    monkeypatch.setattr(trainer_mod, "connect_bus", lambda url: bus)
    assert trainer_mod.main(["--once", "--metrics-port", "-1", "--no-tensorboard"]) == 0
    assert latest_name(edge_checkpoint_dir(load_settings())) is not None


def test_the_refresher_moves_a_live_governor_onto_each_newer_checkpoint(tmp_path: Path) -> None:
    from infra.settings import load_settings
    from research.rl_sizer.serving import PolicyRefresher, edge_checkpoint_dir

    settings = load_settings({"LOGS_DIR": str(tmp_path)})
    now = [0.0]
    refresher = PolicyRefresher("edge", settings, every_s=5.0, clock=lambda: now[0])
    gov = Governor(GovernorConfig(), policy_info="nothing loaded yet")
    assert not refresher.refresh(gov) and gov.policy_name == "static"  # no checkpoint: static Kelly
    learner = EdgeLearner(checkpoint_dir=edge_checkpoint_dir(settings))
    stream = _stream(400)
    for ev in stream[:100]:
        learner.observe(ev)
    assert not refresher.refresh(gov)  # looked 0 s ago: not before every_s
    now[0] = 5.0
    assert refresher.refresh(gov) and refresher.loaded == "step_000100" and gov.policy_name == "edge"
    first = gov.size(confidence=0.6, state=[0.6, 0.5, 1.0])
    assert first.source == "edge" and first.multiplier == load_edge_policy(edge_checkpoint_dir(settings))[
        0
    ].get_multiplier([0.6, 0.5, 1.0])
    now[0] = 10.0
    assert not refresher.refresh(gov) and refresher.loads == 1  # same pointer: nothing reloaded
    for ev in stream[100:400]:
        learner.observe(ev)
    now[0] = 15.0
    assert refresher.refresh(gov) and refresher.loaded == "step_000400" and refresher.loads == 2
    # 200 trades of regime 1 at 40 % wins against a 60 % claim: the newest fit has no edge there
    assert gov.size(confidence=0.6, state=[0.6, 0.5, 1.0]).multiplier == 0.5
    assert gov.size(confidence=0.6, state=[0.6, 0.5, 0.0]).multiplier == pytest.approx(1.0, abs=0.1)


def test_the_refresher_keeps_static_kelly_while_the_checkpoint_is_too_young(tmp_path: Path) -> None:
    from infra.settings import load_settings
    from research.rl_sizer.serving import PolicyRefresher, edge_checkpoint_dir

    settings = load_settings({"LOGS_DIR": str(tmp_path)})
    learner = EdgeLearner(
        config=EdgeLearnerConfig(min_trades=300), checkpoint_dir=edge_checkpoint_dir(settings)
    )
    for ev in _stream(100):
        learner.observe(ev)
    gov = Governor(GovernorConfig())
    refresher = PolicyRefresher("edge", settings, every_s=0.0)
    assert not refresher.refresh(gov)
    assert gov.policy_name == "static" and "fewer than the 300 needed" in gov.status()["policy_info"]
    assert gov.size(confidence=0.6, state=[0.6, 0.5, 1.0]).multiplier == 1.0
    with pytest.raises(
        ValueError, match="'kind' parameter of PolicyRefresher must be one of edge, ppo, kelly"
    ):
        PolicyRefresher("best", settings)


def test_the_window_keeps_the_newest_trades_and_fits_exactly_them() -> None:
    cfg = EdgeLearnerConfig(window=100, refit_every=50, checkpoint_every=100, min_trades=100)
    stream = _stream(250)
    rolling = EdgeLearner(config=cfg)
    for ev in stream:
        rolling.observe(ev)
    fresh = EdgeLearner(config=cfg)  # fed only the 100 trades the rolling one still keeps
    for ev in stream[150:]:
        fresh.observe(ev)
    assert rolling.trades_seen == 250 and rolling.refits == 5 and fresh.refits == 2
    assert rolling.state_dict()["order_ids"] == [f"e-{i:05d}" for i in range(150, 250)]
    assert rolling.sizer is not None and fresh.sizer is not None
    assert rolling.sizer.to_dict() == fresh.sizer.to_dict() and rolling.risk_unit_ == fresh.risk_unit_
    assert not rolling.observe(stream[249])  # a redelivery inside the window is not learned twice
    assert rolling.observe(stream[0]) is False and rolling.trades_seen == 251  # evicted: a new trade


def test_the_service_trainer_keeps_no_per_trade_history(tmp_path: Path) -> None:
    from infra.settings import load_settings
    from research.rl_sizer.trainer import service_trainer

    trainer = service_trainer(load_settings({"LOGS_DIR": str(tmp_path)}), tensorboard=False)
    assert trainer.edge is not None
    for ev in _stream(300):
        trainer.observe(ev)
    assert trainer.trades_seen == 300 and trainer.edge.trades_seen == 300
    assert trainer.history.order_ids == [] and trainer.history.rewards == []
    assert trainer.history.checkpoints == [] and trainer.history.updates == []
    assert latest_name(tmp_path / "research" / "checkpoints" / "edge_sizer") == "step_000300"


def test_a_checkpoint_before_the_first_refit_round_trips(tmp_path: Path) -> None:
    learner = EdgeLearner(checkpoint_dir=tmp_path)
    for ev in _stream(10):
        learner.observe(ev)
    learner.checkpoint()  # no refit yet: no risk unit (JSON null), no model
    again = EdgeLearner.resume(tmp_path)
    assert again.trades_seen == 10 and math.isnan(again.risk_unit_) and again.sizer is None
    assert again.state_dict()["order_ids"] == [f"e-{i:05d}" for i in range(10)]
    assert load_edge_policy(tmp_path)[0] is None
