"""Online PPO trainer on the in-memory bus: updates, checkpoints, resume without double learning, prod guard."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from infra.bus import TOPIC_FEEDBACK, MemoryBus, dead_letter_topic, new_event
from infra.prom import make_metrics, render
from infra.safety import ProductionWriteRefused
from infra.settings import load_settings
from infra.store import open_store
from research.rl_sizer.checkpoints import latest_name
from research.rl_sizer.ppo_sizer import PPOSizer
from research.rl_sizer.trainer import OnlineTrainer, TrainerConfig, policy_reward

torch.set_num_threads(1)
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def feedback(i: int, *, reward: float | None = None, state: list[float] | None = None) -> dict[str, Any]:
    rng = np.random.default_rng(i)
    conf = float(rng.uniform(0.5, 0.95))
    r = float(rng.normal()) if reward is None else reward
    return new_event(
        TOPIC_FEEDBACK,
        {
            "order_id": f"o-{i:05d}",
            "symbol": "BTCUSDT",
            "pnl_usd": r * 10,
            "pnl_pct": r,
            "duration_mins": 60.0,
            "max_drawdown_pct": 0.5,
            "sharpe_contribution": 0.1,
            "reward": r,
            "confidence": conf,
            "state": state if state is not None else [conf, float(rng.uniform(0.001, 0.02)), float(i % 3)],
            "multiplier_used": float(rng.uniform(0.5, 2.0)),
            # drawn from U(0.5, 2): the behaviour density is 1 / 1.5
            "behaviour_logp": -float(np.log(1.5)),
        },
        ts=T0 + dt.timedelta(minutes=i),
        event_id=f"fb-o-{i:05d}",
    )


def publish(bus: MemoryBus, ids: range) -> None:
    for i in ids:
        bus.publish(TOPIC_FEEDBACK, feedback(i))


def test_policy_reward_by_hand() -> None:
    assert policy_reward(2.0, 1.5, 0.1) == pytest.approx(3.0 - 0.05 * 9.0)
    assert policy_reward(-1.0, 2.0, 0.0) == -2.0
    # optimum of E[u] at m* = E[R] / (a E[R^2]): R = +-1 with P(+1) = 0.6 -> E[R] = 0.2, E[R^2] = 1
    ms = np.linspace(0.5, 2.0, 151)
    eu = [0.6 * policy_reward(1.0, m, 0.15) + 0.4 * policy_reward(-1.0, m, 0.15) for m in ms]
    assert ms[int(np.argmax(eu))] == pytest.approx(0.2 / 0.15, abs=0.01)


def test_updates_every_50_checkpoints_every_100_and_metrics(tmp_path: Path) -> None:
    bus = MemoryBus()
    publish(bus, range(230))
    metrics = make_metrics()
    tb = tmp_path / "tb"
    trainer = OnlineTrainer(
        PPOSizer(3, seed=0), checkpoint_dir=tmp_path / "ckpt", tensorboard_dir=tb, metrics=metrics
    )
    assert trainer.run(bus, block_ms=0, until_idle=True) == 230
    trainer.close()
    assert trainer.sizer.stats.updates == 4
    assert [u["trades_seen"] for u in trainer.history.updates] == [50, 100, 150, 200]
    assert trainer.history.checkpoints == ["step_000100", "step_000200"]
    assert latest_name(tmp_path / "ckpt") == "step_000200"
    # acknowledged up to the last checkpoint; the 30 after it stay pending for a restart
    assert bus.pending(TOPIC_FEEDBACK, "ppo-trainer") == 30
    text = render(metrics).decode()
    assert "quantum_rl_rewards_total 230.0" in text
    assert "quantum_rl_training_steps_total 4.0" in text
    assert any(p.name.startswith("events.out.tfevents") for p in tb.iterdir())
    _, meta = PPOSizer.load(tmp_path / "ckpt")
    rewards = [feedback(i)["reward"] for i in range(200)]
    assert meta["trades_seen"] == 200
    assert meta["reward_stats"]["mean"] == pytest.approx(np.mean(rewards))
    assert meta["reward_stats"]["count"] == 200


def test_restart_resumes_from_checkpoint_and_learns_each_trade_once(tmp_path: Path) -> None:
    bus = MemoryBus()
    publish(bus, range(170))
    ckpt = tmp_path / "ckpt"
    first = OnlineTrainer(PPOSizer(3, seed=0), checkpoint_dir=ckpt)
    first.run(bus, consumer="t1", block_ms=0, until_idle=True)
    assert first.trades_seen == 170  # 70 after the checkpoint at 100, buffered and unacked
    del first  # the process dies: its buffer is lost, its 70 messages stay pending
    publish(bus, range(170, 260))
    second = OnlineTrainer.resume(ckpt)
    assert second.trades_seen == 100
    second.run(bus, consumer="t1", block_ms=0, until_idle=True)
    assert second.trades_seen == 260
    assert second.history.order_ids == [f"o-{i:05d}" for i in range(100, 260)]
    assert bus.pending(TOPIC_FEEDBACK, "ppo-trainer") == 60


def test_crash_between_checkpoint_and_ack_does_not_learn_twice(tmp_path: Path) -> None:
    bus = MemoryBus()
    publish(bus, range(120))
    ckpt = tmp_path / "ckpt"
    trainer = OnlineTrainer(PPOSizer(3, seed=0), checkpoint_dir=ckpt)
    real_commit = bus.commit
    calls = {"n": 0}

    def dying_commit(*args: Any, **kwargs: Any) -> None:
        if kwargs.get("ack"):
            calls["n"] += 1
            raise KeyboardInterrupt("killed after the checkpoint, before the ack")
        real_commit(*args, **kwargs)

    bus.commit = dying_commit  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        trainer.run(bus, block_ms=0, until_idle=True)
    bus.commit = real_commit  # type: ignore[method-assign]
    assert latest_name(ckpt) == "step_000100"
    resumed = OnlineTrainer.resume(ckpt)
    resumed.run(bus, block_ms=0, until_idle=True)
    assert resumed.trades_seen == 120
    assert resumed.history.order_ids == [f"o-{i:05d}" for i in range(100, 120)]


def test_bad_feedback_goes_to_dead_letters(tmp_path: Path) -> None:
    bus = MemoryBus()
    bus.publish(TOPIC_FEEDBACK, feedback(0, state=[0.5, 0.1]))  # wrong length
    bus.publish_raw(TOPIC_FEEDBACK, "{not json")
    publish(bus, range(1, 4))
    trainer = OnlineTrainer(PPOSizer(3, seed=0))
    assert trainer.run(bus, block_ms=0, until_idle=True) == 3
    reasons = [d.reason for d in bus.dead_letters(TOPIC_FEEDBACK)]
    assert len(reasons) == 2 and any("state" in r for r in reasons)
    assert bus.length(dead_letter_topic(TOPIC_FEEDBACK)) == 2


def test_checkpoint_is_a_production_write_in_prod(tmp_path: Path) -> None:
    prod = load_settings({"ENV": "prod", "LOGS_DIR": str(tmp_path)})
    trainer = OnlineTrainer(
        PPOSizer(3, seed=0),
        config=TrainerConfig(update_every=5, checkpoint_every=10),
        checkpoint_dir=tmp_path / "c",
        settings=prod,
    )
    for i in range(9):
        trainer.observe(feedback(i))
    with pytest.raises(ProductionWriteRefused, match="ALLOW_PROD_WRITE"):
        trainer.observe(feedback(9))
    assert latest_name(tmp_path / "c") is None
    allowed = load_settings({"ENV": "prod", "ALLOW_PROD_WRITE": "1", "LOGS_DIR": str(tmp_path)})
    ok = OnlineTrainer(
        PPOSizer(3, seed=0),
        config=TrainerConfig(update_every=5, checkpoint_every=10),
        checkpoint_dir=tmp_path / "c",
        settings=allowed,
    )
    for i in range(10):
        ok.observe(feedback(i))
    assert latest_name(tmp_path / "c") == "step_000010"


def test_config_errors_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="checkpoint_every"):
        TrainerConfig(update_every=50, checkpoint_every=120)


def test_demo_step_writes_the_learning_loop_artifact(tmp_path: Path) -> None:
    from scripts.demo_steps.learning_loop import demo_step
    from scripts.pipeline import DemoContext
    from tests.feedback_fixtures import make_trades

    data = tmp_path / "data"
    data.mkdir()
    make_trades(160, seed=1).to_parquet(data / "trades.parquet")
    settings = load_settings({"LOGS_DIR": str(tmp_path / "logs"), "ENV": "dev"})
    ctx = DemoContext(
        settings=settings, store=open_store(settings), data_dir=data, seed=0, scale="default", real_bars=False
    )
    msg = demo_step(ctx)
    assert "PPO updates" in msg
    art = open_store(settings).read("learning_loop")
    assert art.ok
    d = art.data
    n_learned = d["summary"]["feedback_learned"]
    assert 0 < n_learned <= 112
    assert len(d["cumulative_reward"]["reward"]) == n_learned
    assert d["cumulative_reward"]["reward"][-1] == pytest.approx(
        sum(np.diff([0.0, *d["cumulative_reward"]["reward"]]))
    )
    assert sum(d["reward_distribution"]["counts"]) == n_learned
    assert len(d["losses"]) == d["summary"]["updates"] >= 2
    assert len(d["multipliers"]["used"]) == len(d["multipliers"]["suggested"]) == n_learned
    assert all(0.5 <= m <= 2.0 for m in d["multipliers"]["used"])
    assert np.isfinite(d["sharpe"]["before"]) and np.isfinite(d["sharpe"]["after"])
    assert d["sharpe"]["n_trades"] == 160 - 112


def test_cli_refuses_to_start_in_prod_without_allow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from research.rl_sizer.trainer import main

    monkeypatch.setenv("ENV", "prod")
    monkeypatch.delenv("ALLOW_PROD_WRITE", raising=False)
    monkeypatch.setenv("LOGS_DIR", str(tmp_path))
    with pytest.raises(ProductionWriteRefused, match="PPO sizer checkpoint"):
        main(["--bus", "memory://", "--once", "--metrics-port", "-1", "--no-tensorboard"])


def test_cli_once_on_an_empty_memory_bus_exits_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from research.rl_sizer.trainer import main

    monkeypatch.setenv("ENV", "dev")
    monkeypatch.setenv("LOGS_DIR", str(tmp_path))
    assert main(["--bus", "memory://", "--once", "--metrics-port", "-1", "--no-tensorboard"]) == 0


def _bandit_events(n: int, sizer: PPOSizer, *, with_logp: bool) -> list[dict[str, Any]]:
    """One state, a positive edge (80% of trades +1%, 20% -1%), actions at seven fixed quantiles of
    the untrained policy's Beta (deterministic, a stratified sample of the behaviour policy), the
    behaviour log-probability recorded at action time."""
    from scipy import stats

    state = [0.6, 0.01, 1.0]
    qs = stats.beta(2.0, 4.0).ppf((np.arange(7) + 0.5) / 7)  # the untrained Beta(2, 4)
    acts = 0.5 + 1.5 * qs
    out = []
    for i in range(n):
        m = float(acts[i % 7])
        win = (i * 7) % 10 < 8
        pnl = 1.0 if win else -1.0
        ev: dict[str, Any] = {
            "order_id": f"b-{i:05d}", "symbol": "BTCUSDT", "pnl_usd": pnl * 100, "pnl_pct": pnl,
            "duration_mins": 60.0, "max_drawdown_pct": 0.5, "sharpe_contribution": 0.0,
            "reward": 10.0 * pnl,  # a shaped per-position reward in percent-like units
            "confidence": 0.6, "state": state, "multiplier_used": m,
        }  # fmt: skip
        if with_logp:
            ev["behaviour_logp"] = float(sizer.log_prob(np.asarray(state), m)[0])
        out.append(ev)
    return out


def test_old_update_moves_the_wrong_way_and_the_fixed_one_the_right_way() -> None:
    # a positive edge far below the cap: more size is more log growth, so the multiplier should rise
    state = np.array([0.6, 0.01, 1.0])
    from research.rl_sizer.ppo_sizer import PPOConfig

    # the old update: 10 epochs without a KL stop, current-policy log-probs, the shaped reward
    old = OnlineTrainer(
        PPOSizer(3, seed=0, config=PPOConfig(epochs=10, target_kl=None)),
        config=TrainerConfig(reward="shaped", require_behaviour_logp=False),
    )
    new = OnlineTrainer(PPOSizer(3, seed=0), config=TrainerConfig(max_position_pct=100.0))
    assert old.sizer.get_multiplier(state) == pytest.approx(1.0, abs=1e-6)
    events = _bandit_events(200, new.sizer, with_logp=True)
    for ev in events:
        old.observe({k: v for k, v in ev.items() if k != "behaviour_logp"})
        new.observe(ev)
    assert old.sizer.stats.updates == new.sizer.stats.updates == 4
    # legacy: the mean-variance utility of the shaped reward (optimum E[R] / (0.1 E[R^2]) = 6 / 10 = 0.6)
    # pulls the size down although every extra unit of size adds log growth
    assert old.sizer.get_multiplier(state) < 0.95
    # fixed: behaviour log-probs in the ratio, account log growth relative to Kelly as the reward
    assert new.sizer.get_multiplier(state) > 1.05
    assert new.skipped_no_logp == 0


def test_events_without_behaviour_logp_are_not_ppo_samples(caplog: pytest.LogCaptureFixture) -> None:
    trainer = OnlineTrainer(PPOSizer(3, seed=0))
    caplog.set_level(logging.INFO, logger="research.rl_sizer.trainer")
    for i in range(100):
        ev = dict(feedback(i))
        ev.pop("behaviour_logp")
        trainer.observe(ev)
    assert trainer.trades_seen == 100 and trainer.skipped_no_logp == 100 and trainer.sizer.stats.updates == 0
    # nothing learns from these events: said once, as a warning
    said = [r for r in caplog.records if "carries no behaviour_logp" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.WARNING]
    with pytest.raises(ValueError, match="behaviour_logp"):
        trainer.observe({**feedback(200), "behaviour_logp": float("nan")})


def test_log_growth_reward_by_hand() -> None:
    from research.rl_sizer.trainer import log_growth_reward

    # p = 0.6, b = 1: f* = 0.2, half Kelly k = 0.1; m = 1.5 stakes 0.15 of equity; +2% position
    assert log_growth_reward(2.0, 0.6, 1.5, max_position_pct=25.0) == pytest.approx(
        np.log1p(0.15 * 0.02) - np.log1p(0.1 * 0.02)
    )
    # the 10% cap binds above m = 1: no extra growth from m = 2
    assert log_growth_reward(2.0, 0.6, 2.0, max_position_pct=10.0) == pytest.approx(0.0, abs=1e-15)
    # no edge claimed (p = 0.5): Kelly stakes nothing, neither does any multiple of it
    assert log_growth_reward(-3.0, 0.5, 2.0) == 0.0


def test_trainer_feeds_the_edge_learner_the_same_stream(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from research.rl_sizer.edge_online import EdgeLearner

    caplog.set_level(logging.INFO, logger="research.rl_sizer.trainer")
    edge = EdgeLearner(checkpoint_dir=tmp_path / "edge")
    trainer = OnlineTrainer(PPOSizer(3, seed=0), edge=edge, keep_history=False)
    for i in range(100):
        ev = dict(feedback(i))
        if i % 2:
            ev.pop("behaviour_logp")  # not a PPO sample, still a closed trade for the edge learner
        trainer.observe(ev)
    assert edge.trades_seen == trainer.trades_seen == 100 and edge.refits == 2
    assert trainer.skipped_no_logp == 50 and latest_name(tmp_path / "edge") == "step_000100"
    # the edge learner (the live policy) learns from them: the normal case, said once at INFO
    said = [r for r in caplog.records if "carries no behaviour_logp" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.INFO] and "still feed the edge learner" in said[
        0
    ].getMessage()


def test_tensorboard_gets_block_means_not_a_scalar_per_trade(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sizer = PPOSizer(3, seed=0)
    events = _bandit_events(120, sizer, with_logp=False)
    trainer = OnlineTrainer(sizer, tensorboard_dir=tmp_path / "tb")
    for ev in events:
        trainer.observe(ev)
    trainer.close()
    acc = EventAccumulator(str(tmp_path / "tb")).Reload()
    points = {tag: [(s.step, s.value) for s in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    assert set(points) == {
        "feedback/reward_mean",
        "feedback/policy_reward_mean",
        "feedback/multiplier_used_mean",
    }
    # 120 trades in blocks of 50: two points (the last 20 trades wait for their block)
    rewards = [ev["reward"] for ev in events]
    mults = [ev["multiplier_used"] for ev in events]
    assert [s for s, _ in points["feedback/reward_mean"]] == [50, 100]
    for (_, got), block in zip(points["feedback/reward_mean"], (rewards[:50], rewards[50:100]), strict=True):
        assert got == pytest.approx(np.mean(block), rel=1e-6)  # TensorBoard stores float32
    for (_, got), block in zip(
        points["feedback/multiplier_used_mean"], (mults[:50], mults[50:100]), strict=True
    ):
        assert got == pytest.approx(np.mean(block), rel=1e-6)
